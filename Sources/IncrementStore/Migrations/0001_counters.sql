-- The committed totals: one row per key.
CREATE TABLE counters (
    key        text        PRIMARY KEY,
    value      bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
