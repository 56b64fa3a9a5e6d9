//! The gateway side of the audit log: one entry per record decision written
//! before the record is released ([`seal`]), admin events, and the
//! auditors' `Audit` service.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt as _};
use serde_json::json;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;
use xgate_audit::{AuditLog, Entry, Filter, Kind, NewEntry};
use xgate_proto::v1::audit_server::Audit;
use xgate_proto::v1::{
    AuditEntry, AuditExportChunk, AuditExportRequest, AuditPage, AuditQueryRequest,
    AuditVerifyRequest, AuditVerifyResponse, RecordResult, RecordStatus, Subject,
    SubjectReportRequest, SubjectReportResponse,
};
use xgate_tls::Identity;

use crate::fetch::{FetchJob, Indexed};

/// The error every withheld result carries.
pub const WITHHELD: &str = "audit log unavailable; nothing released";

/// The gateway's audit log, shared.
pub type Auditor = Arc<AuditLog>;

/// What every entry of one fetch shares. Built before the plan consumes the
/// job; the subject is kept only as its keyed hash.
#[derive(Debug, Clone)]
pub struct FetchContext {
    pub request_id: String,
    pub trace_id: String,
    pub requester: String,
    pub operator_id: String,
    pub purpose: String,
    pub case_id: String,
    /// The approval item the fetch serves; empty when it named none.
    pub approval_item: String,
    pub subject_hmac: String,
    pub policy_set_version: String,
    pub started: Instant,
}

impl FetchContext {
    pub fn new(
        auditor: &AuditLog,
        job: &FetchJob,
        trace_id: String,
        policy_set_version: &str,
    ) -> FetchContext {
        FetchContext {
            request_id: job.request_id.clone(),
            trace_id,
            requester: job.requester.clone(),
            operator_id: job.fetch.operator_id.clone(),
            purpose: job.fetch.purpose.clone(),
            case_id: job.fetch.case_id.clone(),
            approval_item: job.fetch.item.clone().unwrap_or_default(),
            subject_hmac: auditor
                .subject_hmac(job.fetch.subject_kind.as_str(), &job.fetch.subject_id),
            policy_set_version: policy_set_version.to_owned(),
            started: job.started,
        }
    }
}

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

fn entry_for(ctx: &FetchContext, result: &RecordResult) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id.clone_from(&ctx.request_id);
    e.trace_id.clone_from(&ctx.trace_id);
    e.requester.clone_from(&ctx.requester);
    e.operator_id.clone_from(&ctx.operator_id);
    e.purpose.clone_from(&ctx.purpose);
    e.case_id.clone_from(&ctx.case_id);
    e.approval_item.clone_from(&ctx.approval_item);
    e.subject_hmac.clone_from(&ctx.subject_hmac);
    e.record_type.clone_from(&result.record_type);
    e.view.clone_from(&result.view);
    // A spent quota refuses like a denial, though a permit matched.
    e.decision = if result.status == RecordStatus::Denied as i32
        || result.status == RecordStatus::ResourceExhausted as i32
    {
        "deny"
    } else {
        "permit"
    }
    .into();
    e.policy_ids.clone_from(&result.policy_ids);
    e.policy_set_version = if result.policy_set_version.is_empty() {
        ctx.policy_set_version.clone()
    } else {
        result.policy_set_version.clone()
    };
    e.status = status_name(result.status).into();
    e.department.clone_from(&result.department);
    e.latency_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    e
}

/// Appends one entry per result and returns the results once they are
/// durable; if the log cannot be written, every result becomes UNAVAILABLE
/// with its records cleared — nothing leaves the gateway unlogged.
pub async fn seal(auditor: &AuditLog, ctx: &FetchContext, results: Vec<Indexed>) -> Vec<Indexed> {
    if results.is_empty() {
        return results;
    }
    let entries = results.iter().map(|(_, r)| entry_for(ctx, r)).collect();
    let span = tracing::info_span!("audit", entries = results.len());
    match auditor.append(entries).instrument(span).await {
        Ok(_) => results,
        Err(e) => {
            tracing::error!(request_id = ctx.request_id, error = %e, "records withheld: audit log unavailable");
            results
                .into_iter()
                .map(|(i, mut r)| {
                    r.status = RecordStatus::Unavailable as i32;
                    r.records.clear();
                    r.error = WITHHELD.into();
                    (i, r)
                })
                .collect()
        }
    }
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

/// Opens the audit log the configuration names.
pub async fn open(config: &crate::config::Config) -> anyhow::Result<Auditor> {
    let keys = xgate_audit::Keys::load_or_create(&config.audit_key_dir())?;
    let options = xgate_audit::Options {
        max_batch: config.audit.max_batch,
        checkpoint_interval: std::time::Duration::from_secs(config.audit.checkpoint_interval_secs),
        instance: uuid::Uuid::now_v7().to_string(),
    };
    let store =
        xgate_audit::Store::open_with(&config.audit_database(), config.audit.sqlite_synchronous)
            .await?;
    Ok(Arc::new(AuditLog::with_store(store, keys, options)))
}

fn to_proto(e: Entry) -> AuditEntry {
    let b = e.body;
    AuditEntry {
        seq: e.seq,
        time: Some(prost_types::Timestamp {
            seconds: b.time_us.div_euclid(1_000_000),
            nanos: i32::try_from(b.time_us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        }),
        kind: b.kind.as_str().into(),
        gateway: b.gateway,
        request_id: b.request_id,
        trace_id: b.trace_id,
        requester: b.requester,
        operator_id: b.operator_id,
        purpose: b.purpose,
        case_id: b.case_id,
        approval_item: b.approval_item,
        subject_hmac: b.subject_hmac,
        record_type: b.record_type,
        view: b.view,
        decision: b.decision,
        policy_ids: b.policy_ids,
        policy_set_version: b.policy_set_version,
        status: b.status,
        department: b.department,
        latency_us: b.latency_us,
        event: b.event,
        detail: b.detail,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

fn micros(t: &Option<prost_types::Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "audit service error");
    Status::unavailable(format!("audit store: {e}"))
}

/// The `Audit` service; every call needs an auditor certificate.
#[derive(Clone)]
pub struct AuditService(pub Auditor);

fn auditor_only<T>(request: &Request<T>) -> Result<String, Status> {
    match xgate_tls::peer_identity(request)? {
        Identity::Auditor(id) => Ok(id),
        other => Err(Status::permission_denied(format!(
            "`{other}` is not an auditor certificate; only `xgate://auditor/<id>` may read the audit log"
        ))),
    }
}

impl AuditService {
    fn subject_hmac(&self, subject: &Subject) -> Result<String, Status> {
        let kind = xgate_proto::kind::from_proto(subject.kind).ok_or_else(|| {
            Status::invalid_argument(
                "subject.kind must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC",
            )
        })?;
        Ok(self.0.subject_hmac(kind.as_str(), &subject.id))
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
        let log = Arc::clone(&self.0);
        let stream =
            futures::stream::unfold((q.after_seq, 0u64, false), move |(after, sent, done)| {
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
                            let next = entries.last().map_or(after, |e| e.seq);
                            let n = entries.len() as u64;
                            let last_page = entries.len() < want;
                            let page = AuditPage {
                                entries: entries.into_iter().map(to_proto).collect(),
                                next_after_seq: next,
                            };
                            Some((Ok(page), (next, sent + n, last_page)))
                        }
                        Err(e) => Some((Err(internal(e)), (after, sent, true))),
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
        let report = self.0.verify().await.map_err(internal)?;
        let (first_bad_seq, reason) = report.first_bad.clone().unwrap_or_default();
        Ok(Response::new(AuditVerifyResponse {
            ok: report.is_ok(),
            entries: report.entries,
            checkpoints: report.checkpoints,
            checkpoints_verified: report.checkpoints_verified,
            first_bad_seq,
            reason,
            public_keys: self.0.trusted().0.iter().map(|k| k.to_string()).collect(),
        }))
    }

    async fn subject_report(
        &self,
        request: Request<SubjectReportRequest>,
    ) -> Result<Response<SubjectReportResponse>, Status> {
        auditor_only(&request)?;
        let q = request.into_inner();
        let subject = q
            .subject
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("subject is required"))?;
        let subject_hmac = self.subject_hmac(subject)?;
        let filter = Filter {
            subject_hmac: Some(subject_hmac.clone()),
            kind: Some(Kind::Access),
            since_us: micros(&q.since),
            until_us: micros(&q.until),
            ..Filter::default()
        };
        let mut accesses = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .0
                .query(&filter, after, 5_000)
                .await
                .map_err(internal)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            accesses.extend(page.into_iter().map(to_proto));
        }
        let released = accesses.iter().filter(|e| e.status == "OK").count() as u64;
        let denied = accesses.iter().filter(|e| e.decision == "deny").count() as u64;
        Ok(Response::new(SubjectReportResponse {
            subject_hmac,
            accesses,
            released,
            denied,
        }))
    }

    type ExportStream = Chunks;

    async fn export(
        &self,
        request: Request<AuditExportRequest>,
    ) -> Result<Response<Chunks>, Status> {
        auditor_only(&request)?;
        let stream = xgate_audit::export_lines(self.0.store().clone())
            .map(|r| r.map(|lines| AuditExportChunk { lines }).map_err(internal));
        Ok(Response::new(Box::pin(stream)))
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

    #[tokio::test]
    async fn seal_withholds_everything_when_the_log_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("a.db").display());
        let log = AuditLog::open(
            &url,
            xgate_audit::Keys::generate().expect("keys"),
            xgate_audit::Options::default(),
        )
        .await
        .expect("open");
        let ctx = FetchContext {
            request_id: "r".into(),
            trace_id: String::new(),
            requester: "q".into(),
            operator_id: "o".into(),
            purpose: "p".into(),
            case_id: "c".into(),
            approval_item: String::new(),
            subject_hmac: "h".into(),
            policy_set_version: "v".into(),
            started: Instant::now(),
        };
        let ok = RecordResult {
            record_type: "t".into(),
            status: RecordStatus::Ok as i32,
            records: vec![prost_types::Struct::default()],
            ..RecordResult::default()
        };
        let denied = RecordResult {
            record_type: "d".into(),
            status: RecordStatus::Denied as i32,
            ..RecordResult::default()
        };
        let sealed = seal(&log, &ctx, vec![(0, ok.clone()), (1, denied)]).await;
        assert_eq!(sealed[0].1.records.len(), 1);
        let entries = log.query(&Filter::default(), 0, 10).await.expect("query");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].body.decision, "deny");
        if let xgate_audit::Store::Sqlite(pool) = log.store() {
            sqlx::query("CREATE TRIGGER block BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'x'); END")
                .execute(pool)
                .await
                .expect("trigger");
        }
        let sealed = seal(&log, &ctx, vec![(0, ok)]).await;
        assert_eq!(sealed[0].1.status, RecordStatus::Unavailable as i32);
        assert!(sealed[0].1.records.is_empty());
        assert_eq!(sealed[0].1.error, WITHHELD);
    }
}
