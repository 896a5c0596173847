/// Identifies one flush batch across retries: the ledger row that makes a retry apply once.
public struct BatchID: Sendable, Hashable, CustomStringConvertible {
    /// The node process that built the batch; fresh at every start.
    public let nodeID: String
    /// The batch's position in that process's sequence, from 1.
    public let sequence: Int64

    /// Creates a batch identifier.
    public init(nodeID: String, sequence: Int64) {
        self.nodeID = nodeID
        self.sequence = sequence
    }

    public var description: String { "\(self.nodeID)#\(self.sequence)" }
}

/// One flush's worth of increments, ready for the single upsert.
///
/// Keys are unique (a batch naming a key twice would fail with "ON CONFLICT DO UPDATE command
/// cannot affect row a second time") and sorted, so every node touches rows in the same order.
public struct FlushBatch: Sendable {
    /// The identifier the batch keeps across retries.
    public let id: BatchID
    /// The keys, sorted ascending, each once.
    public let keys: [String]
    /// `deltas[i]` is the summed delta for `keys[i]`.
    public let deltas: [Int64]
    /// The cluster shards the keys fall in, ascending: the advisory locks the flush takes.
    public let clusterShards: [Int32]

    /// Builds a batch from summed deltas.
    public init(id: BatchID, deltas: [String: Int64], shardMap: ClusterShardMap) {
        let entries = deltas.sorted { $0.key < $1.key }
        self.id = id
        self.keys = entries.map(\.key)
        self.deltas = entries.map(\.value)
        self.clusterShards = shardMap.lockOrder(for: self.keys)
    }

    /// The number of distinct keys.
    public var count: Int { self.keys.count }
}
