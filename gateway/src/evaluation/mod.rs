//! The `Evaluation` service: ratings of answers and the closed loop for
//! wrong data (report → circulate → dispose → feed back → close).
//!
//! Both are bound to what the gateway itself recorded. A requester names an
//! answer by its audit receipt: the receipt is verified (signature, entry,
//! inclusion) and the entry it names must be an access entry written for
//! this requester; a rating or objection can only concern a record type of
//! that answer (an objection: one that was released, and a field of the
//! view released). The citizen platform names the access by its entry
//! (chain, index, from the subject's report) and proves the subject's
//! presence with a fresh code, spent. Every rating and every transition is
//! an audit event; objections are also written under the subject, so the
//! subject's report shows them.

pub mod scorecard;
pub mod store;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use xgate_audit::{Entry, Kind};
use xgate_catalog::{RecordType, SubjectKind};
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::evaluation_server::Evaluation as EvaluationApi;
use xgate_proto::v1::{
    AuditReceipt, DisposeObjectionRequest, Disposition, FileObjectionRequest,
    ListObjectionsRequest, ListObjectionsResponse, Objection, ObjectionRef, ObjectionState,
    RateRequest, Rating, RatingReason, ScorecardsRequest, ScorecardsResponse, Subject, Verdict,
    WatchObjectionsRequest,
};
use xgate_tls::Identity;
use xgate_tls::role::{Requester, RequesterOrPlatform, Role as _};

use crate::gateway::GatewayState;
use store::{
    ACKNOWLEDGE, CLOSE, DISPOSE, FEED_BACK, ObjectionFilter, ObjectionRow, RatingRow, State,
};

/// The longest free text of a rating.
const MAX_TEXT: usize = 500;
/// How often a watch looks for changes (any replica may have made them).
const WATCH_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct EvaluationService(pub Arc<GatewayState>);

/// An answer as the audit log recorded it.
struct Answer {
    entry: Entry,
}

impl Answer {
    fn decision(&self, record_type: &str) -> Option<&xgate_audit::Decision> {
        self.entry
            .body
            .decisions
            .iter()
            .find(|d| d.record_type == record_type)
    }
}

impl EvaluationService {
    /// The answer a requester's receipt names, verified, and given to `requester`.
    async fn answer_of(
        &self,
        receipt: Option<AuditReceipt>,
        requester: &str,
    ) -> Result<Answer, Status> {
        let receipt = receipt.ok_or_else(|| {
            invalid_argument(&[Violation::new(
                "receipt",
                "is required: the receipt of the answer (FetchResponse.receipt)",
            )])
        })?;
        let receipt = crate::audit::receipt_from_proto(receipt)?;
        let log = &self.0.auditor;
        let trusted = log.trusted().await.map_err(crate::error::status)?;
        let entry = match xgate_audit::verify_receipt(log.store(), &receipt, &trusted).await {
            Ok(report) if report.entry.body.kind == Kind::Access => report.entry,
            Ok(_) => return Err(Status::not_found("the receipt names no access entry")),
            Err(xgate_audit::AuditError::Receipt(reason)) => {
                return Err(Status::with_error_details(
                    Code::InvalidArgument,
                    format!("receipt: not an answer of this gateway: {reason}"),
                    ErrorDetails::with_bad_request_violation("receipt", reason),
                ));
            }
            Err(e) => return Err(crate::error::status(e)),
        };
        if entry.body.requester != requester {
            return Err(Status::permission_denied(
                "that answer was given to another requester: only its receiver may rate it or object to it",
            ));
        }
        Ok(Answer { entry })
    }

    /// Access entry `index` of `chain`.
    async fn entry(&self, chain: &str, index: u64) -> Result<Entry, Status> {
        let entry = xgate_audit::entry_at(self.0.auditor.store(), chain, index)
            .await
            .map_err(crate::error::status)?
            .filter(|e| e.body.kind == Kind::Access)
            .ok_or_else(|| {
                Status::not_found(format!("no access entry {index} in chain `{chain}`"))
            })?;
        Ok(entry)
    }

    /// Writes an evaluation event; an unlogged change is refused (the store
    /// change stands, the caller is told so).
    async fn audit(
        &self,
        event: &str,
        actor: &str,
        subject_hmac: &str,
        detail: serde_json::Value,
    ) -> Result<(), Status> {
        crate::audit::subject_event(
            &self.0.auditor,
            crate::audit::SubjectEvent {
                event,
                actor: actor.to_owned(),
                subject_hmac,
                purpose: "",
                detail,
            },
        )
        .await
    }

    async fn audit_objection(
        &self,
        event: &str,
        actor: &str,
        o: &ObjectionRow,
    ) -> Result<(), Status> {
        let hmac = self.0.auditor.subject_hmac(&o.subject_kind, &o.subject_id);
        self.audit(
            event,
            actor,
            &hmac,
            serde_json::json!({
                "objection": o.id,
                "state": o.state.as_str(),
                "request_id": o.request_id,
                "record_type": o.record_type,
                "department": o.department,
                "field_path": o.field_path,
                "disposition": o.disposition,
            }),
        )
        .await
    }

    /// The objection `id`, for a department that must own it.
    async fn owned(&self, id: &str, department: &str) -> Result<ObjectionRow, Status> {
        let o = self.find(id).await?;
        if o.department != department {
            return Err(Status::permission_denied(format!(
                "objection {id} is against `{}` data; department `{department}` may not handle it",
                o.department
            )));
        }
        Ok(o)
    }

    async fn find(&self, id: &str) -> Result<ObjectionRow, Status> {
        self.0
            .store
            .objection(id)
            .await
            .map_err(crate::error::status)?
            .ok_or_else(|| Status::not_found(format!("no objection `{id}`")))
    }

    /// Moves `o` along a transition; FAILED_PRECONDITION naming its state
    /// when it is elsewhere (another caller or replica moved it first).
    async fn step(
        &self,
        o: &ObjectionRow,
        t: store::Transition,
        disposition: Option<(&str, &str)>,
    ) -> Result<ObjectionRow, Status> {
        let moved = self
            .0
            .store
            .transition(&o.id, t, SystemTime::now(), disposition)
            .await
            .map_err(crate::error::status)?;
        match moved {
            Some(o) => Ok(o),
            None => {
                let now = self.find(&o.id).await?;
                Err(Status::failed_precondition(format!(
                    "objection {} is {}; it must be {} to become {}",
                    o.id,
                    now.state.as_str(),
                    t.from
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    t.to.as_str()
                )))
            }
        }
    }

    /// The filer reads `rows`: every disposed one has now been fed back.
    async fn feed_back(
        &self,
        actor: &str,
        rows: Vec<ObjectionRow>,
    ) -> Result<Vec<ObjectionRow>, Status> {
        let mut out = Vec::with_capacity(rows.len());
        for o in rows {
            if o.state == State::Disposed
                && let Some(moved) = self
                    .0
                    .store
                    .transition(&o.id, FEED_BACK, SystemTime::now(), None)
                    .await
                    .map_err(crate::error::status)?
            {
                self.audit_objection("objection_fed_back", actor, &moved)
                    .await?;
                out.push(moved);
                continue;
            }
            out.push(o);
        }
        Ok(out)
    }

    fn catalog_type(&self, record_type: &str) -> Result<&RecordType, Status> {
        self.0.catalog.record_type(record_type).ok_or_else(|| {
            invalid_argument(&[Violation::new(
                "record_type",
                format!("`{record_type}` is not in the catalog"),
            )])
        })
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Objection, Status>> + Send>>;

#[tonic::async_trait]
impl EvaluationApi for EvaluationService {
    async fn rate(&self, request: Request<RateRequest>) -> Result<Response<Rating>, Status> {
        let Requester(requester) = Requester::of(&request, "rate an answer")?;
        let r = request.into_inner();
        let verdict = Verdict::try_from(r.verdict).unwrap_or(Verdict::Unspecified);
        let reasons: Vec<RatingReason> = r
            .reasons
            .iter()
            .map(|x| RatingReason::try_from(*x).unwrap_or(RatingReason::Unspecified))
            .collect();
        let mut violations = Vec::new();
        match verdict {
            Verdict::Unspecified => {
                violations.push(Violation::new("verdict", "is required (GOOD or BAD)"));
            }
            Verdict::Bad if reasons.is_empty() => violations.push(Violation::new(
                "reasons",
                "a bad rating names why (WRONG_DATA, OUTDATED, INCOMPLETE, SLOW, UNAVAILABLE)",
            )),
            Verdict::Good if !reasons.is_empty() => {
                violations.push(Violation::new("reasons", "a good rating names no reasons"));
            }
            _ => {}
        }
        if reasons.contains(&RatingReason::Unspecified) {
            violations.push(Violation::new("reasons", "holds an unknown reason"));
        }
        if r.text.chars().count() > MAX_TEXT {
            violations.push(Violation::new(
                "text",
                format!("is longer than {MAX_TEXT} characters"),
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        let answer = self.answer_of(r.receipt, &requester).await?;
        let decision = answer.decision(&r.record_type).ok_or_else(|| {
            invalid_argument(&[Violation::new(
                "record_type",
                format!("the answer has no result for `{}`", r.record_type),
            )])
        })?;
        let row = RatingRow {
            id: uuid::Uuid::now_v7().to_string(),
            requester: requester.clone(),
            request_id: answer.entry.body.request_id.clone(),
            chain: answer.entry.chain.clone(),
            entry_index: answer.entry.index,
            record_type: r.record_type.clone(),
            department: decision.department.clone(),
            good: verdict == Verdict::Good,
            reasons: reasons
                .iter()
                .map(|x| {
                    x.as_str_name()
                        .trim_start_matches("RATING_REASON_")
                        .to_owned()
                })
                .collect(),
            text: r.text.clone(),
            rated_at: SystemTime::now(),
        };
        let inserted = self
            .0
            .store
            .rate(&row)
            .await
            .map_err(crate::error::status)?;
        if !inserted {
            return Err(Status::already_exists(format!(
                "`{}` of request {} was rated before: an answer is rated once per record type",
                row.record_type, row.request_id
            )));
        }
        self.audit(
            "answer_rated",
            &Identity::Requester(requester).uri(),
            "",
            serde_json::json!({
                "rating": row.id,
                "request_id": row.request_id,
                "chain": row.chain,
                "index": row.entry_index,
                "record_type": row.record_type,
                "department": row.department,
                "verdict": if row.good { "good" } else { "bad" },
                "reasons": row.reasons,
            }),
        )
        .await?;
        Ok(Response::new(rating_to_proto(&row, verdict, reasons)))
    }

    async fn file(
        &self,
        request: Request<FileObjectionRequest>,
    ) -> Result<Response<Objection>, Status> {
        let caller = RequesterOrPlatform::of(&request, "file an objection")?;
        let r = request.into_inner();
        let rt = self.catalog_type(&r.record_type)?.clone();
        let mut violations = Vec::new();
        let believed = r.believed_value.as_ref().map(xgate_proto::json::from_value);
        match &believed {
            None => violations.push(Violation::new(
                "believed_value",
                "is required: the value believed correct",
            )),
            Some(value) => {
                if let Err(why) = rt.validate_field(&r.field_path, value) {
                    let field = if rt.schema["properties"].get(&r.field_path).is_none() {
                        "field_path"
                    } else {
                        "believed_value"
                    };
                    violations.push(Violation::new(field, why));
                }
            }
        }
        if r.evidence_ref.trim().is_empty() {
            violations.push(Violation::new(
                "evidence_ref",
                "is required: where the evidence of the correct value is",
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        // The answer, and the subject it was about.
        let (entry, subject_kind, subject_id) = match &caller {
            RequesterOrPlatform::Requester(requester) => {
                let answer = self.answer_of(r.receipt, requester).await?;
                let (kind, id) = crate::validate::subject(r.subject.as_ref())?;
                let hmac = self.0.auditor.subject_hmac(kind.as_str(), &id);
                if hmac != answer.entry.body.subject_hmac {
                    return Err(invalid_argument(&[Violation::new(
                        "subject",
                        "is not the subject of that answer",
                    )]));
                }
                (answer.entry, kind, id)
            }
            RequesterOrPlatform::Platform(_) => {
                let code =
                    crate::codes::present(&self.0.codes, &self.0.store, &r.subject_code, None)
                        .await?;
                let entry = self.entry(&r.entry_chain, r.entry_index).await?;
                let hmac = self
                    .0
                    .auditor
                    .subject_hmac(code.subject_kind.as_str(), &code.subject_id);
                if hmac != entry.body.subject_hmac {
                    return Err(Status::permission_denied(
                        "that access was not about the subject of the code",
                    ));
                }
                (entry, code.subject_kind, code.subject_id)
            }
        };
        let answer = Answer { entry };
        let released = answer
            .decision(&r.record_type)
            .filter(|d| d.status == "OK" && d.records_digest.is_some());
        let Some(decision) = released else {
            return Err(Status::failed_precondition(format!(
                "`{}` was not released in request {}: an objection is against a record received",
                r.record_type, answer.entry.body.request_id
            )));
        };
        // Only a field the view released: the filer cannot have seen others.
        let view_fields = rt.view(&decision.view).and_then(|v| match &v.kind {
            xgate_catalog::views::ViewKind::Fields(f) => Some(f.clone()),
            xgate_catalog::views::ViewKind::Predicate(_) => None,
        });
        if !view_fields.is_some_and(|f| f.contains(&r.field_path)) {
            return Err(invalid_argument(&[Violation::new(
                "field_path",
                format!(
                    "`{}` was not released: the `{}` view of `{}` does not show it",
                    r.field_path, decision.view, r.record_type
                ),
            )]));
        }
        let now = SystemTime::now();
        let row = ObjectionRow {
            id: uuid::Uuid::now_v7().to_string(),
            state: State::Reported,
            filed_by: caller.uri(),
            request_id: answer.entry.body.request_id.clone(),
            chain: answer.entry.chain.clone(),
            entry_index: answer.entry.index,
            subject_kind: subject_kind.as_str().to_owned(),
            subject_id,
            record_type: r.record_type.clone(),
            department: rt.department.clone(),
            field_path: r.field_path.clone(),
            believed_value: believed.unwrap_or_default(),
            evidence_ref: r.evidence_ref.trim().to_owned(),
            disposition: String::new(),
            disposal_reason: String::new(),
            filed_at: now,
            due_at: add_working_days(now, rt.objection_due_working_days),
            acknowledged_at: None,
            disposed_at: None,
            fed_back_at: None,
            closed_at: None,
            changed_at: now,
        };
        self.0
            .store
            .file_objection(&row)
            .await
            .map_err(crate::error::status)?;
        self.audit_objection("objection_filed", &caller.uri(), &row)
            .await?;
        Ok(Response::new(objection_to_proto(&row, now)))
    }

    async fn list(
        &self,
        request: Request<ListObjectionsRequest>,
    ) -> Result<Response<ListObjectionsResponse>, Status> {
        let identity = xgate_tls::peer_identity(&request)?;
        let r = request.into_inner();
        let mut filter = ObjectionFilter {
            id: (!r.id.is_empty()).then(|| r.id.clone()),
            ..ObjectionFilter::default()
        };
        let filer = match &identity {
            Identity::Requester(_) | Identity::Platform(_) => {
                filter.filed_by = Some(identity.uri());
                true
            }
            Identity::Department(d) => {
                filter.department = Some(d.clone());
                false
            }
            Identity::Auditor(_) | Identity::Admin(_) => false,
            other => {
                return Err(Status::permission_denied(format!(
                    "`{other}` may not list objections: filers, departments, auditors and admins may"
                )));
            }
        };
        let states: Vec<State> = r
            .states
            .iter()
            .filter_map(|s| state_from_proto(*s))
            .collect();
        let mut rows = self
            .0
            .store
            .objections(&filter)
            .await
            .map_err(crate::error::status)?;
        if filer {
            rows = self.feed_back(&identity.uri(), rows).await?;
        }
        let now = SystemTime::now();
        let objections = rows
            .iter()
            .filter(|o| states.is_empty() || states.contains(&o.state))
            .map(|o| objection_to_proto(o, now))
            .collect();
        Ok(Response::new(ListObjectionsResponse { objections }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchObjectionsRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let caller = RequesterOrPlatform::of(&request, "watch its objections")?;
        let filer = caller.uri();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let service = self.clone();
        tokio::spawn(async move {
            let mut after = -1_i64;
            loop {
                let filter = ObjectionFilter {
                    filed_by: Some(filer.clone()),
                    changed_after: Some(after),
                    ..ObjectionFilter::default()
                };
                let rows = match service.0.store.objections(&filter).await {
                    Ok(rows) => service.feed_back(&filer, rows).await,
                    Err(e) => Err(crate::error::status(e)),
                };
                match rows {
                    Ok(rows) => {
                        let now = SystemTime::now();
                        for o in rows {
                            after = after.max(crate::store::millis(o.changed_at));
                            if tx.send(Ok(objection_to_proto(&o, now))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn acknowledge(
        &self,
        request: Request<ObjectionRef>,
    ) -> Result<Response<Objection>, Status> {
        let xgate_tls::role::Department(department) =
            xgate_tls::role::Department::of(&request, "acknowledge an objection")?;
        let o = self.owned(&request.get_ref().id, &department).await?;
        let moved = self.step(&o, ACKNOWLEDGE, None).await?;
        let actor = Identity::Department(department).uri();
        self.audit_objection("objection_acknowledged", &actor, &moved)
            .await?;
        Ok(Response::new(objection_to_proto(&moved, SystemTime::now())))
    }

    async fn dispose(
        &self,
        request: Request<DisposeObjectionRequest>,
    ) -> Result<Response<Objection>, Status> {
        let xgate_tls::role::Department(department) =
            xgate_tls::role::Department::of(&request, "dispose of an objection")?;
        let r = request.into_inner();
        let disposition = match Disposition::try_from(r.disposition) {
            Ok(Disposition::Corrected) => "corrected",
            Ok(Disposition::Rejected) => "rejected",
            _ => {
                return Err(invalid_argument(&[Violation::new(
                    "disposition",
                    "is required (CORRECTED or REJECTED)",
                )]));
            }
        };
        if r.reason.trim().is_empty() {
            return Err(invalid_argument(&[Violation::new(
                "reason",
                "is required: what was corrected, or why the record stands",
            )]));
        }
        let o = self.owned(&r.id, &department).await?;
        let moved = self
            .step(&o, DISPOSE, Some((disposition, r.reason.trim())))
            .await?;
        if disposition == "corrected"
            && let Some(kind) = SubjectKind::parse(&moved.subject_kind)
        {
            // The department fixed the record: the next fetch, through any
            // replica, must see it.
            self.0
                .cache
                .forget_subject(kind, &moved.subject_id, &moved.record_type)
                .await;
            self.0
                .store
                .announce_correction(&moved.subject_kind, &moved.subject_id, &moved.record_type)
                .await
                .map_err(crate::error::status)?;
        }
        let actor = Identity::Department(department).uri();
        self.audit_objection("objection_disposed", &actor, &moved)
            .await?;
        Ok(Response::new(objection_to_proto(&moved, SystemTime::now())))
    }

    async fn scorecards(
        &self,
        request: Request<ScorecardsRequest>,
    ) -> Result<Response<ScorecardsResponse>, Status> {
        let identity = xgate_tls::peer_identity(&request)?;
        let r = request.into_inner();
        let department = match &identity {
            Identity::Department(d) if r.department.is_empty() || r.department == *d => d.clone(),
            Identity::Department(d) => {
                return Err(Status::permission_denied(format!(
                    "department `{d}` sees its own scorecard, not `{}`'s",
                    r.department
                )));
            }
            Identity::Auditor(_) | Identity::Admin(_) => r.department.clone(),
            other => {
                return Err(Status::permission_denied(format!(
                    "`{other}` may not read scorecards: departments (their own), auditors and admins may"
                )));
            }
        };
        if !department.is_empty() && self.0.catalog.department(&department).is_none() {
            return Err(invalid_argument(&[Violation::new(
                "department",
                format!("`{department}` is not a department of the catalog"),
            )]));
        }
        let window = match r.window_days {
            0 | 7 => 7,
            30 => 30,
            other => {
                return Err(invalid_argument(&[Violation::new(
                    "window_days",
                    format!("is 7 or 30, not {other}"),
                )]));
            }
        };
        let now = SystemTime::now();
        // Whole days: today and the window's other days before it.
        let now_us = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let since_day = xgate_audit::rollup::day_of(now_us) - (i64::from(window) - 1);
        let since = std::time::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(since_day).unwrap_or(0) * 86_400);
        let daily = self
            .0
            .auditor
            .store()
            .daily_counts(&department, since_day)
            .await
            .map_err(crate::error::status)?;
        let ratings = self
            .0
            .store
            .rating_counts(&department, since)
            .await
            .map_err(crate::error::status)?;
        let objections = self
            .0
            .store
            .objections(&ObjectionFilter {
                department: (!department.is_empty()).then(|| department.clone()),
                ..ObjectionFilter::default()
            })
            .await
            .map_err(crate::error::status)?;
        let inputs = scorecard::Inputs {
            daily,
            ratings,
            objections,
        };
        Ok(Response::new(ScorecardsResponse {
            window_days: window,
            departments: scorecard::scorecards(&inputs, since, now),
        }))
    }

    async fn close(&self, request: Request<ObjectionRef>) -> Result<Response<Objection>, Status> {
        let caller = RequesterOrPlatform::of(&request, "close its objection")?;
        let o = self.find(&request.get_ref().id).await?;
        if o.filed_by != caller.uri() {
            return Err(Status::permission_denied(
                "only the filer may close an objection",
            ));
        }
        let moved = self.step(&o, CLOSE, None).await?;
        self.audit_objection("objection_closed", &caller.uri(), &moved)
            .await?;
        Ok(Response::new(objection_to_proto(&moved, SystemTime::now())))
    }
}

/// `days` working days (Monday to Friday; public holidays are not known
/// here) after `from`.
pub fn add_working_days(from: SystemTime, days: u32) -> SystemTime {
    const DAY: Duration = Duration::from_secs(86_400);
    let mut at = time::OffsetDateTime::from(from);
    let mut left = days;
    while left > 0 {
        at += DAY;
        if !matches!(
            at.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        ) {
            left -= 1;
        }
    }
    at.into()
}

fn state_from_proto(s: i32) -> Option<State> {
    match ObjectionState::try_from(s).ok()? {
        ObjectionState::Reported => Some(State::Reported),
        ObjectionState::Circulated => Some(State::Circulated),
        ObjectionState::Disposed => Some(State::Disposed),
        ObjectionState::FedBack => Some(State::FedBack),
        ObjectionState::Closed => Some(State::Closed),
        ObjectionState::Unspecified => None,
    }
}

fn state_to_proto(s: State) -> ObjectionState {
    match s {
        State::Reported => ObjectionState::Reported,
        State::Circulated => ObjectionState::Circulated,
        State::Disposed => ObjectionState::Disposed,
        State::FedBack => ObjectionState::FedBack,
        State::Closed => ObjectionState::Closed,
    }
}

fn rating_to_proto(r: &RatingRow, verdict: Verdict, reasons: Vec<RatingReason>) -> Rating {
    Rating {
        id: r.id.clone(),
        requester: r.requester.clone(),
        request_id: r.request_id.clone(),
        chain: r.chain.clone(),
        index: r.entry_index,
        record_type: r.record_type.clone(),
        department: r.department.clone(),
        verdict: verdict as i32,
        reasons: reasons.into_iter().map(|x| x as i32).collect(),
        text: r.text.clone(),
        rated_at: Some(r.rated_at.into()),
    }
}

/// The wire form; `overdue` as of `now`.
pub fn objection_to_proto(o: &ObjectionRow, now: SystemTime) -> Objection {
    Objection {
        id: o.id.clone(),
        state: state_to_proto(o.state) as i32,
        filed_by: o.filed_by.clone(),
        request_id: o.request_id.clone(),
        subject: SubjectKind::parse(&o.subject_kind).map(|kind| Subject {
            kind: xgate_proto::kind::to_proto(kind) as i32,
            id: o.subject_id.clone(),
        }),
        record_type: o.record_type.clone(),
        department: o.department.clone(),
        field_path: o.field_path.clone(),
        believed_value: Some(xgate_proto::json::to_value(o.believed_value.clone())),
        evidence_ref: o.evidence_ref.clone(),
        disposition: match o.disposition.as_str() {
            "corrected" => Disposition::Corrected,
            "rejected" => Disposition::Rejected,
            _ => Disposition::Unspecified,
        } as i32,
        disposal_reason: o.disposal_reason.clone(),
        filed_at: Some(o.filed_at.into()),
        due_at: Some(o.due_at.into()),
        overdue: o.state.is_open() && now > o.due_at,
        acknowledged_at: o.acknowledged_at.map(Into::into),
        disposed_at: o.disposed_at.map(Into::into),
        fed_back_at: o.fed_back_at.map(Into::into),
        closed_at: o.closed_at.map(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-12-04 12:00 UTC + 5 working days = Friday 2026-12-11.
        let friday = time::macros::datetime!(2026-12-04 12:00 UTC);
        let due = time::OffsetDateTime::from(add_working_days(friday.into(), 5));
        assert_eq!(due, time::macros::datetime!(2026-12-11 12:00 UTC));
        // Saturday + 1 working day = Monday.
        let saturday = time::macros::datetime!(2026-12-05 09:00 UTC);
        let due = time::OffsetDateTime::from(add_working_days(saturday.into(), 1));
        assert_eq!(due, time::macros::datetime!(2026-12-07 09:00 UTC));
        assert_eq!(add_working_days(friday.into(), 0), SystemTime::from(friday));
    }

    #[test]
    fn states_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(state_from_proto(state_to_proto(s) as i32), Some(s));
        }
        assert!(State::Reported.is_open() && State::Circulated.is_open());
        assert!(!State::Disposed.is_open());
    }
}
