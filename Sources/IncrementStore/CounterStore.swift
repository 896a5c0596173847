import IncrementCore
import Logging
import PostgresNIO

/// The counters in PostgreSQL: the flush transaction, reads, the ledger and cluster settings.
public struct CounterStore: Sendable {
    /// The reason recorded for an increment whose total would leave bigint.
    public static let outOfRangeReason = "total would leave bigint range"

    let client: PostgresClient
    let logger: Logger
    /// The bounds every flush runs under.
    public let limits: FlushLimits

    /// Creates a store over `client`, which must be running.
    public init(client: PostgresClient, logger: Logger, limits: FlushLimits = FlushLimits()) {
        self.client = client
        self.logger = logger
        self.limits = limits
    }

    /// The committed totals of `keys`; keys never incremented are absent.
    ///
    /// Gives up with ``DeadlineExceeded`` at `deadline` (the pool waits for a connection while
    /// the database is unreachable).
    public func totals(
        forKeys keys: [CounterKey],
        deadline: ContinuousClock.Instant
    ) async throws -> [CounterKey: Int64] {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                "SELECT key, value FROM counters WHERE key = ANY(\(keys.map(\.string))::text[])",
                logger: self.logger
            )
            var totals: [CounterKey: Int64] = [:]
            for try await (key, total) in rows.decode((String, Int64).self) {
                totals[CounterKey(trusted: key)] = total
            }
            return totals
        }
    }

    /// The committed total of `key`, or nil if it was never incremented.
    public func total(forKey key: CounterKey, deadline: ContinuousClock.Instant) async throws -> Int64? {
        try await self.totals(forKeys: [key], deadline: deadline)[key]
    }

    /// Records `value` for the cluster-wide setting `name` if no node has yet, and checks that
    /// this node's value is the one recorded.
    ///
    /// `DO UPDATE` (to the same value) rather than `DO NOTHING`: it waits for a concurrent
    /// first insert to commit and then returns that row, so of two nodes starting at once with
    /// different values, the second always sees the first's value and refuses to start.
    public func agree(onClusterSetting name: String, value: Int64) async throws {
        let rows = try await self.client.query(
            """
            INSERT INTO cluster_settings AS s (name, value) VALUES (\(name), \(value))
            ON CONFLICT (name) DO UPDATE SET value = s.value
            RETURNING value
            """,
            logger: self.logger
        )
        for try await recorded in rows.decode(Int64.self) where recorded != value {
            throw StoreError.clusterSettingMismatch(name: name, cluster: recorded, node: value)
        }
    }

    /// Runs `query`, which returns one row of one `bigint`, before `deadline`; returns that value.
    func singleValue(_ query: PostgresQuery, deadline: ContinuousClock.Instant) async throws -> Int64 {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(query, logger: self.logger)
            for try await value in rows.decode(Int64.self) { return value }
            throw NoRowReturned()
        }
    }
}

/// A statement that always returns one row returned none.
struct NoRowReturned: Error, CustomStringConvertible {
    var description: String { "the database returned no row" }
}
