-- The flush ledger, one row per node process: the highest batch sequence it has applied.
-- A node sends batch N only after batch N-1 was confirmed, so a high-water mark is all a
-- retry needs: a batch whose seq is not above last_seq was applied before. The row lives
-- while its node heartbeats (retain_until moves forward) and is deleted by the node at a
-- clean shutdown, so the table holds about one row per live node whatever the uptime.
CREATE TABLE flush_ledger (
    node_id      uuid        PRIMARY KEY,
    last_seq     bigint      NOT NULL,
    retain_until timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX flush_ledger_retain_until ON flush_ledger (retain_until);

INSERT INTO flush_ledger (node_id, last_seq, retain_until)
SELECT node_id, max(seq), now() + interval '1 day' FROM flush_batches GROUP BY node_id;

DROP TABLE flush_batches;

-- Opens a flush: bounds the transaction, takes the cluster-shard locks in the given (ascending)
-- order, and claims the batch in the ledger. Returns 'new' (apply it), 'applied' (a retry of a
-- batch already applied) or 'unknown' (the node's ledger row is gone and the batch may have
-- committed before: its outcome cannot be known).
--
-- statement_timeout and lock_timeout bound every statement of the flush, including waits for
-- another node's locks; idle_in_transaction_session_timeout ends the transaction of a node that
-- stalls between statements (stopped, partitioned), releasing its locks for everyone else.
CREATE FUNCTION begin_flush(
    lock_namespace integer,
    shards integer[],
    batch_node uuid,
    batch_seq bigint,
    may_register boolean,
    retention_seconds double precision,
    statement_timeout_ms integer,
    stall_timeout_ms integer
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    shard integer;
    applied_seq bigint;
BEGIN
    PERFORM set_config('statement_timeout', statement_timeout_ms || 'ms', true);
    PERFORM set_config('lock_timeout', statement_timeout_ms || 'ms', true);
    PERFORM set_config('idle_in_transaction_session_timeout', stall_timeout_ms || 'ms', true);
    FOREACH shard IN ARRAY shards LOOP
        PERFORM pg_advisory_xact_lock(lock_namespace, shard);
    END LOOP;
    SELECT last_seq INTO applied_seq FROM flush_ledger WHERE node_id = batch_node FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT may_register THEN
            RETURN 'unknown';
        END IF;
        INSERT INTO flush_ledger (node_id, last_seq, retain_until)
        VALUES (batch_node, batch_seq, now() + make_interval(secs => retention_seconds));
        RETURN 'new';
    END IF;
    IF applied_seq >= batch_seq THEN
        RETURN 'applied';
    END IF;
    UPDATE flush_ledger
    SET last_seq = batch_seq, retain_until = now() + make_interval(secs => retention_seconds), updated_at = now()
    WHERE node_id = batch_node;
    RETURN 'new';
END;
$$;
