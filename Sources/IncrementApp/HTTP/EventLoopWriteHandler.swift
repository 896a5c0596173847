import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers the plain `POST /increment` in the channel pipeline, where its bytes arrive, and
/// passes every other request on to Hummingbird's router untouched (see ``EventLoopWrites``).
///
/// A write answered here costs no task, no request context and no middleware chain; the answers
/// of one read burst go out in one flush. Requests on one connection are still answered in
/// order: while a request passed on is unanswered, the ones after it are passed on too.
final class EventLoopWriteHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Reading a request this handler answers; nothing passed on yet.
        case reading(head: HTTPRequest, body: ByteBuffer?, started: ContinuousClock.Instant)
        /// The current request goes to the router, to its end.
        case passing
    }

    private let writes: EventLoopWrites
    private var state = State.idle
    /// Requests passed on whose answer has not been written to its end.
    private var unansweredAtRouter = 0
    /// Answers written since the last flush.
    private var unflushed = false
    /// A quiesce (shutdown) that arrived while reading a request, given on once it is answered.
    private var heldQuiesce = false
    private var date = HTTPDateCache()

    init(writes: EventLoopWrites) {
        self.writes = writes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch (part, self.state) {
        case (.head(let head), .idle):
            if self.unansweredAtRouter == 0, self.writes.takes(head) {
                self.state = .reading(head: head, body: nil, started: .now)
            } else {
                self.pass(.head(head), context: context)
                self.state = .passing
            }

        case (.body(let bytes), .reading(let head, let body, let started)):
            var collected = bytes
            if var body {
                body.writeImmutableBuffer(bytes)
                collected = body
            }
            if collected.readableBytes > self.writes.maximumBodyBytes {
                // The router answers 413, as it does when the body arrives there.
                self.pass(.head(head), context: context)
                context.fireChannelRead(self.wrapInboundOut(.body(collected)))
                self.state = .passing
                self.releaseQuiesce(context: context)
            } else {
                self.state = .reading(head: head, body: collected, started: started)
            }

        case (.end(let trailers), .reading(let head, let body, let started)):
            self.state = .idle
            if let answer = self.writes.answer(body: body) {
                let response = self.writes.response(answer, to: head, date: self.date.now(), started: started)
                context.write(self.wrapOutboundOut(.head(response.head)), promise: nil)
                if let body = response.body {
                    context.write(self.wrapOutboundOut(.body(body)), promise: nil)
                }
                context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
                self.unflushed = true
            } else {
                self.pass(.head(head), context: context)
                if let body {
                    context.fireChannelRead(self.wrapInboundOut(.body(body)))
                }
                context.fireChannelRead(self.wrapInboundOut(.end(trailers)))
            }
            self.releaseQuiesce(context: context)

        case (.end, .passing):
            self.state = .idle
            context.fireChannelRead(data)

        default:
            // The rest of a request passed on (or parts out of order: the router reports them).
            context.fireChannelRead(data)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushAnswers(context: context)
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data), self.unansweredAtRouter > 0 {
            self.unansweredAtRouter -= 1
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, case .reading = self.state {
            // Hummingbird would close the connection as idle under a request read here.
            self.heldQuiesce = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func pass(_ head: HTTPRequestPart, context: ChannelHandlerContext) {
        self.unansweredAtRouter += 1
        context.fireChannelRead(self.wrapInboundOut(head))
    }

    private func flushAnswers(context: ChannelHandlerContext) {
        guard self.unflushed else { return }
        self.unflushed = false
        context.flush()
    }

    private func releaseQuiesce(context: ChannelHandlerContext) {
        guard self.heldQuiesce else { return }
        self.heldQuiesce = false
        // The answer is on its way before the connection may be closed.
        self.flushAnswers(context: context)
        context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
