import IncrementStore
import PostgresNIO

/// A one-line description of `error` for logs: PostgreSQL's message and SQLSTATE rather than
/// the whole query and its binds.
func describe(_ error: any Error) -> String {
    if error is PostgresTransactionError {
        let cause = error.postgresCause
        return cause is PostgresTransactionError ? "transaction failed" : describe(cause)
    }
    if let error = error as? PSQLError {
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState] ?? "?"
            return "\(message) (SQLSTATE \(state))"
        }
        return "\(error.code)"
    }
    return String(describing: error)
}
