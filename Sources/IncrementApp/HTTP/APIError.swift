import HTTPTypes
import Hummingbird
import IncrementCore

/// An error answered as `{"error": code, "message": text}` with the code's status.
public struct APIError: HTTPResponseError, Sendable {
    /// The machine-readable code, from the catalogue.
    public let code: ErrorCode
    /// A sentence for a person.
    public let message: String
    /// The HTTP status: the code's own, unless a framework error brought another one.
    public let status: HTTPResponse.Status
    /// Extra response headers, e.g. `Retry-After`.
    public var headers: HTTPFields

    /// Creates an API error answered with `code`'s status (or `status`, when given).
    public init(_ code: ErrorCode, _ message: String, status: HTTPResponse.Status? = nil, headers: HTTPFields = [:]) {
        self.code = code
        self.message = message
        self.status = status ?? code.status
        self.headers = headers
    }

    /// The response carrying this error.
    public func response() -> Response {
        self.response(body: self.jsonBody)
    }

    /// The response carrying this error, whose body `jsonBody` gave.
    func response(body: ByteBuffer) -> Response {
        var response = Response.json(bytes: body, status: self.status)
        response.headers.append(contentsOf: self.headers)
        return response
    }

    /// `{"error": code, "message": text}`.
    var jsonBody: ByteBuffer {
        Response.jsonBytes(ErrorBody(error: self.code.rawValue, message: self.message))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        self.response()
    }

    struct ErrorBody: Encodable {
        let error: String
        let message: String
    }
}

extension ErrorCode {
    /// The HTTP status each code is answered with.
    public var status: HTTPResponse.Status {
        switch self {
        case .invalidJSON, .missingField, .invalidKey, .invalidValue, .tooManyItems, .invalidParameter, .badRequest,
            .invalidIdempotencyKey:
            .badRequest
        case .valueOutOfRange, .idempotencyKeyReused: .unprocessableContent
        case .idempotencyKeyInFlight: .conflict
        case .bodyTooLarge: .contentTooLarge
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .overloaded, .notReady, .databaseUnavailable, .notCommitted, .barrierTimeout: .serviceUnavailable
        case .outcomeUnknown, .internal: .internalServerError
        }
    }
}

extension APIError {
    /// The contract's answer to a refused body.
    init(_ error: IncrementInputError) {
        self.init(error.code, error.message)
    }

    /// The contract's answer to an increment the buffer refused.
    init(_ error: AdmissionError) {
        switch error {
        case .overloaded:
            self = .overloaded
        case .pendingTotalOutOfRange(let key):
            self.init(
                .valueOutOfRange,
                "the pending total for key \"\(key.string)\" would leave \(Int64.min)...\(Int64.max); nothing was applied"
            )
        }
    }

    /// The buffer is full: back off and retry.
    static let overloaded = APIError(
        .overloaded,
        "the node is buffering its maximum number of keys; retry after a flush",
        headers: [.retryAfter: "1"]
    )

    /// The database did not answer in time: retry later.
    static let databaseUnavailable = APIError(
        .databaseUnavailable,
        "the database did not answer; retry later",
        headers: [.retryAfter: "1"]
    )

    /// Live nodes that did not confirm a flush barrier in time.
    static func barrierTimeout(_ error: FlushBarrier.NotConfirmed, timeout: Duration) -> APIError {
        APIError(
            .barrierTimeout,
            "nodes \(error.nodes.joined(separator: ", ")) did not confirm flush barrier \(error.barrier) within \(timeout); a read now could miss their increments",
            headers: [.retryAfter: "1"]
        )
    }

    /// An idempotency key sent before with another request.
    static func idempotencyKeyReused(_ key: IdempotencyKey) -> APIError {
        APIError(
            .idempotencyKeyReused,
            "Idempotency-Key \"\(key.value)\" was used for a different request; nothing was applied"
        )
    }

    /// An idempotency key whose first request is still being processed.
    static func idempotencyKeyInFlight(_ key: IdempotencyKey) -> APIError {
        APIError(
            .idempotencyKeyInFlight,
            "a request with Idempotency-Key \"\(key.value)\" is still being processed; retry after it is answered",
            headers: [.retryAfter: "1"]
        )
    }

    /// The body exceeds the configured limit.
    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(.bodyTooLarge, "request body exceeds \(limit) bytes")
    }
}

extension HTTPField.Name {
    /// `Idempotency-Key` (IETF httpapi draft): makes a retried request apply once.
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!  // A valid token: cannot fail.
    /// `Idempotent-Replayed: true` marks the answer of an earlier copy of the request.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!  // A valid token: cannot fail.
}
