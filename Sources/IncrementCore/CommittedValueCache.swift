import Synchronization

/// Committed counter values a node has read, kept until a change to their cluster shard is
/// announced, and served only while the announcements are known to be current.
///
/// Every commit that changes counters announces the cluster shards it touched (PostgreSQL's
/// `NOTIFY`, delivered in commit order); the node's listener forgets those shards' values. The
/// listener also announces heartbeats of its own through the same channel: one heard back, sent
/// at `t`, proves every change committed before `t` has been heard. Values are served only until
/// the newest heard heartbeat's send time plus the staleness bound, so a value served is never
/// older than the bound behind the database, whatever happens to the listener.
///
/// A read's query result is kept only if no change to its shards was heard and the listener was
/// not replaced while it ran (``Ticket``): a result read before a commit it did not see, and
/// stored after that commit's announcement, would be kept stale otherwise.
public final class CommittedValueCache: Sendable {
    /// What the cache knows of one key.
    public enum Entry: Sendable, Equatable {
        /// The committed value.
        case value(Int64)
        /// The key holds no counter.
        case absent
    }

    /// The state of the cache when a query was sent, to tell whether its result may be kept.
    public struct Ticket: Sendable {
        fileprivate let epoch: UInt64
        fileprivate let generations: [UInt64]
    }

    private struct Shard {
        var entries: [CounterKey: Entry] = [:]
        /// Raised by every change heard for the shard.
        var generation: UInt64 = 0
    }

    private struct State {
        var shards: [Shard]
        /// Raised when the listener starts or stops: results of queries sent before are not kept.
        var epoch: UInt64 = 0
        var count = 0
        /// Values are served before this instant only; nil while no listener is current.
        var servedUntil: ContinuousClock.Instant?
    }

    /// The cluster shards, as the flushes lock and announce them.
    public let shardMap: ClusterShardMap
    /// The most keys kept; past it, the shard a new key belongs to is emptied first.
    public let maximumKeys: Int
    /// How far behind the database a served value may be.
    public let maximumStaleness: Duration
    private let state: Mutex<State>

    /// Creates an empty cache that serves nothing until a heartbeat is heard.
    public init(shardMap: ClusterShardMap, maximumKeys: Int, maximumStaleness: Duration) {
        self.shardMap = shardMap
        self.maximumKeys = maximumKeys
        self.maximumStaleness = maximumStaleness
        self.state = Mutex(State(shards: Array(repeating: Shard(), count: shardMap.shardCount)))
    }

    /// What the cache may serve for `key` now, or nil.
    public func entry(for key: CounterKey, now: ContinuousClock.Instant = .now) -> Entry? {
        let shard = Int(self.shardMap.shard(for: key))
        return self.state.withLock { state in
            guard let until = state.servedUntil, now < until else { return nil }
            return state.shards[shard].entries[key]
        }
    }

    /// Taken just before a query is sent; ``keep(_:for:ticket:)`` needs it.
    public func ticket() -> Ticket {
        self.state.withLock { state in
            Ticket(epoch: state.epoch, generations: state.shards.map(\.generation))
        }
    }

    /// Keeps what a query sent after `ticket` found for `keys` (`found` holds the keys that
    /// exist), for each key whose shard had no change heard since.
    public func keep(_ found: [CounterKey: Int64], for keys: [CounterKey], ticket: Ticket) {
        self.state.withLock { state in
            guard state.epoch == ticket.epoch else { return }
            for key in keys {
                let shard = Int(self.shardMap.shard(for: key))
                guard state.shards[shard].generation == ticket.generations[shard] else { continue }
                let entry = found[key].map(Entry.value) ?? .absent
                if state.shards[shard].entries.updateValue(entry, forKey: key) == nil {
                    state.count += 1
                    if state.count > self.maximumKeys {
                        self.evict(keeping: key, entry, shard: shard, in: &state)
                    }
                }
            }
        }
    }

    /// Forgets the values of `shards`: a change to them committed (or may have).
    public func changed(shards: some Sequence<Int32>) {
        self.state.withLock { state in
            for shard in shards where shard >= 0 && Int(shard) < state.shards.count {
                Self.forget(Int(shard), in: &state)
            }
        }
    }

    /// Forgets every value: a change to unknown shards committed.
    public func changedEverywhere() {
        self.state.withLock { state in
            for shard in state.shards.indices {
                Self.forget(shard, in: &state)
            }
        }
    }

    /// A heartbeat sent at `sentAt` was heard back: every change committed before it was heard.
    public func heard(heartbeatSentAt sentAt: ContinuousClock.Instant) {
        self.state.withLock { state in
            let until = sentAt + self.maximumStaleness
            if state.servedUntil.map({ $0 < until }) ?? true {
                state.servedUntil = until
            }
        }
    }

    /// The listener stopped or started: changes may have gone unheard. Everything is forgotten,
    /// nothing is served until a heartbeat of the next listener is heard, and no query sent
    /// before is kept.
    public func restart() {
        self.state.withLock { state in
            state.epoch &+= 1
            state.servedUntil = nil
            for shard in state.shards.indices {
                Self.forget(shard, in: &state)
            }
        }
    }

    /// The number of keys kept.
    public var count: Int {
        self.state.withLock { $0.count }
    }

    /// Makes room: empties `shard` but for the key just kept, and every other shard too if
    /// that is not enough. Nothing changed in the database, so no generation moves.
    private func evict(keeping key: CounterKey, _ entry: Entry, shard: Int, in state: inout State) {
        state.count -= state.shards[shard].entries.count - 1
        state.shards[shard].entries = [key: entry]
        guard state.count > self.maximumKeys else { return }
        for other in state.shards.indices where other != shard {
            state.shards[other].entries = [:]
        }
        state.count = 1
    }

    private static func forget(_ shard: Int, in state: inout State) {
        state.shards[shard].generation &+= 1
        state.count -= state.shards[shard].entries.count
        state.shards[shard].entries = [:]
    }
}
