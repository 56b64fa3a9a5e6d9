//! Subject codes end to end: an issuer key made with `xgate code keygen`,
//! trusted in the gateway's `[subject_codes.issuers]`; a code from `xgate
//! code issue` fetched with `xgate fetch --code`; and every bad code refused
//! with its reason — forged, unknown issuer, expired, out of scope,
//! malformed, naming another subject, and replayed (also on another replica
//! sharing the database).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use tonic_types::StatusExt as _;
use xgate_catalog::SubjectKind;
use xgate_code::{Issuer, Scope};
use xgate_integration_tests::client::{self, status_of, with_timeout};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::kit::{tls_args, xgate};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::replicas::start_replicas;
use xgate_integration_tests::{
    FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv,
};
use xgate_proto::v1::{FetchRequest, RecordStatus, Subject};

const ISSUER: &str = "test-identity";
const LICENCE: &str = "driving_licence";

const GRANT: &str = xgate_integration_tests::grants::PF_LICENCES;

/// `xgate code keygen` into the test folder; the public key it prints.
async fn keygen(env: &TestEnv) -> (std::path::PathBuf, String) {
    let key = env.dir().join("issuer.pk8");
    let out = xgate([
        "code".into(),
        "keygen".into(),
        "--issuer".into(),
        ISSUER.into(),
        "--out".into(),
        key.clone().into_os_string(),
    ])
    .await
    .expect("keygen");
    assert!(out.success(), "{}", out.describe());
    let public = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{ISSUER} = \"")))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the trust line")
        .to_owned();
    (key, public)
}

fn options(env: &TestEnv, public_key: &str) -> GatewayOptions {
    GatewayOptions {
        policies_dir: Some(
            env.write_policy_set("grant", &[("grant.cedar", GRANT)])
                .expect("policies"),
        ),
        extra_toml: format!("[subject_codes.issuers]\n{ISSUER} = \"{public_key}\"\n"),
        ..GatewayOptions::default()
    }
}

/// An issuer with a key of its own (not the one the gateway trusts).
fn other_issuer(name: &str) -> Issuer {
    Issuer::from_pkcs8(name, &Issuer::generate_pkcs8().expect("key")).expect("issuer")
}

fn issuer_from(key: &Path) -> Issuer {
    Issuer::from_pkcs8(ISSUER, &std::fs::read(key).expect("key")).expect("issuer")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn code_request(code: &str) -> tonic::Request<FetchRequest> {
    with_timeout(
        FetchRequest {
            subject_code: code.to_owned(),
            record_types: vec![LICENCE.into()],
            purpose: GENERAL_APPROVAL.into(),
            case_id: client::CASE_ID.into(),
            operator_id: client::OPERATOR_ID.into(),
            ..FetchRequest::default()
        },
        FETCH_TIMEOUT,
    )
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_code_fetches_once_and_bad_codes_are_refused_with_their_reason() {
    let env = TestEnv::new().expect("env");
    let (key, public) = keygen(&env).await;
    let gateway = env
        .start_gateway(&options(&env, &public))
        .await
        .expect("gateway");
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &gateway)
        .await
        .expect("fixture");

    // The citizen's app (`xgate code issue`) and the hall (`xgate fetch --code`).
    let issued = xgate([
        "code".into(),
        "issue".into(),
        "--issuer".into(),
        ISSUER.into(),
        "--key".into(),
        key.clone().into_os_string(),
        "--subject".into(),
        citizen.clone().into(),
        "--requester".into(),
        PROVIDENT_FUND.into(),
        "--ttl".into(),
        "120".into(),
        "--png".into(),
        env.dir().join("code.png").into_os_string(),
        "--quiet".into(),
    ])
    .await
    .expect("issue");
    assert!(issued.success(), "{}", issued.describe());
    let token = issued.stdout.trim().to_owned();
    assert!(token.starts_with("XG1:"), "{token}");
    assert!(env.dir().join("code.png").exists());
    let mut fetch = vec![
        "fetch".into(),
        "--gateway".into(),
        gateway.url().into(),
        "--code".into(),
        token.clone().into(),
        "--types".into(),
        LICENCE.into(),
        "--purpose".into(),
        GENERAL_APPROVAL.into(),
        "--case".into(),
        "C-1".into(),
        "--operator".into(),
        "op".into(),
        "--json".into(),
    ];
    fetch.extend(tls_args(&env.pki().requester(PROVIDENT_FUND)));
    let fetched = xgate(fetch.clone()).await.expect("fetch --code");
    assert!(fetched.success(), "{}", fetched.describe());
    assert!(fetched.stdout.contains("\"OK\""), "{}", fetched.stdout);
    // The same code again: a replay.
    let replayed = xgate(fetch).await.expect("fetch --code again");
    assert!(!replayed.success());
    assert!(
        replayed.stderr.contains("used before"),
        "{}",
        replayed.describe()
    );

    let mut hall = env
        .exchange(gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("client");
    let issuer = issuer_from(&key);
    let fresh = |scope: &Scope| {
        issuer
            .issue(SubjectKind::ResidentId, &citizen, 60, scope, now())
            .expect("issue")
    };
    // A good code answers OK, with the code's subject.
    let answer = hall
        .fetch(code_request(&fresh(&Scope::default())))
        .await
        .expect("fetch")
        .into_inner();
    assert_eq!(
        status_of(&answer.results[0]),
        RecordStatus::Ok,
        "{}",
        client::describe(&answer.results)
    );

    let refusal = async |hall: &mut xgate_proto::v1::exchange_client::ExchangeClient<
        tonic::transport::Channel,
    >,
                         request: tonic::Request<FetchRequest>| {
        hall.fetch(request).await.expect_err("refused")
    };
    // Forged: another key under the trusted issuer's name.
    let forged = other_issuer(ISSUER)
        .issue(
            SubjectKind::ResidentId,
            &citizen,
            60,
            &Scope::default(),
            now(),
        )
        .unwrap();
    let status = refusal(&mut hall, code_request(&forged)).await;
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (tonic::Code::PermissionDenied, "CODE_FORGED")
    );
    // An issuer the gateway does not trust.
    let foreign = other_issuer("elsewhere")
        .issue(
            SubjectKind::ResidentId,
            &citizen,
            60,
            &Scope::default(),
            now(),
        )
        .unwrap();
    let status = refusal(&mut hall, code_request(&foreign)).await;
    assert_eq!(reason(&status), "CODE_UNKNOWN_ISSUER", "{status:?}");
    // Expired: issued ten minutes ago for a minute.
    let old = issuer
        .issue(
            SubjectKind::ResidentId,
            &citizen,
            60,
            &Scope::default(),
            now() - 600,
        )
        .unwrap();
    let status = refusal(&mut hall, code_request(&old)).await;
    assert_eq!(reason(&status), "CODE_EXPIRED", "{status:?}");
    // Out of scope: for another requester; then for other record types.
    let theirs = fresh(&Scope {
        requester: Some("approval-hall-demo".into()),
        ..Scope::default()
    });
    let status = refusal(&mut hall, code_request(&theirs)).await;
    assert_eq!(reason(&status), "CODE_OUT_OF_SCOPE", "{status:?}");
    assert!(
        status.message().contains("approval-hall-demo"),
        "{status:?}"
    );
    let narrow = fresh(&Scope {
        record_types: vec!["marriage_registration".into()],
        ..Scope::default()
    });
    let status = refusal(&mut hall, code_request(&narrow)).await;
    assert!(status.message().contains(LICENCE), "{status:?}");
    // Malformed: INVALID_ARGUMENT naming the field.
    let status = refusal(&mut hall, code_request("XG1:NOT A CODE")).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        xgate_proto::status::violations(&status)[0].field,
        "subject_code"
    );
    // A code and another subject in one request.
    let mut both = code_request(&fresh(&Scope::default()));
    both.get_mut().subject = Some(Subject {
        kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
        id: env.subjects().gappy_citizen.clone(),
    });
    let status = refusal(&mut hall, both).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), "CODE_OTHER_SUBJECT");

    // Every refusal is in the audit log: those of codes whose signature
    // verified under the subject, the others as admin events.
    let mut details = Vec::new();
    for kind in ["access", "admin"] {
        let entries = client::audit_entries(
            gateway.addr(),
            &env.pki().auditor(),
            xgate_proto::v1::AuditQueryRequest {
                requester: PROVIDENT_FUND.into(),
                kind: kind.into(),
                ..Default::default()
            },
        )
        .await
        .expect("audit entries");
        details.extend(entries.into_iter().map(|e| (kind, e.event, e.detail)));
    }
    let count = |kind: &str, reason: &str| {
        details
            .iter()
            .filter(|(k, _, d)| *k == kind && d.contains(&format!("\"{reason}\"")))
            .count()
    };
    assert_eq!(count("access", "CODE_REPLAYED"), 1, "{details:#?}");
    assert_eq!(count("access", "CODE_OUT_OF_SCOPE"), 2, "{details:#?}");
    for refused in [
        "CODE_FORGED",
        "CODE_UNKNOWN_ISSUER",
        "CODE_EXPIRED",
        "CODE_MALFORMED",
        "CODE_OTHER_SUBJECT",
    ] {
        assert_eq!(count("admin", refused), 1, "{refused}: {details:#?}");
    }
    gateway.stop().await.expect("stop");
}

/// A code used on replica A is refused as a replay on replica B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_used_on_one_replica_is_a_replay_on_another() {
    let db = PgDb::create("xgate_codes").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let (key, public) = keygen(&env).await;
    let replicas = start_replicas(&env, &db, &["a", "b"], &options(&env, &public))
        .await
        .expect("replicas");
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &replicas[0])
        .await
        .expect("fixture");
    env.wait_for_sources(replicas[1].addr(), &[LICENCE.to_owned()])
        .await
        .expect("b routes");
    let token = issuer_from(&key)
        .issue(
            SubjectKind::ResidentId,
            &citizen,
            60,
            &Scope::default(),
            now(),
        )
        .unwrap();
    let mut a = env
        .exchange(replicas[0].addr(), PROVIDENT_FUND)
        .await
        .expect("a");
    let mut b = env
        .exchange(replicas[1].addr(), PROVIDENT_FUND)
        .await
        .expect("b");
    let answer = a
        .fetch(code_request(&token))
        .await
        .expect("on a")
        .into_inner();
    assert_eq!(status_of(&answer.results[0]), RecordStatus::Ok);
    let status = b
        .fetch(code_request(&token))
        .await
        .expect_err("replay on b");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (tonic::Code::PermissionDenied, "CODE_REPLAYED")
    );
    for replica in replicas {
        replica.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// Policies see the scan: a guard that lifts only for the subject's own
/// request denies the raw-ID fetch (naming the guard) and allows the same
/// fetch made with a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_can_require_the_subjects_explicit_request() {
    const GUARD: &str = r#"
@id("licence-needs-the-subjects-code")
forbid (principal, action, resource in RecordType::"driving_licence")
unless { context.explicit_request };
"#;
    let env = TestEnv::new().expect("env");
    let (key, public) = keygen(&env).await;
    let mut options = options(&env, &public);
    options.policies_dir = Some(
        env.write_policy_set("guarded", &[("grant.cedar", GRANT), ("guard.cedar", GUARD)])
            .expect("policies"),
    );
    let gateway = env.start_gateway(&options).await.expect("gateway");
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &gateway)
        .await
        .expect("fixture");
    let mut hall = env
        .exchange(gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("client");
    let typed = hall
        .fetch(with_timeout(
            client::fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                [LICENCE],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await
        .expect("fetch")
        .into_inner();
    assert_eq!(status_of(&typed.results[0]), RecordStatus::Denied);
    assert!(
        typed.results[0]
            .error
            .contains("licence-needs-the-subjects-code"),
        "{}",
        client::describe(&typed.results)
    );
    let token = issuer_from(&key)
        .issue(
            SubjectKind::ResidentId,
            &citizen,
            60,
            &Scope::default(),
            now(),
        )
        .unwrap();
    let scanned = hall
        .fetch(code_request(&token))
        .await
        .expect("fetch")
        .into_inner();
    assert_eq!(
        status_of(&scanned.results[0]),
        RecordStatus::Ok,
        "{}",
        client::describe(&scanned.results)
    );
    // The subject's access report shows which fetch was the subject's own
    // request: the scanned one carries the code's issuer and nonce.
    let report = xgate_proto::v1::audit_client::AuditClient::new(
        client::connect(gateway.addr(), &env.pki().auditor())
            .await
            .expect("auditor"),
    )
    .subject_report(xgate_proto::v1::SubjectReportRequest {
        subject: Some(Subject {
            kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
            id: citizen.clone(),
        }),
        ..Default::default()
    })
    .await
    .expect("report")
    .into_inner();
    let details: Vec<&str> = report.accesses.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert_eq!(details[0], "", "the typed fetch: {details:?}");
    let scanned_detail: serde_json::Value =
        serde_json::from_str(details[1]).expect("detail is JSON");
    assert_eq!(scanned_detail["subject_code"]["issuer"], ISSUER);
    assert_eq!(
        scanned_detail["subject_code"]["nonce"]
            .as_str()
            .map(str::len),
        Some(32)
    );
    gateway.stop().await.expect("stop");
}
