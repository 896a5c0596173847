import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging
import Metrics
import PostgresNIO
import Prometheus
import ServiceLifecycle

/// The request context every route uses.
public typealias AppRequestContext = BasicRequestContext

/// Assembles the node: PostgreSQL client, buffer, flusher and HTTP routes, in one application
/// whose service group starts them in that order and stops them in reverse (HTTP server first,
/// then the flusher's final flush, then the database client).
///
/// - Parameters:
///   - settings: the node's settings.
///   - logger: the root logger.
///   - registry: where the node's Prometheus metrics are kept and scraped from.
public func buildApplication(
    settings: NodeSettings,
    logger: Logger,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) async throws -> some ApplicationProtocol {
    let node = try NodeComponents(settings: settings, logger: logger, registry: registry)
    let router = buildRouter(node: node, settings: settings)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "increment-node"),
        services: [node.postgres, node.flusher],
        logger: logger
    )
    app.beforeServerStarts {
        try await node.migrate()
        try await node.store.agree(onClusterSetting: "cluster_shards", value: Int64(settings.flush.clusterShards))
    }
    return app
}

/// The parts of a node that the routes and services share.
struct NodeComponents: Sendable {
    let postgres: PostgresClient
    let store: CounterStore
    let buffer: IncrementBuffer
    let flusher: Flusher
    let metrics: NodeMetrics
    let health: NodeHealth
    let registry: PrometheusCollectorRegistry
    let documents: APIDocuments
    let logger: Logger

    init(settings: NodeSettings, logger: Logger, registry: PrometheusCollectorRegistry) throws {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["increment_flush_batch_keys"] = NodeMetrics.batchKeysBuckets
        self.registry = registry
        self.metrics = NodeMetrics(factory: factory)
        self.health = NodeHealth()
        self.logger = logger
        self.documents = try APIDocuments.bundled()
        self.postgres = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
        self.store = CounterStore(client: self.postgres, logger: logger)
        self.buffer = IncrementBuffer(shardCount: settings.bufferShards, maximumPendingKeys: settings.maximumPendingKeys)
        let nodeID = UUID().uuidString.lowercased()
        var flushLogger = logger
        flushLogger[metadataKey: "node.id"] = "\(nodeID)"
        self.flusher = Flusher(
            buffer: self.buffer,
            store: self.store,
            settings: settings.flush,
            metrics: self.metrics,
            health: self.health,
            nodeID: nodeID,
            logger: flushLogger
        )
    }

    /// Applies pending schema migrations, retrying while PostgreSQL is still starting.
    func migrate() async throws {
        let migrations = try Migration.bundled()
        let migrator = SchemaMigrator(client: self.postgres, logger: self.logger)
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await migrator.migrate(migrations)
                self.health.recordDatabase(reachable: true)
                return
            } catch {
                guard attempt < 30, Self.isTransient(error) else { throw error }
                self.logger.warning(
                    "database not ready for migrations; retrying",
                    metadata: ["attempt": "\(attempt)", "error": "\(describe(error))"]
                )
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

extension NodeComponents {
    /// True for errors worth waiting out at start-up: no connection yet, or a server still starting.
    static func isTransient(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .server:
            // SQLSTATE class 57 (operator intervention) covers "the database system is starting up".
            return error.serverInfo?[.sqlState]?.hasPrefix("57") ?? false
        case .connectionError, .serverClosedConnection, .uncleanShutdown:
            return true
        default:
            return false
        }
    }
}

/// The routes and middleware of a node.
func buildRouter(node: NodeComponents, settings: NodeSettings) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: KeepAliveMiddleware())
    router.add(
        middleware: JSONErrorMiddleware(allowedMethods: [
            "/increment": [.post], "/increments": [.post], CounterController<AppRequestContext>.pathPrefix: [.get],
            "/healthz": [.get], "/readyz": [.get], "/metrics": [.get], "/openapi.yaml": [.get], "/docs": [.get],
        ])
    )
    router.addRoutes(
        IncrementController(
            buffer: node.buffer,
            flusher: node.flusher,
            metrics: node.metrics,
            maximumBodyBytes: settings.maximumBodyBytes,
            maximumBatchItems: settings.maximumBatchItems,
            earlyFlushKeys: settings.flush.earlyFlushKeys
        ).endpoints
    )
    router.addRoutes(CounterController(store: node.store).endpoints)
    router.addRoutes(
        OperationsController(
            buffer: node.buffer,
            health: node.health,
            metrics: node.metrics,
            registry: node.registry,
            maximumStaleness: settings.flush.maximumStaleness,
            documents: node.documents
        ).endpoints
    )
    return router
}
