import IncrementCore
import Synchronization

/// One `wait=commit` request's wait for its outcome, answered by whichever comes first: the
/// flush that carries the increment, the wait timeout, or the node's shutdown.
///
/// The later answers are ignored, so a flush that commits after the timeout answered changes
/// nothing for the client, which was told `pending` (accepted, to be written) in any case.
final class CommitWait: Sendable {
    private let answered = OneShot<CommitOutcome>()

    /// The waiter to hand to the buffer.
    func waiter(for key: CounterKey, idempotency: IdempotentRequest? = nil) -> CommitWaiter {
        CommitWaiter(key: key, idempotency: idempotency) { outcome in self.answer(outcome) }
    }

    /// Answers the wait, unless it has been answered already.
    func answer(_ outcome: CommitOutcome) {
        self.answered.set(outcome)
    }

    /// Waits for the outcome, at most `timeout`; `openWaits` answers it when the node stops serving.
    func outcome(timeout: Duration, openWaits: OpenCommitWaits) async -> CommitOutcome {
        openWaits.insert(self)
        defer { openWaits.remove(self) }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                self.answer(.pending(reason: "not committed within \(timeout); the increment stays buffered and is applied by a later flush"))
            }
            let outcome = await self.answered.value()
            group.cancelAll()
            return outcome
        }
    }
}

/// The `wait=commit` requests waiting right now, so that shutdown can answer them all: the HTTP
/// server waits for its requests before the final flush can run.
public final class OpenCommitWaits: Sendable {
    private let waits = Mutex<[ObjectIdentifier: CommitWait]>([:])

    /// Creates an empty set.
    public init() {}

    func insert(_ wait: CommitWait) {
        self.waits.withLock { $0[ObjectIdentifier(wait)] = wait }
    }

    func remove(_ wait: CommitWait) {
        _ = self.waits.withLock { $0.removeValue(forKey: ObjectIdentifier(wait)) }
    }

    /// Answers every open wait `pending`: the final flush writes (or spills) their increments.
    func answerAllPending() {
        let open = self.waits.withLock { Array($0.values) }
        for wait in open {
            wait.answer(.pending(reason: "the node is shutting down; its final flush writes the increment"))
        }
    }
}
