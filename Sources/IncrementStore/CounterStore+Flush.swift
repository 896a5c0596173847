import IncrementCore
import Logging
import PostgresNIO
import Synchronization

extension CounterStore {
    /// Applies `batch` in one transaction, exactly once however often it is retried.
    ///
    /// 1. `begin_flush` bounds the transaction (``FlushLimits``), takes the advisory locks of the
    ///    batch's cluster shards in ascending order (shared: flushes of different nodes run side
    ///    by side and upsert in key order, so their row locks never deadlock; exclusive: flushes
    ///    touching the same shards queue) and claims the batch in the node's ledger row: a batch
    ///    whose sequence is not above the node's high-water mark was applied before, and nothing
    ///    more is written.
    /// 2. The single upsert over `unnest` arrays. It returns the keys whose total would leave
    ///    bigint; only if there are any, a second statement moves them to
    ///    `quarantined_increments`. The rest commit.
    ///
    /// The attempt ends by `deadline` whatever the network does: past it the connection is
    /// closed. A failure says whether the batch may have committed all the same.
    ///
    /// - Parameters:
    ///   - wantedKeys: the keys whose committed totals the caller wants back.
    ///   - mayHaveCommittedBefore: an earlier attempt of this batch may have committed. If the
    ///     node's ledger row is gone (pruned after a very long outage), such a batch is
    ///     quarantined rather than applied a second time; otherwise the row is recreated.
    public func apply(
        _ batch: FlushBatch,
        totalsFor wantedKeys: [CounterKey] = [],
        mayHaveCommittedBefore: Bool = false,
        deadline: ContinuousClock.Instant? = nil
    ) async throws(FlushFailure) -> FlushResult {
        let attempt = FlushAttempt()
        let deadline = deadline ?? .now + self.limits.attemptTimeout
        do {
            return try await withDeadline(deadline, onExpiry: { attempt.abandon() }, watch: { attempt.connectionLost() }) {
                try await self.client.withConnection { connection in
                    try attempt.begin(on: connection)
                    do {
                        return try await connection.withTransaction(logger: self.logger) { connection in
                            let result = try await self.applyInTransaction(
                                batch,
                                wantedKeys: wantedKeys,
                                mayRegister: !mayHaveCommittedBefore,
                                on: connection
                            )
                            // COMMIT waits for synchronous standbys. A statement_timeout ending that
                            // wait would still report success, for a commit the standby may not
                            // have: a failover then loses it. The attempt's deadline bounds COMMIT
                            // instead, by closing the connection: the outcome stays open until the
                            // ledger settles it on whichever server is primary then.
                            try await connection.query("SET LOCAL statement_timeout = 0", logger: self.logger)
                            // What is left is COMMIT: from here on, a lost answer leaves the outcome open.
                            // An attempt the deadline gave up on rolls back instead: it must never
                            // commit behind the retry that replaces it.
                            try attempt.committing()
                            return result
                        }
                    } catch where error.isReadOnlyServerError {
                        // A standby: only a new connection can follow the endpoint to the primary.
                        // The attempt ends first, so the close is not reported as a lost connection.
                        attempt.end()
                        try? await connection.close()
                        throw error
                    }
                }
            }
        } catch {
            throw FlushFailure(underlying: error, mayHaveCommitted: attempt.mayHaveCommitted(after: error))
        }
    }

    private func applyInTransaction(
        _ batch: FlushBatch,
        wantedKeys: [CounterKey],
        mayRegister: Bool,
        on connection: PostgresConnection
    ) async throws -> FlushResult {
        let lockStart = ContinuousClock.now
        let nodeID = batch.id.nodeID
        let sequence = batch.id.sequence
        let claim = try await connection.query(
            """
            SELECT begin_flush(\(AdvisoryLockSpace.clusterShards), \(batch.clusterShards), \(nodeID)::uuid, \(sequence),
                \(mayRegister), \(self.limits.ledgerRetention.seconds),
                \(self.limits.attemptTimeout.postgresMilliseconds), \(self.limits.stallTimeout.postgresMilliseconds),
                \(self.limits.lockMode == .shared))
            """,
            logger: self.logger
        )
        var disposition = "new"
        for try await value in claim.decode(String.self) { disposition = value }
        var result = FlushResult(lockWait: ContinuousClock.now - lockStart)
        let wanted = wantedKeys.map(\.string)

        switch disposition {
        case "applied":
            result.disposition = .alreadyApplied
            let rows = try await connection.query(
                """
                SELECT key, value, NULL FROM counters WHERE key = ANY(\(wanted)::text[])
                UNION ALL
                SELECT key, NULL, reason FROM quarantined_increments WHERE node_id = \(nodeID)::uuid AND seq = \(sequence)
                """,
                logger: self.logger
            )
            try await result.collect(rows)
        case "unknown":
            result.disposition = .outcomeUnknown
            let items = batch.idempotent.flatMap(\.increments)
            let rows = try await connection.query(
                """
                INSERT INTO quarantined_increments (node_id, seq, key, delta, reason)
                SELECT \(nodeID)::uuid, \(sequence), key, delta, \(Self.unknownOutcomeReason)
                FROM unnest(\(batch.keyStrings + items.map(\.key.string))::text[], \(batch.deltas + items.map(\.delta))::bigint[]) AS u(key, delta)
                RETURNING key, NULL::bigint, reason
                """,
                logger: self.logger
            )
            try await result.collect(rows)
        default:
            // The totals an idempotent request's record keeps are read back with the wanted ones.
            let totalKeys = batch.idempotent.compactMap { $0.totalKey?.string }
            let rows = try await connection.query(
                Self.upsert(
                    batch, wanted: wanted + totalKeys, retention: self.limits.idempotencyRetention,
                    lockMode: self.limits.lockMode),
                logger: self.logger)
            let skipped = try await result.collectUpserted(rows)
            if !skipped.isEmpty {
                // Its own statement: Citus cannot write a table of the coordinator in a statement
                // that also modifies distributed tables.
                let quarantined = try await connection.query(
                    """
                    INSERT INTO quarantined_increments (node_id, seq, key, delta, reason)
                    SELECT \(nodeID)::uuid, \(sequence), key, delta::numeric, \(Self.outOfRangeReason)
                    FROM unnest(\(skipped.map(\.key))::text[], \(skipped.map(\.delta))::text[]) AS s(key, delta)
                    RETURNING key, NULL::bigint, reason
                    """,
                    logger: self.logger
                )
                try await result.collect(quarantined)
            }
            let recorded = batch.idempotent.compactMap { request -> (String, Int64)? in
                guard let key = request.totalKey, let total = result.totals[key] else { return nil }
                return (request.key.value, total)
            }
            if !recorded.isEmpty {
                // Only the records this flush made (node and sequence): a key recorded earlier,
                // by any node, keeps the total it has.
                try await connection.query(
                    """
                    UPDATE idempotency_keys AS i SET total = t.total
                    FROM unnest(\(recorded.map(\.0))::text[], \(recorded.map(\.1))::bigint[]) AS t(idem_key, total)
                    WHERE i.idem_key = t.idem_key AND i.node_id = \(nodeID)::uuid AND i.seq = \(sequence)
                    """,
                    logger: self.logger
                )
            }
        }
        if !batch.idempotent.isEmpty {
            result.idempotencyRecords = try await Self.idempotencyRecords(
                batch.idempotent.map(\.key), batch: batch.id, on: connection, logger: self.logger)
        }
        return result
    }

    /// The single upsert of a batch: plain summed deltas, plus, when the batch carries
    /// idempotent requests, the increments of those whose keys this statement records (a key
    /// already recorded, by any node, and not expired, applies nothing again).
    ///
    /// Returns `(key, total, NULL)` for the wanted keys and `(key, NULL, delta)`, the delta as
    /// text, for the keys it skipped because their total would leave bigint.
    ///
    /// The SQL is fixed text with numbered parameters; every value is bound. Public for the
    /// micro-benchmarks, which measure its encoding.
    ///
    /// With shared shard locks, rows are upserted in byte order (`ORDER BY key COLLATE "C"`), the
    /// one order every concurrent flush takes its row locks in.
    public static func upsert(
        _ batch: FlushBatch,
        wanted: [String],
        retention: Duration,
        lockMode: ShardLockMode = .exclusive
    ) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(batch.keyStrings)  // $1
        binds.append(batch.deltas)  // $2
        binds.append(batch.id.nodeID)  // $3
        binds.append(batch.id.sequence)  // $4
        binds.append(wanted)  // $5
        binds.append(batch.barrier)  // $6
        let increments: String
        if batch.idempotent.isEmpty {
            increments = """
                increments AS (
                    SELECT key, delta FROM unnest($1::text[], $2::bigint[]) AS u(key, delta)
                )
                """
        } else {
            let requests = batch.idempotent
            binds.append(requests.map(\.key.value))  // $7
            binds.append(requests.map(\.fingerprint))  // $8
            binds.append(requests.map { $0.totalKey?.string ?? "" })  // $9
            binds.append(retention.seconds)  // $10
            binds.append(requests.flatMap { request in request.increments.map { _ in request.key.value } })  // $11
            binds.append(requests.flatMap { $0.increments.map(\.key.string) })  // $12
            binds.append(requests.flatMap { $0.increments.map(\.delta) })  // $13
            increments = """
                recorded AS (
                    INSERT INTO idempotency_keys AS k (idem_key, fingerprint, total_key, node_id, seq, created_at, expires_at)
                    SELECT idem_key, fingerprint, NULLIF(total_key, ''), $3::uuid, $4, now(), now() + make_interval(secs => $10)
                    FROM unnest($7::text[], $8::bigint[], $9::text[]) AS r(idem_key, fingerprint, total_key)
                    ORDER BY idem_key COLLATE "C"
                    -- now() only in the SELECT: Citus refuses functions that are not immutable in
                    -- DO UPDATE on a distributed table; EXCLUDED.created_at is the same now().
                    ON CONFLICT (idem_key) DO UPDATE SET
                        fingerprint = EXCLUDED.fingerprint, total_key = EXCLUDED.total_key, total = NULL,
                        node_id = EXCLUDED.node_id, seq = EXCLUDED.seq, created_at = EXCLUDED.created_at,
                        expires_at = EXCLUDED.expires_at
                    -- A key past its retention, not yet pruned, is new again.
                    WHERE k.expires_at < EXCLUDED.created_at
                    RETURNING idem_key
                ), increments AS (
                    SELECT key, sum(delta) AS delta FROM (
                        SELECT key, delta FROM unnest($1::text[], $2::bigint[]) AS u(key, delta)
                        UNION ALL
                        SELECT item.key, item.delta
                        FROM unnest($11::text[], $12::text[], $13::bigint[]) AS item(idem_key, key, delta)
                        JOIN recorded USING (idem_key)
                    ) AS increments
                    GROUP BY key
                )
                """
        }
        // A key's total must stay within bigint. A delta that does not fit (only a sum of
        // idempotent increments can be one) is never inserted; a stored row is checked by the
        // conflict clause as it locks it, with no second look-up of every key. The keys the
        // upsert skipped are the ones to quarantine, sought only when it upserted fewer rows
        // than it got.
        // A counter deleted behind a barrier later than the batch's was deleted after every
        // increment here was accepted (the batch was retried, or spilled and replayed, past the
        // delete): its increments are skipped, not turned into a counter again. Normally no
        // deletion is that recent and `deleted` is one empty index range.
        let sql = """
            WITH \(increments), deleted AS MATERIALIZED (
                SELECT key, is_prefix FROM counter_deletions WHERE barrier > $6
            ), input AS (
                SELECT key, delta FROM increments AS i
                WHERE NOT EXISTS (
                    SELECT 1 FROM deleted AS d WHERE d.key = i.key OR (d.is_prefix AND starts_with(i.key, d.key))
                )
            ), upserted AS (
                INSERT INTO counters AS c (key, value, updated_at)
                SELECT key, delta::bigint, now() FROM input
                WHERE delta BETWEEN -9223372036854775808 AND 9223372036854775807\(lockMode == .shared ? #" ORDER BY key COLLATE "C""# : "")
                ON CONFLICT (key) DO UPDATE SET value = c.value + EXCLUDED.value, updated_at = EXCLUDED.updated_at
                WHERE c.value::numeric + EXCLUDED.value BETWEEN -9223372036854775808 AND 9223372036854775807
                RETURNING key, value
            )
            SELECT key, value, NULL FROM upserted WHERE key = ANY($5::text[])
            UNION ALL
            SELECT key, NULL, delta::text FROM input
            WHERE (SELECT count(*) FROM upserted) < (SELECT count(*) FROM input)
            AND NOT EXISTS (SELECT 1 FROM upserted WHERE upserted.key = input.key)
            """
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// The records of `keys`, read in the flush transaction after its upsert.
    static func idempotencyRecords(
        _ keys: [IdempotencyKey],
        batch: BatchID,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [IdempotencyKey: IdempotencyRecord] {
        let rows = try await connection.query(
            """
            SELECT idem_key, fingerprint, total, node_id = \(batch.nodeID)::uuid AND seq = \(batch.sequence)
            FROM idempotency_keys WHERE idem_key = ANY(\(keys.map(\.value))::text[])
            """,
            logger: logger
        )
        var records: [IdempotencyKey: IdempotencyRecord] = [:]
        for try await (key, fingerprint, total, recordedHere) in rows.decode((String, Int64, Int64?, Bool).self) {
            records[IdempotencyKey(trusted: key)] = IdempotencyRecord(
                fingerprint: fingerprint, total: total, recordedByThisFlush: recordedHere)
        }
        return records
    }

    /// The reason recorded for a batch whose earlier attempt may have committed and whose
    /// ledger entry no longer says.
    public static let unknownOutcomeReason =
        "outcome unknown: the node's ledger entry expired while a commit's answer was lost; may already be applied"
}

extension FlushResult {
    /// Reads the upsert's rows (``CounterStore/upsert(_:wanted:retention:lockMode:)``): the
    /// totals, and returns the skipped keys with their deltas, as text, to quarantine.
    fileprivate mutating func collectUpserted(_ rows: PostgresRowSequence) async throws -> [(key: String, delta: String)] {
        var skipped: [(key: String, delta: String)] = []
        for try await (key, value, delta) in rows.decode((String, Int64?, String?).self) {
            if let delta {
                skipped.append((key, delta))
            } else if let value {
                self.totals[CounterKey(trusted: key)] = value
            }
        }
        return skipped
    }

    /// Reads `(key, total, quarantine reason)` rows: a quarantine record wins over a total.
    fileprivate mutating func collect(_ rows: PostgresRowSequence) async throws {
        for try await (text, value, reason) in rows.decode((String, Int64?, String?).self) {
            let key = CounterKey(trusted: text)
            if let reason {
                self.quarantined[key] = reason
                self.totals[key] = nil
            } else if let value, self.quarantined[key] == nil {
                self.totals[key] = value
            }
        }
    }
}

/// The connection of a flush attempt closed before the attempt finished.
public struct FlushConnectionLost: Error, Sendable, CustomStringConvertible {
    public var description: String { "the connection to PostgreSQL closed during the flush" }
}

/// Where one flush attempt got to: what decides whether a failure may hide a commit.
final class FlushAttempt: Sendable {
    private enum Phase {
        case leasing
        case transaction(PostgresConnection)
        case committing(PostgresConnection)
        case abandoned
        /// Failed before COMMIT with an error of its own; its connection is the attempt's to close.
        case ended
    }

    private let phase = Mutex(Phase.leasing)

    /// The attempt holds `connection`; throws if the deadline already gave up on it.
    func begin(on connection: PostgresConnection) throws {
        let abandoned = self.phase.withLock { phase in
            if case .abandoned = phase { return true }
            phase = .transaction(connection)
            return false
        }
        if abandoned { throw DeadlineExceeded() }
    }

    /// Everything but COMMIT has run; throws if the deadline already gave up on the attempt.
    func committing() throws {
        let abandoned = self.phase.withLock { phase in
            guard case .transaction(let connection) = phase else { return true }
            phase = .committing(connection)
            return false
        }
        if abandoned { throw DeadlineExceeded() }
    }

    /// The deadline passed: close the connection so that whatever waits on it fails now. Before
    /// COMMIT the attempt is fenced off; once COMMIT is out, its outcome stays open.
    func abandon() {
        let connection: PostgresConnection? = self.phase.withLock { phase in
            switch phase {
            case .transaction(let connection):
                phase = .abandoned
                return connection
            case .committing(let connection):
                return connection
            case .leasing, .abandoned:
                phase = .abandoned
                return nil
            case .ended:
                return nil
            }
        }
        if let connection { connection.close().whenComplete { _ in } }
    }

    /// The attempt failed before COMMIT and is over: nothing it does to its connection now is a
    /// loss for ``connectionLost()`` to report.
    func end() {
        self.phase.withLock { phase in
            if case .transaction = phase { phase = .ended }
        }
    }

    /// ``FlushConnectionLost`` if the attempt's connection closed under it, else nil.
    ///
    /// postgres-nio loses a statement written to a connection that closes at that moment (the
    /// server terminated the backend between two statements, say): the statement is never
    /// answered, not even with an error. Without this check such an attempt would wait for its
    /// deadline. Before COMMIT the attempt is fenced off; once COMMIT is out, its outcome is open.
    func connectionLost() -> (any Error)? {
        self.phase.withLock { phase in
            switch phase {
            case .transaction(let connection) where connection.isClosed:
                phase = .abandoned
                return FlushConnectionLost()
            case .committing(let connection) where connection.isClosed:
                return FlushConnectionLost()
            default:
                return nil
            }
        }
    }

    /// Whether the attempt that failed with `error` may have committed: only if COMMIT was sent
    /// and no answer from the server came back.
    func mayHaveCommitted(after error: any Error) -> Bool {
        let reachedCommit = self.phase.withLock { phase in
            if case .committing = phase { return true }
            return false
        }
        guard reachedCommit else { return false }
        if let error = error as? PostgresTransactionError,
            let commitError = error.commitError as? PSQLError,
            commitError.code == .server
        {
            // The server answered COMMIT with an error: the transaction rolled back.
            return false
        }
        return true
    }
}
