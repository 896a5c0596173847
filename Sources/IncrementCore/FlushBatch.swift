/// Identifies one flush batch across retries: the ledger entry that makes a retry apply once.
public struct BatchID: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The node process that built the batch; fresh at every start.
    public let nodeID: String
    /// The batch's position in that process's sequence, from 1. A node's batches commit in
    /// sequence order, one at a time.
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
/// cannot affect row a second time") and sorted by their bytes, so every node touches rows in
/// the same order.
public struct FlushBatch: Sendable {
    /// The identifier the batch keeps across retries.
    public let id: BatchID
    /// The keys, in ascending byte order, each once.
    public let keys: [CounterKey]
    /// `deltas[i]` is the summed delta for `keys[i]`.
    public let deltas: [Int64]
    /// The cluster shards the keys fall in, ascending: the advisory locks the flush takes.
    public let clusterShards: [Int32]

    /// Builds a batch from summed deltas.
    public init(id: BatchID, deltas: [CounterKey: Int64], shardMap: ClusterShardMap) {
        let entries = deltas.sorted { $0.key < $1.key }
        self.init(id: id, keys: entries.map(\.key), deltas: entries.map(\.value), shardMap: shardMap)
    }

    /// Builds a batch from keys already unique and in ascending byte order, with their deltas.
    ///
    /// - Precondition: `keys.count == deltas.count`.
    public init(id: BatchID, keys: [CounterKey], deltas: [Int64], shardMap: ClusterShardMap) {
        precondition(keys.count == deltas.count, "a batch needs one delta per key")
        self.id = id
        self.keys = keys
        self.deltas = deltas
        self.clusterShards = shardMap.lockOrder(for: keys)
    }

    /// The number of distinct keys.
    public var count: Int { self.keys.count }

    /// The keys as text, for binding as a `text[]`.
    public var keyStrings: [String] { self.keys.map(\.string) }
}
