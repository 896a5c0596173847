import Synchronization

/// The deadline of an operation passed before it finished.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public var description: String { "the operation did not finish before its deadline" }
}

/// Runs `operation`, giving up at `deadline`.
///
/// At the deadline the caller gets ``DeadlineExceeded`` whatever the operation is doing: it runs
/// in a task of its own, which is then cancelled, and `onExpiry` is called to unblock work that
/// does not observe cancellation (a query on a connection whose peer went silent ends only when
/// the connection is closed). A task group would instead wait for such work to end.
func withDeadline<Result: Sendable>(
    _ deadline: ContinuousClock.Instant,
    onExpiry: @escaping @Sendable () -> Void = {},
    _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let race = DeadlineRace<Result>()
    let work = Task {
        do {
            race.finish(.success(try await operation()))
        } catch {
            race.finish(.failure(error))
        }
    }
    let timer = Task {
        guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
        if race.finish(.failure(DeadlineExceeded())) {
            onExpiry()
            work.cancel()
        }
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await race.value()
    } onCancel: {
        work.cancel()
    }
}

/// The first of the operation and the timer to finish decides the outcome.
private final class DeadlineRace<Value: Sendable>: Sendable {
    private enum State {
        case running(CheckedContinuation<Value, any Error>?)
        case finished(Result<Value, any Error>)
    }

    private let state = Mutex(State.running(nil))

    /// Records `result` if nothing finished before; true if it was the first.
    @discardableResult
    func finish(_ result: Result<Value, any Error>) -> Bool {
        let (first, continuation): (Bool, CheckedContinuation<Value, any Error>?) = self.state.withLock { state in
            guard case .running(let continuation) = state else { return (false, nil) }
            state = .finished(result)
            return (true, continuation)
        }
        continuation?.resume(with: result)
        return first
    }

    func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let finished: Result<Value, any Error>? = self.state.withLock { state in
                switch state {
                case .finished(let result): return result
                case .running: state = .running(continuation); return nil
                }
            }
            if let finished { continuation.resume(with: finished) }
        }
    }
}
