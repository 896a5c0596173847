/// Why the buffer refused an increment. A refused increment changes nothing.
public enum AdmissionError: Error, Sendable, Hashable {
    /// The buffer holds its maximum number of pending keys; the caller should retry later.
    case overloaded
    /// Adding the delta would take the key's pending total outside Int64.
    case pendingTotalOutOfRange(key: CounterKey)
}
