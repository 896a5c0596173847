import IncrementCore
import Testing

struct StableHashTests {
    // Published FNV-1a 64 test vectors: any process, any node, any release must agree.
    @Test(arguments: [
        ("", 0xcbf2_9ce4_8422_2325 as UInt64),
        ("a", 0xaf63_dc4c_8601_ec8c),
        ("foobar", 0x8594_4171_f739_67e8),
    ])
    func matchesPublishedVectors(key: String, expected: UInt64) {
        #expect(StableHash.fnv1a64(CounterKey(trusted: key)) == expected)
    }

    @Test func hashesUTF8Bytes() {
        // "é" precomposed and decomposed are equal Swift strings but different bytes, and keys are bytes.
        #expect(StableHash.fnv1a64("\u{E9}") != StableHash.fnv1a64("e\u{301}"))
    }

    @Test func clusterShardOfAKeyIsFixed() {
        let map = ClusterShardMap(shardCount: 64)
        // Pinned: changing the hash or the mapping would send a key's lock elsewhere on upgraded nodes.
        #expect(map.shard(for: "foobar") == Int32((0x8594_4171_f739_67e8 as UInt64) % 64))
        #expect(map.shard(for: "") == Int32((0xcbf2_9ce4_8422_2325 as UInt64) % 64))
    }

    @Test func lockOrderIsAscendingAndDistinct() {
        let map = ClusterShardMap(shardCount: 8)
        let keys = (0..<200).map { CounterKey(trusted: "key-\($0)") }
        let order = map.lockOrder(for: keys)
        #expect(order == order.sorted())
        #expect(Set(order).count == order.count)
        #expect(Set(order) == Set(keys.map(map.shard(for:))))
    }
}
