import IncrementCore
import Synchronization

/// Running totals of what the node does, read by its heartbeat to report rates in the registry
/// (the status page draws them). Relaxed atomic adds: nothing waits on them.
public final class NodeActivity: Sendable {
    private let requests = Atomic<Int64>(0)
    private let acceptedIncrements = Atomic<Int64>(0)
    private let flushes = Atomic<Int64>(0)
    private let flushNanoseconds = Atomic<Int64>(0)

    /// Creates zeroed totals.
    public init() {}

    func recordRequest() {
        self.requests.add(1, ordering: .relaxed)
    }

    func recordAccepted(_ count: Int) {
        self.acceptedIncrements.add(Int64(count), ordering: .relaxed)
    }

    func recordFlush(took duration: Duration) {
        self.flushes.add(1, ordering: .relaxed)
        self.flushNanoseconds.add(duration.nanoseconds, ordering: .relaxed)
    }

    /// The totals now.
    var totals: Totals {
        Totals(
            requests: self.requests.load(ordering: .relaxed),
            acceptedIncrements: self.acceptedIncrements.load(ordering: .relaxed),
            flushes: self.flushes.load(ordering: .relaxed),
            flushNanoseconds: self.flushNanoseconds.load(ordering: .relaxed),
            at: .now
        )
    }

    /// The totals at one moment; two of them give rates.
    struct Totals: Sendable {
        var requests: Int64
        var acceptedIncrements: Int64
        var flushes: Int64
        var flushNanoseconds: Int64
        var at: ContinuousClock.Instant

        /// Requests and increments per second since `earlier`, and the mean flush duration of
        /// the flushes in between (nil if none ran).
        func rates(since earlier: Totals) -> (requests: Double, increments: Double, meanFlush: Duration?) {
            let seconds = max((self.at - earlier.at).seconds, 0.001)
            let flushes = self.flushes - earlier.flushes
            return (
                Double(self.requests - earlier.requests) / seconds,
                Double(self.acceptedIncrements - earlier.acceptedIncrements) / seconds,
                flushes > 0 ? .nanoseconds((self.flushNanoseconds - earlier.flushNanoseconds) / flushes) : nil
            )
        }
    }
}
