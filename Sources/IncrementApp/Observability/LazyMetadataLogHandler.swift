import Logging

/// A log handler that keeps its metadata as given and formats it only when a message is logged.
///
/// `StreamLogHandler` formats its whole metadata every time an item is set. The HTTP server sets
/// a request id on every request's logger, so with the stream handler alone each request paid
/// for formatting metadata that, at the usual `info` or `warning` level, no message ever shows.
/// This handler hands its metadata to the wrapped handler with each message instead.
public struct LazyMetadataLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped

    /// The handler's metadata; the wrapped handler's own stays empty.
    public var metadata: Logger.Metadata = [:]

    /// Wraps a handler, keeping its level and metadata provider.
    public init(_ wrapped: Wrapped) {
        self.wrapped = wrapped
    }

    public var logLevel: Logger.Level {
        get { self.wrapped.logLevel }
        set { self.wrapped.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { self.wrapped.metadataProvider }
        set { self.wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !self.metadata.isEmpty {
            // The message's own metadata wins over the logger's, as in every swift-log handler.
            event.metadata = self.metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        self.wrapped.log(event: event)
    }
}
