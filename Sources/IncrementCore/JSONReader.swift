/// A strict RFC 8259 reader over a borrowed byte buffer, reading just what increment bodies need.
///
/// It never outlives the buffer it reads: it is created inside `withUnsafeBytes`-style scopes only.
struct JSONReader {
    private let bytes: UnsafeRawBufferPointer
    private var index: Int = 0

    /// How deeply ignored values may nest before the body is refused, bounding recursion.
    static let maximumDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: Documents

    /// Reads one whole document with `body`, then insists nothing but white space follows.
    mutating func readDocument<Result>(
        _ body: (inout JSONReader) throws(IncrementInputError) -> Result
    ) throws(IncrementInputError) -> Result {
        self.skipWhitespace()
        if self.index == self.bytes.count {
            throw .invalidJSON("body is empty; expected a JSON object")
        }
        let result = try body(&self)
        self.skipWhitespace()
        if self.index != self.bytes.count {
            throw self.syntaxError("unexpected data after the JSON value")
        }
        return result
    }

    /// Reads an object, keeping its `key` and `value` fields and skipping any other.
    mutating func readIncrementFields() throws(IncrementInputError) -> IncrementFields {
        var fields = IncrementFields()
        try self.readObject { (reader: inout JSONReader, name: String?) throws(IncrementInputError) in
            switch name {
            case "key"?:
                if fields.key != nil { throw .invalidJSON("duplicate field \"key\"") }
                fields.key = try reader.readScalar(depth: 1)
            case "value"?:
                if fields.value != nil { throw .invalidJSON("duplicate field \"value\"") }
                fields.value = try reader.readScalar(depth: 1)
            default:
                _ = try reader.readScalar(depth: 1)
            }
        }
        return fields
    }

    /// Reads `{"increments": [...]}`; an item that is not an object is `nil`.
    mutating func readBatch(maximumItems: Int) throws(IncrementInputError) -> [IncrementFields?] {
        var items: [IncrementFields?]?
        try self.readObject { (reader: inout JSONReader, name: String?) throws(IncrementInputError) in
            guard name == "increments" else {
                _ = try reader.readScalar(depth: 1)
                return
            }
            if items != nil { throw .invalidJSON("duplicate field \"increments\"") }
            reader.skipWhitespace()
            guard reader.peek() == UInt8(ascii: "[") else {
                let kind = try reader.readScalar(depth: 1)
                throw .invalidJSON("increments must be an array, got \(kind.kindDescription)")
            }
            var list: [IncrementFields?] = []
            try reader.readArray { (reader: inout JSONReader) throws(IncrementInputError) in
                if list.count == maximumItems {
                    throw .tooManyItems("a batch holds at most \(maximumItems) increments")
                }
                reader.skipWhitespace()
                if reader.peek() == UInt8(ascii: "{") {
                    list.append(try reader.readIncrementFields())
                } else {
                    _ = try reader.readScalar(depth: 2)
                    list.append(nil)
                }
            }
            items = list
        }
        guard let items else { throw .missingField("increments is required") }
        return items
    }

    // MARK: Values

    /// Reads any value, returning its kind; objects and arrays are checked and skipped.
    mutating func readScalar(depth: Int) throws(IncrementInputError) -> JSONScalar {
        if depth > Self.maximumDepth {
            throw .invalidJSON("JSON nested more than \(Self.maximumDepth) levels deep")
        }
        self.skipWhitespace()
        guard let byte = self.peek() else { throw self.syntaxError("unexpected end of body") }
        switch byte {
        case UInt8(ascii: "\""):
            return .string(try self.readString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try self.readNumber()
        case UInt8(ascii: "t"):
            try self.readLiteral("true")
            return .boolean
        case UInt8(ascii: "f"):
            try self.readLiteral("false")
            return .boolean
        case UInt8(ascii: "n"):
            try self.readLiteral("null")
            return .null
        case UInt8(ascii: "{"):
            try self.readObject { (reader: inout JSONReader, _: String?) throws(IncrementInputError) in
                _ = try reader.readScalar(depth: depth + 1)
            }
            return .object
        case UInt8(ascii: "["):
            try self.readArray { (reader: inout JSONReader) throws(IncrementInputError) in
                _ = try reader.readScalar(depth: depth + 1)
            }
            return .array
        default:
            throw self.syntaxError("unexpected character")
        }
    }

    /// Reads an object, calling `field` with each member's name (nil if not valid UTF-8) positioned at its value.
    private mutating func readObject(
        _ field: (inout JSONReader, String?) throws(IncrementInputError) -> Void
    ) throws(IncrementInputError) {
        self.skipWhitespace()
        guard self.peek() == UInt8(ascii: "{") else { throw self.syntaxError("expected a JSON object") }
        self.index += 1
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "}") {
            self.index += 1
            return
        }
        while true {
            self.skipWhitespace()
            guard self.peek() == UInt8(ascii: "\"") else { throw self.syntaxError("expected a field name") }
            let name = try self.readString()
            self.skipWhitespace()
            try self.expect(UInt8(ascii: ":"), "expected ':' after a field name")
            try field(&self, name)
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return
            default:
                throw self.syntaxError("expected ',' or '}' in an object")
            }
        }
    }

    /// Reads an array, calling `element` positioned at each element.
    private mutating func readArray(
        _ element: (inout JSONReader) throws(IncrementInputError) -> Void
    ) throws(IncrementInputError) {
        try self.expect(UInt8(ascii: "["), "expected a JSON array")
        self.skipWhitespace()
        if self.peek() == UInt8(ascii: "]") {
            self.index += 1
            return
        }
        while true {
            try element(&self)
            self.skipWhitespace()
            switch self.peek() {
            case UInt8(ascii: ","):
                self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return
            default:
                throw self.syntaxError("expected ',' or ']' in an array")
            }
        }
    }

    /// Reads a number: an integer within Int64 keeps its value; fractions and exponents keep only their kind.
    private mutating func readNumber() throws(IncrementInputError) -> JSONScalar {
        let negative = self.peek() == UInt8(ascii: "-")
        if negative { self.index += 1 }
        guard let first = self.peek(), Self.isDigit(first) else {
            throw self.syntaxError("expected a digit")
        }
        // Accumulate negatively so that Int64.min is reachable.
        var magnitude: Int64 = 0
        var overflowed = false
        if first == UInt8(ascii: "0") {
            self.index += 1
            if let next = self.peek(), Self.isDigit(next) {
                throw self.syntaxError("numbers must not have leading zeros")
            }
        } else {
            while let digit = self.peek(), Self.isDigit(digit) {
                self.index += 1
                let (shifted, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = shifted.subtractingReportingOverflow(Int64(digit &- UInt8(ascii: "0")))
                overflowed = overflowed || overflow1 || overflow2
                magnitude = next
            }
        }
        var fractional = false
        if self.peek() == UInt8(ascii: ".") {
            self.index += 1
            try self.readDigits()
            fractional = true
        }
        if let byte = self.peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            self.index += 1
            if let sign = self.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                self.index += 1
            }
            try self.readDigits()
            fractional = true
        }
        if fractional { return .fractionalNumber }
        if overflowed { return .integer(nil) }
        if negative { return .integer(magnitude) }
        let (positive, overflow) = Int64(0).subtractingReportingOverflow(magnitude)
        return .integer(overflow ? nil : positive)
    }

    private mutating func readDigits() throws(IncrementInputError) {
        guard let first = self.peek(), Self.isDigit(first) else { throw self.syntaxError("expected a digit") }
        while let digit = self.peek(), Self.isDigit(digit) { self.index += 1 }
    }

    /// Reads a string; returns nil when its content is not valid UTF-8 (the JSON is still well-formed).
    private mutating func readString() throws(IncrementInputError) -> String? {
        try self.expect(UInt8(ascii: "\""), "expected a string")
        let start = self.index
        var isASCII = true
        // Fast path: no escapes, so the string is the bytes between the quotes.
        while let byte = self.peek() {
            if byte == UInt8(ascii: "\"") {
                let content = UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index])
                self.index += 1
                // ASCII is valid UTF-8 as it stands, and needs none of the generic validation.
                return isASCII ? String(decoding: content, as: UTF8.self) : String(validating: content, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.syntaxError("control character in a string") }
            if byte >= 0x80 { isASCII = false }
            self.index += 1
        }
        var decoded = Array(self.bytes[start..<self.index])
        var valid = true
        while true {
            guard let byte = self.peek() else { throw self.syntaxError("unterminated string") }
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return valid ? String(validating: decoded, as: UTF8.self) : nil
            case UInt8(ascii: "\\"):
                guard let escape = self.peek() else { throw self.syntaxError("unterminated escape") }
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    if let scalar = try self.readUnicodeEscape() {
                        decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
                    } else {
                        valid = false
                    }
                default:
                    throw self.syntaxError("invalid escape sequence")
                }
            default:
                if byte < 0x20 { throw self.syntaxError("control character in a string") }
                decoded.append(byte)
            }
        }
    }

    /// Reads the XXXX of `\uXXXX` (and a following low surrogate); nil for a lone surrogate.
    private mutating func readUnicodeEscape() throws(IncrementInputError) -> Unicode.Scalar? {
        let high = try self.readHex4()
        guard (0xD800...0xDBFF).contains(high) else {
            return Unicode.Scalar(high)  // nil for a lone low surrogate
        }
        guard self.remaining(startsWith: "\\u") else { return nil }
        self.index += 2
        let low = try self.readHex4()
        guard (0xDC00...0xDFFF).contains(low) else { return nil }
        return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    private mutating func readHex4() throws(IncrementInputError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = self.peek() else { throw self.syntaxError("unterminated \\u escape") }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: throw self.syntaxError("invalid \\u escape")
            }
            value = value << 4 | UInt32(nibble)
            self.index += 1
        }
        return value
    }

    private mutating func readLiteral(_ literal: StaticString) throws(IncrementInputError) {
        let length = literal.utf8CodeUnitCount
        guard self.index + length <= self.bytes.count else { throw self.syntaxError("unexpected end of body") }
        for offset in 0..<length where self.bytes[self.index + offset] != literal.utf8Start[offset] {
            throw self.syntaxError("unexpected character")
        }
        self.index += length
    }

    // MARK: Bytes

    private func peek() -> UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    private func remaining(startsWith prefix: StaticString) -> Bool {
        let length = prefix.utf8CodeUnitCount
        guard self.index + length <= self.bytes.count else { return false }
        for offset in 0..<length where self.bytes[self.index + offset] != prefix.utf8Start[offset] {
            return false
        }
        return true
    }

    private mutating func expect(_ byte: UInt8, _ message: String) throws(IncrementInputError) {
        guard self.peek() == byte else { throw self.syntaxError(message) }
        self.index += 1
    }

    private mutating func skipWhitespace() {
        while let byte = self.peek(),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\t")
        {
            self.index += 1
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func syntaxError(_ message: String) -> IncrementInputError {
        if self.index >= self.bytes.count {
            return .invalidJSON("malformed JSON: \(message) at end of body")
        }
        return .invalidJSON("malformed JSON: \(message) at byte \(self.index)")
    }
}
