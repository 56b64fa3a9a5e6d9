//! Daily counts of record decisions (`audit_daily`), kept by the writer in
//! the same transaction as the entries they count, so a scorecard over 7 or
//! 30 days reads a few thousand rows however many decisions the log holds.
//!
//! Latencies are counted in log-linear buckets: exact below 8 µs, then four
//! buckets per doubling, so a percentile read back from the counts (the
//! bucket's midpoint) is within 12.5 % of the true value.

use std::collections::HashMap;

/// One record decision as the writer counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub record_type: String,
    pub department: String,
    pub verdict: crate::entry::Verdict,
    /// `OK`, `NOT_FOUND`, `UNAVAILABLE`, ...
    pub status: String,
    pub latency_us: u64,
}

/// The bucket of a latency in microseconds.
pub fn bucket(latency_us: u64) -> i64 {
    let v = latency_us.max(1);
    if v < 8 {
        return i64::try_from(v).unwrap_or(0);
    }
    let e = 63 - i64::from(v.leading_zeros());
    let m = i64::try_from((v >> (e - 2)) & 3).unwrap_or(0);
    8 + (e - 3) * 4 + m
}

/// The half-open range `[lower, upper)` of microseconds a bucket counts.
pub fn bounds(bucket: i64) -> (u64, u64) {
    if bucket < 8 {
        let b = u64::try_from(bucket.max(0)).unwrap_or(0);
        return (b, b + 1);
    }
    let e = (bucket - 8) / 4 + 3;
    let m = u64::try_from((bucket - 8) % 4).unwrap_or(0);
    let shift = u32::try_from(e - 2).unwrap_or(0);
    ((4 + m) << shift, (5 + m) << shift)
}

/// The `q` quantile (0..=1) of bucketed counts, in microseconds (the
/// bucket's midpoint); `None` without counts.
pub fn quantile(counts: &[(i64, i64)], q: f64) -> Option<f64> {
    let mut sorted: Vec<(i64, i64)> = counts.iter().copied().filter(|(_, n)| *n > 0).collect();
    sorted.sort_unstable();
    let total: i64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile, 1-based (nearest rank).
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (b, n) in sorted {
        seen += n;
        if seen >= rank {
            let (lo, hi) = bounds(b);
            return Some((lo + hi) as f64 / 2.0);
        }
    }
    None
}

/// Days since the Unix epoch of a time in microseconds.
pub fn day_of(time_us: i64) -> i64 {
    time_us.div_euclid(86_400 * 1_000_000)
}

/// The statuses of a decision that asked the department (its adapter or
/// the record cache); their latencies are counted.
pub const CALLED: &[&str] = &["OK", "NOT_FOUND", "INVALID", "UNAVAILABLE"];

/// A row of `audit_daily`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusKey {
    pub day: i64,
    pub department: String,
    pub record_type: String,
    pub status: String,
}

/// A row of `audit_daily_latency`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LatencyKey {
    pub day: i64,
    pub department: String,
    pub record_type: String,
    pub bucket: i64,
}

/// A batch's counts, each list in key order (distinct keys, as one upsert
/// statement needs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Daily {
    pub statuses: Vec<(StatusKey, i64)>,
    pub latencies: Vec<(LatencyKey, i64)>,
}

/// Counts a batch's record decisions (`(entry time in µs, decision)`).
pub fn aggregate<'a>(decisions: impl IntoIterator<Item = (i64, &'a RecordRow)>) -> Daily {
    let mut statuses: HashMap<StatusKey, i64> = HashMap::new();
    let mut latencies: HashMap<LatencyKey, i64> = HashMap::new();
    for (time_us, r) in decisions {
        let day = day_of(time_us);
        *statuses
            .entry(StatusKey {
                day,
                department: r.department.clone(),
                record_type: r.record_type.clone(),
                status: r.status.clone(),
            })
            .or_default() += 1;
        if CALLED.contains(&r.status.as_str()) {
            *latencies
                .entry(LatencyKey {
                    day,
                    department: r.department.clone(),
                    record_type: r.record_type.clone(),
                    bucket: bucket(r.latency_us),
                })
                .or_default() += 1;
        }
    }
    let mut daily = Daily {
        statuses: statuses.into_iter().collect(),
        latencies: latencies.into_iter().collect(),
    };
    daily.statuses.sort_unstable();
    daily.latencies.sort_unstable();
    daily
}

/// Counts summed over a window, as [`crate::Store::daily_counts`] reads them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WindowCounts {
    /// `(department, record type, status, count)`.
    pub statuses: Vec<(String, String, String, i64)>,
    /// `(department, record type, bucket, count)`.
    pub latencies: Vec<(String, String, i64, i64)>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_latency_once_and_in_order() {
        let mut last = -1;
        for v in 0..100_000u64 {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            let (lo, hi) = bounds(b);
            assert!(
                lo <= v.max(1) && v.max(1) < hi,
                "{v} in bucket {b} [{lo}, {hi})"
            );
            // Within 12.5 % of the midpoint.
            let mid = (lo + hi) as f64 / 2.0;
            assert!(
                (mid - v.max(1) as f64).abs() <= 0.125 * v.max(1) as f64 + 0.5,
                "{v}"
            );
            last = b;
        }
        assert!(
            bucket(60_000_000) < 120,
            "a minute is bucket {}",
            bucket(60_000_000)
        );
    }

    #[test]
    fn quantiles_come_from_the_counts() {
        // 90 fast (1 ms), 10 slow (50 ms).
        let counts = [(bucket(1_000), 90), (bucket(50_000), 10)];
        let p50 = quantile(&counts, 0.5).unwrap();
        let p99 = quantile(&counts, 0.99).unwrap();
        assert!((875.0..=1_125.0).contains(&p50), "{p50}");
        assert!((43_750.0..=56_250.0).contains(&p99), "{p99}");
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_batch_is_counted_by_day_type_status_and_bucket() {
        let row = |t: &str, status: &str, us: u64| RecordRow {
            record_type: t.into(),
            department: "tax".into(),
            verdict: crate::entry::Verdict::Permit,
            status: status.into(),
            latency_us: us,
        };
        let a = row("tax_registration", "OK", 1_000);
        let b = row("tax_registration", "OK", 1_010);
        let c = row("tax_registration", "NOT_FOUND", 1_000);
        let d = row("tax_registration", "DENIED", 0);
        let day = 20_000 * 86_400 * 1_000_000;
        let daily = aggregate([
            (day, &a),
            (day + 1, &b),
            (day, &c),
            (day, &d),
            (day + 86_400_000_000, &a),
        ]);
        let statuses: Vec<(&str, i64, i64)> = daily
            .statuses
            .iter()
            .map(|(k, n)| (k.status.as_str(), k.day, *n))
            .collect();
        assert_eq!(
            statuses,
            [
                ("DENIED", 20_000, 1),
                ("NOT_FOUND", 20_000, 1),
                ("OK", 20_000, 2),
                ("OK", 20_001, 1)
            ]
        );
        // Latency only of calls: three on day 20000 (one bucket), one the next.
        let latencies: Vec<(i64, i64)> = daily.latencies.iter().map(|(k, n)| (k.day, *n)).collect();
        assert_eq!(latencies, [(20_000, 3), (20_001, 1)]);
    }
}
