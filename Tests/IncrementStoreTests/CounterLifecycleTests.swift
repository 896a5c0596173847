import Foundation
import IncrementCore
import IncrementStore
import PostgresNIO
import Testing

/// Deleting and listing counters, and the rule that keeps a deleted counter deleted: a batch
/// whose barrier is below the delete's (every increment in it was accepted before the delete
/// began) skips the deleted keys when it commits after the delete.
struct CounterLifecycleTests {
    let shardMap = ClusterShardMap(shardCount: 64)

    func batch(
        _ deltas: [CounterKey: Int64], node: String, sequence: Int64, barrier: Int64,
        idempotent: [IdempotentRequest] = []
    ) -> FlushBatch {
        FlushBatch(
            id: BatchID(nodeID: node, sequence: sequence), deltas: deltas, idempotent: idempotent, barrier: barrier,
            shardMap: self.shardMap)
    }

    @Test func deletingACounterAnswersItsTotalAndRemovesIt() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            _ = try await store.apply(self.batch(["a": 7, "b": 2], node: node, sequence: 1, barrier: 0))
            #expect(try await store.deleteCounter("a", barrier: 1, shardMap: self.shardMap, deadline: .now + .seconds(5)) == 7)
            #expect(try await allCounters(client) == ["b": 2])
            #expect(try await store.deleteCounter("a", barrier: 2, shardMap: self.shardMap, deadline: .now + .seconds(5)) == nil)
        }
    }

    /// A batch accepted before the delete (a retry, a spilled batch replayed) cannot bring the
    /// counter back; one accepted after it makes a new counter from zero.
    @Test func onlyIncrementsAcceptedAfterTheDeleteMakeANewCounter() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            let late = UUID().uuidString
            _ = try await store.apply(self.batch(["a": 7], node: node, sequence: 1, barrier: 3))
            #expect(try await store.deleteCounter("a", barrier: 5, shardMap: self.shardMap, deadline: .now + .seconds(5)) == 7)
            // Accepted before barrier 5 (the node had seen barrier 4), committed after the delete.
            let old = try await store.apply(self.batch(["a": 100, "b": 1], node: late, sequence: 1, barrier: 4), totalsFor: ["a", "b"])
            #expect(old.totals == ["b": 1])
            #expect(old.quarantined.isEmpty)
            #expect(try await allCounters(client) == ["b": 1])
            // Accepted after the node saw barrier 5.
            _ = try await store.apply(self.batch(["a": 2], node: node, sequence: 2, barrier: 5))
            #expect(try await allCounters(client) == ["a": 2, "b": 1])
        }
    }

    /// An idempotent request applied before the delete and repeated after it is answered from
    /// its record and applies nothing; an idempotent request accepted before the delete and
    /// committed after it records its key but skips the deleted counter.
    @Test func idempotentRequestsCannotBringADeletedCounterBack() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            func request(_ key: String, _ counter: CounterKey, _ delta: Int64) -> IdempotentRequest {
                IdempotentRequest(key: IdempotencyKey(trusted: key), route: .single, increments: [Increment(key: counter, delta: delta)])
            }
            _ = try await store.apply(self.batch([:], node: node, sequence: 1, barrier: 0, idempotent: [request("first", "a", 4)]))
            #expect(try await allCounters(client) == ["a": 4])
            _ = try await store.deleteCounter("a", barrier: 2, shardMap: self.shardMap, deadline: .now + .seconds(5))
            let repeated = try await store.apply(
                self.batch([:], node: node, sequence: 2, barrier: 2, idempotent: [request("first", "a", 4)]))
            #expect(repeated.idempotencyRecords[IdempotencyKey(trusted: "first")]?.recordedByThisFlush == false)
            let stale = try await store.apply(
                self.batch([:], node: UUID().uuidString, sequence: 1, barrier: 1, idempotent: [request("stale", "a", 9)]))
            #expect(stale.idempotencyRecords[IdempotencyKey(trusted: "stale")]?.recordedByThisFlush == true)
            #expect(try await allCounters(client).isEmpty)
        }
    }

    @Test func aPrefixIsDeletedInBoundedRoundsAndStaysDeleted() async throws {
        try await withMigratedStore { store, client, _ in
            let node = UUID().uuidString
            var deltas: [CounterKey: Int64] = ["user:4": 1, "user:420": 1, "user:43:a": 1, "user:42": 1]
            for index in 0..<25 { deltas[CounterKey(trusted: "user:42:\(index)")] = Int64(index + 1) }
            _ = try await store.apply(self.batch(deltas, node: node, sequence: 1, barrier: 0))
            let prefix = try KeyPrefix(validating: "user:42:")
            var rounds: [PrefixDeletion] = []
            repeat {
                rounds.append(
                    try await store.deleteCounters(
                        prefix: prefix, barrier: Int64(rounds.count + 1), limit: 10, shardMap: self.shardMap,
                        deadline: .now + .seconds(5)))
            } while rounds.last?.more == true && rounds.count < 10
            #expect(rounds == [.init(deleted: 10, more: true), .init(deleted: 10, more: true), .init(deleted: 5, more: false)])
            #expect(try await allCounters(client) == ["user:4": 1, "user:420": 1, "user:43:a": 1, "user:42": 1])
            // A late batch accepted before the first round skips every key with the prefix,
            // including one that never existed.
            _ = try await store.apply(
                self.batch(["user:42:0": 5, "user:42:new": 1, "user:43:a": 1], node: UUID().uuidString, sequence: 1, barrier: 0))
            #expect(try await allCounters(client) == ["user:4": 1, "user:420": 1, "user:43:a": 2, "user:42": 1])
            #expect(
                try await store.deleteCounters(prefix: prefix, barrier: 9, limit: 10, shardMap: self.shardMap, deadline: .now + .seconds(5))
                    == .init(deleted: 0, more: false))
        }
    }

    /// Keys come back in the order of their bytes, a page at a time, whatever the database's collation.
    @Test func listingPagesThroughAPrefixInByteOrder() async throws {
        try await withMigratedStore { store, _, _ in
            let keys: [CounterKey] = ["p:b", "p:a", "p:B", "p:a\u{7F}", "p:é", "p:日本", "p:\u{10FFFF}", "p", "q:a", "o:z"]
            _ = try await store.apply(
                self.batch(Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, Int64($0)) }), node: UUID().uuidString,
                           sequence: 1, barrier: 0))
            let prefix = try KeyPrefix(validating: "p:")
            var listed: [String] = []
            var pages = 0
            var after: CounterKey?
            repeat {
                let page = try await store.counters(prefix: prefix, after: after, limit: 3, deadline: .now + .seconds(5))
                listed += page.counters.map(\.key.string)
                after = page.next
                pages += 1
            } while after != nil && pages < 10
            #expect(listed == ["p:B", "p:a", "p:a\u{7F}", "p:b", "p:é", "p:日本", "p:\u{10FFFF}"])
            #expect(pages == 3)
            let everything = try await store.counters(prefix: nil, after: "p:é", limit: 1_000, deadline: .now + .seconds(5))
            #expect(everything.counters.map(\.key.string) == ["p:日本", "p:\u{10FFFF}", "q:a"])
            #expect(everything.next == nil)
        }
    }

    /// The listing's query is an index range scan on the byte-order index, not a sort of the table.
    @Test func listingUsesTheByteOrderIndex() async throws {
        try await withMigratedStore { _, client, _ in
            let plan = try await client.withConnection { connection in
                try await connection.query("SET enable_seqscan = off", logger: testLogger)
                try await connection.query("SET enable_bitmapscan = off", logger: testLogger)
                var lines: [String] = []
                for try await line in try await connection.query(
                    """
                    EXPLAIN SELECT key, value FROM counters WHERE key COLLATE "C" >= 'p:' AND key COLLATE "C" < 'p;'
                    ORDER BY key COLLATE "C" LIMIT 101
                    """,
                    logger: testLogger
                ).decode(String.self) {
                    lines.append(line)
                }
                return lines.joined(separator: "\n")
            }
            #expect(plan.contains("counters_key_bytes"), "\(plan)")
            #expect(!plan.contains("Sort"), "\(plan)")
        }
    }
}
