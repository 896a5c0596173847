-- Flushes may hold their cluster-shard locks in shared mode: flushes from different nodes then run
-- side by side, each upserting its keys in ascending order (so row locks are taken in one order
-- and never deadlock), and PostgreSQL's row locks keep every update exact. Exclusive mode, the
-- earlier behaviour, queues every flush that touches a shard behind the one holding it.
CREATE FUNCTION begin_flush(
    lock_namespace integer,
    shards integer[],
    batch_node uuid,
    batch_seq bigint,
    may_register boolean,
    retention_seconds double precision,
    statement_timeout_ms integer,
    stall_timeout_ms integer,
    lock_shared boolean
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
        IF lock_shared THEN
            PERFORM pg_advisory_xact_lock_shared(lock_namespace, shard);
        ELSE
            PERFORM pg_advisory_xact_lock(lock_namespace, shard);
        END IF;
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

-- Nodes of the previous release call the eight-argument form: exclusive locks, as before.
CREATE OR REPLACE FUNCTION begin_flush(
    lock_namespace integer,
    shards integer[],
    batch_node uuid,
    batch_seq bigint,
    may_register boolean,
    retention_seconds double precision,
    statement_timeout_ms integer,
    stall_timeout_ms integer
) RETURNS text
LANGUAGE sql AS $$
    SELECT begin_flush(lock_namespace, shards, batch_node, batch_seq, may_register, retention_seconds,
        statement_timeout_ms, stall_timeout_ms, false)
$$;
