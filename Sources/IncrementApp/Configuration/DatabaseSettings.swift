import Configuration
import Foundation
import NIOSSL
import PostgresNIO

/// How to reach PostgreSQL: a `DATABASE_URL`, or libpq's `PG*` variables.
public struct DatabaseSettings: Sendable, Equatable {
    /// Whether to use TLS, as libpq's `sslmode` says it.
    public enum TLSMode: String, Sendable {
        case disable
        case prefer
        case require
    }

    /// Host name, address, or a Unix socket directory (starting with `/`).
    public var host: String
    /// The port.
    public var port: Int
    /// The role to log in as.
    public var username: String
    /// The password, if any.
    public var password: String?
    /// The database name.
    public var database: String
    /// Whether to use TLS.
    public var tlsMode: TLSMode
    /// The most connections the node opens.
    public var poolSize: Int
    /// Whether reads use statements prepared on each connection (parsed and planned once).
    public var usesPreparedStatements = true

    /// Creates database settings.
    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        username: String = "postgres",
        password: String? = nil,
        database: String = "postgres",
        tlsMode: TLSMode = .prefer,
        poolSize: Int = 4
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tlsMode = tlsMode
        self.poolSize = poolSize
    }

    /// The `PG*` variables libpq reads, by name.
    static let libpqVariables = ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"]

    /// Reads the `PG*` variables (also accepted as `--pghost` and so on).
    static func libpqEnvironment(from reader: ConfigReader) -> [String: String] {
        var environment: [String: String] = [:]
        for name in Self.libpqVariables {
            environment[name] = reader.string(forKey: ConfigKey(name.lowercased()), isSecret: name == "PGPASSWORD")
        }
        return environment
    }

    /// Settings from a `postgres://` URL if given, else from `PG*` variables, else libpq's defaults.
    public init(url: String?, environment: [String: String], poolSize: Int) throws {
        self.init(poolSize: poolSize)
        self.host = environment["PGHOST"] ?? "127.0.0.1"
        if let port = environment["PGPORT"] {
            guard let value = Int(port), (1...65_535).contains(value) else {
                throw SettingsError(setting: "PGPORT", reason: "\"\(port)\" is not a port")
            }
            self.port = value
        }
        self.username = environment["PGUSER"] ?? "postgres"
        self.password = environment["PGPASSWORD"]
        self.database = environment["PGDATABASE"] ?? self.username
        if let mode = environment["PGSSLMODE"] {
            self.tlsMode = try Self.tlsMode(mode, setting: "PGSSLMODE")
        }
        if let url {
            try self.apply(url: url)
        }
    }

    private mutating func apply(url text: String) throws {
        guard let components = URLComponents(string: text),
            components.scheme == "postgres" || components.scheme == "postgresql"
        else {
            throw SettingsError(setting: "DATABASE_URL", reason: "must look like postgres://user:password@host:port/database")
        }
        if let host = components.host, !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.user, !user.isEmpty { self.username = user.removingPercentEncoding ?? user }
        if let password = components.password { self.password = password.removingPercentEncoding ?? password }
        let path = components.path.drop { $0 == "/" }
        if !path.isEmpty { self.database = String(path) }
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                self.tlsMode = try Self.tlsMode(item.value ?? "", setting: "DATABASE_URL sslmode")
            case "host":
                // libpq's way to name a Unix socket directory: ?host=/var/run/postgresql
                if let host = item.value, !host.isEmpty { self.host = host }
            default:
                continue
            }
        }
    }

    private static func tlsMode(_ text: String, setting: String) throws -> TLSMode {
        switch text {
        case "disable", "allow": return .disable
        case "prefer": return .prefer
        case "require", "verify-ca", "verify-full": return .require
        default: throw SettingsError(setting: setting, reason: "\"\(text)\" is not an sslmode")
        }
    }

    /// libpq's reading of a host that is a directory: the server's socket in it.
    private var unixSocketPath: String? {
        self.host.hasPrefix("/") ? "\(self.host)/.s.PGSQL.\(self.port)" : nil
    }

    /// The postgres-nio client configuration.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        if let unixSocketPath = self.unixSocketPath {
            configuration = .init(
                unixSocketPath: unixSocketPath,
                username: self.username,
                password: self.password,
                database: self.database
            )
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch self.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(.makeClientConfiguration())
            case .require: tls = .require(.makeClientConfiguration())
            }
            configuration = .init(
                host: self.host,
                port: self.port,
                username: self.username,
                password: self.password,
                database: self.database,
                tls: tls
            )
        }
        configuration.options.maximumConnections = self.poolSize
        // Every release of a connection arms the pool's keep-alive (30 s) and idle (60 s) timers, and
        // a cancelled timer holds its memory until it would have fired: about 130 MB at 2,000 reads/s.
        // No keep-alive queries (the node's probe queries the pool every second anyway), and a
        // shorter idle timeout, which bounds what the remaining timers hold.
        configuration.options.keepAliveBehavior = nil
        configuration.options.connectionIdleTimeout = .seconds(10)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// The configuration of a single connection outside the pool, to the same server as the
    /// pool's (the node's change listener holds one).
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let unixSocketPath = self.unixSocketPath {
            configuration = .init(
                unixSocketPath: unixSocketPath,
                username: self.username,
                password: self.password,
                database: self.database
            )
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch self.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            configuration = .init(
                host: self.host,
                port: self.port,
                username: self.username,
                password: self.password,
                database: self.database,
                tls: tls
            )
        }
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// A description safe for logs (no password).
    public var redactedDescription: String {
        "postgres://\(self.username)@\(self.host):\(self.port)/\(self.database)"
    }
}
