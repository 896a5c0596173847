import IncrementCore
import PostgresNIO

extension CounterStore {
    /// What the database remembers of `key`, or nil when no flush has recorded it (or it expired).
    public func idempotencyRecord(
        for key: IdempotencyKey,
        deadline: ContinuousClock.Instant
    ) async throws -> IdempotencyRecord? {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                "SELECT fingerprint, total FROM idempotency_keys WHERE idem_key = \(key.value) AND expires_at > now()",
                logger: self.logger
            )
            for try await (fingerprint, total) in rows.decode((Int64, Int64?).self) {
                return IdempotencyRecord(fingerprint: fingerprint, total: total, recordedByThisFlush: false)
            }
            return nil
        }
    }

    /// Deletes idempotency keys past their retention, at most `limit` per call (a long backlog
    /// goes over several upkeep rounds instead of one long statement); returns how many.
    @discardableResult
    public func pruneIdempotencyKeys(limit: Int = 10_000, deadline: ContinuousClock.Instant) async throws -> Int {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                WITH pruned AS (
                    DELETE FROM idempotency_keys WHERE idem_key IN (
                        SELECT idem_key FROM idempotency_keys WHERE expires_at < now() LIMIT \(Int64(limit))
                    )
                    RETURNING 1
                )
                SELECT count(*)::bigint FROM pruned
                """,
                logger: self.logger
            )
            var count = 0
            for try await pruned in rows.decode(Int.self) { count = pruned }
            return count
        }
    }
}
