import Foundation
import IncrementCore
import IncrementStore
import Synchronization

/// The registry's figures over the last five minutes, sampled by this node, for the status
/// page's charts: any node answers with the whole cluster's history, since every node's
/// heartbeat reaches the registry.
public final class ClusterHistory: Sendable {
    /// One node's figures in one sample.
    struct NodeSample: Sendable, Encodable {
        let address: String
        let requestsPerSecond: Double
        let incrementsPerSecond: Double
        let pendingKeys: Int64
        let flushSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case address
            case requestsPerSecond = "requests_per_second"
            case incrementsPerSecond = "increments_per_second"
            case pendingKeys = "pending_keys"
            case flushSeconds = "flush_seconds"
        }
    }

    /// The live nodes at one moment.
    struct Sample: Sendable, Encodable {
        /// Seconds since 1970.
        let at: Double
        let nodes: [NodeSample]
    }

    /// Time between samples.
    let interval: Duration
    /// The samples kept: five minutes' worth.
    let capacity: Int
    private let samples = Mutex<[Sample]>([])

    public init(interval: Duration = .seconds(2), span: Duration = .seconds(300)) {
        self.interval = interval
        self.capacity = max(Int(span / interval), 1)
    }

    /// Adds a sample of the nodes heard from within `liveWithin`; the oldest goes past capacity.
    func record(_ nodes: [RegisteredNode], liveWithin: Duration, at time: Date = Date()) {
        let live = nodes.filter { $0.silentFor <= liveWithin.seconds }.map { node in
            NodeSample(
                address: node.address, requestsPerSecond: node.requestsPerSecond, incrementsPerSecond: node.incrementsPerSecond,
                pendingKeys: node.pendingKeys, flushSeconds: node.flushSeconds)
        }
        let sample = Sample(at: time.timeIntervalSince1970, nodes: live)
        self.samples.withLock { samples in
            samples.append(sample)
            if samples.count > self.capacity { samples.removeFirst(samples.count - self.capacity) }
        }
    }

    /// The samples kept, oldest first.
    var recent: [Sample] { self.samples.withLock { $0 } }
}
