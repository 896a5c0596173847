import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging
import Metrics
import PostgresNIO
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The request context every route uses.
public typealias AppRequestContext = BasicRequestContext

/// Assembles the node: PostgreSQL client, buffer, flusher and HTTP routes, in one application
/// whose service group starts them in that order and stops them in reverse (HTTP server first,
/// then the flusher's final flush, then the database client).
///
/// The registry membership (heartbeats, flush barriers) runs once the flusher is ready, and
/// stops first.
///
/// The HTTP server starts at once; the flusher prepares the database (migrations, the node's
/// ledger entry, spilled batches) and `/readyz` answers `503` until it has.
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
    return node.application(settings: settings)
}

/// Runs a node until SIGTERM or SIGINT, then drains it (``FlushSettings/drainWindow``), stops the
/// HTTP server, runs the final flush and stops, all within ``FlushSettings/shutdownTimeout``.
///
/// Throws ``FinalFlushIncomplete`` when something could not be written to PostgreSQL.
public func runNode(
    settings: NodeSettings,
    logger: Logger,
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
) async throws {
    let node = try NodeComponents(settings: settings, logger: logger, registry: registry)
    let group = node.serviceGroup(settings: settings, shutdownSignals: [.sigterm, .sigint])
    // The exit status comes from what the node still owes, not from which error reached here: a
    // flusher cancelled at the deadline, or an error swallowed on the way out, must not read as success.
    var stopError: (any Error)?
    do {
        try await group.run()
    } catch {
        stopError = error
    }
    if let unwritten = node.flusher.account.unwritten(bufferedKeys: node.buffer.pendingKeys) {
        throw unwritten
    }
    if let stopError, !(stopError is FinalFlushIncomplete) {
        throw stopError
    }
}

/// The parts of a node that the routes and services share.
struct NodeComponents: Sendable {
    let postgres: PostgresClient
    let store: CounterStore
    let buffer: IncrementBuffer
    let flusher: Flusher
    let membership: ClusterMembership
    let barrier: FlushBarrier
    let history = ClusterHistory()
    let metrics: NodeMetrics
    let health: NodeHealth
    let activity = NodeActivity()
    let openWaits = OpenCommitWaits()
    let idempotency = IdempotencyTable()
    let idempotencyLookup: CoalescedLookup<IdempotencyKey, IdempotencyRecord>
    let counterLookup: CoalescedLookup<CounterKey, Int64>
    /// Nil when `READ_CACHE_STALENESS_MS` is 0; then so is the listener.
    let readCache: CommittedValueCache?
    let changeListener: CounterChangeListener?
    let intake: IncrementIntake
    let requestMetrics: RequestMetricsCache
    let registry: PrometheusCollectorRegistry
    let documents: APIDocuments
    let logger: Logger

    init(settings: NodeSettings, logger: Logger, registry: PrometheusCollectorRegistry) throws {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["increment_flush_batch_keys"] = NodeMetrics.batchKeysBuckets
        self.registry = registry
        self.metrics = NodeMetrics(factory: factory)
        self.requestMetrics = RequestMetricsCache(factory: factory)
        self.health = NodeHealth()
        self.logger = logger
        self.documents = try APIDocuments.bundled()
        self.postgres = PostgresClient(configuration: settings.database.clientConfiguration, backgroundLogger: logger)
        self.store = CounterStore(
            client: self.postgres, logger: logger, limits: settings.flush.limits,
            usesPreparedStatements: settings.database.usesPreparedStatements)
        self.buffer = IncrementBuffer(shardCount: settings.bufferShards, maximumPendingKeys: settings.maximumPendingKeys)
        let nodeID = UUID().uuidString.lowercased()
        if settings.readCacheStaleness > .zero {
            let cache = CommittedValueCache(
                shardMap: ClusterShardMap(shardCount: settings.flush.clusterShards),
                maximumKeys: settings.readCacheMaximumKeys,
                maximumStaleness: settings.readCacheStaleness
            )
            self.readCache = cache
            self.changeListener = CounterChangeListener(
                cache: cache, configuration: try settings.database.connectionConfiguration(), store: self.store, logger: logger)
        } else {
            self.readCache = nil
            self.changeListener = nil
        }
        var flushLogger = logger
        flushLogger[metadataKey: "node.id"] = "\(nodeID)"
        self.flusher = Flusher(
            buffer: self.buffer,
            store: self.store,
            settings: settings.flush,
            metrics: self.metrics,
            health: self.health,
            activity: self.activity,
            spill: try settings.flush.spillDirectory.map { try SpillDirectory(path: $0) },
            idempotency: self.idempotency,
            advertisedAddress: settings.cluster.advertisedAddress,
            nodeID: nodeID,
            readCache: self.readCache,
            logger: flushLogger
        )
        self.membership = ClusterMembership(
            store: self.store,
            buffer: self.buffer,
            flusher: self.flusher,
            health: self.health,
            activity: self.activity,
            settings: settings.cluster,
            history: self.history,
            logger: flushLogger
        )
        let store = self.store
        self.idempotencyLookup = CoalescedLookup(name: "idempotency key", timeout: .seconds(1)) { keys, deadline in
            try await store.idempotencyRecords(for: keys, deadline: deadline)
        }
        // A read waits at most 5 s for the database, then answers 503. One query at a time:
        // the reads that arrive while it runs share the next, so the busier the node, the more
        // keys per query (measured: 12 µs of PostgreSQL CPU per read, against 21 with three).
        // The cache keeps what each query found, unless a change to those shards was heard meanwhile.
        let readCache = self.readCache
        self.counterLookup = CoalescedLookup(
            name: "counter",
            concurrentQueries: 1,
            timeout: .seconds(5)
        ) { keys, deadline in
            let ticket = readCache?.ticket()
            let found = try await store.totals(forKeys: keys, deadline: deadline)
            if let readCache, let ticket {
                readCache.keep(found, for: keys, ticket: ticket)
            }
            return found
        }
        self.barrier = FlushBarrier(
            store: self.store, membership: self.membership, settings: settings.cluster, timeouts: self.metrics.barrierTimeouts
        )
        self.intake = IncrementIntake(
            buffer: self.buffer,
            flusher: self.flusher,
            metrics: self.metrics,
            activity: self.activity,
            settings: settings.flush,
            openWaits: self.openWaits,
            idempotency: self.idempotency,
            idempotencyLookup: self.idempotencyLookup
        )
    }

    /// The node's services as ``runNode(settings:logger:registry:)`` runs them: the application,
    /// then the drain that starts its shutdown, within ``FlushSettings/shutdownTimeout``.
    func serviceGroup(
        settings: NodeSettings,
        shutdownSignals: [UnixSignal],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> ServiceGroup {
        let listener = ListeningChannel(logger: self.logger)
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(
                    service: self.application(settings: settings) { channel in
                        listener.set(channel)
                        await onServerRunning(channel)
                    }
                ),
                .init(
                    service: ShutdownDrain(
                        health: self.health,
                        openWaits: self.openWaits,
                        window: settings.flush.drainWindow,
                        refusesNewConnections: settings.flush.refusesNewConnectionsWhileDraining,
                        listener: listener
                    )
                ),
            ],
            gracefulShutdownSignals: shutdownSignals,
            logger: self.logger
        )
        // The flusher ends its work 0.7 s before the shutdown deadline; whatever still runs
        // then (a database client still trying to connect) is cancelled.
        configuration.maximumGracefulShutdownDuration = settings.flush.shutdownTimeout
        configuration.maximumCancellationDuration = .milliseconds(500)
        return ServiceGroup(configuration: configuration)
    }

    /// The HTTP application running the database client and the flusher as its services.
    func application(
        settings: NodeSettings,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let drain = settings.flush
        let routes = settings.answersOnEventLoop ? self.eventLoopRoutes(settings: settings) : nil
        return Application(
            router: buildRouter(node: self, settings: settings),
            // Evaluated for each connection: handlers of its own.
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: (drain.refusesNewConnectionsWhileDraining
                        ? [QuiesceDelayHandler(hold: TimeAmount(drain.drainWindow))] : [])
                        + (routes.map { [EventLoopHandler(routes: $0)] } ?? [])
                )
            ),
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: Self.serverName),
            services: [self.postgres, self.flusher, self.membership, self.idempotencyLookup, self.counterLookup]
                + (self.changeListener.map { [$0] } ?? []),
            onServerRunning: onServerRunning,
            logger: self.logger
        )
    }
}

extension NodeComponents {
    /// The `Server` header of every answer.
    static let serverName = "increment-node"

    /// Plain reads: the cache first, then the shared queries.
    var counterReads: CounterReads {
        CounterReads(
            lookup: self.counterLookup, cache: self.readCache, hits: self.metrics.readCacheHits, misses: self.metrics.readCacheMisses)
    }

    /// The decisions of the requests answered on the event loop, shared by every connection's
    /// ``EventLoopHandler``.
    func eventLoopRoutes(settings: NodeSettings) -> EventLoopRoutes {
        EventLoopRoutes(
            intake: self.intake,
            reads: self.counterReads,
            health: self.health,
            activity: self.activity,
            tokens: settings.accessTokens,
            maximumBodyBytes: settings.maximumBodyBytes,
            serverName: Self.serverName,
            requestMetrics: self.requestMetrics,
            answered: self.metrics.eventLoopAnswers,
            logger: self.logger
        )
    }
}

/// The routes and middleware of a node.
func buildRouter(node: NodeComponents, settings: NodeSettings) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(cache: node.requestMetrics))
    router.add(middleware: ConnectionMiddleware(health: node.health, activity: node.activity))
    let routeMethods = RouteMethods()
    router.add(middleware: JSONErrorMiddleware(routes: routeMethods))
    router.addRoutes(
        IncrementController(
            intake: node.intake,
            maximumBodyBytes: settings.maximumBodyBytes,
            maximumBatchItems: settings.maximumBatchItems,
            tokens: settings.accessTokens
        ).endpoints
    )
    router.addRoutes(
        CounterController(reads: node.counterReads, store: node.store, barrier: node.barrier, tokens: settings.accessTokens).endpoints)
    router.addRoutes(
        CounterDeletionController(
            store: node.store, barrier: node.barrier, shardMap: node.flusher.shardMap, deleted: node.metrics.deletedCounters,
            readCache: node.readCache, tokens: settings.accessTokens
        ).endpoints
    )
    router.addRoutes(
        ClusterController(
            store: node.store, barrier: node.barrier, settings: settings.cluster, health: node.health, history: node.history,
            readTimeout: .seconds(5), tokens: settings.accessTokens
        ).endpoints
    )
    router.addRoutes(
        OperationsController(
            buffer: node.buffer,
            health: node.health,
            metrics: node.metrics,
            registry: node.registry,
            maximumStaleness: settings.flush.maximumStaleness,
            // A flush this old is waiting on the database rather than working (1M keys take ~5 s).
            maximumFlushAge: .seconds(5),
            documents: node.documents,
            tokens: settings.accessTokens,
            protectMetrics: settings.protectMetrics
        ).endpoints
    )
    routeMethods.record(router)
    return router
}
