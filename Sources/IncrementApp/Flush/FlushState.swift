import IncrementCore

/// A batch that has been drained from the buffer and not yet committed.
struct RetainedBatch {
    let batch: FlushBatch
    let waiters: [CommitWaiter]
    let barriers: [BarrierWaiter]
    var attempts = 0
    /// Sticky: once an attempt's COMMIT went unanswered, the batch may be applied already.
    var mayHaveCommitted = false
}

/// The flush loop's own state, touched by the loop alone.
struct FlushState {
    var sequence: Int64 = 0
    var retained: RetainedBatch?
    var consecutiveFailures = 0
    var lastUpkeep = ContinuousClock.now
    /// While a retained batch backs off, the earliest time to retry it.
    var nextRetry = ContinuousClock.now

    /// Exponential back-off: the initial delay doubled per consecutive failure, capped.
    func retryDelay(settings: FlushSettings) -> Duration {
        let exponent = min(max(self.consecutiveFailures - 1, 0), 20)
        return min(settings.initialRetryDelay * (1 << exponent), settings.maximumRetryDelay)
    }
}

/// The final flush could not write everything: the process must not exit 0.
public struct FinalFlushIncomplete: Error, Sendable, CustomStringConvertible {
    /// Distinct keys written to the spill directory, to be applied by the next node started with it.
    public let spilledKeys: Int
    /// Distinct keys whose increments are lost (no spill directory, or it could not be written).
    public let lostKeys: Int

    public var description: String {
        "final flush incomplete: \(self.spilledKeys) key(s) spilled, \(self.lostKeys) key(s) lost"
    }

    /// The exit status: 75 (EX_TEMPFAIL) when everything unwritten is safe in the spill
    /// directory, 1 when anything is lost.
    public var exitStatus: Int32 { self.lostKeys > 0 ? 1 : 75 }
}
