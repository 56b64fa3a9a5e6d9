-- The web console's one-time sign-in URLs and browser sessions, shared by
-- every replica. Only the SHA-256 of a token is kept: a copy of this table
-- signs nobody in.
CREATE TABLE console_sessions (
    token_hash TEXT    NOT NULL PRIMARY KEY, -- hex SHA-256 of the URL's or cookie's token
    grant_kind TEXT    NOT NULL,             -- 'sign-in' (single use) or 'session'
    identity   TEXT    NOT NULL,             -- xgate://<kind>/<id> of the certificate that asked
    csrf       TEXT    NOT NULL,             -- the session's form token ('' for a sign-in)
    created_at INTEGER NOT NULL,             -- Unix ms
    expires_at INTEGER NOT NULL              -- Unix ms
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
