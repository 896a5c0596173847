/// A configuration value that cannot be used; the node refuses to start with it.
public struct SettingsError: Error, Sendable, CustomStringConvertible {
    /// The environment variable or flag, as the user would spell it.
    public let setting: String
    /// Why the value was refused.
    public let reason: String

    public var description: String { "invalid setting \(self.setting): \(self.reason)" }
}
