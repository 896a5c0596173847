/// How a flush holds the advisory locks of its cluster shards. Exclusive is the default: shared
/// mode is faster while few flushes overlap in time or keys, and slower when many flush the same
/// keys at once (deploy/SCALING.md has the measurements).
public enum ShardLockMode: String, Sendable, Hashable, CaseIterable {
    /// Flushes of different nodes run side by side; each upserts its keys in ascending order,
    /// so row locks are always taken in one order and never deadlock.
    case shared
    /// A flush waits for every other flush touching one of its shards (the earlier behaviour).
    case exclusive
}

/// The bounds every flush transaction runs under.
public struct FlushLimits: Sendable, Hashable {
    /// The longest one flush attempt may take, from asking for a connection to COMMIT's answer.
    /// PostgreSQL's `statement_timeout` and `lock_timeout` are set to it inside the transaction,
    /// and the node closes the connection when it passes.
    public var attemptTimeout: Duration
    /// The longest a flush transaction may sit idle between its statements before PostgreSQL
    /// ends it (`idle_in_transaction_session_timeout`): the most a stopped or partitioned node
    /// can hold cluster-shard locks that every other node waits for.
    public var stallTimeout: Duration
    /// How long a node's ledger entry outlives the node's last contact.
    public var ledgerRetention: Duration
    /// How long an idempotency key is remembered after the flush that recorded it.
    public var idempotencyRetention: Duration
    /// How flushes hold their cluster-shard locks.
    public var lockMode: ShardLockMode

    /// Creates flush limits; the defaults are the production ones.
    public init(
        attemptTimeout: Duration = .seconds(20),
        stallTimeout: Duration = .seconds(3),
        ledgerRetention: Duration = .seconds(86_400),
        idempotencyRetention: Duration = .seconds(86_400),
        lockMode: ShardLockMode = .exclusive
    ) {
        self.lockMode = lockMode
        self.attemptTimeout = attemptTimeout
        self.stallTimeout = stallTimeout
        self.ledgerRetention = ledgerRetention
        self.idempotencyRetention = idempotencyRetention
    }
}

extension Duration {
    /// The duration in whole milliseconds, saturating at `Int32.max` (PostgreSQL's timeout range).
    var postgresMilliseconds: Int32 {
        let (seconds, attoseconds) = self.components
        let milliseconds = Double(seconds) * 1_000 + Double(attoseconds) / 1e15
        return Int32(max(1, min(milliseconds.rounded(.up), Double(Int32.max))))
    }
}
