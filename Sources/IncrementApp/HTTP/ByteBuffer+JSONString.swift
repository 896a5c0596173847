import NIOCore

extension ByteBuffer {
    /// Writes `string` as a JSON string literal, escaped as `JSONEncoder` with
    /// `.withoutEscapingSlashes` escapes it: `"` and `\`, the short forms `\b \f \n \r \t`, other
    /// control characters as `\u00XX`; everything else as its UTF-8 bytes.
    mutating func writeJSONString(_ string: String) {
        self.writeInteger(UInt8(ascii: "\""))
        let plain = string.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        }
        if plain == true {
            self.writeString(string)
        } else {
            for byte in string.utf8 {
                switch byte {
                case UInt8(ascii: "\""): self.writeStaticString(#"\""#)
                case UInt8(ascii: "\\"): self.writeStaticString(#"\\"#)
                case 0x08: self.writeStaticString(#"\b"#)
                case 0x0C: self.writeStaticString(#"\f"#)
                case UInt8(ascii: "\n"): self.writeStaticString(#"\n"#)
                case UInt8(ascii: "\r"): self.writeStaticString(#"\r"#)
                case UInt8(ascii: "\t"): self.writeStaticString(#"\t"#)
                case ..<0x20:
                    let hex: StaticString = "0123456789abcdef"
                    self.writeStaticString(#"\u00"#)
                    self.writeInteger(hex.utf8Start[Int(byte >> 4)])
                    self.writeInteger(hex.utf8Start[Int(byte & 0x0F)])
                default: self.writeInteger(byte)
                }
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }
}
