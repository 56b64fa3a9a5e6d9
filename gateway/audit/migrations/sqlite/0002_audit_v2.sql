-- Audit log v2: one RFC 6962 Merkle tree ("chain") per gateway instance,
-- one entry per answer stored as one blob, a narrow per-record index,
-- checkpoints as C2SP signed notes. The v1 tables (`audit_entries`,
-- `audit_checkpoints`) stay for the refusal check: a store holding v1
-- entries is refused, not migrated (export it with the previous binary).

-- One row per chain: its head, moved by compare-and-set on every append.
CREATE TABLE audit_chains (
    chain INTEGER PRIMARY KEY NOT NULL,
    instance TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    root BLOB NOT NULL
);

-- One row per entry; gid = chain * 2^40 + index. `data` is the leaf data
-- (canonical encoding + index), `nodes` the stored tree hashes (leaf hash
-- first). `time_us`, `kind`, `subject` and `requester` are copies for queries.
CREATE TABLE audit_log (
    gid INTEGER PRIMARY KEY NOT NULL,
    time_us INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    subject TEXT,
    requester TEXT NOT NULL,
    data BLOB NOT NULL,
    nodes BLOB NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject, gid) WHERE subject IS NOT NULL;
CREATE INDEX audit_log_requester ON audit_log (requester, gid);
CREATE INDEX audit_log_time ON audit_log (time_us);

-- One row per record decision of an entry (copies, for auditor queries).
CREATE TABLE audit_records (
    gid INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    record_type TEXT NOT NULL,
    department TEXT NOT NULL,
    decision INTEGER NOT NULL,
    PRIMARY KEY (gid, pos)
) WITHOUT ROWID;
CREATE INDEX audit_records_type ON audit_records (record_type, gid);

CREATE TABLE audit_tree_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain INTEGER NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    time_us INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX audit_tree_checkpoints_chain ON audit_tree_checkpoints (chain, size);

-- Every instance's signing key (adding one is an admin entry too).
CREATE TABLE audit_keys (
    public_key BLOB PRIMARY KEY NOT NULL,
    instance TEXT NOT NULL,
    added_us INTEGER NOT NULL
);

-- Secrets every instance shares: the subject HMAC key.
CREATE TABLE audit_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

CREATE TABLE tamper_alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    message TEXT NOT NULL
);
