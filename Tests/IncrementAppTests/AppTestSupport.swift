import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Logging
import PostgresNIO
import Prometheus

let appTestLogger: Logger = {
    var logger = Logger(label: "app-tests")
    logger.logLevel = .warning
    return logger
}()

/// Node settings against a fresh database. The long default interval means nothing flushes
/// unless a test asks for it (`wait=commit`) or the node shuts down.
func testSettings(
    _ database: TestDatabase,
    flushInterval: Duration = .seconds(60),
    configure: (inout NodeSettings) -> Void = { _ in }
) throws -> NodeSettings {
    var settings = try NodeSettings.defaults(
        database: try DatabaseSettings(url: database.url, environment: [:], poolSize: 4)
    )
    settings.port = 0
    settings.flush.interval = flushInterval
    settings.flush.shutdownTimeout = .seconds(10)
    settings.logLevel = .warning
    // A test that spills names its own directory; others must not share one between databases.
    settings.flush.spillDirectory = nil
    configure(&settings)
    return settings
}

extension TestClientProtocol {
    /// Sends `body` (JSON text) with curl's default content type, as users do.
    @discardableResult
    func post(_ uri: String, _ body: String) async throws -> TestResponse {
        try await self.execute(
            uri: uri,
            method: .post,
            headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: body)
        )
    }

    func get(_ uri: String) async throws -> TestResponse {
        try await self.execute(uri: uri, method: .get)
    }

    /// Waits until the node has prepared its database and says it is ready.
    func waitUntilReady(within limit: Duration = .seconds(15)) async throws {
        let deadline = ContinuousClock.now + limit
        while try await self.get("/readyz").status != .ok {
            guard ContinuousClock.now < deadline else { throw NodeNotReady() }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

extension TestResponse {
    /// The body as text.
    var text: String { String(buffer: self.body) }

    /// The `error` code of a JSON error body.
    var errorCode: String? {
        (try? JSONSerialization.jsonObject(with: Data(self.text.utf8)) as? [String: Any])?["error"] as? String
    }
}

/// Every counter in the database.
func counters(in database: TestDatabase) async throws -> [String: Int64] {
    try await database.withClient { client in
        var counters: [String: Int64] = [:]
        for try await (key, value) in try await client.query("SELECT key, value FROM counters", logger: appTestLogger)
            .decode((String, Int64).self)
        {
            counters[key] = value
        }
        return counters
    }
}

struct NodeNotReady: Error {}

/// Runs `body` against a node built from `settings` (its services running), once it is ready.
func withReadyNode(
    _ settings: NodeSettings,
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    let app = try await buildApplication(settings: settings, logger: appTestLogger)
    try await app.test(.router) { client in
        try await client.waitUntilReady()
        try await body(client)
    }
}

/// Runs `body` with two nodes on `database`, both ready. The long default flush interval
/// means only waits, barriers and shutdown flush.
func withTwoNodes(
    _ database: TestDatabase,
    configure: @escaping @Sendable (inout NodeSettings, _ index: Int) -> Void = { _, _ in },
    _ body: @escaping @Sendable (any TestClientProtocol, any TestClientProtocol) async throws -> Void
) async throws {
    let second = try testSettings(database) { configure(&$0, 1) }
    try await withReadyNode(try testSettings(database) { configure(&$0, 0) }) { a in
        try await withReadyNode(second) { b in
            try await body(a, b)
        }
    }
}

/// Every counter in the database, keyed by the exact bytes of its key.
func countersByBytes(in database: TestDatabase) async throws -> [[UInt8]: Int64] {
    try await database.withClient { client in
        var counters: [[UInt8]: Int64] = [:]
        for try await (key, value) in try await client.query("SELECT key, value FROM counters", logger: appTestLogger)
            .decode((String, Int64).self)
        {
            counters[Array(key.utf8)] = value
        }
        return counters
    }
}

/// Makes every flush fail (the table the upsert writes is renamed), or heals it again.
func breakFlushes(_ database: TestDatabase, _ broken: Bool = true) async throws {
    try await database.withClient { admin in
        if broken {
            try await admin.query("ALTER TABLE counters RENAME TO counters_away", logger: appTestLogger)
        } else {
            try await admin.query("ALTER TABLE counters_away RENAME TO counters", logger: appTestLogger)
        }
    }
}
