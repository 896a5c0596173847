import IncrementStore
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
    let idempotency: IdempotencyTable
    let idempotencyLookup: IdempotencyLookup

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
        if let key = try Self.idempotencyKey(of: request) {
            let idempotent = IdempotentRequest(key: key, route: .single, increments: [increment])
            return try await self.admit(idempotent, waitMode: waitMode, context: context)
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
        if let key = try Self.idempotencyKey(of: request) {
            let idempotent = IdempotentRequest(key: key, route: .batch, increments: increments)
            return try await self.admit(idempotent, waitMode: .buffered, context: context)
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

    /// Admits a request sent with an idempotency key: a repeat is answered as the first copy
    /// was and applies nothing; a key reused with another body is refused.
    private func admit(_ request: IdempotentRequest, waitMode: WaitMode, context: Context) async throws -> Response {
        switch self.idempotency.claim(request.key, fingerprint: request.fingerprint) {
        case .mismatched:
            throw APIError.idempotencyKeyReused(request.key)
        case .repeated(.admitting), .repeated(.waiting):
            throw APIError.idempotencyKeyInFlight(request.key)
        case .repeated(.buffered):
            self.metrics.idempotentReplays.increment()
            return Self.replayed(self.acceptedResponse(for: request))
        case .claimed:
            break
        }
        // Recorded by an earlier flush, on any node? If the database does not answer, the
        // request is buffered all the same: the flush records the key once in any case.
        let recorded: IdempotencyRecord?
        do {
            recorded = try await self.idempotencyLookup.record(for: request.key)
        } catch {
            context.logger.debug("idempotency key look-up failed", metadata: ["error": "\(describe(error))"])
            recorded = nil
        }
        if let recorded {
            self.idempotency.release(request.key)
            guard recorded.fingerprint == request.fingerprint else { throw APIError.idempotencyKeyReused(request.key) }
            self.metrics.idempotentReplays.increment()
            guard case .commit = waitMode, let key = request.totalKey else {
                return Self.replayed(self.acceptedResponse(for: request))
            }
            guard let total = recorded.total else {
                throw APIError(.valueOutOfRange, "the increment was quarantined, not applied: \(CounterStore.outOfRangeReason)")
            }
            return Self.replayed(Response.json(CommittedCounter(key: key.string, value: total)))
        }
        switch waitMode {
        case .buffered:
            do throws(AdmissionError) {
                try self.buffer.add(request)
            } catch {
                self.idempotency.release(request.key)
                throw self.refusal(error)
            }
            self.idempotency.settle(request.key, as: .buffered)
            self.admitted(count: request.increments.count)
            return self.acceptedResponse(for: request)
        case .commit:
            guard let increment = request.increments.first else { return self.acceptedResponse(for: request) }
            defer { self.idempotency.settle(request.key, as: .buffered) }
            return try await self.incrementAndWait(increment, idempotent: request, context: context)
        }
    }

    /// The fast path's answer to `request`.
    private func acceptedResponse(for request: IdempotentRequest) -> Response {
        switch request.route {
        case .single: Response(status: .accepted)
        case .batch: Response.json(Accepted(accepted: request.increments.count), status: .accepted)
        }
    }

    /// `response`, marked as the answer of an earlier copy of the request.
    private static func replayed(_ response: Response) -> Response {
        var response = response
        response.headers[.idempotentReplayed] = "true"
        return response
    }

    private func incrementAndWait(
        _ increment: Increment,
        idempotent: IdempotentRequest? = nil,
        context: Context
    ) async throws -> Response {
        let wait = CommitWait()
        do throws(AdmissionError) {
            if let idempotent {
                try self.buffer.add(idempotent, waiter: wait.waiter(for: increment.key, idempotency: idempotent))
                self.idempotency.settle(idempotent.key, as: .waiting)
            } else {
                try self.buffer.add(increment, waiter: wait.waiter(for: increment.key))
            }
        } catch {
            if let idempotent { self.idempotency.release(idempotent.key) }
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
        case .idempotencyKeyReused:
            throw APIError.idempotencyKeyReused(idempotent?.key ?? IdempotencyKey(trusted: ""))
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

    /// The request's `Idempotency-Key`, if it sent one.
    private static func idempotencyKey(of request: Request) throws(APIError) -> IdempotencyKey? {
        // The common case, no header, costs one scan of the header fields and no allocation.
        guard let value = request.headers[.idempotencyKey] else { return nil }
        guard request.headers[values: .idempotencyKey].count == 1 else {
            throw APIError(.invalidIdempotencyKey, "Idempotency-Key: send the header once")
        }
        do throws(IdempotencyKeyError) {
            return try IdempotencyKey(headerValue: value)
        } catch {
            throw APIError(.invalidIdempotencyKey, error.message)
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
