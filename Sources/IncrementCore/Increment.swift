/// One validated increment: add `delta` to the counter named `key`.
public struct Increment: Sendable, Hashable {
    /// The counter's name.
    public let key: CounterKey
    /// The amount to add; negative to decrement.
    public let delta: Int64

    /// Creates an increment after checking `key` against the key rules.
    public init(key: String, delta: Int64) throws(IncrementInputError) {
        self.key = try CounterKey(validating: key)
        self.delta = delta
    }

    /// Creates an increment of an already validated key.
    public init(key: CounterKey, delta: Int64) {
        self.key = key
        self.delta = delta
    }
}
