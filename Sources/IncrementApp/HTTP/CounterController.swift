import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging

/// `GET /counters/{key}` and `GET /counters?key=…`: committed values from PostgreSQL, and with
/// `consistency=strong` only after a cluster-wide flush barrier.
///
/// Reads running at the same time share queries (``CoalescedLookup``), each query started after
/// the reads it answers arrived: a read sees at least what was committed when it began.
struct CounterController<Context: RequestContext>: Sendable {
    /// Committed totals, many keys per query; it gives up on the database after 5 s (then `503`).
    let reads: CoalescedLookup<CounterKey, Int64>
    let barrier: FlushBarrier
    let tokens: AccessTokens
    /// The most keys one `GET /counters` may name.
    static var maximumKeysPerRead: Int { 1_000 }

    static var pathPrefix: String { "/counters/" }

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.requiring(.read, self.tokens)
        routes.get("counters", use: self.counters)
        // `**` so that keys holding `/` (sent raw or as %2F) reach the handler whole.
        routes.get("counters/**", use: self.counter)
        return routes
    }

    struct Counter: Encodable {
        let key: String
        let value: Int64
    }

    struct Counters: Encodable {
        /// The counters found, in the order first asked.
        let counters: [Counter]
        /// The keys asked for that were never incremented, in the order first asked.
        let absent: [String]
    }

    /// How fresh a read must be.
    enum Consistency {
        /// What PostgreSQL holds now (at most one flush interval behind).
        case committed
        /// Everything any live node accepted before the read began.
        case strong
    }

    @Sendable func counter(_ request: Request, context: Context) async throws -> Response {
        let key = try Self.key(fromPath: request.uri.path)
        let query = try Self.parameters(of: request, allowingKeys: false)
        let values = try await self.read([key], consistency: query.consistency, logger: context.logger)
        guard let value = values[key] else {
            throw Self.notFound(key)
        }
        return Response.json(bytes: Self.answerBody(key: key, value: value))
    }

    /// The error for a key never incremented.
    static func notFound(_ key: CounterKey) -> APIError {
        APIError(.notFound, "no counter named \"\(key.string)\"")
    }

    @Sendable func counters(_ request: Request, context: Context) async throws -> Response {
        let query = try Self.parameters(of: request, allowingKeys: true)
        guard !query.keys.isEmpty else {
            throw APIError(.missingField, "name at least one counter: GET /counters?key=a&key=b")
        }
        let values = try await self.read(query.keys, consistency: query.consistency, logger: context.logger)
        var found: [Counter] = []
        var absent: [String] = []
        for key in query.keys {
            if let value = values[key] {
                found.append(Counter(key: key.string, value: value))
            } else {
                absent.append(key.string)
            }
        }
        return Response.json(Counters(counters: found, absent: absent))
    }

    private func read(
        _ keys: [CounterKey],
        consistency: Consistency,
        logger: Logger
    ) async throws -> [CounterKey: Int64] {
        if case .strong = consistency {
            _ = try await self.barrier.passOrThrowAPIError(logger: logger)
        }
        do {
            return try await self.reads.values(for: keys)
        } catch {
            logger.warning("counter read failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
    }

    /// `{"key":…,"value":…}`, written directly: the same bytes as ``Response/json(_:status:)``
    /// gives for ``Counter``, without an encoder for the most frequent answer.
    static func answerBody(key: CounterKey, value: Int64) -> ByteBuffer {
        var body = ByteBuffer()
        body.reserveCapacity(key.string.utf8.count + 32)
        body.writeStaticString(#"{"key":"#)
        body.writeJSONString(key.string)
        body.writeStaticString(#","value":"#)
        body.writeString(String(value))
        body.writeStaticString("}")
        return body
    }

    /// The percent-decoded key after `/counters/`, checked against the key rules.
    static func key(fromPath path: String) throws(APIError) -> CounterKey {
        try Self.key(percentEncoded: path.dropFirst(Self.pathPrefix.count))
    }

    private static func key(percentEncoded encoded: Substring) throws(APIError) -> CounterKey {
        // Most keys carry no escape: they skip Foundation's decoder.
        guard let key = encoded.contains("%") ? encoded.removingPercentEncoding : String(encoded) else {
            throw APIError(.invalidKey, "key is not valid percent-encoded UTF-8")
        }
        do throws(IncrementInputError) {
            return try CounterKey(validating: key)
        } catch {
            throw APIError(error)
        }
    }

    /// The query of a read: `consistency`, and (on `GET /counters`) the `key`s, each once, in
    /// the order first named. Parsed here rather than by the router so that a key is decoded
    /// exactly as in the path (`+` is a plus sign, a bad escape is refused).
    static func parameters(of request: Request, allowingKeys: Bool) throws(APIError) -> (keys: [CounterKey], consistency: Consistency) {
        var keys: [CounterKey] = []
        var seen = Set<CounterKey>()
        var consistency = Consistency.committed
        for pair in (request.uri.query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.prefix { $0 != "=" }
            let value = pair.dropFirst(name.count + 1)
            switch name {
            case "key" where allowingKeys:
                let key = try Self.key(percentEncoded: value)
                if seen.insert(key).inserted { keys.append(key) }
                if keys.count > Self.maximumKeysPerRead {
                    throw APIError(.tooManyItems, "a read names at most \(Self.maximumKeysPerRead) keys")
                }
            case "consistency":
                switch value {
                case "strong": consistency = .strong
                case "committed": consistency = .committed
                default:
                    throw APIError(.invalidParameter, "consistency must be \"strong\" or \"committed\", got \"\(value)\"")
                }
            default:
                // Other parameters (a cache buster, say) do not change a read.
                continue
            }
        }
        return (keys, consistency)
    }
}
