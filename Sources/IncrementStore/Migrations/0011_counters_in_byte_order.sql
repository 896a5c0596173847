-- migrate: without transaction
-- Listing and deleting by prefix walk the counters in the bytes' order (collation "C"), which the
-- primary key's index follows only in a database whose default collation is C. Built
-- CONCURRENTLY, so that writes go on while it builds on a large table; a build that failed
-- (an invalid index) is dropped and built again by the next migration run.
CREATE INDEX CONCURRENTLY IF NOT EXISTS counters_key_bytes ON counters (key COLLATE "C");
