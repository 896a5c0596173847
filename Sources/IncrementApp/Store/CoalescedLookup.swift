import ServiceLifecycle
import Synchronization

/// Looks keys up in PostgreSQL many per query: the requests that arrive while the queries in
/// flight run share the next one. One round trip then serves a whole burst, a request pays at
/// most about two round trips, and the database parses, plans and answers one statement where
/// it would have answered hundreds.
///
/// Every query starts after each request it answers arrived, so a look-up never returns what
/// the database held before the request was made (a strong read's barrier stays meaningful).
public final class CoalescedLookup<Key: Hashable & Sendable, Value: Sendable>: Service, Sendable, CustomStringConvertible {
    /// Fetches the values of `keys` that exist, before the deadline.
    public typealias Fetch = @Sendable (_ keys: [Key], _ deadline: ContinuousClock.Instant) async throws -> [Key: Value]

    /// What a look-up's caller is given: the values found, or why there are none.
    public typealias Completion = @Sendable (Result<[Key: Value], any Error>) -> Void

    private struct Waiting {
        let keys: [Key]
        let completion: Completion
    }

    private struct Queue {
        var waiting: [Waiting] = []
        var queriesInFlight = 0
        var stopped = false
    }

    /// What the look-up is for, in its description.
    let name: String
    /// The most keys one query asks for (a request naming more gets a query of its own).
    let maximumKeysPerQuery: Int
    /// The most queries in flight at once.
    let concurrentQueries: Int
    /// The longest one query may take.
    let timeout: Duration
    private let fetch: Fetch
    private let queue = Mutex(Queue())
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation

    public var description: String { "CoalescedLookup(\(self.name))" }

    /// Creates a look-up that answers once it runs.
    public init(name: String, maximumKeysPerQuery: Int = 1_000, concurrentQueries: Int = 1, timeout: Duration, fetch: @escaping Fetch) {
        self.name = name
        self.maximumKeysPerQuery = maximumKeysPerQuery
        self.concurrentQueries = concurrentQueries
        self.timeout = timeout
        self.fetch = fetch
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The values of those of `keys` that exist.
    ///
    /// - Throws: the query's error, ``DeadlineExceeded``, or ``LookupStopped``.
    public func values(for keys: [Key]) async throws -> [Key: Value] {
        let found = try await withCheckedThrowingContinuation { continuation in
            self.lookUp(keys) { continuation.resume(with: $0) }
        }
        var values: [Key: Value] = [:]
        for key in keys {
            values[key] = found[key]
        }
        return values
    }

    /// Looks `keys` up, and calls `completion` with what the query that answered them found: the
    /// values of those of `keys` that exist, and of other keys the query asked for. It runs on a
    /// thread of the look-up's own (the caller hops back to its event loop, say).
    public func lookUp(_ keys: [Key], completion: @escaping Completion) {
        let accepted = self.queue.withLock { queue in
            if queue.stopped { return false }
            queue.waiting.append(Waiting(keys: keys, completion: completion))
            return true
        }
        if accepted {
            self.wakeupContinuation.yield()
        } else {
            completion(.failure(LookupStopped(name: self.name)))
        }
    }

    /// The value of `key`, or nil when it does not exist.
    public func value(for key: Key) async throws -> Value? {
        try await self.values(for: [key])[key]
    }

    public func run() async throws {
        // The HTTP server stops before this service is told to, so no request waits past it.
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await _ in self.wakeups {
                    while let batch = self.nextBatch() {
                        group.addTask {
                            await self.answer(batch)
                            self.queue.withLock { $0.queriesInFlight -= 1 }
                            // What arrived meanwhile goes in the query this one makes room for.
                            self.wakeupContinuation.yield()
                        }
                    }
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
            waiting.completion(.failure(LookupStopped(name: self.name)))
        }
    }

    /// The requests for the next query, counted in flight; nil when none wait or no query may start.
    private func nextBatch() -> [Waiting]? {
        self.queue.withLock { queue in
            guard !queue.waiting.isEmpty, queue.queriesInFlight < self.concurrentQueries else { return nil }
            var keyCount = 0
            var count = 0
            for waiting in queue.waiting {
                if count > 0, keyCount + waiting.keys.count > self.maximumKeysPerQuery { break }
                keyCount += waiting.keys.count
                count += 1
            }
            queue.queriesInFlight += 1
            defer { queue.waiting.removeFirst(count) }
            return Array(queue.waiting.prefix(count))
        }
    }

    private func answer(_ batch: [Waiting]) async {
        var keys: [Key] = []
        var seen = Set<Key>()
        for waiting in batch {
            for key in waiting.keys where seen.insert(key).inserted {
                keys.append(key)
            }
        }
        do {
            let values = try await self.fetch(keys, .now + self.timeout)
            for waiting in batch {
                waiting.completion(.success(values))
            }
        } catch {
            for waiting in batch {
                waiting.completion(.failure(error))
            }
        }
    }
}

/// The look-up has stopped (the node is shutting down).
public struct LookupStopped: Error, CustomStringConvertible {
    let name: String
    public var description: String { "the \(self.name) look-up has stopped" }
}
