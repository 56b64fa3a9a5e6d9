//! "Family agency": an applicant acting for the subject, the relation
//! verified certificate-free from the department that holds it.
//!
//! A fetch may name an applicant (a resident ID) and the relation claimed
//! ([`xgate_proto::v1::Representation`]). Before any of the fetch's own
//! decisions, [`verify`] asks the department that registers the relation —
//! a marriage in force at civil affairs for a spouse; the household
//! registration at public security for a parent, a child (the applicant's
//! registration names the subject as parent) or a guardian; a notarised power
//! of attorney at the justice bureau for an attorney — through a fetch of
//! its own: the predicate view of [`CHECKS`] about the subject (or, for a
//! child, about the applicant), with the other person (and, for an attorney,
//! the fetch's approval item: a power covers items) as parameters, under the
//! purpose [`PURPOSE`]. So the check is
//! policy-checked (a requester needs a grant for it), audited under the
//! subject like any fetch, and answered from the record cache within the
//! record type's freshness. Only a verified relation reaches the policies
//! (`context.representation`); a claim the records do not show refuses the
//! whole fetch with a reason the caller can act on.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};
use xgate_catalog::SubjectKind;
use xgate_policy::PolicySet;
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::{FetchRequest, RecordStatus, Relation};

use crate::fetch::FetchJob;
use crate::gateway::GatewayState;
use crate::validate::{ValidFetch, Wanted};

/// The purpose every relation check is made under; a policy set that offers
/// representation declares it and grants the check to the requesters that
/// take applications from representatives.
pub const PURPOSE: &str = "REPRESENTATION-CHECK";

/// The `google.rpc.ErrorInfo` domain of representation refusals.
const DOMAIN: &str = "xgate";

/// Whose record a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// The subject's record names the applicant.
    Subject,
    /// The applicant's record names the subject (a child's registration
    /// names the parent, not the other way round).
    Applicant,
}

/// How one relation is verified: a predicate view about `about` whose
/// parameter `param` takes the other person's ID.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub relation: Relation,
    /// The relation as policies see it (`context.representation`).
    pub name: &'static str,
    pub record_type: &'static str,
    pub view: &'static str,
    pub about: About,
    pub param: &'static str,
    /// The view's parameter that takes the fetch's approval item: the
    /// relation holds only for that item (a power of attorney covers items).
    pub item_param: Option<&'static str>,
}

/// The relations the gateway verifies, one check each. A relation without
/// one would be refused as unverifiable rather than taken on the
/// applicant's word.
pub const CHECKS: &[Check] = &[
    Check {
        relation: Relation::Spouse,
        name: "spouse",
        record_type: "marriage_registration",
        view: "is_spouse_of",
        about: About::Subject,
        param: "person",
        item_param: None,
    },
    Check {
        relation: Relation::Parent,
        name: "parent",
        record_type: "household_registration",
        view: "has_parent",
        about: About::Subject,
        param: "person",
        item_param: None,
    },
    Check {
        relation: Relation::Child,
        name: "child",
        record_type: "household_registration",
        view: "has_parent",
        about: About::Applicant,
        param: "person",
        item_param: None,
    },
    Check {
        relation: Relation::Guardian,
        name: "guardian",
        record_type: "household_registration",
        view: "has_guardian",
        about: About::Subject,
        param: "person",
        item_param: None,
    },
    Check {
        relation: Relation::Attorney,
        name: "attorney",
        record_type: "notarial_certificate",
        view: "authorises_agent_for",
        about: About::Subject,
        param: "agent",
        item_param: Some("item"),
    },
];

/// A verified representation, carried by the fetch into its decisions and
/// its audit entries.
#[derive(Debug, Clone)]
pub struct Represented {
    /// The applicant's resident ID (kept in the log only as a keyed hash).
    pub applicant_id: String,
    /// [`Check::name`].
    pub relation: &'static str,
    /// Where the relation was shown: the check's record type and the
    /// request id of its own audit entry.
    pub evidence: String,
}

/// The applicant and check a request asks for, checked against the
/// validated fetch; `None` when the request names no applicant.
pub fn requested(
    request: &FetchRequest,
    valid: &ValidFetch,
) -> Result<Option<(String, &'static Check)>, Status> {
    let Some(rep) = &request.representation else {
        return Ok(None);
    };
    let mut violations = Vec::new();
    if let Err(e) = xgate_catalog::ids::validate_resident_id(&rep.applicant_id) {
        violations.push(Violation::new("representation.applicant_id", e.to_string()));
    } else if rep.applicant_id == valid.subject_id {
        violations.push(Violation::new(
            "representation.applicant_id",
            "is the subject: a subject applying for themselves names no representation",
        ));
    }
    if valid.subject_kind != SubjectKind::ResidentId {
        violations.push(Violation::new(
            "representation",
            "only a citizen (resident ID) can be represented",
        ));
    }
    let relation = Relation::try_from(rep.relation).unwrap_or(Relation::Unspecified);
    if relation == Relation::Unspecified {
        violations.push(Violation::new(
            "representation.relation",
            "is required (RELATION_SPOUSE, RELATION_PARENT, ...)",
        ));
    }
    if !violations.is_empty() {
        return Err(invalid_argument(&violations));
    }
    let Some(check) = CHECKS.iter().find(|c| c.relation == relation) else {
        return Err(unverifiable(format!(
            "no record type in the catalog verifies {}: the gateway does not take a relation on \
             the applicant's word",
            relation.as_str_name()
        )));
    };
    if check.item_param.is_some() && valid.item.is_none() {
        return Err(invalid_argument(&[Violation::new(
            "approval_item",
            format!(
                "is required when an {} applies: the power must cover the item",
                check.name
            ),
        )]));
    }
    Ok(Some((rep.applicant_id.clone(), check)))
}

/// Verifies the relation through a fetch of its own (see the module docs).
pub async fn verify(
    state: &GatewayState,
    policies: &Arc<PolicySet>,
    main: &FetchJob,
    applicant_id: String,
    check: &'static Check,
    trace_id: String,
) -> Result<Represented, Status> {
    if policies.purpose(PURPOSE).is_none() {
        return Err(unverifiable(format!(
            "the policy set declares no purpose `{PURPOSE}`, under which relations are checked"
        )));
    }
    let subject = &main.fetch.subject_id;
    // The check reads one person's record and names the other.
    let (read, named) = match check.about {
        About::Subject => (subject, &applicant_id),
        About::Applicant => (&applicant_id, subject),
    };
    let job = FetchJob {
        request_id: uuid::Uuid::now_v7().to_string(),
        requester: main.requester.clone(),
        fetch: ValidFetch {
            subject_kind: SubjectKind::ResidentId,
            subject_id: read.clone(),
            wanted: vec![Wanted {
                record_type: check.record_type.to_owned(),
                view: Some(check.view.to_owned()),
                params: check_params(check, named, main.fetch.item.as_deref()),
            }],
            purpose: PURPOSE.to_owned(),
            item: None,
            case_id: main.fetch.case_id.clone(),
            operator_id: main.fetch.operator_id.clone(),
        },
        deadline: main.deadline,
        seal_by: main.seal_by,
        adapter_cap: main.adapter_cap,
        started: main.started,
        now: main.now,
        records_as_json: false,
        code: None,
        consented: Vec::new(),
        representation: None,
    };
    let request_id = job.request_id.clone();
    let (results, _receipt) = state.run(job, Arc::clone(policies), trace_id).await;
    let Some(result) = results.first() else {
        return Err(Status::internal("the relation check returned no result"));
    };
    let shown = matches!(
        result.value.as_ref().and_then(|v| v.kind.as_ref()),
        Some(prost_types::value::Kind::BoolValue(true))
    );
    let status = RecordStatus::try_from(result.status).unwrap_or(RecordStatus::Unspecified);
    let info = |reason: &str| {
        ErrorDetails::with_error_info(
            reason,
            DOMAIN,
            [
                ("relation".to_owned(), check.name.to_owned()),
                ("record_type".to_owned(), check.record_type.to_owned()),
                ("check_request_id".to_owned(), request_id.clone()),
            ],
        )
    };
    match status {
        RecordStatus::Ok if shown => Ok(Represented {
            applicant_id,
            relation: check.name,
            evidence: format!("{}.{}@{request_id}", check.record_type, check.view),
        }),
        RecordStatus::Ok | RecordStatus::NotFound => Err(Status::with_error_details(
            Code::PermissionDenied,
            format!(
                "the applicant is not shown as the subject's {} by {} (check {request_id})",
                check.name, check.record_type
            ),
            info("REPRESENTATION_NOT_VERIFIED"),
        )),
        RecordStatus::Denied => Err(Status::with_error_details(
            Code::PermissionDenied,
            format!(
                "this requester may not check a {} relation ({}.{} under {PURPOSE}): {}",
                check.name, check.record_type, check.view, result.error
            ),
            info("REPRESENTATION_CHECK_DENIED"),
        )),
        _ => Err(Status::with_error_details(
            Code::Unavailable,
            format!(
                "the {} relation could not be checked ({}: {}); try again",
                check.name,
                status.as_str_name(),
                result.error
            ),
            info("REPRESENTATION_CHECK_UNAVAILABLE"),
        )),
    }
}

/// The check view's parameters: the person named, and the item if it takes one.
fn check_params(check: &Check, named: &str, item: Option<&str>) -> BTreeMap<String, String> {
    let mut params = BTreeMap::from([(check.param.to_owned(), named.to_owned())]);
    if let (Some(param), Some(item)) = (check.item_param, item) {
        params.insert(param.to_owned(), item.to_owned());
    }
    params
}

fn unverifiable(why: String) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        why,
        ErrorDetails::with_error_info("REPRESENTATION_UNVERIFIABLE", DOMAIN, []),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_names_a_predicate_view_with_its_parameter() {
        let catalog = xgate_catalog::Catalog::builtin().unwrap();
        for check in CHECKS {
            let rt = catalog.record_type(check.record_type).unwrap();
            assert_eq!(rt.subject_kind, SubjectKind::ResidentId);
            let view = rt
                .view(check.view)
                .unwrap_or_else(|| panic!("{} has no view {}", check.record_type, check.view));
            assert!(view.is_predicate(), "{}", check.view);
            let xgate_catalog::views::ViewKind::Predicate(p) = &view.kind else {
                unreachable!()
            };
            for name in std::iter::once(check.param).chain(check.item_param) {
                assert!(p.params.iter().any(|param| param.name == name), "{name}");
            }
            assert_eq!(p.params.len(), 1 + usize::from(check.item_param.is_some()));
        }
    }

    #[test]
    fn every_relation_has_exactly_one_check() {
        for relation in [
            Relation::Spouse,
            Relation::Parent,
            Relation::Child,
            Relation::Guardian,
            Relation::Attorney,
        ] {
            assert_eq!(
                CHECKS.iter().filter(|c| c.relation == relation).count(),
                1,
                "{relation:?}"
            );
        }
        // A child is shown by their own registration naming the subject.
        let child = CHECKS.iter().find(|c| c.relation == Relation::Child);
        assert_eq!(child.map(|c| c.about), Some(About::Applicant));
    }
}
