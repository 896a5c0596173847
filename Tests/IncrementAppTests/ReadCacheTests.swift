import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

/// The read cache on real nodes and a real PostgreSQL: values served from memory, and every
/// change, whichever node or session made it, seen within the staleness bound.
struct ReadCacheTests {
    static let bound = Duration.milliseconds(200)

    /// A read that queried is served from the cache the next time.
    @Test func aSecondReadIsServedFromTheCache() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            #expect(try await client.post("/increment?wait=commit", #"{"key":"k","value":5}"#).status == .ok)
            // The first read queries; the cache serves once its listener heard a heartbeat back.
            var hits = 0
            var attempts = 0
            while hits == 0, attempts < 100 {
                let counter = try await client.get("/counters/k")
                let absent = try await client.get("/counters/absent")
                #expect(counter.text == #"{"key":"k","value":5}"#)
                #expect(absent.status == .notFound)
                hits = try await readCacheHits(client)
                attempts += 1
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(hits > 0)
            // This node's own commit is seen at once: its flush tells the cache before answering.
            #expect(try await client.post("/increment?wait=commit", #"{"key":"k","value":1}"#).status == .ok)
            #expect(try await client.get("/counters/k").text == #"{"key":"k","value":6}"#)
        }
    }

    /// Node b has the key cached when node a commits a change, deletes it, or a session outside
    /// the nodes updates it: b serves the new value, never the old one later than the bound.
    @Test func anotherNodesCommitsAndOutsideChangesAreSeenWithinTheBound() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            #expect(try await b.get("/counters/k").status == .notFound)
            #expect(try await b.get("/counters/k").status == .notFound)

            try await expectSeen(#"{"key":"k","value":5}"#, at: b) { () async throws in
                let answer = try await a.post("/increment?wait=commit", #"{"key":"k","value":5}"#)
                #expect(answer.status == .ok)
            }
            try await expectSeen(#"{"key":"k","value":8}"#, at: b) { () async throws in
                #expect(try await a.post("/increments", #"{"increments":[{"key":"k","value":3},{"key":"x","value":1}]}"#).status == .accepted)
                #expect(try await a.post("/flush", "").status == .ok)
            }
            try await expectSeen(#"{"key":"k","value":100}"#, at: b) { () async throws in
                try await database.withClient { client in
                    _ = try await client.query("UPDATE counters SET value = 100 WHERE key = 'k'", logger: appTestLogger)
                }
            }
            try await expectSeen(nil, at: b) { () async throws in
                let answer = try await a.execute(uri: "/counters/k", method: .delete)
                #expect(answer.status == .ok)
            }
            let metrics = try await b.get("/metrics").text
            #expect(metrics.contains("increment_read_cache_hits_total"))
        }
    }

    /// With the cache off, every read queries.
    @Test func aZeroBoundTurnsTheCacheOff() async throws {
        let database = try await TestDatabase.create()
        let uncached = try testSettings(database) { $0.readCacheStaleness = .zero }
        try await withReadyNode(uncached) { client in
            #expect(try await client.post("/increment?wait=commit", #"{"key":"k","value":5}"#).status == .ok)
            #expect(try await client.get("/counters/k").text == #"{"key":"k","value":5}"#)
            #expect(try await client.get("/counters/k").text == #"{"key":"k","value":5}"#)
            let hits = try await readCacheHits(client)
            #expect(hits == 0)
        }
    }
}

/// The node's `increment_read_cache_hits_total`.
private func readCacheHits(_ node: any TestClientProtocol) async throws -> Int {
    let metrics = try await node.get("/metrics").text
    let line = metrics.split(separator: "\n").first { $0.hasPrefix("increment_read_cache_hits_total ") }
    return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
}

/// Runs `change`, then reads `/counters/k` at `node` until it answers `expected` (nil: 404):
/// every older answer must come within ``ReadCacheTests/bound`` of the change's end.
private func expectSeen(
    _ expected: String?,
    at node: any TestClientProtocol,
    after change: () async throws -> Void
) async throws {
    // Served from the cache before the change.
    _ = try await node.get("/counters/k")
    try await change()
    let changed = ContinuousClock.now
    while true {
        let answer = try await node.get("/counters/k")
        let now = ContinuousClock.now
        let seen = expected.map { answer.text == $0 } ?? (answer.status == .notFound)
        if seen { return }
        guard now - changed < ReadCacheTests.bound else {
            Issue.record("still \(answer.text) \(now - changed) after the change")
            return
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}
