@testable import IncrementApp
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if os(Linux)
import Glibc

/// What a stopping node's listener does to connections, on a real socket.
struct ListeningChannelTests {
    /// A connection the kernel has queued is still accepted; once the node stops accepting, a new
    /// attempt is left unanswered (never completed, then reset after its request as a close would
    /// do); once the listener is closed, an attempt is refused, which a balancer retries elsewhere.
    @Test(.enabled(if: Self.socketFiltersAllowed, "this kernel keeps socket filters to privileged processes"))
    func aStoppedListenerAcceptsWhatWasQueuedAndCompletesNothingNew() async throws {
        let accepted = Mutex(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { _ in
                accepted.withLock { $0 += 1 }
                return MultiThreadedEventLoopGroup.singleton.any().makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let address = try #require(server.localAddress)

        // Completed by the kernel, not yet accepted by the server (it is not reading).
        let queued = try await Self.connect(to: address)
        #expect(accepted.withLock { $0 } == 0)
        try await server.setOption(ChannelOptions.autoRead, value: true).get()

        let listener = ListeningChannel(logger: Logger(label: "test"))
        listener.set(server)
        await listener.stopAccepting()
        #expect(accepted.withLock { $0 } == 1, "the queued connection was not accepted")

        do {
            let late = try await Self.connect(to: address, timeout: .milliseconds(300))
            try? await late.close()
            Issue.record("a connection was completed after the node stopped accepting")
        } catch ChannelError.connectTimeout {
            // The attempt got no answer: what the node wants.
        }

        try await server.close()
        do {
            let afterClose = try await Self.connect(to: address, timeout: .seconds(5))
            try? await afterClose.close()
            Issue.record("a connection was completed after the listener closed")
        } catch let error as IOError {
            #expect(error.errnoCode == ECONNREFUSED)
        }
        #expect(accepted.withLock { $0 } == 1)
        try await queued.close()
    }

    /// A stopped listener keeps only the loopback interface, so that a balancer's new connection
    /// from another host or container is refused at once (the fault suite's scale-in case sees
    /// the refusal from another network namespace); connections over loopback still reach it.
    @Test func aStoppedListenerKeepsOnlyTheLoopbackInterface() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "0.0.0.0", port: 0)
            .get()
        let provider = try #require(server as? any SocketOptionProvider)
        let interface = { () async throws -> CInt in
            try await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(LoopbackInterface.bindOption)
            ).get()
        }
        #expect(try await interface() == 0, "a running listener takes connections from every interface")

        let listener = ListeningChannel(logger: Logger(label: "test"))
        listener.set(server)
        await listener.stopAccepting()
        #expect(try await interface() == CInt(if_nametoindex(LoopbackInterface.name)))
        try await server.close()
    }

    /// Whether this process may attach a socket filter: some kernels refuse it without privileges
    /// (EPERM), and the node then closes its listener as before.
    static let socketFiltersAllowed: Bool = {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        var dropAll = SocketFilterInstruction.returnNothing
        return withUnsafeMutablePointer(to: &dropAll) { instruction in
            var program = SocketFilterProgram(length: 1, instructions: instruction)
            return setsockopt(
                probe, SOL_SOCKET, SocketFilterProgram.attachOption, &program,
                socklen_t(MemoryLayout<SocketFilterProgram>.size)) == 0
        }
    }()

    private static func connect(to address: SocketAddress, timeout: TimeAmount = .seconds(5)) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(to: address)
            .get()
    }
}
#endif
