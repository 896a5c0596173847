import Logging
import PostgresNIO

/// Applies the versioned migrations at start-up.
///
/// The whole run holds a session advisory lock, so N nodes starting at once apply each
/// migration exactly once: the first migrates, the others wait and then find nothing to do.
/// Each migration runs in its own transaction together with its `schema_migrations` row.
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
        try await self.client.withConnection { connection in
            try await connection.query(
                "SELECT pg_advisory_lock(\(AdvisoryLockSpace.migrations), 0)",
                logger: self.logger
            )
            do {
                let applied = try await self.applyPending(migrations, on: connection)
                try await connection.query(
                    "SELECT pg_advisory_unlock(\(AdvisoryLockSpace.migrations), 0)",
                    logger: self.logger
                )
                return applied
            } catch {
                // Release the lock before the connection goes back to the pool.
                _ = try? await connection.query(
                    "SELECT pg_advisory_unlock(\(AdvisoryLockSpace.migrations), 0)",
                    logger: self.logger
                )
                throw error
            }
        }
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
            try await connection.withTransaction(logger: self.logger) { connection in
                for statement in SQLScript.statements(in: migration.sql) {
                    // Migration files are part of this build, never user input.
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: self.logger
                )
            }
            self.logger.info(
                "applied schema migration",
                metadata: ["migration.version": "\(migration.version)", "migration.name": "\(migration.name)"]
            )
            applied.append(migration.version)
        }
        return applied
    }
}
