import Foundation
import IncrementCore
import IncrementStore
import IncrementTesting
import Logging
import PostgresNIO

let testLogger: Logger = {
    var logger = Logger(label: "store-tests")
    logger.logLevel = .warning
    return logger
}()

/// A migrated database and a store over it.
func withMigratedStore<Result: Sendable>(
    _ body: @Sendable (CounterStore, PostgresClient, TestDatabase) async throws -> Result
) async throws -> Result {
    let database = try await TestDatabase.create()
    return try await database.withClient { client in
        try await SchemaMigrator(client: client, logger: testLogger).migrate(try Migration.bundled())
        return try await body(CounterStore(client: client, logger: testLogger), client, database)
    }
}

/// Every counter in the database.
func allCounters(_ client: PostgresClient) async throws -> [String: Int64] {
    var counters: [String: Int64] = [:]
    for try await (key, value) in try await client.query("SELECT key, value FROM counters", logger: testLogger)
        .decode((String, Int64).self)
    {
        counters[key] = value
    }
    return counters
}

/// A single integer a query returns.
func scalar(_ client: PostgresClient, _ query: PostgresQuery) async throws -> Int64 {
    var result: Int64 = 0
    for try await value in try await client.query(query, logger: testLogger).decode(Int64.self) {
        result = value
    }
    return result
}

func batch(_ deltas: [CounterKey: Int64], node: String, sequence: Int64, shards: Int = 64) -> FlushBatch {
    FlushBatch(id: BatchID(nodeID: node, sequence: sequence), deltas: deltas, shardMap: ClusterShardMap(shardCount: shards))
}

/// Nodes flushing overlapping hot keys at once, each with a client of its own from `withNodeClient`
/// (as separate processes would): in each flush, node n adds n + 1 to two thirds of 20 hot keys and
/// 1 to a key of its own. Returns the totals the counters must then hold.
func flushOverlappingHotKeys(
    nodes: Int,
    flushesPerNode: Int,
    lockMode: ShardLockMode,
    withNodeClient: @escaping @Sendable (@Sendable (PostgresClient) async throws -> Void) async throws -> Void
) async throws -> [String: Int64] {
    @Sendable func deltas(node: Int, sequence: Int) -> [CounterKey: Int64] {
        var deltas: [CounterKey: Int64] = [:]
        for index in 0..<20 where (index + sequence + node) % 3 != 0 {
            deltas[CounterKey(trusted: "hot-\(index)")] = Int64(node + 1)
        }
        deltas[CounterKey(trusted: "own-\(node)-\(sequence % 5)")] = 1
        return deltas
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for node in 0..<nodes {
            group.addTask {
                try await withNodeClient { nodeClient in
                    let nodeStore = CounterStore(client: nodeClient, logger: testLogger, limits: FlushLimits(lockMode: lockMode))
                    let nodeID = UUID().uuidString
                    for sequence in 1...flushesPerNode {
                        _ = try await nodeStore.apply(batch(deltas(node: node, sequence: sequence), node: nodeID, sequence: Int64(sequence)))
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    var expected: [String: Int64] = [:]
    for node in 0..<nodes {
        for sequence in 1...flushesPerNode {
            for (key, delta) in deltas(node: node, sequence: sequence) { expected[key.string, default: 0] += delta }
        }
    }
    return expected
}
