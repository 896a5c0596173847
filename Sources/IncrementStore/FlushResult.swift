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
    /// The recorded requests of the batch's idempotency keys: this batch's, or the earlier
    /// request's that recorded the key first.
    public var idempotencyRecords: [IdempotencyKey: IdempotencyRecord] = [:]

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

/// What the database remembers of a request sent with an idempotency key.
public struct IdempotencyRecord: Sendable, Hashable {
    /// The fingerprint of the request that recorded the key.
    public var fingerprint: Int64
    /// For `POST /increment`, the key's committed total right after that request's flush; nil
    /// for `POST /increments`, or when its increment was quarantined.
    public var total: Int64?
    /// True when the flush that returned this record is the one that recorded the key.
    public var recordedByThisFlush: Bool

    /// Creates a record.
    public init(fingerprint: Int64, total: Int64?, recordedByThisFlush: Bool) {
        self.fingerprint = fingerprint
        self.total = total
        self.recordedByThisFlush = recordedByThisFlush
    }
}

extension IdempotencyRecord {
    /// What a `wait=commit` request with `fingerprint` is told once this record exists: the
    /// recorded request's total, its quarantine (`quarantineReason`, if the flush returned one),
    /// or, for another request's record, that the key was reused.
    public func commitOutcome(for fingerprint: Int64, quarantineReason: String? = nil) -> CommitOutcome {
        guard self.fingerprint == fingerprint else { return .idempotencyKeyReused }
        if let total = self.total { return .committed(total: total) }
        return .quarantined(reason: quarantineReason ?? CounterStore.outOfRangeReason)
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
