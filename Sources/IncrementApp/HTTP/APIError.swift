import Hummingbird
import IncrementCore

/// An error answered as `{"error": code, "message": text}` with a fitting status.
public struct APIError: Error, Sendable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// The machine-readable code, e.g. `invalid_key`.
    public let code: String
    /// A sentence for a person.
    public let message: String
    /// Extra response headers, e.g. `Retry-After`.
    public var headers: HTTPFields = [:]

    /// Creates an API error.
    public init(status: HTTPResponse.Status, code: String, message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The response carrying this error.
    public func response() -> Response {
        var response = Response.json(ErrorBody(error: self.code, message: self.message), status: self.status)
        response.headers.append(contentsOf: self.headers)
        return response
    }

    struct ErrorBody: Encodable {
        let error: String
        let message: String
    }
}

extension APIError {
    /// The contract's answer to a refused body.
    init(_ error: IncrementInputError) {
        let status: HTTPResponse.Status =
            switch error {
            case .valueOutOfRange: .unprocessableContent
            default: .badRequest
            }
        self.init(status: status, code: error.code, message: error.message)
    }

    /// The contract's answer to an increment the buffer refused.
    init(_ error: AdmissionError) {
        switch error {
        case .overloaded:
            self = .overloaded
        case .pendingTotalOutOfRange(let key):
            self.init(
                status: .unprocessableContent,
                code: "value_out_of_range",
                message: "the pending total for key \"\(key.string)\" would leave \(Int64.min)...\(Int64.max); nothing was applied"
            )
        }
    }

    /// The buffer is full: back off and retry.
    static let overloaded = APIError(
        status: .serviceUnavailable,
        code: "overloaded",
        message: "the node is buffering its maximum number of keys; retry after a flush",
        headers: [.retryAfter: "1"]
    )

    /// The database did not answer in time: retry later.
    static let databaseUnavailable = APIError(
        status: .serviceUnavailable,
        code: "database_unavailable",
        message: "the database did not answer; retry later",
        headers: [.retryAfter: "1"]
    )

    /// The body exceeds the configured limit.
    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, code: "body_too_large", message: "request body exceeds \(limit) bytes")
    }
}
