import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementStore
import IncrementTesting
import Logging
import PostgresNIO
import Testing

/// `Idempotency-Key`: a request repeated with the same key and body applies once, on whichever
/// node each copy lands, and is answered as the first was.
struct IdempotencyKeyTests {
    private static let key = HTTPField.Name("Idempotency-Key")!

    @Test func copiesOnTwoNodesAtOnceApplyOnce() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            // 20 requests, each sent to both nodes at the same time.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<20 {
                    for client in [a, b] {
                        group.addTask {
                            try await client.send(#"{"key":"twice","value":\#(index + 1)}"#, idempotencyKey: "\"req-\(index)\"").status
                        }
                    }
                }
                for try await status in group {
                    #expect(status == .accepted)
                }
            }
            #expect(try await a.post("/flush", "").status == .ok)
            #expect(try await counters(in: database) == ["twice": (1...20).reduce(0, +)])
        }
    }

    @Test func aRepeatAfterTheCommitGetsTheOriginalAnswerFromAnyNode() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            let first = try await a.send(#"{"key":"k","value":5}"#, idempotencyKey: "abc", wait: true)
            #expect(first.status == .ok)
            #expect(first.text == #"{"key":"k","value":5}"#)
            _ = try await a.post("/increment?wait=commit", #"{"key":"k","value":100}"#)
            // The repeat, on the other node: the first answer (the total right after its flush).
            let repeated = try await b.send(#"{"key":"k","value":5}"#, idempotencyKey: "abc", wait: true)
            #expect(repeated.status == .ok)
            #expect(repeated.text == #"{"key":"k","value":5}"#)
            #expect(repeated.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let fast = try await b.send(#"{"key":"k","value":5}"#, idempotencyKey: "abc")
            #expect(fast.status == .accepted)
            #expect(try await a.post("/flush", "").status == .ok)
            #expect(try await counters(in: database) == ["k": 105])
        }
    }

    @Test func aKeyReusedWithAnotherBodyIsRefusedAndChangesNothing() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            // Still buffered on the same node.
            #expect(try await a.send(#"{"key":"m","value":1}"#, idempotencyKey: "same").status == .accepted)
            let buffered = try await a.send(#"{"key":"m","value":2}"#, idempotencyKey: "same")
            #expect(buffered.status == .unprocessableContent)
            #expect(buffered.errorCode == "idempotency_key_reused")
            // The same request again, still buffered: answered as the first, buffered once.
            #expect(try await a.send(#"{ "value": 1, "key": "m" }"#, idempotencyKey: "same").status == .accepted)
            #expect(try await b.post("/flush", "").status == .ok)
            // Committed: the other node refuses it too, and so does the batch route.
            #expect(try await b.send(#"{"key":"m","value":2}"#, idempotencyKey: "same").errorCode == "idempotency_key_reused")
            let batch = try await b.execute(
                uri: "/increments", method: .post, headers: [Self.key: "same"],
                body: ByteBuffer(string: #"{"increments":[{"key":"m","value":1}]}"#))
            #expect(batch.errorCode == "idempotency_key_reused")
            #expect(try await counters(in: database) == ["m": 1])
        }
    }

    @Test func aBatchRepeatedAppliesOnceAndIsAnsweredAsTheFirst() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            let body = #"{"increments":[{"key":"x","value":1},{"key":"y","value":2},{"key":"x","value":3}]}"#
            for client in [a, b, a] {
                let answer = try await client.execute(
                    uri: "/increments", method: .post, headers: [Self.key: "\"batch-1\""], body: ByteBuffer(string: body))
                #expect(answer.status == .accepted)
                #expect(answer.text == #"{"accepted":3}"#)
                #expect(try await client.post("/flush", "").status == .ok)
            }
            #expect(try await counters(in: database) == ["x": 4, "y": 2])
        }
    }

    @Test func aRepeatWhileTheFirstStillWaitsIsInFlight() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { $0.flush.commitWaitTimeout = .seconds(3) }
        try await withReadyNode(settings) { client in
            try await breakFlushes(database)
            async let first = client.send(#"{"key":"w","value":7}"#, idempotencyKey: "slow", wait: true)
            try await Task.sleep(for: .milliseconds(300))
            let repeated = try await client.send(#"{"key":"w","value":7}"#, idempotencyKey: "slow", wait: true)
            #expect(repeated.status == .conflict)
            #expect(repeated.errorCode == "idempotency_key_in_flight")
            try await breakFlushes(database, false)
            let answer = try await first
            #expect(answer.status == .ok)
            #expect(answer.text == #"{"key":"w","value":7}"#)
        }
        #expect(try await counters(in: database) == ["w": 7])
    }

    @Test func anExpiredKeyIsNewAgainAndPruned() async throws {
        let database = try await TestDatabase.create()
        try await withTwoNodes(database) { a, b in
            #expect(try await a.send(#"{"key":"e","value":1}"#, idempotencyKey: "old", wait: true).status == .ok)
            #expect(try await a.send(#"{"key":"e","value":1}"#, idempotencyKey: "keep", wait: true).status == .ok)
            try await database.withClient { admin in
                try await admin.query(
                    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE idem_key = 'old'",
                    logger: appTestLogger)
            }
            // Past its retention, the key is a new request (even before the prune removes it).
            let again = try await b.send(#"{"key":"e","value":1}"#, idempotencyKey: "old", wait: true)
            #expect(again.text == #"{"key":"e","value":3}"#)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            #expect(try await b.send(#"{"key":"e","value":1}"#, idempotencyKey: "keep", wait: true).text == #"{"key":"e","value":2}"#)
            #expect(try await counters(in: database) == ["e": 3])
        }
        try await database.withClient { admin in
            try await admin.query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'", logger: appTestLogger)
            let store = CounterStore(client: admin, logger: appTestLogger)
            #expect(try await store.pruneIdempotencyKeys(deadline: .now + .seconds(5)) == 2)
        }
    }

    @Test func badHeadersAreRefused() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            for bad in ["\"unterminated", "two words", "\"\"", String(repeating: "k", count: 256), "\"a\\b\""] {
                let answer = try await client.send(#"{"key":"z","value":1}"#, idempotencyKey: bad)
                #expect(answer.status == .badRequest, "\(bad)")
                #expect(answer.errorCode == "invalid_idempotency_key", "\(bad)")
            }
        }
        #expect(try await counters(in: database).isEmpty)
    }
}

extension TestClientProtocol {
    /// `POST /increment` with an `Idempotency-Key`.
    func send(_ body: String, idempotencyKey: String, wait: Bool = false) async throws -> TestResponse {
        try await self.execute(
            uri: wait ? "/increment?wait=commit" : "/increment",
            method: .post,
            headers: [HTTPField.Name("Idempotency-Key")!: idempotencyKey],
            body: ByteBuffer(string: body)
        )
    }
}
