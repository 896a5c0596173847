/// What one flush transaction did.
public struct FlushResult: Sendable {
    /// Committed totals right after the flush, for the keys asked about.
    public var totals: [String: Int64]
    /// Keys whose increments were quarantined instead of applied, with the reason.
    public var quarantined: [String: String]
    /// True when the ledger showed the batch was already applied (a retry after an ambiguous commit).
    public var wasAlreadyApplied: Bool
    /// How long the flush waited for its cluster-shard advisory locks.
    public var lockWait: Duration

    /// Creates a flush result.
    public init(
        totals: [String: Int64] = [:],
        quarantined: [String: String] = [:],
        wasAlreadyApplied: Bool = false,
        lockWait: Duration = .zero
    ) {
        self.totals = totals
        self.quarantined = quarantined
        self.wasAlreadyApplied = wasAlreadyApplied
        self.lockWait = lockWait
    }
}
