import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers the plain `POST /increment` and `GET /counters/{key}` in the channel pipeline, where
/// their bytes arrive, and passes every other request on to Hummingbird's router untouched (see
/// ``EventLoopRoutes``).
///
/// Such a request costs no task, no request context and no middleware chain; the answers of one
/// read burst go out in one flush. Requests on one connection are still answered in order:
/// while a request passed on is unanswered, the ones after it are passed on too, and while a
/// read waits for the database, what arrives after it waits (past ``mostHeldParts``, the socket
/// is not read). A read the node's cache can answer is answered at once, as a write is.
final class EventLoopHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Reading a request this handler answers; nothing passed on yet.
        case reading(head: HTTPRequest, route: EventLoopRoutes.Route, body: ByteBuffer?, started: ContinuousClock.Instant)
        /// A read of this handler's is waiting for the database.
        case waitingForRead
        /// The current request goes to the router, to its end.
        case passing
    }

    private let routes: EventLoopRoutes
    private var state = State.idle
    /// Requests passed on whose answer has not been written to its end.
    private var unansweredAtRouter = 0
    /// Answers written since the last flush.
    private var unflushed = false
    /// A quiesce (shutdown) that arrived during a request of this handler's, given on after it.
    private var heldQuiesce = false
    /// What arrived while a read waited, handled once it is answered.
    private var heldParts: [HTTPRequestPart] = []
    /// A read of the socket asked for while a read waited.
    private var heldSocketRead = false
    private var date = HTTPDateCache()

    init(routes: EventLoopRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.handle(self.unwrapInboundIn(data), context: context)
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (part, self.state) {
        case (_, .waitingForRead):
            self.heldParts.append(part)

        case (.head(let head), .idle):
            if self.unansweredAtRouter == 0, let route = self.routes.route(for: head) {
                self.state = .reading(head: head, route: route, body: nil, started: .now)
            } else {
                self.pass(head, context: context)
                self.state = .passing
            }

        case (.body(let bytes), .reading(let head, let route, let body, let started)):
            var collected = bytes
            if var body {
                body.writeImmutableBuffer(bytes)
                collected = body
            }
            if collected.readableBytes > self.routes.maximumBodyBytes {
                // The router answers 413, as it does when the body arrives there.
                self.pass(head, context: context)
                context.fireChannelRead(self.wrapInboundOut(.body(collected)))
                self.state = .passing
                self.releaseQuiesce(context: context)
            } else {
                self.state = .reading(head: head, route: route, body: collected, started: started)
            }

        case (.end(let trailers), .reading(let head, let route, let body, let started)):
            switch route {
            case .write:
                self.state = .idle
                if let answer = self.routes.write(body: body) {
                    self.answer(answer, route: route, to: head, started: started, context: context)
                } else {
                    self.pass(head, context: context)
                    if let body {
                        context.fireChannelRead(self.wrapInboundOut(.body(body)))
                    }
                    context.fireChannelRead(self.wrapInboundOut(.end(trailers)))
                }
                self.releaseQuiesce(context: context)
            case .read(let key):
                if let answer = self.routes.cachedRead(key) {
                    self.state = .idle
                    self.answer(answer, route: route, to: head, started: started, context: context)
                    self.releaseQuiesce(context: context)
                    return
                }
                self.state = .waitingForRead
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let eventLoop = context.eventLoop
                self.routes.read(key) { answer in
                    eventLoop.execute {
                        let (handler, context) = loopBound.value
                        handler.readAnswered(answer, route: route, to: head, started: started, context: context)
                    }
                }
            }

        case (.end, .passing):
            self.state = .idle
            context.fireChannelRead(self.wrapInboundOut(part))

        default:
            // The rest of a request passed on (or parts out of order: the router reports them).
            context.fireChannelRead(self.wrapInboundOut(part))
        }
    }

    private func readAnswered(
        _ answer: EventLoopRoutes.Answer,
        route: EventLoopRoutes.Route,
        to head: HTTPRequest,
        started: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        guard case .waitingForRead = self.state else { return }
        self.state = .idle
        self.answer(answer, route: route, to: head, started: started, context: context)
        self.releaseQuiesce(context: context)
        // What arrived meanwhile, in order; a read among it waits again, holding the rest.
        let held = self.heldParts
        self.heldParts = []
        for part in held {
            self.handle(part, context: context)
        }
        self.flushAnswers(context: context)
        if self.heldSocketRead, !self.isWaitingForRead {
            self.heldSocketRead = false
            context.read()
        }
    }

    private func answer(
        _ answer: EventLoopRoutes.Answer,
        route: EventLoopRoutes.Route,
        to head: HTTPRequest,
        started: ContinuousClock.Instant,
        context: ChannelHandlerContext
    ) {
        let response = self.routes.response(answer, route: route, to: head, date: self.date.now(), started: started)
        context.write(self.wrapOutboundOut(.head(response.head)), promise: nil)
        if let body = response.body {
            context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        }
        context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
        self.unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flushAnswers(context: context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // A client sending request after request without waiting (pipelining) is read no further
        // until the waiting read is answered. Below that, reading on costs nothing, where
        // stopping and resuming would cost two system calls per read.
        if self.isWaitingForRead, self.heldParts.count >= Self.mostHeldParts {
            self.heldSocketRead = true
            return
        }
        context.read()
    }

    /// The most request parts held behind a waiting read before the socket is no longer read.
    static let mostHeldParts = 48

    private var isWaitingForRead: Bool {
        if case .waitingForRead = self.state { return true }
        return false
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data), self.unansweredAtRouter > 0 {
            self.unansweredAtRouter -= 1
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch self.state {
            case .reading, .waitingForRead:
                // Hummingbird would close the connection as idle under a request answered here.
                self.heldQuiesce = true
                return
            case .idle, .passing:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func pass(_ head: HTTPRequest, context: ChannelHandlerContext) {
        self.unansweredAtRouter += 1
        context.fireChannelRead(self.wrapInboundOut(.head(head)))
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
