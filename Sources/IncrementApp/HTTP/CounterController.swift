import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging

/// `GET /counters/{key}`: the committed value from PostgreSQL.
struct CounterController<Context: RequestContext>: Sendable {
    let store: CounterStore
    /// The longest a read waits for the database before answering `503`.
    let readTimeout: Duration

    static var pathPrefix: String { "/counters/" }

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        // `**` so that keys holding `/` (sent raw or as %2F) reach the handler whole.
        routes.get("counters/**", use: self.counter)
        return routes
    }

    struct Counter: Encodable {
        let key: String
        let value: Int64
    }

    @Sendable func counter(_ request: Request, context: Context) async throws -> Response {
        let key = try Self.key(fromPath: request.uri.path)
        let value: Int64?
        do {
            value = try await self.store.value(forKey: key, deadline: .now + self.readTimeout)
        } catch {
            context.logger.warning("counter read failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
        guard let value else {
            throw APIError(.notFound, "no counter named \"\(key.string)\"")
        }
        return Response.json(Counter(key: key.string, value: value))
    }

    /// The percent-decoded key after `/counters/`, checked against the key rules.
    static func key(fromPath path: String) throws -> CounterKey {
        let encoded = path.dropFirst(Self.pathPrefix.count)
        guard let key = encoded.removingPercentEncoding else {
            throw APIError(.invalidKey, "key is not valid percent-encoded UTF-8")
        }
        do throws(IncrementInputError) {
            return try CounterKey(validating: key)
        } catch {
            throw APIError(error)
        }
    }
}
