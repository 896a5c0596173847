import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

struct IncrementRouteTests {
    @Test func waitCommitAnswersWithTheCommittedTotal() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let buffered = try await client.post("/increment", #"{"key":"page/home","value":5}"#)
            #expect(buffered.status == .accepted)
            #expect(buffered.body.readableBytes == 0)

            let committed = try await client.post("/increment?wait=commit", #"{"key":"page/home","value":3}"#)
            #expect(committed.status == .ok)
            #expect(committed.text == #"{"key":"page/home","value":8}"#)

            let read = try await client.get("/counters/page%2Fhome")
            #expect(read.status == .ok)
            #expect(read.text == #"{"key":"page/home","value":8}"#)
            #expect(try await client.get("/counters/page/home").text == #"{"key":"page/home","value":8}"#)

            let missing = try await client.get("/counters/never")
            #expect(missing.status == .notFound)
            #expect(missing.errorCode == "not_found")
        }
    }

    @Test func concurrentWaitersShareFlushesAndSeeConsistentTotals() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let totals = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        let response = try await client.post("/increment?wait=commit", #"{"key":"shared","value":2}"#)
                        let object = try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any]
                        return (object?["value"] as? NSNumber)?.int64Value ?? -1
                    }
                }
                var totals: [Int64] = []
                for try await total in group { totals.append(total) }
                return totals
            }
            // Each answer is a committed total that includes the caller's own increment.
            #expect(totals.allSatisfy { $0 >= 2 && $0 <= 100 && $0 % 2 == 0 })
            #expect(totals.max() == 100)
        }
        #expect(try await counters(in: database) == ["shared": 100])
    }

    @Test func batchesAreAcceptedWhole() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let accepted = try await client.post(
                "/increments",
                #"{"increments":[{"key":"a","value":1},{"key":"b","value":2},{"key":"a","value":3}]}"#
            )
            #expect(accepted.status == .accepted)
            #expect(accepted.text == #"{"accepted":3}"#)
        }
        // Shutting down flushed them.
        #expect(try await counters(in: database) == ["a": 4, "b": 2])
    }

    @Test func shutdownFlushesPendingIncrements() async throws {
        let database = try await TestDatabase.create()
        let app = try await buildApplication(settings: try testSettings(database), logger: appTestLogger)
        let increments = (0..<300).map { index in ("key-\(index % 37)", Int64(index % 5) - 1) }
        let expected = Dictionary(increments, uniquingKeysWith: +)
        try await app.test(.router) { client in
            try await client.waitUntilReady()
            for (key, delta) in increments {
                let response = try await client.post("/increment", #"{"key":"\#(key)","value":\#(delta)}"#)
                #expect(response.status == .accepted)
            }
            // The interval is a minute: nothing has been written yet.
            let unwritten = try await client.get("/counters/key-1")
            #expect(unwritten.status == .notFound)
        }
        #expect(try await counters(in: database) == expected)
    }

    @Test func quarantinedIncrementsAnswer422AndOthersCommit() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let nearMax = try await client.post("/increment?wait=commit", #"{"key":"big","value":9223372036854775800}"#)
            #expect(nearMax.status == .ok)
            async let overflow = client.post("/increment?wait=commit", #"{"key":"big","value":100}"#)
            async let fine = client.post("/increment?wait=commit", #"{"key":"fine","value":1}"#)
            let (overflowed, succeeded) = try await (overflow, fine)
            #expect(overflowed.status == .unprocessableContent)
            #expect(overflowed.errorCode == "value_out_of_range")
            #expect(succeeded.status == .ok)
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("increment_quarantined_total 1"))
        }
        #expect(try await counters(in: database) == ["big": 9_223_372_036_854_775_800, "fine": 1])
        let quarantined = try await database.withClient { client in
            var rows: [String] = []
            for try await (key, delta) in try await client.query(
                "SELECT key, delta::bigint FROM quarantined_increments", logger: appTestLogger
            ).decode((String, Int64).self) {
                rows.append("\(key)=\(delta)")
            }
            return rows
        }
        #expect(quarantined == ["big=100"])
    }

    @Test func aFullBufferAnswers503WithRetryAfterAndIsNotReady() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { $0.maximumPendingKeys = 2 }
        try await withReadyNode(settings) { client in
            #expect(try await client.get("/readyz").status == .ok)
            #expect(try await client.post("/increment", #"{"key":"a","value":1}"#).status == .accepted)
            #expect(try await client.post("/increment", #"{"key":"b","value":1}"#).status == .accepted)
            let refused = try await client.post("/increment", #"{"key":"c","value":1}"#)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.errorCode == "overloaded")
            #expect(refused.headers[.retryAfter] == "1")
            let refusedBatch = try await client.post("/increments", #"{"increments":[{"key":"d","value":1}]}"#)
            #expect(refusedBatch.status == .serviceUnavailable)
            // A key already pending still takes increments.
            #expect(try await client.post("/increment", #"{"key":"a","value":1}"#).status == .accepted)
            let notReady = try await client.get("/readyz")
            #expect(notReady.status == .serviceUnavailable)
            #expect(notReady.text.contains("buffer full"))
        }
        #expect(try await counters(in: database) == ["a": 2, "b": 1])
    }
}
