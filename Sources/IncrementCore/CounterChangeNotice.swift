/// A notification on the channel where changes to counters are announced (migration 0012's
/// `announce_counter_change`), or a heartbeat a node's listener sent through it.
public enum CounterChangeNotice: Sendable, Equatable {
    /// The channel's name.
    public static let channel = "increment_counters_changed"

    /// A commit changed counters of these cluster shards.
    case changed(shards: [Int32])
    /// A commit changed counters of shards it did not list.
    case changedEverywhere
    /// A listener's heartbeat: `listener` names the listener's connection, `sentAt` the
    /// nanoseconds from that listener's own origin to the moment it was sent.
    case heartbeat(listener: String, sentAt: Int64)

    /// Reads a notification's payload; nil for one this version does not know.
    public init?(payload: String) {
        if payload == "*" {
            self = .changedEverywhere
            return
        }
        if payload.hasPrefix(Self.heartbeatPrefix) {
            let fields = payload.dropFirst(Self.heartbeatPrefix.count).split(separator: " ")
            guard fields.count == 2, let sentAt = Int64(fields[1]) else { return nil }
            self = .heartbeat(listener: String(fields[0]), sentAt: sentAt)
            return
        }
        var shards: [Int32] = []
        for field in payload.split(separator: ",") {
            guard let shard = Int32(field) else { return nil }
            shards.append(shard)
        }
        self = .changed(shards: shards)
    }

    /// The payload of a heartbeat: what ``init(payload:)`` reads back.
    public static func heartbeatPayload(listener: String, sentAt: Int64) -> String {
        "\(Self.heartbeatPrefix)\(listener) \(sentAt)"
    }

    private static let heartbeatPrefix = "heartbeat "
}
