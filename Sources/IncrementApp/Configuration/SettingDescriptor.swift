import Configuration

/// One documented setting: its configuration key, how to spell it, its default and meaning.
///
/// Settings come from command-line flags first, then environment variables; the key
/// `flush.intervalMs` is the flag `--flush-interval-ms` and the variable `FLUSH_INTERVAL_MS`.
public struct SettingDescriptor: Sendable {
    /// The swift-configuration key, dotted.
    public let key: String
    /// The default, as text, or nil when there is none.
    public let defaultValue: String?
    /// One line for `--help`.
    public let summary: String

    /// The environment variable name for this key.
    public var environmentVariable: String {
        Self.words(of: self.key).joined(separator: "_").uppercased()
    }

    /// The command-line flag for this key.
    public var flag: String {
        "--" + Self.words(of: self.key).joined(separator: "-").lowercased()
    }

    /// Splits `flush.intervalMs` into `flush`, `interval`, `Ms`, as swift-configuration's key encoders do.
    static func words(of key: String) -> [String] {
        var words: [String] = []
        for component in key.split(separator: ".") {
            var current = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase {
                    words.append(current)
                    current = ""
                }
                current.append(character)
                previous = character
            }
            words.append(current)
        }
        return words
    }

    /// Reads the raw text of this setting.
    func string(from reader: ConfigReader) -> String? {
        reader.string(forKey: ConfigKey(self.key))
    }

    /// Reads this setting as an integer within `range`, or its default.
    func int(from reader: ConfigReader, in range: ClosedRange<Int>) throws -> Int {
        guard let text = self.string(from: reader) ?? self.defaultValue else {
            throw SettingsError(setting: self.environmentVariable, reason: "is required")
        }
        guard let value = Int(text.filter { $0 != "_" }) else {
            throw SettingsError(setting: self.environmentVariable, reason: "\"\(text)\" is not a whole number")
        }
        guard range.contains(value) else {
            throw SettingsError(
                setting: self.environmentVariable,
                reason: "\(value) is outside \(range.lowerBound)...\(range.upperBound)"
            )
        }
        return value
    }

    /// Reads this setting as milliseconds within `range`, or its default.
    func milliseconds(from reader: ConfigReader, in range: ClosedRange<Int>) throws -> Duration {
        .milliseconds(try self.int(from: reader, in: range))
    }

    /// Reads this setting as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`), or its default.
    func bool(from reader: ConfigReader) throws -> Bool {
        let text = (self.string(from: reader) ?? self.defaultValue ?? "false").lowercased()
        switch text {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw SettingsError(setting: self.environmentVariable, reason: "\"\(text)\" is not true or false")
        }
    }
}
