import Synchronization

/// The idempotency keys this node holds right now: admitted and not yet committed. It answers a
/// repeat that reaches the same node before the first copy's flush: the same request again
/// (answered as the first was, not buffered twice), or the same key with another body.
///
/// Repeats on other nodes, or after the commit, are settled by PostgreSQL: the flush records
/// each key once, cluster-wide, and applies only the increments of the keys it recorded.
public final class IdempotencyTable: Sendable {
    /// Where the first copy of a request is.
    public enum Phase: Sendable, Hashable {
        /// Being admitted: checked against the database, not yet buffered.
        case admitting
        /// Buffered and answered (`202`); to be written by a flush.
        case buffered
        /// Buffered; its `wait=commit` caller still waits for the commit.
        case waiting
    }

    /// What a repeat of a key held here is.
    public enum Claim: Sendable, Hashable {
        /// The key is new here: the caller holds it now, and must ``settle(_:as:)`` or ``release(_:)`` it.
        case claimed
        /// The same request, with the first copy in `phase`.
        case repeated(Phase)
        /// The key was sent with a different request.
        case mismatched
    }

    private struct Entry {
        var fingerprint: Int64
        var phase: Phase
    }

    private let entries = Mutex<[IdempotencyKey: Entry]>([:])

    /// Creates an empty table.
    public init() {}

    /// Claims `key` for a request with `fingerprint`, or says what holds it.
    public func claim(_ key: IdempotencyKey, fingerprint: Int64) -> Claim {
        self.entries.withLock { entries in
            if let entry = entries[key] {
                return entry.fingerprint == fingerprint ? .repeated(entry.phase) : .mismatched
            }
            entries[key] = Entry(fingerprint: fingerprint, phase: .admitting)
            return .claimed
        }
    }

    /// Moves a held key to `phase`.
    public func settle(_ key: IdempotencyKey, as phase: Phase) {
        self.entries.withLock { $0[key]?.phase = phase }
    }

    /// Lets go of `key`: refused, found in the database, or committed.
    public func release(_ key: IdempotencyKey) {
        _ = self.entries.withLock { $0.removeValue(forKey: key) }
    }

    /// Lets go of every key in `keys` (the requests of a batch that committed).
    public func release(_ keys: some Sequence<IdempotencyKey>) {
        self.entries.withLock { entries in
            for key in keys { entries.removeValue(forKey: key) }
        }
    }

    /// The number of keys held.
    public var count: Int { self.entries.withLock { $0.count } }
}
