import ServiceLifecycle

/// The first thing a node does on SIGTERM: fail `/readyz` and answer every request with
/// `Connection: close` for ``FlushSettings/drainWindow``. Balancers stop sending and close their
/// connections themselves before the node closes any.
///
/// By default the node keeps accepting during the window and only then stops the HTTP server.
/// With ``FlushSettings/refusesNewConnectionsWhileDraining`` the server stops accepting at once
/// and each open connection is held open for the window by ``QuiesceDelayHandler``.
///
/// Last, it stops reading the listener (``ListeningChannel``) so that no connection is accepted
/// while the server closes it.
///
/// It must come after the application in the service group: services stop in reverse order.
struct ShutdownDrain: Service, CustomStringConvertible {
    let health: NodeHealth
    let openWaits: OpenCommitWaits
    let window: Duration
    let refusesNewConnections: Bool
    let listener: ListeningChannel

    var description: String { "ShutdownDrain(window: \(self.window), refusesNewConnections: \(self.refusesNewConnections))" }

    func run() async throws {
        // Throws only when cancelled, which ends the drain as well.
        try? await gracefulShutdown()
        self.health.beginShutdown()
        if !self.refusesNewConnections {
            try? await Task.sleep(for: self.window)
        }
        // The server closes its listener once this returns.
        await self.listener.stopAccepting()
        // The server now waits for its requests; open commit waits must not hold it up.
        self.openWaits.answerAllPending()
    }
}
