import CoreMetrics
import Hummingbird
import IncrementCore
import IncrementStore
import Logging

/// `DELETE /counters/{key}` and `DELETE /counters?prefix=…`.
///
/// A delete first passes a cluster-wide flush barrier: everything any live node accepted before
/// it is committed, and counted in what is deleted. It then deletes under the keys' cluster-shard
/// locks and records the deletion with the barrier's number: a batch accepted before the barrier
/// that commits later (a retry, a spilled batch replayed) skips the deleted keys. Increments a
/// node accepts once it has seen the barrier make a new counter from zero.
struct CounterDeletionController<Context: RequestContext>: Sendable {
    let store: CounterStore
    let barrier: FlushBarrier
    let shardMap: ClusterShardMap
    /// Counts the counters deleted.
    let deleted: Counter
    /// Told of each delete as it ends, so this node's reads never see a deleted value (other
    /// nodes hear of it from the database).
    let readCache: CommittedValueCache?
    let tokens: AccessTokens
    /// The most counters one `DELETE /counters?prefix=` request deletes.
    static var maximumDeletedPerRound: Int { 10_000 }

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.requiring(.delete, self.tokens)
        routes.delete("counters", use: self.deletePrefix)
        routes.delete("counters/**", use: self.deleteCounter)
        return routes
    }

    struct PrefixRound: Encodable {
        let deleted: Int
        /// Whether counters with the prefix are left: send the request again to delete them.
        let more: Bool
    }

    @Sendable func deleteCounter(_ request: Request, context: Context) async throws -> Response {
        let key = try CounterController<Context>.key(fromPath: request.uri.path)
        let passed = try await self.barrier.passOrThrowAPIError(logger: context.logger)
        let total: Int64?
        defer { self.readCache?.changed(shards: [self.shardMap.shard(for: key)]) }
        do {
            total = try await self.store.deleteCounter(key, barrier: passed.barrier, shardMap: self.shardMap, deadline: .now + .seconds(5))
        } catch {
            context.logger.warning("counter delete failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
        guard let total else {
            throw CounterController<Context>.notFound(key)
        }
        self.deleted.increment()
        context.logger.notice("counter deleted", metadata: ["counter.key": "\(key)", "barrier": "\(passed.barrier)"])
        return Response.json(bytes: CounterController<Context>.answerBody(key: key, value: total))
    }

    @Sendable func deletePrefix(_ request: Request, context: Context) async throws -> Response {
        var prefix: KeyPrefix?
        for pair in (request.uri.query ?? "").split(separator: "&", omittingEmptySubsequences: true) {
            let name = pair.prefix { $0 != "=" }
            switch name {
            case "prefix":
                prefix = try CounterController<Context>.parameter("prefix", pair.dropFirst(name.count + 1), KeyPrefix.init(validating:))
            case "key":
                throw APIError(.invalidParameter, "delete one counter with DELETE /counters/{key}; key is not a parameter here")
            default:
                continue
            }
        }
        guard let prefix else {
            throw APIError(.missingField, "name the counters to delete: DELETE /counters?prefix=P (or DELETE /counters/{key} for one)")
        }
        let passed = try await self.barrier.passOrThrowAPIError(logger: context.logger)
        let round: PrefixDeletion
        defer { self.readCache?.changedEverywhere() }
        do {
            round = try await self.store.deleteCounters(
                prefix: prefix, barrier: passed.barrier, limit: Self.maximumDeletedPerRound, shardMap: self.shardMap,
                deadline: .now + .seconds(10))
        } catch {
            context.logger.warning("prefix delete failed", metadata: ["error": "\(describe(error))"])
            throw APIError.databaseUnavailable
        }
        self.deleted.increment(by: round.deleted)
        context.logger.notice(
            "counters deleted by prefix",
            metadata: ["counter.prefix": "\(prefix)", "counter.deleted": "\(round.deleted)", "barrier": "\(passed.barrier)"])
        return Response.json(PrefixRound(deleted: round.deleted, more: round.more))
    }
}
