//! Proactive screening ("services looking for people", 免申即享): the
//! `Screening` service answers, for each subject a bureau streams in,
//! whether it qualifies for a screening item (`screening.toml`), from the
//! departments' data and nothing but yes/no.
//!
//! A run is decided once, at its start: the `screen` action on every
//! predicate of the item ([`xgate_policy::PolicySet::decide_screen`]); its
//! permits' `@max_subjects_per_run` and `@daily_quota` bound it. Subjects
//! are then screened in chunks of up to [`CHUNK`] ([`FIRST_CHUNK`] first):
//!
//! 1. each subject is checked (kind, ID) and matched against the run's
//!    earlier subjects by its keyed hash (a duplicate is not asked again);
//! 2. each department holding a predicate's record type is asked once for
//!    the whole chunk (`BatchLookup`, every department at once), the
//!    records are checked against the catalog like a fetch's, and the
//!    predicates evaluated here — records never leave the gateway;
//! 3. one access entry per screened subject goes to the audit log, the
//!    chunk's entries in one append (one commit), under the subject's hash
//!    like any fetch, so the subject's report shows the screening;
//! 4. the chunk's results and the run's cursor are stored together, and
//!    only then sent.
//!
//! So a dropped stream loses nothing: what was sent is stored and resent on
//! resume; what was not is screened when the caller sends it again.

pub mod store;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::Stream;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use xgate_audit::{Decision, NewEntry, Verdict};
use xgate_catalog::ViewOutput;
use xgate_policy::{ScreenDecision, ScreeningItem};
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::screening_server::Screening;
use xgate_proto::v1::{
    BatchLookupRequest, Eligibility, PredicateAnswer, RecordStatus, ScreenPredicate, ScreenRequest,
    ScreenResponse, ScreenResult, ScreenRun, ScreenStart, Subject, TypeAnswer, screen_request,
    screen_response,
};
use xgate_tls::Role as _;
use xgate_tls::role::Requester;

use self::store::{ResultRow, RunRow};
use crate::fetch::{Judged, LOCAL_OFFSET, judge};
use crate::gateway::GatewayState;
use crate::routing::AdapterRoute;

/// Subjects screened, audited and stored together: large enough that a
/// department answers a set-based query and the log commits once for
/// many, small enough that the first results come back at once.
pub const CHUNK: usize = 500;
/// The first chunk of a stream is smaller, so the first results come back
/// within a department round trip and one commit (time to first result),
/// while the rest still go in large chunks.
pub const FIRST_CHUNK: usize = 50;
/// The most subjects in one `ScreenSubjects` message.
pub const MAX_SUBJECTS_PER_MESSAGE: usize = 1_000;
/// How long the departments have for one chunk.
const CHUNK_DEADLINE: Duration = Duration::from_secs(10);

/// The `Screening` gRPC service.
#[derive(Clone)]
pub struct ScreeningService(pub Arc<GatewayState>);

type ScreenStream = Pin<Box<dyn Stream<Item = Result<ScreenResponse, Status>> + Send>>;

/// What every chunk of a run shares.
struct Run {
    state: Arc<GatewayState>,
    id: String,
    requester: String,
    trace_id: String,
    item: ScreeningItem,
    decision: ScreenDecision,
    /// `screen:<item>`: the daily count's key in the quota table.
    quota_key: String,
}

#[tonic::async_trait]
impl Screening for ScreeningService {
    type ScreenStream = ScreenStream;

    async fn screen(
        &self,
        request: Request<Streaming<ScreenRequest>>,
    ) -> Result<Response<ScreenStream>, Status> {
        let Requester(requester) = Requester::of(&request, "screen subjects")?;
        let trace_id = crate::audit::trace_id(&request);
        let mut inbound = request.into_inner();
        let start = match inbound.message().await? {
            Some(ScreenRequest {
                body: Some(screen_request::Body::Start(start)),
            }) => start,
            _ => {
                return Err(invalid_argument(&[Violation::new(
                    "start",
                    "the first message must be `start`: an item, or a run to resume",
                )]));
            }
        };
        let state = Arc::clone(&self.0);
        let now = SystemTime::now();
        let existing = resumed_run(&state, &requester, &start).await?;
        let code = existing
            .as_ref()
            .map_or(start.item.as_str(), |r| r.item.as_str())
            .to_owned();
        let policies = state.policies.current();
        let item = policies.screening(&code).cloned().ok_or_else(|| {
            invalid_argument(&[Violation::new(
                "start.item",
                format!("`{code}` is not a screening item of the policy set"),
            )])
        })?;
        let decision = policies.decide_screen(&requester, &code, OffsetDateTime::from(now));
        if !decision.allowed {
            audit_refusal(&state, &requester, &trace_id, &item, &decision).await?;
            let ids: Vec<String> = decision
                .decisions
                .iter()
                .flat_map(|d| d.policy_ids.clone())
                .collect();
            return Err(Status::permission_denied(format!(
                "`{requester}` may not screen with `{code}` (policies: {})",
                ids.join(", ")
            )));
        }
        let run = match existing {
            Some(run) => run,
            None => {
                let run = RunRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    requester: requester.clone(),
                    item: code.clone(),
                    started_at: now,
                    screened: 0,
                    eligible: 0,
                };
                state
                    .store
                    .screening_start(&run)
                    .await
                    .map_err(crate::error::status)?;
                run
            }
        };
        // What was screened before: resent after `after`, and every earlier
        // subject's hash, for duplicates.
        let stored = state
            .store
            .screening_results(&run.id, None)
            .await
            .map_err(crate::error::status)?;
        let after = u64::try_from(start.after).ok();
        let mut seen = HashMap::with_capacity(stored.len());
        let mut resend = Vec::new();
        for (hmac, result) in stored {
            if !hmac.is_empty() {
                seen.entry(hmac).or_insert(result.seq);
            }
            if after.is_none_or(|a| result.seq > a) {
                resend.push(result);
            }
        }
        let quota_key = format!("screen:{code}");
        let left_today = match decision.daily_subjects {
            Some(limit) => {
                let used = state
                    .store
                    .units_used(&requester, &quota_key, &local_day())
                    .await
                    .map_err(crate::error::status)?;
                u64::from(limit).saturating_sub(used)
            }
            None => 0,
        };
        let header = ScreenRun {
            run_id: run.id.clone(),
            item: code.clone(),
            next: run.screened,
            max_subjects: decision.max_subjects_per_run.map_or(0, u64::from),
            left_today,
            subject_kind: xgate_proto::kind::to_proto(item.subject_kind) as i32,
            predicates: item
                .conditions
                .iter()
                .map(|c| ScreenPredicate {
                    record_type: c.record_type.clone(),
                    view: c.view.clone(),
                    negated: c.negate,
                    department: c.department.clone(),
                })
                .collect(),
        };
        tracing::info!(
            run = %run.id,
            requester,
            item = code,
            resumed_at = run.screened,
            "screening run open"
        );
        let (tx, rx) = mpsc::channel(2 * CHUNK);
        let next = run.screened;
        let run = Arc::new(Run {
            state,
            id: run.id,
            requester,
            trace_id,
            item,
            decision,
            quota_key,
        });
        tokio::spawn(async move {
            let first = std::iter::once(screen_response::Body::Run(header))
                .chain(resend.into_iter().map(screen_response::Body::Result));
            for body in first {
                let message = ScreenResponse { body: Some(body) };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            serve(run, inbound, tx, next, seen).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The run `start` resumes, checked to be the caller's; `None` for a new run.
async fn resumed_run(
    state: &GatewayState,
    requester: &str,
    start: &ScreenStart,
) -> Result<Option<RunRow>, Status> {
    if start.run_id.is_empty() {
        if start.item.is_empty() {
            return Err(invalid_argument(&[Violation::new(
                "start.item",
                "name a screening item, or a run to resume",
            )]));
        }
        return Ok(None);
    }
    let run = state
        .store
        .screening_run(&start.run_id)
        .await
        .map_err(crate::error::status)?
        .ok_or_else(|| Status::not_found(format!("no screening run `{}`", start.run_id)))?;
    if run.requester != requester {
        return Err(Status::permission_denied(format!(
            "run `{}` is another requester's",
            run.id
        )));
    }
    if !start.item.is_empty() && start.item != run.item {
        return Err(invalid_argument(&[Violation::new(
            "start.item",
            format!(
                "run `{}` screens `{}`, not `{}`",
                run.id, run.item, start.item
            ),
        )]));
    }
    Ok(Some(run))
}

/// The local day quotas count by.
fn local_day() -> String {
    OffsetDateTime::now_utc()
        .to_offset(LOCAL_OFFSET)
        .date()
        .to_string()
}

/// Reads the caller's subjects and answers them chunk by chunk until the
/// caller is done, hangs up, or a limit is reached.
async fn serve(
    run: Arc<Run>,
    mut inbound: Streaming<ScreenRequest>,
    tx: mpsc::Sender<Result<ScreenResponse, Status>>,
    mut next: u64,
    mut seen: HashMap<String, u64>,
) {
    let fail = |status: Status| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Err(status)).await;
        }
    };
    let mut answered_any = false;
    loop {
        let subjects = match inbound.message().await {
            Ok(Some(ScreenRequest {
                body: Some(screen_request::Body::Subjects(s)),
            })) => s.subjects,
            Ok(Some(ScreenRequest {
                body: Some(screen_request::Body::Start(_)),
            })) => {
                fail(invalid_argument(&[Violation::new(
                    "start",
                    "only the first message may be `start`",
                )]))
                .await;
                return;
            }
            Ok(Some(ScreenRequest { body: None })) => continue,
            Ok(None) => break,
            Err(e) => {
                // The caller hung up: what was sent is stored; it resumes.
                tracing::info!(run = %run.id, next, error = %e, "screening stream ended by the caller");
                return;
            }
        };
        if subjects.len() > MAX_SUBJECTS_PER_MESSAGE {
            fail(invalid_argument(&[Violation::new(
                "subjects",
                format!(
                    "{} subjects in one message; at most {MAX_SUBJECTS_PER_MESSAGE}",
                    subjects.len()
                ),
            )]))
            .await;
            return;
        }
        let mut rest = subjects.as_slice();
        while !rest.is_empty() {
            let size = if answered_any { CHUNK } else { FIRST_CHUNK };
            let (chunk, after) = rest.split_at(size.min(rest.len()));
            rest = after;
            answered_any = true;
            let room = run
                .decision
                .max_subjects_per_run
                .map_or(u64::MAX, |m| u64::from(m).saturating_sub(next));
            let mut take = usize::try_from(room).unwrap_or(usize::MAX).min(chunk.len());
            if let Some(limit) = run.decision.daily_subjects {
                let want = u32::try_from(take).unwrap_or(u32::MAX);
                match run
                    .state
                    .store
                    .take_units(&run.requester, &run.quota_key, &local_day(), want, limit)
                    .await
                {
                    Ok(granted) => take = take.min(usize::try_from(granted).unwrap_or(0)),
                    Err(e) => {
                        fail(crate::error::status(e)).await;
                        return;
                    }
                }
            }
            let part = chunk.get(..take).unwrap_or_default();
            if !part.is_empty() {
                match screen_chunk(&run, next, part, &mut seen).await {
                    Ok(results) => {
                        next += part.len() as u64;
                        for result in results {
                            let message = ScreenResponse {
                                body: Some(screen_response::Body::Result(result)),
                            };
                            if tx.send(Ok(message)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(status) => {
                        fail(status).await;
                        return;
                    }
                }
            }
            if take < chunk.len() {
                let why = if room <= take as u64 {
                    format!(
                        "the run reached its limit of {} subjects (@max_subjects_per_run)",
                        run.decision.max_subjects_per_run.unwrap_or_default()
                    )
                } else {
                    format!(
                        "`{}` reached its daily limit of {} subjects for `{}` (@daily_quota)",
                        run.requester,
                        run.decision.daily_subjects.unwrap_or_default(),
                        run.item.code
                    )
                };
                fail(Status::resource_exhausted(format!(
                    "{why}; {next} subjects of run {} screened",
                    run.id
                )))
                .await;
                return;
            }
        }
    }
    tracing::info!(run = %run.id, screened = next, "screening run stream done");
}

/// What became of one subject of a chunk before any department is asked.
enum Triage {
    Invalid(String),
    Duplicate(u64),
    Ask { hmac: String },
}

/// One predicate's answer about one subject.
#[derive(Clone, Copy)]
struct Answer {
    status: RecordStatus,
    value: Option<bool>,
}

/// Screens `subjects` (positions `first..`): asks the departments, logs,
/// stores; the results in order.
async fn screen_chunk(
    run: &Run,
    first: u64,
    subjects: &[Subject],
    seen: &mut HashMap<String, u64>,
) -> Result<Vec<ScreenResult>, Status> {
    let state = &run.state;
    let kind = run.item.subject_kind;
    let triage: Vec<Triage> = subjects
        .iter()
        .zip(first..)
        .map(|(subject, seq)| {
            let checked = crate::validate::subject(Some(subject)).and_then(|(k, id)| {
                if k == kind {
                    Ok(id)
                } else {
                    Err(Status::invalid_argument(format!(
                        "a `{}` subject; `{}` screens `{}` subjects",
                        k.as_str(),
                        run.item.code,
                        kind.as_str()
                    )))
                }
            });
            match checked {
                Err(status) => Triage::Invalid(status.message().to_owned()),
                Ok(id) => {
                    let hmac = state.auditor.subject_hmac(kind.as_str(), &id);
                    match seen.get(&hmac) {
                        Some(earlier) => Triage::Duplicate(*earlier),
                        None => {
                            seen.insert(hmac.clone(), seq);
                            Triage::Ask { hmac }
                        }
                    }
                }
            }
        })
        .collect();
    let asked: Vec<(usize, Subject)> = triage
        .iter()
        .zip(subjects)
        .enumerate()
        .filter(|(_, (t, _))| matches!(t, Triage::Ask { .. }))
        .map(|(i, (_, s))| (i, s.clone()))
        .collect();
    let started = Instant::now();
    let answers = ask_departments(run, &asked).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);

    // Evaluate, then log every asked subject's decision before anything is
    // stored or sent.
    let today = OffsetDateTime::now_utc().to_offset(LOCAL_OFFSET).date();
    let mut results = Vec::with_capacity(subjects.len());
    let mut entries = Vec::with_capacity(asked.len());
    let mut eligible = 0u64;
    let mut asked_at = 0usize;
    for ((t, subject), seq) in triage.iter().zip(subjects).zip(first..) {
        let result = match t {
            Triage::Invalid(why) => ScreenResult {
                seq,
                eligibility: Eligibility::InvalidSubject as i32,
                error: why.clone(),
                ..ScreenResult::default()
            },
            Triage::Duplicate(earlier) => ScreenResult {
                seq,
                eligibility: Eligibility::Duplicate as i32,
                duplicate_of: *earlier,
                ..ScreenResult::default()
            },
            Triage::Ask { hmac } => {
                let per_condition: Vec<Answer> = run
                    .item
                    .conditions
                    .iter()
                    .map(|c| {
                        let answer = answers
                            .get(&c.record_type)
                            .and_then(|by_subject| by_subject.get(asked_at))
                            .cloned()
                            .flatten();
                        evaluate(state, c, answer, &subject.id, today)
                    })
                    .collect();
                asked_at += 1;
                let values: Vec<Option<bool>> = per_condition.iter().map(|a| a.value).collect();
                let eligibility = match run.item.eligible(&values) {
                    Some(true) => Eligibility::Eligible,
                    Some(false) => Eligibility::NotEligible,
                    None => Eligibility::Unknown,
                };
                if eligibility == Eligibility::Eligible {
                    eligible += 1;
                }
                entries.push(entry(
                    run,
                    seq,
                    hmac,
                    &per_condition,
                    eligibility,
                    latency_us,
                ));
                ScreenResult {
                    seq,
                    eligibility: eligibility as i32,
                    predicates: per_condition
                        .iter()
                        .map(|a| PredicateAnswer {
                            status: a.status as i32,
                            value: a.value.unwrap_or(false),
                        })
                        .collect(),
                    ..ScreenResult::default()
                }
            }
        };
        results.push(result);
    }
    state.auditor.append(entries).await.map_err(|e| {
        tracing::error!(run = %run.id, error = %e, "screening chunk not logged; nothing sent");
        Status::unavailable(format!(
            "the audit log cannot be written ({e}); nothing of this chunk was sent: resume the run later"
        ))
    })?;
    let rows: Vec<ResultRow<'_>> = results
        .iter()
        .zip(&triage)
        .map(|(result, t)| ResultRow {
            seq: result.seq,
            subject_hmac: match t {
                Triage::Ask { hmac } => hmac.as_str(),
                _ => "",
            },
            result,
        })
        .collect();
    let saved = state
        .store
        .screening_save(&run.id, &rows, eligible, SystemTime::now())
        .await
        .map_err(crate::error::status)?;
    if !saved {
        return Err(Status::aborted(format!(
            "run {} moved on in another stream; resume it from its cursor",
            run.id
        )));
    }
    Ok(results)
}

/// Every department of the item asked at once, each about all of `asked`:
/// record type -> the answer for each asked subject, in `asked` order
/// (`None`: no answer).
async fn ask_departments(
    run: &Run,
    asked: &[(usize, Subject)],
) -> HashMap<String, Vec<Option<TypeAnswer>>> {
    let mut out: HashMap<String, Vec<Option<TypeAnswer>>> = HashMap::new();
    if asked.is_empty() {
        return out;
    }
    let routes = run.state.routes.load();
    // One call per adapter, for all the item's types it serves.
    let mut calls: Vec<(Arc<AdapterRoute>, Vec<String>)> = Vec::new();
    for c in &run.item.conditions {
        let Some(route) = routes.get(&c.record_type) else {
            continue;
        };
        match calls.iter_mut().find(|(r, _)| Arc::ptr_eq(r, route)) {
            Some((_, types)) if types.contains(&c.record_type) => {}
            Some((_, types)) => types.push(c.record_type.clone()),
            None => calls.push((Arc::clone(route), vec![c.record_type.clone()])),
        }
    }
    let subjects: Vec<Subject> = asked.iter().map(|(_, s)| s.clone()).collect();
    let deadline = Instant::now() + CHUNK_DEADLINE;
    let answered = futures::future::join_all(calls.iter().map(|(route, types)| {
        let request = BatchLookupRequest {
            subjects: subjects.clone(),
            record_types: types.clone(),
            request_id: run.id.clone(),
            purpose: run.item.purpose.clone(),
        };
        async move { route.batch_lookup(request, deadline).await }
    }))
    .await;
    for ((route, types), result) in calls.iter().zip(answered) {
        let by_subject = match result {
            Ok(by_subject) => by_subject,
            Err(e) => {
                tracing::warn!(department = %route.department, error = ?e, "screening: department unavailable for a chunk");
                vec![None; subjects.len()]
            }
        };
        for (position, record_type) in types.iter().enumerate() {
            out.insert(
                record_type.clone(),
                by_subject
                    .iter()
                    .map(|answers| {
                        answers.as_ref().and_then(|a| {
                            // By position, checked by name: an adapter
                            // answering another type is not believed.
                            a.get(position)
                                .filter(|t| &t.record_type == record_type)
                                .cloned()
                        })
                    })
                    .collect(),
            );
        }
    }
    out
}

/// One condition's answer for one subject: its department's records
/// checked like a fetch's, then the predicate evaluated over them.
fn evaluate(
    state: &GatewayState,
    condition: &xgate_policy::Condition,
    answer: Option<TypeAnswer>,
    subject_id: &str,
    today: time::Date,
) -> Answer {
    let unavailable = Answer {
        status: RecordStatus::Unavailable,
        value: None,
    };
    let (Some(answer), Some(rt)) = (answer, state.catalog.record_type(&condition.record_type))
    else {
        return unavailable;
    };
    let Some(view) = rt.view(&condition.view) else {
        return unavailable;
    };
    let (status, records): (RecordStatus, Arc<[serde_json::Value]>) =
        match judge(answer, rt, subject_id) {
            Judged::Records(records) => (RecordStatus::Ok, records),
            Judged::NotFound => (RecordStatus::NotFound, Arc::from(Vec::new())),
            Judged::DepartmentError(_) => return unavailable,
            Judged::Invalid(_) => {
                return Answer {
                    status: RecordStatus::Invalid,
                    value: None,
                };
            }
        };
    match view.apply(&records, &condition.params, today) {
        Ok(ViewOutput::Value(serde_json::Value::Bool(value))) => Answer {
            status,
            value: Some(value),
        },
        // The item's views are predicates with every parameter checked at
        // load; anything else is a catalog bug, reported as INVALID.
        _ => Answer {
            status: RecordStatus::Invalid,
            value: None,
        },
    }
}

fn eligibility_name(e: Eligibility) -> &'static str {
    match e {
        Eligibility::Eligible => "eligible",
        Eligibility::NotEligible => "not eligible",
        Eligibility::Unknown => "unknown",
        Eligibility::InvalidSubject => "invalid subject",
        Eligibility::Duplicate => "duplicate",
        Eligibility::Unspecified => "unspecified",
    }
}

/// The access entry of one screened subject.
fn entry(
    run: &Run,
    seq: u64,
    hmac: &str,
    answers: &[Answer],
    eligibility: Eligibility,
    latency_us: u64,
) -> NewEntry {
    let mut e = NewEntry::access();
    e.request_id = format!("{}/{seq}", run.id);
    e.trace_id.clone_from(&run.trace_id);
    e.requester.clone_from(&run.requester);
    e.purpose.clone_from(&run.item.purpose);
    e.approval_item.clone_from(&run.item.code);
    hmac.clone_into(&mut e.subject_hmac);
    e.policy_set_version = run
        .decision
        .decisions
        .first()
        .map(|d| d.policy_set_version.to_string())
        .unwrap_or_default();
    e.latency_us = latency_us;
    e.detail = json!({
        "screening": {
            "item": run.item.code,
            "run": run.id,
            "seq": seq,
            "eligibility": eligibility_name(eligibility),
        }
    })
    .to_string();
    e.decisions = run
        .item
        .conditions
        .iter()
        .zip(answers)
        .zip(&run.decision.decisions)
        .map(|((c, a), d)| Decision {
            record_type: c.record_type.clone(),
            view: c.view.clone(),
            verdict: Verdict::Permit,
            policy_ids: d.policy_ids.clone(),
            status: xgate_proto::status_name(a.status as i32).into(),
            department: c.department.clone(),
            records_digest: None,
            latency_us,
        })
        .collect();
    e
}

/// A refused run is an access decision too: one entry, no subject, each
/// condition's decision.
async fn audit_refusal(
    state: &GatewayState,
    requester: &str,
    trace_id: &str,
    item: &ScreeningItem,
    decision: &ScreenDecision,
) -> Result<(), Status> {
    let mut e = NewEntry::access();
    e.request_id = uuid::Uuid::now_v7().to_string();
    trace_id.clone_into(&mut e.trace_id);
    requester.clone_into(&mut e.requester);
    e.purpose.clone_from(&item.purpose);
    e.approval_item.clone_from(&item.code);
    e.detail = json!({"screening": {"refused": true}}).to_string();
    e.decisions = item
        .conditions
        .iter()
        .zip(&decision.decisions)
        .map(|(c, d)| Decision {
            record_type: c.record_type.clone(),
            view: c.view.clone(),
            verdict: if d.allowed {
                Verdict::Permit
            } else {
                Verdict::Deny
            },
            policy_ids: d.policy_ids.clone(),
            status: "DENIED".into(),
            department: c.department.clone(),
            records_digest: None,
            latency_us: 0,
        })
        .collect();
    state
        .auditor
        .append(vec![e])
        .await
        .map(|_| ())
        .map_err(crate::error::status)
}
