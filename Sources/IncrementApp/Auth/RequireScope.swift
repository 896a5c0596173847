import HTTPTypes
import Hummingbird
import IncrementCore

/// Lets a request through only with a bearer token that has `scope` (or `admin`): `401` without
/// a valid token, `403` with one that lacks the scope, each with `WWW-Authenticate` (RFC 6750).
/// The token is never logged.
struct RequireScope<Context: RequestContext>: RouterMiddleware {
    let scope: AccessScope
    let tokens: AccessTokens

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let authorization = request.headers[.authorization] else {
            throw APIError(
                .unauthorized, "this route needs a bearer token with the \(self.scope.rawValue) scope",
                headers: [.wwwAuthenticate: #"Bearer realm="increment""#])
        }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer ",
            let scopes = self.tokens.scopes(of: authorization.dropFirst(7))
        else {
            throw APIError(
                .unauthorized, "the bearer token is not valid",
                headers: [.wwwAuthenticate: #"Bearer realm="increment", error="invalid_token""#])
        }
        guard scopes.contains(self.scope) || scopes.contains(.admin) else {
            throw APIError(
                .forbidden, "the token lacks the \(self.scope.rawValue) scope",
                headers: [
                    .wwwAuthenticate: #"Bearer realm="increment", error="insufficient_scope", scope="\#(self.scope.rawValue)""#
                ])
        }
        return try await next(request, context)
    }
}

extension RouteCollection {
    /// Protects the routes added after this call with `scope`, when tokens are configured.
    @discardableResult
    func requiring(_ scope: AccessScope, _ tokens: AccessTokens) -> Self {
        guard tokens.isEnabled else { return self }
        return self.add(middleware: RequireScope<Context>(scope: scope, tokens: tokens))
    }
}
