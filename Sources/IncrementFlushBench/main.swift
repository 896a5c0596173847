// Concurrent flushers against one PostgreSQL, no HTTP: K store clients, each flushing batches of
// B distinct keys as fast as it can, over the same keys (overlapping) or each over its own
// (disjoint), with the cluster-shard locks shared or exclusive. Prints committed keys/s, flush
// latency, lock wait and deadlocks per combination, as a Markdown table.
//
//   increment-flush-bench DATABASE_URL [SECONDS] [FLUSHERS] [KEYS]
//   FLUSHERS and KEYS are comma-separated lists (defaults 1,2,4,8 and 1000,10000).
//
// With --one-flush N instead, times one flush of N distinct keys against the bare upsert of the
// same N keys, new keys and then existing ones, side by side:
//
//   increment-flush-bench DATABASE_URL --one-flush 1000000
import Foundation
import IncrementCore
import IncrementStore
import Logging
import PostgresNIO

let arguments = CommandLine.arguments
guard arguments.count >= 2, let url = URL(string: arguments[1]), let host = url.host else {
    print("usage: increment-flush-bench DATABASE_URL [SECONDS] [FLUSHERS] [KEYS]")
    exit(2)
}
let oneFlushKeys = arguments.count > 3 && arguments[2] == "--one-flush" ? Int(arguments[3]) : nil
let seconds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5
let flusherCounts = (arguments.count > 3 ? arguments[3] : "1,2,4,8").split(separator: ",").compactMap { Int($0) }
let keyCounts = (arguments.count > 4 ? arguments[4] : "1000,10000").split(separator: ",").compactMap { Int($0) }

let logger: Logger = {
    var logger = Logger(label: "flush-bench")
    logger.logLevel = .error
    return logger
}()
let configuration = PostgresClient.Configuration(
    host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: url.path.isEmpty ? nil : String(url.path.dropFirst()), tls: .disable)

/// What one combination measured.
struct Measurement {
    var keysPerSecond: Double
    var flushesPerSecond: Double
    var p50: Duration
    var p99: Duration
    var meanLockWait: Duration
    var deadlocks: Int
    var failures: Int
}

func deadlockCount(_ client: PostgresClient) async throws -> Int {
    let rows = try await client.query(
        "SELECT deadlocks::bigint FROM pg_stat_database WHERE datname = current_database()", logger: logger)
    for try await value in rows.decode(Int64.self) { return Int(value) }
    return 0
}

func measure(
    client: PostgresClient, flushers: Int, keys: Int, overlapping: Bool, mode: ShardLockMode
) async throws -> Measurement {
    let store = CounterStore(client: client, logger: logger, limits: FlushLimits(lockMode: mode))
    let shardMap = ClusterShardMap(shardCount: 64)
    let deadlocksBefore = try await deadlockCount(client)
    let deadline = ContinuousClock.now + .seconds(seconds)
    let started = ContinuousClock.now
    let results = try await withThrowingTaskGroup(of: ([Duration], Duration, Int, Int).self) { group in
        for flusher in 0..<flushers {
            group.addTask {
                let node = UUID().uuidString.lowercased()
                try await store.register(nodeID: node)
                let base = overlapping ? 0 : flusher * keys
                let deltas = Dictionary(uniqueKeysWithValues: (0..<keys).map { (CounterKey(trusted: "bench-\(base + $0)"), Int64(1)) })
                var latencies: [Duration] = []
                var lockWait = Duration.zero
                var committed = 0
                var failures = 0
                var sequence: Int64 = 0
                while ContinuousClock.now < deadline {
                    sequence += 1
                    let batch = FlushBatch(id: BatchID(nodeID: node, sequence: sequence), deltas: deltas, shardMap: shardMap)
                    let flushStarted = ContinuousClock.now
                    do {
                        let result = try await store.apply(batch)
                        latencies.append(.now - flushStarted)
                        lockWait += result.lockWait
                        committed += keys
                    } catch {
                        failures += 1
                    }
                }
                return (latencies, lockWait, committed, failures)
            }
        }
        var all: [([Duration], Duration, Int, Int)] = []
        for try await result in group { all.append(result) }
        return all
    }
    let elapsed = (ContinuousClock.now - started).seconds
    let latencies = results.flatMap(\.0).sorted()
    let flushes = max(latencies.count, 1)
    return Measurement(
        keysPerSecond: Double(results.map(\.2).reduce(0, +)) / elapsed,
        flushesPerSecond: Double(latencies.count) / elapsed,
        p50: latencies.isEmpty ? .zero : latencies[latencies.count / 2],
        p99: latencies.isEmpty ? .zero : latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
        meanLockWait: results.map(\.1).reduce(.zero, +) / flushes,
        deadlocks: try await deadlockCount(client) - deadlocksBefore,
        failures: results.map(\.3).reduce(0, +)
    )
}

func milliseconds(_ duration: Duration) -> String {
    String(format: "%.1f", duration.seconds * 1000)
}

let client = PostgresClient(configuration: {
    var configuration = configuration
    configuration.options.maximumConnections = (flusherCounts.max() ?? 1) + 2
    return configuration
}(), backgroundLogger: logger)
/// One flush of `keys` distinct keys as the node makes it (buffer drain, batch, the flush
/// transaction) beside the bare statements PostgreSQL would run for the same keys.
func measureOneFlush(client: PostgresClient, keys: Int) async throws {
    let store = CounterStore(client: client, logger: logger)
    let node = UUID().uuidString.lowercased()
    try await store.register(nodeID: node)
    let run = UUID().uuidString.prefix(8)
    var sequence: Int64 = 0
    func timed(_ work: () async throws -> Void) async throws -> Duration {
        let started = ContinuousClock.now
        try await work()
        return .now - started
    }
    func flush(prefix: String) async throws -> (drain: Duration, flush: Duration) {
        let buffer = IncrementBuffer(shardCount: 16, maximumPendingKeys: keys)
        for index in 0..<keys {
            try buffer.add(Increment(key: CounterKey(trusted: "\(prefix)-\(index)"), delta: 1))
        }
        sequence += 1
        var batch: FlushBatch?
        let drain = try await timed {
            batch = FlushBatch(
                id: BatchID(nodeID: node, sequence: sequence), deltas: buffer.drain().deltas,
                shardMap: ClusterShardMap(shardCount: 64))
        }
        guard let batch else { return (drain, .zero) }
        return (drain, try await timed { _ = try await store.apply(batch) })
    }
    func bareUnnest(prefix: String) async throws -> Duration {
        let names = (0..<keys).map { "\(prefix)-\($0)" }
        let deltas = [Int64](repeating: 1, count: keys)
        return try await timed {
            try await client.query(
                """
                INSERT INTO counters AS c (key, value, updated_at)
                SELECT key, delta, now() FROM unnest(\(names)::text[], \(deltas)::bigint[]) AS u(key, delta)
                ON CONFLICT (key) DO UPDATE SET value = c.value + EXCLUDED.value, updated_at = EXCLUDED.updated_at
                """, logger: logger)
        }
    }
    func bareSeries(prefix: String) async throws -> Duration {
        try await timed {
            try await client.query(
                """
                INSERT INTO counters AS c (key, value, updated_at)
                SELECT \(prefix) || '-' || g, 1, now() FROM generate_series(0, \(keys - 1)) AS g
                ON CONFLICT (key) DO UPDATE SET value = c.value + EXCLUDED.value, updated_at = EXCLUDED.updated_at
                """, logger: logger)
        }
    }
    func seconds(_ duration: Duration) -> String { String(format: "%.2f", duration.seconds) }
    print("| \(keys) keys in one statement | new keys, s | existing keys, s | flush ÷ this (new / existing) |")
    print("| --- | ---: | ---: | ---: |")
    // Each kind gets its own keys: first inserted, then updated.
    let node1 = try await flush(prefix: "one-flush-\(run)-node")
    let node2 = try await flush(prefix: "one-flush-\(run)-node")
    let unnest1 = try await bareUnnest(prefix: "one-flush-\(run)-unnest")
    let unnest2 = try await bareUnnest(prefix: "one-flush-\(run)-unnest")
    let series1 = try await bareSeries(prefix: "one-flush-\(run)-series")
    let series2 = try await bareSeries(prefix: "one-flush-\(run)-series")
    func ratio(_ a: Duration, _ b: Duration) -> String { String(format: "%.2f", a.seconds / b.seconds) }
    print("| the node's flush (transaction: locks, ledger, upsert) | \(seconds(node1.flush)) | \(seconds(node2.flush)) | 1.00 / 1.00 |")
    print("| the node's drain + batch build, before it | \(seconds(node1.drain)) | \(seconds(node2.drain)) | |")
    print("| bare `INSERT … SELECT FROM unnest($1, $2) ON CONFLICT`, same binds | \(seconds(unnest1)) | \(seconds(unnest2)) | \(ratio(node1.flush, unnest1)) / \(ratio(node2.flush, unnest2)) |")
    print("| bare `INSERT … SELECT FROM generate_series ON CONFLICT` (nothing sent) | \(seconds(series1)) | \(seconds(series2)) | \(ratio(node1.flush, series1)) / \(ratio(node2.flush, series2)) |")
}

let run = Task {
    _ = try await CounterStore(client: client, logger: logger).migrate()
    if let oneFlushKeys {
        try await measureOneFlush(client: client, keys: oneFlushKeys)
        return
    }
    print("| keys per flush | key sets | flushers | lock mode | committed keys/s | flushes/s | p50 ms | p99 ms | mean lock wait ms | deadlocks | failed |")
    print("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for keys in keyCounts {
        for overlapping in [true, false] {
            for flushers in flusherCounts {
                for mode in [ShardLockMode.exclusive, .shared] {
                    let m = try await measure(client: client, flushers: flushers, keys: keys, overlapping: overlapping, mode: mode)
                    print(
                        "| \(keys) | \(overlapping ? "overlapping" : "disjoint") | \(flushers) | \(mode.rawValue) | "
                            + "\(Int(m.keysPerSecond)) | \(String(format: "%.1f", m.flushesPerSecond)) | \(milliseconds(m.p50)) | "
                            + "\(milliseconds(m.p99)) | \(milliseconds(m.meanLockWait)) | \(m.deadlocks) | \(m.failures) |")
                }
            }
        }
    }
}
await withTaskGroup(of: Void.self) { group in
    group.addTask { await client.run() }
    do {
        try await run.value
    } catch {
        print("failed: \(error)")
    }
    group.cancelAll()
}
