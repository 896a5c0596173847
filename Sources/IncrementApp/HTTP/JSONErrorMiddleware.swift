import Hummingbird
import Logging

/// Turns every error into the contract's JSON error body.
///
/// The router answers an unknown path with a `404`; a known path with the wrong method gets
/// `405` and an `Allow` header instead.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods each route path accepts; paths ending in `/` match by prefix.
    let allowedMethods: [String: [HTTPRequest.Method]]

    /// Creates the middleware from the routes' allowed methods.
    public init(allowedMethods: [String: [HTTPRequest.Method]]) {
        self.allowedMethods = allowedMethods
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as any HTTPResponseError {
            return self.apiError(for: error.status, request: request).response()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(describe(error))"])
            return APIError(status: .internalServerError, code: "internal", message: "internal error").response()
        }
    }

    private func apiError(for status: HTTPResponse.Status, request: Request) -> APIError {
        switch status {
        case .notFound:
            if let methods = self.methods(forPath: request.uri.path), !methods.contains(request.method) {
                return APIError(
                    status: .methodNotAllowed,
                    code: "method_not_allowed",
                    message: "\(request.method) is not allowed on \(request.uri.path)",
                    headers: [.allow: methods.map(\.rawValue).joined(separator: ", ")]
                )
            }
            return APIError(status: .notFound, code: "not_found", message: "no route for \(request.uri.path)")
        case .contentTooLarge:
            return APIError(status: .contentTooLarge, code: "body_too_large", message: "request body too large")
        default:
            let code = status.reasonPhrase.lowercased().split(separator: " ").joined(separator: "_")
            return APIError(status: status, code: code, message: status.reasonPhrase)
        }
    }

    private func methods(forPath path: String) -> [HTTPRequest.Method]? {
        if let methods = self.allowedMethods[path] { return methods }
        for (pattern, methods) in self.allowedMethods where pattern.hasSuffix("/") && path.hasPrefix(pattern) {
            return methods
        }
        return nil
    }
}
