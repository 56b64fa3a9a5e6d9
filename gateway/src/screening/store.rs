//! Screening runs in the gateway's store (SQLite migration 0008;
//! PostgreSQL: [`PG_SCHEMA`]), shared by replicas: a run started on one
//! resumes on another. A chunk's results and the run's cursor move in one
//! transaction, so the cursor never points past what is stored.

use std::time::SystemTime;

use prost::Message as _;
use xgate_proto::v1::ScreenResult;

use crate::store::{Store, StoreError, from_millis, millis, on_pool};

/// The PostgreSQL tables (SQLite: migration 0008).
pub(crate) const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS screening_runs (
    id         TEXT   NOT NULL PRIMARY KEY,
    requester  TEXT   NOT NULL,
    item       TEXT   NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    screened   BIGINT NOT NULL,
    eligible   BIGINT NOT NULL
)",
    "CREATE TABLE IF NOT EXISTS screening_results (
    run_id       TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    subject_hmac TEXT   NOT NULL,
    result       BYTEA  NOT NULL,
    PRIMARY KEY (run_id, seq)
)",
];

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub requester: String,
    pub item: String,
    pub started_at: SystemTime,
    /// Results stored: the position of the next subject.
    pub screened: u64,
    pub eligible: u64,
}

/// One result to store: its position, subject hash and the result itself.
pub struct ResultRow<'a> {
    pub seq: u64,
    pub subject_hmac: &'a str,
    pub result: &'a ScreenResult,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Records a new run.
    pub async fn screening_start(&self, run: &RunRow) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO screening_runs
             (id, requester, item, started_at, updated_at, screened, eligible)
             VALUES ($1, $2, $3, $4, $4, 0, 0)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(&run.id)
            .bind(&run.requester)
            .bind(&run.item)
            .bind(millis(run.started_at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The run `id`, if any.
    pub async fn screening_run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        const SQL: &str = "SELECT id, requester, item, started_at, screened, eligible
             FROM screening_runs WHERE id = $1";
        let row: Option<(String, String, String, i64, i64, i64)> = on_pool!(self, p =>
            sqlx::query_as(SQL).bind(id).fetch_optional(p).await?);
        Ok(row.map(
            |(id, requester, item, started_at, screened, eligible)| RunRow {
                id,
                requester,
                item,
                started_at: from_millis(started_at),
                screened: to_u64(screened),
                eligible: to_u64(eligible),
            },
        ))
    }

    /// The stored results of run `id` after position `after` (all for
    /// `None`), in order, with their subjects' hashes.
    pub async fn screening_results(
        &self,
        id: &str,
        after: Option<u64>,
    ) -> Result<Vec<(String, ScreenResult)>, StoreError> {
        const SQL: &str = "SELECT subject_hmac, result FROM screening_results
             WHERE run_id = $1 AND seq > $2 ORDER BY seq";
        let rows: Vec<(String, Vec<u8>)> = on_pool!(self, p => sqlx::query_as(SQL)
            .bind(id)
            .bind(after.map_or(-1, to_i64))
            .fetch_all(p)
            .await?);
        rows.into_iter()
            .map(|(hmac, bytes)| {
                ScreenResult::decode(bytes.as_slice())
                    .map(|r| (hmac, r))
                    .map_err(|e| StoreError::Invalid(format!("stored screening result: {e}")))
            })
            .collect()
    }

    /// Stores a chunk's results and moves the run's cursor past them, in
    /// one transaction; `false` when the run's cursor was not at the
    /// chunk's first position (another stream of the run moved it).
    pub async fn screening_save(
        &self,
        id: &str,
        rows: &[ResultRow<'_>],
        eligible: u64,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(true);
        };
        const MOVE: &str = "UPDATE screening_runs SET screened = $1, eligible = eligible + $2,
                 updated_at = $3 WHERE id = $4 AND screened = $5";
        const INSERT: &str = "INSERT INTO screening_results (run_id, seq, subject_hmac, result)
             VALUES ($1, $2, $3, $4)";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let moved = sqlx::query(MOVE)
                .bind(to_i64(last.seq + 1))
                .bind(to_i64(eligible))
                .bind(millis(now))
                .bind(id)
                .bind(to_i64(first.seq))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved != 1 {
                return Ok(false);
            }
            for row in rows {
                sqlx::query(INSERT)
                    .bind(id)
                    .bind(to_i64(row.seq))
                    .bind(row.subject_hmac)
                    .bind(row.result.encode_to_vec())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Takes up to `want` units of `key` for `requester` on `day` under
    /// `limit`; how many were granted (0 when the day's are spent).
    pub async fn take_units(
        &self,
        requester: &str,
        key: &str,
        day: &str,
        want: u32,
        limit: u32,
    ) -> Result<u32, StoreError> {
        const ENSURE: &str = "INSERT INTO quota_use (requester, record_type, day, used, day_limit)
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (requester, record_type, day) DO NOTHING";
        const READ_SQLITE: &str =
            "SELECT used FROM quota_use WHERE requester = $1 AND record_type = $2 AND day = $3";
        const READ_PG: &str = "SELECT used FROM quota_use
             WHERE requester = $1 AND record_type = $2 AND day = $3 FOR UPDATE";
        const TAKE: &str = "UPDATE quota_use SET used = used + $4, day_limit = $5
             WHERE requester = $1 AND record_type = $2 AND day = $3";
        macro_rules! take {
            ($p:expr, $read:expr) => {{
                // The ENSURE write makes the transaction a writer first, so
                // the read and the update see no other taker in between.
                let mut tx = $p.begin().await?;
                sqlx::query(ENSURE)
                    .bind(requester)
                    .bind(key)
                    .bind(day)
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await?;
                let used: i64 = sqlx::query_scalar($read)
                    .bind(requester)
                    .bind(key)
                    .bind(day)
                    .fetch_one(&mut *tx)
                    .await?;
                let left = (i64::from(limit) - used).max(0);
                let granted = u32::try_from(left.min(i64::from(want))).unwrap_or(0);
                sqlx::query(TAKE)
                    .bind(requester)
                    .bind(key)
                    .bind(day)
                    .bind(i64::from(granted))
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                granted
            }};
        }
        Ok(match &self.pool {
            crate::store::Pool::Sqlite(p) => take!(p, READ_SQLITE),
            crate::store::Pool::Pg(p) => take!(p, READ_PG),
        })
    }

    /// Units of `key` used by `requester` on `day`.
    pub async fn units_used(
        &self,
        requester: &str,
        key: &str,
        day: &str,
    ) -> Result<u64, StoreError> {
        const SQL: &str =
            "SELECT used FROM quota_use WHERE requester = $1 AND record_type = $2 AND day = $3";
        let used: Option<i64> = on_pool!(self, p => sqlx::query_scalar(SQL)
            .bind(requester)
            .bind(key)
            .bind(day)
            .fetch_optional(p)
            .await?);
        Ok(used.map_or(0, to_u64))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use xgate_proto::v1::Eligibility;

    #[tokio::test]
    async fn results_and_cursor_move_together_and_units_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("gw.db")).await.unwrap();
        let now = SystemTime::now();
        store
            .screening_start(&RunRow {
                id: "r1".into(),
                requester: "civil".into(),
                item: "ELDERLY-ALLOWANCE".into(),
                started_at: now,
                screened: 0,
                eligible: 0,
            })
            .await
            .unwrap();
        let result = |seq| ScreenResult {
            seq,
            eligibility: Eligibility::Eligible as i32,
            ..ScreenResult::default()
        };
        let (a, b) = (result(0), result(1));
        let rows = [
            ResultRow {
                seq: 0,
                subject_hmac: "h0",
                result: &a,
            },
            ResultRow {
                seq: 1,
                subject_hmac: "h1",
                result: &b,
            },
        ];
        assert!(store.screening_save("r1", &rows, 2, now).await.unwrap());
        // The same chunk again (a second stream of the run): refused.
        assert!(!store.screening_save("r1", &rows, 2, now).await.unwrap());
        let run = store.screening_run("r1").await.unwrap().unwrap();
        assert_eq!((run.screened, run.eligible), (2, 2));
        let after = store.screening_results("r1", Some(0)).await.unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].0.as_str(), after[0].1.seq), ("h1", 1));
        assert_eq!(store.screening_results("r1", None).await.unwrap().len(), 2);
        assert!(store.screening_run("nope").await.unwrap().is_none());

        assert_eq!(
            store
                .take_units("civil", "screen:X", "2026-12-07", 7, 10)
                .await
                .unwrap(),
            7
        );
        assert_eq!(
            store
                .take_units("civil", "screen:X", "2026-12-07", 7, 10)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .take_units("civil", "screen:X", "2026-12-07", 1, 10)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .units_used("civil", "screen:X", "2026-12-07")
                .await
                .unwrap(),
            10
        );
        assert_eq!(
            store
                .take_units("civil", "screen:X", "2026-12-08", 1, 10)
                .await
                .unwrap(),
            1
        );
    }
}
