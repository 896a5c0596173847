#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A counter's name, which *is* its exact UTF-8 bytes.
///
/// Swift's `String` compares and hashes by canonical equivalence, so `"\u{E9}"` and
/// `"e\u{301}"` are `==` and would share a dictionary slot; PostgreSQL's `text` compares bytes
/// and keeps them as two rows. Every place that groups, orders or looks up keys (the buffer,
/// batch sorting and de-duplication, committed totals, shard hashing) uses this type, so two
/// keys that differ in one byte are always two counters. A `String` never changes the code
/// units it was made from, so the wrapped string carries the bytes exactly as they arrived.
public struct CounterKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The key as text; its `utf8` view is the identity of the counter.
    public let string: String

    /// The longest key accepted, in UTF-8 bytes.
    public static let maximumLength = 256

    /// Creates a key after checking the key rules: 1 to 256 bytes of UTF-8, no NUL.
    ///
    /// NUL is refused because PostgreSQL `text` cannot hold it: one such key would fail a whole flush.
    public init(validating string: String) throws(IncrementInputError) {
        let utf8 = string.utf8
        if utf8.isEmpty {
            throw .invalidKey("key must not be empty")
        }
        if utf8.count > Self.maximumLength {
            throw .invalidKey("key must be at most \(Self.maximumLength) bytes of UTF-8, got \(utf8.count)")
        }
        if utf8.contains(0) {
            throw .invalidKey("key must not contain NUL")
        }
        self.string = string
    }

    /// Wraps a string known to satisfy the key rules, such as one read back from the database.
    public init(trusted string: String) {
        self.string = string
    }

    public var description: String { self.string }

    /// Runs `body` over the key's UTF-8 bytes without copying them (for native strings).
    @inlinable
    public func withUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try self.string.utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        var copy = self.string
        return try copy.withUTF8(body)
    }

    public static func == (lhs: CounterKey, rhs: CounterKey) -> Bool {
        // A native string knows its UTF-8 length: most unequal keys differ there already.
        guard lhs.string.utf8.count == rhs.string.utf8.count else { return false }
        return Self.compareBytes(lhs, rhs) == 0
    }

    public func hash(into hasher: inout Hasher) {
        self.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Byte order, the order of PostgreSQL's `COLLATE "C"`: the same on every node.
    public static func < (lhs: CounterKey, rhs: CounterKey) -> Bool {
        Self.compareBytes(lhs, rhs) < 0
    }

    /// The positions of `keys` in ascending byte order.
    ///
    /// A 1M-key batch takes some 20M comparisons to sort. Comparing the keys themselves copies
    /// (and reference-counts) a string per comparison; this copies every key's bytes once into one
    /// buffer and sorts positions over it with `memcmp`.
    public static func byteOrder(of keys: some Collection<CounterKey>) -> [Int] {
        var bytes: [UInt8] = []
        var starts: [Int] = []
        var lengths: [Int] = []
        starts.reserveCapacity(keys.count)
        lengths.reserveCapacity(keys.count)
        for key in keys {
            key.withUTF8 { utf8 in
                starts.append(bytes.count)
                lengths.append(utf8.count)
                bytes.append(contentsOf: utf8)
            }
        }
        var order = Array(0..<starts.count)
        bytes.withUnsafeBufferPointer { bytes in
            starts.withUnsafeBufferPointer { starts in
                lengths.withUnsafeBufferPointer { lengths in
                    order.sort { left, right in
                        Self.compare(
                            UnsafeBufferPointer(rebasing: bytes[starts[left]..<starts[left] + lengths[left]]),
                            UnsafeBufferPointer(rebasing: bytes[starts[right]..<starts[right] + lengths[right]])
                        ) < 0
                    }
                }
            }
        }
        return order
    }

    /// Negative, zero or positive as `lhs`'s bytes sort before, equal or after `rhs`'s.
    private static func compareBytes(_ lhs: CounterKey, _ rhs: CounterKey) -> Int {
        lhs.withUTF8 { left in rhs.withUTF8 { right in Self.compare(left, right) } }
    }

    /// Byte order of two byte strings: `memcmp` over the common length, then the shorter first.
    private static func compare(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(left.count, right.count)
        if common > 0, let l = left.baseAddress, let r = right.baseAddress {
            let order = memcmp(l, r, common)
            if order != 0 { return Int(order) }
        }
        return left.count - right.count
    }
}
