import IncrementStore
import Logging
import PostgresNIO

/// Applies the schema migrations and returns the versions applied: `increment-node migrate`, run
/// once per deployment (a compose one-shot service, a Kubernetes Job) when nodes start with
/// `MIGRATE_ON_START=false`. Waits up to a minute for a database that is still starting.
public func migrateDatabase(settings: NodeSettings, logger: Logger) async throws -> [Int] {
    let client = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
    let store = CounterStore(client: client, logger: logger, limits: settings.flush.limits)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        let deadline = ContinuousClock.now + .seconds(60)
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await store.migrate()
            } catch let error as StoreError {
                throw error
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                logger.warning(
                    "database not ready for migrations; retrying",
                    metadata: ["migration.attempt": "\(attempt)", "error": "\(describe(error))"]
                )
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
