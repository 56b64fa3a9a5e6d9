//! The gateway side of the audit log: sealing ([`seal`]: one entry per
//! answer holding every record decision, written before anything is
//! released), admin events, and the auditors' `Audit` service.

mod seal;

pub use seal::{FetchContext, Sealed, WITHHELD, seal};

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use serde_json::json;
use tonic::{Request, Response, Status};
use xgate_audit::{AuditLog, Cursor, Filter, Kind, NewEntry, Record};
use xgate_proto::v1::audit_server::Audit;
use xgate_proto::v1::{
    AuditEntry, AuditExportChunk, AuditExportRequest, AuditPage, AuditQueryRequest, AuditReceipt,
    AuditVerifyRequest, AuditVerifyResponse, ChainCheckpoint, CheckpointsRequest,
    CheckpointsResponse, Subject, SubjectReportRequest, SubjectReportResponse,
    VerifyReceiptResponse, VerifyTrustedRequest, VerifyTrustedResponse,
};
use xgate_tls::role::{self, Role as _};

/// The gateway's audit log, shared.
pub type Auditor = Arc<AuditLog>;

/// The W3C trace id of a request's `traceparent` header, if any.
pub fn trace_id<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('-').nth(1))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_default()
        .to_owned()
}

/// `OK`, `DENIED`, ... for the log.
fn status_name(status: i32) -> &'static str {
    xgate_proto::status_name(status)
}

/// Sealed outcomes as the wire answer: the results, and the receipt of the
/// entry that holds them (absent when they were withheld).
pub fn respond(sealed: Vec<Sealed>) -> (Vec<xgate_proto::v1::RecordResult>, Option<AuditReceipt>) {
    let receipt = sealed
        .iter()
        .find_map(|s| s.receipt())
        .map(|r| receipt_to_proto(r));
    let results = sealed
        .into_iter()
        .map(xgate_proto::v1::RecordResult::from)
        .collect();
    (results, receipt)
}

/// A receipt on the wire.
pub fn receipt_to_proto(r: &xgate_audit::Receipt) -> AuditReceipt {
    let batch = r.batch.as_ref();
    AuditReceipt {
        chain: r.chain.clone(),
        index: r.index,
        entry_hash: r.entry_hash.to_vec(),
        records_digest: r.records_digest.to_vec(),
        signature: r.signature.clone(),
        batch_first: batch.map_or(0, |b| b.first),
        batch_size: batch.map_or(0, |b| b.size),
        batch_path: batch.map_or_else(Vec::new, |b| b.path.iter().map(|h| h.to_vec()).collect()),
    }
}

/// A wire receipt back as the audit crate's; the error names the field
/// whose hash is not 32 bytes (INVALID_ARGUMENT through [`receipt_from_proto`]).
pub fn receipt_from_wire(r: AuditReceipt) -> Result<xgate_audit::Receipt, String> {
    fn hash(field: &str, bytes: Vec<u8>) -> Result<[u8; 32], String> {
        <[u8; 32]>::try_from(bytes)
            .map_err(|b| format!("{field} must be 32 bytes, not {}", b.len()))
    }
    let batch = if r.batch_size == 0 {
        None
    } else {
        Some(xgate_audit::receipt::Batch {
            first: r.batch_first,
            size: r.batch_size,
            path: r
                .batch_path
                .into_iter()
                .map(|h| hash("batch_path", h))
                .collect::<Result<_, _>>()?,
        })
    };
    Ok(xgate_audit::Receipt {
        entry_hash: hash("entry_hash", r.entry_hash)?,
        records_digest: hash("records_digest", r.records_digest)?,
        chain: r.chain,
        index: r.index,
        batch,
        signature: r.signature,
    })
}

/// [`receipt_from_wire`] for a request: INVALID_ARGUMENT.
pub fn receipt_from_proto(r: AuditReceipt) -> Result<xgate_audit::Receipt, Status> {
    receipt_from_wire(r).map_err(Status::invalid_argument)
}

/// Administrative events the log records.
#[derive(Debug, Clone)]
pub enum AdminEvent {
    AdapterRegistered {
        department: String,
        adapter_id: String,
        endpoints: Vec<String>,
        record_types: Vec<String>,
    },
    AdapterRemoved {
        department: String,
        adapter_id: String,
        by_admin: bool,
    },
    PolicySetLoaded {
        version: String,
        policies: usize,
    },
    PolicySetRejected {
        reason: String,
    },
}

/// An event about a subject's data, by `actor` (an identity URI).
pub struct SubjectEvent<'a> {
    pub event: &'a str,
    pub actor: String,
    /// The subject's keyed hash; empty for an event about no subject.
    pub subject_hmac: &'a str,
    /// The purpose it concerns, if any.
    pub purpose: &'a str,
    pub detail: serde_json::Value,
}

/// Writes an event whose change must not go unlogged: a failure is the
/// caller's error (the change stands; the caller is told so and may retry).
pub async fn subject_event(auditor: &AuditLog, e: SubjectEvent<'_>) -> Result<(), Status> {
    let mut entry = NewEntry::admin(e.event, e.detail);
    entry.requester = e.actor;
    e.subject_hmac.clone_into(&mut entry.subject_hmac);
    e.purpose.clone_into(&mut entry.purpose);
    auditor
        .append(vec![entry])
        .await
        .map(|_| ())
        .map_err(crate::error::status)
}

/// Writes an admin event; a failure is logged, never fatal to the caller.
pub async fn admin_event(auditor: &AuditLog, actor: &str, event: AdminEvent) {
    let (name, detail) = match &event {
        AdminEvent::AdapterRegistered {
            department,
            adapter_id,
            endpoints,
            record_types,
        } => (
            "adapter_registered",
            json!({"department": department, "adapter_id": adapter_id, "endpoints": endpoints, "record_types": record_types}),
        ),
        AdminEvent::AdapterRemoved {
            department,
            adapter_id,
            by_admin,
        } => (
            "adapter_removed",
            json!({"department": department, "adapter_id": adapter_id, "by_admin": by_admin}),
        ),
        AdminEvent::PolicySetLoaded { version, policies } => (
            "policy_set_loaded",
            json!({"version": version, "policies": policies}),
        ),
        AdminEvent::PolicySetRejected { reason } => {
            ("policy_set_rejected", json!({"reason": reason}))
        }
    };
    let mut entry = NewEntry::admin(name, detail);
    entry.requester = actor.to_owned();
    if let Err(e) = auditor.append(vec![entry]).await {
        tracing::error!(event = name, error = %e, "admin event not logged");
    }
}

/// Opens the audit log the configuration names (the instance lock of its
/// key directory refuses a second process of the same instance).
pub async fn open(config: &crate::config::Config) -> anyhow::Result<Auditor> {
    let keys = xgate_audit::Keys::load_or_create(&config.audit_key_dir())?;
    let options = xgate_audit::Options {
        max_batch: config.audit.max_batch,
        checkpoint_interval: std::time::Duration::from_secs(config.audit.checkpoint_interval_secs),
        checkpoint_every: config.audit.checkpoint_every,
    };
    let store =
        xgate_audit::Store::open_with(&config.audit_database(), config.audit.sqlite_synchronous)
            .await?;
    let log = AuditLog::with_store(store, keys, options).await?;
    if let Some(key) = log.key_added() {
        tracing::info!(instance = log.instance(), public_key = %key, "audit key added to the trusted set");
    }
    if let Some(why) = log.failed_closed() {
        tracing::error!(reason = %why, "the audit log failed closed: no record will be released");
    }
    Ok(Arc::new(log))
}

/// One record of a query, as the wire entry (an admin event has no
/// decision: its record fields stay empty).
fn to_proto(r: Record) -> AuditEntry {
    let e = &r.entry;
    let b = &e.body;
    let d = r.decision();
    AuditEntry {
        seq: e.index,
        time: Some(prost_types::Timestamp {
            seconds: b.time_us.div_euclid(1_000_000),
            nanos: i32::try_from(b.time_us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        }),
        kind: b.kind.as_str().into(),
        gateway: e.chain.clone(),
        request_id: b.request_id.clone(),
        trace_id: b.trace_id.clone(),
        requester: b.requester.clone(),
        operator_id: b.operator_id.clone(),
        purpose: b.purpose.clone(),
        case_id: b.case_id.clone(),
        approval_item: b.approval_item.clone(),
        subject_hmac: b.subject_hmac.clone(),
        record_type: d.map(|d| d.record_type.clone()).unwrap_or_default(),
        view: d.map(|d| d.view.clone()).unwrap_or_default(),
        decision: d.map(|d| d.verdict.as_str().to_owned()).unwrap_or_default(),
        policy_ids: d.map(|d| d.policy_ids.clone()).unwrap_or_default(),
        policy_set_version: b.policy_set_version.clone(),
        status: d.map(|d| d.status.clone()).unwrap_or_default(),
        department: d.map(|d| d.department.clone()).unwrap_or_default(),
        latency_us: b.latency_us,
        event: b.event.clone(),
        detail: b.detail.clone(),
        prev_hash: String::new(),
        hash: String::new(),
        chain: e.chain.clone(),
        index: e.index,
        position: r
            .position
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_default(),
    }
}

fn micros(t: &Option<prost_types::Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

/// The `Audit` service; every call needs an auditor certificate.
#[derive(Clone)]
pub struct AuditService {
    pub log: Auditor,
    /// Checks the subject's code when the citizen platform asks for the
    /// subject's own report.
    pub presence: crate::codes::Presence,
}

fn auditor_only<T>(request: &Request<T>) -> Result<String, Status> {
    role::Auditor::of(request, "read the audit log").map(|role::Auditor(id)| id)
}

impl AuditService {
    /// Every record `filter` matches, page by page, as wire entries.
    async fn all(&self, filter: &Filter) -> Result<Vec<AuditEntry>, Status> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .log
                .query(filter, after, 5_000)
                .await
                .map_err(crate::error::status)?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor);
            out.extend(page.into_iter().map(to_proto));
        }
        Ok(out)
    }

    fn subject_hmac(&self, subject: &Subject) -> Result<String, Status> {
        let kind = xgate_proto::kind::from_proto(subject.kind).ok_or_else(|| {
            Status::invalid_argument(
                "subject.kind must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC",
            )
        })?;
        Ok(self.log.subject_hmac(kind.as_str(), &subject.id))
    }
}

type Pages = Pin<Box<dyn Stream<Item = Result<AuditPage, Status>> + Send>>;
type Chunks = Pin<Box<dyn Stream<Item = Result<AuditExportChunk, Status>> + Send>>;

const MAX_PAGE: u32 = 5_000;

#[tonic::async_trait]
impl Audit for AuditService {
    type QueryStream = Pages;

    async fn query(&self, request: Request<AuditQueryRequest>) -> Result<Response<Pages>, Status> {
        let auditor = auditor_only(&request)?;
        let q = request.into_inner();
        let nonempty = |s: String| (!s.is_empty()).then_some(s);
        let kind = match q.kind.as_str() {
            "" => None,
            k => Some(
                Kind::parse(k)
                    .ok_or_else(|| Status::invalid_argument("kind must be `access` or `admin`"))?,
            ),
        };
        let filter = Filter {
            subject_hmac: q
                .subject
                .as_ref()
                .map(|s| self.subject_hmac(s))
                .transpose()?,
            requester: nonempty(q.requester),
            record_type: nonempty(q.record_type),
            department: nonempty(q.department),
            decision: nonempty(q.decision),
            kind,
            since_us: micros(&q.since),
            until_us: micros(&q.until),
        };
        tracing::info!(auditor, "audit query");
        let page = match q.page_size {
            0 => 500,
            n => n.min(MAX_PAGE),
        } as usize;
        let max = if q.max_entries == 0 {
            u64::MAX
        } else {
            q.max_entries
        };
        let log = Arc::clone(&self.log);
        let start = match q.after.as_str() {
            "" => None,
            token => Some(token.parse::<Cursor>().map_err(|_| {
                Status::invalid_argument("`after` is not a page token of this log")
            })?),
        };
        let stream = futures::stream::unfold((start, 0u64, false), move |(after, sent, done)| {
            let log = Arc::clone(&log);
            let filter = filter.clone();
            async move {
                if done || sent >= max {
                    return None;
                }
                let want = usize::try_from((max - sent).min(page as u64)).unwrap_or(page);
                match log.query(&filter, after, want).await {
                    Ok(entries) if entries.is_empty() => None,
                    Ok(entries) => {
                        let next = entries.last().map(|r| r.cursor).or(after);
                        let n = entries.len() as u64;
                        let last_page = entries.len() < want;
                        let page = AuditPage {
                            entries: entries.into_iter().map(to_proto).collect(),
                            next_after_seq: 0,
                            next_after: next.map(|c| c.to_string()).unwrap_or_default(),
                        };
                        Some((Ok(page), (next, sent + n, last_page)))
                    }
                    Err(e) => Some((Err(crate::error::status(e)), (after, sent, true))),
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify(
        &self,
        request: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        auditor_only(&request)?;
        let report = self.log.verify().await.map_err(crate::error::status)?;
        let trusted = self.log.trusted().await.map_err(crate::error::status)?;
        let bad = report.first_bad.clone();
        Ok(Response::new(AuditVerifyResponse {
            ok: report.is_ok(),
            entries: report.entries(),
            checkpoints: report.chains.iter().map(|c| c.checkpoints).sum(),
            checkpoints_verified: report.checkpoints_verified(),
            first_bad_seq: bad.as_ref().map_or(0, |b| b.index),
            reason: bad.as_ref().map(|b| b.why.clone()).unwrap_or_default(),
            public_keys: trusted.0.iter().map(|k| k.to_string()).collect(),
            chains: report.chains.iter().map(|c| c.instance.clone()).collect(),
            first_bad_chain: bad.map(|b| b.chain).unwrap_or_default(),
        }))
    }

    async fn subject_report(
        &self,
        request: Request<SubjectReportRequest>,
    ) -> Result<Response<SubjectReportResponse>, Status> {
        let subject_hmac = match xgate_tls::peer_identity(&request)? {
            // The subject's own report: their fresh code, spent.
            xgate_tls::Identity::Platform(_) => {
                let code = self
                    .presence
                    .check(&request.get_ref().subject_code, None)
                    .await?;
                self.log
                    .subject_hmac(code.subject_kind.as_str(), &code.subject_id)
            }
            _ => {
                auditor_only(&request)?;
                let subject = request
                    .get_ref()
                    .subject
                    .as_ref()
                    .ok_or_else(|| Status::invalid_argument("subject is required"))?;
                self.subject_hmac(subject)?
            }
        };
        let q = request.into_inner();
        let filter = |kind| Filter {
            subject_hmac: Some(subject_hmac.clone()),
            kind: Some(kind),
            since_us: micros(&q.since),
            until_us: micros(&q.until),
            ..Filter::default()
        };
        let accesses = self.all(&filter(Kind::Access)).await?;
        let events = self.all(&filter(Kind::Admin)).await?;
        let released = accesses.iter().filter(|e| e.status == "OK").count() as u64;
        let denied = accesses.iter().filter(|e| e.decision == "deny").count() as u64;
        Ok(Response::new(SubjectReportResponse {
            subject_hmac,
            accesses,
            released,
            denied,
            events,
        }))
    }

    type ExportStream = Chunks;

    async fn export(
        &self,
        request: Request<AuditExportRequest>,
    ) -> Result<Response<Chunks>, Status> {
        auditor_only(&request)?;
        let stream = xgate_audit::export_lines(self.log.store().clone()).map(|r| {
            r.map(|lines| AuditExportChunk { lines })
                .map_err(crate::error::status)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify_receipt(
        &self,
        request: Request<AuditReceipt>,
    ) -> Result<Response<VerifyReceiptResponse>, Status> {
        role::ReceiptHolder::of(&request, "verify audit receipts")?;
        let receipt = receipt_from_proto(request.into_inner())?;
        let trusted = self.log.trusted().await.map_err(crate::error::status)?;
        let response = match xgate_audit::verify_receipt(self.log.store(), &receipt, &trusted).await
        {
            Ok(report) => VerifyReceiptResponse {
                ok: true,
                reason: String::new(),
                key: report.key,
                checkpoint: report.checkpoint.unwrap_or_default(),
                inclusion_proof: report.inclusion_proof,
            },
            Err(xgate_audit::AuditError::Receipt(reason)) => VerifyReceiptResponse {
                ok: false,
                reason,
                ..VerifyReceiptResponse::default()
            },
            Err(e) => return Err(crate::error::status(e)),
        };
        Ok(Response::new(response))
    }

    async fn checkpoints(
        &self,
        request: Request<CheckpointsRequest>,
    ) -> Result<Response<CheckpointsResponse>, Status> {
        auditor_only(&request)?;
        let checkpoints = xgate_audit::latest_checkpoints(self.log.store())
            .await
            .map_err(crate::error::status)?
            .into_iter()
            .map(|(chain, note)| ChainCheckpoint { chain, note })
            .collect();
        Ok(Response::new(CheckpointsResponse { checkpoints }))
    }

    async fn verify_trusted(
        &self,
        request: Request<VerifyTrustedRequest>,
    ) -> Result<Response<VerifyTrustedResponse>, Status> {
        auditor_only(&request)?;
        let note = request.into_inner().checkpoint;
        let trusted = self.log.trusted().await.map_err(crate::error::status)?;
        let response =
            match xgate_audit::verify_with_trusted(self.log.store(), &note, &trusted).await {
                Ok(report) => VerifyTrustedResponse {
                    ok: report.is_ok(),
                    reason: if report.is_ok() {
                        String::new()
                    } else {
                        report.to_string()
                    },
                    chain: report.instance,
                    trusted_size: report.trusted_size,
                    size: report.size,
                    consistency_proof: report.proof,
                },
                Err(xgate_audit::AuditError::Receipt(reason)) => VerifyTrustedResponse {
                    ok: false,
                    reason,
                    ..VerifyTrustedResponse::default()
                },
                Err(e) => return Err(crate::error::status(e)),
            };
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_a_valid_traceparent_only() {
        let mut r = Request::new(());
        r.metadata_mut().insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("ascii"),
        );
        assert_eq!(trace_id(&r), "4bf92f3577b34da6a3ce929d0e0e4736");
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert("traceparent", "garbage".parse().expect("ascii"));
        assert_eq!(trace_id(&bad), "");
    }
}
