//! The adapter conformance kit: runs the adapter contract against a live
//! department adapter and reports one row per check. `xgate adapter check`
//! is its command line; a department can run it in its own CI too:
//!
//! ```no_run
//! # async fn ci() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let plan = xgate_conformance::CheckPlan {
//!     endpoint: "https://127.0.0.1:50061".into(),
//!     department: "civil-affairs".into(),
//!     tls: xgate_tls::TlsFiles {
//!         cert: "pki/admin-operator.pem".into(),
//!         key: "pki/admin-operator-key.pem".into(),
//!         ca: "pki/ca.pem".into(),
//!     },
//!     subjects: Vec::new(), // the adapter's Describe names its sample subjects
//!     deadline: Duration::from_millis(100),
//!     grace: Duration::from_millis(500),
//! };
//! let report = xgate_conformance::check(&plan, &xgate_catalog::Catalog::builtin()?).await;
//! if report.failures() > 0 {
//!     return Err(report.render().into()); // one PASS/WARN/FAIL row per check
//! }
//! # Ok(()) }
//! ```
//!
//! The contract: health answers SERVING; `Describe` names the department and
//! only catalog types of it; every served type returns schema-valid records
//! that name the subject for the sample subjects; an unknown (well-formed)
//! subject is NOT_FOUND for every type; a malformed ID is INVALID_ARGUMENT;
//! `BatchLookup` answers each subject as `Lookup` does (a malformed ID in a
//! batch is answered ERROR, the others go on) and refuses more than
//! [`MAX_BATCH_SUBJECTS`]; the grpc-timeout of a request is honoured; W3C
//! trace context is accepted.
//!
//! Why a crate beside the SDK rather than a feature of it: the kit is a
//! client of the contract and the SDK its server side. Adapters that are not
//! built on the SDK (the generic SQL adapter, a department's own service in
//! another language) are checked the same way, and no adapter binary links
//! the kit's raw HTTP/2 client. It depends on the wire contract, the catalog
//! and the TLS crate only, never on the gateway or the SDK.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
use xgate_proto::v1::{
    BatchLookupAnswer, BatchLookupRequest, DescribeRequest, LookupRequest, LookupResponse,
    LookupStatus, Subject, TypeAnswer,
};
use xgate_tls::{Identity, TlsFiles};

/// The gRPC service name the adapter SDK reports in health.
pub const ADAPTER_SERVICE: &str = "xgate.v1.DepartmentAdapter";

/// Most subjects a `BatchLookup` may name (the proto's `MAX_BATCH_SUBJECTS`;
/// the SDK's constant of the same name). The kit does not link the SDK.
pub const MAX_BATCH_SUBJECTS: usize = 1_000;

/// Deadline of the ordinary calls of the kit (not the deadline check).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The trace context the kit sends (W3C example ids).
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP/2 connection to the adapter, used as a gRPC transport.
///
/// Not a tonic `Channel`: a `Channel` enforces the grpc-timeout header on the
/// client side, which would hide whether the adapter itself honours it.
pub type Channel = tower::util::BoxCloneService<
    http::Request<tonic::body::Body>,
    http::Response<hyper::body::Incoming>,
    BoxError,
>;

/// Connects to the adapter at `endpoint` over mTLS; its certificate must
/// carry exactly `xgate://department/<department>`.
pub async fn connect(endpoint: &str, department: &str, tls: &TlsFiles) -> Result<Channel, String> {
    let host = xgate_tls::endpoint_host(endpoint)?;
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("endpoint `{endpoint}` is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("endpoint `{endpoint}` has no host"))?
        .as_str()
        .to_owned();
    let expected = Identity::Department(department.to_owned());
    let config = xgate_tls::rustls_client_config_for_peer(tls, expected)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let server_name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| format!("endpoint `{endpoint}`: {e}"))?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&authority))
        .await
        .map_err(|_| format!("no TCP connection to {authority} within 5 s"))?
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("connecting to {authority}: {e}"))?;
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(config).connect(server_name, tcp),
    )
    .await
    .map_err(|_| format!("no TLS handshake with {authority} within 5 s"))?
    .map_err(|e| {
        format!(
            "TLS handshake with {authority} failed ({e}): the adapter must present a \
             certificate for `xgate://department/{department}` from the CA `{}` and accept \
             this client certificate",
            tls.ca.display()
        )
    })?;
    http2_channel(stream, &authority).await
}

/// A gRPC transport over HTTP/2 on `io`, a connection to `authority`.
async fn http2_channel<IO>(io: IO, authority: &str) -> Result<Channel, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .map_err(|e| format!("HTTP/2 handshake with {authority}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "adapter connection ended");
        }
    });
    let origin = format!("https://{authority}");
    let service = tower::service_fn(move |mut request: http::Request<tonic::body::Body>| {
        let mut sender = sender.clone();
        // tonic's client sends the path only; HTTP/2 needs the whole URI.
        let uri = format!(
            "{origin}{}",
            request
                .uri()
                .path_and_query()
                .map_or("/", http::uri::PathAndQuery::as_str)
        );
        async move {
            *request.uri_mut() = uri.parse()?;
            sender.ready().await?;
            Ok::<_, BoxError>(sender.send_request(request).await?)
        }
    });
    Ok(tower::util::BoxCloneService::new(service))
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Worth a look, but not a breach of the contract.
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so the table's `{:<6}` applies.
        f.pad(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// What was checked, e.g. `records: tax_registration`.
    pub check: String,
    pub verdict: Verdict,
    /// Why, in a few words; never a plain ID number.
    pub detail: String,
}

/// All rows of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, check: impl Into<String>, verdict: Verdict, detail: impl Into<String>) {
        self.rows.push(Row {
            check: check.into(),
            verdict,
            detail: detail.into(),
        });
    }

    /// How many rows failed.
    pub fn failures(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Fail)
            .count()
    }

    /// The table printed for people: `CHECK  RESULT  DETAIL`.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.check.chars().count())
            .max()
            .unwrap_or(0)
            .max("CHECK".len());
        let mut out = format!("{:<width$}  RESULT  DETAIL\n", "CHECK");
        for row in &self.rows {
            out.push_str(&format!(
                "{:<width$}  {:<6}  {}\n",
                row.check, row.verdict, row.detail
            ));
        }
        out
    }
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckPlan {
    /// `https://host:port` of the adapter.
    pub endpoint: String,
    /// The department the adapter must prove to be (server certificate, Describe).
    pub department: String,
    /// A certificate the adapter accepts (gateway or admin).
    pub tls: TlsFiles,
    /// Sample subjects given on the command line (added to those Describe names).
    pub subjects: Vec<(SubjectKind, String)>,
    /// grpc-timeout of the deadline check.
    pub deadline: Duration,
    /// How much later than `deadline` an answer may come (network, scheduling).
    pub grace: Duration,
}

/// `3416************25`: enough to tell subjects apart, not to identify anyone.
pub fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 2).collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

/// The kind of a valid ID number, or why it is neither kind.
pub fn subject_kind_of(id: &str) -> Result<SubjectKind, String> {
    let id = id.to_ascii_uppercase();
    let resident = xgate_catalog::ids::validate_resident_id(&id);
    let uscc = xgate_catalog::ids::validate_uscc(&id);
    match (resident, uscc) {
        (Ok(()), _) => Ok(SubjectKind::ResidentId),
        (_, Ok(())) => Ok(SubjectKind::Uscc),
        (Err(r), Err(u)) => Err(format!(
            "`{}` is neither a resident ID ({r}) nor a USCC ({u})",
            mask(&id)
        )),
    }
}

/// A well-formed ID no department should hold: a valid check character on
/// a body that the synthetic population and real registries do not issue.
pub fn unknown_subject(kind: SubjectKind) -> String {
    let first17 = match kind {
        // Born 1 January 1900, sequence 999.
        SubjectKind::ResidentId => "34160219000101999",
        // Organisation code of zeros but one.
        SubjectKind::Uscc => "91341602000000000",
    };
    let check = match kind {
        SubjectKind::ResidentId => xgate_catalog::ids::resident_id_check_char(first17),
        SubjectKind::Uscc => xgate_catalog::ids::uscc_check_char(first17),
    };
    // Both bodies are valid, so a check character always exists.
    format!("{first17}{}", check.unwrap_or('0'))
}

/// `id` with a wrong check character.
pub fn malformed(id: &str) -> String {
    let mut chars: Vec<char> = id.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '1' { '2' } else { '1' };
    }
    chars.into_iter().collect()
}

fn proto_subject(kind: SubjectKind, id: &str) -> Subject {
    Subject {
        kind: xgate_proto::kind::to_proto(kind) as i32,
        id: id.to_owned(),
    }
}

fn lookup_request(
    kind: SubjectKind,
    id: &str,
    types: &[String],
    timeout: Duration,
) -> tonic::Request<LookupRequest> {
    let mut request = tonic::Request::new(LookupRequest {
        subject: Some(proto_subject(kind, id)),
        record_types: types.to_vec(),
        request_id: format!("conformance-{}", uuid::Uuid::new_v4()),
        purpose: "CONFORMANCE-CHECK".into(),
    });
    // Sets the grpc-timeout header only: the client does not enforce it, so
    // the deadline check sees when the adapter really answers.
    request.set_timeout(timeout);
    request
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn lookup_status_name(status: i32) -> &'static str {
    match LookupStatus::try_from(status) {
        Ok(LookupStatus::Found) => "FOUND",
        Ok(LookupStatus::NotFound) => "NOT_FOUND",
        Ok(LookupStatus::Error) => "ERROR",
        Ok(LookupStatus::BadData) => "BAD_DATA",
        _ => "UNSPECIFIED",
    }
}

/// Runs every check against the adapter of `plan`.
///
/// Boxed here so the checks (and the client stack they poll) compile once,
/// in this crate, not again in every caller (an `async fn`'s body is
/// compiled where it is polled).
#[inline(never)]
pub fn check<'a>(
    plan: &'a CheckPlan,
    catalog: &'a Catalog,
) -> std::pin::Pin<Box<dyn Future<Output = Report> + 'a>> {
    Box::pin(check_now(plan, catalog))
}

async fn check_now(plan: &CheckPlan, catalog: &Catalog) -> Report {
    let mut report = Report::default();
    xgate_tls::install_crypto_provider();
    let channel = match connect(&plan.endpoint, &plan.department, &plan.tls).await {
        Ok(channel) => {
            report.add(
                "connect",
                Verdict::Pass,
                format!("mTLS as `xgate://department/{}`", plan.department),
            );
            channel
        }
        Err(e) => {
            report.add("connect", Verdict::Fail, e);
            return report;
        }
    };
    if !check_health(&mut report, channel.clone(), plan).await {
        return report;
    }
    let mut client = DepartmentAdapterClient::new(channel).max_decoding_message_size(16 << 20);
    let Some((types, samples)) = check_describe(&mut report, &mut client, plan, catalog).await
    else {
        return report;
    };
    let kinds: BTreeMap<SubjectKind, Vec<String>> =
        types.iter().fold(BTreeMap::new(), |mut acc, (id, kind)| {
            acc.entry(*kind).or_insert_with(Vec::new).push(id.clone());
            acc
        });
    check_records(&mut report, &mut client, &kinds, &samples, catalog).await;
    for (kind, types) in &kinds {
        check_unknown(&mut report, &mut client, *kind, types).await;
        let sample = samples
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| unknown_subject(*kind));
        check_malformed(&mut report, &mut client, *kind, &sample, types).await;
    }
    check_batch(&mut report, &mut client, &kinds, &samples).await;
    // The deadline and trace checks use one kind's types and a subject that
    // has records if any does, so the adapter does real work.
    if let Some((kind, types)) = kinds.iter().next() {
        let subject = samples
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| unknown_subject(*kind));
        let mut deadlines = vec![plan.deadline, TIGHT_DEADLINE];
        deadlines.dedup();
        for deadline in deadlines {
            let probe = (*kind, subject.as_str(), types.as_slice());
            check_deadline(&mut report, &mut client, plan, deadline, probe).await;
        }
        check_trace(&mut report, &mut client, *kind, &subject, types).await;
    }
    report
}

/// Health: SERVING for the adapter service. False when the adapter cannot be
/// reached at all (nothing else can be checked).
async fn check_health(report: &mut Report, channel: Channel, plan: &CheckPlan) -> bool {
    let mut health = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: ADAPTER_SERVICE.into(),
    });
    request.set_timeout(CALL_TIMEOUT);
    match tokio::time::timeout(CALL_TIMEOUT, health.check(request)).await {
        Err(_) => {
            report.add(
                "health",
                Verdict::Fail,
                format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
            );
            false
        }
        Ok(Err(status)) => {
            let reachable = !matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
            );
            let hint = if reachable {
                String::new()
            } else {
                format!(
                    " (does it accept the certificate `{}`? adapters let in only the \
                     gateway's and admins')",
                    plan.tls.cert.display()
                )
            };
            report.add(
                "health",
                Verdict::Fail,
                format!("{}{hint}", status_text(&status)),
            );
            reachable
        }
        Ok(Ok(response)) => {
            let status = response.into_inner().status();
            if status == ServingStatus::Serving {
                report.add(
                    "health",
                    Verdict::Pass,
                    format!("{ADAPTER_SERVICE} SERVING"),
                );
            } else {
                report.add(
                    "health",
                    Verdict::Fail,
                    format!("{ADAPTER_SERVICE} is {}", status.as_str_name()),
                );
            }
            true
        }
    }
}

type Served = Vec<(String, SubjectKind)>;
type Samples = Vec<(SubjectKind, String)>;

/// Describe: the department and its types. Returns the catalog types to
/// check and the sample subjects (command line first).
async fn check_describe(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    plan: &CheckPlan,
    catalog: &Catalog,
) -> Option<(Served, Samples)> {
    let mut request = tonic::Request::new(DescribeRequest {});
    request.set_timeout(CALL_TIMEOUT);
    let described = match tokio::time::timeout(CALL_TIMEOUT, client.describe(request)).await {
        Err(_) => {
            report.add("describe", Verdict::Fail, "no answer within 10 s");
            return None;
        }
        Ok(Err(status)) => {
            report.add("describe", Verdict::Fail, status_text(&status));
            return None;
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    let mut problems = Vec::new();
    if described.department != plan.department {
        problems.push(format!(
            "says department `{}`, expected `{}`",
            described.department, plan.department
        ));
    }
    let mut served = Vec::new();
    for id in &described.record_types {
        match catalog.record_type(id) {
            None => problems.push(format!("type `{id}` is not in the catalog")),
            Some(rt) if rt.department != plan.department => problems.push(format!(
                "type `{id}` belongs to `{}`, not `{}`",
                rt.department, plan.department
            )),
            Some(rt) => served.push((id.clone(), rt.subject_kind)),
        }
    }
    if described.record_types.is_empty() {
        problems.push("serves no record type".into());
    }
    let mut samples = plan.subjects.clone();
    for (index, subject) in described.sample_subjects.iter().enumerate() {
        let valid = xgate_proto::kind::from_proto(subject.kind)
            .filter(|kind| xgate_catalog::ids::validate(*kind, &subject.id).is_ok());
        match valid {
            Some(kind) => samples.push((kind, subject.id.clone())),
            None => problems.push(format!(
                "sample subject #{index} (`{}`) is not a valid ID of its kind",
                mask(&subject.id)
            )),
        }
    }
    let missing: Vec<&str> = catalog
        .types_of_department(&plan.department)
        .filter(|rt| !described.record_types.contains(&rt.id))
        .map(|rt| rt.id.as_str())
        .collect();
    let software = if described.software.is_empty() {
        "unnamed software".to_owned()
    } else {
        described.software.clone()
    };
    if problems.is_empty() {
        let mut detail = format!(
            "`{}` serves {} type(s); {software}; {} sample subject(s) named",
            described.department,
            served.len(),
            described.sample_subjects.len()
        );
        if !missing.is_empty() {
            detail.push_str(&format!(
                "; catalog types not served: {}",
                missing.join(", ")
            ));
        }
        report.add("describe", Verdict::Pass, detail);
    } else {
        report.add("describe", Verdict::Fail, problems.join("; "));
    }
    Some((served, samples))
}

/// What the sample lookups showed about one type.
#[derive(Default)]
struct TypeFindings {
    records: usize,
    subjects_with_records: usize,
    subjects_asked: usize,
    problems: Vec<String>,
}

/// Every served type: schema-valid records that name the subject, for at
/// least one sample subject.
async fn check_records(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    kinds: &BTreeMap<SubjectKind, Vec<String>>,
    samples: &Samples,
    catalog: &Catalog,
) {
    for (kind, types) in kinds {
        let mut findings: BTreeMap<&str, TypeFindings> = types
            .iter()
            .map(|t| (t.as_str(), TypeFindings::default()))
            .collect();
        let subjects: Vec<&String> = samples
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, id)| id)
            .collect();
        for id in &subjects {
            let request = lookup_request(*kind, id, types, CALL_TIMEOUT);
            let response = match tokio::time::timeout(CALL_TIMEOUT, client.lookup(request)).await {
                Err(_) => Err(format!("no answer within {} s", CALL_TIMEOUT.as_secs())),
                Ok(Err(status)) => Err(status_text(&status)),
                Ok(Ok(response)) => Ok(response.into_inner()),
            };
            for (record_type, found) in findings.iter_mut() {
                found.subjects_asked += 1;
                match &response {
                    Err(e) => found
                        .problems
                        .push(format!("lookup of `{}` failed: {e}", mask(id))),
                    Ok(response) => {
                        judge_answer(found, response, record_type, id, catalog);
                    }
                }
            }
        }
        for (record_type, found) in findings {
            let check = format!("records: {record_type}");
            if subjects.is_empty() {
                report.add(
                    check,
                    Verdict::Fail,
                    format!(
                        "no sample subject of kind {kind}: name one in Describe \
                         (Department::sample_subjects) or pass --subject"
                    ),
                );
            } else if !found.problems.is_empty() {
                report.add(check, Verdict::Fail, found.problems.join("; "));
            } else if found.subjects_with_records == 0 {
                report.add(
                    check,
                    Verdict::Fail,
                    format!(
                        "no record for any of {} sample subject(s): nothing to check",
                        found.subjects_asked
                    ),
                );
            } else {
                report.add(
                    check,
                    Verdict::Pass,
                    format!(
                        "{} schema-valid record(s) for {} of {} sample subject(s)",
                        found.records, found.subjects_with_records, found.subjects_asked
                    ),
                );
            }
        }
    }
}

/// Records the answer for `record_type` of one sample lookup in `found`.
fn judge_answer(
    found: &mut TypeFindings,
    response: &LookupResponse,
    record_type: &str,
    id: &str,
    catalog: &Catalog,
) {
    let answers: Vec<_> = response
        .answers
        .iter()
        .filter(|a| a.record_type == record_type)
        .collect();
    let [answer] = answers.as_slice() else {
        found.problems.push(format!(
            "{} answers for `{}` (one expected)",
            answers.len(),
            mask(id)
        ));
        return;
    };
    match LookupStatus::try_from(answer.status) {
        Ok(LookupStatus::Found) => {}
        Ok(LookupStatus::NotFound) => {
            if !answer.records_json.is_empty() {
                found
                    .problems
                    .push("NOT_FOUND answer carries records".to_owned());
            }
            return;
        }
        Ok(status @ (LookupStatus::Error | LookupStatus::BadData)) => {
            found.problems.push(format!(
                "{} for `{}`: {}",
                lookup_status_name(status as i32),
                mask(id),
                answer.error
            ));
            return;
        }
        _ => {
            found
                .problems
                .push(format!("status {} for `{}`", answer.status, mask(id)));
            return;
        }
    }
    if answer.records_json.is_empty() {
        found
            .problems
            .push("FOUND answer carries no record".to_owned());
        return;
    }
    let Some(rt) = catalog.record_type(record_type) else {
        return;
    };
    found.subjects_with_records += 1;
    // The gateway's own check (xgate-catalog), so the kit passes exactly
    // what the gateway would release.
    for (index, bytes) in answer.records_json.iter().enumerate() {
        found.records += 1;
        if let Err(problem) = rt.check_record(bytes, id) {
            found.problems.push(format!("record #{index} {problem}"));
        }
    }
}

/// An unknown but well-formed subject is NOT_FOUND for every type.
async fn check_unknown(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    kind: SubjectKind,
    types: &[String],
) {
    let check = format!("unknown subject ({kind})");
    let id = unknown_subject(kind);
    let request = lookup_request(kind, &id, types, CALL_TIMEOUT);
    let response = match tokio::time::timeout(CALL_TIMEOUT, client.lookup(request)).await {
        Err(_) => {
            report.add(check, Verdict::Fail, "no answer within 10 s");
            return;
        }
        Ok(Err(status)) => {
            report.add(
                check,
                Verdict::Fail,
                format!("expected NOT_FOUND answers, got {}", status_text(&status)),
            );
            return;
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    let wrong: Vec<String> = types
        .iter()
        .filter_map(|t| {
            let statuses: Vec<&str> = response
                .answers
                .iter()
                .filter(|a| &a.record_type == t)
                .map(|a| lookup_status_name(a.status))
                .collect();
            (statuses != ["NOT_FOUND"]).then(|| {
                if statuses.is_empty() {
                    format!("{t}: no answer")
                } else {
                    format!("{t}: {}", statuses.join("+"))
                }
            })
        })
        .collect();
    if wrong.is_empty() {
        report.add(
            check,
            Verdict::Pass,
            format!("NOT_FOUND for all {} type(s)", types.len()),
        );
    } else {
        report.add(
            check,
            Verdict::Fail,
            format!("expected NOT_FOUND: {}", wrong.join(", ")),
        );
    }
}

/// An ID with a wrong check character is INVALID_ARGUMENT.
async fn check_malformed(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    kind: SubjectKind,
    valid: &str,
    types: &[String],
) {
    let check = format!("malformed ID ({kind})");
    let request = lookup_request(kind, &malformed(valid), types, CALL_TIMEOUT);
    match tokio::time::timeout(CALL_TIMEOUT, client.lookup(request)).await {
        Err(_) => report.add(check, Verdict::Fail, "no answer within 10 s"),
        Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => report.add(
            check,
            Verdict::Pass,
            format!("INVALID_ARGUMENT: {}", status.message()),
        ),
        Ok(Err(status)) => report.add(
            check,
            Verdict::Fail,
            format!("expected INVALID_ARGUMENT, got {}", status_text(&status)),
        ),
        Ok(Ok(_)) => report.add(
            check,
            Verdict::Fail,
            "expected INVALID_ARGUMENT, got an answer (bad check character accepted)",
        ),
    }
}

/// `BatchLookup`, per subject kind: the sample subjects, an unknown one and
/// a malformed ID in one batch get, each, what `Lookup` gives them (the
/// malformed one ERROR for every type, the stream going on); one more
/// subject than [`MAX_BATCH_SUBJECTS`] is INVALID_ARGUMENT.
async fn check_batch(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    kinds: &BTreeMap<SubjectKind, Vec<String>>,
    samples: &Samples,
) {
    const CHECK: &str = "batch lookup";
    let mut problems = Vec::new();
    let mut compared = 0;
    let mut with_records = 0;
    for (kind, types) in kinds {
        let mut subjects: Vec<String> = samples
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .collect();
        subjects.push(unknown_subject(*kind));
        let bad = malformed(subjects.first().map_or("", String::as_str));
        // What Lookup says about each subject.
        let mut expected = Vec::with_capacity(subjects.len());
        for id in &subjects {
            let request = lookup_request(*kind, id, types, CALL_TIMEOUT);
            match tokio::time::timeout(CALL_TIMEOUT, client.lookup(request)).await {
                Ok(Ok(response)) => expected.push(Some(response.into_inner())),
                Ok(Err(status)) => {
                    problems.push(format!(
                        "Lookup of `{}`: {}",
                        mask(id),
                        status_text(&status)
                    ));
                    expected.push(None);
                }
                Err(_) => {
                    problems.push(format!("Lookup of `{}`: no answer within 10 s", mask(id)));
                    expected.push(None);
                }
            }
        }
        let mut batch: Vec<String> = subjects.clone();
        batch.push(bad);
        let answers = match batch_lookup(client, *kind, &batch, types).await {
            Ok(answers) => answers,
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                report.add(
                    CHECK,
                    Verdict::Fail,
                    "BatchLookup is UNIMPLEMENTED: the gateway screens with it. Adapters built \
                     on xgate-adapter-sdk get it from the SDK (rebuild with the current SDK; \
                     override Department::lookup_batch to answer a set at once); others must \
                     implement the RPC",
                );
                return;
            }
            Err(status) => {
                problems.push(format!(
                    "BatchLookup ({kind}) failed: {}",
                    status_text(&status)
                ));
                continue;
            }
        };
        let mut seen = vec![0_usize; batch.len()];
        for answer in &answers {
            match seen.get_mut(answer.index as usize) {
                Some(n) => *n += 1,
                None => problems.push(format!(
                    "an answer for index {}, of no subject",
                    answer.index
                )),
            }
        }
        for (index, n) in seen.iter().enumerate() {
            if *n != 1 {
                let id = batch.get(index).map_or(String::new(), |id| mask(id));
                problems.push(format!(
                    "{n} answers for subject #{index} (`{id}`), one expected"
                ));
            }
        }
        for answer in &answers {
            let index = answer.index as usize;
            if index == subjects.len() {
                // The malformed ID: ERROR for every type.
                let statuses: Vec<&str> = answer
                    .answers
                    .iter()
                    .map(|a| lookup_status_name(a.status))
                    .collect();
                if statuses.len() != types.len() || statuses.iter().any(|s| *s != "ERROR") {
                    problems.push(format!(
                        "a malformed ID in a batch must be answered ERROR for each of {} type(s), got [{}]",
                        types.len(),
                        statuses.join(", ")
                    ));
                }
                continue;
            }
            let Some(Some(single)) = expected.get(index) else {
                continue;
            };
            let id = batch.get(index).map_or(String::new(), |id| mask(id));
            match differences(types, &single.answers, &answer.answers) {
                None => {
                    compared += 1;
                    if answer
                        .answers
                        .iter()
                        .any(|a| a.status == LookupStatus::Found as i32)
                    {
                        with_records += 1;
                    }
                }
                Some(why) => problems.push(format!("`{id}`: {why}")),
            }
        }
    }
    // Over the limit: refused as a whole, whatever the kind.
    if let Some((kind, types)) = kinds.iter().next() {
        let many = vec![unknown_subject(*kind); MAX_BATCH_SUBJECTS + 1];
        match batch_lookup(client, *kind, &many, types).await {
            Err(status) if status.code() == tonic::Code::InvalidArgument => {}
            Err(status) => problems.push(format!(
                "{} subjects: expected INVALID_ARGUMENT, got {}",
                many.len(),
                status_text(&status)
            )),
            Ok(answers) => problems.push(format!(
                "{} subjects: expected INVALID_ARGUMENT, got {} answers",
                many.len(),
                answers.len()
            )),
        }
    }
    if !problems.is_empty() {
        report.add(CHECK, Verdict::Fail, problems.join("; "));
    } else if with_records == 0 {
        report.add(
            CHECK,
            Verdict::Warn,
            format!(
                "{compared} subject(s) answered as Lookup answers them, but none with records: \
                 name a sample subject that has some"
            ),
        );
    } else {
        report.add(
            CHECK,
            Verdict::Pass,
            format!(
                "{compared} subject(s) answered as Lookup answers them ({with_records} with \
                 records); a malformed ID answered ERROR; {} subjects refused",
                MAX_BATCH_SUBJECTS + 1
            ),
        );
    }
}

/// Every answer of one `BatchLookup`, or the status it failed with.
async fn batch_lookup(
    client: &mut DepartmentAdapterClient<Channel>,
    kind: SubjectKind,
    ids: &[String],
    types: &[String],
) -> Result<Vec<BatchLookupAnswer>, tonic::Status> {
    let mut request = tonic::Request::new(BatchLookupRequest {
        subjects: ids.iter().map(|id| proto_subject(kind, id)).collect(),
        record_types: types.to_vec(),
        request_id: format!("conformance-{}", uuid::Uuid::new_v4()),
        purpose: "CONFORMANCE-CHECK".into(),
    });
    request.set_timeout(CALL_TIMEOUT);
    let collect = async {
        let mut stream = client.batch_lookup(request).await?.into_inner();
        let mut answers = Vec::new();
        while let Some(answer) = stream.message().await? {
            answers.push(answer);
        }
        Ok(answers)
    };
    tokio::time::timeout(CALL_TIMEOUT, collect)
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(
                "no complete answer within 10 s",
            ))
        })
}

/// How a batch answer differs from the `Lookup` answer of the same subject
/// (one answer per type in request order; status and records alike, the
/// records compared as JSON), if it does.
fn differences(types: &[String], single: &[TypeAnswer], batch: &[TypeAnswer]) -> Option<String> {
    let names: Vec<&str> = batch.iter().map(|a| a.record_type.as_str()).collect();
    if names != types {
        return Some(format!(
            "answers for [{}], expected [{}]",
            names.join(", "),
            types.join(", ")
        ));
    }
    for answer in batch {
        let Some(alone) = single.iter().find(|a| a.record_type == answer.record_type) else {
            continue;
        };
        if answer.status != alone.status {
            return Some(format!(
                "`{}` is {} in the batch but {} alone",
                answer.record_type,
                lookup_status_name(answer.status),
                lookup_status_name(alone.status)
            ));
        }
        let json = |a: &TypeAnswer| -> Vec<Result<serde_json::Value, Vec<u8>>> {
            a.records_json
                .iter()
                .map(|b| serde_json::from_slice(b).map_err(|_| b.to_vec()))
                .collect()
        };
        if json(answer) != json(alone) {
            return Some(format!(
                "`{}` records differ: {} in the batch, {} alone",
                answer.record_type,
                answer.records_json.len(),
                alone.records_json.len()
            ));
        }
    }
    None
}

/// A lookup sent with grpc-timeout `deadline` must end (answer or give up)
/// within the deadline plus `plan.grace`. An adapter faster than the
/// deadline passes without proving anything, so the kit also probes with
/// [`TIGHT_DEADLINE`], which a real lookup rarely beats: giving up then
/// shows the deadline is enforced.
async fn check_deadline(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    plan: &CheckPlan,
    deadline: Duration,
    (kind, id, types): (SubjectKind, &str, &[String]),
) {
    let limit = deadline + plan.grace;
    let check = format!("deadline ({} ms)", deadline.as_millis());
    let request = lookup_request(kind, id, types, deadline);
    let started = Instant::now();
    let result = tokio::time::timeout(limit + CALL_TIMEOUT, client.lookup(request)).await;
    let elapsed = started.elapsed();
    let (verdict, detail) = judge_deadline(deadline, limit, elapsed, result.ok());
    report.add(check, verdict, detail);
}

/// The deadline probe with the tightest grpc-timeout the kit sends.
pub const TIGHT_DEADLINE: Duration = Duration::from_millis(1);

/// The verdict of a deadline probe: `outcome` is `None` when no answer came
/// at all (the kit's own guard fired).
fn judge_deadline<T>(
    deadline: Duration,
    limit: Duration,
    elapsed: Duration,
    outcome: Option<Result<T, tonic::Status>>,
) -> (Verdict, String) {
    let ms = elapsed.as_millis();
    let (deadline_ms, limit_ms) = (deadline.as_millis(), limit.as_millis());
    let Some(outcome) = outcome else {
        return (
            Verdict::Fail,
            format!("no answer {ms} ms after a grpc-timeout of {deadline_ms} ms"),
        );
    };
    let what = match &outcome {
        Ok(_) => "answered".to_owned(),
        Err(status) => format!("ended with {:?}", status.code()),
    };
    if elapsed > limit {
        return (
            Verdict::Fail,
            format!(
                "{what} after {ms} ms: grpc-timeout {deadline_ms} ms ignored (limit {limit_ms} ms)"
            ),
        );
    }
    let why = match &outcome {
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) =>
        {
            "gave up in time: the deadline is enforced"
        }
        Ok(_) if elapsed <= deadline => "faster than the deadline",
        _ => "within the limit",
    };
    (
        Verdict::Pass,
        format!("{what} after {ms} ms, {why} (limit {limit_ms} ms)"),
    )
}

/// A lookup carrying W3C `traceparent`/`tracestate` succeeds.
async fn check_trace(
    report: &mut Report,
    client: &mut DepartmentAdapterClient<Channel>,
    kind: SubjectKind,
    id: &str,
    types: &[String],
) {
    let mut request = lookup_request(kind, id, types, CALL_TIMEOUT);
    let metadata = request.metadata_mut();
    metadata.insert(
        "traceparent",
        tonic::metadata::MetadataValue::from_static(TRACEPARENT),
    );
    metadata.insert(
        "tracestate",
        tonic::metadata::MetadataValue::from_static("xgate=conformance"),
    );
    match tokio::time::timeout(CALL_TIMEOUT, client.lookup(request)).await {
        Err(_) => report.add("trace context", Verdict::Fail, "no answer within 10 s"),
        Ok(Err(status)) => report.add(
            "trace context",
            Verdict::Fail,
            format!("lookup with traceparent failed: {}", status_text(&status)),
        ),
        Ok(Ok(response)) => {
            let echoed = response
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split('-').nth(1) == TRACEPARENT.split('-').nth(1));
            let detail = match echoed {
                Some(true) => "accepted; the answer continues the trace",
                Some(false) => "accepted; the answer carries another trace id",
                None => "accepted (no traceparent in the answer)",
            };
            report.add("trace context", Verdict::Pass, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The department guide's table explains every row the kit prints.
    #[test]
    fn the_guide_explains_every_row() {
        let guide = include_str!("../../README.md");
        for row in [
            "connect",
            "health",
            "describe",
            "records: <type>",
            "unknown subject (<kind>)",
            "malformed ID (<kind>)",
            "batch lookup",
            "deadline (100 ms)",
            "trace context",
        ] {
            assert!(
                guide.contains(&format!("| `{row}` |")),
                "adapters/README.md has no row `{row}`"
            );
        }
    }

    #[test]
    fn generated_subjects_are_well_formed_and_their_malformed_twins_are_not() {
        for kind in [SubjectKind::ResidentId, SubjectKind::Uscc] {
            let id = unknown_subject(kind);
            xgate_catalog::ids::validate(kind, &id).expect("valid unknown subject");
            assert_eq!(subject_kind_of(&id), Ok(kind));
            let bad = malformed(&id);
            assert_ne!(bad, id);
            assert!(xgate_catalog::ids::validate(kind, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subject_kind_of_rejects_garbage_without_echoing_the_number() {
        let err = subject_kind_of("11010519491231002Y").expect_err("bad");
        assert!(err.contains("neither"), "{err}");
        assert!(!err.contains("11010519491231002Y"), "{err}");
    }

    #[test]
    fn mask_keeps_only_the_ends() {
        assert_eq!(mask("11010519491231002X"), "1101************2X");
        assert_eq!(mask("123"), "***");
    }

    #[test]
    fn report_counts_failures_and_renders_a_row_per_check() {
        let mut report = Report::default();
        report.add("health", Verdict::Pass, "SERVING");
        report.add(
            "records: tax_registration",
            Verdict::Fail,
            "breaks the schema",
        );
        report.add("describe", Verdict::Warn, "x");
        assert_eq!(report.failures(), 1);
        let text = report.render();
        assert_eq!(text.lines().count(), 4);
        assert!(
            text.lines()
                .any(|l| l.starts_with("records: tax_registration") && l.contains("  FAIL    ")),
            "{text}"
        );
    }

    #[test]
    fn deadline_probes_fail_only_when_the_answer_comes_too_late() {
        let ms = Duration::from_millis;
        let ok = || Some(Ok::<(), tonic::Status>(()));
        let (verdict, detail) = judge_deadline(ms(100), ms(600), ms(4), ok());
        assert_eq!(verdict, Verdict::Pass);
        assert!(detail.contains("faster than the deadline"), "{detail}");
        let gave_up = Some(Err::<(), _>(tonic::Status::deadline_exceeded("late")));
        let (verdict, detail) = judge_deadline(ms(1), ms(501), ms(3), gave_up);
        assert_eq!(verdict, Verdict::Pass);
        assert!(detail.contains("enforced"), "{detail}");
        let (verdict, detail) = judge_deadline(ms(100), ms(600), ms(1500), ok());
        assert_eq!(verdict, Verdict::Fail);
        assert!(detail.contains("answered after 1500 ms"), "{detail}");
        assert!(detail.contains("ignored"), "{detail}");
        let (verdict, detail) = judge_deadline::<()>(ms(100), ms(600), ms(10_600), None);
        assert_eq!(verdict, Verdict::Fail);
        assert!(detail.contains("no answer"), "{detail}");
    }

    fn response(
        record_type: &str,
        status: LookupStatus,
        records: &[serde_json::Value],
    ) -> LookupResponse {
        LookupResponse {
            answers: vec![xgate_proto::v1::TypeAnswer {
                record_type: record_type.into(),
                status: status as i32,
                records_json: records
                    .iter()
                    .map(|r| bytes::Bytes::from(r.to_string()))
                    .collect(),
                error: String::new(),
            }],
        }
    }

    #[test]
    fn judge_answer_flags_schema_breaks_and_records_about_someone_else() {
        let catalog = Catalog::builtin().expect("catalog");
        let id = unknown_subject(SubjectKind::Uscc);
        let mut found = TypeFindings::default();
        let bad = serde_json::json!({"uscc": id, "nonsense": true});
        judge_answer(
            &mut found,
            &response("tax_registration", LookupStatus::Found, &[bad]),
            "tax_registration",
            &id,
            &catalog,
        );
        assert_eq!(found.records, 1);
        assert!(
            found.problems[0].contains("breaks the `tax_registration` schema"),
            "{:?}",
            found.problems
        );

        let mut none = TypeFindings::default();
        judge_answer(
            &mut none,
            &response("tax_registration", LookupStatus::NotFound, &[]),
            "tax_registration",
            &id,
            &catalog,
        );
        assert!(none.problems.is_empty());
        assert_eq!(none.subjects_with_records, 0);

        // Data the adapter could not make a record of is a problem, named.
        let mut bad_data = TypeFindings::default();
        judge_answer(
            &mut bad_data,
            &response("tax_registration", LookupStatus::BadData, &[]),
            "tax_registration",
            &id,
            &catalog,
        );
        assert!(
            bad_data.problems[0].starts_with("BAD_DATA for `"),
            "{:?}",
            bad_data.problems
        );

        // A valid record, but about another citizen.
        let citizen = unknown_subject(SubjectKind::ResidentId);
        let record = |id: &str| {
            serde_json::json!({
                "certificate_no": "334160000000067890",
                "id_number": id,
                "taxpayer_name": "张伟",
                "has_arrears": false,
                "outstanding_amount_cny": 0,
                "tax_authority": "国家税务总局亳州市谯城区税务局",
                "issue_date": "2026-02-01"
            })
        };
        let mut own = TypeFindings::default();
        judge_answer(
            &mut own,
            &response(
                "no_tax_arrears_certificate",
                LookupStatus::Found,
                &[record(&citizen)],
            ),
            "no_tax_arrears_certificate",
            &citizen,
            &catalog,
        );
        assert!(own.problems.is_empty(), "{:?}", own.problems);
        assert_eq!((own.records, own.subjects_with_records), (1, 1));
        let other = "11010519491231002X";
        let mut foreign = TypeFindings::default();
        judge_answer(
            &mut foreign,
            &response(
                "no_tax_arrears_certificate",
                LookupStatus::Found,
                &[record(other)],
            ),
            "no_tax_arrears_certificate",
            &citizen,
            &catalog,
        );
        assert!(
            foreign.problems[0].contains("belongs to another subject (`id_number`"),
            "{:?}",
            foreign.problems
        );

        let mut missing = TypeFindings::default();
        judge_answer(
            &mut missing,
            &response("tax_registration", LookupStatus::NotFound, &[]),
            "taxpayer_credit_rating",
            &id,
            &catalog,
        );
        assert!(
            missing.problems[0].contains("0 answers"),
            "{:?}",
            missing.problems
        );
    }

    /// A tax adapter with one sample citizen holding one arrears
    /// certificate, whose `BatchLookup` behaves as `batch` says.
    #[derive(Clone, Copy)]
    enum Batch {
        Faithful,
        Unimplemented,
        /// Answers NOT_FOUND for everyone.
        Forgetful,
        /// Takes any number of subjects.
        Unbounded,
        /// Fails the whole stream on a malformed ID.
        Strict,
    }

    const SAMPLE: &str = "11010519491231002X";
    const TYPE: &str = "no_tax_arrears_certificate";

    fn answer(id: &str, found: bool) -> xgate_proto::v1::TypeAnswer {
        let (status, records_json) = if found && id == SAMPLE {
            let record = serde_json::json!({"id_number": id});
            (
                LookupStatus::Found,
                vec![bytes::Bytes::from(record.to_string())],
            )
        } else {
            (LookupStatus::NotFound, Vec::new())
        };
        xgate_proto::v1::TypeAnswer {
            record_type: TYPE.into(),
            status: status as i32,
            records_json,
            error: String::new(),
        }
    }

    #[tonic::async_trait]
    impl xgate_proto::v1::department_adapter_server::DepartmentAdapter for Batch {
        async fn lookup(
            &self,
            request: tonic::Request<LookupRequest>,
        ) -> Result<tonic::Response<LookupResponse>, tonic::Status> {
            let id = request
                .into_inner()
                .subject
                .map(|s| s.id)
                .unwrap_or_default();
            Ok(tonic::Response::new(LookupResponse {
                answers: vec![answer(&id, true)],
            }))
        }

        type BatchLookupStream = tonic::codegen::tokio_stream::Iter<
            std::vec::IntoIter<Result<BatchLookupAnswer, tonic::Status>>,
        >;

        async fn batch_lookup(
            &self,
            request: tonic::Request<BatchLookupRequest>,
        ) -> Result<tonic::Response<Self::BatchLookupStream>, tonic::Status> {
            let request = request.into_inner();
            let bounded = !matches!(self, Batch::Unbounded);
            match self {
                Batch::Unimplemented => return Err(tonic::Status::unimplemented("")),
                _ if bounded && request.subjects.len() > MAX_BATCH_SUBJECTS => {
                    return Err(tonic::Status::invalid_argument("too many subjects"));
                }
                _ => {}
            }
            let mut answers = Vec::new();
            for (index, subject) in request.subjects.iter().enumerate() {
                let valid =
                    xgate_catalog::ids::validate(SubjectKind::ResidentId, &subject.id).is_ok();
                let answer = if valid {
                    answer(&subject.id, !matches!(self, Batch::Forgetful))
                } else if matches!(self, Batch::Strict) {
                    answers.push(Err(tonic::Status::invalid_argument("bad id")));
                    break;
                } else {
                    xgate_proto::v1::TypeAnswer {
                        record_type: TYPE.into(),
                        status: LookupStatus::Error as i32,
                        records_json: Vec::new(),
                        error: "invalid subject ID".into(),
                    }
                };
                answers.push(Ok(BatchLookupAnswer {
                    index: u32::try_from(index).unwrap(),
                    answers: vec![answer],
                }));
            }
            // Any order will do: the last first.
            answers.reverse();
            Ok(tonic::Response::new(tonic::codegen::tokio_stream::iter(
                answers,
            )))
        }

        async fn describe(
            &self,
            _: tonic::Request<DescribeRequest>,
        ) -> Result<tonic::Response<xgate_proto::v1::DescribeResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented(""))
        }
    }

    /// The batch row of the kit against `batch`, served in plain HTTP/2.
    async fn batch_row(batch: Batch) -> Row {
        use xgate_proto::v1::department_adapter_server::DepartmentAdapterServer;
        let incoming =
            tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(DepartmentAdapterServer::new(batch))
                .serve_with_incoming(incoming),
        );
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let channel = http2_channel(tcp, &addr.to_string()).await.unwrap();
        let mut client = DepartmentAdapterClient::new(channel);
        let kinds = BTreeMap::from([(SubjectKind::ResidentId, vec![TYPE.to_owned()])]);
        let samples = vec![(SubjectKind::ResidentId, SAMPLE.to_owned())];
        let mut report = Report::default();
        check_batch(&mut report, &mut client, &kinds, &samples).await;
        server.abort();
        let [row] = report.rows.as_slice() else {
            panic!("{report:?}");
        };
        assert_eq!(row.check, "batch lookup");
        assert!(!row.detail.contains(SAMPLE), "{row:?}");
        row.clone()
    }

    #[tokio::test]
    async fn batch_lookup_must_answer_as_lookup_does() {
        let row = batch_row(Batch::Faithful).await;
        assert_eq!(row.verdict, Verdict::Pass, "{row:?}");
        assert!(
            row.detail
                .starts_with("2 subject(s) answered as Lookup answers them (1 with records)"),
            "{row:?}"
        );

        let row = batch_row(Batch::Unimplemented).await;
        assert_eq!(row.verdict, Verdict::Fail, "{row:?}");
        assert!(
            row.detail.contains("UNIMPLEMENTED") && row.detail.contains("get it from the SDK"),
            "{row:?}"
        );

        let row = batch_row(Batch::Forgetful).await;
        assert_eq!(row.verdict, Verdict::Fail, "{row:?}");
        assert!(
            row.detail.contains("`1101************2X`: `no_tax_arrears_certificate` is NOT_FOUND in the batch but FOUND alone"),
            "{row:?}"
        );

        let row = batch_row(Batch::Unbounded).await;
        assert_eq!(row.verdict, Verdict::Fail, "{row:?}");
        assert!(
            row.detail
                .contains("1001 subjects: expected INVALID_ARGUMENT, got 1001 answers"),
            "{row:?}"
        );

        let row = batch_row(Batch::Strict).await;
        assert_eq!(row.verdict, Verdict::Fail, "{row:?}");
        assert!(
            row.detail
                .contains("BatchLookup (resident_id) failed: InvalidArgument"),
            "{row:?}"
        );
    }

    #[test]
    fn batch_answers_differ_by_type_order_status_or_records() {
        let types = vec![TYPE.to_owned()];
        let found = answer(SAMPLE, true);
        assert_eq!(
            differences(
                &types,
                std::slice::from_ref(&found),
                std::slice::from_ref(&found)
            ),
            None
        );
        // The same JSON, written differently, is the same record.
        let mut spaced = found.clone();
        spaced.records_json = vec![bytes::Bytes::from_static(
            br#"{ "id_number" : "11010519491231002X" }"#,
        )];
        assert_eq!(
            differences(&types, std::slice::from_ref(&found), &[spaced]),
            None
        );
        let mut other = found.clone();
        other.records_json.push(bytes::Bytes::from_static(b"{}"));
        assert!(
            differences(&types, std::slice::from_ref(&found), &[other])
                .unwrap()
                .contains("records differ")
        );
        assert!(
            differences(&types, std::slice::from_ref(&found), &[])
                .unwrap()
                .contains("answers for []")
        );
    }
}
