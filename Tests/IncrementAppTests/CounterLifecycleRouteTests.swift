import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

/// `DELETE /counters/{key}`, `DELETE /counters?prefix=` and `GET /counters?prefix=`, on real nodes.
struct CounterLifecycleRouteTests {
    /// What every node buffered before the delete is applied, then deleted and answered; what a
    /// node accepts after makes a new counter from zero.
    @Test func aDeleteTakesWhatEveryNodeBufferedAndLaterIncrementsStartFromZero() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            #expect(try await a.post("/increment", #"{"key":"k","value":5}"#).status == .accepted)
            #expect(try await b.post("/increment", #"{"key":"k","value":3}"#).status == .accepted)
            #expect(try await b.post("/increment", #"{"key":"other","value":1}"#).status == .accepted)
            let deleted = try await a.execute(uri: "/counters/k", method: .delete)
            #expect(deleted.status == .ok)
            #expect(deleted.text == #"{"key":"k","value":8}"#)
            #expect(try await a.get("/counters/k").status == .notFound)
            let again = try await a.execute(uri: "/counters/k", method: .delete)
            #expect(again.status == .notFound)
            #expect(again.errorCode == "not_found")
            #expect(try await b.post("/increment?wait=commit", #"{"key":"k","value":2}"#).text == #"{"key":"k","value":2}"#)
        }
        #expect(try await counters(in: database) == ["k": 2, "other": 1])
    }

    @Test func aPrefixDeleteTakesOnlyKeysWithThosePrefixBytes() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let keys = (0..<5).map { #"{"key":"user:42:\#($0)","value":1}"# } + [
                #"{"key":"user:420","value":1}"#, #"{"key":"user:43:x","value":1}"#,
            ]
            #expect(try await client.post("/increments", #"{"increments":[\#(keys.joined(separator: ","))]}"#).status == .accepted)
            let round = try await client.execute(uri: "/counters?prefix=user%3A42%3A", method: .delete)
            #expect(round.status == .ok)
            #expect(round.text == #"{"deleted":5,"more":false}"#)
            #expect(try await client.get("/metrics").text.contains("increment_deleted_counters_total 5"))
            #expect(try await client.post("/increment?wait=commit", #"{"key":"user:42:0","value":7}"#).status == .ok)
        }
        #expect(try await counters(in: database) == ["user:420": 1, "user:43:x": 1, "user:42:0": 7])
    }

    /// A spilled batch replayed after the delete (its node stopped during an outage) cannot
    /// bring the deleted counter back; the batch's other keys apply.
    @Test func aSpilledBatchReplayedAfterTheDeleteSkipsTheDeletedKey() async throws {
        let database = try await TestDatabase.create()
        let spill = FileManager.default.temporaryDirectory.appendingPathComponent("spill-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: spill) }
        let spilling = try testSettings(database) {
            $0.flush.shutdownTimeout = .seconds(2)
            $0.flush.spillDirectory = spill
        }
        do {
            try await buildApplication(settings: spilling, logger: appTestLogger).test(.router) { client in
                try await client.waitUntilReady()
                #expect(try await client.post("/increment?wait=commit", #"{"key":"gone","value":1}"#).status == .ok)
                try await breakFlushes(database)
                #expect(try await client.post("/increments", #"{"increments":[{"key":"gone","value":4},{"key":"kept","value":2}]}"#).status == .accepted)
            }
        } catch is FinalFlushIncomplete {}
        #expect(try FileManager.default.contentsOfDirectory(atPath: spill).contains { $0.hasSuffix(".spill.json") })
        try await breakFlushes(database, false)
        // The spilling node's registry row stays behind; once it is silent past the gone
        // threshold, the delete's barrier does not wait for it.
        let deleting = try testSettings(database) { $0.cluster.nodeGoneAfter = .seconds(1) }
        try await Task.sleep(for: .milliseconds(1_500))
        try await withReadyNode(deleting) { client in
            let deleted = try await client.execute(uri: "/counters/gone", method: .delete)
            #expect(deleted.text == #"{"key":"gone","value":1}"#)
        }
        try await withReadyNode(spilling) { client in
            let gone = try await client.get("/counters/gone")
            let kept = try await client.get("/counters/kept")
            #expect(gone.status == .notFound)
            #expect(kept.text == #"{"key":"kept","value":2}"#)
        }
        #expect(try await counters(in: database) == ["kept": 2])
    }

    @Test func aDeleteALiveNodeDoesNotConfirmDeletesNothing() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { $0.cluster.barrierTimeout = .milliseconds(800) }
        try await withReadyNode(settings) { client in
            #expect(try await client.post("/increment?wait=commit", #"{"key":"k","value":1}"#).status == .ok)
            try await database.withClient { admin in
                try await admin.query(
                    """
                    INSERT INTO cluster_nodes (node_id, address, version, state)
                    VALUES ('00000000-0000-0000-0000-00000000000b', 'stalled-node:8080', 'test', 'serving')
                    """,
                    logger: appTestLogger)
            }
            for uri in ["/counters/k", "/counters?prefix=k"] {
                let refused = try await client.execute(uri: uri, method: .delete)
                #expect(refused.status == .serviceUnavailable, "\(uri)")
                #expect(refused.errorCode == "barrier_timeout", "\(uri)")
                #expect(refused.text.contains("stalled-node:8080"), "\(uri)")
            }
            #expect(try await client.get("/counters/k").text == #"{"key":"k","value":1}"#)
        }
        #expect(try await counters(in: database) == ["k": 1])
    }

    @Test func aListingPagesThroughAPrefixInByteOrder() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let keys = ["p:b", "p:a", "p:B", "p:é", "p:a/b", "q:a", "p"]
            let items = keys.map { #"{"key":"\#($0)","value":1}"# }.joined(separator: ",")
            #expect(try await client.post("/increments", #"{"increments":[\#(items)]}"#).status == .accepted)
            #expect(try await client.post("/flush", "").status == .ok)
            let first = try await client.get("/counters?prefix=p%3A&limit=2")
            #expect(first.text == #"{"counters":[{"key":"p:B","value":1},{"key":"p:a","value":1}],"next":"p:a"}"#)
            let second = try await client.get("/counters?prefix=p%3A&limit=2&after=p%3Aa")
            #expect(second.text == #"{"counters":[{"key":"p:a/b","value":1},{"key":"p:b","value":1}],"next":"p:b"}"#)
            let last = try await client.get("/counters?prefix=p%3A&limit=2&after=p%3Ab")
            #expect(last.text == #"{"counters":[{"key":"p:é","value":1}],"next":null}"#)
            let strong = try await client.get("/counters?prefix=q&consistency=strong")
            #expect(strong.text == #"{"counters":[{"key":"q:a","value":1}],"next":null}"#)
            let everything = try await client.get("/counters")
            #expect(everything.status == .ok)
            #expect(everything.text.hasPrefix(#"{"counters":[{"key":"p","value":1},"#))
        }
    }

    /// Bad parameters get `400 invalid_parameter` naming the parameter, and change nothing.
    @Test func badListingAndDeleteParametersAreRefusedByName() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            #expect(try await client.post("/increment?wait=commit", #"{"key":"a","value":1}"#).status == .ok)
            let refusals: [(method: HTTPRequest.Method, uri: String, code: String, names: String)] = [
                (.get, "/counters?prefix=a&key=a", "invalid_parameter", "prefix"),
                (.get, "/counters?key=a&limit=5", "invalid_parameter", "limit"),
                (.get, "/counters?key=a&after=a", "invalid_parameter", "after"),
                (.get, "/counters?limit=0", "invalid_parameter", "limit"),
                (.get, "/counters?limit=1001", "invalid_parameter", "limit"),
                (.get, "/counters?limit=ten", "invalid_parameter", "limit"),
                (.get, "/counters?after=", "invalid_parameter", "after"),
                (.get, "/counters?after=a%00b", "invalid_parameter", "after"),
                (.get, "/counters?prefix=", "invalid_parameter", "prefix"),
                (.get, "/counters?prefix=%ZZ", "invalid_parameter", "prefix"),
                (.delete, "/counters", "missing_field", "prefix"),
                (.delete, "/counters?prefix=", "invalid_parameter", "prefix"),
                (.delete, "/counters?key=a", "invalid_parameter", "key"),
                (.delete, "/counters/a%00", "invalid_key", "key"),
            ]
            for refusal in refusals {
                let response = try await client.execute(uri: refusal.uri, method: refusal.method)
                let call = "\(refusal.method) \(refusal.uri)"
                #expect(response.status == .badRequest, "\(call)")
                #expect(response.errorCode == refusal.code, "\(call): \(response.text)")
                #expect(response.text.contains(refusal.names), "\(call): \(response.text)")
            }
        }
        #expect(try await counters(in: database) == ["a": 1])
    }
}
