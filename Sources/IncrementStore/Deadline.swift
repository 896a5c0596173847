/// The deadline of an operation passed before it finished.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public var description: String { "the operation did not finish before its deadline" }
}

/// Runs `operation`, giving up at `deadline`.
///
/// When the deadline passes first, the operation's task is cancelled and `onExpiry` is called,
/// to unblock work that does not observe cancellation (a query on a connection whose peer has
/// gone silent ends only when the connection is closed); then ``DeadlineExceeded`` is thrown.
func withDeadline<Result: Sendable>(
    _ deadline: ContinuousClock.Instant,
    onExpiry: @escaping @Sendable () -> Void = {},
    _ operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: DeadlineRace<Result>.self) { group in
        group.addTask { .finished(try await operation()) }
        group.addTask {
            try await Task.sleep(until: deadline, clock: .continuous)
            return .expired
        }
        defer { group.cancelAll() }
        // Both tasks were added above, so the group has a first result.
        switch try await group.next() {
        case .finished(let result)?:
            return result
        case .expired?, nil:
            onExpiry()
            throw DeadlineExceeded()
        }
    }
}

private enum DeadlineRace<Result: Sendable>: Sendable {
    case finished(Result)
    case expired
}
