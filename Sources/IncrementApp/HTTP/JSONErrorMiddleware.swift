import Hummingbird
import IncrementCore
import Logging

/// Turns every error into the contract's JSON error body.
///
/// The router answers an unknown path with a `404`; a known path with the wrong method gets
/// `405` and an `Allow` header instead.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The methods each route path accepts.
    let routes: RouteMethods

    func handle(
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
            return APIError(.internal, "internal error").response()
        }
    }

    /// The catalogue's error for a framework error's status.
    private func apiError(for status: HTTPResponse.Status, request: Request) -> APIError {
        switch status {
        case .notFound:
            if let methods = self.routes.methods(forPath: request.uri.path), !methods.contains(request.method) {
                return APIError(
                    .methodNotAllowed,
                    "\(request.method) is not allowed on \(request.uri.path)",
                    headers: [.allow: methods.map(\.rawValue).joined(separator: ", ")]
                )
            }
            return APIError(.notFound, "no route for \(request.uri.path)")
        case .contentTooLarge:
            return APIError(.bodyTooLarge, "request body too large")
        default:
            return APIError(status.kind == .clientError ? .badRequest : .internal, status.reasonPhrase, status: status)
        }
    }
}
