import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

struct ShutdownWithoutDatabaseTests {
    @Test func waitersAreToldWhenTheNodeGivesUpAtShutdown() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { $0.flush.shutdownTimeout = .milliseconds(300) }
        let app = try await buildApplication(settings: settings, logger: appTestLogger)
        let waiting = try await app.test(.router) { client in
            try await client.waitUntilReady()
            try await database.withClient { admin in
                try await admin.query("ALTER TABLE counters RENAME TO counters_away", logger: appTestLogger)
            }
            let request = Task {
                try await client.post("/increment?wait=commit", #"{"key":"a","value":1}"#)
            }
            // Give the request time to be buffered, then shut down with the database failing.
            try await Task.sleep(for: .milliseconds(200))
            return request
        }
        let response = try await waiting.value
        #expect(response.status == .serviceUnavailable)
        #expect(response.errorCode == "not_committed")
    }
}
