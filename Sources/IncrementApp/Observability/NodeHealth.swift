import IncrementCore
import Synchronization

/// What `/readyz` decides from: kept up to date by the flusher, read without any I/O.
public final class NodeHealth: Sendable {
    private let databaseReachable = Atomic<Bool>(false)
    private let shuttingDown = Atomic<Bool>(false)

    /// Creates a health record; the database counts as unreachable until first reached.
    public init() {}

    /// Records whether the last database contact succeeded.
    func recordDatabase(reachable: Bool) {
        self.databaseReachable.store(reachable, ordering: .relaxed)
    }

    /// Records that the node has begun shutting down.
    func recordShutdown() {
        self.shuttingDown.store(true, ordering: .relaxed)
    }

    /// True when the last database contact succeeded.
    public var isDatabaseReachable: Bool { self.databaseReachable.load(ordering: .relaxed) }

    /// The reasons the node is not ready, empty when it is.
    func unreadyReasons(buffer: IncrementBuffer, maximumStaleness: Duration) -> [String] {
        var reasons: [String] = []
        if self.shuttingDown.load(ordering: .relaxed) { reasons.append("shutting down") }
        if !self.isDatabaseReachable { reasons.append("database unreachable") }
        if buffer.isFull { reasons.append("buffer full") }
        if let since = buffer.oldestPendingSince, ContinuousClock.now - since > maximumStaleness {
            reasons.append("oldest pending increment older than \(maximumStaleness)")
        }
        return reasons
    }
}
