//! The evaluation mechanism end to end: a requester rates an answer (once,
//! only its own, bound to the receipt), files an objection against a field
//! it received; the owning department (its own certificate) acknowledges and
//! disposes of it, the correction drops the cached record, the filer reads
//! the outcome (fed back, also on its watch stream) and closes it; every
//! step is an audit event. Each refusal is its own precise status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures::StreamExt as _;
use tonic::Code;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, status_of};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::{
    APPROVAL_HALL, GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv,
};
use xgate_proto::v1::evaluation_client::EvaluationClient;
use xgate_proto::v1::{
    AuditQueryRequest, DisposeObjectionRequest, Disposition, FileObjectionRequest,
    ListObjectionsRequest, ObjectionRef, ObjectionState, RateRequest, RatingReason, RecordStatus,
    ScorecardsRequest, Subject, Verdict, WatchObjectionsRequest,
};

const LICENCE: &str = "driving_licence";

type Client = EvaluationClient<tonic::transport::Channel>;

async fn evaluation(addr: std::net::SocketAddr, tls: &xgate_tls::TlsFiles) -> Client {
    EvaluationClient::new(client::connect(addr, tls).await.expect("connect"))
}

fn citizen(id: &str) -> Subject {
    Subject {
        kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
        id: id.to_owned(),
    }
}

fn field_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

/// A gateway with public security serving the sample citizen's licence,
/// and the hall that fetches it.
struct Licensed {
    env: TestEnv,
    gateway: xgate_integration_tests::process::GatewayProcess,
    licences: xgate_integration_tests::fixture::FixtureAdapter,
    hall: xgate_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
    subject: String,
}

async fn licensed(options: &GatewayOptions) -> Licensed {
    let env = TestEnv::new().expect("env");
    let gateway = env.start_gateway(options).await.expect("gateway");
    let subject = env.subjects().citizen.clone();
    let licences = env
        .start_fixture(FixtureDepartment::licences(&subject), &gateway)
        .await
        .expect("public security");
    let hall = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("hall");
    Licensed {
        env,
        gateway,
        licences,
        hall,
        subject,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_and_the_objection_loop_run_end_to_end() {
    let Licensed {
        env,
        gateway,
        licences,
        mut hall,
        subject,
    } = licensed(&GatewayOptions::default()).await;
    // The licence is released; real_estate_title has no adapter here.
    let answer = client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE, "real_estate_title"],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("fetch");
    assert_eq!(
        status_of(&answer.results[0]),
        RecordStatus::Ok,
        "{answer:?}"
    );
    let receipt = answer.receipt.clone().expect("receipt");
    let mut mine = evaluation(gateway.addr(), &env.pki().requester(APPROVAL_HALL)).await;

    // Ratings: bad input first, each its own status.
    let rate = |verdict: Verdict, reasons: Vec<RatingReason>, record_type: &str| RateRequest {
        receipt: Some(receipt.clone()),
        record_type: record_type.into(),
        verdict: verdict as i32,
        reasons: reasons.into_iter().map(|r| r as i32).collect(),
        text: String::new(),
    };
    let e = mine
        .rate(rate(Verdict::Bad, vec![], LICENCE))
        .await
        .expect_err("bad without reasons");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "reasons")
    );
    let e = mine
        .rate(rate(Verdict::Good, vec![], "business_licence"))
        .await
        .expect_err("not in the answer");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "record_type")
    );
    let mut forged = rate(Verdict::Good, vec![], LICENCE);
    if let Some(r) = forged.receipt.as_mut() {
        r.records_digest = vec![7; 32];
    }
    let e = mine.rate(forged).await.expect_err("forged receipt");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "receipt")
    );
    let mut theirs = evaluation(gateway.addr(), &env.pki().requester(PROVIDENT_FUND)).await;
    let e = theirs
        .rate(rate(Verdict::Good, vec![], LICENCE))
        .await
        .expect_err("not their answer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    let rating = mine
        .rate(rate(Verdict::Good, vec![], LICENCE))
        .await
        .expect("rated")
        .into_inner();
    assert_eq!(rating.request_id, answer.request_id);
    assert_eq!(rating.department, "public-security");
    let e = mine
        .rate(rate(Verdict::Bad, vec![RatingReason::Slow], LICENCE))
        .await
        .expect_err("twice");
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    // An unavailable answer can be rated too (why it failed).
    mine.rate(rate(
        Verdict::Bad,
        vec![RatingReason::Unavailable],
        "real_estate_title",
    ))
    .await
    .expect("rated unavailable");

    // Objections: bad input.
    let e = mine
        .file(client::licence_objection(
            &receipt,
            &subject,
            "colour",
            "red".into(),
        ))
        .await
        .expect_err("no such field");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "field_path")
    );
    let e = mine
        .file(client::licence_objection(
            &receipt,
            &subject,
            "valid_until",
            "31 May".into(),
        ))
        .await
        .expect_err("not a date");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "believed_value")
    );
    let other = env.subjects().gappy_citizen.clone();
    let e = mine
        .file(client::licence_objection(
            &receipt,
            &other,
            "valid_until",
            "2031-05-31".into(),
        ))
        .await
        .expect_err("another subject");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "subject")
    );
    let mut unreleased = client::licence_objection(&receipt, &subject, "address", "亳州市".into());
    unreleased.record_type = "real_estate_title".into();
    let e = mine.file(unreleased).await.expect_err("not released");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = theirs
        .file(client::licence_objection(
            &receipt,
            &subject,
            "valid_until",
            "2031-05-31".into(),
        ))
        .await
        .expect_err("not their answer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    let filed = mine
        .file(client::licence_objection(
            &receipt,
            &subject,
            "valid_until",
            "2031-05-31".into(),
        ))
        .await
        .expect("filed")
        .into_inner();
    assert_eq!(filed.state, ObjectionState::Reported as i32);
    assert_eq!(filed.department, "public-security");
    assert!(!filed.overdue);
    let filed_at = filed.filed_at.expect("filed_at").seconds;
    let due = filed.due_at.expect("due_at").seconds - filed_at;
    // Five working days: at least five and at most seven calendar days.
    assert!((5 * 86_400..=7 * 86_400).contains(&due), "{due}");
    let mut watch = mine
        .watch(WatchObjectionsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("an item").expect("ok");
    assert_eq!(
        (first.id.as_str(), first.state),
        (filed.id.as_str(), ObjectionState::Reported as i32)
    );

    // The department's queue: another department may not touch it.
    let mut tax = evaluation(gateway.addr(), &env.pki().department("tax")).await;
    let e = tax
        .acknowledge(ObjectionRef {
            id: filed.id.clone(),
        })
        .await
        .expect_err("another department");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = tax
        .dispose(DisposeObjectionRequest {
            id: filed.id.clone(),
            disposition: Disposition::Rejected as i32,
            reason: "not ours to judge".into(),
        })
        .await
        .expect_err("another department disposing");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        tax.list(ListObjectionsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .objections
            .is_empty()
    );
    let mut owner = evaluation(gateway.addr(), &env.pki().department("public-security")).await;
    let queue = owner
        .list(ListObjectionsRequest::default())
        .await
        .expect("queue")
        .into_inner()
        .objections;
    assert_eq!(queue.len(), 1);
    assert_eq!(
        queue[0].subject.as_ref().map(|s| s.id.as_str()),
        Some(subject.as_str())
    );
    let e = mine
        .acknowledge(ObjectionRef {
            id: filed.id.clone(),
        })
        .await
        .expect_err("a requester is no department");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let acked = owner
        .acknowledge(ObjectionRef {
            id: filed.id.clone(),
        })
        .await
        .expect("ack")
        .into_inner();
    assert_eq!(acked.state, ObjectionState::Circulated as i32);
    let e = owner
        .dispose(DisposeObjectionRequest {
            id: filed.id.clone(),
            disposition: Disposition::Corrected as i32,
            reason: String::new(),
        })
        .await
        .expect_err("no reason");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "reason")
    );

    // The licence is cached now; the correction drops it.
    let before = licences.lookups();
    client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("cached fetch");
    assert_eq!(licences.lookups(), before, "served from the cache");
    let disposed = owner
        .dispose(DisposeObjectionRequest {
            id: filed.id.clone(),
            disposition: Disposition::Corrected as i32,
            reason: "validity re-entered from the renewal file".into(),
        })
        .await
        .expect("dispose")
        .into_inner();
    assert_eq!(disposed.state, ObjectionState::Disposed as i32);
    client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("fetch after the correction");
    assert_eq!(
        licences.lookups(),
        before + 1,
        "the correction dropped the cached record"
    );
    let e = owner
        .dispose(DisposeObjectionRequest {
            id: filed.id.clone(),
            disposition: Disposition::Rejected as i32,
            reason: "again".into(),
        })
        .await
        .expect_err("disposed already");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Feedback: the watch sees the outcome, which feeds it back.
    let fed = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next())
        .await
        .expect("a change within 10 s")
        .expect("an item")
        .expect("ok");
    assert_eq!(fed.id, filed.id);
    assert_eq!(fed.state, ObjectionState::FedBack as i32, "{fed:?}");
    assert_eq!(fed.disposition, Disposition::Corrected as i32);
    assert_eq!(
        fed.disposal_reason,
        "validity re-entered from the renewal file"
    );
    let e = theirs
        .close(ObjectionRef {
            id: filed.id.clone(),
        })
        .await
        .expect_err("not the filer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let closed = mine
        .close(ObjectionRef {
            id: filed.id.clone(),
        })
        .await
        .expect("close")
        .into_inner();
    assert_eq!(closed.state, ObjectionState::Closed as i32);

    // Every step is an audit event under the subject.
    let auditor = env.pki().auditor();
    let events: Vec<String> = client::audit_entries(
        gateway.addr(),
        &auditor,
        AuditQueryRequest {
            subject: Some(citizen(&subject)),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit entries")
    .into_iter()
    .map(|e| e.event)
    .filter(|e| !e.is_empty())
    .collect();
    assert_eq!(
        events,
        [
            "objection_filed",
            "objection_acknowledged",
            "objection_disposed",
            "objection_fed_back",
            "objection_closed"
        ],
    );
    // The subject's report lists them beside the accesses.
    let report = xgate_proto::v1::audit_client::AuditClient::new(
        client::connect(gateway.addr(), &auditor)
            .await
            .expect("auditor"),
    )
    .subject_report(xgate_proto::v1::SubjectReportRequest {
        subject: Some(citizen(&subject)),
        ..xgate_proto::v1::SubjectReportRequest::default()
    })
    .await
    .expect("report")
    .into_inner();
    assert_eq!(
        report
            .events
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        events,
        "{report:?}"
    );
    assert!(report.accesses.len() >= 3, "{report:?}");
    let rated = client::audit_entries(gateway.addr(), &auditor, AuditQueryRequest::default())
        .await
        .expect("audit entries")
        .iter()
        .filter(|e| e.event == "answer_rated")
        .count();
    assert_eq!(rated, 2);

    // Scorecards: public security sees its own — three licence decisions
    // (adapter, cache, adapter again after the correction), all answered;
    // the good rating; the objection disposed in about no time.
    let cards = owner
        .scorecards(ScorecardsRequest::default())
        .await
        .expect("own scorecard")
        .into_inner();
    assert_eq!(cards.window_days, 7);
    assert_eq!(cards.departments.len(), 1, "{cards:?}");
    let ps = &cards.departments[0];
    assert_eq!(ps.department, "public-security");
    let total = ps.total.expect("total");
    assert_eq!((total.called, total.answered), (3, 3), "{total:?}");
    assert!((total.availability - 1.0).abs() < 1e-9);
    assert!(
        total.p50_ms > 0.0 && total.p99_ms >= total.p50_ms,
        "{total:?}"
    );
    assert_eq!((total.ratings_good, total.ratings_bad), (1, 0));
    assert_eq!((total.objections_open, total.objections_overdue), (0, 0));
    assert!(total.median_dispose_hours < 1.0, "{total:?}");
    let e = tax
        .scorecards(ScorecardsRequest {
            department: "public-security".into(),
            ..ScorecardsRequest::default()
        })
        .await
        .expect_err("another department's card");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = mine
        .scorecards(ScorecardsRequest::default())
        .await
        .expect_err("a requester");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let mut auditor_eval = evaluation(gateway.addr(), &env.pki().auditor()).await;
    let e = auditor_eval
        .scorecards(ScorecardsRequest {
            window_days: 9,
            ..ScorecardsRequest::default()
        })
        .await
        .expect_err("a 9-day window");
    assert_eq!(
        (e.code(), field_of(&e).as_str()),
        (Code::InvalidArgument, "window_days")
    );
    let all = auditor_eval
        .scorecards(ScorecardsRequest {
            window_days: 30,
            ..ScorecardsRequest::default()
        })
        .await
        .expect("all scorecards")
        .into_inner();
    let names: Vec<&str> = all
        .departments
        .iter()
        .map(|d| d.department.as_str())
        .collect();
    // The hall's unanswered title counts only its bad rating: no adapter was asked.
    assert_eq!(names, ["natural-resources", "public-security"], "{all:?}");
    let nr = all.departments[0].total.expect("total");
    assert_eq!((nr.called, nr.ratings_bad), (0, 1), "{nr:?}");
}

/// On two replicas sharing PostgreSQL: an objection filed through A is in
/// B's department queue (one store); a correction disposed through B drops
/// the record A had cached (NOTIFY `xgate_corrections`), and the filer
/// reads the outcome through A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_through_one_replica_drops_the_others_cached_record() {
    use std::time::{Duration, Instant};
    let db = xgate_integration_tests::pg::PgDb::create("xgate_evaluation")
        .await
        .expect("postgres");
    let env = TestEnv::new().expect("env");
    let replicas = xgate_integration_tests::replicas::start_replicas(
        &env,
        &db,
        &["a", "b"],
        &GatewayOptions::default(),
    )
    .await
    .expect("replicas");
    let (a, b) = (&replicas[0], &replicas[1]);
    let subject = env.subjects().citizen.clone();
    let licences = env
        .start_fixture(FixtureDepartment::licences(&subject), a)
        .await
        .expect("public security");
    let mut hall_a = env.exchange(a.addr(), APPROVAL_HALL).await.expect("hall");
    let request = || {
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE],
            GENERAL_APPROVAL,
        )
    };
    let answer = client::fetch(&mut hall_a, request()).await.expect("fetch");
    assert_eq!(
        status_of(&answer.results[0]),
        RecordStatus::Ok,
        "{answer:?}"
    );
    let receipt = answer.receipt.clone().expect("receipt");
    let cached = licences.lookups();
    client::fetch(&mut hall_a, request()).await.expect("fetch");
    assert_eq!(licences.lookups(), cached, "a serves it from its cache");

    let mut filer = evaluation(a.addr(), &env.pki().requester(APPROVAL_HALL)).await;
    let filed = filer
        .file(client::licence_objection(
            &receipt,
            &subject,
            "penalty_points",
            0.into(),
        ))
        .await
        .expect("filed through a")
        .into_inner();
    // The department works its queue through B, in code (the SDK's queue).
    let mut queue = xgate_adapter_sdk::objections::Queue::connect(
        &format!("https://{}", b.addr()),
        &env.pki().department("public-security"),
    )
    .expect("queue");
    let open = queue.open().await.expect("queue through b");
    assert_eq!(
        open.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        [filed.id.as_str()]
    );
    queue
        .dispose(
            &filed.id,
            xgate_adapter_sdk::objections::Outcome::Corrected,
            "points struck off after the appeal",
        )
        .await
        .expect("disposed through b");
    assert!(
        queue.open().await.expect("queue").is_empty(),
        "nothing left open"
    );
    // A drops its cached licence on B's notice: within a second, a fetch
    // through A asks the department again.
    let disposed = Instant::now();
    loop {
        client::fetch(&mut hall_a, request()).await.expect("fetch");
        if licences.lookups() > cached {
            break;
        }
        assert!(
            disposed.elapsed() < Duration::from_secs(1),
            "a still serves the corrected record from its cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let read = filer
        .list(ListObjectionsRequest {
            id: filed.id.clone(),
            ..ListObjectionsRequest::default()
        })
        .await
        .expect("read through a")
        .into_inner()
        .objections;
    assert_eq!(read[0].state, ObjectionState::FedBack as i32, "{read:?}");
    assert_eq!(
        read[0].disposal_reason,
        "points struck off after the appeal"
    );
    // The scorecard through B reads the shared log's daily counts: every
    // licence decision of A, answered.
    let mut owner_b = evaluation(b.addr(), &env.pki().department("public-security")).await;
    let card = owner_b
        .scorecards(ScorecardsRequest::default())
        .await
        .expect("scorecard through b")
        .into_inner()
        .departments[0]
        .total
        .expect("total");
    assert!(card.called >= 3 && card.answered == card.called, "{card:?}");
    drop(licences);
    for r in replicas {
        r.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// The citizen objects through the citizen platform: a fresh code of the
/// subject (spent), and the access's entry from their report. Another
/// subject's code, or a spent one, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_citizen_objects_through_the_platform_with_a_fresh_code() {
    use xgate_code::{Issuer, Scope};
    const ISSUER: &str = "test-identity";
    let issuer = Issuer::from_pkcs8(ISSUER, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let Licensed {
        env,
        gateway,
        licences: _licences,
        mut hall,
        subject,
    } = licensed(&GatewayOptions {
        extra_toml: format!(
            "[subject_codes.issuers]\n{ISSUER} = \"{}\"\n",
            issuer.public_key_hex()
        ),
        ..GatewayOptions::default()
    })
    .await;
    let answer = client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &subject,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("fetch");
    let receipt = answer.receipt.expect("receipt");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap();
    let code = |who: &str| {
        issuer
            .issue(SubjectKind::ResidentId, who, 60, &Scope::default(), now)
            .unwrap()
    };
    let request = |token: String| FileObjectionRequest {
        subject_code: token,
        entry_chain: receipt.chain.clone(),
        entry_index: receipt.index,
        record_type: LICENCE.into(),
        field_path: "penalty_points".into(),
        believed_value: Some(xgate_proto::json::to_value(0.into())),
        evidence_ref: "appeal decision 118".into(),
        ..FileObjectionRequest::default()
    };
    let mut platform = evaluation(gateway.addr(), &env.pki().platform()).await;
    let e = platform
        .file(request(code(&env.subjects().gappy_citizen)))
        .await
        .expect_err("another subject's code");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let token = code(&subject);
    let filed = platform
        .file(request(token.clone()))
        .await
        .expect("filed by the citizen")
        .into_inner();
    assert!(filed.filed_by.starts_with("xgate://platform/"), "{filed:?}");
    assert_eq!(filed.request_id, answer.request_id);
    let e = platform
        .file(request(token))
        .await
        .expect_err("a spent code");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // The platform reads what it filed; the hall does not see it as its own.
    let listed = platform
        .list(ListObjectionsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .objections;
    assert_eq!(listed.len(), 1);
    let mut hall_eval = evaluation(gateway.addr(), &env.pki().requester(APPROVAL_HALL)).await;
    assert!(
        hall_eval
            .list(ListObjectionsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .objections
            .is_empty()
    );
}
