import IncrementCore
import IncrementStore
import ServiceLifecycle
import Synchronization

/// Looks idempotency keys up in PostgreSQL as requests carrying them are admitted, many keys per
/// query: the requests that arrive while one query runs share the next. One round trip then
/// serves a whole burst, and a request pays at most about two round trips.
public final class IdempotencyLookup: Service, Sendable, CustomStringConvertible {
    private struct Waiting {
        let key: IdempotencyKey
        let continuation: CheckedContinuation<IdempotencyRecord?, any Error>
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var stopped = false
    }

    /// The most keys one query asks for.
    static let maximumKeysPerQuery = 1_000

    let store: CounterStore
    /// The longest one look-up query may take.
    let timeout: Duration
    private let queue = Mutex(Queue())
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation

    public var description: String { "IdempotencyLookup" }

    /// Creates a look-up over `store`; it answers once it runs.
    public init(store: CounterStore, timeout: Duration = .seconds(1)) {
        self.store = store
        self.timeout = timeout
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// What the database remembers of `key`, or nil when no flush has recorded it.
    ///
    /// - Throws: the query's error, ``DeadlineExceeded``, or ``IdempotencyLookupStopped``.
    public func record(for key: IdempotencyKey) async throws -> IdempotencyRecord? {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = self.queue.withLock { queue in
                if queue.stopped { return false }
                queue.waiting.append(Waiting(key: key, continuation: continuation))
                return true
            }
            if accepted {
                self.wakeupContinuation.yield()
            } else {
                continuation.resume(throwing: IdempotencyLookupStopped())
            }
        }
    }

    public func run() async throws {
        // The HTTP server stops before this service is told to, so no request waits past it.
        await withGracefulShutdownHandler {
            for await _ in self.wakeups {
                while let batch = self.nextBatch() {
                    await self.answer(batch)
                }
            }
        } onGracefulShutdown: {
            self.wakeupContinuation.finish()
        }
        let left = self.queue.withLock { queue in
            queue.stopped = true
            defer { queue.waiting = [] }
            return queue.waiting
        }
        for waiting in left {
            waiting.continuation.resume(throwing: IdempotencyLookupStopped())
        }
    }

    private func nextBatch() -> [Waiting]? {
        self.queue.withLock { queue in
            guard !queue.waiting.isEmpty else { return nil }
            let count = min(queue.waiting.count, Self.maximumKeysPerQuery)
            defer { queue.waiting.removeFirst(count) }
            return Array(queue.waiting.prefix(count))
        }
    }

    private func answer(_ batch: [Waiting]) async {
        let keys = Array(Set(batch.map(\.key)))
        do {
            let records = try await self.store.idempotencyRecords(for: keys, deadline: .now + self.timeout)
            for waiting in batch {
                waiting.continuation.resume(returning: records[waiting.key])
            }
        } catch {
            for waiting in batch {
                waiting.continuation.resume(throwing: error)
            }
        }
    }
}

/// The look-up has stopped (the node is shutting down).
public struct IdempotencyLookupStopped: Error, CustomStringConvertible {
    public var description: String { "the idempotency key look-up has stopped" }
}
