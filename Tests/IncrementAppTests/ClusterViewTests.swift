import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Logging
import PostgresNIO
import Testing

/// The node registry (`GET /cluster`), flush barriers (`POST /flush`), strong reads and
/// many-key reads, with two nodes on one real database.
struct ClusterViewTests {
    /// Two nodes named node-a and node-b, heartbeating every 100 ms.
    private func twoNodes(
        _ database: TestDatabase,
        configure: @escaping @Sendable (inout NodeSettings) -> Void = { _ in },
        _ body: @escaping @Sendable (any TestClientProtocol, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await withTwoNodes(database, configure: { settings, index in
            settings.cluster.advertisedAddress = index == 0 ? "node-a" : "node-b"
            settings.cluster.heartbeatInterval = .milliseconds(100)
            configure(&settings)
        }, body)
    }

    @Test func aStrongReadSeesWhatAnotherNodeAcceptedAndAPlainReadNeedNot() async throws {
        let database = try await TestDatabase.create()
        try await self.twoNodes(database) { a, b in
            for round in 1...5 {
                #expect(try await a.post("/increment", #"{"key":"ryw","value":2}"#).status == .accepted)
                if round == 1 {
                    // Nothing flushed yet: the committed value does not exist.
                    #expect(try await b.get("/counters/ryw").status == .notFound)
                }
                let strong = try await b.get("/counters/ryw?consistency=strong")
                #expect(strong.status == .ok)
                #expect(strong.text == #"{"key":"ryw","value":\#(2 * round)}"#)
            }
        }
    }

    /// The history the status page draws: samples of the registry, each naming the live nodes.
    @Test func theHistoryHoldsSamplesOfEveryLiveNode() async throws {
        let database = try await TestDatabase.create()
        try await self.twoNodes(database) { a, _ in
            let deadline = ContinuousClock.now + .seconds(10)
            var addresses: [Set<String>] = []
            while ContinuousClock.now < deadline {
                let history = try await a.get("/cluster/history")
                let object = try JSONSerialization.jsonObject(with: Data(history.text.utf8)) as? [String: Any]
                let samples = object?["samples"] as? [[String: Any]] ?? []
                addresses = samples.map { sample in
                    Set((sample["nodes"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String })
                }
                if addresses.filter({ $0 == ["node-a", "node-b"] }).count >= 2 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(addresses.filter { $0 == ["node-a", "node-b"] }.count >= 2, "\(addresses)")
        }
    }

    @Test func postFlushWaitsForEveryNodeAndTheClusterListsThem() async throws {
        let database = try await TestDatabase.create()
        try await self.twoNodes(database) { a, b in
            #expect(try await a.post("/increment", #"{"key":"x","value":1}"#).status == .accepted)
            #expect(try await b.post("/increment", #"{"key":"y","value":5}"#).status == .accepted)
            // Both heartbeat with their pending key (every 100 ms; longer on a loaded machine).
            var before: [String: Any]?
            var nodes: [[String: Any]] = []
            let deadline = ContinuousClock.now + .seconds(5)
            repeat {
                try await Task.sleep(for: .milliseconds(100))
                before = try JSONSerialization.jsonObject(with: Data(try await a.get("/cluster").text.utf8)) as? [String: Any]
                nodes = before?["nodes"] as? [[String: Any]] ?? []
            } while !(nodes.count == 2 && nodes.allSatisfy { $0["pending_keys"] as? Int == 1 }) && ContinuousClock.now < deadline
            #expect(Set(nodes.compactMap { $0["address"] as? String }) == ["node-a", "node-b"])
            #expect(nodes.allSatisfy { $0["status"] as? String == "live" && $0["state"] as? String == "serving" })
            #expect(nodes.allSatisfy { $0["pending_keys"] as? Int == 1 })
            #expect(before?["live"] as? Int == 2)

            let flush = try await a.post("/flush", "")
            #expect(flush.status == .ok)
            #expect(try await counters(in: database) == ["x": 1, "y": 5])
        }
    }

    @Test func manyKeysInOneReadReportTheAbsentOnes() async throws {
        let database = try await TestDatabase.create()
        try await self.twoNodes(database) { a, b in
            _ = try await a.post("/increments", #"{"increments":[{"key":"a","value":1},{"key":"b/c","value":-4}]}"#)
            let read = try await b.get("/counters?key=missing&key=b%2Fc&key=a&key=a&consistency=strong")
            #expect(read.status == .ok)
            #expect(read.text == #"{"absent":["missing"],"counters":[{"key":"b/c","value":-4},{"key":"a","value":1}]}"#)
            // Without keys, a listing.
            #expect(try await b.get("/counters").text == #"{"counters":[{"key":"a","value":1},{"key":"b/c","value":-4}],"next":null}"#)
            #expect(try await b.get("/counters?key=a&consistency=eventually").errorCode == "invalid_parameter")
            #expect(try await b.get("/counters?key=%FF").errorCode == "invalid_key")
            let tooMany = (0...1_000).map { "key=k\($0)" }.joined(separator: "&")
            #expect(try await b.get("/counters?\(tooMany)").errorCode == "too_many_items")
        }
    }

    @Test func aLiveNodeThatDoesNotConfirmFailsTheStrongReadNamingItAndAGoneOneIsNotWaitedFor() async throws {
        let database = try await TestDatabase.create()
        try await self.twoNodes(database, configure: { settings in
            // Long enough for node-a to confirm on a loaded machine (600 ms was not, in one run;
            // 1.5 s was not beside a Docker build).
            settings.cluster.barrierTimeout = .seconds(3)
            settings.cluster.nodeGoneAfter = .seconds(8)
        }) { a, b in
            // A node that heartbeats but never flushes for barriers (stalled mid-flush, say).
            try await database.withClient { admin in
                try await admin.query(
                    """
                    INSERT INTO cluster_nodes (node_id, address, version, state)
                    VALUES ('00000000-0000-0000-0000-00000000000a', 'stalled-node:8080', 'test', 'serving')
                    """,
                    logger: appTestLogger
                )
            }
            _ = try await a.post("/increment", #"{"key":"k","value":3}"#)
            let refused = try await b.get("/counters/k?consistency=strong")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "barrier_timeout")
            #expect(refused.text.contains("stalled-node:8080"))
            #expect(!refused.text.contains("node-a"))
            #expect(refused.headers[.retryAfter] == "1")
            #expect(try await b.get("/metrics").text.contains("increment_barrier_timeouts_total 1"))

            // Silent for longer than the gone threshold: shown gone, no longer waited for.
            try await database.withClient { admin in
                try await admin.query(
                    "UPDATE cluster_nodes SET heartbeat_at = now() - interval '1 minute' WHERE address = 'stalled-node:8080'",
                    logger: appTestLogger
                )
            }
            #expect(try await b.get("/counters/k?consistency=strong").text == #"{"key":"k","value":3}"#)
            let view = try await a.get("/cluster").text
            #expect(view.contains(#""gone":1"#))
        }
    }

    @Test func aCleanShutdownLeavesTheRegistry() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let deadline = ContinuousClock.now + .seconds(5)
            while try await client.get("/cluster").text.contains(#""live":0"#), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await client.get("/cluster").text.contains(#""live":1"#))
        }
        let rows = try await database.withClient { admin in
            var count = 0
            for try await n in try await admin.query("SELECT count(*)::int FROM cluster_nodes", logger: appTestLogger)
                .decode(Int.self)
            { count = n }
            return count
        }
        #expect(rows == 0)
    }
}
