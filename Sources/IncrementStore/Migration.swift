#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One versioned schema change: a SQL file named `NNNN_description.sql`.
public struct Migration: Sendable, Hashable {
    /// The version, from the file name's number; migrations apply in ascending order.
    public let version: Int
    /// The file name without its number and extension.
    public let name: String
    /// The SQL to run, possibly several statements.
    public let sql: String
    /// False for a migration whose file starts with `-- migrate: without transaction`: its
    /// statements (such as `CREATE INDEX CONCURRENTLY`) cannot run inside a transaction block.
    /// They must be safe to run again, since a node can stop between them and the record.
    public let runsInTransaction: Bool

    /// The first line that marks a migration to run outside a transaction.
    public static let withoutTransactionMarker = "-- migrate: without transaction"

    /// Creates a migration.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.runsInTransaction = !sql.hasPrefix(Self.withoutTransactionMarker)
    }

    /// Parses `NNNN_description.sql`; nil for any other file name.
    public init?(fileName: String, sql: String) {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let separator = stem.firstIndex(of: "_"), let version = Int(stem[..<separator]) else { return nil }
        self.init(version: version, name: String(stem[stem.index(after: separator)...]), sql: sql)
    }
}
