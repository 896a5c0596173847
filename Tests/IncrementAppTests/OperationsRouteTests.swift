import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementCore
import IncrementTesting
import PostgresNIO
import Prometheus
import Testing

struct OperationsRouteTests {
    @Test func healthReadinessAndMetrics() async throws {
        let database = try await TestDatabase.create()
        let registry = PrometheusCollectorRegistry()
        let app = try await buildApplication(
            settings: try testSettings(database),
            logger: appTestLogger,
            registry: registry
        )
        // Route-level request metrics come from the library middleware through the task's factory.
        try await withMetricsFactory(PrometheusMetricsFactory(registry: registry)) {
            try await app.test(.router) { client in
                try await client.waitUntilReady()
                #expect(try await client.get("/healthz").text == #"{"status":"ok"}"#)
                let ready = try await client.get("/readyz")
                #expect(ready.status == .ok)
                #expect(ready.text == #"{"status":"ready"}"#)

                try await client.post("/increment", #"{"key":"a","value":1}"#)
                try await client.post("/increment?wait=commit", #"{"key":"b","value":1}"#)
                try await client.post("/increment", #"{"key":1}"#)
                let metrics = try await client.get("/metrics")
                #expect(metrics.status == .ok)
                #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
                for name in [
                    "increment_accepted_total 2", "increment_pending_keys 0", "increment_flushes_total 1",
                    "increment_flush_duration_seconds_bucket", "increment_flush_batch_keys_count 1",
                    "increment_oldest_pending_age_seconds", "increment_advisory_lock_wait_seconds_count 1",
                    "increment_flush_failures_total", "increment_flush_retries_total", "increment_quarantined_total",
                    #"http_route="/increment",http_request_method="POST",http_response_status_code="202""#,
                    #"http_response_status_code="400""#,
                ] {
                    #expect(metrics.text.contains(name), "metrics lack \(name)")
                }
            }
        }
    }

    /// A server that refuses writes (as a standby does: SQLSTATE 25006) is "not writable", apart
    /// from unreachable; the batch is kept and applied once the server takes writes again.
    @Test func aReadOnlyDatabaseIsNotWritableAndTheBatchWaitsForIt() async throws {
        let database = try await TestDatabase.create()
        let app = try await buildApplication(
            settings: try testSettings(database) { $0.flush.interval = .milliseconds(100) }, logger: appTestLogger)
        /// Sets the database read-only (or back) and ends every session of it, so the node's pool reconnects.
        @Sendable func setReadOnly(_ readOnly: Bool) async throws {
            try await database.withClient { admin in
                // This session may have started read-only itself.
                try await admin.query("SET default_transaction_read_only = off", logger: appTestLogger)
                try await admin.query(
                    PostgresQuery(unsafeSQL: "ALTER DATABASE \"\(database.name)\" SET default_transaction_read_only = \(readOnly ? "on" : "off")"),
                    logger: appTestLogger)
                try await admin.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database.name) AND pid <> pg_backend_pid()",
                    logger: appTestLogger)
            }
        }
        try await app.test(.router) { client in
            try await client.waitUntilReady()
            try await setReadOnly(true)
            #expect(try await client.post("/increment", #"{"key":"standby","value":4}"#).status == .accepted)
            let deadline = ContinuousClock.now + .seconds(10)
            var ready = try await client.get("/readyz")
            while !ready.text.contains("not writable"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                ready = try await client.get("/readyz")
            }
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.text.contains("database not writable"), "\(ready.text)")
            #expect(!ready.text.contains("unreachable"), "\(ready.text)")
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains("increment_database_writable 0"))
            #expect(metrics.contains("increment_database_reachable 1"))
            #expect(metrics.contains("increment_ready 0"))
            #expect(try await client.get("/cluster").text.contains(#""database":"not writable""#))

            try await setReadOnly(false)
            try await client.waitUntilReady()
            #expect(try await client.get("/metrics").text.contains("increment_ready 1"))
            let committed = try await client.post("/increment?wait=commit", #"{"key":"standby","value":1}"#)
            #expect(committed.text.contains(#""value":5"#), "\(committed.text)")
            #expect(try await client.get("/cluster").text.contains(#""database":"writable""#))
        }
    }

    @Test func keepAliveIsAnsweredForHTTP10Clients() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let response = try await client.execute(
                uri: "/increment",
                method: .post,
                headers: [.connection: "Keep-Alive"],
                body: ByteBuffer(string: #"{"key":"a","value":1}"#)
            )
            #expect(response.headers[.connection] == "keep-alive")
        }
    }

    @Test func theServerServesTheOpenAPIDescriptionItImplements() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            let spec = try await client.get("/openapi.yaml")
            #expect(spec.status == .ok)
            let documented = Self.documentedOperations(spec.text)
            #expect(
                documented == [
                    "POST /increment", "POST /increments", "GET /counters", "DELETE /counters", "GET /counters/{key}",
                    "DELETE /counters/{key}", "POST /flush",
                    "GET /cluster", "GET /cluster/history", "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml", "GET /",
                    "GET /docs",
                ]
            )
            // Each documented operation is routed: none answers 404 or 405.
            for operation in documented {
                let parts = operation.split(separator: " ")
                let path = String(parts[1]).replacingOccurrences(of: "{key}", with: "some-key")
                let response = try await client.execute(
                    uri: path,
                    method: HTTPRequest.Method(rawValue: String(parts[0])) ?? .get,
                    body: ByteBuffer(string: #"{"key":"a","value":1}"#)
                )
                let unrouted = response.status == .methodNotAllowed || (response.status == .notFound && response.errorCode == "not_found" && !path.hasPrefix("/counters/"))
                #expect(!unrouted, "\(operation) is documented but not routed")
            }
            // The error codes it lists are the catalogue's, no more and no fewer.
            #expect(Self.documentedErrorCodes(spec.text) == Set(ErrorCode.allCases.map(\.rawValue)))
            let docs = try await client.get("/docs")
            #expect(docs.status == .ok)
            #expect(docs.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(docs.text.contains("/openapi.yaml"))
        }
    }

    /// The `enum` of the `Error` schema's `error` field.
    static func documentedErrorCodes(_ yaml: String) -> Set<String> {
        guard let schema = yaml.range(of: "\n    Error:\n"),
            let start = yaml.range(of: "enum: [", range: schema.upperBound..<yaml.endIndex),
            let end = yaml.range(of: "]", range: start.upperBound..<yaml.endIndex)
        else { return [] }
        let list = yaml[start.upperBound..<end.lowerBound]
        return Set(list.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init))
    }

    /// "METHOD /path" for each operation under `paths:`, in document order.
    static func documentedOperations(_ yaml: String) -> [String] {
        var operations: [String] = []
        var inPaths = false
        var currentPath: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if !line.hasPrefix(" ") && !line.isEmpty { break }
            if line.hasPrefix("  /") && line.hasSuffix(":") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if let path = currentPath, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                operations.append("\(method) \(path)")
            }
        }
        return operations
    }
}
