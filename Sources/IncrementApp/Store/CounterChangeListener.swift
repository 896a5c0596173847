import Foundation
import IncrementCore
import IncrementStore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Keeps the node's ``CommittedValueCache`` in step with the database, on a connection of its
/// own (outside the pool) that listens on ``CounterChangeNotice/channel``.
///
/// Every commit that changes counters announces its cluster shards there, and the cache forgets
/// them. Every quarter of the staleness bound the node sends a heartbeat through the same
/// channel, from its pool (another session); notifications arrive in commit order, so a
/// heartbeat heard back proves every earlier change was heard, and the cache serves values for
/// the bound past the heartbeat's send time. Behind a pooler in transaction mode the listening
/// session is not the client's between its transactions and the pooler drops what it is sent:
/// no heartbeat comes back, and the cache serves nothing. When heartbeats stop coming back the
/// connection is closed and made again; the cache serves nothing until the new one hears its first.
final class CounterChangeListener: Service, Sendable, CustomStringConvertible {
    let cache: CommittedValueCache
    let configuration: PostgresConnection.Configuration
    /// Sends the heartbeats.
    let store: CounterStore
    let logger: Logger
    /// Whether a heartbeat came back since the listener last failed: a new failure is a new outage.
    private let heardSinceFailure = Atomic<Bool>(false)

    var description: String { "CounterChangeListener" }

    /// How often a heartbeat is sent.
    var heartbeatInterval: Duration { max(self.cache.maximumStaleness / 4, .milliseconds(5)) }
    /// How long without hearing a heartbeat back before the connection is made again.
    var silenceLimit: Duration { max(self.cache.maximumStaleness * 10, .seconds(2)) }

    init(cache: CommittedValueCache, configuration: PostgresConnection.Configuration, store: CounterStore, logger: Logger) {
        self.cache = cache
        self.configuration = configuration
        self.store = store
        self.logger = logger
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await self.listen()
                } catch {
                    if Task.isCancelled { break }
                    if self.heardSinceFailure.exchange(false, ordering: .relaxed) { failures = 0 }
                    failures += 1
                    // One line per outage, not one per retry.
                    if failures == 1 {
                        self.logger.warning(
                            "read cache suspended: change listener failed", metadata: ["error": "\(describe(error))"])
                    }
                }
                self.cache.restart()
                try? await Task.sleep(for: .milliseconds(500))
            }
            self.cache.restart()
        }
    }

    /// Listens on one connection until it fails or goes silent.
    private func listen() async throws {
        let connection = try await PostgresConnection.connect(configuration: self.configuration, id: 0, logger: self.logger)
        do {
            try await connection.listen(on: CounterChangeNotice.channel) { notifications in
                // Queued behind LISTEN on this connection: once answered, the session listens.
                try await connection.query("SELECT 1", logger: self.logger)
                let session = Session(listener: UUID().uuidString.lowercased())
                // Whatever was kept before this session listened may have missed a change.
                self.cache.restart()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await notification in notifications {
                            self.handle(notification.payload, session: session)
                        }
                        throw ChangeListenerFailure.closed
                    }
                    group.addTask { try await self.sendHeartbeats(for: session) }
                    group.addTask {
                        try await self.watchSilence(of: session)
                        // Ends the notifications of a connection the server may no longer answer on.
                        try? await connection.close()
                        throw ChangeListenerFailure.silent(self.silenceLimit)
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    private func handle(_ payload: String, session: Session) {
        switch CounterChangeNotice(payload: payload) {
        case .changed(let shards):
            self.cache.changed(shards: shards)
        case .heartbeat(let listener, let sentAt):
            guard listener == session.listener else { return }  // another node's
            session.lastHeard.store(sentAt, ordering: .relaxed)
            self.heardSinceFailure.store(true, ordering: .relaxed)
            self.cache.heard(heartbeatSentAt: session.origin + .nanoseconds(sentAt))
        case .changedEverywhere, nil:
            // Unlisted shards, or a payload this version does not know: forget everything.
            self.cache.changedEverywhere()
        }
    }

    private func sendHeartbeats(for session: Session) async throws {
        while true {
            let payload = CounterChangeNotice.heartbeatPayload(listener: session.listener, sentAt: session.nanosecondsSinceOrigin())
            do {
                try await self.store.announceHeartbeat(payload, deadline: .now + self.silenceLimit)
            } catch {
                // Unheard heartbeats stop the cache; the silence watch makes the connection again.
                self.logger.debug("read cache heartbeat failed", metadata: ["error": "\(describe(error))"])
            }
            try await Task.sleep(for: self.heartbeatInterval)
        }
    }

    /// Returns once no heartbeat has been heard back for ``silenceLimit``.
    private func watchSilence(of session: Session) async throws {
        while true {
            try await Task.sleep(for: self.heartbeatInterval)
            let heard = session.lastHeard.load(ordering: .relaxed)
            if .nanoseconds(session.nanosecondsSinceOrigin() - heard) > self.silenceLimit { return }
        }
    }

    /// One listening connection's identity and clock.
    private final class Session: Sendable {
        let listener: String
        let origin = ContinuousClock.now
        /// The send time of the latest heartbeat heard back, in nanoseconds from `origin`.
        let lastHeard = Atomic<Int64>(0)

        init(listener: String) {
            self.listener = listener
        }

        func nanosecondsSinceOrigin() -> Int64 {
            (ContinuousClock.now - self.origin).nanoseconds
        }
    }
}

/// Why the change listener made its connection again.
enum ChangeListenerFailure: Error, CustomStringConvertible {
    case closed
    case silent(Duration)

    var description: String {
        switch self {
        case .closed: "the listening connection closed"
        case .silent(let limit):
            "no heartbeat came back within \(limit) (behind a pooler in transaction mode none can: set READ_CACHE_STALENESS_MS=0)"
        }
    }
}
