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
            #expect(!first.wasAlreadyApplied)
            let second = try await store.apply(batch(["a": 5], node: node, sequence: 2), totalsFor: ["a"])
            #expect(second.totals == ["a": 7])
            #expect(try await store.value(forKey: "a") == 7)
            #expect(try await store.value(forKey: "missing") == nil)
            #expect(try await allCounters(client) == ["a": 7, "b": -3])
        }
    }

    @Test func aRetriedBatchAppliesOnce() async throws {
        try await withMigratedStore { store, client, _ in
            let retried = batch(["a": 10, "b": 1], node: UUID().uuidString, sequence: 1)
            _ = try await store.apply(retried)
            // The same id again, as after a commit whose acknowledgement was lost.
            let again = try await store.apply(retried, totalsFor: ["a"])
            #expect(again.wasAlreadyApplied)
            #expect(again.totals == ["a": 10])
            #expect(try await allCounters(client) == ["a": 10, "b": 1])
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_batches") == 1)
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
                "SELECT key, delta FROM quarantined_increments WHERE seq = 2", logger: testLogger
            ).decode((String, Int64).self) {
                kept[key] = delta
            }
            #expect(kept == ["big": 5, "small": -5])

            // A retry of the batch reports the same quarantine and applies nothing.
            let retry = try await store.apply(
                batch(["big": 5, "small": -5, "fine": 3], node: node, sequence: 2),
                totalsFor: ["big", "fine"]
            )
            #expect(retry.wasAlreadyApplied)
            #expect(Set(retry.quarantined.keys) == ["big", "small"])
            #expect(retry.totals == ["fine": 3])
        }
    }

    @Test func twoNodesFlushingOverlappingHotKeysEndExactWithoutDeadlock() async throws {
        try await withMigratedStore { store, client, database in
            let deadlocksBefore = try await scalar(
                client, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            let nodes = 4
            let flushesPerNode = 40
            let hotKeys = (0..<20).map { "hot-\($0)" }
            // Each node runs its own client, as separate processes would.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in 0..<nodes {
                    group.addTask {
                        try await database.withClient { nodeClient in
                            let nodeStore = CounterStore(client: nodeClient, logger: testLogger)
                            let nodeID = UUID().uuidString
                            for sequence in 1...flushesPerNode {
                                var deltas: [String: Int64] = [:]
                                for (index, key) in hotKeys.enumerated() where (index + sequence + node) % 3 != 0 {
                                    deltas[key] = Int64(node + 1)
                                }
                                deltas["own-\(node)-\(sequence % 5)"] = 1
                                _ = try await nodeStore.apply(batch(deltas, node: nodeID, sequence: Int64(sequence)))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            var expected: [String: Int64] = [:]
            for node in 0..<nodes {
                for sequence in 1...flushesPerNode {
                    for (index, key) in hotKeys.enumerated() where (index + sequence + node) % 3 != 0 {
                        expected[key, default: 0] += Int64(node + 1)
                    }
                    expected["own-\(node)-\(sequence % 5)", default: 0] += 1
                }
            }
            #expect(try await allCounters(client) == expected)
            let deadlocksAfter = try await scalar(
                client, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            #expect(deadlocksAfter == deadlocksBefore)
            _ = store
        }
    }

    @Test func prunesOldLedgerRowsOnly() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            _ = try await store.apply(batch(["a": 1], node: node, sequence: 1))
            _ = try await store.apply(batch(["a": 1], node: node, sequence: 2))
            try await client.query("UPDATE flush_batches SET applied_at = now() - interval '2 hours' WHERE seq = 1", logger: testLogger)
            #expect(try await store.pruneLedger(olderThan: .seconds(3_600)) == 1)
            #expect(try await scalar(client, "SELECT count(*)::bigint FROM flush_batches") == 1)
        }
    }
}
