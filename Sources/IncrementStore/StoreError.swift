/// Errors of the store that are not PostgreSQL's own.
public enum StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The migration files are not next to the binary (a broken install).
    case migrationsMissing
    /// Two migration files carry the same version number.
    case duplicateMigrationVersion(Int)
    /// The database holds a schema version newer than this build knows.
    case schemaNewerThanBuild(database: Int, build: Int)
    /// This node's value of a cluster-wide setting differs from the one the cluster uses.
    case clusterSettingMismatch(name: String, cluster: Int64, node: Int64)
    /// A migration's concurrent index build failed three times.
    case indexBuildFailed(migration: Int)

    public var description: String {
        switch self {
        case .migrationsMissing:
            "the Migrations resource folder was not found next to the executable"
        case .duplicateMigrationVersion(let version):
            "two migrations share version \(version)"
        case .schemaNewerThanBuild(let database, let build):
            "the database schema is at version \(database), newer than this build's \(build)"
        case .clusterSettingMismatch(let name, let cluster, let node):
            "\(name) is \(node) on this node but \(cluster) in the cluster; every node must use \(cluster)"
        case .indexBuildFailed(let migration):
            "migration \(migration) left an invalid index after three concurrent builds; see the PostgreSQL log"
        }
    }
}
