-- Settings every node must agree on, recorded by the first node to start. The cluster-shard
-- count decides which advisory lock guards a key: nodes that disagreed could deadlock.
CREATE TABLE cluster_settings (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);
