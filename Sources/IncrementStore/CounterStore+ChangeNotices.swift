import IncrementCore
import PostgresNIO

extension CounterStore {
    /// Sends `payload` on the channel where changes to counters are announced, from a pooled
    /// session: a node's change listener hears its own heartbeats this way.
    public func announceHeartbeat(_ payload: String, deadline: ContinuousClock.Instant) async throws {
        try await withDeadline(deadline) {
            try await self.client.query("SELECT pg_notify(\(CounterChangeNotice.channel), \(payload))", logger: self.logger)
        }
    }
}
