import NIOCore
import Synchronization

/// The HTTP server's listening channel, once it runs: what shutdown stops accepting on before
/// the server closes it.
///
/// A connection accepted while the server closes its listener can be dropped before the server
/// takes it, and swift-nio traps on that ("Deinited NIOAsyncWriter without calling finish()",
/// swift-nio issue 2637): the node would die with its buffer unflushed. Stopping reads on the
/// listener first, then giving the connections already accepted a moment to reach the server,
/// closes that window. Connections made meanwhile wait in the kernel's queue and are reset when
/// the listener closes: the balancer sees a failed connection, never a half-served request it
/// was answered for.
final class ListeningChannel: Sendable {
    private let channel = Mutex<(any Channel)?>(nil)

    /// How long the connections already accepted get to reach the server.
    static let handOverTime: Duration = .milliseconds(10)

    /// Records the server's listening channel.
    func set(_ channel: any Channel) {
        self.channel.withLock { $0 = channel }
    }

    /// Stops accepting new connections, then waits ``handOverTime``.
    func stopAccepting() async {
        guard let channel = self.channel.withLock({ $0 }) else { return }
        try? await channel.setOption(ChannelOptions.autoRead, value: false)
        try? await Task.sleep(for: Self.handOverTime)
    }
}
