//! Consents end to end: the citizen platform records a consent (with its
//! signed form as evidence) and the guarded type is released to the grantee
//! by raw ID; revoked, it is denied again. An approval system records a
//! consent to itself with the subject's code. Bad grants are refused with
//! their field, and every grant and revocation is an audit event under the
//! subject.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use xgate_catalog::SubjectKind;
use xgate_code::{Issuer, Scope};
use xgate_integration_tests::client::{self, status_of, with_timeout};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::kit;
use xgate_integration_tests::{
    FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv, grants,
};
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::consent_client::ConsentClient;
use xgate_proto::v1::{
    AuditQueryRequest, GrantConsentRequest, ListConsentsRequest, RecordStatus,
    RevokeConsentRequest, Subject,
};

const ISSUER: &str = "test-identity";
const LICENCE: &str = "driving_licence";
const GUARD: &str = r#"
@id("licence-needs-the-subjects-say")
@reason("needs the subject's scanned code or a consent on record")
forbid (principal, action, resource in RecordType::"driving_licence")
unless { context.explicit_request || context.consent };
"#;

fn citizen_subject(id: &str) -> Subject {
    Subject {
        kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
        id: id.to_owned(),
    }
}

fn in_a_month() -> prost_types::Timestamp {
    (SystemTime::now() + Duration::from_secs(30 * 24 * 3600)).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_on_record_releases_a_guarded_type_until_it_is_revoked() {
    let env = TestEnv::new().expect("env");
    let issuer = Issuer::from_pkcs8(ISSUER, &Issuer::generate_pkcs8().unwrap()).unwrap();
    let options = GatewayOptions {
        policies_dir: Some(
            env.write_policy_set(
                "guarded",
                &[("grant.cedar", grants::PF_LICENCES), ("guard.cedar", GUARD)],
            )
            .expect("policies"),
        ),
        extra_toml: format!(
            "[subject_codes.issuers]\n{ISSUER} = \"{}\"\n",
            issuer.public_key_hex()
        ),
        ..GatewayOptions::default()
    };
    let gateway = env.start_gateway(&options).await.expect("gateway");
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &gateway)
        .await
        .expect("fixture");
    let mut hall = env
        .exchange(gateway.addr(), PROVIDENT_FUND)
        .await
        .expect("hall");
    let mut fetch = async || {
        let answer = hall
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
        answer.results[0].clone()
    };
    let denied = fetch().await;
    assert_eq!(status_of(&denied), RecordStatus::Denied);
    assert!(
        denied.error.contains(
            "licence-needs-the-subjects-say: needs the subject's scanned code or a consent on record"
        ),
        "{denied:?}"
    );

    // The citizen platform records the consent, with the signed form.
    let mut platform = ConsentClient::new(
        client::connect(gateway.addr(), &env.pki().platform())
            .await
            .expect("platform"),
    );
    let grant = GrantConsentRequest {
        subject: Some(citizen_subject(&citizen)),
        grantee: PROVIDENT_FUND.into(),
        purpose: GENERAL_APPROVAL.into(),
        record_types: vec![LICENCE.into()],
        valid_until: Some(in_a_month()),
        evidence_ref: "FORM-2026-0042".into(),
        ..GrantConsentRequest::default()
    };
    let consent = platform
        .grant(grant.clone())
        .await
        .expect("grant")
        .into_inner();
    assert_eq!(consent.evidence, "form:FORM-2026-0042");
    assert_eq!(consent.granted_by, "xgate://platform/citizen-app");
    let released = fetch().await;
    assert_eq!(status_of(&released), RecordStatus::Ok, "{released:?}");
    // The access entry names the consent that covered the type.
    let accesses = client::audit_entries(
        gateway.addr(),
        &env.pki().auditor(),
        AuditQueryRequest {
            subject: Some(citizen_subject(&citizen)),
            kind: "access".into(),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit entries");
    let last: serde_json::Value =
        serde_json::from_str(&accesses.last().expect("an access").detail).expect("detail");
    assert_eq!(last["consents"][LICENCE], consent.id.as_str(), "{last}");

    // Bad grants name their field.
    for (bad, field) in [
        (
            GrantConsentRequest {
                evidence_ref: String::new(),
                ..grant.clone()
            },
            "evidence_ref",
        ),
        (
            GrantConsentRequest {
                grantee: "nobody-we-know".into(),
                ..grant.clone()
            },
            "grantee",
        ),
        (
            GrantConsentRequest {
                valid_until: Some(SystemTime::UNIX_EPOCH.into()),
                ..grant.clone()
            },
            "valid_until",
        ),
        (
            GrantConsentRequest {
                record_types: vec!["no_such_type".into()],
                ..grant.clone()
            },
            "record_types[0]",
        ),
    ] {
        let status = platform.grant(bad).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            xgate_proto::status::violations(&status)
                .iter()
                .any(|v| v.field == field),
            "{field}: {status:?}"
        );
    }
    // A department cannot record consents.
    let mut department = ConsentClient::new(
        client::connect(gateway.addr(), &env.pki().department("tax"))
            .await
            .expect("department"),
    );
    let status = department.grant(grant.clone()).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // Revoked: denied again.
    let revoked = platform
        .revoke(RevokeConsentRequest {
            id: consent.id.clone(),
            ..RevokeConsentRequest::default()
        })
        .await
        .expect("revoke")
        .into_inner();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(status_of(&fetch().await), RecordStatus::Denied);

    // The approval system records a consent to itself with the subject's
    // code; another grantee is refused; it lists only its own consents.
    let mut fund = ConsentClient::new(
        client::connect(gateway.addr(), &env.pki().requester(PROVIDENT_FUND))
            .await
            .expect("fund"),
    );
    let code = || {
        issuer
            .issue(
                SubjectKind::ResidentId,
                &citizen,
                60,
                &Scope::default(),
                time::OffsetDateTime::now_utc().unix_timestamp(),
            )
            .unwrap()
    };
    let status = fund
        .grant(GrantConsentRequest {
            subject_code: code(),
            grantee: "approval-hall-demo".into(),
            purpose: GENERAL_APPROVAL.into(),
            record_types: vec![LICENCE.into()],
            valid_until: Some(in_a_month()),
            ..GrantConsentRequest::default()
        })
        .await
        .expect_err("only to itself");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let own = fund
        .grant(GrantConsentRequest {
            subject_code: code(),
            purpose: GENERAL_APPROVAL.into(),
            record_types: vec![LICENCE.into()],
            valid_until: Some(in_a_month()),
            ..GrantConsentRequest::default()
        })
        .await
        .expect("grant to itself")
        .into_inner();
    assert!(
        own.evidence.starts_with(&format!("code:{ISSUER}:")),
        "{own:?}"
    );
    assert_eq!(status_of(&fetch().await), RecordStatus::Ok);
    // A consent to someone else, which the fund must not see.
    platform
        .grant(GrantConsentRequest {
            grantee: "approval-hall-demo".into(),
            ..grant.clone()
        })
        .await
        .expect("grant to the hall");
    let listed = fund
        .list(ListConsentsRequest {
            subject_code: code(),
            ..ListConsentsRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
        .consents;
    let mut ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = [own.id.as_str(), consent.id.as_str()];
    expected.sort_unstable();
    assert_eq!(
        ids, expected,
        "the consents given to the fund, not the hall's"
    );
    let all = platform
        .list(ListConsentsRequest {
            subject: Some(citizen_subject(&citizen)),
            ..ListConsentsRequest::default()
        })
        .await
        .expect("list")
        .into_inner()
        .consents;
    assert_eq!(all.len(), 3);

    // Every grant and revocation is an audit event under the subject.
    let events: Vec<String> = client::audit_entries(
        gateway.addr(),
        &env.pki().auditor(),
        AuditQueryRequest {
            subject: Some(citizen_subject(&citizen)),
            kind: "admin".into(),
            ..AuditQueryRequest::default()
        },
    )
    .await
    .expect("audit entries")
    .into_iter()
    .map(|e| e.event)
    .collect();
    assert_eq!(
        events,
        [
            "consent_granted",
            "consent_revoked",
            "consent_granted",
            "consent_granted"
        ],
        "{events:?}"
    );

    // The subject asks "who read my data" through the citizen platform,
    // with a fresh code: no auditor involved; the code is good once.
    let mut own_report = AuditClient::new(
        client::connect(gateway.addr(), &env.pki().platform())
            .await
            .expect("platform"),
    );
    let token = code();
    let report = own_report
        .subject_report(xgate_proto::v1::SubjectReportRequest {
            subject_code: token.clone(),
            ..Default::default()
        })
        .await
        .expect("the subject's own report")
        .into_inner();
    assert!(
        report
            .accesses
            .iter()
            .any(|e| e.requester == PROVIDENT_FUND && e.status == "OK"),
        "{:?}",
        report.accesses
    );
    assert!(report.released >= 2 && report.denied >= 2, "{report:?}");
    let replay = own_report
        .subject_report(xgate_proto::v1::SubjectReportRequest {
            subject_code: token,
            ..Default::default()
        })
        .await
        .expect_err("a code is good once");
    assert_eq!(replay.code(), tonic::Code::PermissionDenied);
    let without = own_report
        .subject_report(xgate_proto::v1::SubjectReportRequest {
            subject: Some(citizen_subject(&citizen)),
            ..Default::default()
        })
        .await
        .expect_err("the platform needs the subject's code");
    assert_eq!(without.code(), tonic::Code::InvalidArgument);
    // The same through the command line, as the platform's operators would.
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut grant_cli: Vec<std::ffi::OsString> = vec![
        "consent".into(),
        "grant".into(),
        "--gateway".into(),
        gateway.url().into(),
        "--subject".into(),
        citizen.clone().into(),
        "--grantee".into(),
        "group:bozhou-approval-bureaus".into(),
        "--purpose".into(),
        GENERAL_APPROVAL.into(),
        "--types".into(),
        LICENCE.into(),
        "--until".into(),
        until.into(),
        "--evidence".into(),
        "FORM-CLI-1".into(),
    ];
    grant_cli.extend(kit::tls_args(&env.pki().platform()));
    let granted = kit::xgate(grant_cli).await.expect("xgate consent grant");
    assert!(granted.success(), "{}", granted.describe());
    assert!(
        granted.stdout.contains("form:FORM-CLI-1"),
        "{}",
        granted.stdout
    );
    let mut list_cli: Vec<std::ffi::OsString> = vec![
        "consent".into(),
        "list".into(),
        "--gateway".into(),
        gateway.url().into(),
        "--subject".into(),
        citizen.clone().into(),
    ];
    list_cli.extend(kit::tls_args(&env.pki().platform()));
    let listed = kit::xgate(list_cli).await.expect("xgate consent list");
    assert!(listed.success(), "{}", listed.describe());
    assert_eq!(
        listed.stdout.matches("  grantee:").count(),
        4,
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("REVOKED"), "{}", listed.stdout);
    gateway.stop().await.expect("stop");
}
