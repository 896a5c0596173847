import CoreMetrics
import HTTPTypes
import Hummingbird
import IncrementCore
import Logging
import NIOCore

/// The two most frequent requests, answered on the event loop that read them instead of in the
/// router's async handlers: the plain `POST /increment` (no query, no `Idempotency-Key`) and
/// `GET /counters/{key}` (no query). These are the decisions ``EventLoopHandler`` asks for, each
/// taken from the code the router's path runs, so that both answer alike to the byte
/// (``AccessTokens/refusal(authorization:scope:)``, ``IncrementBodyDecoder``, ``IncrementIntake``,
/// ``CounterController``, ``APIError``, ``ConnectionHeader``, ``RequestMetricsCache``).
///
/// What this path does not take goes to the router untouched, before anything is admitted or
/// counted for it: another route or a query, a missing or insufficient token, a body that is not
/// one valid increment or is too large, a key the rules refuse, `Expect` or `Connection: close`,
/// a node shutting down.
struct EventLoopRoutes: Sendable {
    /// A request this path answers.
    enum Route: Sendable {
        /// `POST /increment`: the body is still to come.
        case write
        /// `GET /counters/{key}`.
        case read(CounterKey)
    }

    /// What the path answers.
    enum Answer {
        /// Buffered: `202`.
        case accepted
        /// A counter's `{"key":…,"value":…}`: `200`.
        case counter(ByteBuffer)
        /// The error of the catalogue the router would have answered.
        case refused(APIError)
    }

    let intake: IncrementIntake
    let reads: CounterReads
    let health: NodeHealth
    let activity: NodeActivity
    let tokens: AccessTokens
    let maximumBodyBytes: Int
    /// The `Server` header, as the application sends it.
    let serverName: String
    let requestMetrics: RequestMetricsCache
    let answered: Counter
    let logger: Logger

    /// The route labels of the request metrics, as the router names these routes.
    static let writeRoute = "/increment"
    static let readRoute = "/counters/**"

    /// The route this path answers `head` by, if any.
    func route(for head: HTTPRequest) -> Route? {
        guard let path = head.path else { return nil }
        let fields = head.headerFields
        // Hummingbird closes the connection after a request saying `close`; the router keeps that.
        guard fields[.expect] == nil, fields[.connection] != "close", !self.health.isShuttingDown else { return nil }
        let route: Route
        let scope: AccessScope
        if head.method == .post, path == Self.writeRoute {
            guard fields[.idempotencyKey] == nil else { return nil }
            (route, scope) = (.write, .write)
        } else if head.method == .get, path.hasPrefix(CounterController<BasicRequestContext>.pathPrefix),
            !path.utf8.contains(UInt8(ascii: "?"))  // bytes: Foundation's contains(_: String) is far slower
        {
            guard let key = try? CounterController<BasicRequestContext>.key(fromPath: path) else { return nil }
            (route, scope) = (.read(key), .read)
        } else {
            return nil
        }
        guard !self.tokens.isEnabled || self.tokens.refusal(authorization: fields[.authorization], scope: scope) == nil else {
            return nil
        }
        return route
    }

    /// Buffers the increment `body` holds; nil when it holds none (the router answers why).
    func write(body: ByteBuffer?) -> Answer? {
        let decoded = try? IncrementController<BasicRequestContext>.decode(body ?? ByteBuffer()) { (bytes) throws(IncrementInputError) in
            try IncrementBodyDecoder.decodeIncrement(from: bytes)
        }
        guard let increment = decoded else { return nil }
        do throws(AdmissionError) {
            try self.intake.accept(increment)
            return .accepted
        } catch {
            return .refused(APIError(error))
        }
    }

    /// `key`'s committed value from the node's cache, if it may answer now.
    func cachedRead(_ key: CounterKey) -> Answer? {
        switch self.reads.cached(key) {
        case .value(let value): .counter(CounterController<BasicRequestContext>.answerBody(key: key, value: value))
        case .absent: .refused(CounterController<BasicRequestContext>.notFound(key))
        case nil: nil
        }
    }

    /// Reads `key`'s committed value from the database; `completion` runs on a thread of the
    /// look-up's own.
    func read(_ key: CounterKey, completion: @escaping @Sendable (Answer) -> Void) {
        self.reads.lookUp([key]) { result in
            switch result {
            case .success(let values):
                if let value = values[key] {
                    completion(.counter(CounterController<BasicRequestContext>.answerBody(key: key, value: value)))
                } else {
                    completion(.refused(CounterController<BasicRequestContext>.notFound(key)))
                }
            case .failure(let error):
                self.logger.warning("counter read failed", metadata: ["error": "\(describe(error))"])
                completion(.refused(.databaseUnavailable))
            }
        }
    }

    /// The response to `request`, with the headers the router's path adds, in its order, and
    /// the request counted and timed as ``RequestMetricsMiddleware`` counts it.
    func response(
        _ answer: Answer,
        route: Route,
        to request: HTTPRequest,
        date: String,
        started: ContinuousClock.Instant
    ) -> (head: HTTPResponse, body: ByteBuffer?) {
        var response: Response
        let body: ByteBuffer?
        switch answer {
        case .accepted:
            response = Response(status: .accepted)
            body = nil
        case .counter(let counter):
            response = Response.json(bytes: counter)
            body = counter
        case .refused(let error):
            let errorBody = error.jsonBody
            response = error.response(body: errorBody)
            body = errorBody
        }
        self.activity.recordRequest()
        if let connection = ConnectionHeader.value(answering: request.headerFields, shuttingDown: self.health.isShuttingDown) {
            response.headers[.connection] = connection
        }
        response.headers[.date] = date
        response.headers[.server] = self.serverName
        let label = switch route {
        case .write: Self.writeRoute
        case .read: Self.readRoute
        }
        let metrics = self.requestMetrics.endpoint(.init(route: label, method: request.method, status: response.status.code))
        metrics.requests.increment()
        metrics.duration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        self.answered.increment()
        return (response.head, body)
    }
}
