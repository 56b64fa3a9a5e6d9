//! The audit log end to end: one entry per record decision (denied ones
//! too), written before release, tamper-evident, auditor-only, no plain ID
//! numbers anywhere; SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use sqlx::Connection as _;
use xgate_audit::{Filter, Keys, Store, verify_store};
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, fetch_request, status_of, with_timeout};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, NO_GRANT, TestEnv,
};
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::{
    AuditExportRequest, AuditQueryRequest, AuditVerifyRequest, FetchRequest, RecordRequest,
    RecordStatus, Subject, SubjectReportRequest,
};
use xgate_tls::Identity;

async fn auditor(
    env: &TestEnv,
    addr: std::net::SocketAddr,
) -> AuditClient<tonic::transport::Channel> {
    let pki = env.dir().join("pki");
    let tls = xgate_tls::devpki::issue(&pki, &Identity::Auditor("it-auditor".into()), &pki)
        .expect("auditor certificate");
    AuditClient::new(client::connect(addr, &tls).await.expect("connect"))
}

fn citizen_subject(env: &TestEnv) -> Subject {
    Subject {
        kind: client::proto_kind(SubjectKind::ResidentId) as i32,
        id: env.subjects().citizen.clone(),
    }
}

fn public_security_types(env: &TestEnv) -> Vec<String> {
    client::unconditional_types_of(
        env.catalog(),
        SubjectKind::ResidentId,
        Some("public-security"),
    )
}

/// The sample citizen's public-security records for general approval, with
/// a grpc-timeout.
fn citizen_request(env: &TestEnv, timeout: Duration) -> tonic::Request<FetchRequest> {
    with_timeout(
        fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            public_security_types(env),
            GENERAL_APPROVAL,
        ),
        timeout,
    )
}

/// Bytes of every file in `dir` (recursively) containing `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn every_decision_is_logged_and_only_auditors_read_it() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let types = public_security_types(&env);
    let citizen = env.subjects().citizen.clone();

    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let allowed = hall
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                types.clone(),
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await
        .expect("fetch")
        .into_inner();
    assert!(
        allowed
            .results
            .iter()
            .any(|r| status_of(r) == RecordStatus::Ok)
    );
    let mut stranger = env
        .exchange(gateway.addr(), NO_GRANT)
        .await
        .expect("client");
    let denied = stranger
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                types.clone(),
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await
        .expect("fetch")
        .into_inner();
    assert!(
        denied
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::Denied)
    );

    // Non-auditors are refused.
    let mut as_requester = AuditClient::new(
        client::connect(gateway.addr(), &env.pki().requester(APPROVAL_HALL))
            .await
            .expect("connect"),
    );
    let refused = as_requester
        .verify(AuditVerifyRequest {})
        .await
        .expect_err("requester refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let mut audit = auditor(&env, gateway.addr()).await;
    let report = audit
        .subject_report(SubjectReportRequest {
            subject: Some(citizen_subject(&env)),
            ..SubjectReportRequest::default()
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(
        report.accesses.len(),
        2 * types.len(),
        "one entry per record decision"
    );
    for (response, requester) in [(&allowed, APPROVAL_HALL), (&denied, NO_GRANT)] {
        for result in &response.results {
            let entry = report
                .accesses
                .iter()
                .find(|e| {
                    e.request_id == response.request_id && e.record_type == result.record_type
                })
                .unwrap_or_else(|| {
                    panic!(
                        "no entry for {} {}",
                        response.request_id, result.record_type
                    )
                });
            assert_eq!(entry.requester, requester);
            let status = status_of(result)
                .as_str_name()
                .trim_start_matches("RECORD_STATUS_");
            assert_eq!(entry.status, status);
            assert_eq!(entry.case_id, client::CASE_ID);
            assert_eq!(entry.operator_id, client::OPERATOR_ID);
        }
    }
    assert_eq!(report.denied, types.len() as u64);

    let mut pages = audit
        .query(AuditQueryRequest {
            decision: "deny".into(),
            page_size: 1,
            ..AuditQueryRequest::default()
        })
        .await
        .expect("query")
        .into_inner();
    let mut denied_entries = 0;
    while let Some(page) = pages.next().await {
        denied_entries += page.expect("page").entries.len();
    }
    assert_eq!(denied_entries, types.len());

    let verified = audit
        .verify(AuditVerifyRequest {})
        .await
        .expect("verify")
        .into_inner();
    assert!(verified.ok, "{verified:?}");

    // An export verifies offline with only the public key.
    let mut chunks = audit
        .export(AuditExportRequest {})
        .await
        .expect("export")
        .into_inner();
    let mut text = String::new();
    while let Some(chunk) = chunks.next().await {
        for line in chunk.expect("chunk").lines {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let anchors = xgate_audit::PublicKeys::parse(&verified.public_keys.join("\n")).expect("keys");
    let offline = xgate_audit::verify_export(text.as_bytes(), &anchors).expect("offline");
    assert!(offline.is_ok(), "{offline}");
    assert!(
        !text.contains(&citizen),
        "the export holds a plain ID number"
    );

    gateway.stop().await.expect("stop");
    // No plain ID number in the database files or the logs.
    assert_eq!(
        files_containing(&env.dir().join("data").join("audit.db"), &citizen),
        Vec::<String>::new()
    );
    assert_eq!(
        files_containing(&env.dir().join("logs"), &citizen),
        Vec::<String>::new()
    );
    let wal = files_containing(&env.dir().join("data"), &citizen);
    assert!(wal.iter().all(|f| !f.contains("audit")), "{wal:?}");
}

/// Tampers with rows of an SQLite or PostgreSQL store and checks verify
/// names the entry.
async fn tampering_is_named(url: &str, keys: &xgate_audit::PublicKeys) {
    let store = Store::open(url).await.expect("open");
    let first_bad = || async { verify_store(&store, keys).await.expect("verify").first_bad };
    assert_eq!(first_bad().await, None);
    let exec = |sql: &'static str| {
        let store = store.clone();
        async move {
            match &store {
                Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
                Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            }
            .expect(sql)
        }
    };
    // v2: one blob per entry; each tampering is named at its index.
    let (chain, pg) = {
        let heads = store.chains().await.expect("chains");
        (heads[0].chain, matches!(store, Store::Postgres(_)))
    };
    let gid = |i: u64| xgate_audit::store::gid(chain, i);
    let run = |sql: String| {
        let store = store.clone();
        async move {
            match &store {
                Store::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(p)
                    .await
                    .map(|_| ()),
                Store::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(p)
                    .await
                    .map(|_| ()),
            }
            .expect(&sql)
        }
    };
    let zero = if pg { "'\\x00'::bytea" } else { "X'00'" };
    let row = store.leaf(chain, 1).await.expect("leaf").expect("row");
    run(format!(
        "UPDATE audit_log SET data = data || {zero} WHERE gid = {}",
        gid(1)
    ))
    .await;
    let bad = first_bad().await.expect("edit detected");
    assert_eq!(bad.index, 1, "{bad:?}");
    match &store {
        Store::Sqlite(p) => sqlx::query("UPDATE audit_log SET data = ? WHERE gid = ?")
            .bind(row.data.clone())
            .bind(gid(1))
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query("UPDATE audit_log SET data = $1 WHERE gid = $2")
            .bind(row.data.clone())
            .bind(gid(1))
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect("restore");
    assert_eq!(first_bad().await, None);
    run(format!("DELETE FROM audit_log WHERE gid = {}", gid(1))).await;
    let bad = first_bad().await.expect("delete detected");
    assert_eq!(bad.index, 1, "{bad:?}");
    let _ = exec;
    store.close().await;
}

async fn fill_log(env: &TestEnv, config: &Path) -> xgate_audit::PublicKeys {
    let gateway = env
        .start_gateway_with_config(config)
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    hall.fetch(citizen_request(env, FETCH_TIMEOUT))
        .await
        .expect("fetch");
    gateway.stop().await.expect("stop");
    Keys::public_keys_in(&env.dir().join("data").join("audit-keys")).expect("public keys")
}

#[tokio::test]
async fn tampering_in_sqlite_is_detected_and_named() {
    let env = TestEnv::new().expect("env");
    let config = env
        .write_gateway_config(&GatewayOptions::default())
        .expect("config");
    let keys = fill_log(&env, &config).await;
    let url = format!(
        "sqlite:{}",
        env.dir().join("data").join("audit.db").display()
    );
    tampering_is_named(&url, &keys).await;
}

fn with_audit_database(env: &TestEnv, url: &str) -> std::path::PathBuf {
    let config = env
        .write_gateway_config(&GatewayOptions::default())
        .expect("config");
    let mut text = std::fs::read_to_string(&config).expect("read config");
    text.push_str(&format!("\n[audit]\ndatabase = \"{url}\"\n"));
    std::fs::write(&config, text).expect("write config");
    config
}

#[tokio::test]
async fn tampering_in_postgres_is_detected_and_named() {
    let db = PgDb::create("xgate_audit").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let config = with_audit_database(&env, &db.url());
    let keys = fill_log(&env, &config).await;
    tampering_is_named(&db.url(), &keys).await;
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn an_unwritable_store_releases_nothing_then_recovers() {
    let db = PgDb::create("xgate_audit").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let config = with_audit_database(&env, &db.url());
    let gateway = env
        .start_gateway_with_config(&config)
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let types = public_security_types(&env);
    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    // The records of every public-security type, and a yes/no predicate
    // (a value, no record) that must be withheld just the same.
    let request = || {
        let mut fetch = fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            types.clone(),
            GENERAL_APPROVAL,
        );
        fetch.requests.push(RecordRequest {
            record_type: "resident_identity_card".into(),
            view: "card_valid".into(),
            ..RecordRequest::default()
        });
        with_timeout(fetch, FETCH_TIMEOUT)
    };
    let ok = hall.fetch(request()).await.expect("fetch").into_inner();
    assert!(ok.results.iter().any(|r| status_of(r) == RecordStatus::Ok));
    assert!(
        ok.results
            .iter()
            .any(|r| r.view == "card_valid" && r.value.is_some()),
        "{}",
        client::describe(&ok.results)
    );

    db.admin(format!("REVOKE INSERT ON audit_log FROM {}", db.name))
        .await
        .expect("admin sql");
    let withheld = hall.fetch(request()).await.expect("fetch").into_inner();
    for r in &withheld.results {
        assert_eq!(
            status_of(r),
            RecordStatus::Unavailable,
            "{}",
            client::describe(&withheld.results)
        );
        assert!(r.records.is_empty() && r.value.is_none(), "{r:?}");
        assert!(r.error.contains("audit log unavailable"), "{}", r.error);
    }
    let mut stream = hall
        .fetch_stream(request())
        .await
        .expect("stream")
        .into_inner();
    while let Some(item) = stream.next().await {
        let result = item.expect("item").result.expect("result");
        assert_eq!(status_of(&result), RecordStatus::Unavailable);
        assert!(result.records.is_empty() && result.value.is_none());
    }

    db.admin(format!("GRANT INSERT ON audit_log TO {}", db.name))
        .await
        .expect("admin sql");
    let recovered =
        xgate_integration_tests::wait::until("audit recovery", Duration::from_secs(20), || {
            let mut hall = hall.clone();
            let request = request();
            async move {
                let r = hall.fetch(request).await?.into_inner();
                if r.results.iter().any(|r| status_of(r) == RecordStatus::Ok) {
                    Ok(Some(r))
                } else {
                    Err(anyhow::anyhow!("still withheld"))
                }
            }
        })
        .await
        .expect("recovered");
    assert!(!recovered.results.is_empty());
    gateway.stop().await.expect("stop");
    let keys = Keys::public_keys_in(&env.dir().join("data").join("audit-keys")).expect("keys");
    let store = Store::open(&db.url()).await.expect("open");
    let report = verify_store(&store, &keys).await.expect("verify");
    assert!(report.is_ok(), "{report}");
    // Exactly the released fetches (first and recovered) have entries.
    let entries = store
        .query(&Filter::default(), None, 10_000)
        .await
        .expect("query");
    for response in [&ok, &recovered] {
        for r in &response.results {
            assert!(
                entries
                    .iter()
                    .any(|e| e.entry.body.request_id == response.request_id
                        && e.decision().map(|d| d.record_type.as_str())
                            == Some(r.record_type.as_str())),
                "no entry for {} of {}",
                r.record_type,
                response.request_id
            );
        }
    }
    assert!(
        !entries
            .iter()
            .any(|e| e.entry.body.request_id == withheld.request_id)
    );
    store.close().await;
    db.drop_db().await.expect("drop");
}

/// A store that accepts connections but never finishes the append (another
/// client holds an exclusive lock on the entries): the fetch still answers
/// within its deadline, every record UNAVAILABLE, never a cancelled call.
#[tokio::test]
async fn a_stalled_store_answers_unavailable_within_the_deadline() {
    let db = PgDb::create("xgate_audit").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let config = with_audit_database(&env, &db.url());
    let gateway = env
        .start_gateway_with_config(&config)
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let ok = hall
        .fetch(citizen_request(&env, FETCH_TIMEOUT))
        .await
        .expect("fetch");
    assert!(
        ok.get_ref()
            .results
            .iter()
            .any(|r| status_of(r) == RecordStatus::Ok)
    );

    let url = db.admin_url();
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("postgres");
    let mut tx = blocker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let deadline = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let stalled = hall
        .fetch(citizen_request(&env, deadline))
        .await
        .expect("an answer, not a cancelled call")
        .into_inner();
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    for r in &stalled.results {
        assert_eq!(status_of(r), RecordStatus::Unavailable, "{r:?}");
        assert!(r.records.is_empty() && r.value.is_none());
        assert!(r.error.contains("audit log unavailable"), "{}", r.error);
    }
    tx.rollback().await.expect("rollback");
    drop(blocker);
    gateway.stop().await.expect("stop");
    db.drop_db().await.expect("drop");
}

#[tokio::test]
async fn a_killed_gateway_leaves_an_entry_for_every_released_record() {
    let env = TestEnv::new().expect("env");
    let config = env
        .write_gateway_config(&GatewayOptions::default())
        .expect("config");
    let mut gateway = env
        .start_gateway_with_config(&config)
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let types = public_security_types(&env);
    let hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let citizen = env.subjects().citizen.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let client_task = tokio::spawn(async move {
        loop {
            let mut hall = hall.clone();
            let request = with_timeout(
                fetch_request(
                    SubjectKind::ResidentId,
                    &citizen,
                    types.clone(),
                    GENERAL_APPROVAL,
                ),
                FETCH_TIMEOUT,
            );
            let Ok(stream) = hall.fetch_stream(request).await else {
                break;
            };
            let mut stream = stream.into_inner();
            while let Some(Ok(item)) = stream.next().await {
                if let Some(r) = item.result
                    && !r.records.is_empty()
                {
                    let _ = tx.send((item.request_id.clone(), r.record_type));
                }
            }
        }
    });
    // Let some fetches through, then SIGKILL mid-stream.
    let mut received = Vec::new();
    while received.len() < 20 {
        received.push(rx.recv().await.expect("records"));
    }
    gateway.process().kill().await.expect("kill");
    let _ = client_task.await;
    while let Ok(item) = rx.try_recv() {
        received.push(item);
    }

    let restarted = env
        .start_gateway_with_config(&config)
        .await
        .expect("restart");
    restarted.stop().await.expect("stop");
    let keys = Keys::public_keys_in(&env.dir().join("data").join("audit-keys")).expect("keys");
    let url = format!(
        "sqlite:{}",
        env.dir().join("data").join("audit.db").display()
    );
    let store = Store::open(&url).await.expect("open");
    let report = verify_store(&store, &keys).await.expect("verify");
    assert!(report.is_ok(), "{report}");
    let entries = store
        .query(&Filter::default(), None, 1_000_000)
        .await
        .expect("query");
    for (request_id, record_type) in &received {
        assert!(
            entries
                .iter()
                .any(|e| &e.entry.body.request_id == request_id
                    && e.decision().map(|d| &d.record_type) == Some(record_type)),
            "released {record_type} of {request_id} has no audit entry"
        );
    }
    store.close().await;
}

/// Runs the `xgate` binary; its exit success and stdout+stderr.
fn xgate(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(
        xgate_integration_tests::bins::binary("xgate").expect("xgate binary"),
    )
    .args(args)
    .output()
    .expect("run xgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Every answer carries a signed receipt; `xgate fetch --receipt` keeps it
/// and `xgate audit verify --receipt` proves it (with the requester's own
/// certificate) — and fails once its entry is edited, or deleted from the
/// tail after the last checkpoint, which checkpoints alone cannot catch.
#[tokio::test]
async fn receipts_prove_answers_and_fail_after_edit_or_tail_truncation() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let hall = env.pki().requester(APPROVAL_HALL);
    let addr = format!("https://{}", gateway.addr());
    let tls = |files: &xgate_tls::TlsFiles| {
        vec![
            "--gateway".to_owned(),
            addr.clone(),
            "--cert".to_owned(),
            files.cert.display().to_string(),
            "--key".to_owned(),
            files.key.display().to_string(),
            "--ca".to_owned(),
            files.ca.display().to_string(),
        ]
    };
    let fetch_with_receipt = |name: &str| {
        let path = env.dir().join(name);
        let mut args = vec!["fetch".to_owned()];
        args.extend(tls(&hall));
        args.extend(
            [
                "--subject",
                &env.subjects().citizen,
                "--types",
                "resident_identity_card,driving_licence",
                "--purpose",
                GENERAL_APPROVAL,
                "--case",
                "c-1",
                "--operator",
                "op-1",
                "--receipt",
            ]
            .map(str::to_owned),
        );
        args.push(path.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = xgate(&refs);
        assert!(ok, "{out}");
        assert!(out.contains("1 audit receipt(s) written"), "{out}");
        path
    };
    let verify = |path: &Path| {
        let mut args = vec!["audit".to_owned(), "verify".to_owned()];
        args.extend(tls(&hall));
        args.push("--receipt".to_owned());
        args.push(path.display().to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        xgate(&refs)
    };
    let first = fetch_with_receipt("first.receipt");
    let last = fetch_with_receipt("last.receipt");
    for path in [&first, &last] {
        let (ok, out) = verify(path);
        assert!(ok, "{out}");
        assert!(out.contains("receipt OK"), "{out}");
    }
    // A receipt file of another format is refused, not misread.
    let bogus = env.dir().join("bogus.receipt");
    std::fs::write(
        &bogus,
        r#"{"format":"other/9","request_id":"r","receipts":[]}"#,
    )
    .expect("write");
    let (ok, out) = verify(&bogus);
    assert!(!ok && out.contains("expected `xgate-receipts/1`"), "{out}");

    // An auditor keeps the latest checkpoints outside the gateway, once one
    // covers the last answer (checkpoints come every second).
    let pki = env.dir().join("pki");
    let auditor_tls = xgate_tls::devpki::issue(&pki, &Identity::Auditor("it-auditor".into()), &pki)
        .expect("auditor certificate");
    let kept = env.dir().join("kept");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut args = vec!["audit".to_owned(), "checkpoints".to_owned()];
    args.extend(tls(&auditor_tls));
    args.extend(["--out".to_owned(), kept.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = xgate(&refs);
    assert!(ok, "{out}");
    let checkpoint = out.lines().next().expect("one checkpoint file").to_owned();
    let verify_trusted = || {
        let mut args = vec!["audit".to_owned(), "verify".to_owned()];
        args.extend(tls(&auditor_tls));
        args.extend(["--trusted".to_owned(), checkpoint.clone()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        xgate(&refs)
    };
    let (ok, out) = verify_trusted();
    assert!(ok, "{out}");
    // A watcher follows the checkpoints and cosigns each one it accepts.
    let watched = env.dir().join("watched");
    let watch = || {
        let mut args = vec!["audit".to_owned(), "watch".to_owned()];
        args.extend(tls(&auditor_tls));
        args.extend(["--out", &watched.display().to_string(), "--rounds", "1"].map(str::to_owned));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        xgate(&refs)
    };
    for _ in 0..2 {
        let (ok, out) = watch();
        assert!(ok && out.contains("accepted and cosigned"), "{out}");
    }
    let cosigned = std::fs::read_dir(&watched)
        .expect("watched dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "checkpoint"))
        .expect("a kept checkpoint");
    let note = std::fs::read_to_string(&cosigned).expect("note");
    assert!(note.contains("\u{2014} xgate-audit-watch "), "{note}");

    // Tamper with the store behind the gateway's back.
    let url = format!(
        "sqlite:{}",
        env.dir().join("data").join("audit.db").display()
    );
    let store = Store::open(&url).await.expect("open");
    let Store::Sqlite(pool) = &store else {
        panic!("the default store is SQLite")
    };
    let chain = store.chains().await.expect("chains")[0].chain;
    let index_of = |path: &Path| {
        let text = std::fs::read_to_string(path).expect("receipt file");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        doc["receipts"][0]["index"].as_u64().expect("index")
    };
    let gid = |path: &Path| xgate_audit::store::gid(chain, index_of(path));
    // The tail after the last checkpoint, deleted: its receipt fails.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM audit_log WHERE gid = {}",
        gid(&last)
    )))
    .execute(pool)
    .await
    .expect("truncate");
    let (ok, out) = verify(&last);
    assert!(
        !ok && out.contains("receipt FAILED"),
        "a truncated tail: {out}"
    );
    // Deleting the checkpoint rows too does not help: the kept copy is outside.
    sqlx::query("DELETE FROM audit_tree_checkpoints")
        .execute(pool)
        .await
        .expect("delete checkpoints");
    let (ok, out) = verify_trusted();
    assert!(!ok && out.contains("does NOT extend"), "{out}");
    let (ok, out) = watch();
    assert!(
        !ok && out.contains("does NOT extend"),
        "the watcher refuses: {out}"
    );
    // An edited entry: its receipt fails.
    let (ok, out) = verify(&first);
    assert!(ok, "untouched so far: {out}");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE audit_log SET data = data || X'00' WHERE gid = {}",
        gid(&first)
    )))
    .execute(pool)
    .await
    .expect("edit");
    let (ok, out) = verify(&first);
    assert!(
        !ok && out.contains("receipt FAILED"),
        "an edited entry: {out}"
    );
    store.close().await;
    gateway.stop().await.expect("stop");
}

/// Two gateways on one PostgreSQL store, default settings but their own key
/// directories: each appends to its own chain, concurrently, and the
/// auditor's verify (through either gateway) passes over both chains.
#[tokio::test]
async fn two_gateways_share_one_postgres_store_each_with_its_own_chain() {
    let db = PgDb::create("xgate_audit").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let config_a = with_audit_database(&env, &db.url());
    let config_b = env.dir().join("gateway-b.toml");
    let mut text = std::fs::read_to_string(&config_a).expect("read config");
    text.push_str(&format!(
        "key_dir = \"{}\"\n",
        env.dir().join("keys-b").display()
    ));
    std::fs::write(&config_b, text).expect("write config");
    let a = env
        .start_gateway_with_config(&config_a)
        .await
        .expect("gateway a");
    let _adapter = env
        .start_adapter("public-security", &a)
        .await
        .expect("adapter");
    // B reads the shared registry at start, so it routes to the same adapter.
    let b = env
        .start_gateway_with_config(&config_b)
        .await
        .expect("gateway b");
    let fetches = |addr| {
        let env = &env;
        async move {
            let mut hall = env.exchange(addr, APPROVAL_HALL).await.expect("client");
            let mut chains = Vec::new();
            for _ in 0..10 {
                let answer = hall
                    .fetch(citizen_request(env, FETCH_TIMEOUT))
                    .await
                    .expect("fetch")
                    .into_inner();
                assert!(
                    answer
                        .results
                        .iter()
                        .all(|r| status_of(r) == RecordStatus::Ok),
                    "{}",
                    client::describe(&answer.results)
                );
                chains.push(answer.receipt.expect("a receipt").chain);
            }
            chains
        }
    };
    let (chains_a, chains_b) = tokio::join!(fetches(a.addr()), fetches(b.addr()));
    assert!(chains_a.iter().all(|c| c == &chains_a[0]));
    assert!(chains_b.iter().all(|c| c == &chains_b[0]));
    assert_ne!(chains_a[0], chains_b[0], "one chain per gateway instance");
    let report = auditor(&env, b.addr())
        .await
        .verify(AuditVerifyRequest {})
        .await
        .expect("verify")
        .into_inner();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chains.len(), 2, "{report:?}");
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    db.drop_db().await.expect("drop");
}

/// Entries deleted while the gateway runs (the tail after its last
/// checkpoint): the writer notices the store's head is not the one it
/// committed, refuses every further append (nothing is released) and
/// reports the alarm; it does not continue from the shortened chain.
#[tokio::test]
async fn live_truncation_is_refused_and_reported() {
    let env = TestEnv::new().expect("env");
    let mut gateway = env
        .start_gateway(&GatewayOptions {
            metrics: true,
            ..GatewayOptions::default()
        })
        .await
        .expect("gateway");
    let _adapter = env
        .start_adapter("public-security", &gateway)
        .await
        .expect("adapter");
    let mut hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let request = || citizen_request(&env, FETCH_TIMEOUT);
    let mut last = None;
    for _ in 0..3 {
        let answer = hall.fetch(request()).await.expect("fetch").into_inner();
        last = answer.receipt;
    }
    let last = last.expect("a receipt");
    let url = format!(
        "sqlite:{}",
        env.dir().join("data").join("audit.db").display()
    );
    let store = Store::open(&url).await.expect("open");
    let Store::Sqlite(pool) = &store else {
        panic!("the default store is SQLite")
    };
    let chain = store.chains().await.expect("chains")[0].chain;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM audit_log WHERE gid >= {}",
        xgate_audit::store::gid(chain, last.index)
    )))
    .execute(pool)
    .await
    .expect("delete the tail");
    let refused = hall.fetch(request()).await.expect("fetch").into_inner();
    assert!(refused.receipt.is_none());
    for r in &refused.results {
        assert_eq!(status_of(r), RecordStatus::Unavailable, "{r:?}");
        assert!(r.records.is_empty() && r.value.is_none());
    }
    let alarms: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tamper_alarms")
        .fetch_one(pool)
        .await
        .expect("alarms");
    assert!(alarms >= 1, "the alarm is recorded in the store");
    let metrics = xgate_integration_tests::scrape::metrics_addr(&gateway.process().log_text())
        .expect("metrics address");
    let text = xgate_integration_tests::scrape::scrape(metrics)
        .await
        .expect("scrape");
    assert!(
        xgate_integration_tests::scrape::sample(&text, "xgate_audit_tamper_alarms")
            .is_some_and(|n| n >= 1.0),
        "the alarm is a metric: {text}"
    );
    store.close().await;
    gateway.stop().await.expect("stop");
    assert!(
        !files_containing(
            &env.dir().join("logs"),
            "audit tamper alarm: appends refused"
        )
        .is_empty(),
        "the gateway's log reports the alarm"
    );
}

/// One audit instance is one process: a second gateway on the same key
/// directory refuses to start instead of forking the chain.
#[tokio::test]
async fn a_second_process_of_one_instance_refuses_to_start() {
    let env = TestEnv::new().expect("env");
    let config = env
        .write_gateway_config(&GatewayOptions::default())
        .expect("config");
    let first = env
        .start_gateway_with_config(&config)
        .await
        .expect("first gateway");
    let second = env.start_gateway_with_config(&config).await;
    assert!(second.is_err(), "a second process of one instance started");
    assert!(
        !files_containing(&env.dir().join("logs"), "audit-instance.lock").is_empty(),
        "the refusal names the lock"
    );
    first.stop().await.expect("stop");
}
