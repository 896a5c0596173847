import IncrementCore

/// What one flush transaction did.
public struct FlushResult: Sendable {
    /// How the ledger saw the batch.
    public enum Disposition: Sendable, Hashable {
        /// The batch was new and is now applied.
        case applied
        /// The batch had been applied before (a retry after a commit whose answer was lost).
        case alreadyApplied
        /// The node's ledger entry was gone and an earlier attempt may have committed: the
        /// batch was quarantined instead of risking a second application.
        case outcomeUnknown
    }

    /// How the ledger saw the batch.
    public var disposition: Disposition
    /// Committed totals right after the flush, for the keys asked about.
    public var totals: [CounterKey: Int64]
    /// Keys whose increments were quarantined instead of applied, with the reason.
    public var quarantined: [CounterKey: String]
    /// How long the flush waited for its cluster-shard advisory locks.
    public var lockWait: Duration

    /// Creates a flush result.
    public init(
        disposition: Disposition = .applied,
        totals: [CounterKey: Int64] = [:],
        quarantined: [CounterKey: String] = [:],
        lockWait: Duration = .zero
    ) {
        self.disposition = disposition
        self.totals = totals
        self.quarantined = quarantined
        self.lockWait = lockWait
    }
}

/// A flush that did not complete, and whether it may have committed all the same.
public struct FlushFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public let underlying: any Error
    /// True when COMMIT was sent and its answer never came: the batch may be applied.
    /// False when the transaction certainly did not commit.
    public let mayHaveCommitted: Bool

    public init(underlying: any Error, mayHaveCommitted: Bool) {
        self.underlying = underlying
        self.mayHaveCommitted = mayHaveCommitted
    }

    public var description: String {
        "\(self.underlying)\(self.mayHaveCommitted ? " (the commit's outcome is unknown)" : "")"
    }
}
