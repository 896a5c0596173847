import Configuration
import Logging

/// Everything a node can be told, read once at start-up.
public struct NodeSettings: Sendable {
    /// Where the HTTP server listens.
    public var host: String
    /// The HTTP port.
    public var port: Int
    /// How to reach PostgreSQL.
    public var database: DatabaseSettings
    /// The buffer, flush and readiness tuning.
    public var flush: FlushSettings
    /// Per-node buffer shards (independently locked dictionaries).
    public var bufferShards: Int
    /// The cap on distinct pending keys; past it requests get `503`.
    public var maximumPendingKeys: Int
    /// The largest request body accepted, in bytes.
    public var maximumBodyBytes: Int
    /// The most items one `POST /increments` may carry.
    public var maximumBatchItems: Int
    /// The log level.
    public var logLevel: Logger.Level

    /// Settings suitable for tests: a node on an ephemeral port against `database`.
    public init(database: DatabaseSettings, flush: FlushSettings = FlushSettings()) {
        self.host = "127.0.0.1"
        self.port = 0
        self.database = database
        self.flush = flush
        self.bufferShards = 16
        self.maximumPendingKeys = 1_000_000
        self.maximumBodyBytes = 1 << 20
        self.maximumBatchItems = 1_000
        self.logLevel = .info
    }

    /// Every setting, for reading and for `--help`.
    public static let catalog: [SettingDescriptor] = [
        Keys.host, Keys.port, Keys.databaseURL, Keys.databasePoolSize, Keys.bufferShards, Keys.bufferMaxPendingKeys,
        Keys.flushIntervalMs, Keys.flushEarlyKeys, Keys.flushGroupCommitMs, Keys.flushRetryMaxMs,
        Keys.flushShutdownTimeoutMs, Keys.clusterShards, Keys.ledgerRetentionSeconds, Keys.readinessMaxStalenessMs,
        Keys.httpMaxBodyBytes, Keys.batchMaxItems, Keys.logLevel,
    ]

    enum Keys {
        static let host = SettingDescriptor(key: "host", defaultValue: "127.0.0.1", summary: "address to listen on")
        static let port = SettingDescriptor(key: "port", defaultValue: "8080", summary: "HTTP port")
        static let databaseURL = SettingDescriptor(
            key: "database.url",
            defaultValue: nil,
            summary: "postgres://user:password@host:port/database?sslmode=disable; else PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE"
        )
        static let databasePoolSize = SettingDescriptor(
            key: "database.poolSize", defaultValue: "4", summary: "most PostgreSQL connections this node opens")
        static let bufferShards = SettingDescriptor(
            key: "buffer.shards", defaultValue: "16", summary: "per-node buffer shards, each with its own lock")
        static let bufferMaxPendingKeys = SettingDescriptor(
            key: "buffer.maxPendingKeys", defaultValue: "1000000",
            summary: "distinct pending keys before the node answers 503 and /readyz fails")
        static let flushIntervalMs = SettingDescriptor(
            key: "flush.intervalMs", defaultValue: "1000", summary: "time between periodic flushes")
        static let flushEarlyKeys = SettingDescriptor(
            key: "flush.earlyKeys", defaultValue: "50000", summary: "pending keys that trigger a flush before the interval")
        static let flushGroupCommitMs = SettingDescriptor(
            key: "flush.groupCommitMs", defaultValue: "2",
            summary: "how long a wait=commit request lets others join its flush")
        static let flushRetryMaxMs = SettingDescriptor(
            key: "flush.retryMaxMs", defaultValue: "5000", summary: "longest back-off between retries of a failed flush")
        static let flushShutdownTimeoutMs = SettingDescriptor(
            key: "flush.shutdownTimeoutMs", defaultValue: "30000",
            summary: "how long the final flush at shutdown keeps retrying")
        static let clusterShards = SettingDescriptor(
            key: "cluster.shards", defaultValue: "64",
            summary: "advisory-lock shards; must be the same on every node")
        static let ledgerRetentionSeconds = SettingDescriptor(
            key: "ledger.retentionSeconds", defaultValue: "3600", summary: "age at which flush ledger rows are pruned")
        static let readinessMaxStalenessMs = SettingDescriptor(
            key: "readiness.maxStalenessMs", defaultValue: "10000",
            summary: "oldest pending increment age at which /readyz fails")
        static let httpMaxBodyBytes = SettingDescriptor(
            key: "http.maxBodyBytes", defaultValue: "1048576", summary: "largest request body accepted (413 beyond)")
        static let batchMaxItems = SettingDescriptor(
            key: "batch.maxItems", defaultValue: "1000", summary: "most increments in one POST /increments")
        static let logLevel = SettingDescriptor(
            key: "log.level", defaultValue: "info", summary: "trace, debug, info, notice, warning, error or critical")
    }

    /// Reads every setting from `reader`, refusing values that cannot work.
    public init(reader: ConfigReader) throws {
        self.host = Keys.host.string(from: reader) ?? "127.0.0.1"
        self.port = try Keys.port.int(from: reader, in: 0...65_535)
        self.database = try DatabaseSettings(
            url: Keys.databaseURL.string(from: reader),
            environment: DatabaseSettings.libpqEnvironment(from: reader),
            poolSize: Keys.databasePoolSize.int(from: reader, in: 1...1_000)
        )
        self.bufferShards = try Keys.bufferShards.int(from: reader, in: 1...4_096)
        self.maximumPendingKeys = try Keys.bufferMaxPendingKeys.int(from: reader, in: 1...100_000_000)
        self.maximumBodyBytes = try Keys.httpMaxBodyBytes.int(from: reader, in: 64...(64 << 20))
        self.maximumBatchItems = try Keys.batchMaxItems.int(from: reader, in: 1...100_000)
        self.flush = FlushSettings(
            interval: try Keys.flushIntervalMs.milliseconds(from: reader, in: 1...600_000),
            earlyFlushKeys: try Keys.flushEarlyKeys.int(from: reader, in: 1...100_000_000),
            groupCommitWindow: try Keys.flushGroupCommitMs.milliseconds(from: reader, in: 0...1_000),
            maximumRetryDelay: try Keys.flushRetryMaxMs.milliseconds(from: reader, in: 10...600_000),
            shutdownTimeout: try Keys.flushShutdownTimeoutMs.milliseconds(from: reader, in: 0...3_600_000),
            clusterShards: try Keys.clusterShards.int(from: reader, in: 1...65_536),
            ledgerRetention: .seconds(try Keys.ledgerRetentionSeconds.int(from: reader, in: 60...30 * 86_400)),
            maximumStaleness: try Keys.readinessMaxStalenessMs.milliseconds(from: reader, in: 10...3_600_000)
        )
        let level = Keys.logLevel.string(from: reader) ?? "info"
        guard let logLevel = Logger.Level(rawValue: level.lowercased()) else {
            throw SettingsError(setting: Keys.logLevel.environmentVariable, reason: "\"\(level)\" is not a log level")
        }
        self.logLevel = logLevel
    }

    /// The text `increment-node --help` prints.
    public static var helpText: String {
        var lines = [
            "USAGE: increment-node [--flag value ...]",
            "",
            "Accepts increments over HTTP, buffers them in memory and flushes them to PostgreSQL.",
            "Every setting is a flag or an environment variable; flags win.",
            "",
        ]
        let rows = Self.catalog.map { setting in
            ("\(setting.flag) / \(setting.environmentVariable)", setting)
        }
        let width = rows.map(\.0.count).max() ?? 0
        for (name, setting) in rows {
            let padded = name + String(repeating: " ", count: width + 2 - name.count)
            let defaultText = setting.defaultValue.map { " (default: \($0))" } ?? ""
            lines.append("  \(padded)\(setting.summary)\(defaultText)")
        }
        return lines.joined(separator: "\n")
    }
}
