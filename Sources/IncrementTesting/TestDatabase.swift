import Foundation
import Logging
import PostgresNIO

/// A fresh, empty database for one test, on the PostgreSQL named by `TEST_DATABASE_URL`
/// (which `scripts/test.sh` starts in a throwaway directory).
public struct TestDatabase: Sendable {
    /// The environment variable naming the server's maintenance database.
    public static let environmentVariable = "TEST_DATABASE_URL"

    /// The new database's name.
    public let name: String
    /// A `postgres://` URL of the new database.
    public let url: String
    /// A client configuration for the new database.
    public let configuration: PostgresClient.Configuration

    /// Why no database could be made.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates a database with a unique name.
    public static func create() async throws -> TestDatabase {
        guard let server = ProcessInfo.processInfo.environment[Self.environmentVariable],
            let components = URLComponents(string: server), let host = components.host
        else {
            throw Unavailable(
                description: "\(Self.environmentVariable) is not set: run the tests with scripts/test.sh, which starts PostgreSQL"
            )
        }
        let user = components.user ?? "postgres"
        let port = components.port ?? 5432
        let name = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let logger = Logger(label: "test-database")
        let admin = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: components.password, database: "postgres", tls: .disable
        )
        let connection = try await PostgresConnection.connect(configuration: admin, id: 0, logger: logger)
        do {
            // The name is generated above from a UUID: no input reaches this statement.
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: components.password, database: name, tls: .disable
        )
        configuration.options.maximumConnections = 8
        let url = "postgres://\(user)@\(host):\(port)/\(name)?sslmode=disable"
        return TestDatabase(name: name, url: url, configuration: configuration)
    }

    /// Runs `body` with a running client of this database.
    @discardableResult
    public func withClient<Result: Sendable>(
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        var logger = Logger(label: "test-client")
        logger.logLevel = .error
        let client = PostgresClient(configuration: self.configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
