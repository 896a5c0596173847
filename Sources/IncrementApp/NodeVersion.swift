/// The version of this build, as nodes report it in the cluster registry.
public enum NodeVersion {
    /// The version string.
    public static let current = "1.1.0"
}
