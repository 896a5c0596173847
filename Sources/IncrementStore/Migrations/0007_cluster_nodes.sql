-- The node registry: one row per running node process, refreshed by its heartbeat. GET /cluster
-- lists it, and a strong read waits until every node in it has flushed for the read's barrier.
-- A node deletes its row after its final flush; a row whose node fell silent is removed by the
-- other nodes once its node is presumed dead.
CREATE TABLE cluster_nodes (
    node_id             uuid             PRIMARY KEY,
    address             text             NOT NULL,
    version             text             NOT NULL,
    started_at          timestamptz      NOT NULL DEFAULT now(),
    heartbeat_at        timestamptz      NOT NULL DEFAULT now(),
    state               text             NOT NULL,
    pending_keys        bigint           NOT NULL DEFAULT 0,
    oldest_pending_s    double precision,
    last_flush_at       timestamptz,
    last_error          text,
    -- Rates over the node's last heartbeat interval, for the status page.
    requests_per_s      double precision NOT NULL DEFAULT 0,
    increments_per_s    double precision NOT NULL DEFAULT 0,
    flush_seconds       double precision,
    -- The highest flush barrier this node has flushed for: everything it accepted before it saw
    -- that barrier is committed.
    barrier_flushed     bigint           NOT NULL DEFAULT 0
);

-- Flush barriers. A strong read (or POST /flush) takes the next number; each node polls the
-- latest number, flushes, and records it in cluster_nodes.barrier_flushed. A table polled by the
-- nodes rather than LISTEN/NOTIFY: it works through PgBouncer in transaction mode.
CREATE SEQUENCE flush_barrier;
