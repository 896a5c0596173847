/// What a bearer token may do. `admin` may do everything.
public enum AccessScope: String, Sendable, CaseIterable {
    /// `POST /increment`, `POST /increments`.
    case write
    /// `GET /counters`, `GET /counters/{key}`.
    case read
    /// `DELETE /counters/{key}`, `DELETE /counters?prefix=`: destructive, so a scope of its own.
    case delete
    /// `GET /cluster`, `POST /flush`, and `GET /metrics` when it is protected.
    case admin
}

/// The bearer tokens a node accepts, each with its scopes. Empty: authentication is off.
///
/// Tokens are compared in constant time: every configured token is compared in full, whatever
/// matches, so the time taken tells nothing about how much of a guess was right.
public struct AccessTokens: Sendable {
    private let entries: [(token: [UInt8], scopes: Set<AccessScope>)]

    /// True when at least one token is configured: every protected route then needs one.
    public var isEnabled: Bool { !self.entries.isEmpty }

    /// Reads tokens from `text`: one per line (or separated by `;`), `TOKEN SCOPE[,SCOPE...]`;
    /// blank lines and lines starting with `#` are ignored.
    ///
    /// - Throws: ``AccessTokensError`` naming the line that is not of that form.
    public init(parsing text: String) throws(AccessTokensError) {
        var entries: [(token: [UInt8], scopes: Set<AccessScope>)] = []
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == ";" })
        for (number, line) in lines.enumerated() {
            let trimmed = line.trimmingSpaces
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2 else {
                throw AccessTokensError(entry: number + 1, reason: "expected \"TOKEN SCOPE[,SCOPE...]\"")
            }
            var scopes = Set<AccessScope>()
            for name in fields[1].split(separator: ",") {
                guard let scope = AccessScope(rawValue: String(name)) else {
                    throw AccessTokensError(entry: number + 1, reason: "unknown scope \"\(name)\" (write, read, delete or admin)")
                }
                scopes.insert(scope)
            }
            guard fields[0].utf8.count >= 16 else {
                throw AccessTokensError(entry: number + 1, reason: "a token must be at least 16 characters")
            }
            entries.append((Array(fields[0].utf8), scopes))
        }
        self.entries = entries
    }

    /// No tokens: authentication off.
    public init() {
        self.entries = []
    }

    /// The scopes of `token`, or nil when it is not a configured token.
    public func scopes(of token: some StringProtocol) -> Set<AccessScope>? {
        let presented = Array(token.utf8)
        var found: Set<AccessScope>?
        for entry in self.entries {
            if Self.constantTimeEqual(presented, entry.token) { found = entry.scopes }
        }
        return found
    }

    /// Compares every byte of the longer of the two, so the time depends on lengths only.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count)
        for index in 0..<max(lhs.count, rhs.count) {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0 && lhs.count == rhs.count
    }
}

/// A token entry that cannot be read.
public struct AccessTokensError: Error, Sendable, CustomStringConvertible {
    /// The entry's position, from 1.
    public let entry: Int
    /// What is wrong with it.
    public let reason: String

    public var description: String { "token entry \(self.entry): \(self.reason)" }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" || first == "\r" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" || last == "\r" { trimmed.removeLast() }
        return trimmed
    }
}
