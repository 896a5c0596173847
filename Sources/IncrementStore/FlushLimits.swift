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

    /// Creates flush limits; the defaults are the production ones.
    public init(
        attemptTimeout: Duration = .seconds(20),
        stallTimeout: Duration = .seconds(3),
        ledgerRetention: Duration = .seconds(86_400),
        idempotencyRetention: Duration = .seconds(86_400)
    ) {
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
