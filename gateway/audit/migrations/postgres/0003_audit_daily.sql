-- Daily counts of record decisions, kept in the append transaction, so a
-- department scorecard over 7 or 30 days reads a few rows per day and
-- record type however many decisions the log holds (xgate_audit::rollup).
-- Latency is operational, not evidence: counted here, not in the hashed
-- entry.

-- By outcome.
CREATE TABLE audit_daily (
    day         BIGINT NOT NULL, -- days since the epoch (UTC)
    department  TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (day, department, record_type, status)
);

-- The latency of the decisions that asked the department (rollup::CALLED),
-- by log-linear bucket.
CREATE TABLE audit_daily_latency (
    day         BIGINT NOT NULL,
    department  TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    bucket      BIGINT NOT NULL, -- rollup::bucket of the latency in µs
    count       BIGINT NOT NULL,
    PRIMARY KEY (day, department, record_type, bucket)
);
