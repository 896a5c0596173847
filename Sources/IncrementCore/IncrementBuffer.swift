import Synchronization

/// The node's in-memory buffer: increments summed per key in a fixed number of shards.
///
/// Each shard is a dictionary behind its own lock, chosen by a stable hash of the key, so
/// concurrent requests for different keys rarely contend. A lock is held for a dictionary
/// update only. A flush *swaps* every shard's dictionary for an empty one, so an increment
/// arriving during a flush lands in the next one and is never lost.
public final class IncrementBuffer: Sendable {
    /// One shard. A class, since `Mutex` is non-copyable and cannot live in an array directly.
    final class Shard: Sendable {
        struct State {
            var deltas: [CounterKey: Int64] = [:]
            var waiters: [CommitWaiter] = []
            var barriers: [BarrierWaiter] = []
            /// Shard 0 only: the latest flush barrier the node had seen when this window opened,
            /// and the latest one added to it since. See ``PendingIncrements/barrier``.
            var windowBarrier: Int64 = 0
            var latestBarrierAdded: Int64 = 0
            /// Requests with an idempotency key, kept whole (shard 0 only).
            var idempotent: [IdempotentRequest] = []
            var oldestPendingSince: ContinuousClock.Instant?
        }

        let state = Mutex(State())
    }

    private let shards: [Shard]
    private let pendingKeyCount = Atomic<Int>(0)

    /// The most keys the buffer holds before refusing new keys with ``AdmissionError/overloaded``.
    public let maximumPendingKeys: Int

    /// Creates an empty buffer.
    ///
    /// - Parameters:
    ///   - shardCount: the number of independently locked shards (at least 1).
    ///   - maximumPendingKeys: the cap on distinct pending keys; past it new keys are refused.
    public init(shardCount: Int, maximumPendingKeys: Int) {
        precondition(shardCount > 0, "a buffer needs at least one shard")
        precondition(maximumPendingKeys > 0, "the pending key cap must be positive")
        self.shards = (0..<shardCount).map { _ in Shard() }
        self.maximumPendingKeys = maximumPendingKeys
    }

    /// The number of shards.
    public var shardCount: Int { self.shards.count }

    /// The number of distinct keys waiting for a flush.
    public var pendingKeys: Int { self.pendingKeyCount.load(ordering: .relaxed) }

    /// True when the buffer is at its cap and refuses new keys.
    public var isFull: Bool { self.pendingKeys >= self.maximumPendingKeys }

    /// When the oldest increment still waiting for a flush arrived, or nil when nothing waits.
    public var oldestPendingSince: ContinuousClock.Instant? {
        var oldest: ContinuousClock.Instant?
        for shard in self.shards {
            if let since = shard.state.withLock({ $0.oldestPendingSince }) {
                oldest = oldest.map { min($0, since) } ?? since
            }
        }
        return oldest
    }

    /// Adds one increment; with a `waiter`, it is answered after the flush that carries the increment.
    public func add(_ increment: Increment, waiter: CommitWaiter? = nil) throws(AdmissionError) {
        let shard = self.shards[self.shardIndex(for: increment.key)]
        try shard.state.withLock { (state) throws(AdmissionError) in
            try self.apply(key: increment.key, delta: increment.delta, to: &state)
            if let waiter { state.waiters.append(waiter) }
        }
    }

    /// Adds a request sent with an idempotency key, kept apart from the summed deltas so that
    /// the flush can apply it only if its key is new cluster-wide. Each increment counts as a
    /// pending key towards the cap.
    public func add(_ request: IdempotentRequest, waiter: CommitWaiter? = nil) throws(AdmissionError) {
        try self.shards[0].state.withLock { (state) throws(AdmissionError) in
            let count = request.increments.count
            if self.pendingKeyCount.load(ordering: .relaxed) + count > self.maximumPendingKeys {
                throw .overloaded
            }
            if state.oldestPendingSince == nil { state.oldestPendingSince = .now }
            state.idempotent.append(request)
            if let waiter { state.waiters.append(waiter) }
            self.pendingKeyCount.add(count, ordering: .relaxed)
        }
    }

    /// Adds flush barrier `number`: it is answered after the flush that carries everything added
    /// before it (every shard is drained at once, so which shard holds it does not matter). The
    /// increments added after the drain that carries it are tagged with `number`.
    public func addBarrier(_ barrier: BarrierWaiter, number: Int64) {
        self.shards[0].state.withLock { state in
            state.barriers.append(barrier)
            state.latestBarrierAdded = max(state.latestBarrierAdded, number)
        }
    }

    /// Tags what the buffer holds now, and everything after, with flush barrier `number` at
    /// least: for a node that learns the latest barrier when it joins the cluster.
    public func raiseWindowBarrier(to number: Int64) {
        self.shards[0].state.withLock { state in
            state.windowBarrier = max(state.windowBarrier, number)
            state.latestBarrierAdded = max(state.latestBarrierAdded, number)
        }
    }

    /// Adds many increments, all or nothing: if any is refused, none is applied.
    ///
    /// Every shard the increments touch is locked (in ascending order, so concurrent batches
    /// cannot deadlock) while they are checked and applied, so a flush never sees half a batch.
    public func add(_ increments: [Increment]) throws(AdmissionError) {
        var merged: [CounterKey: Int64] = [:]
        merged.reserveCapacity(increments.count)
        for increment in increments {
            if let index = merged.index(forKey: increment.key) {
                let (sum, overflow) = merged.values[index].addingReportingOverflow(increment.delta)
                if overflow { throw .pendingTotalOutOfRange(key: increment.key) }
                merged.values[index] = sum
            } else {
                merged[increment.key] = increment.delta
            }
        }
        var byShard: [Int: [(key: CounterKey, delta: Int64)]] = [:]
        for (key, delta) in merged {
            byShard[self.shardIndex(for: key), default: []].append((key, delta))
        }
        let order = byShard.keys.sorted()
        var locked: [Shard.State] = []
        locked.reserveCapacity(order.count)
        try self.withShardsLocked(order[...], collecting: &locked) { (states) throws(AdmissionError) in
            // Check everything before changing anything.
            var newKeys = 0
            for (position, shardIndex) in order.enumerated() {
                for (key, delta) in byShard[shardIndex] ?? [] {
                    if let current = states[position].deltas[key] {
                        if current.addingReportingOverflow(delta).overflow { throw .pendingTotalOutOfRange(key: key) }
                    } else {
                        newKeys += 1
                    }
                }
            }
            if newKeys > 0 && self.pendingKeyCount.load(ordering: .relaxed) + newKeys > self.maximumPendingKeys {
                throw .overloaded
            }
            for (position, shardIndex) in order.enumerated() {
                for (key, delta) in byShard[shardIndex] ?? [] {
                    // Cannot fail: checked above with every affected shard locked.
                    try? self.apply(key: key, delta: delta, to: &states[position], enforcingCap: false)
                }
            }
        }
    }

    /// Swaps every shard for an empty one and returns what they held.
    ///
    /// Every shard is locked at once (in ascending order, as batch adds lock them), so a batch
    /// added with ``add(_:)-([Increment])`` is either wholly in this drain or wholly in the next:
    /// it lands in PostgreSQL all or nothing, as it was admitted.
    public func drain() -> PendingIncrements {
        var taken: [Shard.State] = []
        var locked: [Shard.State] = []
        locked.reserveCapacity(self.shards.count)
        self.withShardsLocked(Array(self.shards.indices)[...], collecting: &locked) { states in
            taken = states
            for position in states.indices {
                states[position] = Shard.State()
            }
            // Everything added from now on was added after the barriers this drain carries.
            let seen = max(taken[0].windowBarrier, taken[0].latestBarrierAdded)
            states[0].windowBarrier = seen
            states[0].latestBarrierAdded = seen
        }
        var drained = PendingIncrements(barrier: taken.first?.windowBarrier ?? 0)
        // Room for every key at once: growing step by step rehashes a 1M-key drain several times.
        drained.deltas.reserveCapacity(taken.reduce(0) { $0 + $1.deltas.count })
        for state in taken {
            let idempotentCount = state.idempotent.reduce(0) { $0 + $1.increments.count }
            self.pendingKeyCount.subtract(state.deltas.count + idempotentCount, ordering: .relaxed)
            drained.idempotent.append(contentsOf: state.idempotent)
            // Shards hold disjoint keys, so this only concatenates.
            drained.deltas.merge(state.deltas, uniquingKeysWith: +)
            drained.waiters.append(contentsOf: state.waiters)
            drained.barriers.append(contentsOf: state.barriers)
        }
        return drained
    }

    // MARK: Private

    private func shardIndex(for key: CounterKey) -> Int {
        Int(StableHash.fnv1a64(key) % UInt64(self.shards.count))
    }

    private func apply(
        key: CounterKey,
        delta: Int64,
        to state: inout Shard.State,
        enforcingCap: Bool = true
    ) throws(AdmissionError) {
        if let index = state.deltas.index(forKey: key) {
            let (sum, overflow) = state.deltas.values[index].addingReportingOverflow(delta)
            if overflow { throw .pendingTotalOutOfRange(key: key) }
            state.deltas.values[index] = sum
            return
        }
        if enforcingCap && self.pendingKeyCount.load(ordering: .relaxed) >= self.maximumPendingKeys {
            throw .overloaded
        }
        if state.deltas.isEmpty && state.oldestPendingSince == nil {
            state.oldestPendingSince = .now
        }
        state.deltas[key] = delta
        self.pendingKeyCount.add(1, ordering: .relaxed)
    }

    /// Locks the shards at `indices` one after another, moves their states out for `body`, and
    /// moves them back before unlocking.
    private func withShardsLocked<Failure: Error>(
        _ indices: ArraySlice<Int>,
        collecting states: inout [Shard.State],
        _ body: (inout [Shard.State]) throws(Failure) -> Void
    ) throws(Failure) {
        guard let first = indices.first else {
            try body(&states)
            return
        }
        try self.shards[first].state.withLock { (state) throws(Failure) in
            // Moved, never copied: a second reference to the shard's dictionary would make the
            // body's first change copy it whole (a 1,000-item batch copied every shard it touched).
            let position = states.count
            states.append(Shard.State())
            swap(&state, &states[position])
            defer { swap(&state, &states[position]) }
            try self.withShardsLocked(indices.dropFirst(), collecting: &states, body)
        }
    }
}
