-- The gateway processes using this database, heartbeated every 2 s, so
-- `xgate cluster status` can list them and compare their policy sets.
CREATE TABLE gateway_replicas (
    instance       TEXT    NOT NULL PRIMARY KEY, -- the audit instance id
    address        TEXT    NOT NULL,
    policy_version TEXT    NOT NULL,
    started_at     INTEGER NOT NULL, -- ms since the epoch
    last_seen      INTEGER NOT NULL  -- ms since the epoch
);
