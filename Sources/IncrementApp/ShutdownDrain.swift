import ServiceLifecycle

/// The first thing a node does on SIGTERM: fail `/readyz` and answer every request with
/// `Connection: close` for ``FlushSettings/drainWindow``, while still serving. Balancers stop
/// sending and close their connections themselves; only then does the HTTP server stop accepting.
///
/// It must come after the application in the service group: services stop in reverse order.
struct ShutdownDrain: Service, CustomStringConvertible {
    let health: NodeHealth
    let openWaits: OpenCommitWaits
    let window: Duration

    var description: String { "ShutdownDrain(window: \(self.window))" }

    func run() async throws {
        // Throws only when cancelled, which ends the drain as well.
        try? await gracefulShutdown()
        self.health.beginShutdown()
        try? await Task.sleep(for: self.window)
        // The server now waits for its requests; open commit waits must not hold it up.
        self.openWaits.answerAllPending()
    }
}
