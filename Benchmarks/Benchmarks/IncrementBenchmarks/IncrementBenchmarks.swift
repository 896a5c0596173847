import Benchmark
import Foundation
import IncrementCore
import IncrementStore

/// The hot path of `POST /increment` without the network: decode the body, add to the buffer.
/// Foundation's JSONDecoder decodes the same body side by side, for scale.
let benchmarks: @Sendable () -> Void = {
    let body = Array(#"{"key":"page:home/visits","value":1}"#.utf8)
    let configuration = Benchmark.Configuration(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(2))

    Benchmark("decode increment (strict decoder)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try IncrementBodyDecoder.decodeIncrement(from: body))
        }
    }

    struct Body: Decodable {
        let key: String
        let value: Int64
    }
    Benchmark("decode increment (Foundation JSONDecoder)", configuration: configuration) { benchmark in
        let decoder = JSONDecoder()
        let data = Data(body)
        for _ in benchmark.scaledIterations {
            blackHole(try decoder.decode(Body.self, from: data))
        }
    }

    // Built once, outside the measurement; a sample is 1,000 adds, reported per add.
    let buffer = IncrementBuffer(shardCount: 16, maximumPendingKeys: 1_000_000)
    let increments = (0..<10_000).map { try! Increment(key: "key-\($0)", delta: 1) }
    var perThousand = configuration
    perThousand.scalingFactor = .kilo
    Benchmark("buffer add over 10,000 keys (time per add)", configuration: perThousand) { benchmark in
        for iteration in benchmark.scaledIterations {
            try buffer.add(increments[iteration % increments.count])
        }
    }

    // POST /increments' buffering: a batch of 1,000 keys into a buffer already holding 100,000
    // (every shard locked at once, all or nothing). A copy of a shard's dictionary would show here.
    let crowded = IncrementBuffer(shardCount: 16, maximumPendingKeys: 10_000_000)
    for index in 0..<100_000 { try! crowded.add(try! Increment(key: "pending-\(index)", delta: 1)) }  // Below the cap.
    let batches = (0..<2_000).map { batch in (0..<1_000).map { try! Increment(key: "batch-\(batch)-\($0)", delta: 1) } }
    var perBatch = configuration
    perBatch.scalingFactor = .one
    perBatch.maxIterations = batches.count
    Benchmark("buffer add, 1,000-item batch into 100,000 pending keys (time per batch)", configuration: perBatch) { benchmark in
        for iteration in benchmark.scaledIterations {
            try crowded.add(batches[iteration % batches.count])
        }
    }

    // A flush's work before the network, at four batch sizes: swap every shard out of the buffer,
    // sort and de-duplicate into a batch, and encode the single upsert's binds. Each sample drains
    // a buffer filled beforehand, outside the measurement.
    let shardMap = ClusterShardMap(shardCount: 64)
    for count in [100, 1_000, 10_000, 100_000] {
        let keyed = (0..<count).map { try! Increment(key: "key-\($0)", delta: 1) }  // Valid literal keys.
        let samples = count >= 100_000 ? 20 : 100
        let filled = FilledBuffers(count: samples + 1, increments: keyed)
        var flushConfiguration = Benchmark.Configuration(metrics: [.wallClock, .mallocCountTotal], warmupIterations: 0)
        flushConfiguration.maxIterations = samples
        flushConfiguration.maxDuration = .seconds(30)
        Benchmark("drain + batch + upsert binds, \(count) keys", configuration: flushConfiguration) { benchmark in
            let pending = filled.next().drain()
            let batch = FlushBatch(
                id: BatchID(nodeID: "00000000-0000-0000-0000-000000000001", sequence: 1),
                deltas: pending.deltas, shardMap: shardMap)
            blackHole(CounterStore.upsert(batch, wanted: [], retention: .seconds(86_400)))
        }
    }

    // POST /increments with 1,000 items, reported per item.
    let batchBody = Array(
        ("{\"increments\":[" + (0..<1_000).map { #"{"key":"page:\#($0)","value":1}"# }.joined(separator: ",") + "]}").utf8)
    var perItem = configuration
    perItem.scalingFactor = .one
    Benchmark("decode /increments, 1,000 items (time per batch)", configuration: perItem) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try IncrementBodyDecoder.decodeBatch(from: batchBody, maximumItems: 1_000))
        }
    }
}

/// Buffers filled before a benchmark runs, handed out one per sample.
final class FilledBuffers: @unchecked Sendable {
    private var buffers: [IncrementBuffer]

    init(count: Int, increments: [Increment]) {
        self.buffers = (0..<count).map { _ in
            let buffer = IncrementBuffer(shardCount: 16, maximumPendingKeys: 1_000_000)
            for increment in increments { try! buffer.add(increment) }  // Far below the cap: cannot fail.
            return buffer
        }
    }

    /// The next filled buffer; the benchmark runs its samples one at a time.
    func next() -> IncrementBuffer {
        self.buffers.removeLast()
    }
}
