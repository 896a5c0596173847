import IncrementCore
import IncrementStore
import Synchronization

/// What `/readyz` decides from: kept up to date by the flusher and the lifecycle, read without
/// any I/O.
public final class NodeHealth: Sendable {
    /// Where the node is in its life.
    public enum Phase: UInt8, Sendable {
        /// Waiting for the database: migrations, registration, spilled batches.
        case starting
        /// Serving.
        case serving
        /// Shutting down: answering with `Connection: close` so balancers stop reusing connections.
        case draining
        /// The HTTP server is stopping and the final flush runs.
        case stopping
    }

    private let phaseValue = Atomic<UInt8>(Phase.starting.rawValue)
    private let databaseRoleValue = Atomic<UInt8>(DatabaseRole.unreachable.rawValue)
    private let flushFailing = Atomic<Bool>(false)
    private let lastFlushError = Mutex<String?>(nil)
    /// When the last flush committed, in nanoseconds of `ContinuousClock` since `origin`; 0 before the first.
    private let lastFlushCommittedAt = Atomic<Int64>(0)
    /// When the flush in progress started, in nanoseconds of `ContinuousClock` since `origin`; 0 when none runs.
    private let flushStartedAt = Atomic<Int64>(0)
    private let origin = ContinuousClock.now
    private let shutdownBegan = Mutex<ContinuousClock.Instant?>(nil)

    /// Creates a health record: starting, database unreachable until first reached.
    public init() {}

    /// The node's phase.
    public var phase: Phase { Phase(rawValue: self.phaseValue.load(ordering: .relaxed)) ?? .starting }

    /// Moves to `phase`; a later phase is never undone by an earlier one.
    func enter(_ phase: Phase) {
        var current = self.phaseValue.load(ordering: .relaxed)
        while current < phase.rawValue {
            let (exchanged, original) = self.phaseValue.compareExchange(
                expected: current, desired: phase.rawValue, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Records that shutdown began now (the first call counts) and enters ``Phase/draining``.
    func beginShutdown() {
        self.shutdownBegan.withLock { began in
            if began == nil { began = .now }
        }
        self.enter(.draining)
    }

    /// When the whole shutdown must be over: `timeout` after it began (or after now, if it has not).
    func shutdownDeadline(timeout: Duration) -> ContinuousClock.Instant {
        (self.shutdownBegan.withLock { $0 } ?? .now) + timeout
    }

    /// True from the moment shutdown begins.
    public var isShuttingDown: Bool { self.phase.rawValue >= Phase.draining.rawValue }

    /// Records what the last database contact found.
    func recordDatabase(_ role: DatabaseRole) {
        self.databaseRoleValue.store(role.rawValue, ordering: .relaxed)
    }

    /// What the last database contact found: writable, not writable (a standby), unreachable.
    public var databaseRole: DatabaseRole {
        DatabaseRole(rawValue: self.databaseRoleValue.load(ordering: .relaxed)) ?? .unreachable
    }

    /// Records the end of a flush attempt: committed (`error` nil), or failed with `error` (its
    /// batch is retained and retried).
    func recordFlushEnded(error: String?) {
        self.flushFailing.store(error != nil, ordering: .relaxed)
        self.lastFlushError.withLock { $0 = error }
        if error == nil {
            self.lastFlushCommittedAt.store(max(1, (ContinuousClock.now - self.origin).nanoseconds), ordering: .relaxed)
        }
    }

    /// The error of the last flush attempt, if it failed.
    var lastFlushFailure: String? { self.lastFlushError.withLock { $0 } }

    /// How long ago the last flush committed, if one has.
    var sinceLastFlush: Duration? {
        let committed = self.lastFlushCommittedAt.load(ordering: .relaxed)
        guard committed > 0 else { return nil }
        return (ContinuousClock.now - self.origin) - .nanoseconds(committed)
    }

    /// Marks a flush attempt as running (or, with nil, as over).
    func recordFlush(startedAt start: ContinuousClock.Instant?) {
        let value = start.map { max(1, ($0 - self.origin).nanoseconds) } ?? 0
        self.flushStartedAt.store(value, ordering: .relaxed)
    }

    /// How long the flush in progress has been running, if one is.
    var currentFlushAge: Duration? {
        let started = self.flushStartedAt.load(ordering: .relaxed)
        guard started > 0 else { return nil }
        return (ContinuousClock.now - self.origin) - .nanoseconds(started)
    }

    /// The reasons the node is not ready, empty when it is.
    func unreadyReasons(
        buffer: IncrementBuffer,
        maximumStaleness: Duration,
        maximumFlushAge: Duration
    ) -> [String] {
        var reasons: [String] = []
        switch self.phase {
        case .starting: reasons.append("starting: waiting for the database")
        case .draining, .stopping: reasons.append("shutting down")
        case .serving: break
        }
        switch self.databaseRole {
        case .writable: break
        case .notWritable: reasons.append("database not writable (a standby or read-only server); waiting for the primary")
        case .unreachable: reasons.append("database unreachable")
        }
        if self.flushFailing.load(ordering: .relaxed) { reasons.append("the last flush failed; retrying") }
        if let age = self.currentFlushAge, age > maximumFlushAge {
            reasons.append("a flush has been waiting for the database for \(age.seconds.formatted1) s")
        }
        if buffer.isFull { reasons.append("buffer full") }
        if let since = buffer.oldestPendingSince, ContinuousClock.now - since > maximumStaleness {
            reasons.append("oldest pending increment older than \(maximumStaleness)")
        }
        return reasons
    }
}

extension Double {
    /// The number with one decimal, for messages.
    var formatted1: String {
        let tenths = (self * 10).rounded()
        return "\(Int(tenths) / 10).\(abs(Int(tenths) % 10))"
    }
}
