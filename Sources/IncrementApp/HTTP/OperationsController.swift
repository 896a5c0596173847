import Hummingbird
import IncrementCore
import Prometheus

/// Health, readiness, metrics, the API description and the status page.
struct OperationsController<Context: RequestContext>: Sendable {
    let buffer: IncrementBuffer
    let health: NodeHealth
    let metrics: NodeMetrics
    let registry: PrometheusCollectorRegistry
    let maximumStaleness: Duration
    let maximumFlushAge: Duration
    let documents: APIDocuments
    /// With tokens configured and `protectMetrics`, `/metrics` needs an admin token.
    let tokens: AccessTokens
    let protectMetrics: Bool

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        // Always open: probes, and the API description.
        routes.get("healthz", use: self.healthz)
        routes.get("readyz", use: self.readyz)
        routes.get("openapi.yaml") { _, _ in
            Self.document(self.documents.openAPI, contentType: "application/yaml")
        }
        routes.get("docs") { _, _ in
            Self.document(self.documents.docsPage, contentType: "text/html; charset=utf-8")
        }
        // The status page; it reads GET /cluster, which needs an admin token when auth is on.
        routes.get("/") { _, _ in
            Self.document(self.documents.statusPage, contentType: "text/html; charset=utf-8")
        }
        if self.protectMetrics { routes.requiring(.admin, self.tokens) }
        routes.get("metrics", use: self.scrape)
        return routes
    }

    struct Status: Encodable {
        let status: String
    }

    @Sendable func healthz(_ request: Request, context: Context) -> Response {
        Response.json(Status(status: "ok"))
    }

    @Sendable func readyz(_ request: Request, context: Context) throws -> Response {
        let reasons = self.unreadyReasons()
        guard reasons.isEmpty else {
            throw APIError(.notReady, reasons.joined(separator: "; "))
        }
        return Response.json(Status(status: "ready"))
    }

    private func unreadyReasons() -> [String] {
        self.health.unreadyReasons(
            buffer: self.buffer,
            maximumStaleness: self.maximumStaleness,
            maximumFlushAge: self.maximumFlushAge
        )
    }

    @Sendable func scrape(_ request: Request, context: Context) -> Response {
        self.metrics.observe(self.buffer)
        self.metrics.observe(self.health, unreadyReasons: self.unreadyReasons())
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        self.registry.emit(into: &bytes)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    private static func document(_ text: String, contentType: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text))
        )
    }
}
