import PostgresNIO

/// What a connection's server is to this node, as the health probe and failed writes find it.
public enum DatabaseRole: UInt8, Sendable, CustomStringConvertible {
    /// A primary that accepts writes.
    case writable
    /// The server answers but refuses writes: a standby (before or without promotion), or one set
    /// read-only. A stable endpoint that still points at it is expected to move.
    case notWritable
    /// No answer by the deadline, or the connection failed.
    case unreachable

    public var description: String {
        switch self {
        case .writable: "writable"
        case .notWritable: "not writable"
        case .unreachable: "unreachable"
        }
    }
}

extension Error {
    /// The error a wrapper stands for: a flush failure's, or a transaction's (its closure's,
    /// COMMIT's, BEGIN's or ROLLBACK's), all the way down.
    public var postgresCause: any Error {
        if let failure = self as? FlushFailure { return failure.underlying.postgresCause }
        if let transaction = self as? PostgresTransactionError,
            let cause = transaction.closureError ?? transaction.commitError ?? transaction.beginError ?? transaction.rollbackError
        {
            return cause.postgresCause
        }
        return self
    }

    /// True for SQLSTATE 25006 `read_only_sql_transaction`: the connection is to a server that
    /// refuses writes (a standby), whatever the endpoint it was opened through points at now.
    public var isReadOnlyServerError: Bool {
        (self.postgresCause as? PSQLError)?.serverInfo?[.sqlState] == "25006"
    }
}

extension CounterStore {
    /// Asks a pooled connection's server whether it takes writes, before `deadline`. A connection
    /// to a server that does not is closed: pooled connections outlive a failover, and only a new
    /// one follows an endpoint (a DNS name, a proxy) that moved to the new primary.
    public func databaseRole(deadline: ContinuousClock.Instant) async -> DatabaseRole {
        do {
            return try await withDeadline(deadline) {
                try await self.client.withConnection { connection in
                    let rows = try await connection.query(
                        "SELECT current_setting('transaction_read_only') = 'on'", logger: self.logger)
                    var readOnly = false
                    for try await value in rows.decode(Bool.self) { readOnly = value }
                    guard readOnly else { return .writable }
                    try? await connection.close()
                    return .notWritable
                }
            }
        } catch {
            return .unreachable
        }
    }
}
