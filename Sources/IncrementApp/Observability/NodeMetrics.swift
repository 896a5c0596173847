import CoreMetrics
import IncrementCore
import IncrementStore
import Metrics

/// The node's own metrics, named Prometheus-style.
///
/// They are made from an explicit factory rather than the global `MetricsSystem`, so that
/// every application instance (several run side by side in the tests) reports on its own.
public struct NodeMetrics: Sendable {
    let acceptedIncrements: Counter
    let rejectedOverloaded: Counter
    let pendingKeys: Gauge
    let oldestPendingAge: Gauge
    let flushes: Counter
    let flushDuration: Metrics.Timer
    let batchKeys: Recorder
    let flushFailures: Counter
    let flushRetries: Counter
    let alreadyAppliedBatches: Counter
    let quarantinedIncrements: Counter
    let lockWait: Metrics.Timer
    let prunedLedgerRows: Counter
    let idempotentReplays: Counter
    let idempotencyConflicts: Counter
    let prunedIdempotencyKeys: Counter
    let databaseWritable: Gauge
    let databaseReachable: Gauge
    let ready: Gauge
    let barrierTimeouts: Counter
    let eventLoopAnswers: Counter
    /// Counters deleted through this node, one by one or by prefix.
    let deletedCounters: Counter
    /// Plain reads answered from the node's cache of committed values, and those that queried.
    let readCacheHits: Counter
    let readCacheMisses: Counter

    /// The bucket boundaries for the batch size histogram, in keys.
    public static let batchKeysBuckets: [Double] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000]

    /// Creates the metrics in `factory`.
    public init(factory: any MetricsFactory) {
        self.acceptedIncrements = Counter(label: "increment_accepted_total", factory: factory)
        self.rejectedOverloaded = Counter(label: "increment_rejected_overloaded_total", factory: factory)
        self.pendingKeys = Gauge(label: "increment_pending_keys", factory: factory)
        self.oldestPendingAge = Gauge(label: "increment_oldest_pending_age_seconds", factory: factory)
        self.flushes = Counter(label: "increment_flushes_total", factory: factory)
        self.flushDuration = Metrics.Timer(label: "increment_flush_duration_seconds", factory: factory)
        self.batchKeys = Recorder(label: "increment_flush_batch_keys", factory: factory)
        self.flushFailures = Counter(label: "increment_flush_failures_total", factory: factory)
        self.flushRetries = Counter(label: "increment_flush_retries_total", factory: factory)
        self.alreadyAppliedBatches = Counter(label: "increment_flush_already_applied_total", factory: factory)
        self.quarantinedIncrements = Counter(label: "increment_quarantined_total", factory: factory)
        self.lockWait = Metrics.Timer(label: "increment_advisory_lock_wait_seconds", factory: factory)
        self.prunedLedgerRows = Counter(label: "increment_ledger_pruned_rows_total", factory: factory)
        self.deletedCounters = Counter(label: "increment_deleted_counters_total", factory: factory)
        self.idempotentReplays = Counter(label: "increment_idempotent_replays_total", factory: factory)
        self.idempotencyConflicts = Counter(label: "increment_idempotency_conflicts_total", factory: factory)
        self.prunedIdempotencyKeys = Counter(label: "increment_idempotency_keys_pruned_total", factory: factory)
        self.databaseWritable = Gauge(label: "increment_database_writable", factory: factory)
        self.databaseReachable = Gauge(label: "increment_database_reachable", factory: factory)
        self.ready = Gauge(label: "increment_ready", factory: factory)
        self.barrierTimeouts = Counter(label: "increment_barrier_timeouts_total", factory: factory)
        self.eventLoopAnswers = Counter(label: "increment_event_loop_answers_total", factory: factory)
        self.readCacheHits = Counter(label: "increment_read_cache_hits_total", factory: factory)
        self.readCacheMisses = Counter(label: "increment_read_cache_misses_total", factory: factory)
    }

    /// Brings the buffer gauges up to date (called before each scrape and after each flush).
    func observe(_ buffer: IncrementBuffer) {
        self.pendingKeys.record(buffer.pendingKeys)
        let age = buffer.oldestPendingSince.map { ContinuousClock.now - $0 } ?? .zero
        self.oldestPendingAge.record(age.seconds)
    }

    /// Brings the database gauges up to date (reachable 1 and writable 0 is a standby), and
    /// readiness: 1 when `/readyz` would answer `200`, given the reasons it would fail with.
    func observe(_ health: NodeHealth, unreadyReasons: [String]) {
        let role = health.databaseRole
        self.databaseReachable.record(role == .unreachable ? 0 : 1)
        self.databaseWritable.record(role == .writable ? 1 : 0)
        self.ready.record(unreadyReasons.isEmpty ? 1 : 0)
    }
}
