-- Idempotency keys (the IETF Idempotency-Key header): one row per key, written by the flush that
-- applied the request's increments, in the same statement. A repeat of the request, on any node,
-- finds the row and is answered as the first copy was, without applying anything again. Rows
-- expire after the retention window (a day by default) and are pruned.
CREATE TABLE idempotency_keys (
    idem_key    text        PRIMARY KEY,
    -- A stable hash of the route and the increments: a repeat with another body is refused.
    fingerprint bigint      NOT NULL,
    -- For POST /increment, the counter whose committed total the answer carries, and that total.
    total_key   text,
    total       bigint,
    node_id     uuid        NOT NULL,
    seq         bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_batch ON idempotency_keys (node_id, seq);

-- A flush sums buffered deltas with idempotent requests' increments; the sum of one key may
-- leave bigint before the range check quarantines it, so the quarantine keeps it exactly.
ALTER TABLE quarantined_increments ALTER COLUMN delta TYPE numeric;
