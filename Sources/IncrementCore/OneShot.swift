import Synchronization

/// A value set once and awaited: the first ``set(_:)`` wins, later ones are ignored.
///
/// For answers that can come from several places at once (a flush, a timer, a shutdown), where
/// exactly one must reach the waiter.
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Value, Never>?)
        case set(Value)
    }

    private let state = Mutex(State.waiting(nil))

    /// Creates an unset value.
    public init() {}

    /// Sets the value unless it is set already; true if this call set it.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        let (first, continuation): (Bool, CheckedContinuation<Value, Never>?) = self.state.withLock { state in
            guard case .waiting(let continuation) = state else { return (false, nil) }
            state = .set(value)
            return (true, continuation)
        }
        continuation?.resume(returning: value)
        return first
    }

    /// The value, once set. One caller awaits it.
    public func value() async -> Value {
        await withCheckedContinuation { continuation in
            let value: Value? = self.state.withLock { state in
                switch state {
                case .set(let value): return value
                case .waiting: state = .waiting(continuation); return nil
                }
            }
            if let value { continuation.resume(returning: value) }
        }
    }
}
