import Foundation
import Hummingbird

extension Response {
    /// A JSON response of `value`.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let body: ByteBuffer
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            body = ByteBuffer(bytes: try encoder.encode(value))
        } catch {
            // Only our own small structs are encoded here; they cannot fail.
            body = ByteBuffer(string: #"{"error":"internal","message":"response encoding failed"}"#)
        }
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: body)
        )
    }
}
