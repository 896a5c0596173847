-- Takes the transaction-scoped advisory locks of the given cluster shards, strictly in the
-- order given (the caller sorts them ascending). A set-returning SELECT over the array would
-- leave the order to the planner; this loop does not, and ordered locks cannot deadlock.
CREATE FUNCTION lock_cluster_shards(lock_namespace integer, shards integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    shard integer;
BEGIN
    FOREACH shard IN ARRAY shards LOOP
        PERFORM pg_advisory_xact_lock(lock_namespace, shard);
    END LOOP;
END;
$$;
