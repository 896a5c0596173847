import Hummingbird
import IncrementCore
import Metrics
import Synchronization

/// Counts requests and records their durations by route, method and status, under the names
/// and labels of Hummingbird's `MetricsMiddleware` (`hb_requests`, `http_server_request_duration`,
/// `hb_request_errors`, `http_server_active_requests`), so dashboards read either.
///
/// Hummingbird's middleware records once the body has been written, which wraps every response
/// body in a closure and takes it off the server's single-write path for whole bodies: one node
/// answered about 8% fewer requests per second with it. The bodies here are small and whole, so
/// this records when the handler returns; the duration leaves out the socket write alone.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The metric handles, shared with ``EventLoopRoutes``.
    let cache: RequestMetricsCache

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        let active = self.cache.activeRequests(method: request.method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            let metrics = self.cache.endpoint(
                .init(route: context.endpointPath ?? "Unknown", method: request.method, status: response.status.code))
            metrics.requests.increment()
            metrics.duration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            let metrics = self.cache.endpoint(
                .init(route: context.endpointPath ?? "NotFound", method: request.method, status: status.code))
            metrics.requests.increment()
            metrics.errors.increment()
            throw error
        }
    }
}

/// The metric handles of each route, method and status seen, made once, in the node's own
/// factory (as ``NodeMetrics`` are): created on an event loop or in a test's task, they land in
/// the registry `GET /metrics` serves.
final class RequestMetricsCache: Sendable {
    struct EndpointID: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: Int
    }

    struct EndpointMetrics: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
        let errors: Counter

        init(_ id: EndpointID, factory: any MetricsFactory) {
            let dimensions = [
                ("http.route", id.route), ("http.request.method", id.method.rawValue),
                ("http.response.status_code", String(id.status)),
            ]
            self.requests = Counter(label: "hb.requests", dimensions: dimensions, factory: factory)
            self.duration = Metrics.Timer(
                label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
            self.errors = Counter(
                label: "hb.request.errors",
                dimensions: [
                    ("http.route", id.route), ("http.request.method", id.method.rawValue), ("error.type", String(id.status)),
                ],
                factory: factory
            )
        }
    }

    private let factory: any MetricsFactory
    private let endpoints = Mutex<[EndpointID: EndpointMetrics]>([:])
    private let active = Mutex<[HTTPRequest.Method: Meter]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func endpoint(_ id: EndpointID) -> EndpointMetrics {
        self.endpoints.withLock { endpoints in
            if let metrics = endpoints[id] { return metrics }
            let metrics = EndpointMetrics(id, factory: self.factory)
            endpoints[id] = metrics
            return metrics
        }
    }

    func activeRequests(method: HTTPRequest.Method) -> Meter {
        self.active.withLock { active in
            if let meter = active[method] { return meter }
            let meter = Meter(
                label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)], factory: self.factory)
            active[method] = meter
            return meter
        }
    }
}
