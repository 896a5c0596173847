import Foundation
import Hummingbird
import IncrementCore
import IncrementStore
import Logging

/// `GET /cluster` (the node registry), `GET /cluster/history` (its last five minutes, for the
/// status page's charts) and `POST /flush` (a cluster-wide flush barrier).
struct ClusterController<Context: RequestContext>: Sendable {
    let store: CounterStore
    let barrier: FlushBarrier
    let settings: ClusterSettings
    /// The answering node's own view of its database, shown beside the registry it read.
    let health: NodeHealth
    let history: ClusterHistory
    /// The longest a registry read waits for the database.
    let readTimeout: Duration
    let tokens: AccessTokens

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.requiring(.admin, self.tokens)
        routes.get("cluster", use: self.cluster)
        routes.get("cluster/history", use: self.clusterHistory)
        routes.post("flush", use: self.flush)
        return routes
    }

    struct ClusterView: Encodable {
        let nodes: [NodeView]
        let live: Int
        let gone: Int
        /// What the answering node's database is to it: `writable`, or `not writable` (a standby:
        /// the registry read from it may be stale).
        let database: String
    }

    struct NodeView: Encodable {
        let id: String
        let address: String
        let version: String
        let startedAt: String
        /// `live`, or `gone` once silent for longer than the gone threshold.
        let status: String
        /// What the node last said it was doing: `serving`, `draining`, `stopping`.
        let state: String
        let secondsSinceHeartbeat: Double
        let pendingKeys: Int64
        let oldestPendingSeconds: Double?
        let lastFlushAt: String?
        let lastError: String?
        let requestsPerSecond: Double
        let incrementsPerSecond: Double
        let flushSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case id, address, version, status, state
            case startedAt = "started_at"
            case secondsSinceHeartbeat = "seconds_since_heartbeat"
            case pendingKeys = "pending_keys"
            case oldestPendingSeconds = "oldest_pending_seconds"
            case lastFlushAt = "last_flush_at"
            case lastError = "last_error"
            case requestsPerSecond = "requests_per_second"
            case incrementsPerSecond = "increments_per_second"
            case flushSeconds = "flush_seconds"
        }
    }

    struct HistoryView: Encodable {
        let intervalSeconds: Double
        let samples: [ClusterHistory.Sample]

        enum CodingKeys: String, CodingKey {
            case intervalSeconds = "interval_seconds"
            case samples
        }
    }

    struct FlushView: Encodable {
        let barrier: Int64
        let seconds: Double
    }

    @Sendable func cluster(_ request: Request, context: Context) async throws -> Response {
        let nodes: [RegisteredNode]
        do {
            nodes = try await self.store.registeredNodes(deadline: .now + self.readTimeout)
        } catch {
            context.logger.warning("registry read failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
        let goneAfter = self.settings.nodeGoneAfter.seconds
        let views = nodes.map { node in
            NodeView(
                id: node.nodeID,
                address: node.address,
                version: node.version,
                startedAt: node.startedAt.ISO8601Format(),
                status: node.silentFor > goneAfter ? "gone" : "live",
                state: node.state,
                secondsSinceHeartbeat: (node.silentFor * 1000).rounded() / 1000,
                pendingKeys: node.pendingKeys,
                oldestPendingSeconds: node.oldestPendingSeconds,
                lastFlushAt: node.lastFlushAt?.ISO8601Format(),
                lastError: node.lastError,
                requestsPerSecond: (node.requestsPerSecond * 10).rounded() / 10,
                incrementsPerSecond: (node.incrementsPerSecond * 10).rounded() / 10,
                flushSeconds: node.flushSeconds
            )
        }
        let live = views.count { $0.status == "live" }
        return Response.json(
            ClusterView(nodes: views, live: live, gone: views.count - live, database: "\(self.health.databaseRole)"))
    }

    @Sendable func clusterHistory(_ request: Request, context: Context) async throws -> Response {
        Response.json(HistoryView(intervalSeconds: self.history.interval.seconds, samples: self.history.recent))
    }

    @Sendable func flush(_ request: Request, context: Context) async throws -> Response {
        let passed = try await self.barrier.passOrThrowAPIError(logger: context.logger)
        return Response.json(FlushView(barrier: passed.barrier, seconds: passed.elapsed.seconds))
    }
}
