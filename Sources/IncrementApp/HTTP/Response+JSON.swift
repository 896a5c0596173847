import Foundation
import Hummingbird

extension Response {
    /// A JSON response of `value`.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Self.json(bytes: Self.jsonBytes(value), status: status)
    }

    /// A JSON response whose body is `bytes`.
    static func json(bytes: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: bytes))
    }

    /// `value` as the contract's JSON: keys sorted, slashes not escaped.
    static func jsonBytes(_ value: some Encodable) -> ByteBuffer {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return ByteBuffer(bytes: try encoder.encode(value))
        } catch {
            // Only our own small structs are encoded here; they cannot fail.
            return ByteBuffer(string: #"{"error":"internal","message":"response encoding failed"}"#)
        }
    }
}
