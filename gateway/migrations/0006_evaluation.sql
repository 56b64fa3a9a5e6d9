-- The evaluation mechanism (see xgate/v1/evaluation.proto): ratings of
-- answers and objections against released records. A rating is bound to the
-- answer's audit entry (chain, index), once per record type.
CREATE TABLE ratings (
    id          TEXT    NOT NULL PRIMARY KEY,
    requester   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    chain       TEXT    NOT NULL,
    entry_index INTEGER NOT NULL,
    record_type TEXT    NOT NULL,
    department  TEXT    NOT NULL,
    good        INTEGER NOT NULL, -- 1 good, 0 bad
    reasons     TEXT    NOT NULL, -- JSON array of reason names
    text        TEXT    NOT NULL,
    rated_at    INTEGER NOT NULL, -- ms since the epoch
    UNIQUE (chain, entry_index, record_type)
);
CREATE INDEX ratings_by_type ON ratings (department, record_type, rated_at);

-- Objections: the subject is held in the clear (the owning department must
-- find the record), readable only by the filer, that department, auditors
-- and admins.
CREATE TABLE objections (
    id              TEXT    NOT NULL PRIMARY KEY,
    state           TEXT    NOT NULL, -- reported, circulated, disposed, fed_back, closed
    filed_by        TEXT    NOT NULL, -- identity URI of the filer
    request_id      TEXT    NOT NULL,
    chain           TEXT    NOT NULL,
    entry_index     INTEGER NOT NULL,
    subject_kind    TEXT    NOT NULL,
    subject_id      TEXT    NOT NULL,
    record_type     TEXT    NOT NULL,
    department      TEXT    NOT NULL,
    field_path      TEXT    NOT NULL,
    believed_value  TEXT    NOT NULL, -- JSON
    evidence_ref    TEXT    NOT NULL,
    disposition     TEXT    NOT NULL, -- '', corrected, rejected
    disposal_reason TEXT    NOT NULL,
    filed_at        INTEGER NOT NULL,
    due_at          INTEGER NOT NULL,
    acknowledged_at INTEGER,
    disposed_at     INTEGER,
    fed_back_at     INTEGER,
    closed_at       INTEGER,
    changed_at      INTEGER NOT NULL
);
CREATE INDEX objections_by_department ON objections (department, state);
CREATE INDEX objections_by_filer ON objections (filed_by, changed_at);
