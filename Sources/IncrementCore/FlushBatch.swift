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
    /// The requests sent with an idempotency key, each applied only if its key is new
    /// cluster-wide; in ascending key order, each key once.
    public let idempotent: [IdempotentRequest]
    /// The cluster shards the keys fall in, ascending: the advisory locks the flush takes. They
    /// cover the idempotent requests' counters and their idempotency keys too, so two flushes
    /// recording the same idempotency key queue like two flushes of the same counter.
    public let clusterShards: [Int32]
    /// The latest flush barrier the node had seen before it accepted any of these increments.
    /// A counter deleted behind a later barrier was deleted after everything here was accepted:
    /// if the batch commits after the delete (a retry, a spilled batch replayed), it skips that
    /// counter rather than bring it back.
    public let barrier: Int64

    /// Builds a batch from summed deltas and idempotent requests.
    public init(
        id: BatchID,
        deltas: [CounterKey: Int64],
        idempotent: [IdempotentRequest] = [],
        barrier: Int64 = 0,
        shardMap: ClusterShardMap
    ) {
        let entries = Array(deltas)
        let order = CounterKey.byteOrder(of: entries.lazy.map(\.key))
        self.init(
            id: id, keys: order.map { entries[$0].key }, deltas: order.map { entries[$0].value }, idempotent: idempotent,
            barrier: barrier, shardMap: shardMap)
    }

    /// Builds a batch from keys already unique and in ascending byte order, with their deltas.
    ///
    /// - Precondition: `keys.count == deltas.count`.
    public init(
        id: BatchID,
        keys: [CounterKey],
        deltas: [Int64],
        idempotent: [IdempotentRequest] = [],
        barrier: Int64 = 0,
        shardMap: ClusterShardMap
    ) {
        precondition(keys.count == deltas.count, "a batch needs one delta per key")
        self.id = id
        self.barrier = barrier
        self.keys = keys
        self.deltas = deltas
        var unique: [IdempotencyKey: IdempotentRequest] = [:]
        for request in idempotent where unique[request.key] == nil {
            unique[request.key] = request
        }
        self.idempotent = unique.values.sorted { Array($0.key.value.utf8).lexicographicallyPrecedes($1.key.value.utf8) }
        if self.idempotent.isEmpty {
            self.clusterShards = shardMap.lockOrder(for: keys)
        } else {
            let touched = self.idempotent.flatMap { request in
                request.increments.map(\.key) + [CounterKey(trusted: "idempotency-key:" + request.key.value)]
            }
            self.clusterShards = shardMap.lockOrder(for: keys + touched)
        }
    }

    /// The number of distinct keys, and of idempotent requests' increments.
    public var count: Int { self.keys.count + self.idempotent.reduce(0) { $0 + $1.increments.count } }

    /// The keys as text, for binding as a `text[]`.
    public var keyStrings: [String] { self.keys.map(\.string) }
}
