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
        if let refusal = self.tokens.refusal(authorization: request.headers[.authorization], scope: self.scope) {
            throw refusal
        }
        return try await next(request, context)
    }
}

extension AccessTokens {
    /// Why a request with this `Authorization` header may not use a route needing `scope`; nil
    /// when it may.
    func refusal(authorization: String?, scope: AccessScope) -> APIError? {
        guard let authorization else {
            return APIError(
                .unauthorized, "this route needs a bearer token with the \(scope.rawValue) scope",
                headers: [.wwwAuthenticate: #"Bearer realm="increment""#])
        }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer ",
            let scopes = self.scopes(of: authorization.dropFirst(7))
        else {
            return APIError(
                .unauthorized, "the bearer token is not valid",
                headers: [.wwwAuthenticate: #"Bearer realm="increment", error="invalid_token""#])
        }
        guard scopes.contains(scope) || scopes.contains(.admin) else {
            return APIError(
                .forbidden, "the token lacks the \(scope.rawValue) scope",
                headers: [
                    .wwwAuthenticate: #"Bearer realm="increment", error="insufficient_scope", scope="\#(scope.rawValue)""#
                ])
        }
        return nil
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
