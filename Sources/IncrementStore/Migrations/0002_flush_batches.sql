-- The ledger of applied flush batches. A batch retried after an ambiguous commit finds its row
-- here and is not applied twice. node_id is fresh per node process; old rows are pruned.
CREATE TABLE flush_batches (
    node_id    uuid        NOT NULL,
    seq        bigint      NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, seq)
);

CREATE INDEX flush_batches_applied_at ON flush_batches (applied_at);
