-- Every transaction that changes counters announces the cluster shards it touched on the
-- channel increment_counters_changed (delivered at commit, in commit order; nothing on rollback),
-- so that each node can forget the values it keeps of those shards. The payload lists the
-- shards, comma-separated, or is '*' (all of them) when the list would not fit a notification.
CREATE FUNCTION announce_counter_change(shards integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    listed text := array_to_string(shards, ',');
BEGIN
    IF listed IS NULL OR length(listed) > 7000 THEN
        listed := '*';
    END IF;
    PERFORM pg_notify('increment_counters_changed', listed);
    PERFORM set_config('increment.change_announced', 'on', true);
END;
$$;

-- A change made any other way (psql, a script, a restore) announces every shard.
CREATE FUNCTION announce_unlisted_counter_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('increment.change_announced', true), '') <> 'on' THEN
        PERFORM pg_notify('increment_counters_changed', '*');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER counters_changed_unannounced
AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON counters
FOR EACH STATEMENT EXECUTE FUNCTION announce_unlisted_counter_change();

CREATE OR REPLACE FUNCTION begin_flush(
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
        PERFORM announce_counter_change(shards);
        RETURN 'new';
    END IF;
    IF applied_seq >= batch_seq THEN
        RETURN 'applied';
    END IF;
    UPDATE flush_ledger
    SET last_seq = batch_seq, retain_until = now() + make_interval(secs => retention_seconds), updated_at = now()
    WHERE node_id = batch_node;
    PERFORM announce_counter_change(shards);
    RETURN 'new';
END;
$$;

-- Deletes lock their shards through this function: they announce them too.
CREATE OR REPLACE FUNCTION lock_cluster_shards(lock_namespace integer, shards integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    shard integer;
BEGIN
    FOREACH shard IN ARRAY shards LOOP
        PERFORM pg_advisory_xact_lock(lock_namespace, shard);
    END LOOP;
    PERFORM announce_counter_change(shards);
END;
$$;
