import Hummingbird

/// Answers `Connection: keep-alive` to requests that ask for it.
///
/// HTTP/1.0 clients such as `ab -k` keep a connection open only if the response says so;
/// without the header they wait for the server to close it, and time out.
public struct KeepAliveMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response = try await next(request, context)
        if let connection = request.headers[.connection], Self.asksForKeepAlive(connection) {
            response.headers[.connection] = "keep-alive"
        }
        return response
    }

    static func asksForKeepAlive(_ header: String) -> Bool {
        header.split(separator: ",").contains { token in
            token.filter { $0 != " " && $0 != "\t" }.lowercased() == "keep-alive"
        }
    }
}
