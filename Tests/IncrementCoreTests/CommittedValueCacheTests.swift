import IncrementCore
import Testing

struct CommittedValueCacheTests {
    private let shardMap = ClusterShardMap(shardCount: 8)

    private func cache(maximumKeys: Int = 100) -> CommittedValueCache {
        CommittedValueCache(shardMap: self.shardMap, maximumKeys: maximumKeys, maximumStaleness: .milliseconds(200))
    }

    /// A cache whose listener heard a heartbeat just now.
    private func servingCache(maximumKeys: Int = 100) -> CommittedValueCache {
        let cache = self.cache(maximumKeys: maximumKeys)
        cache.heard(heartbeatSentAt: .now)
        return cache
    }

    @Test func nothingIsServedBeforeAHeartbeatIsHeard() {
        let cache = self.cache()
        cache.keep(["a": 1], for: ["a"], ticket: cache.ticket())
        #expect(cache.entry(for: "a") == nil)
        cache.heard(heartbeatSentAt: .now)
        #expect(cache.entry(for: "a") == .value(1))
    }

    @Test func valuesAreServedUntilTheStalenessBoundPastTheLatestHeartbeat() {
        let cache = self.cache()
        let sent = ContinuousClock.now
        cache.heard(heartbeatSentAt: sent)
        cache.keep(["a": 1], for: ["a"], ticket: cache.ticket())
        #expect(cache.entry(for: "a", now: sent + .milliseconds(199)) == .value(1))
        #expect(cache.entry(for: "a", now: sent + .milliseconds(200)) == nil)
        // A heartbeat heard late, sent earlier, does not move the bound back.
        cache.heard(heartbeatSentAt: sent - .milliseconds(100))
        #expect(cache.entry(for: "a", now: sent + .milliseconds(150)) == .value(1))
    }

    @Test func keysAQueryDidNotFindAreKeptAsAbsent() {
        let cache = self.servingCache()
        cache.keep(["a": 1], for: ["a", "b"], ticket: cache.ticket())
        #expect(cache.entry(for: "b") == .absent)
        #expect(cache.entry(for: "c") == nil)
        #expect(cache.count == 2)
    }

    @Test func aChangeForgetsItsShardsOnly() {
        let cache = self.servingCache()
        let keys: [CounterKey] = (0..<40).map { CounterKey(trusted: "k\($0)") }
        cache.keep(Dictionary(uniqueKeysWithValues: keys.map { ($0, 1) }), for: keys, ticket: cache.ticket())
        let changed = self.shardMap.shard(for: keys[0])
        cache.changed(shards: [changed])
        for key in keys {
            #expect((cache.entry(for: key) == nil) == (self.shardMap.shard(for: key) == changed))
        }
        cache.changedEverywhere()
        #expect(cache.count == 0)
    }

    /// A query that ran while a change to its shard committed may hold the value from before:
    /// it is not kept. Keys of other shards are.
    @Test func aResultQueriedAcrossAChangeIsNotKept() {
        let cache = self.servingCache()
        let (a, b) = self.keysInTwoShards()
        let ticket = cache.ticket()
        cache.changed(shards: [self.shardMap.shard(for: a)])
        cache.keep([a: 1, b: 2], for: [a, b], ticket: ticket)
        #expect(cache.entry(for: a) == nil)
        #expect(cache.entry(for: b) == .value(2))
    }

    /// Nothing sent before the listener restarted is kept, and nothing is served until the new
    /// listener hears a heartbeat.
    @Test func aRestartForgetsEverythingAndRefusesEarlierResults() {
        let cache = self.servingCache()
        cache.keep(["a": 1], for: ["a"], ticket: cache.ticket())
        let before = cache.ticket()
        cache.restart()
        #expect(cache.count == 0)
        cache.keep(["b": 2], for: ["b"], ticket: before)
        cache.heard(heartbeatSentAt: .now)
        #expect(cache.entry(for: "a") == nil)
        #expect(cache.entry(for: "b") == nil)
    }

    @Test func theCacheNeverHoldsMoreThanItsMaximum() {
        let cache = self.servingCache(maximumKeys: 10)
        for round in 0..<20 {
            let keys: [CounterKey] = (0..<7).map { CounterKey(trusted: "r\(round)-\($0)") }
            cache.keep([:], for: keys, ticket: cache.ticket())
            #expect(cache.count <= 10)
            #expect(cache.entry(for: keys[6]) == .absent)
        }
    }

    private func keysInTwoShards() -> (CounterKey, CounterKey) {
        let a: CounterKey = "a"
        var index = 0
        while true {
            let b = CounterKey(trusted: "b\(index)")
            if self.shardMap.shard(for: b) != self.shardMap.shard(for: a) { return (a, b) }
            index += 1
        }
    }
}

struct CounterChangeNoticeTests {
    @Test func changesListTheirShards() {
        #expect(CounterChangeNotice(payload: "3,17,42") == .changed(shards: [3, 17, 42]))
        #expect(CounterChangeNotice(payload: "") == .changed(shards: []))
        #expect(CounterChangeNotice(payload: "*") == .changedEverywhere)
    }

    @Test func aHeartbeatReadsBack() {
        let payload = CounterChangeNotice.heartbeatPayload(listener: "l-1", sentAt: 123_456)
        #expect(CounterChangeNotice(payload: payload) == .heartbeat(listener: "l-1", sentAt: 123_456))
    }

    @Test func anUnknownPayloadIsNotReadAsAnything() {
        #expect(CounterChangeNotice(payload: "3,x") == nil)
        #expect(CounterChangeNotice(payload: "heartbeat l-1") == nil)
        #expect(CounterChangeNotice(payload: "heartbeat l-1 12 x") == nil)
    }
}
