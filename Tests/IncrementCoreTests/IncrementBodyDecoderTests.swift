import IncrementCore
import Testing

struct IncrementBodyDecoderTests {
    private func decode(_ body: String) throws(IncrementInputError) -> Increment {
        try IncrementBodyDecoder.decodeIncrement(from: Array(body.utf8))
    }

    private func errorCode(_ body: String) -> String? {
        do {
            _ = try self.decode(body)
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    @Test func decodesAValidIncrement() throws {
        let increment = try self.decode(#" { "value" : -7 , "key" : "page/home" , "extra": [1, {"a": null}] } "#)
        #expect(increment == (try Increment(key: "page/home", delta: -7)))
    }

    @Test func decodesEscapesAndTheInt64Bounds() throws {
        #expect(try self.decode(#"{"key":"a\"b\u00e9\ud83d\ude00","value":1}"#).key == "a\"bé😀")
        #expect(try self.decode(#"{"key":"k","value":9223372036854775807}"#).delta == .max)
        #expect(try self.decode(#"{"key":"k","value":-9223372036854775808}"#).delta == .min)
        #expect(try self.decode(#"{"key":"k","value":-0}"#).delta == 0)
    }

    @Test(arguments: [
        ("", "invalid_json"),
        ("{", "invalid_json"),
        ("{\"key\":\"a\",\"value\":1", "invalid_json"),
        ("{\"key\":\"a\",\"value\":1}}", "invalid_json"),
        ("{\"key\":\"a\" \"value\":1}", "invalid_json"),
        ("{\"key\":\"a\",\"value\":01}", "invalid_json"),
        ("{\"key\":\"a\",\"value\":1,}", "invalid_json"),
        ("{'key':'a','value':1}", "invalid_json"),
        ("[1]", "invalid_json"),
        ("key=a&value=1", "invalid_json"),
        ("{\"key\":\"a\",\"key\":\"b\",\"value\":1}", "invalid_json"),
        ("{\"value\":1}", "missing_field"),
        ("{\"key\":\"a\"}", "missing_field"),
        ("{}", "missing_field"),
        ("{\"key\":1,\"value\":1}", "invalid_key"),
        ("{\"key\":null,\"value\":1}", "invalid_key"),
        ("{\"key\":\"\",\"value\":1}", "invalid_key"),
        ("{\"key\":\"a\\u0000b\",\"value\":1}", "invalid_key"),
        ("{\"key\":\"\\ud800\",\"value\":1}", "invalid_key"),
        ("{\"key\":\"a\",\"value\":1.5}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":1.0}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":1e3}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":\"2\"}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":true}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":null}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":[1]}", "invalid_value"),
        ("{\"key\":\"a\",\"value\":9223372036854775808}", "value_out_of_range"),
        ("{\"key\":\"a\",\"value\":-9223372036854775809}", "value_out_of_range"),
        ("{\"key\":\"a\",\"value\":123456789012345678901234567890}", "value_out_of_range"),
    ])
    func refusesBadBodies(body: String, code: String) {
        #expect(self.errorCode(body) == code, "body: \(body)")
    }

    @Test func refusesKeysByLength() {
        let longest = String(repeating: "k", count: 256)
        #expect(self.errorCode(#"{"key":"\#(longest)","value":1}"#) == nil)
        #expect(self.errorCode(#"{"key":"\#(longest)x","value":1}"#) == "invalid_key")
        // 128 two-byte characters are 256 bytes; one more is too many bytes though few characters.
        let twoByte = String(repeating: "é", count: 128)
        #expect(self.errorCode(#"{"key":"\#(twoByte)","value":1}"#) == nil)
        #expect(self.errorCode(#"{"key":"\#(twoByte)é","value":1}"#) == "invalid_key")
    }

    @Test func refusesInvalidUTF8InTheKey() {
        var body = Array(#"{"key":"ab","value":1}"#.utf8)
        body[8] = 0xFF
        #expect(throws: IncrementInputError.invalidKey("key must be valid UTF-8")) {
            try IncrementBodyDecoder.decodeIncrement(from: body)
        }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(self.errorCode(#"{"key":"a","value":1,"x":\#(deep)}"#) == "invalid_json")
    }

    @Test func decodesABatch() throws {
        let increments = try IncrementBodyDecoder.decodeBatch(
            from: Array(#"{"increments":[{"key":"a","value":1},{"key":"b","value":-2},{"key":"a","value":3}]}"#.utf8)
        )
        #expect(increments.map(\.key) == ["a", "b", "a"])
        #expect(increments.map(\.delta) == [1, -2, 3])
    }

    @Test func refusesABatchWithOneBadItemNamingIt() {
        #expect(throws: IncrementInputError.invalidValue("increments[1]: value must be a JSON integer, got a string")) {
            try IncrementBodyDecoder.decodeBatch(
                from: Array(#"{"increments":[{"key":"a","value":1},{"key":"b","value":"2"}]}"#.utf8)
            )
        }
        #expect(throws: IncrementInputError.missingField("increments is required")) {
            try IncrementBodyDecoder.decodeBatch(from: Array(#"{"items":[]}"#.utf8))
        }
        #expect(throws: IncrementInputError.self) {
            try IncrementBodyDecoder.decodeBatch(from: Array(#"{"increments":[1]}"#.utf8))
        }
    }

    @Test func refusesABatchOverTheItemLimit() {
        let items = Array(repeating: #"{"key":"a","value":1}"#, count: 4).joined(separator: ",")
        #expect(throws: IncrementInputError.tooManyItems("a batch holds at most 3 increments")) {
            try IncrementBodyDecoder.decodeBatch(from: Array(#"{"increments":[\#(items)]}"#.utf8), maximumItems: 3)
        }
    }
}
