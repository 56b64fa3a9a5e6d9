//! Per-requester daily quotas on record types, set by `@daily_quota("N")`
//! on the permit policies that grant them.
//!
//! Counted in the gateway's store per (requester, record type, local day):
//! a fetch takes one unit of each metered type it is permitted (however many
//! views of the type it asks: the type is fetched once), and the type is
//! refused once the day's units are spent. The count is exact across
//! replicas sharing a PostgreSQL store (one conditional upsert per fetch,
//! see [`Store::take_quota`]), survives restarts and policy reloads (a quota
//! raised at noon applies to what was already used). When the store cannot
//! count, the metered types are not released (fail closed).

use std::sync::atomic::{AtomicI32, Ordering};

use time::Date;

use crate::store::{Store, StoreError};

/// Daily quota use, kept in the gateway's store.
pub struct Quotas {
    store: Store,
    /// Julian day of the newest day seen; a new one clears older days' rows.
    newest_day: AtomicI32,
}

impl Quotas {
    pub fn new(store: Store) -> Quotas {
        Quotas {
            store,
            newest_day: AtomicI32::new(i32::MIN),
        }
    }

    /// Takes one unit of each asked `(record type, limit)` for `today`;
    /// the answer is parallel to `asks`: true where a unit was left. A type
    /// asked twice takes one unit, under the smaller limit.
    pub async fn take(
        &self,
        requester: &str,
        today: Date,
        asks: &[(&str, u32)],
    ) -> Result<Vec<bool>, StoreError> {
        let day = today.to_string();
        self.forget_old(today, &day).await;
        let mut distinct: Vec<(&str, u32)> = Vec::with_capacity(asks.len());
        for &(record_type, limit) in asks {
            match distinct.iter_mut().find(|(t, _)| *t == record_type) {
                Some((_, l)) => *l = (*l).min(limit),
                None => distinct.push((record_type, limit)),
            }
        }
        let granted = self.store.take_quota(requester, &day, &distinct).await?;
        Ok(asks
            .iter()
            .map(|(record_type, _)| granted.iter().any(|g| g == record_type))
            .collect())
    }

    /// Units of `record_type` used by `requester` on `day`.
    pub async fn used(
        &self,
        requester: &str,
        record_type: &str,
        day: Date,
    ) -> Result<u64, StoreError> {
        self.store
            .quota_used(requester, record_type, &day.to_string())
            .await
    }

    /// On the first take of a new day, drops the rows of earlier days (a
    /// failure only leaves them for the next day).
    async fn forget_old(&self, today: Date, day: &str) {
        let julian = today.to_julian_day();
        if self.newest_day.fetch_max(julian, Ordering::Relaxed) < julian
            && let Err(e) = self.store.forget_quota_before(day).await
        {
            tracing::warn!(error = %e, "could not drop earlier days' quota use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    async fn quotas() -> (Quotas, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("gw.db")).await.expect("store");
        (Quotas::new(store), dir)
    }

    const DAY: Date = date!(2026 - 11 - 25);

    #[tokio::test]
    async fn spends_the_limit_then_refuses() {
        let (q, _dir) = quotas().await;
        assert_eq!(q.take("r", DAY, &[("t", 2)]).await.expect("take"), [true]);
        assert_eq!(q.take("r", DAY, &[("t", 2)]).await.expect("take"), [true]);
        assert_eq!(q.take("r", DAY, &[("t", 2)]).await.expect("take"), [false]);
        assert_eq!(q.used("r", "t", DAY).await.expect("used"), 2);
    }

    #[tokio::test]
    async fn counts_per_requester_and_type_in_one_take() {
        let (q, _dir) = quotas().await;
        let asks = [("t", 1), ("t2", 1)];
        assert_eq!(q.take("r", DAY, &asks).await.expect("take"), [true, true]);
        assert_eq!(q.take("r2", DAY, &asks).await.expect("take"), [true, true]);
        assert_eq!(q.take("r", DAY, &asks).await.expect("take"), [false, false]);
    }

    #[tokio::test]
    async fn a_type_asked_twice_takes_one_unit() {
        let (q, _dir) = quotas().await;
        let asks = [("t", 5), ("t", 3)];
        assert_eq!(q.take("r", DAY, &asks).await.expect("take"), [true, true]);
        assert_eq!(q.used("r", "t", DAY).await.expect("used"), 1);
    }

    #[tokio::test]
    async fn a_raised_limit_applies_to_what_was_used() {
        let (q, _dir) = quotas().await;
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [true]);
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [false]);
        assert_eq!(q.take("r", DAY, &[("t", 2)]).await.expect("take"), [true]);
        assert_eq!(q.used("r", "t", DAY).await.expect("used"), 2);
    }

    #[tokio::test]
    async fn a_new_day_starts_from_zero_and_drops_the_old() {
        let (q, _dir) = quotas().await;
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [true]);
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [false]);
        let next = date!(2026 - 11 - 26);
        assert_eq!(q.take("r", next, &[("t", 1)]).await.expect("take"), [true]);
        assert_eq!(q.used("r", "t", DAY).await.expect("used"), 0);
    }

    #[tokio::test]
    async fn a_zero_quota_refuses_everything() {
        let (q, _dir) = quotas().await;
        assert_eq!(q.take("r", DAY, &[("t", 0)]).await.expect("take"), [false]);
    }

    #[tokio::test]
    async fn use_survives_reopening_the_store() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gw.db");
        let q = Quotas::new(Store::open(&path).await.expect("store"));
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [true]);
        q.store.close().await;
        let q = Quotas::new(Store::open(&path).await.expect("store"));
        assert_eq!(q.take("r", DAY, &[("t", 1)]).await.expect("take"), [false]);
    }
}
