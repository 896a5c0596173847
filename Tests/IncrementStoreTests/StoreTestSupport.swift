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
