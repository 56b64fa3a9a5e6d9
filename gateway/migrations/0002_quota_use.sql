-- Daily quota use per requester, record type and local day (UTC+8), so a
-- restart does not hand out a day's quota twice.
CREATE TABLE quota_use (
    requester   TEXT    NOT NULL,
    record_type TEXT    NOT NULL,
    day         TEXT    NOT NULL, -- YYYY-MM-DD, local
    used        INTEGER NOT NULL,
    day_limit   INTEGER NOT NULL, -- the limit of the last unit taken
    PRIMARY KEY (requester, record_type, day)
);
