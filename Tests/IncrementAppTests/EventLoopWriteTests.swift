import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Testing

/// The plain write answered on the event loop (`http.eventLoopWrites`, on by default) answers
/// every request as the router does, to the byte, on real connections.
struct EventLoopWriteTests {
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

    static func observe(eventLoopWrites: Bool) async throws -> Observed {
        let database = try await TestDatabase.create()
        let tokens = try AccessTokens(parsing: "\(writer) write; \(reader) read")
        let settings = try testSettings(database) {
            $0.answersWritesOnEventLoop = eventLoopWrites
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
            observed.requestMetrics = metrics.split(separator: "\n").filter { $0.hasPrefix("hb_requests_total{") }.map(String.init).sorted()
            let answered = metrics.firstMatch(of: /\nincrement_event_loop_writes_total (\S+)/).map { String($0.1) } ?? "0"
            observed.answeredOnEventLoop = Double(answered) ?? -1
            return observed
        }
        observed.counters = try await counters(in: database)
        return observed
    }

    @Test func everyAnswerIsTheRoutersToTheByte() async throws {
        let onEventLoop = try await Self.observe(eventLoopWrites: true)
        let routed = try await Self.observe(eventLoopWrites: false)
        for (index, exchange) in Self.exchanges.enumerated() {
            #expect(onEventLoop.answers[index] == routed.answers[index], "\(exchange.name)")
        }
        #expect(onEventLoop.requestMetrics == routed.requestMetrics)
        #expect(onEventLoop.counters == routed.counters)
        #expect(routed.answeredOnEventLoop == 0)
        // plain, HTTP/1.0, two pipelined, chunked, the 8 of the last but one (503s included).
        #expect(onEventLoop.answeredOnEventLoop >= 12, "\(onEventLoop.answeredOnEventLoop) answered on the event loop")

        // The answers are the contract's, not merely alike.
        #expect(routed.answers[0][0].hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        #expect(routed.answers[1][0].contains("\r\nConnection: keep-alive"))
        #expect(routed.answers[5][0].hasPrefix("HTTP/1.1 413"))
        #expect(routed.answers[6][0].hasPrefix("HTTP/1.1 401"))
        #expect(routed.answers[7][0].hasPrefix("HTTP/1.1 403"))
        #expect(routed.answers[9][0].hasPrefix("HTTP/1.1 200"))
        #expect(routed.answers[9][1].hasPrefix("HTTP/1.1 202"))
        #expect(routed.answers[11].contains { $0.hasPrefix("HTTP/1.1 503") })
        #expect(routed.counters["k1"] == 6)
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
