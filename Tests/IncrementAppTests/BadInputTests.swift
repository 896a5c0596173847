import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Testing

struct BadInputTests {
    /// Every refused request, its status and error code.
    static let refusals: [(method: HTTPRequest.Method, uri: String, body: String?, status: HTTPResponse.Status, code: String)] = [
        (.post, "/increment", "{not json", .badRequest, "invalid_json"),
        (.post, "/increment", "", .badRequest, "invalid_json"),
        (.post, "/increment", "key=a&value=1", .badRequest, "invalid_json"),
        (.post, "/increment", #"{"value":1}"#, .badRequest, "missing_field"),
        (.post, "/increment", #"{"key":"a"}"#, .badRequest, "missing_field"),
        (.post, "/increment", #"{"key":7,"value":1}"#, .badRequest, "invalid_key"),
        (.post, "/increment", #"{"key":"","value":1}"#, .badRequest, "invalid_key"),
        (.post, "/increment", #"{"key":"\#(String(repeating: "x", count: 257))","value":1}"#, .badRequest, "invalid_key"),
        (.post, "/increment", #"{"key":"a\u0000b","value":1}"#, .badRequest, "invalid_key"),
        (.post, "/increment", #"{"key":"a","value":1.5}"#, .badRequest, "invalid_value"),
        (.post, "/increment", #"{"key":"a","value":"2"}"#, .badRequest, "invalid_value"),
        (.post, "/increment", #"{"key":"a","value":1e3}"#, .badRequest, "invalid_value"),
        (.post, "/increment", #"{"key":"a","value":true}"#, .badRequest, "invalid_value"),
        (.post, "/increment", #"{"key":"a","value":9223372036854775808}"#, .unprocessableContent, "value_out_of_range"),
        (.post, "/increment?wait=soon", #"{"key":"a","value":1}"#, .badRequest, "invalid_parameter"),
        (.post, "/increments", #"{"increments":[{"key":"a","value":1},{"key":"b","value":1.5}]}"#, .badRequest, "invalid_value"),
        (.post, "/increments", #"{"increments":[{"key":"a","value":1},"b"]}"#, .badRequest, "invalid_json"),
        (.post, "/increments", #"{"increments":{"key":"a","value":1}}"#, .badRequest, "invalid_json"),
        (.post, "/increments", #"{"key":"a","value":1}"#, .badRequest, "missing_field"),
        (.post, "/increment", #"{"key":"a","value":1,"pad":"\#(String(repeating: "p", count: 5_000))"}"#, .contentTooLarge, "body_too_large"),
        (.get, "/counters/%FF", nil, .badRequest, "invalid_key"),
        (.get, "/nowhere", nil, .notFound, "not_found"),
        (.get, "/increment", nil, .methodNotAllowed, "method_not_allowed"),
        (.put, "/counters/a", nil, .methodNotAllowed, "method_not_allowed"),
        (.put, "/increments", nil, .methodNotAllowed, "method_not_allowed"),
    ]

    @Test func refusedRequestsGetJSONErrorsAndChangeNothing() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { $0.maximumBodyBytes = 4_096 }
        try await withReadyNode(settings) { client in
            for refusal in Self.refusals {
                let response = try await client.execute(
                    uri: refusal.uri,
                    method: refusal.method,
                    body: refusal.body.map { ByteBuffer(string: $0) }
                )
                #expect(response.status == refusal.status, "\(refusal.method) \(refusal.uri) \(refusal.body ?? "")")
                #expect(response.errorCode == refusal.code, "\(refusal.method) \(refusal.uri): \(response.text)")
                #expect(response.headers[.contentType] == "application/json")
            }
            // Invalid UTF-8 in the key.
            var bytes = Array(#"{"key":"ab","value":1}"#.utf8)
            bytes[8] = 0xC3
            let invalidUTF8 = try await client.execute(uri: "/increment", method: .post, body: ByteBuffer(bytes: bytes))
            #expect(invalidUTF8.status == .badRequest)
            #expect(invalidUTF8.errorCode == "invalid_key")

            // A pending total that would leave Int64 is refused; the pending value stays.
            #expect(try await client.post("/increment", #"{"key":"edge","value":9223372036854775807}"#).status == .accepted)
            let overflow = try await client.post("/increment", #"{"key":"edge","value":1}"#)
            #expect(overflow.status == .unprocessableContent)
            #expect(overflow.errorCode == "value_out_of_range")
            let overflowBatch = try await client.post(
                "/increments", #"{"increments":[{"key":"other","value":1},{"key":"edge","value":1}]}"#)
            #expect(overflowBatch.status == .unprocessableContent)
        }
        // Only the one accepted increment reached the database.
        #expect(try await counters(in: database) == ["edge": .max])
    }
}
