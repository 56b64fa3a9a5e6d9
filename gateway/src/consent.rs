//! The `Consent` service: the subject's consents to share CONDITIONAL
//! record types, recorded in the gateway's store (so every replica sees
//! them) and written to the audit log under the subject.
//!
//! Two callers. An approval system (requester certificate) proves the
//! subject's presence with a fresh subject code — spent like a fetch's — and
//! grants, lists and revokes only consents given to itself. The citizen
//! platform (platform certificate) acts for the subject signed in to it,
//! for any grantee, with a reference to the signed form as evidence.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tonic::{Request, Response, Status};
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::consent_server::Consent as ConsentApi;
use xgate_proto::v1::{
    ConsentRecord, GrantConsentRequest, ListConsentsRequest, ListConsentsResponse,
    RevokeConsentRequest, Subject,
};
use xgate_tls::role::{RequesterOrPlatform, Role as _};

use crate::gateway::GatewayState;
use crate::store::Consent;

/// The longest a consent may run.
const MAX_VALIDITY: Duration = Duration::from_secs(366 * 24 * 3600);

/// Who is calling: an approval system for itself, or the citizen platform
/// for its signed-in subject.
type Caller = RequesterOrPlatform;

/// The subject a call is about: from a requester's code (verified, in
/// scope for the requester, spent) or the platform's `subject`.
struct Subjected {
    hmac: String,
    /// `code:<issuer>:<nonce>` for a requester's code.
    evidence: Option<String>,
}

#[derive(Clone)]
pub struct ConsentService(pub Arc<GatewayState>);

impl ConsentService {
    async fn subject(
        &self,
        caller: &Caller,
        code: &str,
        subject: Option<Subject>,
    ) -> Result<Subjected, Status> {
        let state = &self.0;
        match caller {
            Caller::Requester(requester) => {
                let code = crate::codes::present(&state.codes, &state.store, code, Some(requester))
                    .await?;
                Ok(Subjected {
                    hmac: state
                        .auditor
                        .subject_hmac(code.subject_kind.as_str(), &code.subject_id),
                    evidence: Some(format!("code:{}:{}", code.issuer, code.nonce_hex())),
                })
            }
            Caller::Platform(_) => {
                let (kind, id) = crate::validate::subject(subject.as_ref())?;
                Ok(Subjected {
                    hmac: state.auditor.subject_hmac(kind.as_str(), &id),
                    evidence: None,
                })
            }
        }
    }

    /// Writes a consent event under the subject; an unlogged change is
    /// refused (the store change stands, the caller is told to retry).
    async fn audit(&self, event: &str, caller: &Caller, c: &Consent) -> Result<(), Status> {
        crate::audit::subject_event(
            &self.0.auditor,
            crate::audit::SubjectEvent {
                event,
                actor: caller.uri(),
                subject_hmac: &c.subject_hmac,
                purpose: &c.purpose,
                detail: serde_json::json!({
                    "consent": c.id,
                    "grantee": c.grantee,
                    "purpose": c.purpose,
                    "record_types": c.record_types,
                    "approval_item": c.approval_item,
                    "evidence": c.evidence,
                }),
            },
        )
        .await
    }
}

fn to_proto(c: &Consent) -> ConsentRecord {
    ConsentRecord {
        id: c.id.clone(),
        subject_hmac: c.subject_hmac.clone(),
        grantee: c.grantee.clone(),
        purpose: c.purpose.clone(),
        record_types: c.record_types.clone(),
        approval_item: c.approval_item.clone(),
        granted_at: Some(c.granted_at.into()),
        valid_until: Some(c.valid_until.into()),
        revoked_at: c.revoked_at.map(Into::into),
        evidence: c.evidence.clone(),
        granted_by: c.granted_by.clone(),
    }
}

#[tonic::async_trait]
impl ConsentApi for ConsentService {
    async fn grant(
        &self,
        request: Request<GrantConsentRequest>,
    ) -> Result<Response<ConsentRecord>, Status> {
        let caller = Caller::of(&request, "manage consents")?;
        let r = request.into_inner();
        let policies = self.0.policies.current();
        let mut violations = Vec::new();
        let grantee = match (&caller, r.grantee.as_str()) {
            (Caller::Requester(me), "") => me.clone(),
            (Caller::Requester(me), g) if g == me => me.clone(),
            (Caller::Requester(_), g) => {
                violations.push(Violation::new(
                    "grantee",
                    format!("an approval system may grant only to itself, not `{g}`"),
                ));
                String::new()
            }
            (Caller::Platform(_), "") => {
                violations.push(Violation::new("grantee", "is required"));
                String::new()
            }
            (Caller::Platform(_), g) => {
                let known = match g.strip_prefix("group:") {
                    Some(group) => policies
                        .requesters()
                        .iter()
                        .any(|q| q.groups.iter().any(|x| x == group)),
                    None => policies.requester(g).is_some(),
                };
                if !known {
                    violations.push(Violation::new(
                        "grantee",
                        format!("`{g}` is no requester or `group:` of the policy set"),
                    ));
                }
                g.to_owned()
            }
        };
        if policies.purpose(&r.purpose).is_none() {
            violations.push(Violation::new(
                "purpose",
                format!("`{}` is not a purpose of the policy set", r.purpose),
            ));
        }
        let mut record_types = r.record_types.clone();
        if !r.approval_item.is_empty() {
            match policies.item(&r.approval_item) {
                None => violations.push(Violation::new(
                    "approval_item",
                    format!("`{}` is not an approval item", r.approval_item),
                )),
                Some(item) if record_types.is_empty() => {
                    record_types = item.entries.iter().map(|e| e.record_type.clone()).collect();
                    record_types.dedup();
                }
                Some(_) => {}
            }
        }
        if record_types.is_empty() {
            violations.push(Violation::new(
                "record_types",
                "name the record types (or an approval item)",
            ));
        }
        for (i, t) in record_types.iter().enumerate() {
            if self.0.catalog.record_type(t).is_none() {
                violations.push(Violation::new(
                    format!("record_types[{i}]"),
                    format!("`{t}` is not in the catalog"),
                ));
            }
        }
        let now = SystemTime::now();
        let valid_until = r
            .valid_until
            .and_then(|t| SystemTime::try_from(t).ok())
            .filter(|t| *t > now && *t <= now + MAX_VALIDITY);
        if valid_until.is_none() {
            violations.push(Violation::new(
                "valid_until",
                "must be in the future and at most a year ahead",
            ));
        }
        if matches!(caller, Caller::Platform(_)) && r.evidence_ref.trim().is_empty() {
            violations.push(Violation::new(
                "evidence_ref",
                "the citizen platform must reference the signed consent form",
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_argument(&violations));
        }
        // Only a valid request spends the subject's code.
        let subject = self.subject(&caller, &r.subject_code, r.subject).await?;
        let consent = Consent {
            id: uuid::Uuid::now_v7().to_string(),
            subject_hmac: subject.hmac,
            grantee,
            purpose: r.purpose,
            record_types,
            approval_item: r.approval_item,
            granted_at: now,
            valid_until: valid_until.unwrap_or(now),
            revoked_at: None,
            evidence: subject
                .evidence
                .unwrap_or_else(|| format!("form:{}", r.evidence_ref.trim())),
            granted_by: caller.uri(),
        };
        self.0
            .store
            .grant_consent(&consent)
            .await
            .map_err(crate::error::status)?;
        self.audit("consent_granted", &caller, &consent).await?;
        Ok(Response::new(to_proto(&consent)))
    }

    async fn revoke(
        &self,
        request: Request<RevokeConsentRequest>,
    ) -> Result<Response<ConsentRecord>, Status> {
        let caller = Caller::of(&request, "manage consents")?;
        let r = request.into_inner();
        let not_found = || Status::not_found(format!("no consent `{}`", r.id));
        let consent = self
            .0
            .store
            .consent(&r.id)
            .await
            .map_err(crate::error::status)?
            .ok_or_else(not_found)?;
        if let Caller::Requester(me) = &caller {
            // The subject's presence, and only a consent given to the caller.
            let subject = self.subject(&caller, &r.subject_code, None).await?;
            if subject.hmac != consent.subject_hmac || &consent.grantee != me {
                return Err(not_found());
            }
        }
        let revoked = self
            .0
            .store
            .revoke_consent(&r.id, SystemTime::now())
            .await
            .map_err(crate::error::status)?
            .ok_or_else(not_found)?;
        self.audit("consent_revoked", &caller, &revoked).await?;
        Ok(Response::new(to_proto(&revoked)))
    }

    async fn list(
        &self,
        request: Request<ListConsentsRequest>,
    ) -> Result<Response<ListConsentsResponse>, Status> {
        let caller = Caller::of(&request, "manage consents")?;
        let r = request.into_inner();
        let subject = self.subject(&caller, &r.subject_code, r.subject).await?;
        let consents = self
            .0
            .store
            .consents_of(&subject.hmac)
            .await
            .map_err(crate::error::status)?
            .iter()
            .filter(|c| match &caller {
                Caller::Requester(me) => &c.grantee == me,
                Caller::Platform(_) => true,
            })
            .map(to_proto)
            .collect();
        Ok(Response::new(ListConsentsResponse { consents }))
    }
}

/// The record types of a fetch that a consent on record covers (with the
/// consent's id, newest consent first), among those
/// whose decision a consent could change ([`crate::fetch::consent_matters`]);
/// empty, without a store read, when the policy set never reads
/// `context.consent` or no wanted type's decision depends on it.
pub async fn consented_types(
    state: &GatewayState,
    policies: &xgate_policy::PolicySet,
    job: &crate::fetch::FetchJob,
) -> Result<Vec<(String, String)>, Status> {
    if !policies.reads_consent() {
        return Ok(Vec::new());
    }
    let fetch = &job.fetch;
    let open: Vec<&str> = fetch
        .wanted
        .iter()
        .filter(|w| {
            state
                .catalog
                .record_type(&w.record_type)
                .is_some_and(|rt| crate::fetch::consent_matters(policies, job, rt, w))
        })
        .map(|w| w.record_type.as_str())
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let hmac = state
        .auditor
        .subject_hmac(fetch.subject_kind.as_str(), &fetch.subject_id);
    let consents = state
        .store
        .consents_of(&hmac)
        .await
        .map_err(crate::error::status)?;
    let groups = policies
        .requester(&job.requester)
        .map(|r| r.groups.clone())
        .unwrap_or_default();
    let now = SystemTime::now();
    Ok(open
        .into_iter()
        .filter_map(|t| {
            consents
                .iter()
                .find(|c| {
                    c.covers(
                        &job.requester,
                        &groups,
                        &fetch.purpose,
                        fetch.item.as_deref(),
                        t,
                        now,
                    )
                })
                .map(|c| (t.to_owned(), c.id.clone()))
        })
        .collect())
}
