/// What became of an increment whose caller waits for its commit (`?wait=commit`).
///
/// The cases keep apart what a client may safely retry (``notCommitted``) from what it must not
/// (``pending``, ``unknown``): a retry of an increment that did count would count it twice.
public enum CommitOutcome: Sendable, Hashable {
    /// The flush carrying the increment committed; `total` is the key's value right after it.
    case committed(total: Int64)
    /// The key's total would have left bigint: the increment was quarantined, not applied.
    case quarantined(reason: String)
    /// The increment is accepted but not committed yet, and will be: it is still buffered or
    /// retried, or was written to the spill directory at shutdown.
    case pending(reason: String)
    /// The increment was certainly not applied and never will be: retrying it is safe.
    case notCommitted(reason: String)
    /// A write carrying the increment was sent and its answer lost, and the node gave up:
    /// it may or may not have been applied.
    case unknown(reason: String)
    /// The request's idempotency key was recorded first by a request with another body: this
    /// one was not applied.
    case idempotencyKeyReused
}

/// A caller waiting for the flush that carries its increment.
public struct CommitWaiter: Sendable {
    /// The key the caller incremented.
    public let key: CounterKey
    /// The idempotency key and fingerprint of the caller's request, if it sent one.
    public let idempotency: (key: IdempotencyKey, fingerprint: Int64)?
    private let answer: @Sendable (CommitOutcome) -> Void

    /// Creates a waiter; `answer` is called exactly once, with the outcome.
    public init(key: CounterKey, idempotency: IdempotentRequest? = nil, answer: @escaping @Sendable (CommitOutcome) -> Void) {
        self.key = key
        self.idempotency = idempotency.map { ($0.key, $0.fingerprint) }
        self.answer = answer
    }

    /// Answers the waiting caller. Call exactly once.
    public func resume(with outcome: CommitOutcome) {
        self.answer(outcome)
    }
}

/// A caller waiting until everything the buffer held when it asked has committed (a flush
/// barrier: `POST /flush`, strong reads).
public struct BarrierWaiter: Sendable {
    private let answer: @Sendable () -> Void

    /// Creates a waiter; `answer` is called once everything before it has committed.
    public init(answer: @escaping @Sendable () -> Void) {
        self.answer = answer
    }

    /// Tells the waiting caller.
    public func resume() {
        self.answer()
    }
}
