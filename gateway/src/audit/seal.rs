//! Sealing: settled outcomes become sealed ones only once the audit store
//! acknowledged a durable append of their decisions, and only a sealed
//! outcome becomes a wire `RecordResult`.
//!
//! [`Sealed`] has no public constructor and its fields are private, so no
//! code outside this module can make one; `RecordResult` implements
//! `From<Sealed>` and nothing else of the gateway's. A result whose append
//! failed (or missed the sealing deadline) is [`Sealed`] as withheld: that
//! state has no outcome, hence no records and no value, by construction.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;
use xgate_audit::{AuditLog, Decision, NewEntry, Receipt, Verdict, digest_records};
use xgate_catalog::ViewOutput;
use xgate_proto::v1::{RecordResult, RecordStatus};

use crate::fetch::FetchJob;
use crate::outcome::{Outcome, Settled};

/// The error every withheld result carries.
pub const WITHHELD: &str = "audit log unavailable; nothing released";

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
    /// When the append must have been acknowledged.
    pub seal_by: Instant,
    /// Release records as the JSON bytes the entry's digest covers.
    pub records_as_json: bool,
    /// What the fetch was made with beyond the request, as the entry's
    /// `detail` JSON: the subject code's issuer and nonce (the applicant's
    /// explicit request); empty for a fetch by raw subject.
    pub detail: String,
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
            seal_by: job.seal_by,
            records_as_json: job.records_as_json,
            detail: detail(auditor, job),
        }
    }
}

/// The entry's `detail`: the subject code (issuer, nonce), the consents that
/// covered record types (type -> consent id), and the verified
/// representation (the applicant as a keyed hash like the subject, the
/// relation, and the check's own entry as evidence); empty when none.
fn detail(auditor: &AuditLog, job: &FetchJob) -> String {
    let mut detail = serde_json::Map::new();
    if let Some(code) = &job.code {
        detail.insert(
            "subject_code".into(),
            serde_json::json!({
                "issuer": code.issuer,
                "nonce": code.nonce_hex(),
                "expires_at": code.expires_at,
            }),
        );
    }
    if !job.consented.is_empty() {
        let consents: serde_json::Map<String, serde_json::Value> = job
            .consented
            .iter()
            .map(|(t, id)| (t.clone(), serde_json::Value::String(id.clone())))
            .collect();
        detail.insert("consents".into(), serde_json::Value::Object(consents));
    }
    if let Some(rep) = &job.representation {
        detail.insert(
            "representation".into(),
            serde_json::json!({
                "applicant_hmac": auditor.subject_hmac(
                    xgate_catalog::SubjectKind::ResidentId.as_str(),
                    &rep.applicant_id,
                ),
                "relation": rep.relation,
                "evidence": rep.evidence,
            }),
        );
    }
    if detail.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(detail).to_string()
    }
}

/// A settled outcome the audit log holds (or, if it could not be written,
/// withheld). The only way to a `RecordResult`.
#[derive(Debug)]
pub struct Sealed(State);

// Moved once per result, never stored in bulk: no box needed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum State {
    /// Durable in the log: the answer's entry, whose receipt it shares.
    Logged {
        settled: Settled,
        receipt: Arc<Receipt>,
        /// The released bytes the entry's digest covers.
        released: Option<Vec<Vec<u8>>>,
        records_as_json: bool,
    },
    /// Not logged: nothing of the outcome survives but who decided.
    Withheld(Withheld),
}

#[derive(Debug)]
struct Withheld {
    index: usize,
    record_type: String,
    department: String,
    view: String,
    policy_ids: Vec<String>,
    policy_set_version: String,
    latency_us: u64,
}

impl Sealed {
    /// The result's position in the request.
    pub fn index(&self) -> usize {
        match &self.0 {
            State::Logged { settled, .. } => settled.index,
            State::Withheld(w) => w.index,
        }
    }

    /// The receipt of the answer's entry holding the decision; `None`
    /// when withheld.
    pub fn receipt(&self) -> Option<&Arc<Receipt>> {
        match &self.0 {
            State::Logged { receipt, .. } => Some(receipt),
            State::Withheld(_) => None,
        }
    }

    fn withhold(settled: Settled) -> Sealed {
        let policy_ids = settled.outcome.policy_ids().to_vec();
        Sealed(State::Withheld(Withheld {
            index: settled.index,
            record_type: settled.record_type,
            department: settled.department,
            view: settled.view,
            policy_ids,
            policy_set_version: settled.policy_set_version,
            latency_us: settled.latency_us,
        }))
    }
}

impl From<Sealed> for RecordResult {
    fn from(sealed: Sealed) -> RecordResult {
        match sealed.0 {
            State::Withheld(w) => RecordResult {
                record_type: w.record_type,
                department: w.department,
                status: RecordStatus::Unavailable as i32,
                error: WITHHELD.into(),
                policy_ids: w.policy_ids,
                latency_us: w.latency_us,
                view: w.view,
                policy_set_version: w.policy_set_version,
                ..RecordResult::default()
            },
            State::Logged {
                settled,
                released,
                records_as_json,
                ..
            } => {
                let (status, error) = settled.outcome.status(&settled.department);
                let policy_ids = settled.outcome.policy_ids().to_vec();
                let mut result = RecordResult {
                    record_type: settled.record_type,
                    department: settled.department,
                    status: status as i32,
                    error,
                    policy_ids,
                    latency_us: settled.latency_us,
                    view: settled.view,
                    policy_set_version: settled.policy_set_version,
                    ..RecordResult::default()
                };
                if let Some(origin) = settled.origin {
                    result.provenance = Some(origin.provenance);
                    result.from_cache = origin.cached_age.is_some();
                    result.age_ms = origin
                        .cached_age
                        .map_or(0, |age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
                }
                if let Outcome::Released(release) = settled.outcome {
                    match release.into_output() {
                        ViewOutput::Records(_) if records_as_json => {
                            result.records_json = released.unwrap_or_default();
                        }
                        ViewOutput::Records(records) => {
                            result.records = records
                                .into_iter()
                                .filter_map(xgate_proto::json::object_to_struct)
                                .collect();
                        }
                        ViewOutput::Value(value) => {
                            result.value = Some(xgate_proto::json::to_value(value));
                        }
                    }
                }
                result
            }
        }
    }
}

/// What an outcome releases as JSON bytes (`None`: nothing): each record,
/// or the predicate's value. Serialised once: the entry's digest covers
/// these bytes and `records_json` carries them.
fn released_bytes(outcome: &Outcome) -> Option<Vec<Vec<u8>>> {
    let Outcome::Released(release) = outcome else {
        return None;
    };
    Some(match release.output() {
        ViewOutput::Records(records) => records
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap_or_default())
            .collect(),
        ViewOutput::Value(v) => vec![serde_json::to_vec(v).unwrap_or_default()],
    })
}

/// The answer's one entry: every settled outcome is one decision in it,
/// `released[i]` what outcome `i` releases.
fn entry_for(
    ctx: &FetchContext,
    settled: &[Settled],
    released: &[Option<Vec<Vec<u8>>>],
) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id.clone_from(&ctx.request_id);
    e.trace_id.clone_from(&ctx.trace_id);
    e.requester.clone_from(&ctx.requester);
    e.operator_id.clone_from(&ctx.operator_id);
    e.purpose.clone_from(&ctx.purpose);
    e.case_id.clone_from(&ctx.case_id);
    e.approval_item.clone_from(&ctx.approval_item);
    e.subject_hmac.clone_from(&ctx.subject_hmac);
    e.policy_set_version.clone_from(&ctx.policy_set_version);
    e.detail.clone_from(&ctx.detail);
    e.latency_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    e.decisions = settled
        .iter()
        .zip(released)
        .map(|(s, bytes)| {
            let (status, _) = s.outcome.status(&s.department);
            Decision {
                record_type: s.record_type.clone(),
                view: s.view.clone(),
                // The decision is the policy's, taken from the outcome, not
                // read back from a wire status.
                verdict: match s.outcome.verdict() {
                    crate::outcome::Verdict::Permit => Verdict::Permit,
                    crate::outcome::Verdict::Deny => Verdict::Deny,
                },
                policy_ids: s.outcome.policy_ids().to_vec(),
                status: super::status_name(status as i32).into(),
                department: s.department.clone(),
                records_digest: bytes
                    .as_ref()
                    .map(|b| digest_records(b.iter().map(Vec::as_slice))),
                latency_us: s.latency_us,
            }
        })
        .collect();
    e
}

/// Appends the answer's one entry and seals its outcomes once it is
/// durable. If the log cannot be written by the context's sealing deadline
/// (its own, inside the call's), every outcome is sealed as withheld —
/// nothing leaves the gateway unlogged.
pub async fn seal(auditor: &AuditLog, ctx: &FetchContext, settled: Vec<Settled>) -> Vec<Sealed> {
    if settled.is_empty() {
        return Vec::new();
    }
    let mut released: Vec<Option<Vec<Vec<u8>>>> =
        settled.iter().map(|s| released_bytes(&s.outcome)).collect();
    let entry = entry_for(ctx, &settled, &released);
    let span = tracing::info_span!("audit", decisions = settled.len());
    let append = auditor.append(vec![entry]).instrument(span);
    let why = match tokio::time::timeout_at(ctx.seal_by.into(), append).await {
        Ok(Ok(mut receipts)) => match receipts.pop() {
            Some(receipt) => {
                let receipt = Arc::new(receipt);
                return settled
                    .into_iter()
                    .zip(released.iter_mut())
                    .map(|(settled, released)| {
                        Sealed(State::Logged {
                            settled,
                            receipt: Arc::clone(&receipt),
                            released: released.take(),
                            records_as_json: ctx.records_as_json,
                        })
                    })
                    .collect();
            }
            None => "the audit log returned no receipt".to_owned(),
        },
        Ok(Err(e)) => e.to_string(),
        Err(_) => "the audit append missed the fetch's sealing deadline".to_owned(),
    };
    tracing::error!(request_id = ctx.request_id, error = %why, "records withheld: audit log unavailable");
    settled.into_iter().map(Sealed::withhold).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use xgate_audit::Filter;

    fn ctx(seal_by: Instant) -> FetchContext {
        FetchContext {
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
            seal_by,
            records_as_json: false,
            detail: String::new(),
        }
    }

    fn settled(index: usize, record_type: &str, outcome: Outcome) -> Settled {
        Settled {
            index,
            record_type: record_type.into(),
            department: "d".into(),
            view: "full".into(),
            policy_set_version: "v".into(),
            latency_us: 1,
            origin: None,
            outcome,
        }
    }

    async fn log(dir: &tempfile::TempDir) -> AuditLog {
        let url = format!("sqlite:{}", dir.path().join("a.db").display());
        AuditLog::open(
            &url,
            xgate_audit::Keys::generate().expect("keys"),
            xgate_audit::Options::default(),
        )
        .await
        .expect("open")
    }

    fn denied() -> Outcome {
        Outcome::Denied {
            policy_ids: vec![xgate_policy::DEFAULT_DENY.into()],
            policy_set_version: "v".into(),
            reasons: Vec::new(),
        }
    }

    fn invalid() -> Outcome {
        Outcome::Invalid {
            permit: None,
            why: "unknown record type".into(),
        }
    }

    #[tokio::test]
    async fn seal_logs_the_outcomes_decision_and_withholds_everything_when_the_log_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(&dir).await;
        let by = Instant::now() + Duration::from_secs(5);
        let sealed = seal(
            &log,
            &ctx(by),
            vec![settled(0, "t", invalid()), settled(1, "d", denied())],
        )
        .await;
        assert_eq!(sealed.len(), 2);
        assert!(sealed.iter().all(|s| s.receipt().is_some()));
        let filter = Filter {
            kind: Some(xgate_audit::Kind::Access),
            ..Filter::default()
        };
        let records = log.query(&filter, None, 10).await.expect("query");
        assert_eq!(records.len(), 2);
        // One entry for the answer, one decision per outcome.
        assert_eq!(records[0].entry.index, records[1].entry.index);
        let d: Vec<_> = records.iter().filter_map(|r| r.decision()).collect();
        assert_eq!(d[0].verdict, Verdict::Deny);
        assert_eq!(d[0].status, "INVALID");
        assert_eq!(d[1].verdict, Verdict::Deny);
        assert_eq!(d[1].status, "DENIED");
        if let xgate_audit::Store::Sqlite(pool) = log.store() {
            sqlx::query("CREATE TRIGGER block BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'x'); END")
                .execute(pool)
                .await
                .expect("trigger");
        }
        let sealed = seal(&log, &ctx(by), vec![settled(0, "d", denied())]).await;
        assert!(sealed[0].receipt().is_none());
        let result = RecordResult::from(sealed.into_iter().next().expect("one"));
        assert_eq!(result.status, RecordStatus::Unavailable as i32);
        assert!(result.records.is_empty() && result.value.is_none());
        assert_eq!(result.error, WITHHELD);
    }

    #[tokio::test]
    async fn a_missed_sealing_deadline_withholds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(&dir).await;
        let sealed = seal(&log, &ctx(Instant::now()), vec![settled(0, "d", denied())]).await;
        assert!(sealed[0].receipt().is_none());
        assert_eq!(
            RecordResult::from(sealed.into_iter().next().expect("one")).error,
            WITHHELD
        );
    }
}
