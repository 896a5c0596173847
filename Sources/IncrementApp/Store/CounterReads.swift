import CoreMetrics
import IncrementCore

/// Plain reads of committed values: from the node's cache while it may serve them
/// (``CommittedValueCache``), else from queries shared by the reads arriving together
/// (``CoalescedLookup``), whose results the cache keeps.
struct CounterReads: Sendable {
    /// The shared queries; strong reads go straight to them, after their barrier.
    let lookup: CoalescedLookup<CounterKey, Int64>
    /// Nil when the cache is off (`READ_CACHE_STALENESS_MS=0`).
    let cache: CommittedValueCache?
    let hits: Counter
    let misses: Counter

    /// The cache's answer for `key`, if it may give one now (a hit is counted; a miss is
    /// counted by the look-up that follows).
    func cached(_ key: CounterKey) -> CommittedValueCache.Entry? {
        guard let entry = self.cache?.entry(for: key) else { return nil }
        self.hits.increment()
        return entry
    }

    /// The committed values of those of `keys` that exist: from the cache when it holds every
    /// one of them, else from one shared query.
    func values(for keys: [CounterKey]) async throws -> [CounterKey: Int64] {
        if let cache = self.cache {
            var values: [CounterKey: Int64] = [:]
            var complete = true
            for key in keys {
                switch cache.entry(for: key) {
                case .value(let value): values[key] = value
                case .absent: break
                case nil: complete = false
                }
                if !complete { break }
            }
            if complete {
                self.hits.increment(by: keys.count)
                return values
            }
        }
        self.misses.increment(by: keys.count)
        return try await self.lookup.values(for: keys)
    }

    /// Looks `keys` up in one shared query, for a read the cache could not answer.
    func lookUp(_ keys: [CounterKey], completion: @escaping CoalescedLookup<CounterKey, Int64>.Completion) {
        self.misses.increment(by: keys.count)
        self.lookup.lookUp(keys, completion: completion)
    }
}
