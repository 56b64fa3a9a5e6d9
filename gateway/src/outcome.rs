//! Settled outcomes: what the gateway decided for each wanted record type,
//! before the audit log has it.
//!
//! The fetch pipeline ends in a [`Settled`] per wanted type, never in a wire
//! `RecordResult`. Only [`crate::audit`] turns settled outcomes into sealed
//! ones, after the store acknowledged a durable append, and only a sealed
//! outcome converts to a `RecordResult` (see `audit::Sealed`). A record or a
//! predicate's value exists here only inside a [`Release`], and a `Release`
//! exists only for a [`Permit`] of that very record type whose view was
//! applied to the records.
//!
//! [`Outcome::status`] is the one table from an outcome to the per-record
//! status and message the requester sees and the audit log records.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use xgate_catalog::RecordType;
pub use xgate_catalog::ViewOutput;
use xgate_policy::Permit;
use xgate_proto::v1::{Provenance, RecordStatus};

use crate::upstream::CallError;

/// Why a permitted type could not be answered.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// The department's adapter could not be called or did not answer.
    Call {
        error: CallError,
        adapter_id: String,
    },
    /// The adapter answered that its department's system failed.
    Department(String),
    /// The fetch's deadline passed before the department was called.
    DeadlinePassed,
    /// The type is metered by a daily quota and the gateway's store could not
    /// count this fetch: released uncounted it would escape the quota.
    QuotaStore(String),
}

/// What the gateway decided for one wanted record type.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// No policy permits the type at the view.
    Denied {
        policy_ids: Vec<String>,
        policy_set_version: String,
        /// The denying policies' `@reason`s: what the caller lacks.
        reasons: Vec<String>,
    },
    /// A permit matched, but the requester's daily quota of the type is spent.
    QuotaSpent { permit: Permit, limit: u32 },
    /// No registered adapter of the owning department serves the type.
    NoSource { permit: Permit },
    /// Permitted, but the department could not answer.
    Unavailable { permit: Permit, why: Unavailable },
    /// The request or the department's answer is unusable (unknown type,
    /// a record breaking its schema or about another subject, a view that
    /// cannot be applied). `permit` is `None` when no decision was made.
    Invalid { permit: Option<Permit>, why: String },
    /// Permitted; the department holds no record.
    NotFound { permit: Permit },
    /// Permitted and answered: exactly what the permit's view releases.
    Released(Release),
}

/// The audit decision of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Permit,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Permit => "permit",
            Verdict::Deny => "deny",
        }
    }
}

impl Outcome {
    /// The policy decision behind the outcome: a spent quota refuses like a
    /// denial, though a permit matched.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Denied { .. } | Outcome::QuotaSpent { .. } => Verdict::Deny,
            Outcome::Invalid { permit: None, .. } => Verdict::Deny,
            _ => Verdict::Permit,
        }
    }

    /// The permit the outcome was decided under, if one matched.
    pub fn permit(&self) -> Option<&Permit> {
        match self {
            Outcome::Denied { .. } => None,
            Outcome::QuotaSpent { permit, .. }
            | Outcome::NoSource { permit }
            | Outcome::Unavailable { permit, .. }
            | Outcome::NotFound { permit } => Some(permit),
            Outcome::Invalid { permit, .. } => permit.as_ref(),
            Outcome::Released(release) => Some(&release.permit),
        }
    }

    /// The `@id`s of the policies that decided.
    pub fn policy_ids(&self) -> &[String] {
        match self {
            Outcome::Denied { policy_ids, .. } => policy_ids,
            other => other.permit().map_or(&[], |p| p.policy_ids()),
        }
    }

    /// The one table from an outcome to the status and message of its
    /// record result. `department` names the owner in messages.
    pub fn status(&self, department: &str) -> (RecordStatus, String) {
        match self {
            Outcome::Denied {
                policy_ids,
                policy_set_version,
                reasons,
            } => {
                let text = if policy_ids.iter().any(|id| id == xgate_policy::DEFAULT_DENY) {
                    format!(
                        "no policy permits this (default deny; policy set {policy_set_version})"
                    )
                } else if reasons.is_empty() {
                    format!(
                        "denied by policy {} (policy set {policy_set_version})",
                        policy_ids.join(", ")
                    )
                } else {
                    format!(
                        "denied by policy {}: {} (policy set {policy_set_version})",
                        policy_ids.join(", "),
                        reasons.join("; ")
                    )
                };
                (RecordStatus::Denied, text)
            }
            Outcome::QuotaSpent { permit, limit } => (
                RecordStatus::ResourceExhausted,
                format!(
                    "the daily quota of {limit} fetches of `{}` (policy {}) is spent; it resets at midnight UTC+8",
                    permit.record_type(),
                    permit.policy_ids().join(", ")
                ),
            ),
            Outcome::NoSource { permit } => (
                RecordStatus::NoSource,
                format!(
                    "no adapter of `{department}` serves `{}`",
                    permit.record_type()
                ),
            ),
            Outcome::Unavailable { why, .. } => {
                (RecordStatus::Unavailable, unavailable_text(why, department))
            }
            Outcome::Invalid { why, .. } => (RecordStatus::Invalid, why.clone()),
            Outcome::NotFound { .. } => (RecordStatus::NotFound, "no record".into()),
            Outcome::Released(_) => (RecordStatus::Ok, String::new()),
        }
    }
}

/// The text a requester sees when a department could not answer.
fn unavailable_text(why: &Unavailable, department: &str) -> String {
    match why {
        Unavailable::DeadlinePassed => {
            "the fetch deadline passed before the department was called".into()
        }
        Unavailable::Department(message) => format!("department error: {message}"),
        Unavailable::QuotaStore(error) => {
            format!("the daily quota could not be counted, so nothing is released: {error}")
        }
        Unavailable::Call { error, adapter_id } => match error {
            CallError::NoEndpoint => format!("adapter `{adapter_id}` has no endpoint"),
            CallError::Timeout(budget) => format!(
                "department `{department}` did not answer within {} ms",
                budget.as_millis()
            ),
            CallError::Unavailable(message) => {
                format!("department `{department}` unavailable: {message}")
            }
            CallError::CircuitOpen => format!(
                "department `{department}` unavailable: circuit open (its adapter failed repeatedly; not called until a probe succeeds)"
            ),
            CallError::Busy(limit) => format!(
                "department `{department}` busy: {limit} calls already in flight (bulkhead full); try again"
            ),
        },
    }
}

/// What a permit releases of checked records: the view's fields of each
/// record, or a predicate's value and no record. The payload is private:
/// it leaves the gateway only through a sealed outcome.
#[derive(Debug, Clone)]
pub struct Release {
    permit: Permit,
    output: ViewOutput,
}

/// A permit that does not fit the records it would release.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("the permit is for `{permitted}`, not for `{record_type}`; nothing released")]
    WrongType {
        permitted: String,
        record_type: String,
    },
    #[error("record type `{record_type}` has no view `{view}`")]
    NoSuchView { record_type: String, view: String },
    #[error("view `{view}` could not be applied: {why}")]
    View { view: String, why: String },
}

impl Release {
    /// Applies the permit's view to checked `records` of `rt`. Refuses a
    /// permit of another record type: a permit is never reused across types.
    /// A refusal hands the permit back (the outcome still names it).
    pub fn apply(
        permit: Permit,
        rt: &RecordType,
        records: &[Value],
        params: &BTreeMap<String, String>,
        today: time::Date,
    ) -> Result<Release, (Permit, ReleaseError)> {
        match Self::view_output(&permit, rt, records, params, today) {
            Ok(output) => Ok(Release { permit, output }),
            Err(e) => Err((permit, e)),
        }
    }

    fn view_output(
        permit: &Permit,
        rt: &RecordType,
        records: &[Value],
        params: &BTreeMap<String, String>,
        today: time::Date,
    ) -> Result<ViewOutput, ReleaseError> {
        if permit.record_type() != rt.id {
            return Err(ReleaseError::WrongType {
                permitted: permit.record_type().to_owned(),
                record_type: rt.id.clone(),
            });
        }
        let view = rt
            .view(permit.view())
            .ok_or_else(|| ReleaseError::NoSuchView {
                record_type: rt.id.clone(),
                view: permit.view().to_owned(),
            })?;
        view.apply(records, params, today)
            .map_err(|e| ReleaseError::View {
                view: permit.view().to_owned(),
                why: e.to_string(),
            })
    }

    pub fn permit(&self) -> &Permit {
        &self.permit
    }

    /// The payload, read-only (the audit module digests it).
    pub(crate) fn output(&self) -> &ViewOutput {
        &self.output
    }

    /// Only the audit module may take the payload out: it does so for a
    /// sealed outcome.
    pub(crate) fn into_output(self) -> ViewOutput {
        self.output
    }
}

/// Where a type's answer came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub provenance: Provenance,
    /// The cached answer's age when served from the record cache.
    pub cached_age: Option<Duration>,
}

/// One wanted record type, settled: what every result carries, and the
/// outcome.
#[derive(Debug, Clone)]
pub struct Settled {
    /// Its position in the request.
    pub index: usize,
    pub record_type: String,
    pub department: String,
    /// The view decided (empty when no decision was made).
    pub view: String,
    pub policy_set_version: String,
    pub latency_us: u64,
    pub origin: Option<Origin>,
    pub outcome: Outcome,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use xgate_catalog::Catalog;
    use xgate_policy::{AccessRequest, PolicySet};

    /// A permit from a real policy decision (a `Permit` has no other constructor).
    fn permit_for(record_type: &str, view: &str) -> Permit {
        let catalog = Catalog::builtin().expect("catalog");
        let policies =
            PolicySet::from_sources(&PolicySet::builtin_files(), &catalog).expect("policies");
        let decision = policies.decide(&AccessRequest {
            requester: "approval-hall-demo",
            record_type,
            view,
            purpose: "GENERAL-APPROVAL",
            item: None,
            now: time::OffsetDateTime::now_utc(),
            explicit_request: false,
            consent: false,
            representation: "",
        });
        match decision.permit() {
            Some(p) => p,
            None => panic!("no permit: {:?}", decision.errors),
        }
    }

    #[test]
    fn a_permit_releases_only_its_own_record_type() {
        let catalog = Catalog::builtin().expect("catalog");
        let rt = catalog.record_type("driving_licence").expect("type");
        let permit = permit_for("motor_vehicle_registration", "full");
        let today = time::OffsetDateTime::now_utc().date();
        let (_, err) = Release::apply(permit, rt, &[json!({})], &BTreeMap::new(), today)
            .expect_err("wrong type must be refused");
        assert!(matches!(err, ReleaseError::WrongType { .. }), "{err}");
    }

    #[test]
    fn the_status_table_denies_quota_and_denial_and_permits_the_rest() {
        let permit = permit_for("driving_licence", "full");
        let spent = Outcome::QuotaSpent {
            permit: permit.clone(),
            limit: 3,
        };
        assert_eq!(spent.verdict(), Verdict::Deny);
        assert_eq!(spent.status("d").0, RecordStatus::ResourceExhausted);
        assert_eq!(
            spent.policy_ids(),
            ["approval-hall-general-approval".to_owned()]
        );
        let no_source = Outcome::NoSource {
            permit: permit.clone(),
        };
        assert_eq!(
            no_source.status("public-security"),
            (
                RecordStatus::NoSource,
                "no adapter of `public-security` serves `driving_licence`".to_owned()
            )
        );
        let missing = Outcome::NotFound { permit };
        assert_eq!(missing.verdict(), Verdict::Permit);
        assert_eq!(missing.status("d").0, RecordStatus::NotFound);
        let denied = Outcome::Denied {
            policy_ids: vec![xgate_policy::DEFAULT_DENY.into()],
            policy_set_version: "v1".into(),
            reasons: Vec::new(),
        };
        let (status, text) = denied.status("d");
        assert_eq!(status, RecordStatus::Denied);
        assert!(text.contains("default deny"), "{text}");
        let guarded = Outcome::Denied {
            policy_ids: vec!["needs-the-subjects-say".into()],
            policy_set_version: "v1".into(),
            reasons: vec!["needs the subject's code or a consent on record".into()],
        };
        assert_eq!(
            guarded.status("d").1,
            "denied by policy needs-the-subjects-say: needs the subject's code or a consent on \
             record (policy set v1)"
        );
    }
}
