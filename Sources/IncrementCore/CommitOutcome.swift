/// What became of an increment whose caller waits for its commit (`?wait=commit`).
public enum CommitOutcome: Sendable, Hashable {
    /// The flush carrying the increment committed; `total` is the key's value right after it.
    case committed(total: Int64)
    /// The key's total would have left bigint: the increment was quarantined, not applied.
    case quarantined(reason: String)
    /// The node gave up before the increment committed (it shut down with the database unreachable).
    case abandoned(reason: String)
}

/// A caller waiting for the flush that carries its increment.
public struct CommitWaiter: Sendable {
    /// The key the caller incremented.
    public let key: String
    private let answer: @Sendable (CommitOutcome) -> Void

    /// Creates a waiter; `answer` is called exactly once, with the outcome.
    public init(key: String, answer: @escaping @Sendable (CommitOutcome) -> Void) {
        self.key = key
        self.answer = answer
    }

    /// Answers the waiting caller. Call exactly once.
    public func resume(with outcome: CommitOutcome) {
        self.answer(outcome)
    }
}
