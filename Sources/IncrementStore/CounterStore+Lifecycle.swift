import IncrementCore
import PostgresNIO

/// What one round of a prefix delete did.
public struct PrefixDeletion: Sendable, Equatable {
    /// The counters this round deleted.
    public var deleted: Int
    /// Whether counters with the prefix are left (the next round deletes them).
    public var more: Bool

    public init(deleted: Int, more: Bool) {
        self.deleted = deleted
        self.more = more
    }
}

/// One page of a listing.
public struct CounterPage: Sendable, Equatable {
    /// The counters, in byte order of their keys.
    public var counters: [(key: CounterKey, value: Int64)]
    /// The key to list after for the next page; nil on the last page.
    public var next: CounterKey?

    public init(counters: [(key: CounterKey, value: Int64)], next: CounterKey?) {
        self.counters = counters
        self.next = next
    }

    public static func == (lhs: CounterPage, rhs: CounterPage) -> Bool {
        lhs.next == rhs.next && lhs.counters.elementsEqual(rhs.counters) { $0.key == $1.key && $0.value == $1.value }
    }
}

extension CounterStore {
    /// Deletes counter `key` after flush barrier `barrier` passed, under the key's cluster-shard
    /// lock (exclusive: no flush of the shard runs meanwhile, and every flush after it sees the
    /// deletion record). Returns the total it held, nil when there was no such counter.
    ///
    /// The deletion record makes any batch accepted before `barrier` that commits later (see
    /// ``FlushBatch/barrier``) skip the key.
    public func deleteCounter(
        _ key: CounterKey,
        barrier: Int64,
        shardMap: ClusterShardMap,
        deadline: ContinuousClock.Instant
    ) async throws -> Int64? {
        try await self.inDeleteTransaction(locking: shardMap.lockOrder(for: [key]), deadline: deadline) { connection in
            try await self.recordDeletion(of: key.string, isPrefix: false, barrier: barrier, on: connection)
            let rows = try await connection.query(
                "DELETE FROM counters WHERE key = \(key.string) RETURNING value", logger: self.logger)
            var total: Int64?
            for try await value in rows.decode(Int64.self) { total = value }
            return total
        }
    }

    /// Deletes at most `limit` counters whose keys start with `prefix`, after flush barrier
    /// `barrier` passed, under their cluster-shard locks; records the prefix's deletion so that
    /// batches accepted before `barrier` skip every key with it, deleted yet or not.
    public func deleteCounters(
        prefix: KeyPrefix,
        barrier: Int64,
        limit: Int,
        shardMap: ClusterShardMap,
        deadline: ContinuousClock.Instant
    ) async throws -> PrefixDeletion {
        let upper = prefix.upperBound
        let keys = try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                SELECT key FROM counters
                WHERE key COLLATE "C" >= \(prefix.string) AND (\(upper)::text IS NULL OR key COLLATE "C" < \(upper))
                ORDER BY key COLLATE "C" LIMIT \(limit)
                """,
                logger: self.logger
            )
            var keys: [CounterKey] = []
            for try await key in rows.decode(String.self) { keys.append(CounterKey(trusted: key)) }
            return keys
        }
        return try await self.inDeleteTransaction(locking: shardMap.lockOrder(for: keys), deadline: deadline) { connection in
            try await self.recordDeletion(of: prefix.string, isPrefix: true, barrier: barrier, on: connection)
            let deleted = try await connection.query(
                """
                WITH deleted AS (DELETE FROM counters WHERE key = ANY(\(keys.map(\.string))::text[]) RETURNING 1)
                SELECT count(*)::bigint FROM deleted
                """,
                logger: self.logger
            )
            var result = PrefixDeletion(deleted: 0, more: false)
            for try await count in deleted.decode(Int64.self) { result.deleted = Int(count) }
            // A statement of its own: it sees the deletions above (a sibling in the same
            // statement would not, and excluding the deleted keys by name costs keys² comparisons).
            let left = try await connection.query(
                """
                SELECT EXISTS (
                    SELECT 1 FROM counters
                    WHERE key COLLATE "C" >= \(prefix.string) AND (\(upper)::text IS NULL OR key COLLATE "C" < \(upper))
                )
                """,
                logger: self.logger
            )
            for try await more in left.decode(Bool.self) { result.more = more }
            return result
        }
    }

    /// At most `limit` counters after `after` (exclusive), with `prefix` if given, in byte
    /// order of their keys: a keyset page, one index range scan whatever the table's size.
    public func counters(
        prefix: KeyPrefix?,
        after: CounterKey?,
        limit: Int,
        deadline: ContinuousClock.Instant
    ) async throws -> CounterPage {
        let lower = prefix?.string ?? ""
        let upper = prefix?.upperBound
        return try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                SELECT key, value FROM counters
                WHERE key COLLATE "C" >= \(lower) AND (\(upper)::text IS NULL OR key COLLATE "C" < \(upper))
                AND (\(after?.string)::text IS NULL OR key COLLATE "C" > \(after?.string))
                ORDER BY key COLLATE "C" LIMIT \(limit + 1)
                """,
                logger: self.logger
            )
            var counters: [(key: CounterKey, value: Int64)] = []
            for try await (key, value) in rows.decode((String, Int64).self) {
                counters.append((CounterKey(trusted: key), value))
            }
            // One row more than asked for says there is a next page.
            guard counters.count > limit else { return CounterPage(counters: counters, next: nil) }
            counters.removeLast()
            return CounterPage(counters: counters, next: counters.last?.key)
        }
    }

    /// Deletes the deletion records older than the ledger retention: a batch accepted before
    /// such a delete could only come from a node whose ledger entry is gone too. Returns how many.
    @discardableResult
    public func pruneDeletionRecords(deadline: ContinuousClock.Instant) async throws -> Int {
        Int(
            try await self.singleValue(
                """
                WITH pruned AS (
                    DELETE FROM counter_deletions
                    WHERE deleted_at < now() - make_interval(secs => \(self.limits.ledgerRetention.seconds)) RETURNING 1
                )
                SELECT count(*)::bigint FROM pruned
                """,
                deadline: deadline
            ))
    }

    // MARK: Private

    /// Runs `body` in a transaction holding the exclusive locks of `shards` (ascending, as
    /// flushes take them: no deadlock). Its statements, lock waits included, end by `deadline`
    /// (at most a flush attempt's timeout), so a delete the caller gave up on rolls back rather
    /// than commit later, unless it had reached COMMIT.
    private func inDeleteTransaction<Result: Sendable>(
        locking shards: [Int32],
        deadline: ContinuousClock.Instant,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await withDeadline(deadline) {
            try await self.client.withTransaction(logger: self.logger) { connection in
                let timeout = min(self.limits.attemptTimeout, max(deadline - .now, .milliseconds(1))).postgresMilliseconds
                try await connection.query(
                    """
                    SELECT set_config('statement_timeout', \(timeout) || 'ms', true),
                        set_config('lock_timeout', \(timeout) || 'ms', true),
                        lock_cluster_shards(\(AdvisoryLockSpace.clusterShards), \(shards))
                    """,
                    logger: self.logger
                )
                return try await body(connection)
            }
        }
    }

    private func recordDeletion(of key: String, isPrefix: Bool, barrier: Int64, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO counter_deletions (key, is_prefix, barrier) VALUES (\(key), \(isPrefix), \(barrier))",
            logger: self.logger
        )
    }
}
