import Hummingbird
import Synchronization

/// The methods each route accepts, read from the router itself once its routes are added, so a
/// known path asked with another method is answered `405` with `Allow` rather than `404`.
///
/// Middleware applies only to the routes added after it, so ``JSONErrorMiddleware`` holds this
/// table before the routes exist; ``record(_:)`` fills it when they do.
final class RouteMethods: Sendable {
    private struct Route: Sendable {
        let path: RouterPath
        let method: HTTPRequest.Method
    }

    private let routes = Mutex<[Route]>([])

    /// Takes the routes of `router`.
    func record(_ router: Router<some RequestContext>) {
        let routes = router.routes.map { Route(path: $0.path, method: $0.method) }
        self.routes.withLock { $0 = routes }
    }

    /// The methods accepted on `path`, or `nil` when no route has that path.
    func methods(forPath path: String) -> [HTTPRequest.Method]? {
        let components = path.split(separator: "/")
        let methods = self.routes.withLock { routes in
            routes.filter { Self.route($0.path, matches: components) }.map(\.method)
        }
        return methods.isEmpty ? nil : methods
    }

    private static func route(_ route: RouterPath, matches components: [Substring]) -> Bool {
        var remaining = components[...]
        for element in route.components {
            if element == .recursiveWildcard { return true }
            guard let component = remaining.popFirst(), element ~= component else { return false }
        }
        return remaining.isEmpty
    }
}
