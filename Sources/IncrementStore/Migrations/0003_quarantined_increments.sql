-- Increments that could not be applied (the key's total would leave bigint), kept with the
-- reason so that nothing is dropped silently.
CREATE TABLE quarantined_increments (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id        uuid        NOT NULL,
    seq            bigint      NOT NULL,
    key            text        NOT NULL,
    delta          bigint      NOT NULL,
    reason         text        NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX quarantined_increments_batch ON quarantined_increments (node_id, seq);
