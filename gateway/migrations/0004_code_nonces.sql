-- Nonces of the subject codes accepted, so a code is used once, also across
-- replicas. Kept until the code has expired (plus clock skew).
CREATE TABLE code_nonces (
    nonce      TEXT    NOT NULL PRIMARY KEY, -- 32 hex digits (the code's cti)
    issuer     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL              -- Unix seconds
);
