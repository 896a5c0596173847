import IncrementStore

/// How and when the flusher writes the buffer to PostgreSQL, and the bounds on every wait.
public struct FlushSettings: Sendable {
    /// Time between periodic flushes; the bound on how stale PostgreSQL is while it is up.
    public var interval: Duration
    /// Pending distinct keys that trigger a flush before the interval ends.
    public var earlyFlushKeys: Int
    /// How long a `wait=commit` request waits for others to join its flush.
    public var groupCommitWindow: Duration
    /// The longest a `wait=commit` request waits for its commit before it is answered `202`
    /// (accepted, still to be written). Below nginx's `proxy_read_timeout`, so no balancer
    /// ever times a waiting request out.
    public var commitWaitTimeout: Duration
    /// The first back-off after a failed flush; it doubles per failure up to ``maximumRetryDelay``.
    public var initialRetryDelay: Duration = .milliseconds(50)
    /// The longest back-off between retries.
    public var maximumRetryDelay: Duration
    /// From the shutdown signal to the process exit, at most (plus a small margin): drain, final
    /// flush and, if the database cannot be reached, the spill.
    public var shutdownTimeout: Duration
    /// How long a shutting-down node keeps serving with `Connection: close` before it stops
    /// accepting, so that balancers stop reusing its connections first.
    public var drainWindow: Duration
    /// Whether a shutting-down node closes its listener at once and keeps its open connections
    /// serving for ``drainWindow`` instead (``QuiesceDelayHandler``). New connections are then
    /// refused, which nginx retries on another node; a client connecting directly, or through a
    /// Kubernetes Service whose endpoints lag, would see the refusal itself.
    public var refusesNewConnectionsWhileDraining = false
    /// Where batches that cannot be written at shutdown are kept, and replayed from at start.
    public var spillDirectory: String?
    /// The number of cluster shards (advisory locks); the same on every node.
    public var clusterShards: Int
    /// The bounds of each flush transaction and the ledger's retention.
    public var limits: FlushLimits
    /// How often the ledger is pruned, this node's entry kept alive and the spill directory read.
    public var upkeepInterval: Duration = .seconds(10)
    /// When the oldest pending increment is older than this, `/readyz` fails.
    public var maximumStaleness: Duration
    /// Whether the node applies schema migrations at start (else `increment-node migrate` does).
    public var migrateOnStart: Bool

    /// Creates flush settings. Their defaults are the settings catalogue's
    /// (``NodeSettings/defaults(database:)``).
    public init(
        interval: Duration,
        earlyFlushKeys: Int,
        groupCommitWindow: Duration,
        commitWaitTimeout: Duration,
        maximumRetryDelay: Duration,
        shutdownTimeout: Duration,
        drainWindow: Duration,
        spillDirectory: String?,
        clusterShards: Int,
        limits: FlushLimits,
        maximumStaleness: Duration,
        migrateOnStart: Bool
    ) {
        self.interval = interval
        self.earlyFlushKeys = earlyFlushKeys
        self.groupCommitWindow = groupCommitWindow
        self.commitWaitTimeout = commitWaitTimeout
        self.maximumRetryDelay = maximumRetryDelay
        self.shutdownTimeout = shutdownTimeout
        self.drainWindow = drainWindow
        self.spillDirectory = spillDirectory
        self.clusterShards = clusterShards
        self.limits = limits
        self.maximumStaleness = maximumStaleness
        self.migrateOnStart = migrateOnStart
    }
}
