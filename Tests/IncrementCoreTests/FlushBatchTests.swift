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
