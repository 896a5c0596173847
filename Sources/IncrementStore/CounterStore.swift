import IncrementCore
import Logging
import PostgresNIO

/// The counters in PostgreSQL: the flush transaction, reads, and ledger upkeep.
public struct CounterStore: Sendable {
    /// The reason recorded for an increment whose total would leave bigint.
    public static let outOfRangeReason = "total would leave bigint range"

    let client: PostgresClient
    let logger: Logger

    /// Creates a store over `client`, which must be running.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies `batch` in one transaction, exactly once however often it is retried.
    ///
    /// 1. Takes the advisory locks of the batch's cluster shards, in ascending order, so flushes
    ///    from different nodes touching the same keys queue instead of deadlocking.
    /// 2. Inserts the batch's ledger row; if it is already there the batch was applied before
    ///    (its commit was ambiguous) and nothing more is written.
    /// 3. Runs the single upsert over `unnest` arrays. Keys whose total would leave bigint are
    ///    moved to `quarantined_increments` in the same statement; the rest commit.
    ///
    /// - Parameter totalsFor: the keys whose committed totals the caller wants back.
    public func apply(_ batch: FlushBatch, totalsFor wantedKeys: [String] = []) async throws -> FlushResult {
        try await self.client.withTransaction(logger: self.logger) { connection in
            let lockStart = ContinuousClock.now
            try await connection.query(
                "SELECT lock_cluster_shards(\(AdvisoryLockSpace.clusterShards), \(batch.clusterShards))",
                logger: self.logger
            )
            var result = FlushResult(lockWait: ContinuousClock.now - lockStart)

            let nodeID = batch.id.nodeID
            let sequence = batch.id.sequence
            let inserted = try await connection.query(
                """
                INSERT INTO flush_batches (node_id, seq) VALUES (\(nodeID)::uuid, \(sequence))
                ON CONFLICT DO NOTHING RETURNING seq
                """,
                logger: self.logger
            )
            var isNew = false
            for try await _ in inserted { isNew = true }
            guard isNew else {
                result.wasAlreadyApplied = true
                try await self.readOutcome(of: batch, wantedKeys: wantedKeys, into: &result, on: connection)
                return result
            }

            let rows = try await connection.query(
                """
                WITH input AS (
                    SELECT key, delta FROM unnest(\(batch.keys)::text[], \(batch.deltas)::bigint[]) AS u(key, delta)
                ), out_of_range AS (
                    SELECT input.key, input.delta FROM input JOIN counters ON counters.key = input.key
                    WHERE counters.value::numeric + input.delta NOT BETWEEN -9223372036854775808 AND 9223372036854775807
                ), quarantined AS (
                    INSERT INTO quarantined_increments (node_id, seq, key, delta, reason)
                    SELECT \(nodeID)::uuid, \(sequence), key, delta, \(Self.outOfRangeReason) FROM out_of_range
                    RETURNING key
                ), upserted AS (
                    INSERT INTO counters AS c (key, value, updated_at)
                    SELECT key, delta, now() FROM input
                    WHERE NOT EXISTS (SELECT 1 FROM out_of_range WHERE out_of_range.key = input.key)
                    ON CONFLICT (key) DO UPDATE SET value = c.value + EXCLUDED.value, updated_at = EXCLUDED.updated_at
                    RETURNING key, value
                )
                SELECT key, value, false FROM upserted WHERE key = ANY(\(wantedKeys)::text[])
                UNION ALL
                SELECT key, NULL, true FROM quarantined
                """,
                logger: self.logger
            )
            for try await (key, value, wasQuarantined) in rows.decode((String, Int64?, Bool).self) {
                if wasQuarantined {
                    result.quarantined[key] = Self.outOfRangeReason
                } else if let value {
                    result.totals[key] = value
                }
            }
            return result
        }
    }

    /// For a batch applied earlier: the current totals and the quarantine records it left.
    private func readOutcome(
        of batch: FlushBatch,
        wantedKeys: [String],
        into result: inout FlushResult,
        on connection: PostgresConnection
    ) async throws {
        let nodeID = batch.id.nodeID
        let rows = try await connection.query(
            """
            SELECT key, value, false FROM counters WHERE key = ANY(\(wantedKeys)::text[])
            UNION ALL
            SELECT key, NULL, true FROM quarantined_increments WHERE node_id = \(nodeID)::uuid AND seq = \(batch.id.sequence)
            """,
            logger: self.logger
        )
        for try await (key, value, wasQuarantined) in rows.decode((String, Int64?, Bool).self) {
            if wasQuarantined {
                result.quarantined[key] = Self.outOfRangeReason
                result.totals[key] = nil
            } else if let value, result.quarantined[key] == nil {
                result.totals[key] = value
            }
        }
    }

    /// The committed total of `key`, or nil if it was never incremented.
    public func value(forKey key: String) async throws -> Int64? {
        let rows = try await self.client.query("SELECT value FROM counters WHERE key = \(key)", logger: self.logger)
        for try await value in rows.decode(Int64.self) {
            return value
        }
        return nil
    }

    /// Deletes ledger rows older than `age`; returns how many. A retry never comes that late.
    @discardableResult
    public func pruneLedger(olderThan age: Duration) async throws -> Int {
        let seconds = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
        let rows = try await self.client.query(
            """
            WITH pruned AS (
                DELETE FROM flush_batches WHERE applied_at < now() - make_interval(secs => \(seconds))
                RETURNING 1
            )
            SELECT count(*)::bigint FROM pruned
            """,
            logger: self.logger
        )
        var count = 0
        for try await pruned in rows.decode(Int.self) {
            count = pruned
        }
        return count
    }

    /// Records `value` for the cluster-wide setting `name` if no node has yet, and checks that
    /// this node's value is the one recorded.
    public func agree(onClusterSetting name: String, value: Int64) async throws {
        let rows = try await self.client.query(
            """
            WITH recorded AS (
                INSERT INTO cluster_settings (name, value) VALUES (\(name), \(value))
                ON CONFLICT (name) DO NOTHING
                RETURNING value
            )
            SELECT value FROM recorded
            UNION ALL
            SELECT value FROM cluster_settings WHERE name = \(name)
            """,
            logger: self.logger
        )
        for try await recorded in rows.decode(Int64.self) where recorded != value {
            throw StoreError.clusterSettingMismatch(name: name, cluster: recorded, node: value)
        }
    }

    /// Runs a trivial query: true when the database answers.
    public func isReachable() async -> Bool {
        do {
            try await self.client.query("SELECT 1", logger: self.logger)
            return true
        } catch {
            return false
        }
    }
}
