//! Malformed Fetch requests: INVALID_ARGUMENT with `google.rpc.BadRequest` field violations
//! naming each offending field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tonic::Code;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{fetch_request, with_timeout};
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, TestEnv,
};
use xgate_proto::status::{Violation, violations};
use xgate_proto::v1::FetchRequest;

/// A resident ID with its check character replaced by a wrong one.
fn with_wrong_check_char(id: &str) -> String {
    let (first17, check) = id.split_at(17);
    let wrong = if check == "0" { "1" } else { "0" };
    format!("{first17}{wrong}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_name_the_offending_fields() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let citizen = env.subjects().citizen.clone();
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let good = fetch_request(
        SubjectKind::ResidentId,
        &citizen,
        ["resident_identity_card", "household_registration"],
        GENERAL_APPROVAL,
    );

    // Control: the unmodified request is accepted.
    client
        .fetch(with_timeout(good.clone(), FETCH_TIMEOUT))
        .await?;

    let bad_check = FetchRequest {
        subject: good.subject.clone().map(|mut s| {
            s.id = with_wrong_check_char(&s.id);
            s
        }),
        ..good.clone()
    };
    let unknown_type = FetchRequest {
        record_types: vec![
            "resident_identity_card".to_owned(),
            "no_such_record".to_owned(),
        ],
        ..good.clone()
    };
    let no_purpose = FetchRequest {
        purpose: String::new(),
        ..good.clone()
    };

    for (case, request, field, hint) in [
        ("bad check digit", bad_check, "subject.id", "check"),
        (
            "unknown record type",
            unknown_type,
            "record_types[1]",
            "`no_such_record`",
        ),
        ("missing purpose", no_purpose, "purpose", "required"),
    ] {
        let status = client
            .fetch(with_timeout(request, FETCH_TIMEOUT))
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        let found: Vec<Violation> = violations(&status);
        assert_eq!(
            found.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            vec![field],
            "{case}: {found:?}"
        );
        assert!(
            found[0].description.contains(hint),
            "{case}: `{}` should mention `{hint}`",
            found[0].description
        );
    }
    Ok(())
}
