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
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        let applied: [Int]
        do {
            applied = try await self.client.withTransaction(logger: self.logger) { connection in
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(AdvisoryLockSpace.migrations), 0)",
                    logger: self.logger
                )
                return try await self.applyPending(migrations, on: connection)
            }
        } catch let error as PostgresTransactionError {
            // Our own refusals (a schema newer than this build) speak for themselves.
            if let refusal = error.closureError as? StoreError { throw refusal }
            throw error
        }
        for migration in migrations where applied.contains(migration.version) {
            self.logger.info(
                "applied schema migration",
                metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"]
            )
        }
        return applied
    }

    private func applyPending(_ migrations: [Migration], on connection: PostgresConnection) async throws -> [Int] {
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
            for statement in SQLScript.statements(in: migration.sql) {
                // Migration files are part of this build, never user input.
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
            }
            try await connection.query(
                "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                logger: self.logger
            )
            applied.append(migration.version)
        }
        return applied
    }
}

extension CounterStore {
    /// Applies the migrations bundled with this build.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await SchemaMigrator(client: self.client, logger: self.logger).migrate(try Migration.bundled())
    }
}
