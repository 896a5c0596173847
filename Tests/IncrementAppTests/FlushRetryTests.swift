import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

struct FlushRetryTests {
    @Test func aFailedFlushIsRetriedUntilItCommitsAndNothingIsLost() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database, flushInterval: .milliseconds(50))
        try await withReadyNode(settings) { client in
            _ = try await client.post("/increment?wait=commit", #"{"key":"a","value":1}"#)
            // Make every flush fail: the table the upsert writes is gone.
            try await database.withClient { admin in
                try await admin.query("ALTER TABLE counters RENAME TO counters_away", logger: appTestLogger)
            }
            for _ in 0..<10 {
                #expect(try await client.post("/increment", #"{"key":"a","value":2}"#).status == .accepted)
                try await Task.sleep(for: .milliseconds(30))
            }
            // Under a loaded machine the flusher may take a while to get its turn: wait for the
            // failures to be counted, within a bound, rather than for a fixed time.
            let deadline = ContinuousClock.now + .seconds(15)
            while try await client.get("/metrics").text.contains("increment_flush_failures_total 0"),
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(!(try await client.get("/metrics").text.contains("increment_flush_failures_total 0")))
            #expect(try await client.get("/readyz").status == .serviceUnavailable)

            try await database.withClient { admin in
                try await admin.query("ALTER TABLE counters_away RENAME TO counters", logger: appTestLogger)
            }
            let committed = try await client.post("/increment?wait=commit", #"{"key":"a","value":100}"#)
            #expect(committed.text == #"{"key":"a","value":121}"#)
            #expect(try await client.get("/readyz").status == .ok)
            #expect(try await client.get("/metrics").text.contains("increment_flush_retries_total"))
        }
        #expect(try await counters(in: database) == ["a": 121])
    }
}
