import IncrementCore
import PostgresNIO

extension CounterStore {
    /// What the database remembers of each of `keys`; keys no flush has recorded (or whose
    /// record expired) are absent.
    public func idempotencyRecords(
        for keys: [IdempotencyKey],
        deadline: ContinuousClock.Instant
    ) async throws -> [IdempotencyKey: IdempotencyRecord] {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                SELECT idem_key, fingerprint, total FROM idempotency_keys
                WHERE idem_key = ANY(\(keys.map(\.value))::text[]) AND expires_at > now()
                """,
                logger: self.logger
            )
            var records: [IdempotencyKey: IdempotencyRecord] = [:]
            for try await (key, fingerprint, total) in rows.decode((String, Int64, Int64?).self) {
                records[IdempotencyKey(trusted: key)] = IdempotencyRecord(
                    fingerprint: fingerprint, total: total, recordedByThisFlush: false)
            }
            return records
        }
    }

    /// Deletes idempotency keys past their retention, at most `limit` per call (a long backlog
    /// goes over several upkeep rounds instead of one long statement); returns how many.
    @discardableResult
    public func pruneIdempotencyKeys(limit: Int = 10_000, deadline: ContinuousClock.Instant) async throws -> Int {
        Int(
            try await self.singleValue(
                """
                WITH pruned AS (
                    DELETE FROM idempotency_keys WHERE idem_key IN (
                        SELECT idem_key FROM idempotency_keys WHERE expires_at < now() LIMIT \(Int64(limit))
                    )
                    RETURNING 1
                )
                SELECT count(*)::bigint FROM pruned
                """,
                deadline: deadline
            ))
    }
}
