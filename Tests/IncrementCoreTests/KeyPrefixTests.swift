import IncrementCore
import Testing

struct KeyPrefixTests {
    @Test func theUpperBoundIsTheLeastStringAboveEveryKeyWithThePrefix() throws {
        #expect(try KeyPrefix(validating: "user:42:").upperBound == "user:42;")
        #expect(try KeyPrefix(validating: "a\u{7F}").upperBound == "a\u{80}")
        #expect(try KeyPrefix(validating: "a\u{D7FF}").upperBound == "a\u{E000}")
        #expect(try KeyPrefix(validating: "a\u{10FFFF}").upperBound == "b")
        #expect(try KeyPrefix(validating: "\u{10FFFF}\u{10FFFF}").upperBound == nil)
    }

    /// Every key with the prefix lies in [prefix, upper bound) in byte order, and no other key does.
    @Test func theRangeHoldsExactlyTheKeysWithThePrefix() throws {
        let prefix = try KeyPrefix(validating: "ab\u{FF}")
        let upper = try #require(prefix.upperBound)
        let keys: [CounterKey] = ["ab", "ab\u{FF}", "ab\u{FF}\u{0}x", "ab\u{FF}z", "ab\u{100}", "ab\u{FE}\u{10FFFF}", "ac", "ab\u{FF}\u{10FFFF}"]
        for key in keys {
            let bytes = Array(key.string.utf8)
            let inRange = !bytes.lexicographicallyPrecedes(prefix.string.utf8) && bytes.lexicographicallyPrecedes(upper.utf8)
            #expect(inRange == prefix.isPrefix(of: key), "\(key)")
        }
    }

    @Test func aPrefixFollowsTheKeyRules() {
        #expect(throws: IncrementInputError.self) { try KeyPrefix(validating: "") }
        #expect(throws: IncrementInputError.self) { try KeyPrefix(validating: "a\u{0}") }
        #expect(throws: IncrementInputError.self) { try KeyPrefix(validating: String(repeating: "x", count: 257)) }
    }
}

struct BufferBarrierTests {
    /// A drained window carries the barrier the node had seen when the window opened; the
    /// window after a drain that carried barrier N is tagged N.
    @Test func eachDrainCarriesTheBarrierSeenBeforeItsIncrements() throws {
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 100)
        buffer.raiseWindowBarrier(to: 3)
        try buffer.add(Increment(key: "a", delta: 1))
        buffer.addBarrier(BarrierWaiter {}, number: 7)
        try buffer.add(Increment(key: "b", delta: 1))  // after barrier 7, in the same window
        let first = buffer.drain()
        #expect(first.barrier == 3)
        #expect(first.barriers.count == 1)
        try buffer.add(Increment(key: "c", delta: 1))
        #expect(buffer.drain().barrier == 7)
        #expect(buffer.drain().barrier == 7)
        buffer.raiseWindowBarrier(to: 5)  // never lowers
        #expect(buffer.drain().barrier == 7)
    }
}
