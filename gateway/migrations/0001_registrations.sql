-- Adapters registered through the Registry API; they survive restarts.
CREATE TABLE adapter_registrations (
    department    TEXT    NOT NULL,
    adapter_id    TEXT    NOT NULL,
    endpoints     TEXT    NOT NULL, -- JSON array of https:// URLs
    record_types  TEXT    NOT NULL, -- JSON array of catalog ids
    registered_at INTEGER NOT NULL, -- unix milliseconds
    last_seen     INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (department, adapter_id)
);
