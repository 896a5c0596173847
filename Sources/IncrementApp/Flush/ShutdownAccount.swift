import Synchronization

/// What the node still owes the database, however shutdown went: a batch drained and not yet
/// committed, and what the final flush spilled or lost. The process's exit status is decided from
/// this record alone, so an error lost between services (or a flusher cancelled at the deadline)
/// can never turn a loss into a clean exit.
public final class ShutdownAccount: Sendable {
    private struct Owed {
        var retainedKeys = 0
        var spilledKeys = 0
        var lostKeys = 0
    }

    private let owed = Mutex(Owed())

    public init() {}

    /// A batch of `keys` distinct keys left the buffer and is not committed yet.
    func retained(keys: Int) {
        self.owed.withLock { $0.retainedKeys = keys }
    }

    /// The retained batch committed, or was spilled or reported lost.
    func settledRetained() {
        self.owed.withLock { $0.retainedKeys = 0 }
    }

    func spilled(keys: Int) {
        self.owed.withLock { $0.spilledKeys += keys }
    }

    func lost(keys: Int) {
        self.owed.withLock { $0.lostKeys += keys }
    }

    /// What was not written once the node stopped, with `bufferedKeys` still in the buffer (both
    /// they and a retained batch are lost: nothing took them); nil when everything was written.
    public func unwritten(bufferedKeys: Int) -> FinalFlushIncomplete? {
        self.owed.withLock { owed in
            let lost = owed.lostKeys + owed.retainedKeys + bufferedKeys
            guard owed.spilledKeys > 0 || lost > 0 else { return nil }
            return FinalFlushIncomplete(spilledKeys: owed.spilledKeys, lostKeys: lost)
        }
    }
}
