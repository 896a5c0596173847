import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging

/// `GET /counters/{key}`, `GET /counters?key=…` and the listing `GET /counters?prefix=…`:
/// committed values from PostgreSQL, and with `consistency=strong` only after a cluster-wide
/// flush barrier.
///
/// Plain reads are answered from the node's cache of committed values while it may serve them
/// (at most `READ_CACHE_STALENESS_MS` behind the database), else share queries
/// (``CoalescedLookup``), each query started after the reads it answers arrived. Strong reads
/// always query, after their barrier.
struct CounterController<Context: RequestContext>: Sendable {
    /// Committed totals: cached, or many keys per query, giving up on the database after 5 s (then `503`).
    let reads: CounterReads
    /// Where listings are read.
    let store: CounterStore
    let barrier: FlushBarrier
    let tokens: AccessTokens
    /// The most keys one `GET /counters` may name.
    static var maximumKeysPerRead: Int { 1_000 }
    /// The most counters one listing page holds, and how many it holds unless asked.
    static var maximumPageSize: Int { 1_000 }
    static var defaultPageSize: Int { 100 }

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

    struct Page: Encodable {
        /// The counters, in byte order of their keys.
        let counters: [Counter]
        /// The key to pass as `after` for the next page; null on the last one.
        let next: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.counters, forKey: .counters)
            try container.encode(self.next, forKey: .next)  // null, not absent, on the last page
        }

        enum CodingKeys: String, CodingKey { case counters, next }
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
            return try await self.list(query, logger: context.logger)
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

    /// A page of the counters with the query's prefix, after its `after` key.
    private func list(_ query: ReadQuery, logger: Logger) async throws -> Response {
        if case .strong = query.consistency {
            _ = try await self.barrier.passOrThrowAPIError(logger: logger)
        }
        let page: CounterPage
        do {
            page = try await self.store.counters(
                prefix: query.prefix, after: query.after, limit: query.limit ?? Self.defaultPageSize, deadline: .now + .seconds(5))
        } catch {
            logger.warning("counter listing failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
        return Response.json(Page(counters: page.counters.map { Counter(key: $0.key.string, value: $0.value) }, next: page.next?.string))
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
            if case .strong = consistency {
                return try await self.reads.lookup.values(for: keys)
            }
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
        guard let key = Self.percentDecoded(encoded) else {
            throw APIError(.invalidKey, "key is not valid percent-encoded UTF-8")
        }
        do throws(IncrementInputError) {
            return try CounterKey(validating: key)
        } catch {
            throw APIError(error)
        }
    }

    /// What a read asks for.
    struct ReadQuery {
        /// The `key`s named, each once, in the order first named.
        var keys: [CounterKey] = []
        var consistency = Consistency.committed
        /// A listing's `prefix`, `after` and `limit`.
        var prefix: KeyPrefix?
        var after: CounterKey?
        var limit: Int?
    }

    /// The query of a read: `consistency`, and on `GET /counters` the `key`s, or a listing's
    /// `prefix`, `after` and `limit`. Parsed here rather than by the router so that a key is
    /// decoded exactly as in the path (`+` is a plus sign, a bad escape is refused).
    static func parameters(of request: Request, allowingKeys: Bool) throws(APIError) -> ReadQuery {
        var query = ReadQuery()
        var seen = Set<CounterKey>()
        for pair in (request.uri.query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.prefix { $0 != "=" }
            let value = pair.dropFirst(name.count + 1)
            switch name {
            case "key" where allowingKeys:
                let key = try Self.key(percentEncoded: value)
                if seen.insert(key).inserted { query.keys.append(key) }
                if query.keys.count > Self.maximumKeysPerRead {
                    throw APIError(.tooManyItems, "a read names at most \(Self.maximumKeysPerRead) keys")
                }
            case "prefix" where allowingKeys:
                query.prefix = try Self.parameter("prefix", value, KeyPrefix.init(validating:))
            case "after" where allowingKeys:
                query.after = try Self.parameter("after", value, CounterKey.init(validating:))
            case "limit" where allowingKeys:
                guard let limit = Int(value), (1...Self.maximumPageSize).contains(limit) else {
                    throw APIError(.invalidParameter, "limit must be an integer from 1 to \(Self.maximumPageSize), got \"\(value)\"")
                }
                query.limit = limit
            case "consistency":
                switch value {
                case "strong": query.consistency = .strong
                case "committed": query.consistency = .committed
                default:
                    throw APIError(.invalidParameter, "consistency must be \"strong\" or \"committed\", got \"\(value)\"")
                }
            default:
                // Other parameters (a cache buster, say) do not change a read.
                continue
            }
        }
        if !query.keys.isEmpty, let listing = query.prefix != nil ? "prefix" : query.after != nil ? "after" : query.limit != nil ? "limit" : nil {
            throw APIError(.invalidParameter, "\(listing) lists counters and cannot be combined with key")
        }
        return query
    }

    /// `encoded` without its percent escapes; nil when they do not make UTF-8. Most keys carry
    /// no escape: they skip Foundation's decoder.
    static func percentDecoded(_ encoded: Substring) -> String? {
        encoded.utf8.contains(UInt8(ascii: "%")) ? encoded.removingPercentEncoding : String(encoded)
    }

    /// A percent-encoded query parameter read as a key or a prefix; `400 invalid_parameter`
    /// naming the parameter when it is not one.
    static func parameter<Value>(
        _ name: String,
        _ encoded: Substring,
        _ make: (String) throws(IncrementInputError) -> Value
    ) throws(APIError) -> Value {
        guard let text = Self.percentDecoded(encoded) else {
            throw APIError(.invalidParameter, "\(name) is not valid percent-encoded UTF-8")
        }
        do throws(IncrementInputError) {
            return try make(text)
        } catch {
            throw APIError(.invalidParameter, "\(name) follows the key rules: \(error.message)")
        }
    }
}
