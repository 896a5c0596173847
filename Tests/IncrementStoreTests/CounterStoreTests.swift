import Foundation
import IncrementCore
import IncrementStore
import IncrementTesting
import PostgresNIO
import Testing

struct CounterStoreTests {
    @Test func appliesABatchAndReturnsTotals() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            let first = try await store.apply(batch(["a": 2, "b": -3], node: node, sequence: 1), totalsFor: ["a", "b"])
            #expect(first.totals == ["a": 2, "b": -3])
            #expect(first.disposition == .applied)
            let second = try await store.apply(batch(["a": 5], node: node, sequence: 2), totalsFor: ["a"])
            #expect(second.totals == ["a": 7])
            #expect(try await store.total(forKey: "a", deadline: .now + .seconds(5)) == 7)
            #expect(try await store.total(forKey: "missing", deadline: .now + .seconds(5)) == nil)
            #expect(try await allCounters(client) == ["a": 7, "b": -3])
        }
    }

    /// Reads through the prepared statement and through a fresh unnamed one answer alike, many
    /// times on the same connections (each prepares it once), absent keys and odd bytes included.
    @Test func preparedAndUnpreparedReadsAnswerAlike() async throws {
        try await withMigratedStore { store, client, _ in
            let stored: [CounterKey: Int64] = ["a": 1, "b|c\n": -2, "ключ": 3, "x y": Int64.max]
            _ = try await store.apply(batch(stored, node: UUID().uuidString, sequence: 1), totalsFor: [])
            let unprepared = CounterStore(client: client, logger: testLogger, usesPreparedStatements: false)
            let asked: [CounterKey] = Array(stored.keys) + ["never", "a"]
            for _ in 0..<20 {
                let prepared = try await store.totals(forKeys: asked, deadline: .now + .seconds(5))
                #expect(prepared == stored)
                #expect(try await unprepared.totals(forKeys: asked, deadline: .now + .seconds(5)) == prepared)
            }
            #expect(try await store.totals(forKeys: [], deadline: .now + .seconds(5)).isEmpty)
        }
    }

    /// A flush against a server that refuses writes fails as read-only (SQLSTATE 25006) through
    /// the transaction's error, so the node can close that connection and call it not writable.
    @Test func aFlushAgainstAReadOnlyServerFailsAsReadOnly() async throws {
        try await withMigratedStore { _, client, database in
            try await client.query(
                PostgresQuery(unsafeSQL: "ALTER DATABASE \"\(database.name)\" SET default_transaction_read_only = on"),
                logger: testLogger)
            // New sessions start read-only: a second client's connections are all new. (Terminating
            // the first client's sessions instead once left a plain query on that pool waiting for
            // ever, with postgres-nio 1.33.2; the node's store calls all run under a deadline.)
            try await database.withClient { readOnlyClient in
                let store = CounterStore(client: readOnlyClient, logger: testLogger)
                var failure: FlushFailure?
                do {
                    _ = try await store.apply(batch(["a": 1], node: UUID().uuidString, sequence: 1))
                } catch {
                    failure = error as? FlushFailure
                }
                #expect(failure?.isReadOnlyServerError == true, "\(String(describing: failure))")
                #expect(failure?.mayHaveCommitted == false)
            }
        }
    }

    @Test func aRetriedBatchAppliesOnce() async throws {
        try await withMigratedStore { store, client, _ in
            let retried = batch(["a": 10, "b": 1], node: UUID().uuidString, sequence: 1)
            _ = try await store.apply(retried)
            // The same id again, as after a commit whose acknowledgement was lost.
            let again = try await store.apply(retried, totalsFor: ["a"])
            #expect(again.disposition == .alreadyApplied)
            #expect(again.totals == ["a": 10])
            #expect(try await allCounters(client) == ["a": 10, "b": 1])
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_ledger") == 1)
        }
    }

    @Test func quarantinesOverflowWhileTheRestCommits() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            _ = try await store.apply(batch(["big": .max - 1, "small": .min + 1], node: node, sequence: 1))
            let result = try await store.apply(
                batch(["big": 5, "small": -5, "fine": 3], node: node, sequence: 2),
                totalsFor: ["big", "small", "fine"]
            )
            #expect(result.quarantined == ["big": CounterStore.outOfRangeReason, "small": CounterStore.outOfRangeReason])
            #expect(result.totals == ["fine": 3])
            #expect(try await allCounters(client) == ["big": .max - 1, "small": .min + 1, "fine": 3])
            var kept: [String: Int64] = [:]
            for try await (key, delta) in try await client.query(
                "SELECT key, delta::bigint FROM quarantined_increments WHERE seq = 2", logger: testLogger
            ).decode((String, Int64).self) {
                kept[key] = delta
            }
            #expect(kept == ["big": 5, "small": -5])

            // A retry of the batch reports the same quarantine and applies nothing.
            let retry = try await store.apply(
                batch(["big": 5, "small": -5, "fine": 3], node: node, sequence: 2),
                totalsFor: ["big", "fine"]
            )
            #expect(retry.disposition == .alreadyApplied)
            #expect(Set(retry.quarantined.keys) == ["big", "small"])
            #expect(retry.totals == ["fine": 3])
        }
    }

    @Test func quarantinesOverflowOfIdempotentIncrementsToo() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            _ = try await store.apply(batch(["big": .max - 1], node: node, sequence: 1))
            func request(_ key: String, _ counter: String, _ delta: Int64) -> IdempotentRequest {
                IdempotentRequest(
                    key: IdempotencyKey(trusted: key), route: .single,
                    increments: [Increment(key: CounterKey(trusted: counter), delta: delta)])
            }
            // A stored key pushed past bigint, a new key whose two requests sum past it, and a
            // key whose plain and idempotent increments fit.
            let second = FlushBatch(
                id: BatchID(nodeID: node, sequence: 2), deltas: ["fine": 1],
                idempotent: [request("push-big", "big", 5), request("new-1", "new", .max), request("new-2", "new", .max),
                             request("fine", "fine", 2)],
                shardMap: ClusterShardMap(shardCount: 64))
            let result = try await store.apply(second, totalsFor: ["big", "new", "fine"])
            #expect(result.quarantined == ["big": CounterStore.outOfRangeReason, "new": CounterStore.outOfRangeReason])
            #expect(result.totals == ["fine": 3])
            #expect(try await allCounters(client) == ["big": .max - 1, "fine": 3])
        }
    }

    @Test(arguments: ShardLockMode.allCases)
    func nodesFlushingOverlappingHotKeysEndExactWithoutDeadlock(lockMode: ShardLockMode) async throws {
        try await withMigratedStore { store, client, database in
            let deadlocksBefore = try await scalar(
                client, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            let expected = try await flushOverlappingHotKeys(nodes: 4, flushesPerNode: 40, lockMode: lockMode) { body in
                try await database.withClient(body)
            }
            #expect(try await allCounters(client) == expected)
            let deadlocksAfter = try await scalar(
                client, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            #expect(deadlocksAfter == deadlocksBefore)
            _ = store
        }
    }

    @Test func keysAreTheirBytesNotTheirCanonicalForm() async throws {
        try await withMigratedStore { store, client, _ in
            // "é" precomposed and decomposed, and the Ångström sign against Å: equal as Swift
            // Strings, different bytes, so different counters.
            let composed = CounterKey(trusted: "\u{E9}")
            let decomposed = CounterKey(trusted: "e\u{301}")
            let angstrom = CounterKey(trusted: "\u{212B}")
            let aRing = CounterKey(trusted: "\u{C5}")
            let deltas: [CounterKey: Int64] = [composed: 1, decomposed: 10, angstrom: 100, aRing: 1_000]
            #expect(deltas.count == 4)
            let result = try await store.apply(
                batch(deltas, node: UUID().uuidString, sequence: 1),
                totalsFor: [composed, decomposed, angstrom, aRing]
            )
            #expect(result.totals == deltas)
            var stored: [[UInt8]: Int64] = [:]
            for try await (key, value) in try await client.query("SELECT key, value FROM counters", logger: testLogger)
                .decode((String, Int64).self)
            {
                stored[Array(key.utf8)] = value
            }
            #expect(stored == [[0xC3, 0xA9]: 1, [0x65, 0xCC, 0x81]: 10, [0xE2, 0x84, 0xAB]: 100, [0xC3, 0x85]: 1_000])
            #expect(try await store.total(forKey: decomposed, deadline: .now + .seconds(5)) == 10)
        }
    }

    @Test func theLedgerKeepsOneRowPerNodeAndItsNodeRemovesIt() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            try await store.register(nodeID: node)
            for sequence in 1...5 {
                _ = try await store.apply(batch(["a": 1], node: node, sequence: Int64(sequence)))
            }
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_ledger") == 1)
            #expect(try await scalar(client, "SELECT last_seq FROM flush_ledger") == 5)
            try await store.deregister(nodeID: node, deadline: .now + .seconds(5))
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_ledger") == 0)
        }
    }

    @Test func prunesOnlyEntriesPastTheirOwnRetention() async throws {
        try await withMigratedStore { store, client, _ in
            let gone = UUID().uuidString
            let live = UUID().uuidString
            try await store.register(nodeID: gone)
            try await store.register(nodeID: live)
            try await client.query(
                "UPDATE flush_ledger SET retain_until = now() - interval '1 second' WHERE node_id = \(gone)::uuid",
                logger: testLogger
            )
            #expect(try await store.pruneLedger(deadline: .now + .seconds(5)) == 1)
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_ledger WHERE node_id = \(live)::uuid") == 1)
        }
    }

    @Test func aBatchRetriedAfterItsLedgerEntryExpiredIsNeverAppliedTwice() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            try await store.register(nodeID: node)
            let ambiguous = batch(["a": 5], node: node, sequence: 1)
            _ = try await store.apply(ambiguous)
            // A very long outage: the entry expires and is pruned while the node still retries
            // a batch whose commit answer it never got.
            try await client.query("DELETE FROM flush_ledger", logger: testLogger)
            let retry = try await store.apply(ambiguous, totalsFor: ["a"], mayHaveCommittedBefore: true)
            #expect(retry.disposition == .outcomeUnknown)
            #expect(retry.quarantined == ["a": CounterStore.unknownOutcomeReason])
            #expect(try await allCounters(client) == ["a": 5])
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM quarantined_increments") == 1)

            // A batch that certainly never committed is applied: the entry is made again.
            let fresh = try await store.apply(batch(["a": 2], node: node, sequence: 2), totalsFor: ["a"])
            #expect(fresh.disposition == .applied)
            #expect(fresh.totals == ["a": 7])
        }
    }

    @Test func aStalledFlushHoldsTheShardLocksOnlyForTheStallTimeout() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await SchemaMigrator(client: client, logger: testLogger).migrate(try Migration.bundled())
            let limits = FlushLimits(attemptTimeout: .seconds(20), stallTimeout: .milliseconds(1_500))
            let store = CounterStore(client: client, logger: testLogger, limits: limits)
            let stalled = batch(["hot": 1], node: UUID().uuidString, sequence: 1)
            // Another session opens a flush and then goes silent, as a node under SIGSTOP would.
            let connection = try await PostgresConnection.connect(
                configuration: .init(
                    host: database.configuration.host ?? "127.0.0.1", port: database.configuration.port ?? 5432,
                    username: database.configuration.username, password: nil,
                    database: database.configuration.database, tls: .disable),
                id: 1, logger: testLogger)
            try await connection.query("BEGIN", logger: testLogger)
            try await connection.query(
                """
                SELECT begin_flush(\(AdvisoryLockSpace.clusterShards), \(stalled.clusterShards), \(UUID().uuidString)::uuid, 1,
                    true, 60::float8, 20000, 1500)
                """,
                logger: testLogger
            )
            let started = ContinuousClock.now
            let result = try await store.apply(batch(["hot": 2], node: UUID().uuidString, sequence: 1), totalsFor: ["hot"])
            let waited = ContinuousClock.now - started
            #expect(result.totals == ["hot": 2])
            #expect(waited >= .milliseconds(1_000))
            #expect(waited < .seconds(5))
            try? await connection.close()
        }
    }

    @Test func anUnreachableDatabaseEndsAFlushByItsDeadline() async throws {
        // A port nothing listens on: the pool keeps trying to connect until the deadline.
        var configuration = PostgresClient.Configuration(
            host: "127.0.0.1", port: 9, username: "postgres", password: nil, database: "postgres", tls: .disable)
        configuration.options.connectTimeout = .seconds(30)
        let client = PostgresClient(configuration: configuration, backgroundLogger: testLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = CounterStore(client: client, logger: testLogger)
            let started = ContinuousClock.now
            do {
                _ = try await store.apply(batch(["a": 1], node: UUID().uuidString, sequence: 1), deadline: .now + .milliseconds(500))
                Issue.record("a flush against no database succeeded")
            } catch let error as FlushFailure {
                #expect(!error.mayHaveCommitted)
            }
            #expect(ContinuousClock.now - started < .seconds(3))
        }
    }

    @Test func twoNodesStartingWithDifferentShardCountsCannotBothStart() async throws {
        try await withMigratedStore { _, _, database in
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for shards: Int64 in [64, 128] {
                    group.addTask {
                        try await database.withClient { (client: PostgresClient) -> Bool in
                            let store = CounterStore(client: client, logger: testLogger)
                            do {
                                try await store.agree(onClusterSetting: "cluster_shards", value: shards)
                                return true
                            } catch is StoreError {
                                return false
                            }
                        }
                    }
                }
                var outcomes: [Bool] = []
                for try await started in group { outcomes.append(started) }
                return outcomes
            }
            #expect(outcomes.filter { $0 }.count == 1 && outcomes.count == 2)
        }
    }
}
