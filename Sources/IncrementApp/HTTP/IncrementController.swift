import Hummingbird
import CoreMetrics
import IncrementCore
import Logging
import NIOCore

/// `POST /increment` and `POST /increments`: validate, buffer, answer.
struct IncrementController<Context: RequestContext>: Sendable {
    let buffer: IncrementBuffer
    let flusher: Flusher
    let metrics: NodeMetrics
    let maximumBodyBytes: Int
    let maximumBatchItems: Int
    let earlyFlushKeys: Int
    let commitWaitTimeout: Duration
    let openWaits: OpenCommitWaits

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("increment", use: self.increment)
        routes.post("increments", use: self.incrementMany)
        return routes
    }

    /// How long the caller waits.
    enum WaitMode {
        /// `202` once buffered.
        case buffered
        /// `200` with the committed total once the flush carrying the increment commits.
        case commit
    }

    @Sendable func increment(_ request: Request, context: Context) async throws -> Response {
        let waitMode = try Self.waitMode(of: request)
        let body = try await self.collectBody(of: request)
        let increment = try Self.decode(body) { (bytes) throws(IncrementInputError) in
            try IncrementBodyDecoder.decodeIncrement(from: bytes)
        }
        switch waitMode {
        case .buffered:
            do throws(AdmissionError) {
                try self.buffer.add(increment)
            } catch {
                throw self.refusal(error)
            }
            self.admitted(count: 1)
            return Response(status: .accepted)
        case .commit:
            return try await self.incrementAndWait(increment, context: context)
        }
    }

    @Sendable func incrementMany(_ request: Request, context: Context) async throws -> Response {
        if request.uri.queryParameters["wait"] != nil {
            throw APIError(.invalidParameter, "wait=commit is offered on POST /increment only")
        }
        let body = try await self.collectBody(of: request)
        let limit = self.maximumBatchItems
        let increments = try Self.decode(body) { (bytes) throws(IncrementInputError) in
            try IncrementBodyDecoder.decodeBatch(from: bytes, maximumItems: limit)
        }
        do throws(AdmissionError) {
            try self.buffer.add(increments)
        } catch {
            throw self.refusal(error)
        }
        self.admitted(count: increments.count)
        return Response.json(Accepted(accepted: increments.count), status: .accepted)
    }

    struct Accepted: Encodable {
        let accepted: Int
    }

    struct CommittedCounter: Encodable {
        let key: String
        let value: Int64
    }

    // MARK: Helpers

    private func incrementAndWait(_ increment: Increment, context: Context) async throws -> Response {
        let wait = CommitWait()
        do throws(AdmissionError) {
            try self.buffer.add(increment, waiter: wait.waiter(for: increment.key))
        } catch {
            throw self.refusal(error)
        }
        self.metrics.acceptedIncrements.increment()
        self.flusher.wake(.commitWaiter)
        switch await wait.outcome(timeout: self.commitWaitTimeout, openWaits: self.openWaits) {
        case .committed(let total):
            return Response.json(CommittedCounter(key: increment.key.string, value: total))
        case .pending(let reason):
            // The plain fast path's answer, with its promise: accepted, applied by a later flush.
            context.logger.debug("commit not awaited", metadata: ["increment.pending": "\(reason)"])
            return Response(status: .accepted)
        case .quarantined(let reason):
            throw APIError(.valueOutOfRange, "the increment was quarantined, not applied: \(reason)")
        case .notCommitted(let reason):
            throw APIError(.notCommitted, reason)
        case .unknown(let reason):
            throw APIError(.outcomeUnknown, reason)
        }
    }

    private func admitted(count: Int) {
        self.metrics.acceptedIncrements.increment(by: count)
        if self.buffer.pendingKeys >= self.earlyFlushKeys {
            self.flusher.wake(.pendingThreshold)
        }
    }

    private func refusal(_ error: AdmissionError) -> APIError {
        if case .overloaded = error { self.metrics.rejectedOverloaded.increment() }
        return APIError(error)
    }

    private func collectBody(of request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: self.maximumBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError.bodyTooLarge(limit: self.maximumBodyBytes)
        }
    }

    private static func waitMode(of request: Request) throws -> WaitMode {
        switch request.uri.queryParameters["wait"] {
        case nil: return .buffered
        case "commit": return .commit
        case let other?:
            throw APIError(.invalidParameter, "wait must be \"commit\", got \"\(other)\"")
        }
    }

    private static func decode<Value>(
        _ body: ByteBuffer,
        _ decode: (UnsafeRawBufferPointer) throws(IncrementInputError) -> Value
    ) throws(APIError) -> Value {
        let result = body.withUnsafeReadableBytes { bytes in
            Result { () throws(IncrementInputError) in try decode(bytes) }
        }
        switch result {
        case .success(let value): return value
        case .failure(let error): throw APIError(error)
        }
    }
}
