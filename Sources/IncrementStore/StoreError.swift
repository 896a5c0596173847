/// Errors of the store that are not PostgreSQL's own.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The migration files are not next to the binary (a broken install).
    case migrationsMissing
    /// Two migration files carry the same version number.
    case duplicateMigrationVersion(Int)
    /// The database holds a schema version newer than this build knows.
    case schemaNewerThanBuild(database: Int, build: Int)

    public var description: String {
        switch self {
        case .migrationsMissing:
            "the Migrations resource folder was not found next to the executable"
        case .duplicateMigrationVersion(let version):
            "two migrations share version \(version)"
        case .schemaNewerThanBuild(let database, let build):
            "the database schema is at version \(database), newer than this build's \(build)"
        }
    }
}
