import IncrementCore
import Testing

struct FlushBatchTests {
    @Test func sortsKeysAndKeepsDeltasAligned() {
        let map = ClusterShardMap(shardCount: 16)
        let batch = FlushBatch(
            id: BatchID(nodeID: "n", sequence: 1),
            deltas: ["pear": 3, "apple": -1, "fig": 10],
            shardMap: map
        )
        #expect(batch.keys == ["apple", "fig", "pear"])
        #expect(batch.deltas == [-1, 10, 3])
        #expect(batch.clusterShards == map.lockOrder(for: ["apple", "fig", "pear"]))
        #expect(batch.count == 3)
    }

    @Test func ordersKeysByTheirBytesWhateverTheirPrefixes() {
        // Keys sharing their first eight bytes, shorter and longer than eight, and bytes past
        // ASCII: the batch's order is plain byte order, as PostgreSQL's COLLATE "C" sorts them.
        var keys: [String] = ["a", "ab", "abcdefgh", "abcdefghi", "abcdefgg\u{e9}", "abcdefgh\u{1}", "\u{e9}", "e\u{301}", "z", "\u{7f}"]
        for index in 0..<200 {
            keys.append("load-\(index * 7919 % 1000)")
            keys.append("prefix-shared-\(index)")
        }
        let deltas = Dictionary(keys.enumerated().map { (CounterKey(trusted: $0.element), Int64($0.offset)) }) { first, _ in first }
        let batch = FlushBatch(id: BatchID(nodeID: "n", sequence: 1), deltas: deltas, shardMap: ClusterShardMap(shardCount: 16))
        let expected = deltas.keys.sorted { Array($0.string.utf8).lexicographicallyPrecedes(Array($1.string.utf8)) }
        #expect(batch.keys == expected)
        #expect(batch.deltas == expected.map { deltas[$0] ?? -1 })
    }

    @Test func mergesDuplicatesBeforeBatching() throws {
        // Duplicates are merged in the buffer, so a batch never names a key twice
        // (which PostgreSQL refuses: "ON CONFLICT DO UPDATE command cannot affect row a second time").
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 100)
        for delta in [1, 2, 3] as [Int64] {
            try buffer.add(try Increment(key: "same", delta: delta))
        }
        try buffer.add([try Increment(key: "same", delta: 4), try Increment(key: "other", delta: 1)])
        let batch = FlushBatch(
            id: BatchID(nodeID: "n", sequence: 2),
            deltas: buffer.drain().deltas,
            shardMap: ClusterShardMap(shardCount: 4)
        )
        #expect(batch.keys == ["other", "same"])
        #expect(batch.deltas == [1, 10])
    }
}
