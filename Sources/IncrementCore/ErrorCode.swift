/// The catalogue of the API's machine-readable error codes: the `error` field of every error body.
///
/// One home for each code. The HTTP layer gives each its status, and the OpenAPI description
/// lists the same set (a test keeps the two equal).
public enum ErrorCode: String, CaseIterable, Sendable {
    /// The body is not well-formed JSON, or not of the expected shape.
    case invalidJSON = "invalid_json"
    /// A required field is absent.
    case missingField = "missing_field"
    /// A key is not a string of 1 to 256 bytes of UTF-8 without NUL.
    case invalidKey = "invalid_key"
    /// A value is not a JSON integer.
    case invalidValue = "invalid_value"
    /// A value, a pending total or a committed total would leave Int64.
    case valueOutOfRange = "value_out_of_range"
    /// A batch holds more items than allowed.
    case tooManyItems = "too_many_items"
    /// A query parameter has a value the route does not know.
    case invalidParameter = "invalid_parameter"
    /// The `Idempotency-Key` header is not a valid key.
    case invalidIdempotencyKey = "invalid_idempotency_key"
    /// The idempotency key was used before with a different request.
    case idempotencyKeyReused = "idempotency_key_reused"
    /// A request with this idempotency key is still being processed.
    case idempotencyKeyInFlight = "idempotency_key_in_flight"
    /// Any other malformed request.
    case badRequest = "bad_request"
    /// The body is larger than the node accepts.
    case bodyTooLarge = "body_too_large"
    /// The route needs a bearer token and none (or no valid one) came.
    case unauthorized
    /// The bearer token lacks the route's scope.
    case forbidden
    /// No such route, or no such counter.
    case notFound = "not_found"
    /// The path exists but not with this method.
    case methodNotAllowed = "method_not_allowed"
    /// The buffer holds its maximum number of keys: retry after a flush.
    case overloaded
    /// The node is starting, draining or cannot reach its database.
    case notReady = "not_ready"
    /// A read could not reach the database.
    case databaseUnavailable = "database_unavailable"
    /// Some live nodes did not confirm a flush barrier in time: a strong read would not be fresh.
    case barrierTimeout = "barrier_timeout"
    /// A `wait=commit` increment was certainly not applied: safe to retry.
    case notCommitted = "not_committed"
    /// A `wait=commit` increment may or may not have been applied: read before retrying.
    case outcomeUnknown = "outcome_unknown"
    /// A fault of the node itself.
    case `internal`
}
