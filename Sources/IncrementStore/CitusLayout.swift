import Logging
import PostgresNIO

/// The schema's layout on a Citus coordinator: which tables are spread over the workers.
///
/// `counters` is distributed by `key` and `idempotency_keys` by `idem_key`, in one colocation
/// group: every statement on them names its rows by the distribution column, so each upsert,
/// read and record lands on the shard that holds it. Every other table (the ledger, the node
/// registry, quarantine, deletions, cluster settings) and the `flush_barrier` sequence stay on
/// the coordinator, where every node connects: they are small, and the flush transaction reaches
/// them there. Advisory locks are the coordinator's, so they still order the flushes of every
/// node.
///
/// Applied by ``CounterStore/migrate()`` when the database has the `citus` extension, once:
/// a table already distributed is left as it is. On plain PostgreSQL nothing changes.
public enum CitusLayout {
    /// The distributed tables and their distribution columns, in the order they are distributed.
    public static let distributedTables: [(table: String, column: String)] = [
        ("counters", "key"),
        ("idempotency_keys", "idem_key"),
    ]

    /// What applying the layout did.
    public enum Outcome: Sendable, Equatable {
        /// The database has no `citus` extension.
        case notCitus
        /// The extension is there; the tables distributed by this call (empty: all were already).
        case distributed([String])
    }
}

extension CounterStore {
    /// Distributes the tables of ``CitusLayout`` that are not yet, if the database has the
    /// `citus` extension; under the migration lock, so nodes migrating at once do it once.
    ///
    /// The statement trigger that announces changes made outside the nodes (migration 0012) is
    /// dropped from `counters` first: Citus would run it on the workers' shards, where no node
    /// listens. Writes by hand on a Citus layout must announce themselves
    /// (`SELECT announce_counter_change(NULL)`), or the nodes run with the read cache off.
    @discardableResult
    public func applyCitusLayout() async throws -> CitusLayout.Outcome {
        try await self.client.withTransaction(logger: self.logger) { connection in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(\(AdvisoryLockSpace.migrations), 0)", logger: self.logger)
            var hasCitus = false
            for try await present in try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')", logger: self.logger
            ).decode(Bool.self) {
                hasCitus = present
            }
            guard hasCitus else { return .notCitus }
            var distributed: Set<String> = []
            for try await table in try await connection.query(
                "SELECT logicalrelid::regclass::text FROM pg_dist_partition", logger: self.logger
            ).decode(String.self) {
                distributed.insert(table)
            }
            var done: [String] = []
            for (table, column) in CitusLayout.distributedTables where !distributed.contains(table) {
                if table == "counters" {
                    try await connection.query(
                        "DROP TRIGGER IF EXISTS counters_changed_unannounced ON counters", logger: self.logger)
                }
                try await connection.query(
                    "SELECT create_distributed_table(\(table)::regclass, \(column))", logger: self.logger)
                done.append(table)
            }
            if !done.isEmpty {
                self.logger.info("distributed tables over the Citus workers", metadata: ["tables": "\(done)"])
            }
            return .distributed(done)
        }
    }
}
