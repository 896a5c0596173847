import CoreMetrics
import IncrementCore
import IncrementStore
import Logging
import ServiceLifecycle

/// Writes the buffer to PostgreSQL: periodically, early when many keys wait, and soon after a
/// `wait=commit` request arrives. On graceful shutdown it writes everything left, by a deadline.
///
/// It first starts the node's storage (migrations, the cluster-shard agreement, the node's ledger
/// entry, spilled batches), retrying for as long as the database is away; the HTTP server answers
/// meanwhile, not ready. A failed flush keeps its batch and retries it with the same ``BatchID``
/// and an exponential back-off, while new increments keep buffering for the batches after it.
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
        /// A flush barrier waits for everything accepted before it.
        case barrier
    }

    let buffer: IncrementBuffer
    let store: CounterStore
    let settings: FlushSettings
    let shardMap: ClusterShardMap
    let metrics: NodeMetrics
    let health: NodeHealth
    let activity: NodeActivity
    let spill: SpillDirectory?
    let idempotency: IdempotencyTable
    /// The node's read cache, told of each flush's shards when it ends (nil: no cache).
    let readCache: CommittedValueCache?
    /// The address this node registers under.
    let advertisedAddress: String
    let logger: Logger
    /// This process's identity in the flush ledger; fresh at every start.
    public let nodeID: String
    /// What this node still owes the database; the exit status is decided from it.
    public let account = ShutdownAccount()

    private let groupCommit = GroupCommitWindow()
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
        activity: NodeActivity,
        spill: SpillDirectory?,
        idempotency: IdempotencyTable,
        advertisedAddress: String,
        nodeID: String,
        readCache: CommittedValueCache? = nil,
        logger: Logger
    ) {
        self.idempotency = idempotency
        self.readCache = readCache
        self.advertisedAddress = advertisedAddress
        self.buffer = buffer
        self.store = store
        self.settings = settings
        self.shardMap = ClusterShardMap(shardCount: settings.clusterShards)
        self.metrics = metrics
        self.health = health
        self.activity = activity
        self.spill = spill
        self.nodeID = nodeID
        self.logger = logger
        // Wake-ups coalesce: one pending wake-up is as good as many.
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a flush soon. Cheap and safe to call from any request handler.
    public func wake(_ reason: Wake) {
        self.wakeupContinuation.yield(reason)
    }

    /// Asks for a flush for a `wait=commit` request just buffered, after the group-commit window.
    func commitWaiterArrived() {
        self.groupCommit.waiterArrived()
        self.wake(.commitWaiter)
    }

    public func run() async throws {
        var state = FlushState()
        let started = try await cancelWhenGracefulShutdown { try await self.startUp() }
        if started {
            self.health.enter(.serving)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.tickPeriodically() }
                group.addTask { await self.probeDatabase() }
                await withGracefulShutdownHandler {
                    for await wake in self.wakeups {
                        await self.handle(wake, state: &state)
                    }
                } onGracefulShutdown: {
                    self.wakeupContinuation.finish()
                }
                group.cancelAll()
            }
        }
        self.health.enter(.stopping)
        try await self.flushRemaining(state: &state, registered: started)
    }

    // MARK: Start-up

    /// Prepares the database for this node, retrying while it is unreachable; false if shutdown
    /// came first. Errors that waiting cannot fix (a schema newer than this build, a different
    /// cluster-shard count) are thrown.
    private func startUp() async throws -> Bool {
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                if self.settings.migrateOnStart {
                    try await self.store.migrate()
                }
                try await self.store.agree(onClusterSetting: "cluster_shards", value: Int64(self.settings.clusterShards))
                try await self.store.register(nodeID: self.nodeID)
                // In the registry before the node is ready: a flush barrier raised from now on waits for it.
                let latestBarrier = try await self.store.announce(
                    nodeID: self.nodeID, address: self.advertisedAddress, version: NodeVersion.current,
                    deadline: .now + self.settings.limits.attemptTimeout)
                // What this node accepts from now on comes after every delete made so far.
                self.buffer.raiseWindowBarrier(to: latestBarrier)
                self.health.recordDatabase(.writable)
                try await self.replaySpilledBatches()
                self.logger.info("storage ready", metadata: ["startup.attempts": "\(attempt)"])
                return true
            } catch let error as StoreError {
                throw error
            } catch {
                if Task.isCancelled { break }
                self.health.recordDatabase(error.isReadOnlyServerError ? .notWritable : .unreachable)
                self.logger.warning(
                    "database not ready; retrying",
                    metadata: ["startup.attempt": "\(attempt)", "error": "\(describe(error))"]
                )
                try? await Task.sleep(for: min(self.settings.initialRetryDelay * (1 << min(attempt, 6)), .seconds(2)))
            }
        }
        return false
    }

    /// Applies batches other nodes left in the spill directory, each exactly once.
    private func replaySpilledBatches() async throws {
        guard let spill = self.spill else { return }
        let spilled = try spill.batches(shardMap: self.shardMap)
        guard !spilled.isEmpty else { return }
        var nodes = Set<String>()
        for entry in spilled {
            defer { self.readCache?.changed(shards: entry.batch.clusterShards) }
            let result = try await self.store.apply(entry.batch, mayHaveCommittedBefore: entry.mayHaveCommitted)
            self.recordQuarantine(result, batch: entry.batch)
            try spill.remove(entry)
            nodes.insert(entry.batch.id.nodeID)
            self.logger.notice(
                "applied a spilled batch",
                metadata: [
                    "flush.batch": "\(entry.batch.id)", "flush.keys": "\(entry.batch.count)",
                    "flush.disposition": "\(result.disposition)",
                ]
            )
        }
        // Files another node may have spilled meanwhile keep their node's ledger entry.
        for node in nodes.subtracting(try spill.nodesWithBatches()) {
            // That node has nothing left to retry: its ledger entry can go.
            try await self.store.deregister(nodeID: node, deadline: .now + self.settings.limits.attemptTimeout)
        }
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

    /// Checks the database every second, apart from the flushes, so that `/readyz` turns within
    /// about two seconds of an outage or of the endpoint reaching a standby, even while a flush
    /// hangs or no traffic comes.
    private func probeDatabase() async {
        while !Task.isCancelled {
            self.health.recordDatabase(await self.store.databaseRole(deadline: .now + .seconds(1)))
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
        }
    }

    private func handle(_ wake: Wake, state: inout FlushState) async {
        // Backing off after a failure: only the retry wake-up retries; ticks still do upkeep.
        let backingOff = state.retained != nil && ContinuousClock.now < state.nextRetry
        if !backingOff {
            await self.flushAfterWake(wake, state: &state)
        }
        if case .tick = wake, ContinuousClock.now - state.lastUpkeep >= self.settings.upkeepInterval {
            state.lastUpkeep = .now
            await self.performUpkeep()
        }
        self.metrics.observe(self.buffer)
    }

    private func flushAfterWake(_ wake: Wake, state: inout FlushState) async {
        if case .commitWaiter = wake, self.settings.groupCommitWindow > .zero {
            // Let other waiting requests join this flush: one transaction serves them all.
            await self.groupCommit.wait(atMost: self.settings.groupCommitWindow)
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

    /// Writes the retained batch, or else everything buffered. A periodic attempt (no `deadline`)
    /// runs to the store's attempt timeout or until shutdown begins; the final flush's run to `deadline`.
    private func flushOnce(state: inout FlushState, deadline: ContinuousClock.Instant? = nil) async -> FlushOutcome {
        if state.retained == nil {
            state.retained = self.drainIntoNextBatch(state: &state)
            if let batch = state.retained?.batch { self.account.retained(keys: batch.count) }
        }
        guard var retained = state.retained else { return .idle }
        retained.attempts += 1
        if retained.attempts > 1 { self.metrics.flushRetries.increment() }

        let batch = retained.batch
        let started = ContinuousClock.now
        self.health.recordFlush(startedAt: started)
        defer { self.health.recordFlush(startedAt: nil) }
        let wantedKeys = retained.waiters.map(\.key)
        let mayHaveCommittedBefore = retained.mayHaveCommitted
        do {
            // A periodic attempt gives way to shutdown at once (the final flush retries the same
            // batch, by the shutdown deadline); the final flush's own attempts run to their deadline.
            let attempt: @Sendable () async throws -> FlushResult = {
                // This node's reads see its own commit before any waiter is answered; the other
                // nodes hear of it from the database. Also after a failure: it may have committed.
                defer { self.readCache?.changed(shards: batch.clusterShards) }
                return try await self.store.apply(
                    batch,
                    totalsFor: wantedKeys,
                    mayHaveCommittedBefore: mayHaveCommittedBefore,
                    deadline: deadline
                )
            }
            let result = try await (deadline == nil ? cancelWhenGracefulShutdown(attempt) : attempt())
            let elapsed = ContinuousClock.now - started
            self.metrics.flushes.increment()
            self.metrics.flushDuration.recordNanoseconds(elapsed.nanoseconds)
            self.activity.recordFlush(took: elapsed)
            self.metrics.batchKeys.record(batch.count)
            self.metrics.lockWait.recordNanoseconds(result.lockWait.nanoseconds)
            if result.disposition == .alreadyApplied { self.metrics.alreadyAppliedBatches.increment() }
            self.recordQuarantine(result, batch: batch)
            self.logger.debug(
                "flushed",
                metadata: [
                    "flush.batch": "\(batch.id)", "flush.keys": "\(batch.count)",
                    "flush.attempts": "\(retained.attempts)", "flush.duration": "\(elapsed)",
                    "flush.disposition": "\(result.disposition)",
                ]
            )
            for waiter in retained.waiters {
                waiter.resume(with: Self.outcome(for: waiter, in: result))
            }
            self.settleIdempotency(of: batch, result: result)
            for barrier in retained.barriers {
                barrier.resume()
            }
            state.retained = nil
            self.account.settledRetained()
            state.consecutiveFailures = 0
            self.health.recordDatabase(.writable)
            self.health.recordFlushEnded(error: nil)
            return .flushed
        } catch {
            // Only a FlushFailure says whether COMMIT went out; assume it may have otherwise.
            let failure = error as? FlushFailure ?? FlushFailure(underlying: error, mayHaveCommitted: true)
            retained.mayHaveCommitted = retained.mayHaveCommitted || failure.mayHaveCommitted
            state.retained = retained
            state.consecutiveFailures += 1
            self.metrics.flushFailures.increment()
            if failure.isReadOnlyServerError { self.health.recordDatabase(.notWritable) }
            self.health.recordFlushEnded(error: describe(failure.underlying))
            self.logger.error(
                "flush failed; the batch is kept and retried",
                metadata: [
                    "flush.batch": "\(batch.id)", "flush.keys": "\(batch.count)",
                    "flush.attempts": "\(retained.attempts)", "flush.mayHaveCommitted": "\(retained.mayHaveCommitted)",
                    "error": "\(describe(failure.underlying))",
                ]
            )
            return .failed
        }
    }

    /// Drains the buffer into the node's next batch (the next sequence number); nil when nothing
    /// is buffered and nobody waits.
    private func drainIntoNextBatch(state: inout FlushState) -> RetainedBatch? {
        let pending = self.buffer.drain()
        self.groupCommit.drained(waiters: pending.waiters.count)
        if pending.hasNothingToWrite {
            // Nothing to write, and every earlier batch has committed (one batch is in flight at
            // a time, and none is retained when the buffer is drained): the barriers are met.
            for barrier in pending.barriers { barrier.resume() }
            if pending.waiters.isEmpty { return nil }
        }
        state.sequence += 1
        let batch = FlushBatch(
            id: BatchID(nodeID: self.nodeID, sequence: state.sequence),
            deltas: pending.deltas,
            idempotent: pending.idempotent,
            barrier: pending.barrier,
            shardMap: self.shardMap
        )
        return RetainedBatch(batch: batch, waiters: pending.waiters, barriers: pending.barriers)
    }

    /// What `waiter` is told once `result` committed.
    static func outcome(for waiter: CommitWaiter, in result: FlushResult) -> CommitOutcome {
        let key = waiter.key
        if result.disposition == .outcomeUnknown {
            return .unknown(reason: CounterStore.unknownOutcomeReason)
        }
        if let (idempotencyKey, fingerprint) = waiter.idempotency {
            // The answer is the recorded request's, whichever flush recorded it.
            guard let record = result.idempotencyRecords[idempotencyKey] else {
                return .unknown(reason: "the flush committed but the idempotency key was not recorded")
            }
            return record.commitOutcome(for: fingerprint, quarantineReason: result.quarantined[key])
        }
        if let reason = result.quarantined[key] {
            return .quarantined(reason: reason)
        }
        if let total = result.totals[key] {
            return .committed(total: total)
        }
        return .unknown(reason: "the flush committed but returned no total for this key")
    }

    /// Lets go of the batch's idempotency keys (the database answers repeats from now on) and
    /// counts the requests dropped because their key had been recorded with another body.
    private func settleIdempotency(of batch: FlushBatch, result: FlushResult) {
        guard !batch.idempotent.isEmpty else { return }
        self.idempotency.release(batch.idempotent.map(\.key))
        let conflicts = batch.idempotent.count { request in
            result.idempotencyRecords[request.key].map { $0.fingerprint != request.fingerprint } ?? false
        }
        if conflicts > 0 {
            self.metrics.idempotencyConflicts.increment(by: conflicts)
            self.logger.warning(
                "idempotency keys reused with another body; those requests were not applied",
                metadata: ["flush.batch": "\(batch.id)", "idempotency.conflicts": "\(conflicts)"]
            )
        }
    }

    private func recordQuarantine(_ result: FlushResult, batch: FlushBatch) {
        guard !result.quarantined.isEmpty else { return }
        self.metrics.quarantinedIncrements.increment(by: result.quarantined.count)
        self.logger.warning(
            "quarantined increments",
            metadata: [
                "flush.batch": "\(batch.id)", "flush.quarantined": "\(result.quarantined.count)",
                "flush.disposition": "\(result.disposition)",
            ]
        )
    }

    /// Periodic chores: keep this node's ledger entry alive, prune expired ledger entries,
    /// deletion records and idempotency keys, and apply what other nodes spilled. They give way to shutdown at once:
    /// during an outage each would wait for its deadline, and the final flush after them.
    private func performUpkeep() async {
        do {
            try await cancelWhenGracefulShutdown { try await self.upkeepChores() }
        } catch {
            guard !Task.isShuttingDownGracefully else { return }
            self.logger.warning("ledger upkeep failed", metadata: ["error": "\(describe(error))"])
        }
    }

    private func upkeepChores() async throws {
        let deadline = ContinuousClock.now + self.settings.limits.attemptTimeout
        try await self.store.heartbeat(nodeID: self.nodeID, deadline: deadline)
        let pruned = try await self.store.pruneLedger(deadline: deadline)
        self.metrics.prunedLedgerRows.increment(by: pruned)
        try await self.store.pruneDeletionRecords(deadline: deadline)
        // In rounds of at most 10,000 rows, so that a backlog never makes one long statement.
        for _ in 0..<20 {
            let expired = try await self.store.pruneIdempotencyKeys(limit: 10_000, deadline: deadline)
            self.metrics.prunedIdempotencyKeys.increment(by: expired)
            if expired < 10_000 { break }
        }
        try await self.replaySpilledBatches()
    }

    // MARK: Shutdown

    /// The final flush: keep trying until everything is written or the shutdown deadline nears;
    /// then spill what is left (or, with no spill directory, report it lost) and throw.
    private func flushRemaining(state: inout FlushState, registered: Bool) async throws {
        // Leave a moment after the last attempt for the spill and the exit: at the deadline itself
        // the service group cancels what still runs.
        let deadline = self.health.shutdownDeadline(timeout: self.settings.shutdownTimeout) - .milliseconds(700)
        self.logger.info("final flush", metadata: ["flush.pendingKeys": "\(self.buffer.pendingKeys)"])
        while registered {
            let attemptDeadline = min(deadline, .now + self.settings.limits.attemptTimeout)
            switch await self.flushOnce(state: &state, deadline: attemptDeadline) {
            case .idle:
                self.logger.info("final flush complete", metadata: ["flush.batches": "\(state.sequence)"])
                do {
                    try await self.store.deregister(nodeID: self.nodeID, deadline: min(deadline, .now + .seconds(2)))
                } catch {
                    // Harmless: the entry expires after the ledger retention.
                    self.logger.notice("could not remove this node's ledger entry", metadata: ["error": "\(describe(error))"])
                }
                return
            case .flushed:
                continue
            case .failed:
                let delay = state.retryDelay(settings: self.settings)
                if ContinuousClock.now + delay >= deadline { break }
                try? await Task.sleep(for: delay)
                continue
            }
            break
        }
        try self.setAsideUnwritten(state: &state)
    }

    /// Spills (or reports lost) the retained batch and everything still buffered, answers every
    /// waiter with what is now true, and throws ``FinalFlushIncomplete``.
    private func setAsideUnwritten(state: inout FlushState) throws {
        var unwritten: [RetainedBatch] = []
        if let retained = state.retained { unwritten.append(retained) }
        if let buffered = self.drainIntoNextBatch(state: &state) { unwritten.append(buffered) }
        state.retained = nil
        self.account.settledRetained()
        for retained in unwritten {
            let outcome: CommitOutcome
            do {
                guard let spill = self.spill else { throw SpillUnavailable() }
                let path = try spill.write(retained.batch, mayHaveCommitted: retained.mayHaveCommitted)
                self.account.spilled(keys: retained.batch.count)
                outcome = .pending(reason: "the database was unreachable at shutdown; the increment was spilled to disk and is applied when a node starts with the spill directory")
                self.logger.warning(
                    "spilled a batch the database could not take at shutdown",
                    metadata: ["flush.batch": "\(retained.batch.id)", "flush.keys": "\(retained.batch.count)", "spill.file": "\(path)"]
                )
            } catch {
                self.account.lost(keys: retained.batch.count)
                outcome =
                    retained.mayHaveCommitted
                    ? .unknown(reason: "the node shut down after a commit whose answer was lost")
                    : .notCommitted(reason: "the node shut down before the database accepted the increment")
                self.logger.critical(
                    "shutdown deadline passed with increments unwritten; they are lost",
                    metadata: [
                        "flush.batch": "\(retained.batch.id)", "flush.keys": "\(retained.batch.count)",
                        "flush.mayHaveCommitted": "\(retained.mayHaveCommitted)", "error": "\(describe(error))",
                    ]
                )
            }
            for waiter in retained.waiters {
                waiter.resume(with: outcome)
            }
            self.idempotency.release(retained.batch.idempotent.map(\.key))
        }
        if let unwritten = self.account.unwritten(bufferedKeys: 0) {
            throw unwritten
        }
    }
}

/// No spill directory is configured.
struct SpillUnavailable: Error, CustomStringConvertible {
    var description: String { "no spill directory is configured (FLUSH_SPILL_DIR)" }
}
