-- Subjects' consents to share CONDITIONAL record types with a requester or
-- group for a purpose (see xgate/v1/consent.proto). Subjects are named by
-- the audit log's keyed hash, never by their ID number.
CREATE TABLE consents (
    id            TEXT    NOT NULL PRIMARY KEY,
    subject_hmac  TEXT    NOT NULL,
    grantee       TEXT    NOT NULL, -- requester id, or `group:<id>`
    purpose       TEXT    NOT NULL,
    record_types  TEXT    NOT NULL, -- JSON array of catalog ids
    approval_item TEXT    NOT NULL, -- '' for none
    granted_at    INTEGER NOT NULL, -- ms since the epoch
    valid_until   INTEGER NOT NULL,
    revoked_at    INTEGER,
    evidence      TEXT    NOT NULL,
    granted_by    TEXT    NOT NULL
);
CREATE INDEX consents_by_subject ON consents (subject_hmac);
