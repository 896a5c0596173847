import CoreMetrics
import IncrementStore

/// A cluster-wide flush barrier: waits until every live node has committed everything it had
/// accepted when the barrier was raised. Strong reads and `POST /flush` stand on it.
///
/// The caller takes the next number of the `flush_barrier` sequence; each node notices it
/// within its poll interval (this node at once), flushes, and records it; the caller polls the
/// registry until no live node is left below it. A node silent for longer than
/// ``ClusterSettings/nodeGoneAfter`` is taken for gone and not waited for: what it had not
/// flushed went with it (or is in its spill directory).
struct FlushBarrier: Sendable {
    let store: CounterStore
    let membership: ClusterMembership
    let settings: ClusterSettings
    /// Counts the barriers some live node did not confirm in time.
    let timeouts: Counter

    /// What a barrier that was met reports.
    struct Passed: Sendable {
        /// The barrier's number.
        let barrier: Int64
        /// How long it took.
        let elapsed: Duration
    }

    /// Some live nodes did not confirm the barrier in time.
    struct NotConfirmed: Error, Sendable {
        let barrier: Int64
        /// The addresses of the nodes that did not confirm.
        let nodes: [String]
    }

    /// Raises a barrier and waits until every live node has confirmed it, at most
    /// ``ClusterSettings/barrierTimeout`` (plus one registry query, itself bounded to 1 s).
    ///
    /// - Throws: ``NotConfirmed`` naming the nodes that did not confirm in time; a database
    ///   error or ``DeadlineExceeded`` when the database did not answer.
    func pass() async throws -> Passed {
        let started = ContinuousClock.now
        let deadline = started + self.settings.barrierTimeout
        // A query of its own may take up to a second more: a slow database is reported as
        // unavailable, not as nodes that failed to confirm.
        let queryTimeout = Duration.seconds(1)
        let barrier = try await self.store.raiseBarrier(deadline: .now + queryTimeout)
        self.membership.requestFlush(forBarrier: barrier)
        // The caller checks four times as often as nodes look for barriers: only while it waits.
        let checkInterval = max(self.settings.barrierPollInterval / 4, .milliseconds(1))
        while true {
            try await Task.sleep(for: checkInterval)
            let waitingFor = try await self.store.nodesNotConfirming(
                barrier: barrier, liveWithin: self.settings.nodeGoneAfter, deadline: .now + queryTimeout)
            if waitingFor.isEmpty {
                return Passed(barrier: barrier, elapsed: .now - started)
            }
            if ContinuousClock.now + checkInterval >= deadline {
                throw NotConfirmed(barrier: barrier, nodes: waitingFor)
            }
        }
    }
}
