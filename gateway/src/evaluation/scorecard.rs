//! Department scorecards: what each department's record types did over a
//! window, from three sources the gateway already keeps — the audit log's
//! daily counts (calls, statuses, latency buckets; [`xgate_audit::rollup`]),
//! the ratings and the objections. No decision is read one by one: the
//! cost is the number of (day, type, status, bucket) rows, not the number
//! of decisions.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use xgate_audit::rollup;
use xgate_proto::v1::{DepartmentScorecard, Scorecard, TypeScorecard};

use super::store::ObjectionRow;

use rollup::CALLED;

/// What one record type (or a department's total) adds up.
#[derive(Debug, Default, Clone)]
struct Tally {
    statuses: BTreeMap<String, i64>,
    /// Latency buckets of the calls.
    buckets: BTreeMap<i64, i64>,
    ratings: (i64, i64),
    open: u64,
    overdue: u64,
    dispose_hours: Vec<f64>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        for (s, n) in &other.statuses {
            *self.statuses.entry(s.clone()).or_default() += n;
        }
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_default() += n;
        }
        self.ratings.0 += other.ratings.0;
        self.ratings.1 += other.ratings.1;
        self.open += other.open;
        self.overdue += other.overdue;
        self.dispose_hours.extend_from_slice(&other.dispose_hours);
    }

    fn card(&self) -> Scorecard {
        let count = |s: &str| u64::try_from(*self.statuses.get(s).unwrap_or(&0)).unwrap_or(0);
        let called: u64 = CALLED.iter().map(|s| count(s)).sum();
        let answered = called - count("UNAVAILABLE");
        let rate = |n: u64| {
            if called == 0 {
                0.0
            } else {
                n as f64 / called as f64
            }
        };
        let buckets: Vec<(i64, i64)> = self.buckets.iter().map(|(b, n)| (*b, *n)).collect();
        let ms = |q: f64| rollup::quantile(&buckets, q).map_or(0.0, |us| us / 1000.0);
        Scorecard {
            called,
            answered,
            availability: if called == 0 { 1.0 } else { rate(answered) },
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            invalid_rate: rate(count("INVALID")),
            not_found_rate: rate(count("NOT_FOUND")),
            ratings_good: u64::try_from(self.ratings.0).unwrap_or(0),
            ratings_bad: u64::try_from(self.ratings.1).unwrap_or(0),
            objections_open: self.open,
            objections_overdue: self.overdue,
            median_dispose_hours: median(&self.dispose_hours),
        }
    }
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The inputs of [`scorecards`], as read from the stores.
pub struct Inputs {
    /// The audit log's counts summed over the window.
    pub daily: rollup::WindowCounts,
    /// `(department, record type, good, bad)`.
    pub ratings: Vec<(String, String, i64, i64)>,
    pub objections: Vec<ObjectionRow>,
}

/// Scorecards per department (and per record type within it), in
/// department order; `now` and `since` judge overdue objections and which
/// disposals fall in the window.
pub fn scorecards(inputs: &Inputs, since: SystemTime, now: SystemTime) -> Vec<DepartmentScorecard> {
    let mut types: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (department, record_type, status, count) in &inputs.daily.statuses {
        let t = types
            .entry((department.clone(), record_type.clone()))
            .or_default();
        *t.statuses.entry(status.clone()).or_default() += count;
    }
    for (department, record_type, bucket, count) in &inputs.daily.latencies {
        let t = types
            .entry((department.clone(), record_type.clone()))
            .or_default();
        *t.buckets.entry(*bucket).or_default() += count;
    }
    for (department, record_type, good, bad) in &inputs.ratings {
        let t = types
            .entry((department.clone(), record_type.clone()))
            .or_default();
        t.ratings.0 += good;
        t.ratings.1 += bad;
    }
    for o in &inputs.objections {
        let t = types
            .entry((o.department.clone(), o.record_type.clone()))
            .or_default();
        if o.state.is_open() {
            t.open += 1;
            if now > o.due_at {
                t.overdue += 1;
            }
        }
        if let Some(disposed) = o.disposed_at.filter(|d| *d >= since) {
            let took = disposed
                .duration_since(o.filed_at)
                .unwrap_or(Duration::ZERO);
            t.dispose_hours.push(took.as_secs_f64() / 3600.0);
        }
    }
    let mut departments: BTreeMap<String, (Tally, Vec<TypeScorecard>)> = BTreeMap::new();
    for ((department, record_type), tally) in types {
        let (total, cards) = departments.entry(department).or_default();
        total.add(&tally);
        cards.push(TypeScorecard {
            record_type,
            card: Some(tally.card()),
        });
    }
    departments
        .into_iter()
        .map(|(department, (total, record_types))| DepartmentScorecard {
            department,
            total: Some(total.card()),
            record_types,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::store::State;

    fn objection(
        state: State,
        filed: SystemTime,
        due: SystemTime,
        disposed: Option<SystemTime>,
    ) -> ObjectionRow {
        ObjectionRow {
            id: "o".into(),
            state,
            filed_by: "xgate://requester/hall".into(),
            request_id: "r".into(),
            chain: "c".into(),
            entry_index: 0,
            subject_kind: "resident_id".into(),
            subject_id: "s".into(),
            record_type: "tax_registration".into(),
            department: "tax".into(),
            field_path: "f".into(),
            believed_value: serde_json::Value::Null,
            evidence_ref: "e".into(),
            disposition: String::new(),
            disposal_reason: String::new(),
            filed_at: filed,
            due_at: due,
            acknowledged_at: None,
            disposed_at: disposed,
            fed_back_at: None,
            closed_at: None,
            changed_at: filed,
        }
    }

    #[test]
    fn a_scorecard_adds_up_calls_ratings_and_objections() {
        let hour = Duration::from_secs(3600);
        let now = SystemTime::now();
        let since = now - 7 * 24 * hour;
        let t = |s: &str, n: i64| {
            (
                "tax".to_owned(),
                "tax_registration".to_owned(),
                s.to_owned(),
                n,
            )
        };
        let l = |us: u64, n: i64| {
            (
                "tax".to_owned(),
                "tax_registration".to_owned(),
                rollup::bucket(us),
                n,
            )
        };
        let inputs = Inputs {
            daily: rollup::WindowCounts {
                statuses: vec![
                    t("OK", 80),
                    t("NOT_FOUND", 10),
                    t("INVALID", 5),
                    t("UNAVAILABLE", 5),
                    // Denied decisions asked nobody: not a call.
                    t("DENIED", 50),
                ],
                latencies: vec![l(1_000, 90), l(2_000, 5), l(500_000, 5)],
            },
            ratings: vec![("tax".into(), "tax_registration".into(), 3, 1)],
            objections: vec![
                objection(State::Reported, now - 200 * hour, now - hour, None),
                objection(State::Circulated, now - hour, now + hour, None),
                objection(State::Closed, now - 10 * hour, now, Some(now - 6 * hour)),
                objection(State::Disposed, now - 8 * hour, now, Some(now - 6 * hour)),
            ],
        };
        let cards = scorecards(&inputs, since, now);
        assert_eq!(cards.len(), 1);
        let card = cards[0].total.unwrap();
        assert_eq!((card.called, card.answered), (100, 95));
        assert!((card.availability - 0.95).abs() < 1e-9);
        assert!((card.invalid_rate - 0.05).abs() < 1e-9);
        assert!((card.not_found_rate - 0.10).abs() < 1e-9);
        assert!((0.875..=1.125).contains(&card.p50_ms), "{}", card.p50_ms);
        assert!((437.5..=562.5).contains(&card.p99_ms), "{}", card.p99_ms);
        assert_eq!((card.ratings_good, card.ratings_bad), (3, 1));
        assert_eq!((card.objections_open, card.objections_overdue), (2, 1));
        assert!(
            (card.median_dispose_hours - 3.0).abs() < 1e-6,
            "{}",
            card.median_dispose_hours
        );
        assert_eq!(cards[0].record_types.len(), 1);
    }

    #[test]
    fn a_department_never_called_is_available() {
        let card = Tally::default().card();
        assert_eq!((card.called, card.availability), (0, 1.0));
    }
}
