-- Deleted counters and prefixes, each with the flush barrier its delete passed. Every live node
-- flushed what it had accepted before that barrier ahead of the delete; a batch of such
-- increments that commits after it all the same (a retry, a spilled batch replayed by another
-- node) carries a lower barrier, and the flush skips the deleted keys instead of bringing them
-- back. Rows are pruned after the ledger retention, as the batches they guard against are.
CREATE TABLE counter_deletions (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The key, or with is_prefix the prefix, whose bytes start every deleted key.
    key        text        NOT NULL,
    is_prefix  boolean     NOT NULL,
    barrier    bigint      NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX counter_deletions_barrier ON counter_deletions (barrier);
CREATE INDEX counter_deletions_deleted_at ON counter_deletions (deleted_at);
