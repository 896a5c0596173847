import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The HTTP server's listening channel, once it runs: what shutdown stops accepting on before
/// the server closes it.
///
/// Two things go wrong when a server simply closes its listener under load:
/// - A connection the kernel completed but the node has not accepted yet is reset by the close.
///   Its client has usually sent its request by then, so a balancer cannot tell it from a
///   request the node took and lost, and must answer `502` for a `POST` it will not replay.
/// - A connection accepted while the server closes its listener can be dropped before the server
///   takes it, and swift-nio traps on that ("Deinited NIOAsyncWriter without calling finish()",
///   swift-nio issue 2637): the node would die with its buffer unflushed.
///
/// So the node first makes the kernel stop completing new connections, accepts what the kernel
/// had already queued (until its queue is empty), stops reading the listener, and gives the
/// connections accepted a moment to reach the server before it closes the listener. On Linux two
/// socket options stop new connections, each where the other cannot:
/// - binding the listener to the loopback interface (unprivileged since Linux 5.7): an attempt
///   arriving over any other interface, as a balancer's does from another host or container,
///   finds no listener and is refused at once, which the balancer retries elsewhere;
/// - a socket filter on the listener, which drops every new attempt's first packet, loopback's
///   too (a client's retry a second later finds the listener closed and is refused). Some kernels
///   keep socket filters to privileged processes (seen: EPERM for a node running unprivileged).
/// Where neither applies, connections made in the last moment before the close are still reset.
final class ListeningChannel: Sendable {
    private let channel = Mutex<(any Channel)?>(nil)
    private let logger: Logger

    /// How long the connections accepted get to reach the server. Short: where the kernel does
    /// not let the node attach its filter, connections made meanwhile are reset at the close.
    static let handOverTime: Duration = .milliseconds(10)
    /// How long the node waits at most for the kernel's queue of completed connections to empty.
    static let queueDrainLimit: Duration = .seconds(1)

    init(logger: Logger) {
        self.logger = logger
    }

    /// Records the server's listening channel.
    func set(_ channel: any Channel) {
        self.channel.withLock { $0 = channel }
    }

    /// Stops accepting new connections; returns once those already made have reached the server.
    func stopAccepting() async {
        guard let channel = self.channel.withLock({ $0 }) else { return }
        let started = ContinuousClock.now
        var loopbackOnlyError: (any Error)?
        do {
            try await channel.refuseConnectionsArrivingOffLoopback()
        } catch {
            loopbackOnlyError = error
        }
        var filterError: (any Error)?
        do {
            try await channel.dropIncomingConnections()
        } catch {
            // Seen where the kernel keeps socket filters to privileged processes (EPERM).
            filterError = error
        }
        switch (loopbackOnlyError, filterError) {
        case let (loopbackOnlyError?, filterError?):
            self.logger.notice(
                "the kernel keeps completing connections until the listener closes, which resets those not yet accepted",
                metadata: ["listener.loopbackOnly.error": "\(loopbackOnlyError)", "listener.filter.error": "\(filterError)"]
            )
        case let (nil, filterError?):
            // Balancers elsewhere are refused; only a local client can still lose a connection.
            self.logger.info(
                "the kernel keeps completing connections over loopback until the listener closes",
                metadata: ["listener.filter.error": "\(filterError)"]
            )
        case (_, nil):
            break
        }
        let queued = await channel.completedConnectionsQueued()
        var left = queued
        while let count = left, count > 0, ContinuousClock.now - started < Self.queueDrainLimit {
            try? await Task.sleep(for: .milliseconds(1))
            left = await channel.completedConnectionsQueued()
        }
        try? await channel.setOption(ChannelOptions.autoRead, value: false).get()
        try? await Task.sleep(for: Self.handOverTime)
        self.logger.info(
            "stopped accepting connections",
            metadata: [
                "listener.queued": "\(queued.map(String.init) ?? "unknown")",
                "listener.left": "\(left.map(String.init) ?? "unknown")",
                "listener.took": "\(ContinuousClock.now - started)",
            ]
        )
    }
}

extension Channel {
    /// Binds this listening socket to the loopback interface: a new connection attempt arriving
    /// over any other interface finds no listener and is refused. Connections already queued stay
    /// acceptable, and so do handshakes the kernel had begun.
    ///
    /// Linux only (`SO_BINDTOIFINDEX`; a process needs no privilege for it since Linux 5.7, where
    /// the socket is not bound to an interface yet); elsewhere the listener is left as it is.
    fileprivate func refuseConnectionsArrivingOffLoopback() async throws {
        #if os(Linux)
        guard let provider = self as? any SocketOptionProvider else { return }
        let loopback = if_nametoindex(LoopbackInterface.name)
        guard loopback != 0 else { throw IOError(errnoCode: errno, reason: "if_nametoindex(\"\(LoopbackInterface.name)\")") }
        try await provider.unsafeSetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(LoopbackInterface.bindOption),
            value: CInt(loopback)
        ).get()
        #endif
    }

    /// Makes the kernel drop every new connection attempt on this listening socket, so that none
    /// completes once the node is about to close it. Connections already queued stay acceptable.
    ///
    /// Linux only (`SO_ATTACH_FILTER` with a classic BPF program of one instruction: return 0,
    /// "keep no byte"); elsewhere the listener is left as it is.
    fileprivate func dropIncomingConnections() async throws {
        #if os(Linux)
        guard let provider = self as? any SocketOptionProvider else { return }
        let instructions = UnsafeMutablePointer<SocketFilterInstruction>.allocate(capacity: 1)
        defer { instructions.deallocate() }
        instructions.initialize(to: .returnNothing)
        let program = SocketFilterProgram(length: 1, instructions: instructions)
        // The kernel copies the program during the call; the future completes after it.
        try await provider.unsafeSetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET),
            name: SocketOptionName(SocketFilterProgram.attachOption),
            value: program
        ).get()
        #endif
    }

    /// How many connections the kernel has completed on this listening socket that the node has
    /// not accepted yet (Linux reports it in `TCP_INFO` of a listener); nil where unknown.
    fileprivate func completedConnectionsQueued() async -> UInt32? {
        #if os(Linux)
        guard let provider = self as? any SocketOptionProvider else { return nil }
        return try? await provider.getTCPInfo().get().tcpi_unacked
        #else
        return nil
        #endif
    }
}

#if os(Linux)
/// `struct sock_filter` of <linux/filter.h>: one classic BPF instruction.
struct SocketFilterInstruction {
    var code: UInt16
    var jumpIfTrue: UInt8
    var jumpIfFalse: UInt8
    var constant: UInt32

    /// `BPF_RET | BPF_K` with 0: the packet is dropped.
    static let returnNothing = SocketFilterInstruction(code: 0x06, jumpIfTrue: 0, jumpIfFalse: 0, constant: 0)
}

/// `struct sock_fprog` of <linux/filter.h>, the value of `SO_ATTACH_FILTER`.
struct SocketFilterProgram: @unchecked Sendable {  // The pointer is read once, by setsockopt.
    var length: UInt16
    var instructions: UnsafeMutablePointer<SocketFilterInstruction>

    /// `SO_ATTACH_FILTER` of <asm-generic/socket.h>.
    static let attachOption: CInt = 26
}

/// The interface a stopping listener keeps: connections over it are local, never a balancer's
/// on another host or container.
enum LoopbackInterface {
    static let name = "lo"
    /// `SO_BINDTOIFINDEX` of <asm-generic/socket.h> (Linux 5.0).
    static let bindOption: CInt = 62
}
#endif
