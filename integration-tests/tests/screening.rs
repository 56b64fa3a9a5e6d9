//! Proactive screening end to end: the benefits office streams candidates
//! through the elderly allowance (registered in Bozhou, 60 or older, no
//! pension) and gets yes/no per subject, each predicate's answer or the
//! status that kept it, and nothing else; every screened subject is in the
//! audit log under their hash; bad input (unknown item, no grant, malformed
//! or wrong-kind IDs, duplicates, too many per message, a run over its
//! limit) is refused precisely; a department failing mid-run leaves its
//! subjects UNKNOWN and the run completes; a dropped stream resumes without
//! screening anyone twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use xgate_integration_tests::client;
use xgate_integration_tests::fixture::{FixtureAdapter, FixtureDepartment, Mode};
use xgate_integration_tests::{APPROVAL_HALL, BENEFITS_OFFICE, GatewayOptions, TestEnv};
use xgate_proto::v1::screening_client::ScreeningClient;
use xgate_proto::v1::{
    AuditQueryRequest, Eligibility, RecordStatus, ScreenRequest, ScreenResponse, ScreenResult,
    ScreenRun, ScreenStart, ScreenSubjects, Subject, SubjectKind, screen_request, screen_response,
};

const ITEM: &str = "ELDERLY-ALLOWANCE";

fn citizen(id: &str) -> Subject {
    Subject {
        kind: SubjectKind::ResidentId as i32,
        id: id.to_owned(),
    }
}

/// People of the synthetic population: two of 60 or more, one younger.
struct People {
    old: Vec<(String, String)>,
    young: (String, String),
}

fn people() -> People {
    let population = xgate_synth::Population::generate(400, 1);
    let with_birth = |c: &xgate_synth::Citizen| (c.id_number.clone(), c.birth_date.to_string());
    let old: Vec<_> = population
        .citizens
        .iter()
        .filter(|c| c.age() >= 65)
        .take(3)
        .map(with_birth)
        .collect();
    let young = population
        .citizens
        .iter()
        .find(|c| (20..50).contains(&c.age()))
        .map(with_birth)
        .unwrap();
    People { old, young }
}

fn household(id: &str, city: &str) -> Value {
    json!({
        "id_number": id,
        "name": "王桂兰",
        "household_no": "341602001",
        "household_type": "family",
        "relationship_to_head": "head",
        "father_id_number": null,
        "mother_id_number": null,
        "guardian_id_number": null,
        "registered_address": format!("安徽省{city}谯城区魏武大道288号"),
        "native_place": "安徽省亳州市",
        "police_station": "亳州市公安局谯城分局花园派出所",
        "registration_date": "1958-01-09",
        "status": "active",
    })
}

fn id_card(id: &str, birth: &str) -> Value {
    json!({
        "id_number": id,
        "name": "王桂兰",
        "gender": "female",
        "ethnicity": "汉",
        "birth_date": birth,
        "address": "安徽省亳州市谯城区魏武大道288号",
        "issuing_authority": "亳州市公安局谯城分局",
        "valid_from": "2016-03-01",
        "valid_until": null,
    })
}

fn pension(id: &str) -> Value {
    json!({
        "id_number": id,
        "name": "王桂兰",
        "scheme": "urban_rural_resident",
        "retirement_date": "2016-06-01",
        "contribution_months": 180,
        "monthly_amount_cny": 236.5,
        "status": "paying",
        "handling_agency": "亳州市社会保险事业管理中心",
    })
}

struct Setup {
    env: TestEnv,
    gateway: xgate_integration_tests::process::GatewayProcess,
    _police: FixtureAdapter,
    social: FixtureAdapter,
    /// Eligible; 60+ with a pension; 60+ registered elsewhere; young.
    eligible: String,
    pensioned: String,
    elsewhere: String,
    young: String,
}

async fn setup(options: &GatewayOptions) -> Setup {
    setup_in(TestEnv::new().expect("env"), options).await
}

async fn setup_in(env: TestEnv, options: &GatewayOptions) -> Setup {
    let gateway = env.start_gateway(options).await.expect("gateway");
    let d = departments(&env, &gateway).await;
    Setup {
        env,
        gateway,
        _police: d.police,
        social: d.social,
        eligible: d.eligible,
        pensioned: d.pensioned,
        elsewhere: d.elsewhere,
        young: d.young,
    }
}

/// Public security and social security serving four people, registered
/// with `gateway`.
struct Departments {
    police: FixtureAdapter,
    social: FixtureAdapter,
    eligible: String,
    pensioned: String,
    elsewhere: String,
    young: String,
}

async fn departments(
    env: &TestEnv,
    gateway: &xgate_integration_tests::process::GatewayProcess,
) -> Departments {
    let p = people();
    let (eligible, pensioned, elsewhere) = (&p.old[0], &p.old[1], &p.old[2]);
    let police = FixtureDepartment::new("public-security")
        .serving(
            "household_registration",
            vec![
                household(&eligible.0, "亳州市"),
                household(&pensioned.0, "亳州市"),
                household(&elsewhere.0, "合肥市"),
                household(&p.young.0, "亳州市"),
            ],
        )
        .serving(
            "resident_identity_card",
            [eligible, pensioned, elsewhere, &p.young]
                .iter()
                .map(|(id, birth)| id_card(id, birth))
                .collect(),
        )
        .per_subject();
    let police = env.start_fixture(police, gateway).await.expect("police");
    let social = FixtureDepartment::new("human-resources-social-security")
        .serving("pension_entitlement", vec![pension(&pensioned.0)])
        .per_subject();
    let social = env.start_fixture(social, gateway).await.expect("social");
    Departments {
        police,
        social,
        eligible: eligible.0.clone(),
        pensioned: pensioned.0.clone(),
        elsewhere: elsewhere.0.clone(),
        young: p.young.0.clone(),
    }
}

async fn screening(s: &Setup, requester: &str) -> ScreeningClient<tonic::transport::Channel> {
    ScreeningClient::new(
        client::connect(s.gateway.addr(), &s.env.pki().requester(requester))
            .await
            .expect("connect"),
    )
}

/// What a whole stream answered.
#[derive(Debug, Default)]
struct Answered {
    run: Option<ScreenRun>,
    results: Vec<ScreenResult>,
    error: Option<tonic::Status>,
}

fn start(item: &str) -> ScreenRequest {
    ScreenRequest {
        body: Some(screen_request::Body::Start(ScreenStart {
            item: item.into(),
            after: -1,
            ..ScreenStart::default()
        })),
    }
}

fn subjects(ids: &[Subject]) -> ScreenRequest {
    ScreenRequest {
        body: Some(screen_request::Body::Subjects(ScreenSubjects {
            subjects: ids.to_vec(),
        })),
    }
}

/// Sends `messages`, closes, and reads everything back.
async fn run(
    client: &mut ScreeningClient<tonic::transport::Channel>,
    messages: Vec<ScreenRequest>,
) -> Result<Answered, tonic::Status> {
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        tx.send(m).await.unwrap();
    }
    drop(tx);
    let mut inbound = client.screen(ReceiverStream::new(rx)).await?.into_inner();
    let mut answered = Answered::default();
    loop {
        match inbound.message().await {
            Ok(Some(ScreenResponse {
                body: Some(screen_response::Body::Run(r)),
            })) => {
                answered.run = Some(r);
            }
            Ok(Some(ScreenResponse {
                body: Some(screen_response::Body::Result(r)),
            })) => answered.results.push(r),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                answered.error = Some(e);
                break;
            }
        }
    }
    Ok(answered)
}

fn eligibility(results: &[ScreenResult]) -> Vec<Eligibility> {
    results.iter().map(ScreenResult::eligibility).collect()
}

async fn screenings_of(s: &Setup, id: &str) -> Vec<xgate_proto::v1::AuditEntry> {
    client::audit_entries(
        s.gateway.addr(),
        &s.env.pki().auditor(),
        AuditQueryRequest {
            subject: Some(citizen(id)),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit")
    .into_iter()
    .filter(|e| e.approval_item == ITEM)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_answers_yes_or_no_per_subject_and_logs_each() {
    let s = setup(&GatewayOptions::default()).await;
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    let company = s.env.subjects().company.clone();
    let answered = run(
        &mut office,
        vec![
            start(ITEM),
            subjects(&[
                citizen(&s.eligible),
                citizen(&s.pensioned),
                citizen(&s.elsewhere),
                citizen(&s.young),
            ]),
            subjects(&[
                citizen("110101199003078888"),
                citizen(&s.eligible),
                Subject {
                    kind: SubjectKind::Uscc as i32,
                    id: company,
                },
            ]),
        ],
    )
    .await
    .expect("run");
    assert!(answered.error.is_none(), "{answered:?}");
    let header = answered.run.clone().expect("run header");
    assert_eq!((header.item.as_str(), header.next), (ITEM, 0));
    assert_eq!(header.subject_kind, SubjectKind::ResidentId as i32);
    assert_eq!(header.predicates.len(), 3);
    assert!(header.predicates[2].negated);
    assert_eq!(header.max_subjects, 200_000);
    use Eligibility::*;
    assert_eq!(
        eligibility(&answered.results),
        [
            Eligible,
            NotEligible,
            NotEligible,
            NotEligible,
            InvalidSubject,
            Duplicate,
            InvalidSubject
        ]
    );
    let seqs: Vec<u64> = answered.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    let r = &answered.results;
    // Each predicate's answer: registered in Bozhou, 60+, receives a pension.
    let answers = |r: &ScreenResult| -> Vec<(RecordStatus, bool)> {
        r.predicates.iter().map(|p| (p.status(), p.value)).collect()
    };
    use RecordStatus::{NotFound, Ok as Found};
    assert_eq!(
        answers(&r[0]),
        [(Found, true), (Found, true), (NotFound, false)]
    );
    assert_eq!(
        answers(&r[1]),
        [(Found, true), (Found, true), (Found, true)]
    );
    assert_eq!(
        answers(&r[2]),
        [(Found, false), (Found, true), (NotFound, false)]
    );
    assert_eq!(
        answers(&r[3]),
        [(Found, true), (Found, false), (NotFound, false)]
    );
    assert!(r[4].error.contains("subject"), "{:?}", r[4]);
    assert!(r[4].predicates.is_empty());
    assert_eq!(r[5].duplicate_of, 0);
    assert!(r[6].error.contains("uscc"), "{:?}", r[6]);

    // Every asked subject is in the log under their hash, once; the entry
    // names the run, its position and the outcome.
    let logged = screenings_of(&s, &s.eligible).await;
    assert_eq!(logged.len(), 3, "one entry, three decisions: {logged:?}");
    assert!(logged.iter().all(|e| e.decision == "permit"));
    assert!(
        logged[0].detail.contains("\"eligibility\":\"eligible\""),
        "{}",
        logged[0].detail
    );
    assert!(logged[0].detail.contains(&header.run_id));
    assert_eq!(
        logged
            .iter()
            .map(|e| e.record_type.as_str())
            .collect::<Vec<_>>(),
        [
            "household_registration",
            "resident_identity_card",
            "pension_entitlement"
        ]
    );
    let pensioned = screenings_of(&s, &s.pensioned).await;
    assert!(
        pensioned[0].detail.contains("not eligible"),
        "{}",
        pensioned[0].detail
    );
    s.gateway.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_runs_are_refused_precisely() {
    let s = setup(&GatewayOptions::default()).await;
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    let e = run(&mut office, vec![start("NOPE")])
        .await
        .expect_err("unknown item");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("`NOPE` is not a screening item"),
        "{e:?}"
    );
    let e = run(&mut office, vec![subjects(&[citizen(&s.eligible)])])
        .await
        .expect_err("no start");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // A grant to read is not a grant to screen.
    let mut hall = screening(&s, APPROVAL_HALL).await;
    let e = run(&mut hall, vec![start(ITEM)])
        .await
        .expect_err("no grant");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // ... and the refusal is logged.
    let refused = client::audit_entries(
        s.gateway.addr(),
        &s.env.pki().auditor(),
        AuditQueryRequest {
            requester: APPROVAL_HALL.into(),
            decision: "deny".into(),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .unwrap();
    assert!(
        refused.iter().any(|e| e.approval_item == ITEM),
        "{refused:?}"
    );
    // Another requester cannot resume the office's run.
    let mine = run(
        &mut office,
        vec![start(ITEM), subjects(&[citizen(&s.young)])],
    )
    .await
    .unwrap();
    let run_id = mine.run.unwrap().run_id;
    let resume = ScreenRequest {
        body: Some(screen_request::Body::Start(ScreenStart {
            run_id: run_id.clone(),
            after: -1,
            ..ScreenStart::default()
        })),
    };
    let e = run(&mut hall, vec![resume]).await.expect_err("not theirs");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // More than 1,000 subjects in one message: the stream ends with it.
    let many: Vec<Subject> = (0..1_001).map(|_| citizen(&s.young)).collect();
    let answered = run(&mut office, vec![start(ITEM), subjects(&many)])
        .await
        .unwrap();
    let e = answered.error.expect("too many");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(answered.results.is_empty());
    s.gateway.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_at_its_limit() {
    let env = TestEnv::new().expect("env");
    let limited = std::fs::read_to_string(TestEnv::repo_policies().join("screening.cedar"))
        .unwrap()
        .replace(
            "@max_subjects_per_run(\"200000\")",
            "@max_subjects_per_run(\"3\")",
        );
    let dir = env
        .write_policy_set("limited", &[("screening.cedar", &limited)])
        .unwrap();
    let s = setup_in(
        env,
        &GatewayOptions {
            policies_dir: Some(dir),
            ..GatewayOptions::default()
        },
    )
    .await;
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    let four = [&s.eligible, &s.pensioned, &s.elsewhere, &s.young].map(|id| citizen(id));
    let answered = run(&mut office, vec![start(ITEM), subjects(&four)])
        .await
        .unwrap();
    assert_eq!(answered.run.unwrap().max_subjects, 3);
    assert_eq!(answered.results.len(), 3, "the first three are answered");
    let e = answered.error.expect("over the limit");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("limit of 3 subjects"), "{e:?}");
    s.gateway.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_department_leaves_its_subjects_unknown_and_the_run_completes() {
    let s = setup(&GatewayOptions::default()).await;
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    s.social.mode().set(Mode::Failing);
    let answered = run(
        &mut office,
        vec![
            start(ITEM),
            subjects(&[citizen(&s.eligible), citizen(&s.young)]),
        ],
    )
    .await
    .unwrap();
    assert!(answered.error.is_none(), "{answered:?}");
    // The pension is unknown: the 60+ Bozhou resident cannot be settled;
    // the young one is not eligible whatever the pension.
    assert_eq!(
        eligibility(&answered.results),
        [Eligibility::Unknown, Eligibility::NotEligible]
    );
    assert_eq!(
        answered.results[0].predicates[2].status(),
        RecordStatus::Unavailable
    );
    // Once the department is back, screening again settles it.
    s.social.mode().set(Mode::Ok);
    let again = run(
        &mut office,
        vec![start(ITEM), subjects(&[citizen(&s.eligible)])],
    )
    .await
    .unwrap();
    assert_eq!(eligibility(&again.results), [Eligibility::Eligible]);
    s.gateway.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resumes_without_screening_anyone_twice() {
    let s = setup(&GatewayOptions::default()).await;
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    let all = [&s.eligible, &s.pensioned, &s.elsewhere, &s.young].map(|id| citizen(id));
    // The first two, then the caller goes away (keeping its sender open:
    // a hang-up, not a finished list).
    let (tx, rx) = mpsc::channel(4);
    tx.send(start(ITEM)).await.unwrap();
    tx.send(subjects(&all[..2])).await.unwrap();
    let mut inbound = office
        .screen(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut run_id = String::new();
    let mut got = Vec::new();
    while got.len() < 2 {
        match inbound.message().await.unwrap().unwrap().body {
            Some(screen_response::Body::Run(r)) => run_id = r.run_id,
            Some(screen_response::Body::Result(r)) => got.push(r),
            None => {}
        }
    }
    drop(inbound);
    drop(tx);
    let asked_before = s.social.lookups();
    // Resume having kept only the first result: the second is sent again
    // from the store, the rest follow.
    let resume = ScreenRequest {
        body: Some(screen_request::Body::Start(ScreenStart {
            run_id: run_id.clone(),
            after: 0,
            ..ScreenStart::default()
        })),
    };
    let mut office = screening(&s, BENEFITS_OFFICE).await;
    let resumed = run(&mut office, vec![resume, subjects(&all[2..])])
        .await
        .unwrap();
    assert!(resumed.error.is_none(), "{resumed:?}");
    assert_eq!(resumed.run.as_ref().unwrap().next, 2);
    let seqs: Vec<u64> = resumed.results.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(
        resumed.results[0], got[1],
        "the stored result, not a new one"
    );
    // Only the two new subjects were asked of the department.
    assert_eq!(s.social.lookups(), asked_before + 2);
    // Each subject is in the log once.
    assert_eq!(screenings_of(&s, &s.pensioned).await.len(), 3);
    s.gateway.stop().await.expect("stop");
}

/// A run begun on one replica resumes on another: the cursor and the
/// results are in the shared PostgreSQL store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_begun_on_one_replica_resumes_on_another() {
    let db = xgate_integration_tests::pg::PgDb::create("xgate_screening")
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
    let d = departments(&env, a).await;
    let types = [
        "household_registration".to_owned(),
        "resident_identity_card".to_owned(),
        "pension_entitlement".to_owned(),
    ];
    env.wait_for_sources(b.addr(), &types)
        .await
        .expect("b routes");
    let office = |addr| {
        let tls = env.pki().requester(BENEFITS_OFFICE);
        async move { ScreeningClient::new(client::connect(addr, &tls).await.expect("connect")) }
    };
    let all = [&d.eligible, &d.pensioned, &d.elsewhere, &d.young].map(|id| citizen(id));
    let first = run(
        &mut office(a.addr()).await,
        vec![start(ITEM), subjects(&all[..2])],
    )
    .await
    .unwrap();
    let run_id = first.run.unwrap().run_id;
    assert_eq!(
        eligibility(&first.results),
        [Eligibility::Eligible, Eligibility::NotEligible]
    );
    let resume = ScreenRequest {
        body: Some(screen_request::Body::Start(ScreenStart {
            run_id: run_id.clone(),
            after: 1,
            ..ScreenStart::default()
        })),
    };
    // The first subject again, too: b knows it from the shared store.
    let rest = [all[2].clone(), all[3].clone(), all[0].clone()];
    let resumed = run(&mut office(b.addr()).await, vec![resume, subjects(&rest)])
        .await
        .unwrap();
    assert!(resumed.error.is_none(), "{resumed:?}");
    assert_eq!(resumed.run.unwrap().next, 2);
    assert_eq!(
        eligibility(&resumed.results),
        [
            Eligibility::NotEligible,
            Eligibility::NotEligible,
            Eligibility::Duplicate
        ]
    );
    assert_eq!(resumed.results[2].duplicate_of, 0);
    drop(d);
    for r in replicas {
        r.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// `xgate screen --output FILE` as an integrator runs it: the CSV holds a
/// row per subject with each predicate's answer; `--resume` adds the rest of
/// a longer list to the same file without asking anyone twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xgate_screen_writes_a_row_per_subject_and_resumes() {
    use xgate_integration_tests::bins;
    let s = setup(&GatewayOptions::default()).await;
    let dir = s.env.dir();
    let input = dir.join("candidates.txt");
    let output = dir.join("results.csv");
    std::fs::write(
        &input,
        format!(
            "# the office's list\n{}\n{}\nnot-an-id\n",
            s.eligible, s.young
        ),
    )
    .unwrap();
    let tls = s.env.pki().requester(BENEFITS_OFFICE);
    let screen = |extra: &[&str]| {
        let mut command = tokio::process::Command::new(bins::binary(bins::GATEWAY).unwrap());
        command
            .arg("screen")
            .args(["--gateway", &s.gateway.url()])
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key)
            .arg("--ca")
            .arg(&tls.ca)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .args(extra);
        command
    };
    let first = screen(&["--item", ITEM, "--quiet"]).output().await.unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        stdout.contains("1 eligible, 1 not eligible, 0 unknown, 1 invalid"),
        "{stdout}"
    );
    let run_id = stdout.split_whitespace().nth(1).expect("run id").to_owned();
    let csv = std::fs::read_to_string(&output).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "seq,subject,eligibility,household_registration.registered_in,resident_identity_card.age_at_least,not pension_entitlement.receives_pension,error"
    );
    assert_eq!(
        rows[1],
        format!("0,{},eligible,true,true,false,", s.eligible)
    );
    assert_eq!(
        rows[2],
        format!("1,{},not_eligible,true,false,false,", s.young)
    );
    assert!(rows[3].starts_with("2,not-an-id,invalid_subject,"), "{csv}");
    // The list grows; the run resumes where the file ends.
    std::fs::write(
        &input,
        format!("{}\n{}\nnot-an-id\n{}\n", s.eligible, s.young, s.pensioned),
    )
    .unwrap();
    let asked = s.social.lookups();
    let again = screen(&["--resume", &run_id, "--quiet"])
        .output()
        .await
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let csv = std::fs::read_to_string(&output).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert_eq!(
        csv.lines().last().unwrap(),
        format!("3,{},not_eligible,true,true,true,", s.pensioned)
    );
    assert_eq!(
        s.social.lookups(),
        asked + 1,
        "only the new subject was asked"
    );
    s.gateway.stop().await.expect("stop");
}
