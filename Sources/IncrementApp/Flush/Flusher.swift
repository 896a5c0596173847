import CoreMetrics
import IncrementCore
import IncrementStore
import Logging
import ServiceLifecycle

/// Writes the buffer to PostgreSQL: periodically, early when many keys wait, and soon after a
/// `wait=commit` request arrives. On graceful shutdown it writes everything left, then returns.
///
/// A failed flush keeps its batch and retries it with the same ``BatchID`` and an exponential
/// back-off, while new increments keep buffering for the batches after it.
public final class Flusher: Service, Sendable, CustomStringConvertible {
    /// Why the flusher was woken.
    public enum Wake: Sendable {
        /// The periodic interval passed.
        case tick
        /// A caller waits for its increment to commit.
        case commitWaiter
        /// The buffer holds more keys than the early-flush threshold.
        case pendingThreshold
        /// A failed flush's back-off ended.
        case retry
    }

    let buffer: IncrementBuffer
    let store: CounterStore
    let settings: FlushSettings
    let shardMap: ClusterShardMap
    let metrics: NodeMetrics
    let health: NodeHealth
    let logger: Logger
    /// This process's identity in the flush ledger; fresh at every start.
    public let nodeID: String

    private let wakeups: AsyncStream<Wake>
    private let wakeupContinuation: AsyncStream<Wake>.Continuation

    public var description: String { "Flusher(node: \(self.nodeID))" }

    /// Creates a flusher for `buffer` writing through `store`.
    public init(
        buffer: IncrementBuffer,
        store: CounterStore,
        settings: FlushSettings,
        metrics: NodeMetrics,
        health: NodeHealth,
        nodeID: String,
        logger: Logger
    ) {
        self.buffer = buffer
        self.store = store
        self.settings = settings
        self.shardMap = ClusterShardMap(shardCount: settings.clusterShards)
        self.metrics = metrics
        self.health = health
        self.nodeID = nodeID
        self.logger = logger
        // Wake-ups coalesce: one pending wake-up is as good as many.
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a flush soon. Cheap and safe to call from any request handler.
    public func wake(_ reason: Wake) {
        self.wakeupContinuation.yield(reason)
    }

    public func run() async throws {
        var state = FlushState()
        self.health.recordDatabase(reachable: await self.store.isReachable())
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tickPeriodically() }
            await withGracefulShutdownHandler {
                for await wake in self.wakeups {
                    await self.handle(wake, state: &state)
                }
            } onGracefulShutdown: {
                self.wakeupContinuation.finish()
            }
            group.cancelAll()
        }
        self.health.recordShutdown()
        await self.flushRemaining(state: &state)
    }

    // MARK: The loop

    private func tickPeriodically() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: self.settings.interval)
            } catch {
                return
            }
            self.wakeupContinuation.yield(.tick)
        }
    }

    private func handle(_ wake: Wake, state: inout FlushState) async {
        // Backing off after a failure: only the retry wake-up retries; ticks still do upkeep.
        let backingOff = state.retained != nil && ContinuousClock.now < state.nextRetry
        if !backingOff {
            await self.flushAfterWake(wake, state: &state)
        }
        if case .tick = wake {
            await self.performUpkeep(state: &state)
        }
        self.metrics.observe(self.buffer)
    }

    private func flushAfterWake(_ wake: Wake, state: inout FlushState) async {
        if case .commitWaiter = wake, self.settings.groupCommitWindow > .zero {
            // Let other waiting requests join this flush: one transaction serves them all.
            try? await Task.sleep(for: self.settings.groupCommitWindow)
        }
        let hadRetainedBatch = state.retained != nil
        var outcome = await self.flushOnce(state: &state)
        if outcome == .flushed && hadRetainedBatch {
            // The retried batch is in; what buffered meanwhile goes now rather than at the next tick.
            outcome = await self.flushOnce(state: &state)
        }
        if outcome == .failed {
            let delay = state.retryDelay(settings: self.settings)
            state.nextRetry = .now + delay
            Task {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                self.wake(.retry)
            }
        }
    }

    /// What one flush attempt did.
    enum FlushOutcome {
        /// Nothing was buffered or retained.
        case idle
        /// A batch committed.
        case flushed
        /// The write failed; the batch is retained for a retry.
        case failed
    }

    /// Writes the retained batch, or else everything buffered.
    private func flushOnce(state: inout FlushState) async -> FlushOutcome {
        if state.retained == nil {
            let pending = self.buffer.drain()
            if pending.isEmpty { return .idle }
            state.sequence += 1
            let batch = FlushBatch(
                id: BatchID(nodeID: self.nodeID, sequence: state.sequence),
                deltas: pending.deltas,
                shardMap: self.shardMap
            )
            state.retained = RetainedBatch(batch: batch, waiters: pending.waiters)
        }
        guard var retained = state.retained else { return .idle }
        retained.attempts += 1
        if retained.attempts > 1 { self.metrics.flushRetries.increment() }
        state.retained = retained

        let batch = retained.batch
        let started = ContinuousClock.now
        do {
            let result = try await self.store.apply(batch, totalsFor: retained.waiters.map(\.key))
            let elapsed = ContinuousClock.now - started
            self.metrics.flushes.increment()
            self.metrics.flushDuration.recordNanoseconds(elapsed.nanoseconds)
            self.metrics.batchKeys.record(batch.count)
            self.metrics.lockWait.recordNanoseconds(result.lockWait.nanoseconds)
            if result.wasAlreadyApplied { self.metrics.alreadyAppliedBatches.increment() }
            if !result.quarantined.isEmpty {
                self.metrics.quarantinedIncrements.increment(by: result.quarantined.count)
                self.logger.warning(
                    "quarantined increments whose totals would leave bigint",
                    metadata: ["flush.batch": "\(batch.id)", "flush.quarantined": "\(result.quarantined.count)"]
                )
            }
            self.logger.debug(
                "flushed",
                metadata: [
                    "flush.batch": "\(batch.id)", "flush.keys": "\(batch.count)",
                    "flush.attempts": "\(retained.attempts)", "flush.duration": "\(elapsed)",
                    "flush.alreadyApplied": "\(result.wasAlreadyApplied)",
                ]
            )
            for waiter in retained.waiters {
                if let reason = result.quarantined[waiter.key] {
                    waiter.resume(with: .quarantined(reason: reason))
                } else if let total = result.totals[waiter.key] {
                    waiter.resume(with: .committed(total: total))
                } else {
                    waiter.resume(with: .abandoned(reason: "the flush returned no total for this key"))
                }
            }
            state.retained = nil
            state.consecutiveFailures = 0
            state.lastDatabaseContact = .now
            self.health.recordDatabase(reachable: true)
            return .flushed
        } catch {
            state.consecutiveFailures += 1
            self.metrics.flushFailures.increment()
            self.health.recordDatabase(reachable: false)
            self.logger.error(
                "flush failed; the batch is kept and retried",
                metadata: [
                    "flush.batch": "\(batch.id)", "flush.keys": "\(batch.count)",
                    "flush.attempts": "\(retained.attempts)", "error": "\(describe(error))",
                ]
            )
            return .failed
        }
    }

    /// Periodic chores: prune the ledger, and probe the database when idle so `/readyz` stays true.
    private func performUpkeep(state: inout FlushState) async {
        let now = ContinuousClock.now
        if now - state.lastLedgerPrune >= self.settings.ledgerPruneInterval {
            state.lastLedgerPrune = now
            do {
                let pruned = try await self.store.pruneLedger(olderThan: self.settings.ledgerRetention)
                self.metrics.prunedLedgerRows.increment(by: pruned)
            } catch {
                self.logger.warning("pruning the flush ledger failed", metadata: ["error": "\(describe(error))"])
            }
        }
        if state.retained == nil && now - state.lastDatabaseContact >= .seconds(5) {
            let reachable = await self.store.isReachable()
            self.health.recordDatabase(reachable: reachable)
            if reachable { state.lastDatabaseContact = now }
        }
    }

    /// The final flush: keep trying until everything is written or the shutdown timeout passes.
    private func flushRemaining(state: inout FlushState) async {
        let deadline = ContinuousClock.now + self.settings.shutdownTimeout
        self.logger.info("final flush", metadata: ["flush.pendingKeys": "\(self.buffer.pendingKeys)"])
        while true {
            switch await self.flushOnce(state: &state) {
            case .idle:
                self.logger.info("final flush complete", metadata: ["flush.batches": "\(state.sequence)"])
                return
            case .flushed:
                continue
            case .failed:
                break
            }
            let delay = state.retryDelay(settings: self.settings)
            if ContinuousClock.now + delay > deadline { break }
            try? await Task.sleep(for: delay)
        }
        var abandoned = self.buffer.drain()
        var lostKeys = abandoned.deltas.count
        if let retained = state.retained {
            lostKeys += retained.batch.count
            abandoned.waiters.append(contentsOf: retained.waiters)
        }
        for waiter in abandoned.waiters {
            waiter.resume(with: .abandoned(reason: "the node shut down before the database accepted the increment"))
        }
        self.logger.critical(
            "shutdown timeout passed with increments unwritten; they are lost",
            metadata: ["flush.lostKeys": "\(lostKeys)", "flush.timeout": "\(self.settings.shutdownTimeout)"]
        )
    }
}

/// A batch that has been drained from the buffer and not yet committed.
struct RetainedBatch {
    let batch: FlushBatch
    let waiters: [CommitWaiter]
    var attempts = 0
}

/// The flush loop's own state, touched by the loop alone.
struct FlushState {
    var sequence: Int64 = 0
    var retained: RetainedBatch?
    var consecutiveFailures = 0
    var lastLedgerPrune = ContinuousClock.now
    var lastDatabaseContact = ContinuousClock.now
    /// While a retained batch backs off, the earliest time to retry it.
    var nextRetry = ContinuousClock.now

    /// Exponential back-off: the initial delay doubled per consecutive failure, capped.
    func retryDelay(settings: FlushSettings) -> Duration {
        let exponent = min(max(self.consecutiveFailures - 1, 0), 20)
        return min(settings.initialRetryDelay * (1 << exponent), settings.maximumRetryDelay)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole &+ attoseconds / 1_000_000_000
    }
}
