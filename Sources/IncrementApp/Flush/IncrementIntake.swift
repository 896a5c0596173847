import CoreMetrics
import IncrementCore
import IncrementStore
import Logging

/// The write path, in one place: what the buffer takes, when the flusher is woken early, and the
/// waits for commits, with and without idempotency keys. The HTTP layer only decodes requests and
/// turns these answers into responses.
///
/// The flusher's own timer and retry back-off are the rest of "when does a node flush"; the
/// early wake-ups are here: at once for a waiting `wait=commit` request (after the flusher's
/// group-commit window), and when the pending keys pass ``FlushSettings/earlyFlushKeys``.
struct IncrementIntake: Sendable {
    let buffer: IncrementBuffer
    let flusher: Flusher
    let metrics: NodeMetrics
    let activity: NodeActivity
    let settings: FlushSettings
    let openWaits: OpenCommitWaits
    let idempotency: IdempotencyTable
    /// Idempotency keys recorded by earlier flushes, looked up many per query.
    let idempotencyLookup: CoalescedLookup<IdempotencyKey, IdempotencyRecord>

    /// What became of a request sent with an idempotency key.
    enum IdempotentAdmission: Sendable {
        /// Buffered now, or a repeat of a request that was: answer as the fast path does.
        case accepted(replayed: Bool)
        /// Answered by its commit (or by a repeat's recorded commit), as a `wait=commit` request is.
        case outcome(CommitOutcome, replayed: Bool)
    }

    /// Why a request sent with an idempotency key was refused.
    enum IdempotencyRefusal: Error, Sendable {
        /// The key came before with another request.
        case reused
        /// The first request with the key is still being processed.
        case inFlight
        /// The buffer refused the increments.
        case admission(AdmissionError)
    }

    /// Buffers `increment`; `202` follows.
    func accept(_ increment: Increment) throws(AdmissionError) {
        try self.counted { () throws(AdmissionError) in try self.buffer.add(increment) }
        self.admitted(count: 1)
    }

    /// Buffers `increments`, all or nothing; `202` follows.
    func accept(_ increments: [Increment]) throws(AdmissionError) {
        try self.counted { () throws(AdmissionError) in try self.buffer.add(increments) }
        self.admitted(count: increments.count)
    }

    /// Buffers `increment` and waits for the flush that carries it, at most
    /// ``FlushSettings/commitWaitTimeout``.
    func acceptAndWait(_ increment: Increment) async throws(AdmissionError) -> CommitOutcome {
        let wait = CommitWait()
        try self.counted { () throws(AdmissionError) in
            try self.buffer.add(increment, waiter: wait.waiter(for: increment.key))
        }
        return await self.waitForCommit(wait, count: 1)
    }

    /// Admits a request sent with an idempotency key: a repeat is answered as the first copy
    /// was and applies nothing; a key reused with another request is refused.
    func admit(_ request: IdempotentRequest, waitingForCommit: Bool, logger: Logger) async throws(IdempotencyRefusal) -> IdempotentAdmission {
        switch self.idempotency.claim(request.key, fingerprint: request.fingerprint) {
        case .mismatched:
            throw .reused
        case .repeated(.admitting), .repeated(.waiting):
            throw .inFlight
        case .repeated(.buffered):
            self.metrics.idempotentReplays.increment()
            return .accepted(replayed: true)
        case .claimed:
            break
        }
        // Recorded by an earlier flush, on any node? If the database does not answer, the
        // request is buffered all the same: the flush records the key once in any case.
        let recorded: IdempotencyRecord?
        do {
            recorded = try await self.idempotencyLookup.value(for: request.key)
        } catch {
            logger.debug("idempotency key look-up failed", metadata: ["error": "\(describe(error))"])
            recorded = nil
        }
        if let recorded {
            self.idempotency.release(request.key)
            guard recorded.fingerprint == request.fingerprint else { throw .reused }
            self.metrics.idempotentReplays.increment()
            guard waitingForCommit, request.totalKey != nil else { return .accepted(replayed: true) }
            return .outcome(recorded.commitOutcome(for: request.fingerprint), replayed: true)
        }
        guard waitingForCommit, let increment = request.increments.first else {
            do throws(AdmissionError) {
                try self.counted { () throws(AdmissionError) in try self.buffer.add(request) }
            } catch {
                self.idempotency.release(request.key)
                throw .admission(error)
            }
            self.idempotency.settle(request.key, as: .buffered)
            self.admitted(count: request.increments.count)
            return .accepted(replayed: false)
        }
        let wait = CommitWait()
        do throws(AdmissionError) {
            try self.counted { () throws(AdmissionError) in
                try self.buffer.add(request, waiter: wait.waiter(for: increment.key, idempotency: request))
            }
        } catch {
            self.idempotency.release(request.key)
            throw .admission(error)
        }
        self.idempotency.settle(request.key, as: .waiting)
        let outcome = await self.waitForCommit(wait, count: request.increments.count)
        // Answered without the commit (timed out, shutting down): a repeat is answered `202` now.
        self.idempotency.settle(request.key, as: .buffered)
        return .outcome(outcome, replayed: false)
    }

    // MARK: Private

    private func waitForCommit(_ wait: CommitWait, count: Int) async -> CommitOutcome {
        self.metrics.acceptedIncrements.increment(by: count)
        self.activity.recordAccepted(count)
        self.flusher.commitWaiterArrived()
        return await wait.outcome(timeout: self.settings.commitWaitTimeout, openWaits: self.openWaits)
    }

    /// Runs a buffer add, counting refusals for being full.
    private func counted(_ add: () throws(AdmissionError) -> Void) throws(AdmissionError) {
        do {
            try add()
        } catch {
            if case .overloaded = error { self.metrics.rejectedOverloaded.increment() }
            throw error
        }
    }

    private func admitted(count: Int) {
        self.metrics.acceptedIncrements.increment(by: count)
        self.activity.recordAccepted(count)
        if self.buffer.pendingKeys >= self.settings.earlyFlushKeys {
            self.flusher.wake(.pendingThreshold)
        }
    }
}
