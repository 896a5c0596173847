import Foundation
import Configuration
import IncrementCore
import IncrementStore
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
    /// Whether the plain `POST /increment` and `GET /counters/{key}` are answered on the event
    /// loop, without the router.
    public var answersOnEventLoop: Bool
    /// How far behind the database a value the read cache serves may be; zero: no cache, every
    /// plain read queries.
    public var readCacheStaleness: Duration
    /// The most keys the read cache keeps.
    public var readCacheMaximumKeys: Int
    /// The cluster registry and flush barriers.
    public var cluster: ClusterSettings
    /// The bearer tokens accepted; none configured: authentication is off.
    public var accessTokens: AccessTokens
    /// Whether `GET /metrics` needs an `admin` token (when tokens are configured).
    public var protectMetrics: Bool
    /// The log level.
    public var logLevel: Logger.Level

    /// The settings of a node started with none, against `database`: every value is the
    /// catalogue's default, so a changed default reaches the tests too.
    public static func defaults(database: DatabaseSettings) throws -> NodeSettings {
        var settings = try NodeSettings(reader: ConfigReader(provider: InMemoryProvider(values: [:])))
        settings.database = database
        return settings
    }

    /// The most cluster shards a node accepts. A flush of many keys holds one advisory lock per
    /// shard, and PostgreSQL's shared lock table has room for `max_locks_per_transaction ×
    /// max_connections` locks in all (64 × 100 = 6,400 by default): at 256 shards, 25 nodes can
    /// hold every shard lock at once; at about 20,000, a single flush fails "out of shared memory".
    public static let maximumClusterShards = 256

    /// Every setting, for reading and for `--help`.
    public static let catalog: [SettingDescriptor] = [
        Keys.host, Keys.port, Keys.databaseURL, Keys.databasePoolSize, Keys.databasePreparedStatements, Keys.bufferShards, Keys.bufferMaxPendingKeys,
        Keys.flushIntervalMs, Keys.flushEarlyKeys, Keys.flushGroupCommitMs, Keys.flushCommitWaitMs, Keys.flushRetryMaxMs,
        Keys.flushAttemptTimeoutMs, Keys.flushStallTimeoutMs, Keys.flushLockMode, Keys.flushShutdownTimeoutMs, Keys.shutdownDrainMs,
        Keys.shutdownRefuseNewConnections,
        Keys.flushSpillDir, Keys.clusterShards, Keys.ledgerRetentionSeconds, Keys.idempotencyRetentionSeconds, Keys.readinessMaxStalenessMs,
        Keys.migrateOnStart, Keys.httpMaxBodyBytes, Keys.httpEventLoopAnswers, Keys.readCacheStalenessMs,
        Keys.readCacheMaxKeys, Keys.batchMaxItems, Keys.clusterAdvertiseAddress,
        Keys.clusterHeartbeatMs, Keys.clusterNodeGoneMs, Keys.clusterNodeRemoveSeconds, Keys.barrierPollMs,
        Keys.barrierTimeoutMs, Keys.authTokens, Keys.authTokensFile, Keys.authProtectMetrics, Keys.logLevel,
    ]

    /// The catalogue: each setting's key, default and meaning. A default owned by a lower layer
    /// (the store's flush limits, the decoder's batch size) is read from there.
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
        static let databasePreparedStatements = SettingDescriptor(
            key: "database.preparedStatements", defaultValue: "true",
            summary: "reads use statements prepared on each connection; false behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21)")
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
            summary: "longest a wait=commit request lets others join its flush (less once as many wait as the last such flush carried)")
        static let flushCommitWaitMs = SettingDescriptor(
            key: "flush.commitWaitMs", defaultValue: "10000",
            summary: "longest a wait=commit request waits before it is answered 202 (accepted, still to be written)")
        static let flushAttemptTimeoutMs = SettingDescriptor(
            key: "flush.attemptTimeoutMs", defaultValue: "\(FlushLimits().attemptTimeout.milliseconds)",
            summary: "longest one flush attempt takes (also its statement_timeout and lock_timeout)")
        static let flushStallTimeoutMs = SettingDescriptor(
            key: "flush.stallTimeoutMs", defaultValue: "\(FlushLimits().stallTimeout.milliseconds)",
            summary: "longest a stalled node can hold cluster-shard locks (idle_in_transaction_session_timeout)")
        static let flushLockMode = SettingDescriptor(
            key: "flush.lockMode", defaultValue: FlushLimits().lockMode.rawValue,
            summary: "cluster-shard locks: shared (flushes of different nodes run side by side) or exclusive (one at a time per shard)")
        static let shutdownDrainMs = SettingDescriptor(
            key: "shutdown.drainMs", defaultValue: "1000",
            summary: "on SIGTERM, how long to keep serving with Connection: close before closing the listener")
        static let shutdownRefuseNewConnections = SettingDescriptor(
            key: "shutdown.refuseNewConnections", defaultValue: "false",
            summary: "on SIGTERM, close the listener at once and keep open connections serving for the drain instead; for a balancer that keeps connecting to a stopping node (nginx resolving Docker's DNS), not for clients that cannot retry elsewhere")
        static let flushSpillDir = SettingDescriptor(
            key: "flush.spillDir", defaultValue: NodeSettings.defaultSpillDirectory,
            summary: "directory for batches the database cannot take at shutdown, replayed at start (relative: to the working directory; `off`: lose them instead)")
        static let migrateOnStart = SettingDescriptor(
            key: "migrate.onStart", defaultValue: "true",
            summary: "apply schema migrations at start (false: run `increment-node migrate` once instead)")
        static let flushRetryMaxMs = SettingDescriptor(
            key: "flush.retryMaxMs", defaultValue: "5000", summary: "longest back-off between retries of a failed flush")
        static let flushShutdownTimeoutMs = SettingDescriptor(
            key: "flush.shutdownTimeoutMs", defaultValue: "30000",
            summary: "longest from SIGTERM to exit: drain, final flush, spill")
        static let clusterShards = SettingDescriptor(
            key: "cluster.shards", defaultValue: "64",
            summary: "advisory-lock shards, 1 to \(NodeSettings.maximumClusterShards); must be the same on every node")
        static let ledgerRetentionSeconds = SettingDescriptor(
            key: "ledger.retentionSeconds", defaultValue: "\(Int64(FlushLimits().ledgerRetention.seconds))",
            summary: "how long a node's ledger entry outlives its last contact with the database")
        static let idempotencyRetentionSeconds = SettingDescriptor(
            key: "idempotency.retentionSeconds", defaultValue: "\(Int64(FlushLimits().idempotencyRetention.seconds))",
            summary: "how long an Idempotency-Key is remembered after its request was applied")
        static let readinessMaxStalenessMs = SettingDescriptor(
            key: "readiness.maxStalenessMs", defaultValue: "10000",
            summary: "oldest pending increment age at which /readyz fails")
        static let httpMaxBodyBytes = SettingDescriptor(
            key: "http.maxBodyBytes", defaultValue: "1048576", summary: "largest request body accepted (413 beyond)")
        static let httpEventLoopAnswers = SettingDescriptor(
            key: "http.eventLoopAnswers", defaultValue: "true",
            summary: "answer the plain POST /increment (no query, no Idempotency-Key) and GET /counters/{key} (no query) where they are read, without the router; the same answers for less CPU")
        static let readCacheStalenessMs = SettingDescriptor(
            key: "readCache.stalenessMs", defaultValue: "200",
            summary: "plain reads may be answered from the node's cache of committed values, at most this far behind the database (changes announced by every commit, heartbeats prove they are heard); 0: every read queries. Needs a session of its own: 0 behind a pooler in transaction mode")
        static let readCacheMaxKeys = SettingDescriptor(
            key: "readCache.maxKeys", defaultValue: "100000", summary: "most keys the read cache keeps")
        static let batchMaxItems = SettingDescriptor(
            key: "batch.maxItems", defaultValue: "\(IncrementBodyDecoder.defaultMaximumBatchItems)", summary: "most increments in one POST /increments")
        static let clusterAdvertiseAddress = SettingDescriptor(
            key: "cluster.advertiseAddress", defaultValue: nil,
            summary: "address shown for this node in GET /cluster (default: HOST:PORT, the host name when HOST is a wildcard)")
        static let clusterHeartbeatMs = SettingDescriptor(
            key: "cluster.heartbeatMs", defaultValue: "500", summary: "time between this node's heartbeats in the registry")
        static let clusterNodeGoneMs = SettingDescriptor(
            key: "cluster.nodeGoneMs", defaultValue: "10000",
            summary: "silence after which a node is shown gone and strong reads stop waiting for it")
        static let clusterNodeRemoveSeconds = SettingDescriptor(
            key: "cluster.nodeRemoveSeconds", defaultValue: "600", summary: "silence after which a node is removed from the registry")
        static let barrierPollMs = SettingDescriptor(
            key: "barrier.pollMs", defaultValue: "20",
            summary: "how often nodes look for flush barriers (the main part of a strong read's latency)")
        static let barrierTimeoutMs = SettingDescriptor(
            key: "barrier.timeoutMs", defaultValue: "5000",
            summary: "longest a strong read or POST /flush waits for every live node (then 503 naming them)")
        static let authTokens = SettingDescriptor(
            key: "auth.tokens", defaultValue: nil,
            summary: "bearer tokens, \"TOKEN SCOPE[,SCOPE]\" separated by ';' (scopes write, read, admin); default: auth off")
        static let authTokensFile = SettingDescriptor(
            key: "auth.tokensFile", defaultValue: nil, summary: "a file of bearer tokens, one \"TOKEN SCOPE[,SCOPE]\" per line")
        static let authProtectMetrics = SettingDescriptor(
            key: "auth.protectMetrics", defaultValue: "false", summary: "GET /metrics needs an admin token too (with tokens configured)")
        static let logLevel = SettingDescriptor(
            key: "log.level", defaultValue: "info", summary: "trace, debug, info, notice, warning, error or critical")
    }

    /// Reads every setting from `reader`, refusing values that cannot work.
    public init(reader: ConfigReader) throws {
        self.host = Keys.host.string(from: reader) ?? Keys.host.defaultValue ?? "127.0.0.1"
        self.port = try Keys.port.int(from: reader, in: 0...65_535)
        self.database = try DatabaseSettings(
            url: Keys.databaseURL.string(from: reader),
            environment: DatabaseSettings.libpqEnvironment(from: reader),
            poolSize: Keys.databasePoolSize.int(from: reader, in: 1...1_000)
        )
        self.database.usesPreparedStatements = try Keys.databasePreparedStatements.bool(from: reader)
        self.bufferShards = try Keys.bufferShards.int(from: reader, in: 1...4_096)
        self.maximumPendingKeys = try Keys.bufferMaxPendingKeys.int(from: reader, in: 1...100_000_000)
        self.maximumBodyBytes = try Keys.httpMaxBodyBytes.int(from: reader, in: 64...(64 << 20))
        self.maximumBatchItems = try Keys.batchMaxItems.int(from: reader, in: 1...100_000)
        self.answersOnEventLoop = try Keys.httpEventLoopAnswers.bool(from: reader)
        self.readCacheStaleness = try Keys.readCacheStalenessMs.milliseconds(from: reader, in: 0...60_000)
        self.readCacheMaximumKeys = try Keys.readCacheMaxKeys.int(from: reader, in: 1...100_000_000)
        self.flush = FlushSettings(
            interval: try Keys.flushIntervalMs.milliseconds(from: reader, in: 1...600_000),
            earlyFlushKeys: try Keys.flushEarlyKeys.int(from: reader, in: 1...100_000_000),
            groupCommitWindow: try Keys.flushGroupCommitMs.milliseconds(from: reader, in: 0...1_000),
            commitWaitTimeout: try Keys.flushCommitWaitMs.milliseconds(from: reader, in: 1...50_000),
            maximumRetryDelay: try Keys.flushRetryMaxMs.milliseconds(from: reader, in: 10...600_000),
            shutdownTimeout: try Keys.flushShutdownTimeoutMs.milliseconds(from: reader, in: 1_000...3_600_000),
            drainWindow: try Keys.shutdownDrainMs.milliseconds(from: reader, in: 0...60_000),
            spillDirectory: Self.spillDirectory(from: reader),
            clusterShards: try Keys.clusterShards.int(from: reader, in: 1...Self.maximumClusterShards),
            limits: FlushLimits(
                attemptTimeout: try Keys.flushAttemptTimeoutMs.milliseconds(from: reader, in: 100...600_000),
                stallTimeout: try Keys.flushStallTimeoutMs.milliseconds(from: reader, in: 100...600_000),
                ledgerRetention: .seconds(try Keys.ledgerRetentionSeconds.int(from: reader, in: 60...365 * 86_400)),
                idempotencyRetention: .seconds(try Keys.idempotencyRetentionSeconds.int(from: reader, in: 1...365 * 86_400)),
                lockMode: try Self.lockMode(from: reader)
            ),
            maximumStaleness: try Keys.readinessMaxStalenessMs.milliseconds(from: reader, in: 10...3_600_000),
            migrateOnStart: try Keys.migrateOnStart.bool(from: reader)
        )
        self.flush.refusesNewConnectionsWhileDraining = try Keys.shutdownRefuseNewConnections.bool(from: reader)
        self.cluster = ClusterSettings(
            advertisedAddress: Keys.clusterAdvertiseAddress.string(from: reader).flatMap { $0.isEmpty ? nil : $0 }
                ?? Self.defaultAdvertisedAddress(host: self.host, port: self.port),
            heartbeatInterval: try Keys.clusterHeartbeatMs.milliseconds(from: reader, in: 50...60_000),
            nodeGoneAfter: try Keys.clusterNodeGoneMs.milliseconds(from: reader, in: 200...3_600_000),
            nodeRemovedAfter: .seconds(try Keys.clusterNodeRemoveSeconds.int(from: reader, in: 1...30 * 86_400)),
            barrierPollInterval: try Keys.barrierPollMs.milliseconds(from: reader, in: 1...10_000),
            barrierTimeout: try Keys.barrierTimeoutMs.milliseconds(from: reader, in: 10...50_000)
        )
        self.accessTokens = try Self.readAccessTokens(from: reader)
        self.protectMetrics = try Keys.authProtectMetrics.bool(from: reader)
        if self.cluster.nodeGoneAfter < self.cluster.heartbeatInterval * 2 {
            throw SettingsError(
                setting: Keys.clusterNodeGoneMs.environmentVariable,
                reason: "must be at least twice \(Keys.clusterHeartbeatMs.environmentVariable), or live nodes would show as gone"
            )
        }
        if self.flush.drainWindow + .seconds(1) > self.flush.shutdownTimeout {
            throw SettingsError(
                setting: Keys.shutdownDrainMs.environmentVariable,
                reason: "must leave at least 1 s of \(Keys.flushShutdownTimeoutMs.environmentVariable) for the final flush"
            )
        }
        let level = Keys.logLevel.string(from: reader) ?? Keys.logLevel.defaultValue ?? "info"
        guard let logLevel = Logger.Level(rawValue: level.lowercased()) else {
            throw SettingsError(setting: Keys.logLevel.environmentVariable, reason: "\"\(level)\" is not a log level")
        }
        self.logLevel = logLevel
    }

    /// Where a node spills what the database cannot take at shutdown unless told otherwise.
    public static let defaultSpillDirectory = "increment-spill"

    /// `FLUSH_SPILL_DIR` as an absolute path (relative paths from the working directory), or nil
    /// for `off`. Unset or empty is the default: a node loses nothing at shutdown unless told to.
    static func spillDirectory(from reader: ConfigReader) -> String? {
        let text = Keys.flushSpillDir.string(from: reader).flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultSpillDirectory
        if text.lowercased() == "off" { return nil }
        if text.hasPrefix("/") { return text }
        return URL(fileURLWithPath: text, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
            .standardizedFileURL.path
    }

    /// `FLUSH_LOCK_MODE`: `shared` or `exclusive`.
    static func lockMode(from reader: ConfigReader) throws -> ShardLockMode {
        let text = Keys.flushLockMode.string(from: reader) ?? Keys.flushLockMode.defaultValue ?? "shared"
        guard let mode = ShardLockMode(rawValue: text.lowercased()) else {
            throw SettingsError(setting: Keys.flushLockMode.environmentVariable, reason: "\"\(text)\" is not shared or exclusive")
        }
        return mode
    }

    /// The tokens of `AUTH_TOKENS` and of the file `AUTH_TOKENS_FILE` names, together.
    static func readAccessTokens(from reader: ConfigReader) throws -> AccessTokens {
        var text = Keys.authTokens.string(from: reader) ?? ""
        if let path = Keys.authTokensFile.string(from: reader), !path.isEmpty {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw SettingsError(setting: Keys.authTokensFile.environmentVariable, reason: "cannot read \(path)")
            }
            text += "\n" + String(decoding: contents, as: UTF8.self)
        }
        do throws(AccessTokensError) {
            return try AccessTokens(parsing: text)
        } catch {
            // The message names the entry by position, never the token.
            throw SettingsError(setting: Keys.authTokens.environmentVariable, reason: "\(error)")
        }
    }

    /// `host:port`, or the machine's host name for a wildcard host (a container's name, say).
    static func defaultAdvertisedAddress(host: String, port: Int) -> String {
        let wildcard = ["0.0.0.0", "::", "[::]", ""].contains(host)
        return "\(wildcard ? ProcessInfo.processInfo.hostName : host):\(port)"
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
