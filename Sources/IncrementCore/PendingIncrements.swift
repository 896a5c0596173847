/// Everything the buffer held when a flush swapped it out.
public struct PendingIncrements: Sendable {
    /// The summed delta of every pending key; each key appears once.
    public var deltas: [CounterKey: Int64]
    /// The callers waiting for these increments to commit.
    public var waiters: [CommitWaiter]

    /// Creates a drained set of increments.
    public init(deltas: [CounterKey: Int64] = [:], waiters: [CommitWaiter] = []) {
        self.deltas = deltas
        self.waiters = waiters
    }

    /// True when there is nothing to write and nobody waiting.
    public var isEmpty: Bool { self.deltas.isEmpty && self.waiters.isEmpty }
}
