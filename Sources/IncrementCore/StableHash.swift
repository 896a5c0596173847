/// A hash of a key that is identical in every process, on every node, in every release.
///
/// Swift's `Hasher` is seeded per process, so `hashValue` cannot be used for anything two
/// nodes must agree on (cluster shards and their advisory locks). This is 64-bit FNV-1a over
/// the key's UTF-8 bytes: fast for short keys, well distributed, and fixed by its published
/// constants.
public enum StableHash {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// The 64-bit FNV-1a hash of `key`'s UTF-8 bytes.
    @inlinable
    public static func fnv1a64(_ key: CounterKey) -> UInt64 {
        key.withUTF8 { fnv1a64(bytes: $0) }
    }

    /// The 64-bit FNV-1a hash of `bytes`.
    @inlinable
    public static func fnv1a64(bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
