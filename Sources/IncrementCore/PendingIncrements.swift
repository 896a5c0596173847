/// Everything the buffer held when a flush swapped it out.
public struct PendingIncrements: Sendable {
    /// The summed delta of every pending key; each key appears once.
    public var deltas: [CounterKey: Int64]
    /// The callers waiting for these increments to commit.
    public var waiters: [CommitWaiter]
    /// The callers waiting for everything accepted before them to commit.
    public var barriers: [BarrierWaiter]
    /// The requests sent with an idempotency key, whole.
    public var idempotent: [IdempotentRequest]
    /// The latest flush barrier the node had seen before it accepted any of these increments:
    /// a counter deleted behind a later barrier skips them (see ``FlushBatch/barrier``).
    public var barrier: Int64

    /// Creates a drained set of increments.
    public init(
        deltas: [CounterKey: Int64] = [:],
        waiters: [CommitWaiter] = [],
        barriers: [BarrierWaiter] = [],
        idempotent: [IdempotentRequest] = [],
        barrier: Int64 = 0
    ) {
        self.deltas = deltas
        self.waiters = waiters
        self.barriers = barriers
        self.idempotent = idempotent
        self.barrier = barrier
    }

    /// True when there is nothing to write.
    public var hasNothingToWrite: Bool { self.deltas.isEmpty && self.idempotent.isEmpty }

    /// True when there is nothing to write and nobody waiting.
    public var isEmpty: Bool { self.hasNothingToWrite && self.waiters.isEmpty && self.barriers.isEmpty }
}
