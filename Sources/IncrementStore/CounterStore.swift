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
    /// Whether reads use a statement prepared on each connection; not behind a pooler that
    /// cannot keep them (PgBouncer in transaction mode before 1.21).
    public let usesPreparedStatements: Bool

    /// Creates a store over `client`, which must be running.
    public init(client: PostgresClient, logger: Logger, limits: FlushLimits = FlushLimits(), usesPreparedStatements: Bool = true) {
        self.client = client
        self.logger = logger
        self.limits = limits
        self.usesPreparedStatements = usesPreparedStatements
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
            var totals: [CounterKey: Int64] = [:]
            totals.reserveCapacity(keys.count)
            if self.usesPreparedStatements {
                for try await (key, total) in try await self.client.execute(CounterTotals(keys: keys), logger: self.logger) {
                    totals[CounterKey(trusted: key)] = total
                }
            } else {
                let rows = try await self.client.query(
                    "SELECT key, value FROM counters WHERE key = ANY(\(keys.map(\.string))::text[])",
                    logger: self.logger
                )
                for try await (key, total) in rows.decode((String, Int64).self) {
                    totals[CounterKey(trusted: key)] = total
                }
            }
            return totals
        }
    }

    /// The read of many counters, prepared once per connection: PostgreSQL parses and plans it
    /// once instead of at every read.
    struct CounterTotals: PostgresPreparedStatement {
        static let sql = "SELECT key, value FROM counters WHERE key = ANY($1::text[])"
        typealias Row = (String, Int64)

        let keys: [CounterKey]

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(self.keys.map(\.string))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row {
            try row.decode(Row.self)
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
