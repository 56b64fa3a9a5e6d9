//! The log against real stores: SQLite in a temp dir, PostgreSQL on
//! 127.0.0.1:5432 in a database of each test's own (dropped at the end).

use super::*;
use crate::entry::{Decision, Verdict, digest_records};
use crate::merkle::{verify_consistency, verify_inclusion};
use crate::store::{Filter, gid};
use crate::{export_lines, verify_export, verify_receipt, verify_store, verify_with_trusted};
use futures::StreamExt as _;
use sqlx::Connection as _;

fn options() -> Options {
    Options {
        max_batch: 100,
        checkpoint_interval: Duration::ZERO,
        checkpoint_every: 0,
    }
}

/// An answer of `decisions` record decisions.
fn answer(i: usize, decisions: usize, subject: &str) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id = format!("req-{i}");
    e.subject_hmac = subject.to_owned();
    e.requester = if i.is_multiple_of(2) { "a" } else { "b" }.into();
    e.purpose = "GENERAL".into();
    e.decisions = (0..decisions)
        .map(|d| Decision {
            record_type: format!("type_{d}"),
            view: "full".into(),
            verdict: if d == 2 {
                Verdict::Deny
            } else {
                Verdict::Permit
            },
            policy_ids: vec!["p".into()],
            status: if d == 2 { "DENIED" } else { "OK" }.into(),
            department: "tax".into(),
            records_digest: (d != 2).then(|| digest_records([format!("{i}/{d}").as_bytes()])),
            latency_us: 0,
        })
        .collect();
    e
}

/// A PostgreSQL database of its own, dropped by [`PgDb::drop_db`].
struct PgDb {
    name: String,
}

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl PgDb {
    async fn create() -> PgDb {
        let name = format!("xgate_audit_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create db");
        PgDb { name }
    }
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
    async fn drop_db(self) {
        let mut conn = sqlx::PgConnection::connect(PG_ADMIN).await.expect("pg");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop db");
    }
}

async fn exec(store: &Store, sql: String) {
    match store {
        Store::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect(&sql);
}

/// Sets a blob column of the row `gid`.
async fn set_blob(store: &Store, column: &str, gid: i64, value: &[u8]) {
    let sql = format!("UPDATE audit_log SET {column} = $1 WHERE gid = $2");
    match store {
        Store::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(gid)
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(gid)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect("update");
}

/// Moves the chain's head row to `size` entries, with the root the stored
/// hashes give (what a careful attacker does after truncating).
async fn forge_head(store: &Store, chain: i64, size: u64) {
    let stored = store
        .subtrees(chain, &crate::merkle::root_subtrees(size))
        .await
        .expect("subtrees");
    let root = root_at(size, |l, k| stored.get(&(l, k)).copied()).expect("root");
    let sql = "UPDATE audit_chains SET size = $1, root = $2 WHERE chain = $3";
    match store {
        Store::Sqlite(p) => sqlx::query(sql)
            .bind(size as i64)
            .bind(root.to_vec())
            .bind(chain)
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query(sql)
            .bind(size as i64)
            .bind(root.to_vec())
            .bind(chain)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect("forge head");
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("audit.db").display())
}

/// Concurrent appends with receipts, queries, checkpoints, proofs, export,
/// and each kind of tampering with a row, detected and named.
async fn behaves(url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = Keys::load_or_create(&dir.path().join("keys")).expect("keys");
    let log = Arc::new(AuditLog::open(url, keys, options()).await.expect("open"));
    assert!(log.key_added().is_some());
    let subject = log.subject_hmac("resident_id", "341602197703051725");
    let calls = (0..20).map(|c| {
        let log = Arc::clone(&log);
        let subject = subject.clone();
        async move {
            let batch = (0..5).map(|i| answer(c * 5 + i, 3, &subject)).collect();
            log.append(batch).await.expect("append")
        }
    });
    let receipts: Vec<Receipt> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut indexes: Vec<u64> = receipts.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    // Entry 0 is the key-added admin event.
    assert_eq!(indexes, (1..=100).collect::<Vec<_>>());
    // One signature per group commit: the 20 callers' answers share batches.
    let mut signatures: Vec<&str> = receipts.iter().map(|r| r.signature.as_str()).collect();
    signatures.sort_unstable();
    signatures.dedup();
    assert!(
        signatures.len() < 20,
        "{} signatures for 20 appends",
        signatures.len()
    );
    for r in &receipts {
        let batch = r.batch.as_ref().expect("batch");
        assert!(batch.first <= r.index && r.index < batch.first + batch.size);
    }
    let cp = log.checkpoint().await.expect("checkpoint").expect("some");
    assert_eq!(cp.head.size, 101);
    assert!(
        log.checkpoint().await.expect("idle").is_none(),
        "nothing new"
    );
    let trusted = log.trusted().await.expect("trusted");
    let report = log.verify().await.expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.entries(), report.decisions()), (101, 300));
    assert_eq!(report.chains.len(), 1);
    assert!(report.checkpoints_verified() >= 2, "{report}");

    // Queries stay per record.
    let a = log
        .query(
            &Filter {
                requester: Some("a".into()),
                ..Filter::default()
            },
            None,
            1000,
        )
        .await
        .expect("query");
    assert_eq!(a.len(), 150);
    assert!(a.iter().all(|r| r.entry.body.requester == "a"));
    let denied = log
        .query(
            &Filter {
                decision: Some("deny".into()),
                subject_hmac: Some(subject.clone()),
                ..Filter::default()
            },
            None,
            1000,
        )
        .await
        .expect("query");
    assert_eq!(denied.len(), 100);
    assert!(
        denied
            .iter()
            .all(|r| r.decision().map(|d| d.verdict) == Some(Verdict::Deny))
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = log
            .query(
                &Filter {
                    record_type: Some("type_1".into()),
                    ..Filter::default()
                },
                after,
                7,
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.cursor);
        paged.extend(page);
    }
    assert_eq!(paged.len(), 100);
    let admin = log
        .query(
            &Filter {
                kind: Some(Kind::Admin),
                ..Filter::default()
            },
            None,
            10,
        )
        .await
        .expect("admin");
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].entry.body.event, KEY_ADDED);

    // Receipts verify, with an inclusion proof once a checkpoint covers them.
    for r in &receipts {
        let ok = verify_receipt(log.store(), r, &trusted)
            .await
            .expect("receipt");
        assert!(ok.checkpoint.is_some());
    }
    let store = log.store().clone();
    let chain = store.chains().await.expect("chains")[0].chain;
    let proof = crate::inclusion_proof(&store, log.instance(), 40, 101)
        .await
        .expect("proof");
    let leaf = store.leaf(chain, 40).await.expect("leaf").expect("row");
    assert!(verify_inclusion(
        40,
        101,
        &leaf_hash(&leaf.data),
        &proof,
        &cp.head.root
    ));
    let first = store.checkpoints(Some(chain)).await.expect("cps")[0].clone();
    let proof = crate::consistency_proof(&store, log.instance(), first.size, 101)
        .await
        .expect("consistency");
    assert!(verify_consistency(
        first.size,
        101,
        &first.root,
        &cp.head.root,
        &proof
    ));

    // Export, verified offline with only the public keys.
    let lines: Vec<String> = export_lines(store.clone())
        .map(|r| r.expect("export"))
        .collect::<Vec<_>>()
        .await
        .concat();
    let text = lines.join("\n");
    let offline = verify_export(text.as_bytes(), &trusted).expect("export verify");
    assert!(offline.is_ok(), "{offline}");
    assert_eq!(offline.entries(), 101);
    let line = lines
        .iter()
        .position(|l| l.contains("\"index\":7,"))
        .expect("line");
    let mut tampered = lines.clone();
    let forged = {
        let data = B64Data::of(&tampered[line]);
        let mut bytes = data.bytes.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        data.with(bytes)
    };
    tampered[line] = forged;
    let offline = verify_export(tampered.join("\n").as_bytes(), &trusted).expect("parse");
    assert_eq!(
        offline.first_bad.as_ref().map(|b| b.index),
        Some(7),
        "{offline}"
    );

    let first_bad = || async {
        verify_store(&store, &trusted)
            .await
            .expect("verify")
            .first_bad
            .map(|b| (b.index, b.why))
    };
    let receipt_of = |i: u64| receipts.iter().find(|r| r.index == i).expect("receipt");

    // Edit.
    let row = store.leaf(chain, 40).await.expect("leaf").expect("row");
    let mut edited = row.data.clone();
    let at = edited.len() - 20;
    edited[at] ^= 1;
    set_blob(&store, "data", gid(chain, 40), &edited).await;
    let bad = first_bad().await.expect("edit");
    assert_eq!(bad.0, 40, "{bad:?}");
    let err = verify_receipt(&store, receipt_of(40), &trusted)
        .await
        .expect_err("edited");
    assert!(err.to_string().contains("altered"), "{err}");
    set_blob(&store, "data", gid(chain, 40), &row.data).await;
    assert_eq!(first_bad().await, None);

    // Reorder: two whole rows swapped.
    let (r30, r31) = (
        store.leaf(chain, 30).await.expect("l").expect("r"),
        store.leaf(chain, 31).await.expect("l").expect("r"),
    );
    for (i, r) in [(30, &r31), (31, &r30)] {
        set_blob(&store, "data", gid(chain, i), &r.data).await;
        set_blob(&store, "nodes", gid(chain, i), &r.nodes).await;
    }
    let bad = first_bad().await.expect("reorder");
    assert_eq!(bad.0, 30, "{bad:?}");
    for (i, r) in [(30, &r30), (31, &r31)] {
        set_blob(&store, "data", gid(chain, i), &r.data).await;
        set_blob(&store, "nodes", gid(chain, i), &r.nodes).await;
    }
    assert_eq!(first_bad().await, None);

    // Insert beyond the head.
    let extra = store.leaf(chain, 100).await.expect("l").expect("r");
    exec(
        &store,
        format!(
            "INSERT INTO audit_log (gid, time_us, kind, subject, requester, data, nodes) SELECT {}, time_us, kind, subject, requester, data, nodes FROM audit_log WHERE gid = {}",
            gid(chain, 101),
            gid(chain, 100)
        ),
    )
    .await;
    let bad = first_bad().await.expect("insert");
    assert_eq!(bad.0, 101, "{bad:?}");
    exec(
        &store,
        format!("DELETE FROM audit_log WHERE gid = {}", gid(chain, 101)),
    )
    .await;
    assert_eq!(extra.index, 100);
    assert_eq!(first_bad().await, None);

    // Delete in the middle, then the tail.
    exec(
        &store,
        format!("DELETE FROM audit_log WHERE gid = {}", gid(chain, 20)),
    )
    .await;
    let bad = first_bad().await.expect("delete");
    assert_eq!(bad.0, 20, "{bad:?}");
    assert!(bad.1.contains("missing"), "{bad:?}");
    let err = verify_receipt(&store, receipt_of(20), &trusted)
        .await
        .expect_err("deleted");
    assert!(err.to_string().contains("missing"), "{err}");

    let log = Arc::into_inner(log).expect("sole owner");
    // The writer notices nothing of a middle deletion (its tail is intact);
    // verification does.
    log.close().await;
}

/// Base64 leaf data inside an export line.
struct B64Data {
    line: String,
    bytes: Vec<u8>,
}

impl B64Data {
    fn of(line: &str) -> B64Data {
        use base64::Engine as _;
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let data = v["entry"]["data"].as_str().expect("data");
        B64Data {
            line: line.to_owned(),
            bytes: base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("b64"),
        }
    }
    fn with(&self, bytes: Vec<u8>) -> String {
        use base64::Engine as _;
        let mut v: serde_json::Value = serde_json::from_str(&self.line).expect("json");
        v["entry"]["data"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
        v.to_string()
    }
}

#[tokio::test]
async fn sqlite_log_behaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    behaves(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_log_behaves() {
    let db = PgDb::create().await;
    behaves(&db.url()).await;
    db.drop_db().await;
}

/// Entries deleted while the gateway runs (the head row forged to match):
/// the next append is refused, an alarm is raised and stored, every later
/// append is refused, and a restart starts failed closed too.
async fn live_truncation_fails_closed(url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_dir = dir.path().join("keys");
    let log = AuditLog::open(
        url,
        Keys::load_or_create(&key_dir).expect("keys"),
        options(),
    )
    .await
    .expect("open");
    for i in 0..10 {
        log.append(vec![answer(i, 2, "s")]).await.expect("append");
    }
    log.checkpoint().await.expect("cp");
    for i in 10..15 {
        log.append(vec![answer(i, 2, "s")]).await.expect("append");
    }
    let store = log.store().clone();
    let chain = store.chains().await.expect("chains")[0].chain;
    // Delete everything after the checkpoint, and the checkpoints, and fix
    // up the head row: the store alone now looks consistent.
    exec(
        &store,
        format!("DELETE FROM audit_log WHERE gid >= {}", gid(chain, 11)),
    )
    .await;
    exec(&store, "DELETE FROM audit_tree_checkpoints".into()).await;
    forge_head(&store, chain, 11).await;
    assert_eq!(log.alarms(), 0);
    let err = log
        .append(vec![answer(99, 2, "s")])
        .await
        .expect_err("refused");
    assert!(matches!(err, AuditError::FailedClosed(_)), "{err}");
    assert_eq!(log.alarms(), 1);
    assert!(log.failed_closed().is_some());
    let err = log
        .append(vec![answer(100, 2, "s")])
        .await
        .expect_err("still");
    assert!(matches!(err, AuditError::FailedClosed(_)), "{err}");
    let alarms = store.alarms().await.expect("alarms");
    assert_eq!(alarms.len(), 1);
    assert!(alarms[0].message.contains("deleted"), "{alarms:?}");
    log.close().await;

    // A restart compares with the checkpoint kept in the key directory.
    let log = AuditLog::open(
        url,
        Keys::load_or_create(&key_dir).expect("keys"),
        options(),
    )
    .await
    .expect("reopen");
    let why = log.failed_closed().expect("failed closed at start");
    assert!(why.contains("deleted"), "{why}");
    assert!(why.contains(ALARM_FILE), "{why}");
    assert!(log.append(vec![answer(1, 1, "s")]).await.is_err());
    log.close().await;
    // Once an operator has looked and removed the alarm file, it resumes.
    std::fs::remove_file(key_dir.join(ALARM_FILE)).expect("remove alarm");
    let log = AuditLog::open(
        url,
        Keys::load_or_create(&key_dir).expect("keys"),
        options(),
    )
    .await
    .expect("reopen");
    assert_eq!(log.failed_closed(), None);
    log.append(vec![answer(1, 1, "s")]).await.expect("resumed");
    log.close().await;
}

#[tokio::test]
async fn sqlite_live_truncation_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    live_truncation_fails_closed(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_live_truncation_fails_closed() {
    let db = PgDb::create().await;
    live_truncation_fails_closed(&db.url()).await;
    db.drop_db().await;
}

/// Truncation after the last checkpoint plus deleted checkpoint rows and a
/// forged head: invisible to the store alone, caught by a checkpoint held
/// outside and by the receipts of the removed entries.
async fn truncation_is_caught_by_trusted_checkpoints_and_receipts(url: &str) {
    let log = AuditLog::open(url, Keys::generate().expect("keys"), options())
        .await
        .expect("open");
    let mut receipts = Vec::new();
    for i in 0..20 {
        receipts.extend(log.append(vec![answer(i, 3, "s")]).await.expect("append"));
    }
    let seen = log.checkpoint().await.expect("cp").expect("some");
    for i in 20..30 {
        receipts.extend(log.append(vec![answer(i, 3, "s")]).await.expect("append"));
    }
    let trusted = log.trusted().await.expect("trusted");
    let store = log.store().clone();
    let chain = store.chains().await.expect("chains")[0].chain;
    let ok = verify_with_trusted(&store, &seen.text, &trusted)
        .await
        .expect("trusted");
    assert!(ok.is_ok(), "{ok}");
    // The receipt of the newest entry verifies before any checkpoint covers it.
    let last = receipts.last().expect("last").clone();
    let r = verify_receipt(&store, &last, &trusted)
        .await
        .expect("uncovered");
    assert!(r.checkpoint.is_none());
    log.close().await;
    let store = Store::open(url).await.expect("reopen");

    exec(
        &store,
        format!("DELETE FROM audit_log WHERE gid >= {}", gid(chain, 15)),
    )
    .await;
    exec(&store, "DELETE FROM audit_tree_checkpoints".into()).await;
    forge_head(&store, chain, 15).await;
    let alone = verify_store(&store, &trusted).await.expect("verify");
    assert!(alone.is_ok(), "the store alone cannot tell: {alone}");
    let caught = verify_with_trusted(&store, &seen.text, &trusted)
        .await
        .expect("trusted");
    assert!(!caught.is_ok(), "{caught}");
    assert!(caught.to_string().contains("NOT extend"), "{caught}");
    // Tail truncation after the last checkpoint: the receipt fails.
    let err = verify_receipt(&store, &last, &trusted)
        .await
        .expect_err("truncated");
    assert!(err.to_string().contains("missing"), "{err}");
    // A rewrite instead of a truncation: also caught.
    let other = store.leaf(chain, 3).await.expect("l").expect("r");
    set_blob(&store, "data", gid(chain, 2), &other.data).await;
    let caught = verify_with_trusted(&store, &seen.text, &trusted)
        .await
        .expect("trusted");
    assert!(!caught.is_ok(), "{caught}");
    // A checkpoint from a stranger is refused outright.
    let stranger = Keys::generate().expect("k").trusted();
    assert!(
        verify_with_trusted(&store, &seen.text, &stranger)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sqlite_truncation_is_caught_by_trusted_checkpoints_and_receipts() {
    let dir = tempfile::tempdir().expect("tempdir");
    truncation_is_caught_by_trusted_checkpoints_and_receipts(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn postgres_truncation_is_caught_by_trusted_checkpoints_and_receipts() {
    let db = PgDb::create().await;
    truncation_is_caught_by_trusted_checkpoints_and_receipts(&db.url()).await;
    db.drop_db().await;
}

#[tokio::test]
async fn two_instances_append_concurrently_to_their_own_postgres_chains() {
    let db = PgDb::create().await;
    let a = AuditLog::open(&db.url(), Keys::generate().expect("k"), options())
        .await
        .expect("a");
    let b = AuditLog::open(&db.url(), Keys::generate().expect("k"), options())
        .await
        .expect("b");
    assert_ne!(a.instance(), b.instance());
    // One subject key for all: reports stay whole across gateways.
    assert_eq!(
        a.subject_hmac("resident_id", "1"),
        b.subject_hmac("resident_id", "1")
    );
    let writes = (0..40).map(|i| {
        let log = if i % 2 == 0 { &a } else { &b };
        async move {
            log.append(vec![answer(i, 4, "s"), answer(i + 100, 4, "s")])
                .await
                .expect("append")
        }
    });
    futures::future::join_all(writes).await;
    a.checkpoint().await.expect("cp a");
    b.checkpoint().await.expect("cp b");
    // Each instance trusts every key in the store: verification passes
    // with defaults.
    let report = a.verify().await.expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.chains.len(), 2);
    assert_eq!(report.entries(), 2 * (40 + 1));
    assert_eq!(report.decisions(), 80 * 4);
    let keys = a.store().keys().await.expect("keys");
    assert_eq!(keys.len(), 2);
    a.close().await;
    b.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_second_process_of_one_instance_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let key_dir = dir.path().join("keys");
    let a = AuditLog::open(&url, Keys::load_or_create(&key_dir).expect("k"), options())
        .await
        .expect("first");
    let err = AuditLog::open(&url, Keys::load_or_create(&key_dir).expect("k"), options())
        .await
        .expect_err("second");
    assert!(matches!(err, AuditError::InstanceLocked { .. }), "{err}");
    assert!(err.to_string().contains(a.instance()), "{err}");
    a.close().await;
    // Released with the first: a restart works and continues the chain.
    let b = AuditLog::open(&url, Keys::load_or_create(&key_dir).expect("k"), options())
        .await
        .expect("after");
    assert!(b.key_added().is_none(), "same key, already trusted");
    let r = b.append(vec![answer(1, 1, "s")]).await.expect("append");
    assert_eq!(r[0].index, 1);
    b.close().await;
}

#[tokio::test]
async fn checkpoints_come_at_start_by_count_and_by_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let log = AuditLog::open(
        &url,
        Keys::generate().expect("k"),
        Options {
            max_batch: 100,
            checkpoint_interval: Duration::from_millis(100),
            checkpoint_every: 10,
        },
    )
    .await
    .expect("open");
    let store = log.store().clone();
    let sizes = || async {
        store
            .checkpoints(None)
            .await
            .expect("cps")
            .iter()
            .map(|c| c.size)
            .collect::<Vec<_>>()
    };
    // At start-up (after the key-added entry).
    assert_eq!(sizes().await, vec![1]);
    for i in 0..25 {
        log.append(vec![answer(i, 1, "s")]).await.expect("append");
    }
    let by_count = sizes().await;
    assert!(
        by_count.contains(&11) && by_count.contains(&21),
        "{by_count:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sizes().await.last(), Some(&26));
    // Idle: no new checkpoint for an unchanged head.
    let n = sizes().await.len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sizes().await.len(), n);
    let text = std::fs::read_dir(dir.path()).expect("dir").count();
    assert!(text >= 1);
    log.close().await;
}

#[tokio::test]
async fn a_failed_commit_fails_its_waiters_and_the_writer_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let log = AuditLog::open(&url, Keys::generate().expect("k"), options())
        .await
        .expect("open");
    log.append(vec![answer(0, 1, "s")]).await.expect("first");
    exec(
        log.store(),
        "CREATE TRIGGER block BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'blocked'); END"
            .into(),
    )
    .await;
    let err = log
        .append(vec![answer(1, 1, "s")])
        .await
        .expect_err("blocked");
    assert!(matches!(err, AuditError::Unavailable(_)), "{err}");
    exec(log.store(), "DROP TRIGGER block".into()).await;
    let before = log.store().checkpoints(None).await.expect("cps").len();
    let r = log
        .append(vec![answer(1, 1, "s")])
        .await
        .expect("recovered");
    assert_eq!(r[0].index, 2);
    // A checkpoint after recovery.
    let cps = log.store().checkpoints(None).await.expect("cps");
    assert_eq!(cps.len(), before + 1);
    assert_eq!(cps.last().map(|c| c.size), Some(3));
    assert_eq!(log.alarms(), 0);
    let report = log.verify().await.expect("verify");
    assert!(report.is_ok(), "{report}");
    log.close().await;
}

#[tokio::test]
async fn queue_depth_counts_entries_until_their_batch_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let entries: Vec<NewEntry> = (0..3).map(|i| answer(i, 2, "s")).collect();
    let log = Arc::new(
        AuditLog::open(&url, Keys::generate().expect("k"), options())
            .await
            .expect("open"),
    );
    assert_eq!(log.queue_depth(), 0);
    // Another connection holds the write lock: the batch cannot commit.
    let mut blocker = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    let append = tokio::spawn({
        let log = Arc::clone(&log);
        async move { log.append(entries).await }
    });
    let mut seen = 0;
    for _ in 0..400 {
        seen = log.queue_depth();
        if seen == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(seen, 3);
    sqlx::query("COMMIT")
        .execute(&mut blocker)
        .await
        .expect("unlock");
    append.await.expect("task").expect("committed");
    assert_eq!(log.queue_depth(), 0);
}

#[test]
fn exports_of_other_formats_are_refused() {
    let anchors = PublicKeys::default();
    let err = verify_export("{\"entry\":1}".as_bytes(), &anchors).expect_err("malformed");
    assert!(err.to_string().contains("line 1"), "{err}");
    let err = verify_export("{\"format\":\"xgate-audit-export/1\"}".as_bytes(), &anchors)
        .expect_err("v1");
    assert!(err.to_string().contains("v1 export"), "{err}");
}
