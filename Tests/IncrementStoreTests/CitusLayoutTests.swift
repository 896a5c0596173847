import Foundation
import IncrementCore
import IncrementStore
import IncrementTesting
import Logging
import PostgresNIO
import Testing

/// The coordinator named by `CITUS_DATABASE_URL` (`scripts/citus.sh start DIR` prints one).
private let citusURL = ProcessInfo.processInfo.environment["CITUS_DATABASE_URL"]

/// The same store on a Citus coordinator with two workers: the layout, and the flush's outcomes
/// (totals, quarantine, idempotency records, retries, concurrent nodes) as on one PostgreSQL.
@Suite(
    .enabled(if: citusURL != nil, "CITUS_DATABASE_URL is not set: no Citus cluster (scripts/citus.sh start DIR makes one)"),
    .serialized
)
struct CitusLayoutTests {
    @Test func migrateDistributesCountersAndIdempotencyKeysOnce() async throws {
        try await withCitusStore { store, client in
            var distributed: [String: String] = [:]
            for try await (table, column) in try await client.query(
                "SELECT logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition",
                logger: testLogger
            ).decode((String, String).self) {
                distributed[table] = column
            }
            #expect(distributed == ["counters": "key", "idempotency_keys": "idem_key"])
            #expect(try await scalar(client, "SELECT count(DISTINCT nodeport)::bigint FROM pg_dist_shard_placement") == 2)
            #expect(
                try await scalar(
                    client, "SELECT count(*)::bigint FROM pg_trigger WHERE tgname = 'counters_changed_unannounced'") == 0)
            let again = try await store.applyCitusLayout()
            #expect(again == .distributed([]))
        }
    }

    @Test func aFlushQuarantinesOverflowRecordsIdempotentTotalsAndAppliesOnce() async throws {
        try await withCitusStore { store, client in
            let node = UUID().uuidString
            _ = try await store.apply(batch(["big": .max - 1], node: node, sequence: 1))
            let second = FlushBatch(
                id: BatchID(nodeID: node, sequence: 2), deltas: ["fine": 1, "plain": 7],
                idempotent: [
                    idempotent("push-big", "big", 5), idempotent("fine-request", "fine", 2),
                    idempotent("fine-again", "fine", 3),
                ],
                shardMap: ClusterShardMap(shardCount: 64))
            let result = try await store.apply(second, totalsFor: ["big", "fine", "plain"])
            #expect(result.quarantined == ["big": CounterStore.outOfRangeReason])
            #expect(result.totals == ["fine": 6, "plain": 7])
            #expect(result.idempotencyRecords[IdempotencyKey(trusted: "fine-request")]?.total == 6)
            #expect(result.idempotencyRecords[IdempotencyKey(trusted: "push-big")]?.total == nil)
            #expect(try await allCounters(client) == ["big": .max - 1, "fine": 6, "plain": 7])
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM quarantined_increments WHERE seq = 2") == 1)

            // The same batch again, as after a lost COMMIT answer: nothing more is applied.
            let retry = try await store.apply(second, totalsFor: ["fine"])
            #expect(retry.disposition == .alreadyApplied)
            #expect(retry.quarantined.keys.sorted() == ["big"])
            // Another node sending a recorded key again applies nothing.
            let repeated = FlushBatch(
                id: BatchID(nodeID: UUID().uuidString, sequence: 1), deltas: [:],
                idempotent: [idempotent("fine-request", "fine", 2)], shardMap: ClusterShardMap(shardCount: 64))
            let answer = try await store.apply(repeated, totalsFor: ["fine"])
            #expect(answer.idempotencyRecords[IdempotencyKey(trusted: "fine-request")]?.recordedByThisFlush == false)
            #expect(try await allCounters(client) == ["big": .max - 1, "fine": 6, "plain": 7])
        }
    }

    @Test(arguments: ShardLockMode.allCases)
    func nodesFlushingOverlappingHotKeysEndExact(lockMode: ShardLockMode) async throws {
        try await withCitusStore { _, client in
            let expected = try await flushOverlappingHotKeys(nodes: 4, flushesPerNode: 20, lockMode: lockMode) { body in
                try await withCitusClient(body)
            }
            #expect(try await allCounters(client) == expected)
        }
    }

    @Test func readsListsAndDeletesSpanTheWorkers() async throws {
        try await withCitusStore { store, client in
            let keys = (0..<50).map { CounterKey(trusted: "list-\($0 < 10 ? "0" : "")\($0)") }
            var deltas: [CounterKey: Int64] = [:]
            for (index, key) in keys.enumerated() { deltas[key] = Int64(index + 1) }
            _ = try await store.apply(batch(deltas, node: UUID().uuidString, sequence: 1))
            let deadline = ContinuousClock.now + .seconds(10)
            let totals = try await store.totals(forKeys: keys, deadline: deadline)
            #expect(totals == deltas)
            let page = try await store.counters(prefix: try KeyPrefix(validating: "list-"), after: keys[19], limit: 10, deadline: deadline)
            #expect(page.counters.map(\.key) == Array(keys[20..<30]))
            #expect(page.next == keys[29])
            let shardMap = ClusterShardMap(shardCount: 64)
            let total = try await store.deleteCounter(keys[0], barrier: 0, shardMap: shardMap, deadline: deadline)
            #expect(total == 1)
            let deletion = try await store.deleteCounters(
                prefix: try KeyPrefix(validating: "list-1"), barrier: 0, limit: 100, shardMap: shardMap, deadline: deadline)
            #expect(deletion.deleted == 10 && !deletion.more)
            #expect(try await allCounters(client).count == 39)
        }
    }
}

private struct CitusUnavailable: Error, CustomStringConvertible {
    var description: String { "CITUS_DATABASE_URL is not a postgres:// URL" }
}

private func idempotent(_ key: String, _ counter: String, _ delta: Int64) -> IdempotentRequest {
    IdempotentRequest(
        key: IdempotencyKey(trusted: key), route: .single,
        increments: [Increment(key: CounterKey(trusted: counter), delta: delta)])
}

/// A client of the coordinator's database.
private func withCitusClient<Result: Sendable>(_ body: @Sendable (PostgresClient) async throws -> Result) async throws -> Result {
    guard let citusURL, let components = URLComponents(string: citusURL), let host = components.host else {
        throw CitusUnavailable()
    }
    var configuration = PostgresClient.Configuration(
        host: host, port: components.port ?? 5432, username: components.user ?? "postgres",
        password: components.password, database: String(components.path.dropFirst()), tls: .disable)
    configuration.options.maximumConnections = 8
    var logger = Logger(label: "citus-test-client")
    logger.logLevel = .error
    let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

/// The coordinator's database emptied of this project's objects, then migrated (with the Citus
/// layout) and handed to `body`. The suite runs its tests one at a time: they share it.
private func withCitusStore(_ body: @Sendable (CounterStore, PostgresClient) async throws -> Void) async throws {
    try await withCitusClient { client in
        try await client.query(
            """
            DO $$
            DECLARE object record;
            BEGIN
                FOR object IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
                    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', object.tablename);
                END LOOP;
                FOR object IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
                    EXECUTE format('DROP SEQUENCE IF EXISTS %I CASCADE', object.sequencename);
                END LOOP;
                FOR object IN
                    SELECT p.oid::regprocedure AS function FROM pg_proc AS p
                    JOIN pg_namespace AS n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public'
                    AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = p.oid AND d.deptype = 'e')
                LOOP
                    EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', object.function);
                END LOOP;
            END $$
            """,
            logger: testLogger)
        let store = CounterStore(client: client, logger: testLogger)
        try await store.migrate()
        try await body(store, client)
    }
}
