import IncrementCore
import NIOCore
import NIOPosix

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
    // Timers on an event loop rather than a sleeping task: a cancelled `Task.sleep` keeps its
    // job until the deadline, so every read held one for its 5 s timeout (38 MB at 2,000 reads/s).
    let loop = MultiThreadedEventLoopGroup.singleton.any()
    let expiry = loop.scheduleTask(in: .nanoseconds(max(0, (deadline - .now).nanoseconds))) {
        if outcome.set(.failure(DeadlineExceeded())) {
            onExpiry()
            work.cancel()
        }
    }
    let watching = watch.map { watch in
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { repeated in
            guard let error = watch() else { return }
            repeated.cancel()
            if outcome.set(.failure(error)) { work.cancel() }
        }
    }
    defer {
        expiry.cancel()
        watching?.cancel()
    }
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
