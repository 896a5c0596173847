/// How a node takes part in the cluster registry and in flush barriers.
public struct ClusterSettings: Sendable {
    /// The address other nodes and operators see for this node in `GET /cluster`.
    public var advertisedAddress: String
    /// Time between this node's heartbeats in the registry.
    public var heartbeatInterval: Duration
    /// A node not heard from for this long is shown as gone, and strong reads stop waiting for it.
    public var nodeGoneAfter: Duration
    /// A node not heard from for this long is removed from the registry.
    public var nodeRemovedAfter: Duration
    /// How often a node looks for new flush barriers, and a barrier's caller for confirmations.
    public var barrierPollInterval: Duration
    /// The longest a strong read or `POST /flush` waits for every live node to confirm.
    public var barrierTimeout: Duration

    /// Creates cluster settings. Their defaults are the settings catalogue's
    /// (``NodeSettings/defaults(database:)``).
    public init(
        advertisedAddress: String,
        heartbeatInterval: Duration,
        nodeGoneAfter: Duration,
        nodeRemovedAfter: Duration,
        barrierPollInterval: Duration,
        barrierTimeout: Duration
    ) {
        self.advertisedAddress = advertisedAddress
        self.heartbeatInterval = heartbeatInterval
        self.nodeGoneAfter = nodeGoneAfter
        self.nodeRemovedAfter = nodeRemovedAfter
        self.barrierPollInterval = barrierPollInterval
        self.barrierTimeout = barrierTimeout
    }
}
