//! The scorecard query over a log of one million record decisions.
//!
//! Builds a SQLite audit store (synchronous=NORMAL, to build it quicker;
//! the query does not care) of 250,000 answers of 4 decisions each,
//! through the writer's real append path, spread over the last 30 days,
//! 63 record types of 20 departments, with statuses and latencies drawn
//! from a fixed stream; then times what a scorecard reads: the 30-day (and
//! 7-day) daily counts of every department, and their quantiles.
//!
//! `cargo bench -p xgate-audit --bench scorecard`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use xgate_audit::{
    AuditLog, Decision, Keys, NewEntry, Options, SqliteSync, Store, Verdict, rollup,
};

const ANSWERS: usize = 250_000;
const PER_ANSWER: usize = 4;
const BATCH: usize = 1_000;
const DAY_US: i64 = 86_400 * 1_000_000;

/// SplitMix64: a fixed stream, so every run builds the same log.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn answer(i: usize, now_us: i64) -> NewEntry {
    let r = mix(i as u64);
    let mut e = NewEntry::access();
    e.time_us = now_us - (r % (30 * DAY_US as u64)) as i64;
    e.request_id = format!("req-{i}");
    e.requester = "approval-hall-demo".into();
    e.purpose = "GENERAL-APPROVAL".into();
    e.subject_hmac = format!("{:064x}", r);
    e.latency_us = 5_000;
    e.decisions = (0..PER_ANSWER)
        .map(|d| {
            let x = mix(r ^ d as u64);
            let t = (x % 63) as usize;
            let status = match x % 100 {
                0..=84 => "OK",
                85..=92 => "NOT_FOUND",
                93..=95 => "INVALID",
                96..=97 => "UNAVAILABLE",
                _ => "DENIED",
            };
            Decision {
                record_type: format!("record_type_{t}"),
                view: "full".into(),
                verdict: if status == "DENIED" {
                    Verdict::Deny
                } else {
                    Verdict::Permit
                },
                policy_ids: vec!["p".into()],
                status: status.into(),
                department: format!("department_{}", t % 20),
                records_digest: None,
                latency_us: 300 + (x >> 16) % 40_000,
            }
        })
        .collect();
    e
}

/// What the gateway's scorecard does with the counts: per department and
/// type, the calls and their p50 / p99.
fn summarise(counts: &rollup::WindowCounts) -> usize {
    let mut buckets: BTreeMap<(&str, &str), Vec<(i64, i64)>> = BTreeMap::new();
    for (d, t, b, n) in &counts.latencies {
        buckets.entry((d, t)).or_default().push((*b, *n));
    }
    buckets
        .values()
        .filter(|b| rollup::quantile(b, 0.5).is_some() && rollup::quantile(b, 0.99).is_some())
        .count()
}

fn scorecard(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("audit.db").display());
    let log = rt
        .block_on(async {
            let store = Store::open_with(&url, SqliteSync::Normal).await?;
            AuditLog::with_store(store, Keys::generate()?, Options::default()).await
        })
        .unwrap();
    let log = Arc::new(log);
    let now_us = xgate_audit::entry::now_us();
    let started = Instant::now();
    rt.block_on(async {
        for batch in 0..ANSWERS / BATCH {
            let entries = (0..BATCH)
                .map(|i| answer(batch * BATCH + i, now_us))
                .collect();
            log.append(entries).await.unwrap();
        }
    });
    eprintln!(
        "built {} decisions in {:.1} s",
        ANSWERS * PER_ANSWER,
        started.elapsed().as_secs_f64()
    );
    let store = log.store().clone();
    let today = rollup::day_of(now_us);
    // The spread reaches into a 31st calendar day.
    let counts = rt.block_on(store.daily_counts("", today - 30)).unwrap();
    let total: i64 = counts.statuses.iter().map(|r| r.3).sum();
    assert_eq!(
        total,
        (ANSWERS * PER_ANSWER) as i64,
        "every decision counted"
    );
    eprintln!(
        "{} status and {} latency rows summed over 31 days",
        counts.statuses.len(),
        counts.latencies.len()
    );
    let mut group = c.benchmark_group("scorecard");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, days, department) in [
        ("all_departments_30_days", 30, ""),
        ("all_departments_7_days", 7, ""),
        ("one_department_30_days", 30, "department_7"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let counts = rt
                    .block_on(store.daily_counts(department, today - (days - 1)))
                    .unwrap();
                assert!(summarise(&counts) > 0);
            })
        });
    }
    group.finish();
    let log = Arc::into_inner(log).unwrap();
    rt.block_on(log.close());
}

criterion_group!(benches, scorecard);
criterion_main!(benches);
