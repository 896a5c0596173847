import IncrementCore
import PostgresNIO

extension CounterStore {
    /// Creates this node's ledger row (high-water mark 0); a node registers before it flushes.
    public func register(nodeID: String) async throws {
        try await self.client.query(
            """
            INSERT INTO flush_ledger (node_id, last_seq, retain_until)
            VALUES (\(nodeID)::uuid, 0, now() + make_interval(secs => \(self.limits.ledgerRetention.seconds)))
            ON CONFLICT (node_id) DO NOTHING
            """,
            logger: self.logger
        )
    }

    /// Keeps this node's ledger row for another retention period from now: a live node's row
    /// is never pruned while it could still retry a batch.
    public func heartbeat(nodeID: String, deadline: ContinuousClock.Instant) async throws {
        try await withDeadline(deadline) {
            try await self.client.query(
                """
                UPDATE flush_ledger SET retain_until = now() + make_interval(secs => \(self.limits.ledgerRetention.seconds))
                WHERE node_id = \(nodeID)::uuid
                """,
                logger: self.logger
            )
        }
    }

    /// Deletes this node's ledger row and its registry row: called at a clean shutdown, when
    /// nothing is left to retry (or once another node applied what it spilled).
    public func deregister(nodeID: String, deadline: ContinuousClock.Instant) async throws {
        try await withDeadline(deadline) {
            try await self.client.query(
                """
                WITH registry AS (DELETE FROM cluster_nodes WHERE node_id = \(nodeID)::uuid)
                DELETE FROM flush_ledger WHERE node_id = \(nodeID)::uuid
                """,
                logger: self.logger
            )
        }
    }

    /// Deletes the ledger rows whose nodes have not been heard from for their retention period;
    /// returns how many. Each row carries its own node's retention, so no node's setting decides
    /// for another.
    @discardableResult
    public func pruneLedger(deadline: ContinuousClock.Instant) async throws -> Int {
        Int(
            try await self.singleValue(
                """
                WITH pruned AS (DELETE FROM flush_ledger WHERE retain_until < now() RETURNING 1)
                SELECT count(*)::bigint FROM pruned
                """,
                deadline: deadline
            ))
    }
}
