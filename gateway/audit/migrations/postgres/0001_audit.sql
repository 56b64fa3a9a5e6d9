-- The hash-chained audit entries and the signed checkpoints over them.
CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY NOT NULL,
    time_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    gateway TEXT NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    operator_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    case_id TEXT NOT NULL,
    approval_item TEXT NOT NULL,
    subject_hmac TEXT NOT NULL,
    record_type TEXT NOT NULL,
    view TEXT NOT NULL,
    decision TEXT NOT NULL,
    policy_ids TEXT NOT NULL,
    policy_set_version TEXT NOT NULL,
    status TEXT NOT NULL,
    department TEXT NOT NULL,
    latency_us BIGINT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_entries_subject ON audit_entries (subject_hmac, seq);
CREATE INDEX audit_entries_requester ON audit_entries (requester, seq);
CREATE INDEX audit_entries_time ON audit_entries (time_us);

CREATE TABLE audit_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    entries BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    time_us BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);
