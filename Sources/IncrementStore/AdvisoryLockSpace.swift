/// The first key of the two-key PostgreSQL advisory locks this service takes, so that its locks
/// cannot collide with another application's in the same database.
public enum AdvisoryLockSpace {
    /// Cluster-shard locks: `(clusterShards, shard)`, held for one flush transaction.
    public static let clusterShards: Int32 = 0x494E_4352  // "INCR"
    /// The schema migration lock: `(migrations, 0)`, held by the migration transaction.
    public static let migrations: Int32 = 0x494E_434D  // "INCM"
}
