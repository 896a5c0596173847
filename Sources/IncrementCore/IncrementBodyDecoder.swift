/// Decodes the JSON bodies of `POST /increment` and `POST /increments`, strictly.
///
/// A general-purpose JSON decoder cannot tell `1` from `1.0` or `1e3` once it has a number,
/// nor report *which* rule a body broke. This decoder reads the JSON grammar exactly (RFC 8259),
/// keeps each field's JSON kind, and only then applies the contract's rules, so a syntax error is
/// always `invalid_json` and a well-formed body gets the precise error for its first bad field.
/// Unknown fields are read, checked for well-formedness and ignored.
public enum IncrementBodyDecoder {
    /// The most items one `POST /increments` body may hold.
    public static let defaultMaximumBatchItems = 1_000

    /// Decodes `{"key": <string>, "value": <integer>}`.
    public static func decodeIncrement(from bytes: UnsafeRawBufferPointer) throws(IncrementInputError) -> Increment {
        var reader = JSONReader(bytes)
        let fields = try reader.readDocument { (reader: inout JSONReader) throws(IncrementInputError) in
            try reader.readIncrementFields()
        }
        return try fields.increment()
    }

    /// Decodes `{"increments": [{"key": ..., "value": ...}, ...]}`, all or nothing.
    public static func decodeBatch(
        from bytes: UnsafeRawBufferPointer,
        maximumItems: Int = defaultMaximumBatchItems
    ) throws(IncrementInputError) -> [Increment] {
        var reader = JSONReader(bytes)
        let items = try reader.readDocument { (reader: inout JSONReader) throws(IncrementInputError) in
            try reader.readBatch(maximumItems: maximumItems)
        }
        var increments: [Increment] = []
        increments.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard let fields = item else {
                throw .invalidJSON("increments[\(index)] must be an object with key and value")
            }
            do {
                increments.append(try fields.increment())
            } catch {
                throw error.located(at: "increments[\(index)]")
            }
        }
        return increments
    }

    /// Decodes a single increment from bytes held in an array (tests, tools).
    public static func decodeIncrement(from bytes: [UInt8]) throws(IncrementInputError) -> Increment {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(IncrementInputError) in try decodeIncrement(from: buffer) }
        }.get()
    }

    /// Decodes a batch from bytes held in an array (tests, tools).
    public static func decodeBatch(
        from bytes: [UInt8],
        maximumItems: Int = defaultMaximumBatchItems
    ) throws(IncrementInputError) -> [Increment] {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(IncrementInputError) in try decodeBatch(from: buffer, maximumItems: maximumItems) }
        }.get()
    }
}

/// The JSON kind of a field's value, kept so that the contract's rules can be applied after parsing.
enum JSONScalar {
    case string(String?)  // nil: not valid UTF-8 (or a lone surrogate escape)
    case integer(Int64?)  // nil: an integer outside Int64
    case fractionalNumber
    case boolean
    case null
    case object
    case array

    var kindDescription: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .fractionalNumber: "a number with a fraction or exponent"
        case .boolean: "a boolean"
        case .null: "null"
        case .object: "an object"
        case .array: "an array"
        }
    }
}

/// The `key` and `value` fields of one increment object, as read.
struct IncrementFields {
    var key: JSONScalar?
    var value: JSONScalar?

    func increment() throws(IncrementInputError) -> Increment {
        guard let key else { throw .missingField("key is required") }
        guard let value else { throw .missingField("value is required") }
        let validKey: CounterKey
        switch key {
        case .string(.some(let string)):
            validKey = try CounterKey(validating: string)
        case .string(.none):
            throw .invalidKey("key must be valid UTF-8")
        default:
            throw .invalidKey("key must be a JSON string, got \(key.kindDescription)")
        }
        switch value {
        case .integer(.some(let delta)):
            return Increment(key: validKey, delta: delta)
        case .integer(.none):
            throw .valueOutOfRange("value must be within \(Int64.min)...\(Int64.max)")
        default:
            throw .invalidValue("value must be a JSON integer, got \(value.kindDescription)")
        }
    }
}
