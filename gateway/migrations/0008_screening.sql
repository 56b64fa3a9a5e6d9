-- Screening runs and their results, so a dropped stream resumes without
-- screening anyone twice (any replica can resume it). Results hold the
-- subject's keyed hash (for duplicates), never the ID: the caller matches
-- results to its list by position.
CREATE TABLE screening_runs (
    id          TEXT    NOT NULL PRIMARY KEY,
    requester   TEXT    NOT NULL,
    item        TEXT    NOT NULL,
    started_at  INTEGER NOT NULL, -- Unix ms
    updated_at  INTEGER NOT NULL,
    screened    INTEGER NOT NULL, -- results stored: the next position
    eligible    INTEGER NOT NULL
);
CREATE TABLE screening_results (
    run_id       TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    subject_hmac TEXT    NOT NULL, -- '' for an invalid subject
    result       BLOB    NOT NULL, -- the ScreenResult, protobuf
    PRIMARY KEY (run_id, seq)
);
