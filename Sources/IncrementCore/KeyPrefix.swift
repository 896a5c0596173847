/// The first bytes of counter keys: what `GET /counters?prefix=` lists and
/// `DELETE /counters?prefix=` deletes. A key has the prefix when its UTF-8 bytes start with the
/// prefix's bytes.
public struct KeyPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The prefix; it follows the key rules (1 to 256 bytes of UTF-8, no NUL).
    public let string: String

    /// Checks `string` against the key rules.
    public init(validating string: String) throws(IncrementInputError) {
        self.string = try CounterKey(validating: string).string
    }

    public var description: String { self.string }

    /// The least string above every key with this prefix in byte order (PostgreSQL's collation
    /// "C"), for an index range scan: the prefix with its last scalar raised by one. UTF-8 byte
    /// order is scalar order, so every key in between has the prefix. Nil when no string is
    /// above them (the prefix is all U+10FFFF).
    public var upperBound: String? {
        var scalars = Array(self.string.unicodeScalars)
        while let last = scalars.popLast() {
            var next = last.value + 1
            if next == 0xD800 { next = 0xE000 }  // past the surrogates, which are not scalars
            if let raised = Unicode.Scalar(next) {
                scalars.append(raised)
                var view = String.UnicodeScalarView()
                view.append(contentsOf: scalars)
                return String(view)
            }
        }
        return nil
    }

    /// Whether `key` starts with this prefix's bytes.
    public func isPrefix(of key: CounterKey) -> Bool {
        key.string.utf8.starts(with: self.string.utf8)
    }
}
