//! Appends per second through the group-commit path (SQLite; PostgreSQL on
//! 127.0.0.1:5432 when reachable) and verification entries per second.
//!
//! `cargo bench -p xgate-audit --bench append`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xgate_audit::entry::{GENESIS, link};
use xgate_audit::{AuditLog, Keys, NewEntry, Options};

/// Entries per iteration: 64 concurrent fetches of 32 record types each.
const CALLERS: usize = 64;
const PER_CALL: usize = 32;

fn entry(i: usize) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id = format!("0193b2c4-7e1a-7c3d-9a8b-{i:012}");
    e.requester = "approval-hall-demo".into();
    e.operator_id = "op-17".into();
    e.purpose = "GENERAL-APPROVAL".into();
    e.case_id = "CASE-2026-000123".into();
    e.subject_hmac = "9f".repeat(32);
    e.record_type = "real_estate_title".into();
    e.decision = "permit".into();
    e.policy_ids = vec!["approval-hall-general".into()];
    e.policy_set_version = "a1b2c3d4".into();
    e.status = "OK".into();
    e.department = "natural-resources".into();
    e.latency_us = 1234;
    e
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, url: &str) {
    let log = rt
        .block_on(AuditLog::open(
            url,
            Keys::generate().unwrap(),
            Options {
                checkpoint_interval: Duration::ZERO,
                ..Options::default()
            },
        ))
        .unwrap();
    let log = std::sync::Arc::new(log);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements((CALLERS * PER_CALL) as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let log = std::sync::Arc::clone(&log);
            rt.block_on(async move {
                let calls = (0..CALLERS).map(|c| {
                    let log = std::sync::Arc::clone(&log);
                    async move {
                        let batch = (0..PER_CALL).map(|i| entry(c * PER_CALL + i)).collect();
                        log.append(batch).await.unwrap()
                    }
                });
                futures::future::join_all(calls).await
            })
        })
    });
    group.finish();
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("audit.db").display());
    bench_store(c, &rt, "sqlite", &url);

    let db = format!("xgate_audit_bench_{}", std::process::id());
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    let created = rt.block_on(async {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    });
    match created {
        Err(e) => eprintln!("skipping the PostgreSQL bench: {e}"),
        Ok(()) => {
            let url = format!("postgres://postgres@127.0.0.1:5432/{db}");
            bench_store(c, &rt, "postgres", &url);
            let _ = rt.block_on(async {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {db} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
            });
        }
    }
}

fn verify(c: &mut Criterion) {
    let entries = link(0, GENESIS, (0..100_000).map(entry).collect());
    let keys = Keys::generate().unwrap();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(entries.len() as u64));
    group.sample_size(10);
    group.bench_function("chain", |b| {
        b.iter(|| {
            let report = xgate_audit::verify::verify_entries(&entries, Vec::new(), &keys.trusted());
            assert!(report.is_ok());
        })
    });
    group.finish();
}

criterion_group!(benches, append, verify);
criterion_main!(benches);
