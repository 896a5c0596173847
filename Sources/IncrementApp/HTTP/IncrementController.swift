import HTTPTypes
import Hummingbird
import IncrementCore
import Logging
import NIOCore

/// `POST /increment` and `POST /increments`: decode, hand to the intake, answer.
struct IncrementController<Context: RequestContext>: Sendable {
    let intake: IncrementIntake
    let maximumBodyBytes: Int
    let maximumBatchItems: Int
    let tokens: AccessTokens

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.requiring(.write, self.tokens)
        routes.post("increment", use: self.increment)
        routes.post("increments", use: self.incrementMany)
        return routes
    }

    @Sendable func increment(_ request: Request, context: Context) async throws -> Response {
        let waitsForCommit = try Self.waitsForCommit(request)
        let body = try await self.collectBody(of: request)
        let increment = try Self.decode(body) { (bytes) throws(IncrementInputError) in
            try IncrementBodyDecoder.decodeIncrement(from: bytes)
        }
        if let key = try Self.idempotencyKey(of: request) {
            let idempotent = IdempotentRequest(key: key, route: .single, increments: [increment])
            return try await self.admit(idempotent, waitingForCommit: waitsForCommit, context: context)
        }
        let outcome: CommitOutcome
        do throws(AdmissionError) {
            guard waitsForCommit else {
                try self.intake.accept(increment)
                return Response(status: .accepted)
            }
            outcome = try await self.intake.acceptAndWait(increment)
        } catch {
            throw APIError(error)
        }
        return try Self.response(to: outcome, key: increment.key, context: context)
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
            return try await self.admit(idempotent, waitingForCommit: false, context: context)
        }
        do throws(AdmissionError) {
            try self.intake.accept(increments)
        } catch {
            throw APIError(error)
        }
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

    private func admit(_ request: IdempotentRequest, waitingForCommit: Bool, context: Context) async throws -> Response {
        let admission: IncrementIntake.IdempotentAdmission
        do throws(IncrementIntake.IdempotencyRefusal) {
            admission = try await self.intake.admit(request, waitingForCommit: waitingForCommit, logger: context.logger)
        } catch {
            switch error {
            case .reused: throw APIError.idempotencyKeyReused(request.key)
            case .inFlight: throw APIError.idempotencyKeyInFlight(request.key)
            case .admission(let refusal): throw APIError(refusal)
            }
        }
        var response: Response
        let replayed: Bool
        switch admission {
        case .accepted(let wasReplayed):
            replayed = wasReplayed
            response = switch request.route {
            case .single: Response(status: .accepted)
            case .batch: Response.json(Accepted(accepted: request.increments.count), status: .accepted)
            }
        case .outcome(let outcome, let wasReplayed):
            replayed = wasReplayed
            let key = request.totalKey ?? request.increments[0].key
            response = try Self.response(to: outcome, key: key, idempotencyKey: request.key, context: context)
        }
        if replayed { response.headers[.idempotentReplayed] = "true" }
        return response
    }

    /// The answer to a `wait=commit` request.
    private static func response(
        to outcome: CommitOutcome,
        key: CounterKey,
        idempotencyKey: IdempotencyKey? = nil,
        context: Context
    ) throws(APIError) -> Response {
        switch outcome {
        case .committed(let total):
            return Response.json(CommittedCounter(key: key.string, value: total))
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
            throw APIError.idempotencyKeyReused(idempotencyKey ?? IdempotencyKey(trusted: ""))
        }
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

    /// Whether the request asks to wait for its commit (`wait=commit`).
    private static func waitsForCommit(_ request: Request) throws -> Bool {
        switch request.uri.queryParameters["wait"] {
        case nil: return false
        case "commit": return true
        case let other?:
            throw APIError(.invalidParameter, "wait must be \"commit\", got \"\(other)\"")
        }
    }

    /// `body` decoded by `decode`, or the catalogue's error for why it cannot be.
    static func decode<Value>(
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
