/// Why a request body was refused. Nothing of a refused body is applied.
public enum IncrementInputError: Error, Sendable, Hashable {
    /// The body is not well-formed JSON, or not of the expected shape.
    case invalidJSON(String)
    /// A required field is absent.
    case missingField(String)
    /// The key is not a string, is empty, too long, holds NUL or is not valid UTF-8.
    case invalidKey(String)
    /// The value is not a JSON integer (`1.5`, `"2"`, `1e3`, `true` are refused).
    case invalidValue(String)
    /// The value is an integer outside Int64, or the pending total for its key would leave Int64.
    case valueOutOfRange(String)
    /// A batch holds more items than allowed.
    case tooManyItems(String)

    /// The stable, machine-readable error code of the HTTP contract.
    public var code: ErrorCode {
        switch self {
        case .invalidJSON: .invalidJSON
        case .missingField: .missingField
        case .invalidKey: .invalidKey
        case .invalidValue: .invalidValue
        case .valueOutOfRange: .valueOutOfRange
        case .tooManyItems: .tooManyItems
        }
    }

    /// A sentence for a person.
    public var message: String {
        switch self {
        case .invalidJSON(let message), .missingField(let message), .invalidKey(let message),
            .invalidValue(let message), .valueOutOfRange(let message), .tooManyItems(let message):
            message
        }
    }

    /// The same error with `prefix` (such as `increments[3]`) naming where it happened.
    func located(at prefix: String) -> Self {
        switch self {
        case .invalidJSON(let message): .invalidJSON("\(prefix): \(message)")
        case .missingField(let message): .missingField("\(prefix): \(message)")
        case .invalidKey(let message): .invalidKey("\(prefix): \(message)")
        case .invalidValue(let message): .invalidValue("\(prefix): \(message)")
        case .valueOutOfRange(let message): .valueOutOfRange("\(prefix): \(message)")
        case .tooManyItems(let message): .tooManyItems("\(prefix): \(message)")
        }
    }
}
