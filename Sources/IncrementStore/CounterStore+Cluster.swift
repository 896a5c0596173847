import Foundation
import IncrementCore
import PostgresNIO

/// What a node tells the registry about itself with each heartbeat.
public struct NodeReport: Sendable {
    /// `starting`, `serving`, `draining` or `stopping`.
    public var state: String
    /// Distinct keys waiting in the node's buffer.
    public var pendingKeys: Int
    /// How long the oldest pending increment has waited, if any waits.
    public var oldestPending: Duration?
    /// How long ago the node's last flush committed, if one has.
    public var sinceLastFlush: Duration?
    /// The last flush error, if the last flush failed.
    public var lastError: String?
    /// Requests per second since the last heartbeat.
    public var requestsPerSecond: Double
    /// Increments accepted per second since the last heartbeat.
    public var incrementsPerSecond: Double
    /// The mean duration of the flushes since the last heartbeat (the last known, if none ran).
    public var flushDuration: Duration?

    /// Creates a report.
    public init(
        state: String,
        pendingKeys: Int,
        oldestPending: Duration?,
        sinceLastFlush: Duration?,
        lastError: String?,
        requestsPerSecond: Double = 0,
        incrementsPerSecond: Double = 0,
        flushDuration: Duration? = nil
    ) {
        self.state = state
        self.pendingKeys = pendingKeys
        self.oldestPending = oldestPending
        self.sinceLastFlush = sinceLastFlush
        self.lastError = lastError
        self.requestsPerSecond = requestsPerSecond
        self.incrementsPerSecond = incrementsPerSecond
        self.flushDuration = flushDuration
    }
}

/// One row of the node registry, as `GET /cluster` shows it.
public struct RegisteredNode: Sendable, Equatable {
    /// The node process's id, fresh at every start (its flush ledger id too).
    public var nodeID: String
    /// Where the node says it can be reached.
    public var address: String
    /// The node's build version.
    public var version: String
    /// When the node process registered.
    public var startedAt: Date
    /// Seconds since the node's last heartbeat, by the database's clock.
    public var silentFor: Double
    /// What the node last said it was doing (`serving`, `draining`, `stopping`).
    public var state: String
    /// Distinct keys waiting in the node's buffer at its last heartbeat.
    public var pendingKeys: Int64
    /// How long its oldest pending increment had waited, at its last heartbeat.
    public var oldestPendingSeconds: Double?
    /// When its last flush committed.
    public var lastFlushAt: Date?
    /// Its last flush error, if its last flush failed.
    public var lastError: String?
    /// The highest flush barrier it has confirmed.
    public var barrierFlushed: Int64
    /// Requests per second over its last heartbeat interval.
    public var requestsPerSecond: Double
    /// Increments accepted per second over its last heartbeat interval.
    public var incrementsPerSecond: Double
    /// Its recent mean flush duration, in seconds.
    public var flushSeconds: Double?
}

extension CounterStore {
    /// Adds this node to the registry (or, after it was removed as silent, adds it back, with
    /// the barriers it has flushed meanwhile). Returns the latest flush barrier taken so far.
    @discardableResult
    public func announce(
        nodeID: String,
        address: String,
        version: String,
        barrierFlushed: Int64 = 0,
        deadline: ContinuousClock.Instant
    ) async throws -> Int64 {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                INSERT INTO cluster_nodes (node_id, address, version, state, barrier_flushed)
                VALUES (\(nodeID)::uuid, \(address), \(version), 'serving', \(barrierFlushed))
                ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()
                RETURNING (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM flush_barrier)
                """,
                logger: self.logger
            )
            var latest: Int64 = 0
            for try await value in rows.decode(Int64.self) { latest = value }
            return latest
        }
    }

    /// Records a heartbeat with the node's state; false when the node's row is gone (removed
    /// as silent), so that the caller announces itself again.
    public func report(nodeID: String, _ report: NodeReport, deadline: ContinuousClock.Instant) async throws -> Bool {
        let lastFlushSecondsAgo = report.sinceLastFlush?.seconds
        return try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                UPDATE cluster_nodes SET heartbeat_at = now(), state = \(report.state),
                    pending_keys = \(Int64(report.pendingKeys)), oldest_pending_s = \(report.oldestPending?.seconds),
                    last_flush_at = now() - make_interval(secs => \(lastFlushSecondsAgo)), last_error = \(report.lastError),
                    requests_per_s = \(report.requestsPerSecond), increments_per_s = \(report.incrementsPerSecond),
                    flush_seconds = coalesce(\(report.flushDuration?.seconds), flush_seconds)
                WHERE node_id = \(nodeID)::uuid
                RETURNING 1
                """,
                logger: self.logger
            )
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }

    /// The registry, oldest node first.
    public func registeredNodes(deadline: ContinuousClock.Instant) async throws -> [RegisteredNode] {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                SELECT node_id::text, address, version, started_at, extract(epoch FROM now() - heartbeat_at)::float8,
                    state, pending_keys, oldest_pending_s, last_flush_at, last_error, barrier_flushed,
                    requests_per_s, increments_per_s, flush_seconds
                FROM cluster_nodes ORDER BY started_at, node_id
                """,
                logger: self.logger
            )
            var nodes: [RegisteredNode] = []
            for try await row in rows.decode(
                (String, String, String, Date, Double, String, Int64, Double?, Date?, String?, Int64, Double, Double, Double?).self
            ) {
                nodes.append(
                    RegisteredNode(
                        nodeID: row.0, address: row.1, version: row.2, startedAt: row.3, silentFor: row.4, state: row.5,
                        pendingKeys: row.6, oldestPendingSeconds: row.7, lastFlushAt: row.8, lastError: row.9,
                        barrierFlushed: row.10, requestsPerSecond: row.11, incrementsPerSecond: row.12, flushSeconds: row.13
                    )
                )
            }
            return nodes
        }
    }

    /// Removes the rows of nodes silent for longer than `silence`; returns how many.
    @discardableResult
    public func removeSilentNodes(silentFor silence: Duration, deadline: ContinuousClock.Instant) async throws -> Int {
        Int(
            try await self.singleValue(
                """
                WITH removed AS (
                    DELETE FROM cluster_nodes WHERE heartbeat_at < now() - make_interval(secs => \(silence.seconds))
                    RETURNING 1
                )
                SELECT count(*)::bigint FROM removed
                """,
                deadline: deadline
            ))
    }

    /// Takes the next flush barrier number.
    public func raiseBarrier(deadline: ContinuousClock.Instant) async throws -> Int64 {
        try await self.singleValue("SELECT nextval('flush_barrier')", deadline: deadline)
    }

    /// The latest flush barrier number taken, 0 if none has been.
    public func latestBarrier(deadline: ContinuousClock.Instant) async throws -> Int64 {
        try await self.singleValue("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM flush_barrier", deadline: deadline)
    }

    /// The addresses of the nodes heard from within `liveWithin` that have not yet confirmed
    /// `barrier`: empty once every live node has flushed for it.
    public func nodesNotConfirming(
        barrier: Int64,
        liveWithin: Duration,
        deadline: ContinuousClock.Instant
    ) async throws -> [String] {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                SELECT address FROM cluster_nodes
                WHERE barrier_flushed < \(barrier) AND heartbeat_at > now() - make_interval(secs => \(liveWithin.seconds))
                ORDER BY address
                """,
                logger: self.logger
            )
            var addresses: [String] = []
            for try await address in rows.decode(String.self) { addresses.append(address) }
            return addresses
        }
    }

    /// Records that this node has flushed everything it accepted before it saw `barrier`;
    /// false when the node's row is gone (removed as silent), so that it announces itself again.
    public func confirmBarrier(_ barrier: Int64, nodeID: String, deadline: ContinuousClock.Instant) async throws -> Bool {
        try await withDeadline(deadline) {
            let rows = try await self.client.query(
                """
                UPDATE cluster_nodes SET barrier_flushed = greatest(barrier_flushed, \(barrier)), heartbeat_at = now()
                WHERE node_id = \(nodeID)::uuid
                RETURNING 1
                """,
                logger: self.logger
            )
            for try await _ in rows.decode(Int.self) { return true }
            return false
        }
    }
}
