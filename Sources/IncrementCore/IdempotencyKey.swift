/// The value of an `Idempotency-Key` request header (IETF httpapi draft "The Idempotency-Key
/// HTTP Header Field"): a Structured Field string, such as `"8e03978e-40d5-43e8-bc93-6894a57f9324"`.
///
/// The draft's syntax is `sf-string` (quoted). A bare value of the same characters is accepted
/// as well, since many clients send one. 1 to 255 characters of printable ASCII.
public struct IdempotencyKey: Sendable, Hashable, CustomStringConvertible {
    /// The key, unquoted and unescaped.
    public let value: String

    /// The longest key accepted, in characters.
    public static let maximumLength = 255

    /// Parses a header value.
    public init(headerValue raw: String) throws(IdempotencyKeyError) {
        let trimmed = raw.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
        let bytes = Array(trimmed)
        var value: [UInt8] = []
        if bytes.first == UInt8(ascii: "\"") {
            // sf-string: DQUOTE *( unescaped / "\" ( DQUOTE / "\" ) ) DQUOTE, printable ASCII only.
            var index = 1
            var closed = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\\") {
                    guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") || bytes[index + 1] == UInt8(ascii: "\\") else {
                        throw IdempotencyKeyError("a backslash in a quoted key must escape \" or \\")
                    }
                    value.append(bytes[index + 1])
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") {
                    closed = true
                    index += 1
                    break
                }
                guard (0x20...0x7E).contains(byte) else {
                    throw IdempotencyKeyError("the key must be printable ASCII")
                }
                value.append(byte)
                index += 1
            }
            guard closed, index == bytes.count else {
                throw IdempotencyKeyError("a quoted key must end with its closing quote")
            }
        } else {
            for byte in bytes {
                guard (0x21...0x7E).contains(byte), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else {
                    throw IdempotencyKeyError("an unquoted key must be printable ASCII without spaces, quotes or backslashes")
                }
            }
            value = bytes
        }
        guard !value.isEmpty else { throw IdempotencyKeyError("the key must not be empty") }
        guard value.count <= Self.maximumLength else {
            throw IdempotencyKeyError("the key must be at most \(Self.maximumLength) characters, got \(value.count)")
        }
        self.value = String(decoding: value, as: UTF8.self)
    }

    /// Wraps a key known to be valid, such as one read back from the database.
    public init(trusted value: String) {
        self.value = value
    }

    public var description: String { self.value }
}

/// Why an `Idempotency-Key` header was refused.
public struct IdempotencyKeyError: Error, Sendable, Hashable {
    /// A sentence for a person.
    public let message: String

    init(_ message: String) {
        self.message = "Idempotency-Key: " + message
    }
}
