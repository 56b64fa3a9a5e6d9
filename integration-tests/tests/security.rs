//! Who may call what: mTLS identities at the Exchange and the Registry, and the Cedar policies
//! deciding each record type.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tonic::Code;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{
    self, describe, fetch_request, status_of, types_of, unconditional_types_of, with_timeout,
};
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, NO_GRANT, TestEnv,
};
use xgate_proto::v1::{ListAdaptersRequest, ListRecordTypesRequest, RecordStatus, RegisterRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_requester_certificate_cannot_fetch() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let citizen = env.subjects().citizen.clone();
    let request = fetch_request(
        SubjectKind::ResidentId,
        &citizen,
        ["resident_identity_card"],
        GENERAL_APPROVAL,
    );

    // No client certificate at all: TLS lets the handshake finish from the client's side,
    // then the server's refusal fails the first call.
    let channel = client::connect_without_certificate(gateway.addr(), env.pki().ca())?;
    let refused = client::exchange(channel)
        .fetch(with_timeout(request.clone(), FETCH_TIMEOUT))
        .await
        .expect_err("a caller without a certificate must be refused");
    assert!(
        matches!(
            refused.code(),
            Code::Unknown | Code::Cancelled | Code::Unavailable | Code::Unauthenticated
        ),
        "{refused:?}"
    );

    // A department's certificate is valid, but not a requester's.
    let mut as_department = env
        .exchange_as(gateway.addr(), &env.pki().department("tax"))
        .await?;
    let denied = as_department
        .fetch(with_timeout(request.clone(), FETCH_TIMEOUT))
        .await
        .expect_err("a department may not fetch");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("xgate://department/tax"),
        "{denied:?}"
    );

    // Control: the same request with a requester certificate is accepted.
    let mut as_requester = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = as_requester
        .fetch(with_timeout(request, FETCH_TIMEOUT))
        .await?
        .into_inner();
    assert_eq!(response.results.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_cannot_register_for_another_department() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let mut tax = env
        .registry_as(gateway.addr(), &env.pki().department("tax"))
        .await?;
    let request = |department: &str| RegisterRequest {
        department: department.to_owned(),
        adapter_id: String::new(),
        endpoints: vec!["https://127.0.0.1:9".to_owned()],
        record_types: vec!["real_estate_title".to_owned()],
        replace: false,
    };

    // Its own department, another department's record type.
    let foreign_type = tax
        .register(request("tax"))
        .await
        .expect_err("tax may not serve real_estate_title");
    assert_eq!(
        foreign_type.code(),
        Code::PermissionDenied,
        "{foreign_type:?}"
    );
    assert!(
        foreign_type.message().contains("`real_estate_title`")
            && foreign_type.message().contains("`natural-resources`"),
        "{foreign_type:?}"
    );

    // Another department named in the request than the one in the certificate.
    let foreign_department = tax
        .register(request("natural-resources"))
        .await
        .expect_err("the tax certificate may not act for natural-resources");
    assert_eq!(
        foreign_department.code(),
        Code::PermissionDenied,
        "{foreign_department:?}"
    );
    assert!(
        foreign_department.message().contains("`tax`")
            && foreign_department.message().contains("`natural-resources`"),
        "{foreign_department:?}"
    );

    // Nothing was registered.
    let mut admin = env.registry_as(gateway.addr(), &env.pki().admin()).await?;
    let adapters = admin
        .list(ListAdaptersRequest {})
        .await?
        .into_inner()
        .adapters;
    assert!(adapters.is_empty(), "{adapters:?}");
    let mut exchange = env.exchange_as(gateway.addr(), &env.pki().admin()).await?;
    let types = exchange
        .list_record_types(ListRecordTypesRequest::default())
        .await?
        .into_inner()
        .record_types;
    let title = types
        .iter()
        .find(|t| t.id == "real_estate_title")
        .expect("real_estate_title in the catalog");
    assert!(!title.has_source);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_without_a_grant_is_denied_every_type_by_default() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let types = types_of(env.catalog(), SubjectKind::ResidentId, None);
    let citizen = env.subjects().citizen.clone();
    let mut client = env.exchange(gateway.addr(), NO_GRANT).await?;
    let response = client
        .fetch(with_timeout(
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    assert_eq!(response.results.len(), types.len(), "{table}");
    for result in &response.results {
        assert_eq!(status_of(result), RecordStatus::Denied, "{table}");
        assert!(result.records.is_empty() && result.provenance.is_none());
        // A conditional type is also forbidden by the guard that wants the
        // subject's say; the forbid is what the result names.
        let conditional = env
            .catalog()
            .record_type(&result.record_type)
            .is_some_and(|t| t.sharing_class == xgate_catalog::SharingClass::Conditional);
        let (policy, said) = if conditional {
            (
                "conditional-records-need-an-item-or-the-subjects-say",
                "explicit request",
            )
        } else {
            ("default deny", "default deny")
        };
        assert_eq!(result.policy_ids, vec![policy], "{table}");
        assert!(result.error.contains(said), "{}", result.error);
    }
    Ok(())
}

const PERMIT_ALL: &str = r#"
@id("it-permit-all")
permit (
    principal == Requester::"approval-hall-demo",
    action == Action::"read",
    resource is View
)
when { resource.sharing_class != "not_shared" };
"#;

const FORBID_DRIVING_LICENCE: &str = r#"
@id("it-forbid-driving-licence")
forbid (
    principal,
    action == Action::"read",
    resource in RecordType::"driving_licence"
);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbid_policy_beats_a_permit_and_is_named() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let policies = env.write_policy_set(
        "policies",
        &[
            ("permit.cedar", PERMIT_ALL),
            ("forbid.cedar", FORBID_DRIVING_LICENCE),
        ],
    )?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(policies),
            ..GatewayOptions::default()
        })
        .await?;
    let _public_security = env.start_adapter("public-security", &gateway).await?;
    let types = unconditional_types_of(
        env.catalog(),
        SubjectKind::ResidentId,
        Some("public-security"),
    );
    assert!(types.iter().any(|t| t == "driving_licence"));
    let citizen = env.subjects().citizen.clone();
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = client
        .fetch(with_timeout(
            // Only the test's policies decide.
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    assert_eq!(response.results.len(), types.len(), "{table}");
    for result in &response.results {
        if result.record_type == "driving_licence" {
            assert_eq!(status_of(result), RecordStatus::Denied, "{table}");
            assert_eq!(
                result.policy_ids,
                vec!["it-forbid-driving-licence"],
                "{table}"
            );
            assert!(result.records.is_empty() && result.provenance.is_none());
        } else {
            assert_eq!(status_of(result), RecordStatus::Ok, "{table}");
            assert_eq!(result.policy_ids, vec!["it-permit-all"], "{table}");
        }
    }
    Ok(())
}

/// A department can register any endpoint, but the gateway talks only to a server whose
/// certificate is that department's: an endpoint serving another department's (valid)
/// certificate is refused at the TLS handshake, and nothing is sent to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_must_present_its_own_departments_certificate() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let natural_resources = env.start_adapter("natural-resources", &gateway).await?;

    // Tax registers the natural-resources adapter's endpoint as its own.
    let mut tax = env
        .registry_as(gateway.addr(), &env.pki().department("tax"))
        .await?;
    tax.register(RegisterRequest {
        department: "tax".to_owned(),
        adapter_id: String::new(),
        endpoints: vec![format!("https://{}", natural_resources.addr())],
        record_types: vec!["tax_registration".to_owned()],
        replace: false,
    })
    .await?;
    env.wait_for_sources(gateway.addr(), &["tax_registration".to_owned()])
        .await?;

    let company = env.subjects().company.clone();
    let mut exchange = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = exchange
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::Uscc,
                &company,
                ["tax_registration", "state_land_use_right"],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let results = &response.results;
    let table = describe(results);
    assert_eq!(status_of(&results[0]), RecordStatus::Unavailable, "{table}");
    // Refused at the handshake, not answered by the wrong adapter ("not served here").
    assert!(
        !results[0].error.contains("not served"),
        "the gateway called the wrong department's adapter: {table}"
    );
    assert!(
        results[0].error.contains("xgate://department/tax"),
        "{table}"
    );
    // The genuine natural-resources registration still works.
    assert_eq!(status_of(&results[1]), RecordStatus::Ok, "{table}");
    Ok(())
}
