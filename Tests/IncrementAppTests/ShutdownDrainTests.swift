import Foundation
@testable import IncrementApp
import IncrementTesting
import NIOCore
import Prometheus
import ServiceLifecycle
import Testing

/// What a balancer meets while a node drains (SIGTERM), on real connections.
struct ShutdownDrainTests {
    /// A connection opened before the signal is still answered during the window, with
    /// `Connection: close`; an idle one is closed by the node only when the window is over.
    /// New connections: accepted (and told to close) by default; refused at once when the node
    /// is set to refuse them, so that nginx retries them on another node.
    @Test(arguments: [false, true])
    func aDrainingNodeServesItsOpenConnectionsForTheWindow(refusesNewConnections: Bool) async throws {
        let database = try await TestDatabase.create()
        let window = Duration.milliseconds(1500)
        let settings = try testSettings(database) {
            $0.flush.drainWindow = window
            $0.flush.refusesNewConnectionsWhileDraining = refusesNewConnections
        }
        let node = try NodeComponents(settings: settings, logger: appTestLogger, registry: PrometheusCollectorRegistry())
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let group = node.serviceGroup(settings: settings, shutdownSignals: []) { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        }
        try await withThrowingTaskGroup { tasks in
            tasks.addTask { try await group.run() }
            var portIterator = ports.makeAsyncIterator()
            let port = try #require(await portIterator.next())
            try await RawHTTPConnection.with(port: port) { used in
                try await RawHTTPConnection.with(port: port) { idle in
                    try await waitUntilReady(used)
                    let signalled = ContinuousClock.now
                    await group.triggerGracefulShutdown()
                    try await Task.sleep(for: .milliseconds(200))

                    if refusesNewConnections {
                        // The listener closes soon after the signal; on a loaded machine not
                        // always within the 200 ms above.
                        var refused = false
                        let deadline = ContinuousClock.now + .seconds(2)
                        while !refused && ContinuousClock.now < deadline {
                            do {
                                try await RawHTTPConnection.with(port: port) { _ in }
                                try await Task.sleep(for: .milliseconds(50))
                            } catch {
                                refused = true
                            }
                        }
                        #expect(refused, "new connections were still accepted 2 s after the signal")
                    } else {
                        let fresh = try await RawHTTPConnection.with(port: port) { try await $0.send("GET", "/healthz") }
                        #expect(fresh.status == 200)
                        #expect(fresh.headers["connection"] == "close")
                    }

                    let answer = try await used.send("POST", "/increment", body: #"{"key":"drained","value":1}"#)
                    #expect(answer.status == 202)
                    #expect(answer.headers["connection"] == "close")

                    await idle.waitUntilClosed()
                    let idleFor = ContinuousClock.now - signalled
                    #expect(idleFor >= window - .milliseconds(100), "closed \(idleFor) after the signal")
                    #expect(idleFor < window + .seconds(2), "closed \(idleFor) after the signal")
                }
            }
            try await tasks.next()
        }
        #expect(try await counters(in: database)["drained"] == 1)
    }

    private func waitUntilReady(_ connection: RawHTTPConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while try await connection.send("GET", "/readyz").status != 200 {
            guard ContinuousClock.now < deadline else { throw NodeNotReady() }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
