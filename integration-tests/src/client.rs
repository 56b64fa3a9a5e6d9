//! Calling the gateway and adapters as their real clients do: tonic over mutual TLS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use xgate_catalog::Catalog;
use xgate_proto::v1::consent_client::ConsentClient;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::registry_client::RegistryClient;
use xgate_proto::v1::{FetchRequest, GrantConsentRequest, RecordResult, RecordStatus, Subject};
use xgate_tls::TlsFiles;

/// Largest answer the test clients accept (every record type of a subject).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Case id sent with every test fetch.
pub const CASE_ID: &str = "IT-CASE-0001";
/// Operator id sent with every test fetch.
pub const OPERATOR_ID: &str = "it-operator";

fn endpoint(addr: SocketAddr) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10)))
}

/// A channel to `addr` presenting the certificate of `tls`, verifying the server against its
/// CA under the address's IP (the dev certificates carry `127.0.0.1`). Connects now.
pub async fn connect(addr: SocketAddr, tls: &TlsFiles) -> anyhow::Result<Channel> {
    xgate_tls::install_crypto_provider();
    let config = tls.client_config(&addr.ip().to_string())?;
    endpoint(addr)?
        .tls_config(config)?
        .connect()
        .await
        .with_context(|| format!("connecting to https://{addr} as `{}`", tls.cert.display()))
}

/// A channel to `addr` that trusts the CA in `ca` but presents no client certificate.
/// Lazy: whatever refusal the server makes shows on the first call.
pub fn connect_without_certificate(addr: SocketAddr, ca: &Path) -> anyhow::Result<Channel> {
    xgate_tls::install_crypto_provider();
    let pem = std::fs::read(ca).with_context(|| format!("reading `{}`", ca.display()))?;
    let config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem))
        .domain_name(addr.ip().to_string());
    Ok(endpoint(addr)?.tls_config(config)?.connect_lazy())
}

pub fn exchange(channel: Channel) -> ExchangeClient<Channel> {
    ExchangeClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES)
}

pub fn registry(channel: Channel) -> RegistryClient<Channel> {
    RegistryClient::new(channel)
}

pub use xgate_proto::kind::to_proto as proto_kind;

/// A Fetch of `record_types` about subject `id`.
pub fn fetch_request<S: Into<String>>(
    kind: xgate_catalog::SubjectKind,
    id: &str,
    record_types: impl IntoIterator<Item = S>,
    purpose: &str,
) -> FetchRequest {
    FetchRequest {
        subject: Some(Subject {
            kind: proto_kind(kind) as i32,
            id: id.to_owned(),
        }),
        record_types: record_types.into_iter().map(Into::into).collect(),
        purpose: purpose.to_owned(),
        case_id: CASE_ID.to_owned(),
        operator_id: OPERATOR_ID.to_owned(),
        ..FetchRequest::default()
    }
}

/// A Fetch under [`crate::FETCH_TIMEOUT`]: the answer, or the status of a
/// fetch refused as a whole.
pub async fn fetch(
    client: &mut ExchangeClient<Channel>,
    request: FetchRequest,
) -> Result<xgate_proto::v1::FetchResponse, tonic::Status> {
    client
        .fetch(with_timeout(request, crate::FETCH_TIMEOUT))
        .await
        .map(tonic::Response::into_inner)
}

/// `message` with a grpc-timeout.
pub fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Ids of the catalog's record types keyed by `kind`, of `department` or of all departments.
pub fn types_of(
    catalog: &Catalog,
    kind: xgate_catalog::SubjectKind,
    department: Option<&str>,
) -> Vec<String> {
    types_where(catalog, kind, department, |_| true)
}

/// [`types_of`] without the conditionally shared types: what the repository's
/// policies let the demo hall fetch in full without an approval item and
/// without the subject's say (a scanned code or a consent; see
/// `policies/guards.cedar`).
pub fn unconditional_types_of(
    catalog: &Catalog,
    kind: xgate_catalog::SubjectKind,
    department: Option<&str>,
) -> Vec<String> {
    types_where(catalog, kind, department, |rt| {
        rt.sharing_class == xgate_catalog::SharingClass::Unconditional
    })
}

fn types_where(
    catalog: &Catalog,
    kind: xgate_catalog::SubjectKind,
    department: Option<&str>,
    keep: impl Fn(&xgate_catalog::RecordType) -> bool,
) -> Vec<String> {
    catalog
        .record_types()
        .filter(|rt| rt.subject_kind == kind && keep(rt))
        .filter(|rt| department.is_none_or(|d| rt.department == d))
        .map(|rt| rt.id.clone())
        .collect()
}

/// The citizen platform (`platform`: its certificate) records the consent of
/// the citizen `subject` for `grantee` to fetch `record_types` for `purpose`,
/// valid for a day; evidence: a signed form. The id of the consent.
pub async fn consent(
    addr: SocketAddr,
    platform: &TlsFiles,
    subject: &str,
    grantee: &str,
    purpose: &str,
    record_types: Vec<String>,
) -> anyhow::Result<String> {
    let mut client = ConsentClient::new(connect(addr, platform).await?);
    let consent = client
        .grant(GrantConsentRequest {
            subject: Some(Subject {
                kind: proto_kind(xgate_catalog::SubjectKind::ResidentId) as i32,
                id: subject.to_owned(),
            }),
            grantee: grantee.to_owned(),
            purpose: purpose.to_owned(),
            record_types,
            valid_until: Some((std::time::SystemTime::now() + Duration::from_secs(86_400)).into()),
            evidence_ref: "FORM-TEST-0001".to_owned(),
            ..GrantConsentRequest::default()
        })
        .await?
        .into_inner();
    Ok(consent.id)
}

/// Every audit entry `query` matches, read as the auditor (`auditor`: its
/// certificate) page by page.
pub async fn audit_entries(
    addr: SocketAddr,
    auditor: &TlsFiles,
    query: xgate_proto::v1::AuditQueryRequest,
) -> anyhow::Result<Vec<xgate_proto::v1::AuditEntry>> {
    let mut client = xgate_proto::v1::audit_client::AuditClient::new(connect(addr, auditor).await?);
    let mut pages = client.query(query).await?.into_inner();
    let mut entries = Vec::new();
    while let Some(page) = pages.message().await? {
        entries.extend(page.entries);
    }
    Ok(entries)
}

/// The status of a result (`Unspecified` for a value outside the enum).
pub fn status_of(result: &RecordResult) -> RecordStatus {
    RecordStatus::try_from(result.status).unwrap_or(RecordStatus::Unspecified)
}

/// Results by record type.
pub fn by_type(results: &[RecordResult]) -> BTreeMap<&str, &RecordResult> {
    results
        .iter()
        .map(|r| (r.record_type.as_str(), r))
        .collect()
}

/// One line per result, for assertion messages.
pub fn describe(results: &[RecordResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!(
                "{} [{}] {:?} records={} policies={:?} error={:?}",
                r.record_type,
                r.department,
                status_of(r),
                r.records.len(),
                r.policy_ids,
                r.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An objection to `field` of the driving licence released by the answer of
/// `receipt` about citizen `subject`, believing `value` (evidence: a DMV file
/// number) — what the evaluation and console tests file.
pub fn licence_objection(
    receipt: &xgate_proto::v1::AuditReceipt,
    subject: &str,
    field: &str,
    value: serde_json::Value,
) -> xgate_proto::v1::FileObjectionRequest {
    xgate_proto::v1::FileObjectionRequest {
        receipt: Some(receipt.clone()),
        subject: Some(xgate_proto::v1::Subject {
            kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
            id: subject.to_owned(),
        }),
        record_type: "driving_licence".into(),
        field_path: field.into(),
        believed_value: Some(xgate_proto::json::to_value(value)),
        evidence_ref: "VMB-2026-118".into(),
        ..xgate_proto::v1::FileObjectionRequest::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_of_filters_by_kind_and_department() {
        let catalog = Catalog::builtin().expect("catalog");
        let personal = types_of(&catalog, xgate_catalog::SubjectKind::ResidentId, None);
        let corporate = types_of(&catalog, xgate_catalog::SubjectKind::Uscc, None);
        assert_eq!(personal.len() + corporate.len(), catalog.len());
        let tax = types_of(&catalog, xgate_catalog::SubjectKind::Uscc, Some("tax"));
        assert!(tax.contains(&"tax_registration".to_owned()), "{tax:?}");
        assert!(
            !tax.contains(&"tax_payment_certificate".to_owned()),
            "{tax:?}"
        );
    }

    #[test]
    fn fetch_request_carries_every_field() {
        let request = fetch_request(xgate_catalog::SubjectKind::Uscc, "X", ["a", "b"], "PURPOSE");
        assert_eq!(request.record_types, vec!["a", "b"]);
        assert_eq!(
            request.subject.map(|s| s.kind),
            Some(xgate_proto::v1::SubjectKind::Uscc as i32)
        );
        assert_eq!(request.purpose, "PURPOSE");
        assert!(!request.case_id.is_empty() && !request.operator_id.is_empty());
    }
}
