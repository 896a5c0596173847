import Configuration
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Testing

/// Optional bearer tokens with scopes: every route answers `401`, `403` or serves, by scope.
struct AuthTests {
    static let tokens = """
        # token scopes
        writer-0123456789abcdef write
        reader-0123456789abcdef read
        admin-0123456789abcdef admin
        deleter-0123456789abcdef delete
        """

    /// Each route and the scope it needs (nil: always open).
    static let routes: [(method: HTTPRequest.Method, uri: String, body: String?, scope: AccessScope?)] = [
        (.post, "/increment", #"{"key":"a","value":1}"#, .write),
        (.post, "/increments", #"{"increments":[{"key":"a","value":1}]}"#, .write),
        (.get, "/counters/a", nil, .read),
        (.get, "/counters?key=a", nil, .read),
        (.get, "/counters?prefix=a", nil, .read),
        (.delete, "/counters/gone", nil, .delete),
        (.delete, "/counters?prefix=gone:", nil, .delete),
        (.get, "/cluster", nil, .admin),
        (.get, "/cluster/history", nil, .admin),
        (.post, "/flush", nil, .admin),
        (.get, "/metrics", nil, .admin),
        (.get, "/healthz", nil, nil),
        (.get, "/readyz", nil, nil),
        (.get, "/openapi.yaml", nil, nil),
        (.get, "/docs", nil, nil),
        (.get, "/", nil, nil),
    ]

    /// Who calls: no token, an unknown one, and one token per scope.
    static let callers: [(token: String?, scope: AccessScope?)] = [
        (nil, nil), ("wrong-0123456789abcdef", nil), ("writer-0123456789abcdef", .write),
        ("reader-0123456789abcdef", .read), ("admin-0123456789abcdef", .admin), ("deleter-0123456789abcdef", .delete),
    ]

    @Test func everyRouteAnswersByScope() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database) { settings in
            settings.accessTokens = try! AccessTokens(parsing: Self.tokens)  // A literal that parses.
            settings.protectMetrics = true
        }
        try await withReadyNode(settings) { client in
            for route in Self.routes {
                for (token, scope) in Self.callers {
                    var headers: HTTPFields = [:]
                    if let token { headers[.authorization] = "Bearer \(token)" }
                    let response = try await client.execute(
                        uri: route.uri, method: route.method, headers: headers, body: route.body.map { ByteBuffer(string: $0) })
                    let call = "\(route.method) \(route.uri) with \(token ?? "no token")"
                    guard let needed = route.scope else {
                        #expect(response.status != .unauthorized && response.status != .forbidden, "\(call)")
                        continue
                    }
                    if token == nil || scope == nil {
                        #expect(response.status == .unauthorized, "\(call)")
                        #expect(response.errorCode == "unauthorized", "\(call)")
                        #expect(response.headers[.wwwAuthenticate]?.hasPrefix(#"Bearer realm="increment""#) == true, "\(call)")
                    } else if scope == needed || scope == .admin {
                        #expect(response.status != .unauthorized && response.status != .forbidden, "\(call)")
                    } else {
                        #expect(response.status == .forbidden, "\(call)")
                        #expect(response.errorCode == "forbidden", "\(call)")
                        #expect(response.headers[.wwwAuthenticate]?.contains(#"scope="\#(needed.rawValue)""#) == true, "\(call)")
                    }
                }
            }
        }
        // Only the writer's and the admin's increments counted.
        #expect(try await counters(in: database) == ["a": 4])
    }

    @Test func authIsOffWithoutTokensAndMetricsStayOpenUnlessProtected() async throws {
        let database = try await TestDatabase.create()
        let open = try await buildApplication(settings: try testSettings(database), logger: appTestLogger)
        try await open.test(.router) { client in
            try await client.waitUntilReady()
            #expect(try await client.post("/increment", #"{"key":"a","value":1}"#).status == .accepted)
            #expect(try await client.get("/cluster").status == .ok)
        }
        let settings = try testSettings(database) { settings in
            settings.accessTokens = try! AccessTokens(parsing: Self.tokens)  // A literal that parses.
        }
        let protected = try await buildApplication(settings: settings, logger: appTestLogger)
        try await protected.test(.router) { client in
            try await client.waitUntilReady()
            #expect(try await client.get("/metrics").status == .ok)
            #expect(try await client.get("/cluster").status == .unauthorized)
        }
    }

    @Test func tokensComeFromTheEnvironmentAndAFileAndBadEntriesAreNamedNotShown() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)")
        try "# comment\n\nfile-token-0123456789 read,write\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let settings = try NodeSettings(
            reader: ConfigReader(
                provider: InMemoryProvider(values: [
                    "auth.tokens": "env-token-0123456789 admin; other-token-0123456789 write",
                    "auth.tokensFile": .init(stringLiteral: file.path),
                ])))
        #expect(settings.accessTokens.scopes(of: "env-token-0123456789") == [.admin])
        #expect(settings.accessTokens.scopes(of: "other-token-0123456789") == [.write])
        #expect(settings.accessTokens.scopes(of: "file-token-0123456789") == [.read, .write])
        #expect(settings.accessTokens.scopes(of: "file-token-012345678") == nil)
        #expect(settings.accessTokens.scopes(of: "") == nil)

        for (bad, reason) in [
            ("secret-secret-secret writ", "unknown scope"), ("short admin", "at least 16"), ("secret-secret-secret", "expected"),
        ] {
            do {
                _ = try AccessTokens(parsing: bad)
                Issue.record("\(bad) parsed")
            } catch {
                #expect(error.description.contains(reason))
                #expect(!error.description.contains("secret"))
            }
        }
    }

    @Test func tokensCompareInFull() {
        #expect(AccessTokens.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!AccessTokens.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!AccessTokens.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!AccessTokens.constantTimeEqual(Array("".utf8), Array("a".utf8)))
        // Lengths differing by a multiple of 256 still differ.
        #expect(!AccessTokens.constantTimeEqual([], Array(repeating: 0, count: 256)))
    }
}
