//! "Family agency" end to end: a spouse applies for the subject, and the
//! gateway verifies the marriage at civil affairs (a real adapter over mTLS)
//! before the fetch, as an audited fetch of its own; parents, children and
//! guardians are verified in public security's household registration (a
//! child's own registration names the subject as parent). A claim the records do
//! not show, a relation no record verifies, and an applicant who is the
//! subject are refused with reasons a caller can act on; policies see the
//! verified relation; the fetch's audit entry names the applicant (as a
//! keyed hash), the relation and the check that showed it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tonic_types::StatusExt as _;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, status_of};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::records::SUBJECT;
use xgate_integration_tests::{GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv, grants};
use xgate_proto::v1::{
    AuditQueryRequest, FetchRequest, RecordStatus, Relation, Representation, Subject,
};

const LICENCE: &str = "driving_licence";
const REPRESENTATION: &str = include_str!("../../policies/representation.cedar");

/// A valid resident ID from its first 17 digits.
fn resident(body: &str) -> String {
    let check = xgate_catalog::ids::resident_id_check_char(body).expect("17 digits");
    format!("{body}{check}")
}

/// The subject's marriage in force, naming `spouse`.
fn marriage(spouse: &str) -> Value {
    serde_json::json!({
        "certificate_no": "J341602-2019-000123",
        "id_number": SUBJECT,
        "name": "王桂兰",
        "spouse_name": "李建国",
        "spouse_id_number": spouse,
        "registration_date": "1979-05-01",
        "registration_authority": "亳州市谯城区民政局",
        "status": "married",
    })
}

/// The subject's notarised power of attorney to `agent`, covering `item`.
fn power_of_attorney(agent: &str, item: &str) -> Value {
    serde_json::json!({
        "certificate_no": "（2025）皖亳谯证字第1024号",
        "id_number": SUBJECT,
        "name": "王桂兰",
        "matter": "power_of_attorney",
        "notary_office": "安徽省亳州市公证处",
        "notary_name": "陈静",
        "country_of_use": null,
        "issue_date": "2025-03-18",
        "agent_id_number": agent,
        "covered_item": item,
    })
}

/// An attorney's fetch for `item` (the power must cover it).
fn for_item(subject: &str, attorney: &str, item: &str) -> FetchRequest {
    FetchRequest {
        record_types: Vec::new(),
        purpose: String::new(),
        approval_item: item.to_owned(),
        ..request(subject, attorney, Relation::Attorney)
    }
}

fn request(subject: &str, applicant: &str, relation: Relation) -> FetchRequest {
    let mut request = client::fetch_request(
        SubjectKind::ResidentId,
        subject,
        [LICENCE],
        GENERAL_APPROVAL,
    );
    request.representation = Some(Representation {
        applicant_id: applicant.to_owned(),
        relation: relation as i32,
    });
    request
}

/// A household registration of `id` naming its father, mother and guardian.
fn household(
    id: &str,
    father: Option<&str>,
    mother: Option<&str>,
    guardian: Option<&str>,
) -> Value {
    serde_json::json!({
        "id_number": id,
        "name": "王桂兰",
        "household_no": "341602001",
        "household_type": "family",
        "relationship_to_head": "head",
        "father_id_number": father,
        "mother_id_number": mother,
        "guardian_id_number": guardian,
        "registered_address": "安徽省亳州市谯城区魏武大道288号",
        "native_place": "安徽省亳州市",
        "police_station": "亳州市公安局谯城分局花园派出所",
        "registration_date": "1958-01-09",
        "status": "active",
    })
}

struct Setup {
    env: TestEnv,
    gateway: xgate_integration_tests::process::GatewayProcess,
    _licences: xgate_integration_tests::fixture::FixtureAdapter,
    marriages: xgate_integration_tests::fixture::FixtureAdapter,
    _powers: xgate_integration_tests::fixture::FixtureAdapter,
    subject: String,
    spouse: String,
    attorney: String,
    /// Named as father and guardian in the subject's registration.
    parent: String,
    guardian: String,
    /// Their own registration names the subject as mother.
    child: String,
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let env = TestEnv::new().expect("env");
    let mut files = vec![
        ("grant.cedar", grants::PF_LICENCES),
        ("representation.cedar", REPRESENTATION),
    ];
    files.extend_from_slice(extra);
    let options = GatewayOptions {
        policies_dir: Some(env.write_policy_set("agency", &files).expect("policies")),
        ..GatewayOptions::default()
    };
    let gateway = env.start_gateway(&options).await.expect("gateway");
    let subject = env.subjects().citizen.clone();
    let spouse = resident("34160219500101001");
    let parent = resident("34160219300404004");
    let guardian = resident("34160219700505005");
    let child = resident("34160219750606006");
    let licences = env
        .start_fixture(
            FixtureDepartment::licences(&subject)
                .serving(
                    "household_registration",
                    vec![
                        household(&subject, Some(&parent), None, Some(&guardian)),
                        household(&child, None, Some(&subject), None),
                    ],
                )
                .per_subject(),
            &gateway,
        )
        .await
        .expect("public security");
    let marriages = env
        .start_fixture(
            FixtureDepartment::new("civil-affairs")
                .serving("marriage_registration", vec![marriage(&spouse)]),
            &gateway,
        )
        .await
        .expect("civil affairs");
    let attorney = resident("34160219850303003");
    let powers = env
        .start_fixture(
            FixtureDepartment::new("justice").serving(
                "notarial_certificate",
                vec![power_of_attorney(&attorney, "PF-WITHDRAWAL")],
            ),
            &gateway,
        )
        .await
        .expect("justice");
    Setup {
        env,
        gateway,
        _licences: licences,
        marriages,
        _powers: powers,
        subject,
        spouse,
        attorney,
        parent,
        guardian,
        child,
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spouse_shown_by_civil_affairs_applies_and_every_false_claim_is_refused() {
    let s = setup(&[]).await;
    let mut hall = s
        .env
        .exchange(s.gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    let answer = client::fetch(&mut hall, request(&s.subject, &s.spouse, Relation::Spouse))
        .await
        .expect("a verified spouse fetches");
    assert_eq!(
        status_of(&answer.results[0]),
        RecordStatus::Ok,
        "{answer:?}"
    );

    // Someone the marriage does not name.
    let stranger = resident("34160219600202002");
    let refused = client::fetch(&mut hall, request(&s.subject, &stranger, Relation::Spouse))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "REPRESENTATION_NOT_VERIFIED");
    assert!(refused.message().contains("spouse"), "{refused:?}");

    // The spouse is not the guardian the household registration names.
    let refused = client::fetch(
        &mut hall,
        request(&s.subject, &s.spouse, Relation::Guardian),
    )
    .await
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "REPRESENTATION_NOT_VERIFIED");
    assert!(refused.message().contains("guardian"), "{refused:?}");

    // The subject applying for themselves names no representation.
    let refused = client::fetch(&mut hall, request(&s.subject, &s.subject, Relation::Spouse))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // A requester without the check's grant cannot use representation.
    let mut outsider = s
        .env
        .exchange(s.gateway.addr(), "no-grant-bureau")
        .await
        .expect("outsider");
    let refused = client::fetch(
        &mut outsider,
        request(&s.subject, &s.spouse, Relation::Spouse),
    )
    .await
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "REPRESENTATION_CHECK_DENIED");

    // The subject's log: the checks under their own purpose, and the
    // fetch's entry naming the applicant (keyed hash), relation, evidence.
    let entries = client::audit_entries(
        s.gateway.addr(),
        &s.env.pki().auditor(),
        AuditQueryRequest {
            subject: Some(Subject {
                kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
                id: s.subject.clone(),
            }),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit entries");
    let checks: Vec<_> = entries
        .iter()
        .filter(|e| e.purpose == "REPRESENTATION-CHECK")
        .collect();
    // The spouse, the stranger, the guardian claim, the outsider's denied check.
    assert_eq!(checks.len(), 4, "{entries:#?}");
    let released: Vec<_> = entries
        .iter()
        .filter(|e| e.purpose == GENERAL_APPROVAL)
        .collect();
    assert_eq!(released.len(), 1, "only the verified fetch: {entries:#?}");
    let detail: Value = serde_json::from_str(&released[0].detail).expect("detail JSON");
    let rep = &detail["representation"];
    assert_eq!(rep["relation"], "spouse");
    let hmac = rep["applicant_hmac"].as_str().expect("applicant hmac");
    assert_eq!(hmac.len(), 64, "{rep}");
    assert!(
        !released[0].detail.contains(&s.spouse),
        "no raw ID in the log"
    );
    // Every check after the first was answered from the record cache,
    // within the marriage registration's freshness.
    assert_eq!(s.marriages.lookups(), 1);
    let evidence = rep["evidence"].as_str().expect("evidence");
    assert!(
        checks
            .iter()
            .any(|c| evidence == format!("marriage_registration.is_spouse_of@{}", c.request_id)),
        "{evidence} names a check entry"
    );
}

/// An attorney applies only for the item the notarised power covers, and
/// only for an item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attorney_applies_only_for_the_item_the_power_covers() {
    let s = setup(&[]).await;
    let mut hall = s
        .env
        .exchange(s.gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    let covered = client::fetch(
        &mut hall,
        for_item(&s.subject, &s.attorney, "PF-WITHDRAWAL"),
    )
    .await
    .expect("the covered item");
    assert!(!covered.results.is_empty(), "{covered:?}");
    let refused = client::fetch(&mut hall, for_item(&s.subject, &s.attorney, "PF-LOAN"))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "REPRESENTATION_NOT_VERIFIED");
    assert!(refused.message().contains("attorney"), "{refused:?}");
    // The spouse holds no power.
    let refused = client::fetch(&mut hall, for_item(&s.subject, &s.spouse, "PF-WITHDRAWAL"))
        .await
        .expect_err("refused");
    assert_eq!(reason(&refused), "REPRESENTATION_NOT_VERIFIED");
    // Without an item there is nothing a power could cover.
    let refused = client::fetch(
        &mut hall,
        request(&s.subject, &s.attorney, Relation::Attorney),
    )
    .await
    .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_decide_on_the_verified_relation() {
    const ONLY_THE_SUBJECT: &str = r#"
@id("licence-only-to-the-subject")
forbid (principal, action, resource in RecordType::"driving_licence")
unless { context.representation == "" };
"#;
    let s = setup(&[("guard.cedar", ONLY_THE_SUBJECT)]).await;
    let mut hall = s
        .env
        .exchange(s.gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    let by_spouse = client::fetch(&mut hall, request(&s.subject, &s.spouse, Relation::Spouse))
        .await
        .expect("fetch");
    let result = &by_spouse.results[0];
    assert_eq!(status_of(result), RecordStatus::Denied, "{result:?}");
    assert!(
        result.error.contains("licence-only-to-the-subject"),
        "{result:?}"
    );
    let by_subject = client::fetch(
        &mut hall,
        client::fetch_request(
            SubjectKind::ResidentId,
            &s.subject,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
    )
    .await
    .expect("fetch");
    assert_eq!(status_of(&by_subject.results[0]), RecordStatus::Ok);
}

/// A parent and a guardian are shown by the subject's household
/// registration, a child by their own; a stranger claiming to be a child,
/// and a parent claiming the wrong direction, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_children_and_guardians_are_verified_in_the_household_registration() {
    let s = setup(&[]).await;
    let mut hall = s
        .env
        .exchange(s.gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    for (applicant, relation) in [
        (&s.parent, Relation::Parent),
        (&s.child, Relation::Child),
        (&s.guardian, Relation::Guardian),
    ] {
        let answer = client::fetch(&mut hall, request(&s.subject, applicant, relation))
            .await
            .unwrap_or_else(|e| panic!("{relation:?}: {e:?}"));
        assert_eq!(
            status_of(&answer.results[0]),
            RecordStatus::Ok,
            "{answer:?}"
        );
    }
    let stranger = resident("34160219800707007");
    for (applicant, relation) in [
        (&stranger, Relation::Child),
        // The father is the subject's parent, not her child: his own
        // registration does not name her.
        (&s.parent, Relation::Child),
        (&s.child, Relation::Parent),
    ] {
        let refused = client::fetch(&mut hall, request(&s.subject, applicant, relation))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        assert_eq!(
            reason(&refused),
            "REPRESENTATION_NOT_VERIFIED",
            "{refused:?}"
        );
        assert!(
            refused.message().contains(relation_name(relation)),
            "{refused:?}"
        );
    }

    // A child's check reads the child's registration: audited under the child.
    let entries = client::audit_entries(
        s.gateway.addr(),
        &s.env.pki().auditor(),
        AuditQueryRequest {
            subject: Some(Subject {
                kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
                id: s.child.clone(),
            }),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit entries");
    assert!(
        entries
            .iter()
            .any(|e| e.purpose == "REPRESENTATION-CHECK"
                && e.record_type == "household_registration"),
        "{entries:#?}"
    );
}

fn relation_name(relation: Relation) -> &'static str {
    match relation {
        Relation::Parent => "parent",
        Relation::Child => "child",
        Relation::Guardian => "guardian",
        Relation::Spouse => "spouse",
        Relation::Attorney => "attorney",
        Relation::Unspecified => "",
    }
}

/// A check the department cannot answer fails closed: the fetch is refused
/// as unavailable, and nothing is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relation_that_cannot_be_checked_fails_closed() {
    let s = setup(&[]).await;
    s.marriages
        .mode()
        .set(xgate_integration_tests::fixture::Mode::Failing);
    let mut hall = s
        .env
        .exchange(s.gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    let refused = client::fetch(&mut hall, request(&s.subject, &s.spouse, Relation::Spouse))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(reason(&refused), "REPRESENTATION_CHECK_UNAVAILABLE");
    // Once civil affairs answers again, the same claim goes through.
    s.marriages
        .mode()
        .set(xgate_integration_tests::fixture::Mode::Ok);
    let answer = client::fetch(&mut hall, request(&s.subject, &s.spouse, Relation::Spouse))
        .await
        .expect("verified");
    assert_eq!(status_of(&answer.results[0]), RecordStatus::Ok);
}
