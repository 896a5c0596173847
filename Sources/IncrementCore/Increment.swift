/// One validated increment: add `delta` to the counter named `key`.
public struct Increment: Sendable, Hashable {
    /// The counter's name: 1 to ``Increment/maximumKeyLength`` bytes of UTF-8 without NUL.
    public let key: String
    /// The amount to add; negative to decrement.
    public let delta: Int64

    /// The longest key accepted, in UTF-8 bytes.
    public static let maximumKeyLength = 256

    /// Creates an increment after checking `key` against the key rules.
    public init(key: String, delta: Int64) throws(IncrementInputError) {
        try Self.validate(key: key)
        self.key = key
        self.delta = delta
    }

    /// Creates an increment whose key is already known to be valid.
    init(validatedKey key: String, delta: Int64) {
        self.key = key
        self.delta = delta
    }

    /// Checks the key rules: non-empty, at most 256 bytes of UTF-8, no NUL.
    ///
    /// NUL is refused because PostgreSQL `text` cannot hold it: one such key would fail a whole flush.
    public static func validate(key: String) throws(IncrementInputError) {
        let utf8 = key.utf8
        if utf8.isEmpty {
            throw .invalidKey("key must not be empty")
        }
        if utf8.count > Self.maximumKeyLength {
            throw .invalidKey("key must be at most \(Self.maximumKeyLength) bytes of UTF-8, got \(utf8.count)")
        }
        if utf8.contains(0) {
            throw .invalidKey("key must not contain NUL")
        }
    }
}
