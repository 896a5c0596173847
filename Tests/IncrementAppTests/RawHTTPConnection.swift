import Foundation
import NIOCore
import NIOPosix

/// One TCP connection speaking HTTP/1.1 by hand, for tests about connections themselves (which
/// a test client that pools or reconnects would hide).
final class RawHTTPConnection {
    struct Answer {
        /// The status line and header lines as sent.
        let head: String
        let status: Int
        /// Header names lowercased.
        let headers: [String: String]
        let body: String
    }

    struct ConnectionClosed: Error {}

    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var received = ByteBuffer()

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Connects to `127.0.0.1:port` and runs `body` with the connection, closing it after.
    static func with<Result>(
        port: Int,
        _ body: (RawHTTPConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(RawHTTPConnection(inbound: inbound, outbound: outbound))
        }
    }

    /// Sends one request and reads its answer (which must carry a `Content-Length`).
    func send(_ method: String, _ path: String, body: String = "") async throws -> Answer {
        var request = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        if !body.isEmpty {
            request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        try await self.outbound.write(ByteBuffer(string: request + "\r\n" + body))
        return try await self.readAnswer()
    }

    /// Sends `bytes` as they are (one request or several, pipelined) and reads `count` answers.
    func exchange(_ bytes: String, answers count: Int) async throws -> [Answer] {
        try await self.outbound.write(ByteBuffer(string: bytes))
        var answers: [Answer] = []
        for _ in 0..<count {
            answers.append(try await self.readAnswer())
        }
        return answers
    }

    /// Waits until the server closes the connection, reading (and dropping) anything it sends.
    func waitUntilClosed() async {
        while let part = try? await self.inbound.next() {
            _ = part
        }
    }

    private func readAnswer() async throws -> Answer {
        while true {
            let view = self.received.readableBytesView
            if let end = view.firstRange(of: Array("\r\n\r\n".utf8)) {
                let headText = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
                var lines = headText.split(separator: "\r\n").makeIterator()
                let statusLine = lines.next().map(String.init) ?? ""
                let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                var headers: [String: String] = [:]
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = headers["content-length"].flatMap { Int($0) } ?? 0
                let headLength = end.upperBound - view.startIndex
                if self.received.readableBytes >= headLength + length {
                    self.received.moveReaderIndex(forwardBy: headLength)
                    let body = self.received.readString(length: length) ?? ""
                    return Answer(head: headText, status: status, headers: headers, body: body)
                }
            }
            guard var more = try await self.inbound.next() else { throw ConnectionClosed() }
            self.received.writeBuffer(&more)
        }
    }
}
