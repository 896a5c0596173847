import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Testing

/// The plain write and the single-key read answered on the event loop (`http.eventLoopAnswers`,
/// on by default) answer every request as the router does, to the byte, on real connections.
struct EventLoopRouteTests {
    static let writer = "writer-token-0123456789"
    static let reader = "reader-token-0123456789"

    /// One connection's traffic: the bytes sent, and how many answers come back.
    struct Exchange: Sendable {
        let name: String
        let bytes: String
        let answers: Int
    }

    static func post(
        _ body: String,
        path: String = "/increment",
        version: String = "1.1",
        headers: [String] = ["Authorization: Bearer \(writer)"]
    ) -> String {
        (["POST \(path) HTTP/\(version)", "Host: test", "Content-Type: application/json", "Content-Length: \(body.utf8.count)"]
            + headers).joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    static func get(_ path: String, headers: [String] = ["Authorization: Bearer \(reader)"]) -> String {
        (["GET \(path) HTTP/1.1", "Host: test"] + headers).joined(separator: "\r\n") + "\r\n\r\n"
    }

    static let exchanges: [Exchange] = [
        Exchange(name: "plain", bytes: post(#"{"key":"k1","value":1}"#), answers: 1),
        Exchange(
            name: "HTTP/1.0 asking for keep-alive (ab -k)",
            bytes: post(#"{"key":"k1","value":2}"#, version: "1.0", headers: ["Authorization: Bearer \(writer)", "Connection: Keep-Alive"]),
            answers: 1),
        Exchange(name: "two pipelined", bytes: post(#"{"key":"k1","value":3}"#) + post(#"{"key":"k2","value":-1}"#), answers: 2),
        Exchange(name: "not JSON", bytes: post(#"{"key":"#), answers: 1),
        Exchange(name: "a value that is a string", bytes: post(#"{"key":"k3","value":"1"}"#), answers: 1),
        Exchange(name: "a body over the limit", bytes: post(#"{"key":"\#(String(repeating: "x", count: 300))","value":1}"#), answers: 1),
        Exchange(name: "no token", bytes: post(#"{"key":"k1","value":1}"#, headers: []), answers: 1),
        Exchange(
            name: "a token without the write scope",
            bytes: post(#"{"key":"k1","value":1}"#, headers: ["Authorization: Bearer \(reader)"]), answers: 1),
        Exchange(
            name: "a chunked body",
            bytes: "POST /increment HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer \(writer)\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "b\r\n{\"key\":\"k4\"\r\n" + "b\r\n,\"value\":5}\r\n" + "0\r\n\r\n",
            answers: 1),
        Exchange(
            name: "a slow request (wait=commit) with a plain one pipelined behind it",
            bytes: post(#"{"key":"k5","value":1}"#, path: "/increment?wait=commit") + post(#"{"key":"k5","value":1}"#),
            answers: 2),
        // The wait=commit above flushed k1 to k5.
        Exchange(name: "a stored counter", bytes: get("/counters/k1"), answers: 1),
        Exchange(name: "a percent-encoded key", bytes: get("/counters/k%31"), answers: 1),
        Exchange(name: "a key never incremented", bytes: get("/counters/never"), answers: 1),
        Exchange(name: "a key the rules refuse", bytes: get("/counters/%zz"), answers: 1),
        Exchange(name: "a strong read", bytes: get("/counters/k4?consistency=strong"), answers: 1),
        Exchange(name: "a read without a token", bytes: get("/counters/k1", headers: []), answers: 1),
        Exchange(
            name: "a read with a token without the read scope",
            bytes: get("/counters/k1", headers: ["Authorization: Bearer \(writer)"]), answers: 1),
        Exchange(
            name: "reads and writes pipelined",
            bytes: get("/counters/k1") + post(#"{"key":"k1","value":1}"#) + get("/counters/k2") + get("/counters/never")
                + post(#"{"key":"k5","value":1}"#) + get("/counters/k5"),
            answers: 6),
        Exchange(
            name: "more reads pipelined than are held before the socket is no longer read",
            bytes: String(repeating: get("/counters/k2"), count: 40) + post(#"{"key":"k2","value":1}"#),
            answers: 41),
        Exchange(
            name: "an Idempotency-Key",
            bytes: post(#"{"key":"k6","value":1}"#, headers: ["Authorization: Bearer \(writer)", "Idempotency-Key: once-1"]),
            answers: 1),
        Exchange(
            name: "more new keys than the buffer takes",
            bytes: (1...8).map { post(#"{"key":"full-\#($0)","value":1}"#) }.joined(),
            answers: 8),
    ]

    /// What one node answered to ``exchanges``, what it counted, and what it stored.
    struct Observed: Equatable {
        var answers: [[String]] = []
        var requestMetrics: [String] = []
        var answeredOnEventLoop = 0.0
        var counters: [String: Int64] = [:]
    }

    static func observe(onEventLoop: Bool) async throws -> Observed {
        let database = try await TestDatabase.create()
        let tokens = try AccessTokens(parsing: "\(writer) write; \(reader) read")
        let settings = try testSettings(database) {
            $0.answersOnEventLoop = onEventLoop
            $0.maximumBodyBytes = 256
            $0.maximumPendingKeys = 8
            $0.accessTokens = tokens
        }
        let app = try await buildApplication(settings: settings, logger: appTestLogger)
        var observed = try await app.test(.live) { client in
            var observed = Observed()
            try await client.waitUntilReady()
            let port = try #require(client.port)
            for exchange in Self.exchanges {
                let answers = try await RawHTTPConnection.with(port: port) { try await $0.exchange(exchange.bytes, answers: exchange.answers) }
                // The date is the only part that may differ.
                observed.answers.append(answers.map { $0.head.replacing(/\r\nDate: [^\r]*/, with: "\r\nDate: -") + "\r\n\r\n" + $0.body })
            }
            let metrics = try await RawHTTPConnection.with(port: port) { try await $0.send("GET", "/metrics") }.body
            observed.requestMetrics = metrics.split(separator: "\n")
                .filter { $0.hasPrefix("hb_requests{") || $0.hasPrefix("http_server_request_duration_count{") }
                // How often /readyz was polled before the node was ready varies from run to run.
                .filter { !$0.contains(#"http_route="/readyz""#) }
                .map(String.init).sorted()
            let answered = metrics.firstMatch(of: /\nincrement_event_loop_answers_total (\S+)/).map { String($0.1) } ?? "0"
            observed.answeredOnEventLoop = Double(answered) ?? -1
            return observed
        }
        observed.counters = try await counters(in: database)
        return observed
    }

    @Test func everyAnswerIsTheRoutersToTheByte() async throws {
        let onEventLoop = try await Self.observe(onEventLoop: true)
        let routed = try await Self.observe(onEventLoop: false)
        for (index, exchange) in Self.exchanges.enumerated() {
            #expect(onEventLoop.answers[index] == routed.answers[index], "\(exchange.name)")
        }
        #expect(onEventLoop.requestMetrics == routed.requestMetrics)
        #expect(routed.requestMetrics.contains(#"hb_requests{http_route="/counters/**",http_request_method="GET",http_response_status_code="200"} 46"#))
        #expect(onEventLoop.counters == routed.counters)
        #expect(routed.answeredOnEventLoop == 0)
        // Writes: plain, HTTP/1.0, two pipelined, chunked, the buffer-full 8 (503s included);
        // reads: stored, percent-encoded, never incremented; the 6 pipelined, the 41.
        #expect(onEventLoop.answeredOnEventLoop >= 61, "\(onEventLoop.answeredOnEventLoop) answered on the event loop")

        // The answers are the contract's, not merely alike.
        func answers(_ name: String) -> [String] {
            Self.exchanges.firstIndex { $0.name == name }.map { routed.answers[$0] } ?? []
        }
        #expect(answers("plain").first?.hasPrefix("HTTP/1.1 202 Accepted\r\n") == true)
        #expect(answers("HTTP/1.0 asking for keep-alive (ab -k)").first?.contains("\r\nConnection: keep-alive") == true)
        #expect(answers("a body over the limit").first?.hasPrefix("HTTP/1.1 413") == true)
        #expect(answers("no token").first?.hasPrefix("HTTP/1.1 401") == true)
        #expect(answers("a token without the write scope").first?.hasPrefix("HTTP/1.1 403") == true)
        #expect(answers("a slow request (wait=commit) with a plain one pipelined behind it").map { $0.prefix(12) } == ["HTTP/1.1 200", "HTTP/1.1 202"])
        #expect(answers("a stored counter").first?.hasSuffix(#"{"key":"k1","value":6}"#) == true)
        #expect(answers("a percent-encoded key") == answers("a stored counter"))
        #expect(answers("a key never incremented").first?.hasPrefix("HTTP/1.1 404") == true)
        #expect(answers("a key the rules refuse").first?.hasPrefix("HTTP/1.1 400") == true)
        #expect(answers("a read without a token").first?.hasPrefix("HTTP/1.1 401") == true)
        #expect(answers("reads and writes pipelined").map { $0.prefix(12) }
            == ["HTTP/1.1 200", "HTTP/1.1 202", "HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 202", "HTTP/1.1 200"])
        #expect(answers("more new keys than the buffer takes").contains { $0.hasPrefix("HTTP/1.1 503") })
        let many = answers("more reads pipelined than are held before the socket is no longer read")
        #expect(many.dropLast().allSatisfy { $0.hasSuffix(#"{"key":"k2","value":-1}"#) } && many.last?.hasPrefix("HTTP/1.1 202") == true)
        #expect(routed.counters["k1"] == 7)
        #expect(routed.counters["k4"] == 5)
    }

    @Test func theDateHeaderIsRFC9110s() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for seconds in [0, 784_111_777, 1_796_283_502, 4_102_444_799] {
            #expect(HTTPDateCache.format(time_t(seconds)) == formatter.string(from: Date(timeIntervalSince1970: Double(seconds))))
        }
        #expect(HTTPDateCache.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
