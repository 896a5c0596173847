import IncrementCore
import IncrementStore
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps this node's row in the cluster registry (`cluster_nodes`) and takes part in flush
/// barriers.
///
/// The flusher announces the node while it prepares the database (before the node is ready, so
/// that no barrier raised after it is ready can miss it); this service heartbeats its state every
/// ``ClusterSettings/heartbeatInterval`` (announcing it again if its row was removed); it removes rows of nodes silent for
/// ``ClusterSettings/nodeRemovedAfter``. It polls the barrier sequence every
/// ``ClusterSettings/barrierPollInterval``: a new barrier becomes a marker in the buffer,
/// answered by the flush that carries everything accepted before it, and the node then records
/// the barrier as flushed. A table polled rather than LISTEN/NOTIFY: it works through PgBouncer
/// in transaction mode, and at the default 20 ms a poll is a cheap indexed read.
///
/// At shutdown it stops; the final flush deletes the node's row once everything is written.
public final class ClusterMembership: Service, Sendable, CustomStringConvertible {
    let store: CounterStore
    let buffer: IncrementBuffer
    let flusher: Flusher
    let health: NodeHealth
    let activity: NodeActivity
    let settings: ClusterSettings
    let history: ClusterHistory
    let logger: Logger

    /// The highest barrier this node has put in its buffer.
    private let requested = Atomic<Int64>(0)
    /// The highest barrier whose marker a committed flush has passed.
    private let flushed = Atomic<Int64>(0)
    private let pokes: AsyncStream<Void>
    private let pokeContinuation: AsyncStream<Void>.Continuation

    public var description: String { "ClusterMembership(node: \(self.flusher.nodeID), address: \(self.settings.advertisedAddress))" }

    /// Creates the membership of the node whose flusher is `flusher`.
    public init(
        store: CounterStore,
        buffer: IncrementBuffer,
        flusher: Flusher,
        health: NodeHealth,
        activity: NodeActivity,
        settings: ClusterSettings,
        history: ClusterHistory,
        logger: Logger
    ) {
        self.store = store
        self.buffer = buffer
        self.flusher = flusher
        self.health = health
        self.activity = activity
        self.settings = settings
        self.history = history
        self.logger = logger
        (self.pokes, self.pokeContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            try await self.waitUntilServing()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.heartbeatPeriodically() }
                group.addTask { try await self.followBarriers() }
                group.addTask { try await self.sampleHistory() }
                try await group.next()
            }
        }
    }

    /// Flushes everything this node accepted so far for `barrier`, at once; the node records
    /// the barrier as flushed when that flush commits.
    public func requestFlush(forBarrier barrier: Int64) {
        // A lower barrier is covered by a higher one already in the buffer.
        guard self.requested.raise(to: barrier) else { return }
        self.buffer.addBarrier(
            BarrierWaiter { [self] in
                self.flushed.raise(to: barrier)
                self.pokeContinuation.yield()
            },
            number: barrier)
        self.flusher.wake(.barrier)
    }

    // MARK: Private

    private func waitUntilServing() async throws {
        while self.health.phase == .starting {
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func heartbeatPeriodically() async throws {
        // The flusher announced the node before it became ready.
        var announced = true
        var lastRemoval = ContinuousClock.now
        var failing = false
        var previous = self.activity.totals
        while true {
            let deadline = ContinuousClock.now + max(self.settings.heartbeatInterval * 4, .seconds(1))
            do {
                if announced {
                    let now = self.activity.totals
                    announced = try await self.store.report(
                        nodeID: self.flusher.nodeID, self.report(rates: now.rates(since: previous)), deadline: deadline)
                    previous = now
                }
                if !announced {
                    try await self.store.announce(
                        nodeID: self.flusher.nodeID, address: self.settings.advertisedAddress,
                        version: NodeVersion.current, barrierFlushed: self.flushed.load(ordering: .relaxed),
                        deadline: deadline)
                    announced = true
                }
                if ContinuousClock.now - lastRemoval >= self.settings.nodeGoneAfter {
                    lastRemoval = .now
                    let removed = try await self.store.removeSilentNodes(silentFor: self.settings.nodeRemovedAfter, deadline: deadline)
                    if removed > 0 {
                        self.logger.notice("removed silent nodes from the registry", metadata: ["cluster.removed": "\(removed)"])
                    }
                }
                failing = false
            } catch where Task.isCancelled {
                return
            } catch {
                if !failing {
                    self.logger.warning("cluster heartbeat failed", metadata: ["error": "\(describe(error))"])
                }
                failing = true
            }
            try await Task.sleep(for: self.settings.heartbeatInterval)
        }
    }

    /// Reads the registry into the history every ``ClusterHistory/interval``.
    private func sampleHistory() async throws {
        while true {
            do {
                let nodes = try await self.store.registeredNodes(deadline: .now + .seconds(1))
                self.history.record(nodes, liveWithin: self.settings.nodeGoneAfter)
            } catch where Task.isCancelled {
                return
            } catch {
                self.logger.debug("registry sample failed", metadata: ["error": "\(describe(error))"])
            }
            try await Task.sleep(for: self.history.interval)
        }
    }

    private func report(rates: (requests: Double, increments: Double, meanFlush: Duration?)) -> NodeReport {
        let oldest = self.buffer.oldestPendingSince.map { ContinuousClock.now - $0 }
        return NodeReport(
            state: "\(self.health.phase)",
            pendingKeys: self.buffer.pendingKeys,
            oldestPending: oldest,
            sinceLastFlush: self.health.sinceLastFlush,
            lastError: self.health.lastFlushFailure,
            requestsPerSecond: rates.requests,
            incrementsPerSecond: rates.increments,
            flushDuration: rates.meanFlush
        )
    }

    /// Looks for new barriers and records the ones flushed, every poll interval or as soon as a
    /// flush passed a marker.
    private func followBarriers() async throws {
        let ticker = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: self.settings.barrierPollInterval)
                self.pokeContinuation.yield()
            }
        }
        defer { ticker.cancel() }
        var recorded: Int64 = 0
        for await _ in self.pokes {
            try Task.checkCancellation()
            let deadline = ContinuousClock.now + self.settings.barrierTimeout
            do {
                let flushed = self.flushed.load(ordering: .relaxed)
                // A row removed meanwhile is announced again by the heartbeat, with this barrier.
                if flushed > recorded, try await self.store.confirmBarrier(flushed, nodeID: self.flusher.nodeID, deadline: deadline) {
                    recorded = flushed
                }
                let latest = try await self.store.latestBarrier(deadline: deadline)
                if latest > self.requested.load(ordering: .relaxed) {
                    self.requestFlush(forBarrier: latest)
                }
            } catch where Task.isCancelled {
                return
            } catch {
                self.logger.debug("barrier poll failed", metadata: ["error": "\(describe(error))"])
            }
        }
    }
}

extension Atomic where Value == Int64 {
    /// Raises the value to `candidate`; false if it was already as high.
    @discardableResult
    fileprivate func raise(to candidate: Int64) -> Bool {
        var current = self.load(ordering: .relaxed)
        while current < candidate {
            let (exchanged, original) = self.compareExchange(expected: current, desired: candidate, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
