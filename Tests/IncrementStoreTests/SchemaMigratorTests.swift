import IncrementStore
import IncrementTesting
import PostgresNIO
import Testing

struct SchemaMigratorTests {
    @Test func nodesStartingAtOnceApplyEachMigrationOnce() async throws {
        let database = try await TestDatabase.create()
        let migrations = try Migration.bundled()
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await database.withClient { client in
                        try await SchemaMigrator(client: client, logger: testLogger).migrate(migrations)
                    }
                }
            }
            var all: [Int] = []
            for try await versions in group { all += versions }
            return all
        }
        #expect(applied.sorted() == migrations.map(\.version))
        let (recorded, reapplied) = try await database.withClient { client in
            let recorded = try await scalar(client, "SELECT count(*)::bigint FROM schema_migrations")
            // Running again is a no-op.
            let reapplied = try await SchemaMigrator(client: client, logger: testLogger).migrate(migrations)
            return (recorded, reapplied)
        }
        #expect(recorded == Int64(migrations.count))
        #expect(reapplied.isEmpty)
    }

    @Test func refusesASchemaNewerThanTheBuild() async throws {
        try await withMigratedStore { _, client, _ in
            try await client.query("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')", logger: testLogger)
            let migrations = try Migration.bundled()
            let newest = migrations.last?.version ?? 0
            await #expect(throws: StoreError.schemaNewerThanBuild(database: 9999, build: newest)) {
                try await SchemaMigrator(client: client, logger: testLogger).migrate(migrations)
            }
        }
    }

    @Test func splitsScriptsAroundQuotedSemicolons() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (a text DEFAULT ';');
            CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END; $$;
            /* block; comment */ SELECT 'it''s; fine', "odd;name" FROM t;
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 3)
        #expect(statements[1].hasSuffix("$$ BEGIN PERFORM 1; END; $$"))
        #expect(statements[2].hasSuffix(#"SELECT 'it''s; fine', "odd;name" FROM t"#))
    }
}

/// The migration that builds an index concurrently, outside a transaction.
struct ConcurrentIndexMigrationTests {
    /// A build that failed leaves an invalid index: the next run drops it and builds it again.
    @Test func anInvalidIndexLeftByAFailedBuildIsBuiltAgain() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            let migrator = SchemaMigrator(client: client, logger: testLogger)
            // The schema as the failed build left it: the index migration is the last one run.
            var migrations: [Migration] = []
            for migration in try Migration.bundled() {
                migrations.append(migration)
                if !migration.runsInTransaction { break }
            }
            let version = try #require(migrations.last?.version)
            #expect(migrations.last?.runsInTransaction == false)
            try await migrator.migrate(migrations)
            try await client.query(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'counters_key_bytes'::regclass", logger: testLogger)
            try await client.query("DELETE FROM schema_migrations WHERE version = \(version)", logger: testLogger)
            #expect(try await migrator.migrate(migrations) == [version])
            #expect(
                try await scalar(client, "SELECT count(*)::bigint FROM pg_index WHERE NOT indisvalid") == 0)
            #expect(
                try await scalar(client, "SELECT count(*)::bigint FROM pg_indexes WHERE indexname = 'counters_key_bytes'") == 1)
        }
    }
}
