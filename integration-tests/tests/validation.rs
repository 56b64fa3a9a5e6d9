//! Malformed Fetch requests: INVALID_ARGUMENT with `google.rpc.BadRequest` field violations
//! naming each offending field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{BufMut as _, Bytes, BytesMut};
use http_body_util::BodyExt as _;
use prost::Message as _;
use tonic::Code;
use tower::ServiceExt as _;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client;
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

/// What a gRPC client counts against its metadata limit (grpc-java 8 KiB,
/// grpcio 8–16 KiB): every header and trailer the gateway sent, name + value
/// + 32 as HTTP/2 counts a header list, plus the decoded violations.
struct WireError {
    metadata_bytes: usize,
    code: String,
    violations: Vec<Violation>,
}

/// Sends one Fetch as raw HTTP/2 through the TLS channel and measures the
/// header block and trailers exactly as they arrive.
async fn fetch_raw(
    channel: tonic::transport::Channel,
    request: &FetchRequest,
) -> anyhow::Result<WireError> {
    let message = request.encode_to_vec();
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len())?);
    framed.put_slice(&message);
    let http_request = http::Request::builder()
        .method("POST")
        .uri("/xgate.v1.Exchange/Fetch")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            Bytes::from(framed),
        )))?;
    let response = channel.oneshot(http_request).await?;
    let headers = response.headers().clone();
    let trailers = response.into_body().collect().await?.trailers().cloned();
    let all: Vec<(String, Vec<u8>)> = headers
        .iter()
        .chain(trailers.iter().flat_map(|t| t.iter()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let metadata_bytes = all.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
    let mut map = http::HeaderMap::new();
    for (n, v) in &all {
        map.insert(
            http::HeaderName::from_bytes(n.as_bytes())?,
            http::HeaderValue::from_bytes(v)?,
        );
    }
    let status = tonic::Status::from_header_map(&map)
        .ok_or_else(|| anyhow::anyhow!("no grpc-status in {map:?}"))?;
    Ok(WireError {
        metadata_bytes,
        code: format!("{:?}", status.code()),
        violations: violations(&status),
    })
}

/// The worst case a caller can send within the request size limit: as many
/// unknown record types as allowed, each a long name of characters that
/// `grpc-message` percent-encodes, plus long purpose, case and params. The
/// error still reaches the caller, in trailers under 8 KiB, with the first
/// violations listed and the rest counted; over the type limit, one
/// violation says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_trailers_stay_under_8_kib_in_the_worst_case() -> anyhow::Result<()> {
    const CLIENT_METADATA_LIMIT: usize = 8 * 1024;
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let channel = client::connect(gateway.addr(), &env.pki().requester(APPROVAL_HALL)).await?;
    let citizen = env.subjects().citizen.clone();
    let costly = |i: usize| -> String {
        format!(
            "{i}_{}",
            "办%`{ }".chars().cycle().take(300).collect::<String>()
        )
    };
    // 128 (the default limit) unknown types, ~400 bytes each: ~51 KiB, under
    // the 64 KiB request limit.
    let types: Vec<String> = (0..128).map(costly).collect();
    let mut worst = fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL);
    worst.purpose = costly(1000);
    worst.case_id = costly(1001);
    worst.params = (0..8).map(|i| (costly(2000 + i), "1".to_owned())).collect();
    let wire = fetch_raw(channel.clone(), &worst).await?;
    assert_eq!(wire.code, "InvalidArgument");
    assert!(
        wire.metadata_bytes < CLIENT_METADATA_LIMIT,
        "{} bytes of metadata",
        wire.metadata_bytes
    );
    let first = wire.violations.first().expect("violations");
    assert_eq!(first.field, "record_types[0]");
    assert!(
        first.description.starts_with("unknown record type `0_办%"),
        "{first:?}"
    );
    let last = wire.violations.last().expect("violations");
    assert_eq!(last.field, "request", "{:?}", wire.violations);
    let listed = wire.violations.len() - 1;
    // 128 types, 8 params, purpose and case id.
    assert_eq!(
        last.description,
        format!(
            "and {} more violations not listed; fix those above and retry",
            138 - listed
        )
    );

    // Over the limit on types: that one violation, not one per entry.
    let names: Vec<String> = (0..200).map(|i| format!("no_such_type_{i}")).collect();
    let over = fetch_request(SubjectKind::ResidentId, &citizen, &names, GENERAL_APPROVAL);
    let wire = fetch_raw(channel, &over).await?;
    assert_eq!(wire.code, "InvalidArgument");
    assert!(
        wire.metadata_bytes < CLIENT_METADATA_LIMIT,
        "{}",
        wire.metadata_bytes
    );
    assert_eq!(
        wire.violations,
        vec![Violation::new(
            "record_types",
            "names 200 record types; the limit is 128"
        )]
    );
    Ok(())
}
