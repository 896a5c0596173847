#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `increment-floor PORT [--parse]`: answers every request `202` (keep-alive) from the channel
/// handler; with `--parse`, first reads `key` and `value` from a `{"key":…,"value":…}` body and
/// adds the value to one of 16 mutex-guarded dictionaries, as a node's buffer does.
let arguments = CommandLine.arguments
guard arguments.count >= 2, let port = Int(arguments[1]) else {
    print("usage: increment-floor PORT [--parse]")
    exit(2)
}
let parses = arguments.contains("--parse")

final class Shards: Sendable {
    final class Shard: Sendable {
        let totals = Mutex<[String: Int64]>([:])
    }

    private let shards = (0..<16).map { _ in Shard() }

    func add(_ value: Int64, to key: String) {
        var hasher = Hasher()
        hasher.combine(key)
        self.shards[Int(UInt(bitPattern: hasher.finalize()) % 16)].totals.withLock { $0[key, default: 0] &+= value }
    }
}

/// The `key` and `value` of a flat JSON object, found by scanning: enough for the load tools' bodies.
func keyAndValue(of body: ByteBuffer) -> (String, Int64)? {
    body.withUnsafeReadableBytes { bytes -> (String, Int64)? in
        func position(after marker: StaticString) -> Int? {
            let pattern = UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount)
            guard bytes.count >= pattern.count else { return nil }
            for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
                if (0..<pattern.count).allSatisfy({ bytes[start + $0] == pattern[$0] }) { return start + pattern.count }
            }
            return nil
        }
        guard let keyStart = position(after: #""key":""#), let valueStart = position(after: #""value":"#) else { return nil }
        var keyEnd = keyStart
        while keyEnd < bytes.count, bytes[keyEnd] != UInt8(ascii: "\"") { keyEnd += 1 }
        var index = valueStart
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value: Int64 = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
            value = value &* 10 &+ Int64(bytes[index] - UInt8(ascii: "0"))
            index += 1
        }
        let key = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<keyEnd]), as: UTF8.self)
        return (key, negative ? -value : value)
    }
}

final class AcceptHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let shards: Shards?
    private var keepAlive = true
    private var body: ByteBuffer?
    private var unflushed = false

    init(shards: Shards?) {
        self.shards = shards
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.keepAlive = head.isKeepAlive
            self.body = nil
        case .body(var bytes):
            if self.body == nil { self.body = bytes } else { self.body?.writeBuffer(&bytes) }
        case .end:
            if let shards = self.shards, let body = self.body, let (key, value) = keyAndValue(of: body) {
                shards.add(value, to: key)
            }
            var headers = HTTPHeaders([("Content-Length", "0")])
            if self.keepAlive { headers.add(name: "Connection", value: "keep-alive") }
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .accepted, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
            self.unflushed = true
            if !self.keepAlive {
                context.flush()
                context.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.unflushed {
            self.unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}

let shards = parses ? Shards() : nil
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(AcceptHandler(shards: shards))
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("increment-floor listening on 127.0.0.1:\(port)\(parses ? ", parsing" : "")")
try channel.closeFuture.wait()
