//! Per-requester daily quotas on record types, set by `@daily_quota("N")`
//! on the permit policies that grant them.
//!
//! Counted in the gateway process per (requester, record type, local day):
//! a fetch of a type takes one unit when its decision carries a quota, and
//! is refused once the day's units are spent. Counts survive policy reloads
//! (a quota raised at noon applies to what was already used) but not a
//! restart, and each gateway process counts its own share.

use std::collections::HashMap;
use std::sync::Mutex;

use time::Date;

/// The day's use per (requester, record type).
#[derive(Debug, Default)]
pub struct Quotas {
    used: Mutex<HashMap<(String, String), (Date, u32)>>,
}

impl Quotas {
    /// Takes one unit of `limit` for `today`; false when none is left.
    pub fn take(&self, requester: &str, record_type: &str, today: Date, limit: u32) -> bool {
        let mut used = match self.used.lock() {
            Ok(guard) => guard,
            // A panic while holding the lock cannot leave a count half-written.
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = used
            .entry((requester.to_owned(), record_type.to_owned()))
            .or_insert((today, 0));
        if entry.0 != today {
            *entry = (today, 0);
        }
        if entry.1 >= limit {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Units used today, for operators and tests.
    pub fn used(&self, requester: &str, record_type: &str, today: Date) -> u32 {
        let used = match self.used.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        match used.get(&(requester.to_owned(), record_type.to_owned())) {
            Some((day, n)) if *day == today => *n,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn spends_the_limit_then_refuses() {
        let q = Quotas::default();
        let day = date!(2026 - 11 - 25);
        assert!(q.take("r", "t", day, 2));
        assert!(q.take("r", "t", day, 2));
        assert!(!q.take("r", "t", day, 2));
        assert_eq!(q.used("r", "t", day), 2);
    }

    #[test]
    fn counts_per_requester_and_type() {
        let q = Quotas::default();
        let day = date!(2026 - 11 - 25);
        assert!(q.take("r", "t", day, 1));
        assert!(q.take("r2", "t", day, 1));
        assert!(q.take("r", "t2", day, 1));
        assert!(!q.take("r", "t", day, 1));
    }

    #[test]
    fn a_new_day_starts_from_zero() {
        let q = Quotas::default();
        assert!(q.take("r", "t", date!(2026 - 11 - 25), 1));
        assert!(!q.take("r", "t", date!(2026 - 11 - 25), 1));
        assert!(q.take("r", "t", date!(2026 - 11 - 26), 1));
    }

    #[test]
    fn a_zero_quota_refuses_everything() {
        assert!(!Quotas::default().take("r", "t", date!(2026 - 11 - 25), 0));
    }
}
