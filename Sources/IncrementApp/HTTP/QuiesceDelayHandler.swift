import NIOCore
import NIOHTTPTypes

/// Keeps an open connection serving for a while after the server stops accepting.
///
/// When the server shuts down it closes its listener and tells every connection to quiesce;
/// Hummingbird then closes at once each connection with no request in progress. A balancer may
/// be sending a request on such a connection at that very moment, and must answer it `502`. This
/// handler, placed before Hummingbird's connection-state handler, holds the quiesce event back:
/// - a request that arrives meanwhile is passed on first, so it is answered (with
///   `Connection: close`, see ``ConnectionMiddleware``) and the connection closed after it;
/// - otherwise the event goes on when `hold` has passed. A balancer whose idle keep-alive
///   connections time out sooner (nginx's upstream `keepalive_timeout`) has closed them itself.
final class QuiesceDelayHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private enum State {
        case serving
        case holdingQuiesce(Scheduled<Void>)
        case quiesced
    }

    private let hold: TimeAmount
    private var state = State.serving

    /// Creates a handler that holds the quiesce event for at most `hold`.
    init(hold: TimeAmount) {
        self.hold = hold
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, case .serving = self.state else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.state = .holdingQuiesce(
            context.eventLoop.scheduleTask(in: self.hold) {
                let (handler, context) = loopBound.value
                handler.releaseQuiesce(context: context)
            }
        )
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        if case .head = self.unwrapInboundIn(data) {
            // The request is in progress now: quiescing closes the connection after its answer.
            self.releaseQuiesce(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case .holdingQuiesce(let held) = self.state {
            held.cancel()
        }
    }

    private func releaseQuiesce(context: ChannelHandlerContext) {
        guard case .holdingQuiesce(let held) = self.state else { return }
        held.cancel()
        self.state = .quiesced
        context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}
