/// Maps keys to cluster shards: the unit of advisory locking shared by every node.
///
/// Every node must use the same shard count, since the map decides which advisory lock guards
/// a key. A flush locks the shards its batch touches in ascending order, so two nodes flushing
/// overlapping keys queue behind each other instead of deadlocking.
public struct ClusterShardMap: Sendable, Hashable {
    /// The number of cluster shards.
    public let shardCount: Int

    /// Creates a map over `shardCount` shards.
    ///
    /// - Precondition: `shardCount` is between 1 and `Int32.max`.
    public init(shardCount: Int) {
        precondition(shardCount > 0 && shardCount <= Int(Int32.max), "cluster shard count must be in 1...Int32.max")
        self.shardCount = shardCount
    }

    /// The cluster shard that owns `key`, in `0..<shardCount`.
    @inlinable
    public func shard(for key: CounterKey) -> Int32 {
        Int32(truncatingIfNeeded: StableHash.fnv1a64(key) % UInt64(self.shardCount))
    }

    /// The distinct shards owning `keys`, in ascending order: the order their locks are taken in.
    public func lockOrder(for keys: some Sequence<CounterKey>) -> [Int32] {
        var seen = Set<Int32>()
        for key in keys {
            seen.insert(self.shard(for: key))
        }
        return seen.sorted()
    }
}
