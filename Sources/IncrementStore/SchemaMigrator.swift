import Logging
import PostgresNIO

/// Applies the versioned migrations.
///
/// Every pending migration runs in one transaction that first takes a transaction-scoped
/// advisory lock, so N nodes starting at once apply each migration exactly once (the first
/// migrates, the others wait and then find nothing to do), and a failed migration leaves the
/// schema as it was. Nothing outlives the transaction, so it works through PgBouncer in
/// transaction mode, where consecutive transactions may run on different server connections.
public struct SchemaMigrator: Sendable {
    let client: PostgresClient
    let logger: Logger

    /// Creates a migrator using `client`.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies every migration in `migrations` not yet applied; returns the versions it applied.
    ///
    /// A migration that runs without a transaction (``Migration/runsInTransaction``) runs between
    /// two migration transactions, holding no lock: `CREATE INDEX CONCURRENTLY` waits for every
    /// transaction older than itself, so another node's migration transaction must not wait for it.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        var applied: [Int] = []
        while true {
            let step = try await self.inMigrationTransaction { connection in
                try await self.applyPending(migrations, on: connection)
            }
            applied += step.applied
            guard let outside = step.next else { break }
            try await self.applyWithoutTransaction(outside)
            let recorded = try await self.inMigrationTransaction { connection in
                try await self.record(outside, on: connection)
            }
            if recorded { applied.append(outside.version) }
        }
        for migration in migrations where applied.contains(migration.version) {
            self.logger.info(
                "applied schema migration",
                metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"]
            )
        }
        return applied
    }

    /// Runs `body` in a transaction holding the migration lock.
    private func inMigrationTransaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await self.client.withTransaction(logger: self.logger) { connection in
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(AdvisoryLockSpace.migrations), 0)",
                    logger: self.logger
                )
                return try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            // Our own refusals (a schema newer than this build) speak for themselves.
            if let refusal = error.closureError as? StoreError { throw refusal }
            throw error
        }
    }

    /// Applies the pending migrations that run in a transaction, in order, up to the first one
    /// that does not; returns the versions applied and that one.
    private func applyPending(
        _ migrations: [Migration],
        on connection: PostgresConnection
    ) async throws -> (applied: [Int], next: Migration?) {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: self.logger
        )
        var current = 0
        for try await version in try await connection.query(
            "SELECT coalesce(max(version), 0)::integer FROM schema_migrations",
            logger: self.logger
        ).decode(Int.self) {
            current = version
        }
        let newest = migrations.last?.version ?? 0
        if current > newest {
            throw StoreError.schemaNewerThanBuild(database: current, build: newest)
        }
        var applied: [Int] = []
        for migration in migrations where migration.version > current {
            guard migration.runsInTransaction else { return (applied, migration) }
            for statement in SQLScript.statements(in: migration.sql) {
                // Migration files are part of this build, never user input.
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
            _ = try await self.record(migration, on: connection)
            applied.append(migration.version)
        }
        return (applied, nil)
    }

    /// Records `migration` as applied; false if another node recorded it first.
    private func record(_ migration: Migration, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))
            ON CONFLICT (version) DO NOTHING RETURNING version
            """,
            logger: self.logger
        )
        var inserted = false
        for try await _ in rows.decode(Int.self) { inserted = true }
        return inserted
    }

    /// Runs a migration's statements one by one, outside any transaction, until no index is left
    /// invalid. Another node may be building the same index (`IF NOT EXISTS` then returns at
    /// once): that build is waited for. An index whose build failed (its node stopped, say) is
    /// invalid with no build running: it is dropped and the migration runs again.
    private func applyWithoutTransaction(_ migration: Migration) async throws {
        for _ in 0..<3 {
            for statement in SQLScript.statements(in: migration.sql) {
                try await self.client.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
            let failed = try await self.invalidIndexesOnceBuilt()
            if failed.isEmpty { return }
            for index in failed {
                self.logger.warning("dropping an index whose concurrent build failed", metadata: ["migration.index": "\(index)"])
                // The name comes from the catalogue, quoted by PostgreSQL (regclass output).
                try await self.client.query(PostgresQuery(unsafeSQL: "DROP INDEX CONCURRENTLY IF EXISTS \(index)"), logger: self.logger)
            }
        }
        throw StoreError.indexBuildFailed(migration: migration.version)
    }

    /// The invalid indexes of the current schema, once none of them is being built. A build holds
    /// its table's SHARE UPDATE EXCLUSIVE lock (as VACUUM does, which is only waited for too);
    /// `pg_locks`, unlike the progress view, shows it whatever role the builder has.
    private func invalidIndexesOnceBuilt() async throws -> [String] {
        while true {
            let rows = try await self.client.query(
                """
                SELECT i.indexrelid::regclass::text,
                    EXISTS (
                        SELECT 1 FROM pg_locks AS l
                        WHERE l.relation = i.indrelid AND l.mode = 'ShareUpdateExclusiveLock' AND l.pid <> pg_backend_pid()
                    )
                FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
                WHERE NOT i.indisvalid AND c.relnamespace = current_schema()::regnamespace
                """,
                logger: self.logger
            )
            var invalid: [String] = []
            var building = false
            for try await (name, beingBuilt) in rows.decode((String, Bool).self) {
                invalid.append(name)
                building = building || beingBuilt
            }
            if !building { return invalid }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

extension CounterStore {
    /// Applies the migrations bundled with this build, then, on a Citus coordinator, the
    /// ``CitusLayout``.
    @discardableResult
    public func migrate() async throws -> [Int] {
        let applied = try await SchemaMigrator(client: self.client, logger: self.logger).migrate(try Migration.bundled())
        try await self.applyCitusLayout()
        return applied
    }
}
