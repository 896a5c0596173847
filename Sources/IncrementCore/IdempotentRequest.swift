/// A request sent with an `Idempotency-Key`: its increments stay together, apart from the
/// summed buffer, until the flush that records the key applies them, once, cluster-wide.
///
/// Two requests with the same key are the same request when their fingerprints match: the
/// route and the increments, in order (whitespace and field order in the body do not count).
public struct IdempotentRequest: Sendable {
    /// Which route the request was sent to; part of the fingerprint.
    public enum Route: UInt8, Sendable {
        /// `POST /increment`.
        case single = 1
        /// `POST /increments`.
        case batch = 2
    }

    /// The client's key.
    public let key: IdempotencyKey
    /// A stable hash of the route and the increments.
    public let fingerprint: Int64
    /// The increments, as sent.
    public let increments: [Increment]
    /// For `POST /increment`, the key whose committed total the request's answer carries.
    public var totalKey: CounterKey? { self.route == .single ? self.increments.first?.key : nil }
    /// The route.
    public let route: Route

    /// Creates a request and its fingerprint.
    public init(key: IdempotencyKey, route: Route, increments: [Increment]) {
        self.key = key
        self.route = route
        self.increments = increments
        self.fingerprint = Self.fingerprint(route: route, increments: increments)
    }

    /// Recreates a request whose fingerprint is already known (read back from a spill file).
    public init(key: IdempotencyKey, route: Route, increments: [Increment], fingerprint: Int64) {
        self.key = key
        self.route = route
        self.increments = increments
        self.fingerprint = fingerprint
    }

    /// FNV-1a 64 over the route, then each increment's key length, key bytes and value: the
    /// same on every node, in every release.
    static func fingerprint(route: Route, increments: [Increment]) -> Int64 {
        var hash = StableHash.offsetBasis
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= StableHash.prime
        }
        func mix(_ word: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) { mix(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        mix(route.rawValue)
        for increment in increments {
            increment.key.withUTF8 { bytes in
                mix(UInt64(bytes.count))
                for byte in bytes { mix(byte) }
            }
            mix(UInt64(bitPattern: increment.delta))
        }
        return Int64(bitPattern: hash)
    }
}
