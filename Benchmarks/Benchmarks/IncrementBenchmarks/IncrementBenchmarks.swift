import Benchmark
import Foundation
import IncrementCore

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
}
