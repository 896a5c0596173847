import Hummingbird

/// Sets the `Connection` header of responses, and counts requests for the status page.
///
/// - While the node drains before shutdown: `close`, so that nginx (and any HTTP/1.1 client)
///   closes each connection after its response, and no request is ever sent on a connection the
///   node is about to close (which nginx would have to answer `502`).
/// - Otherwise, `keep-alive` to requests that ask for it: HTTP/1.0 clients such as `ab -k` keep a
///   connection open only if the response says so; without it they wait for the server to close.
public struct ConnectionMiddleware<Context: RequestContext>: RouterMiddleware {
    let health: NodeHealth
    let activity: NodeActivity

    /// Creates the middleware.
    public init(health: NodeHealth, activity: NodeActivity) {
        self.health = health
        self.activity = activity
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        self.activity.recordRequest()
        var response = try await next(request, context)
        if let connection = ConnectionHeader.value(answering: request.headers, shuttingDown: self.health.isShuttingDown) {
            response.headers[.connection] = connection
        }
        return response
    }
}

/// The `Connection` header of an answer, for ``ConnectionMiddleware`` and ``EventLoopRoutes``.
enum ConnectionHeader {
    /// The header's value in the answer to a request with `requestHeaders`; nil: none.
    static func value(answering requestHeaders: HTTPFields, shuttingDown: Bool) -> String? {
        if shuttingDown { return "close" }
        if let connection = requestHeaders[.connection], Self.asksForKeepAlive(connection) { return "keep-alive" }
        return nil
    }

    static func asksForKeepAlive(_ header: String) -> Bool {
        header.split(separator: ",").contains { token in
            token.filter { $0 != " " && $0 != "\t" }.lowercased() == "keep-alive"
        }
    }
}
