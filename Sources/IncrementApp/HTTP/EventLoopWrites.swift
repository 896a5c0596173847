import CoreMetrics
import HTTPTypes
import Hummingbird
import IncrementCore
import NIOCore

/// The plain `POST /increment` (no query, no `Idempotency-Key`), answered on the event loop that
/// read it instead of in the router's async handler: the decisions ``EventLoopWriteHandler``
/// asks for, each taken from the code the router's path runs, so that both answer alike to the
/// byte (``RequireScope``, ``IncrementBodyDecoder``, ``IncrementIntake``, ``APIError``,
/// ``ConnectionMiddleware``, ``RequestMetricsCache``).
///
/// What this path does not take goes to the router untouched, before anything is admitted or
/// counted for it: another route or query, a missing or insufficient token, a body that is not
/// one valid increment or is too large, `Expect` or `Connection: close`, a node shutting down.
struct EventLoopWrites: Sendable {
    /// What the path does with a request it took, once its body has arrived.
    enum Answer {
        /// Buffered: `202`.
        case accepted
        /// Not buffered, for this reason (the node is overloaded, say).
        case refused(APIError)
    }

    let intake: IncrementIntake
    let health: NodeHealth
    let activity: NodeActivity
    let tokens: AccessTokens
    let maximumBodyBytes: Int
    /// The `Server` header, as the application sends it.
    let serverName: String
    let requestMetrics: RequestMetricsCache
    let answered: Counter
    /// The metrics of the most frequent answer, looked up once.
    private let acceptedMetrics: RequestMetricsCache.EndpointMetrics

    static let route = "/increment"

    init(
        intake: IncrementIntake,
        health: NodeHealth,
        activity: NodeActivity,
        tokens: AccessTokens,
        maximumBodyBytes: Int,
        serverName: String,
        requestMetrics: RequestMetricsCache,
        answered: Counter
    ) {
        self.intake = intake
        self.health = health
        self.activity = activity
        self.tokens = tokens
        self.maximumBodyBytes = maximumBodyBytes
        self.serverName = serverName
        self.requestMetrics = requestMetrics
        self.answered = answered
        self.acceptedMetrics = requestMetrics.endpoint(.init(route: Self.route, method: .post, status: 202))
    }

    /// Whether this path answers the request `head` starts (its body still to come).
    func takes(_ head: HTTPRequest) -> Bool {
        guard head.method == .post, head.path == Self.route else { return false }
        let fields = head.headerFields
        // Hummingbird closes the connection after a request saying `close`; the router keeps that.
        guard fields[.idempotencyKey] == nil, fields[.expect] == nil, fields[.connection] != "close",
            !self.health.isShuttingDown
        else { return false }
        guard self.tokens.isEnabled else { return true }
        return self.tokens.refusal(authorization: fields[.authorization], scope: .write) == nil
    }

    /// Buffers the increment `body` holds; nil when it holds none (the router answers why).
    func answer(body: ByteBuffer?) -> Answer? {
        let decoded = (body ?? ByteBuffer()).withUnsafeReadableBytes { bytes in
            Result { () throws(IncrementInputError) in try IncrementBodyDecoder.decodeIncrement(from: bytes) }
        }
        guard case .success(let increment) = decoded else { return nil }
        do throws(AdmissionError) {
            try self.intake.accept(increment)
            return .accepted
        } catch {
            return .refused(APIError(error))
        }
    }

    /// The response to `request`, with the headers the router's path adds, in its order, and
    /// the request counted and timed as ``RequestMetricsMiddleware`` counts it.
    func response(
        _ answer: Answer,
        to request: HTTPRequest,
        date: String,
        started: ContinuousClock.Instant
    ) -> (head: HTTPResponse, body: ByteBuffer?) {
        var response: Response
        let body: ByteBuffer?
        let metrics: RequestMetricsCache.EndpointMetrics
        switch answer {
        case .accepted:
            response = Response(status: .accepted)
            body = nil
            metrics = self.acceptedMetrics
        case .refused(let error):
            let errorBody = error.jsonBody
            response = error.response(body: errorBody)
            body = errorBody
            metrics = self.requestMetrics.endpoint(.init(route: Self.route, method: .post, status: error.status.code))
        }
        self.activity.recordRequest()
        if let connection = ConnectionHeader.value(answering: request.headerFields, shuttingDown: self.health.isShuttingDown) {
            response.headers[.connection] = connection
        }
        response.headers[.date] = date
        response.headers[.server] = self.serverName
        metrics.requests.increment()
        metrics.duration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        self.answered.increment()
        return (response.head, body)
    }
}
