//! Durable record decisions per second through the group-commit path
//! (SQLite synchronous=FULL; PostgreSQL on 127.0.0.1:5432 when reachable,
//! in a database of its own), verification decisions per second (in
//! memory and from a store), and receipt verification time.
//!
//! `cargo bench -p xgate-audit --bench append`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xgate_audit::entry::leaf_data;
use xgate_audit::{AuditLog, Decision, Keys, NewEntry, Options, Receipt, Verdict, digest_records};

/// Answers per iteration: 64 concurrent fetches, 4 answers each (a fetch
/// or stream batches), 3–10 decisions per answer (6.5 on average).
const CALLERS: usize = 64;
const PER_CALL: usize = 4;

fn decisions_of(i: usize) -> usize {
    3 + i % 8
}

fn answer(i: usize) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id = format!("0193b2c4-7e1a-7c3d-9a8b-{i:012}");
    e.requester = "approval-hall-demo".into();
    e.operator_id = "op-17".into();
    e.purpose = "GENERAL-APPROVAL".into();
    e.case_id = "CASE-2026-000123".into();
    e.subject_hmac = "9f".repeat(32);
    e.policy_set_version = "a1b2c3d4".into();
    e.latency_us = 1234;
    e.decisions = (0..decisions_of(i))
        .map(|d| Decision {
            record_type: format!("record_type_{d}"),
            view: "full".into(),
            verdict: if d % 5 == 4 {
                Verdict::Deny
            } else {
                Verdict::Permit
            },
            policy_ids: vec!["approval-hall-general".into()],
            status: if d % 5 == 4 { "DENIED" } else { "OK" }.into(),
            department: "natural-resources".into(),
            records_digest: (d % 5 != 4).then(|| digest_records([b"{\"a\":1}".as_slice()])),
            latency_us: 0,
        })
        .collect();
    e
}

fn decisions_per_iteration() -> u64 {
    (0..CALLERS * PER_CALL).map(decisions_of).sum::<usize>() as u64
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, url: &str) {
    let log = rt
        .block_on(AuditLog::open(
            url,
            Keys::generate().unwrap(),
            Options::default(),
        ))
        .unwrap();
    let log = Arc::new(log);
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(decisions_per_iteration()));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(name, |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..CALLERS).map(|c| {
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        let batch = (0..PER_CALL).map(|i| answer(c * PER_CALL + i)).collect();
                        log.append(batch).await.unwrap()
                    })
                });
                futures::future::join_all(calls).await
            })
        })
    });
    group.finish();
    // Verification from the store just written.
    let store = log.store().clone();
    let trusted = rt.block_on(log.trusted()).unwrap();
    let report = rt
        .block_on(xgate_audit::verify_store(&store, &trusted))
        .unwrap();
    assert!(report.is_ok(), "{report}");
    let mut group = c.benchmark_group("verify_store");
    group.throughput(Throughput::Elements(report.decisions()));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let r = rt
                .block_on(xgate_audit::verify_store(&store, &trusted))
                .unwrap();
            assert!(r.is_ok());
        })
    });
    group.finish();
    // A receipt against the store (entry read, hashed, inclusion proof).
    let receipt = rt
        .block_on(async {
            let r = log.append(vec![answer(7)]).await.unwrap();
            log.checkpoint().await.unwrap();
            r
        })
        .pop()
        .unwrap();
    c.bench_function(&format!("verify_receipt_in_store/{name}"), |b| {
        b.iter(|| {
            rt.block_on(xgate_audit::verify_receipt(&store, &receipt, &trusted))
                .unwrap()
        })
    });
    let log = Arc::into_inner(log).unwrap();
    rt.block_on(log.close());
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
    let chain = "gw-bench";
    let leaves: Vec<Vec<u8>> = (0..50_000)
        .map(|i| leaf_data(&answer(i).encode(chain), i as u64))
        .collect();
    let decisions: u64 = (0..leaves.len()).map(decisions_of).sum::<usize>() as u64;
    let keys = Keys::generate().unwrap();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(decisions));
    group.sample_size(10);
    group.bench_function("leaves_in_memory", |b| {
        b.iter(|| {
            let report = xgate_audit::verify::verify_leaves(chain, &leaves, &[], &keys.trusted());
            assert!(report.is_ok());
        })
    });
    group.finish();

    let e = answer(3);
    let leaf = xgate_audit::merkle::leaf_hash(&leaf_data(&e.encode(chain), 0));
    let receipt: Receipt = xgate_audit::receipt::Receipt::from_json(
        &serde_json::json!({
            "chain": chain,
            "index": 0,
            "entry_hash": hex::encode(leaf),
            "records_digest": hex::encode(e.records_digest()),
            "batch": { "first": 0, "size": 1, "path": [] },
            "signature": hex::encode(keys.sign(&xgate_audit::receipt::batch_message(
                chain, 0, 1, &xgate_audit::receipt::batch_leaf(&leaf, &e.records_digest())))),
        })
        .to_string(),
    )
    .unwrap();
    let trusted = keys.trusted();
    c.bench_function("verify_receipt_signature_offline", |b| {
        b.iter(|| assert!(receipt.verify_signature(&trusted).is_some()))
    });
}

criterion_group!(benches, append, verify);
criterion_main!(benches);
