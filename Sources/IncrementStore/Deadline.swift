import IncrementCore

/// The deadline of an operation passed before it finished.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public var description: String { "the operation did not finish before its deadline" }
}

/// Runs `operation`, giving up at `deadline`, or earlier when `watch` reports an error.
///
/// At the deadline the caller gets ``DeadlineExceeded`` whatever the operation is doing: it runs
/// in a task of its own, which is then cancelled, and `onExpiry` is called to unblock work that
/// does not observe cancellation (a query on a connection whose peer went silent ends only when
/// the connection is closed). A task group would instead wait for such work to end.
///
/// Cancelling the caller ends the wait the same way, with `CancellationError`.
///
/// `watch`, when given, is asked every 100 ms whether the operation can still succeed; the first
/// error it returns ends the wait with that error (the operation is cancelled).
func withDeadline<Result: Sendable>(
    _ deadline: ContinuousClock.Instant,
    onExpiry: @escaping @Sendable () -> Void = {},
    watch: (@Sendable () -> (any Error)?)? = nil,
    _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    // The first of the operation, the timer and the watch to finish decides the outcome.
    let outcome = OneShot<Swift.Result<Result, any Error>>()
    let work = Task {
        do {
            outcome.set(.success(try await operation()))
        } catch {
            outcome.set(.failure(error))
        }
    }
    let timer = Task {
        while true {
            let wake = watch == nil ? deadline : min(deadline, .now + .milliseconds(100))
            guard (try? await Task.sleep(until: wake, clock: .continuous)) != nil else { return }
            if wake == deadline {
                if outcome.set(.failure(DeadlineExceeded())) {
                    onExpiry()
                    work.cancel()
                }
                return
            }
            if let error = watch?() {
                if outcome.set(.failure(error)) { work.cancel() }
                return
            }
        }
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        try await outcome.value().get()
    } onCancel: {
        // Cancelled (a shutdown giving way): end the wait now, as at the deadline.
        if outcome.set(.failure(CancellationError())) {
            onExpiry()
            work.cancel()
        }
    }
}
