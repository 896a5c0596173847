/// How and when the flusher writes the buffer to PostgreSQL.
public struct FlushSettings: Sendable {
    /// Time between periodic flushes; the bound on how stale PostgreSQL is while it is up.
    public var interval: Duration
    /// Pending distinct keys that trigger a flush before the interval ends.
    public var earlyFlushKeys: Int
    /// How long a `wait=commit` request waits for others to join its flush.
    public var groupCommitWindow: Duration
    /// The first back-off after a failed flush; it doubles per failure up to ``maximumRetryDelay``.
    public var initialRetryDelay: Duration
    /// The longest back-off between retries.
    public var maximumRetryDelay: Duration
    /// How long the final flush at shutdown keeps retrying before giving up.
    public var shutdownTimeout: Duration
    /// The number of cluster shards (advisory locks); the same on every node.
    public var clusterShards: Int
    /// Age at which flush ledger rows are pruned; far beyond any retry.
    public var ledgerRetention: Duration
    /// How often the ledger is pruned.
    public var ledgerPruneInterval: Duration
    /// When the oldest pending increment is older than this, `/readyz` fails.
    public var maximumStaleness: Duration

    /// Creates flush settings; the defaults are the production ones.
    public init(
        interval: Duration = .seconds(1),
        earlyFlushKeys: Int = 50_000,
        groupCommitWindow: Duration = .milliseconds(2),
        initialRetryDelay: Duration = .milliseconds(50),
        maximumRetryDelay: Duration = .seconds(5),
        shutdownTimeout: Duration = .seconds(30),
        clusterShards: Int = 64,
        ledgerRetention: Duration = .seconds(3_600),
        ledgerPruneInterval: Duration = .seconds(60),
        maximumStaleness: Duration = .seconds(10)
    ) {
        self.interval = interval
        self.earlyFlushKeys = earlyFlushKeys
        self.groupCommitWindow = groupCommitWindow
        self.initialRetryDelay = initialRetryDelay
        self.maximumRetryDelay = maximumRetryDelay
        self.shutdownTimeout = shutdownTimeout
        self.clusterShards = clusterShards
        self.ledgerRetention = ledgerRetention
        self.ledgerPruneInterval = ledgerPruneInterval
        self.maximumStaleness = maximumStaleness
    }
}
