//! Request validation: every problem of a Fetch becomes one field violation
//! of a single INVALID_ARGUMENT, so a caller fixes them all at once.

use std::collections::{BTreeMap, HashSet};

use prost::Message as _;
use tonic::Status;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_policy::PolicySet;
use xgate_proto::status::{Violation, echo, invalid_argument};
use xgate_proto::v1::{FetchRequest, Subject};

use crate::config::Limits;

/// Longest purpose code, case id or operator id accepted.
const MAX_FIELD_CHARS: usize = 128;

/// One record type to fetch, at one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// A catalog id, known and keyed by the subject's kind.
    pub record_type: String,
    /// A view of the type; `None`: the most detailed field view granted.
    pub view: Option<String>,
    /// The parameters of a predicate view, complete and checked.
    pub params: BTreeMap<String, String>,
}

/// A Fetch that passed validation.
#[derive(Debug, Clone)]
pub struct ValidFetch {
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    /// What to fetch, in the order asked (an item's in the item's order).
    pub wanted: Vec<Wanted>,
    /// A purpose code of the policy set.
    pub purpose: String,
    /// The approval item, when the fetch named one.
    pub item: Option<String>,
    pub case_id: String,
    pub operator_id: String,
}

/// Validates a Fetch against the catalog, the policy set's purposes and
/// approval items, and the limits.
pub fn fetch(
    request: &FetchRequest,
    catalog: &Catalog,
    policies: &PolicySet,
    limits: &Limits,
) -> Result<ValidFetch, Status> {
    let size = request.encoded_len();
    if size > limits.max_request_bytes.get() {
        return Err(invalid_argument(&[Violation::new(
            "request",
            format!("is {size} bytes; the limit is {}", limits.max_request_bytes),
        )]));
    }
    let mut violations = Vec::new();

    let subject_kind = check_subject(request.subject.as_ref(), &mut violations);
    let Asked {
        mut asked,
        purpose,
        item,
    } = what_is_asked(request, policies, limits, &mut violations);
    // Over the limit, that one violation says it all: one per entry would
    // only bury the others (and overflow the trailer).
    if asked.len() <= limits.max_record_types.get() {
        check_against_catalog(request, catalog, subject_kind, &mut asked, &mut violations);
    }
    check_texts(request, policies, &purpose, &mut violations);

    match (subject_kind, &request.subject) {
        (Some(kind), Some(subject)) if violations.is_empty() => Ok(ValidFetch {
            subject_kind: kind,
            subject_id: subject.id.clone(),
            wanted: asked.into_iter().map(|(_, w)| w).collect(),
            purpose,
            item,
            case_id: request.case_id.clone(),
            operator_id: request.operator_id.clone(),
        }),
        _ => Err(invalid_argument(&violations)),
    }
}

/// A named subject, checked (present, known kind, valid ID): its kind and
/// ID, or INVALID_ARGUMENT naming the field.
pub fn subject(subject: Option<&Subject>) -> Result<(SubjectKind, String), Status> {
    let mut violations = Vec::new();
    match (check_subject(subject, &mut violations), subject) {
        (Some(kind), Some(s)) if violations.is_empty() => Ok((kind, s.id.clone())),
        _ => Err(invalid_argument(&violations)),
    }
}

/// The subject's kind, when the subject is there and its kind known; a
/// violation for a missing subject, an unknown kind or a malformed ID.
fn check_subject(
    subject: Option<&Subject>,
    violations: &mut Vec<Violation>,
) -> Option<SubjectKind> {
    match subject {
        None => {
            violations.push(Violation::new("subject", "is required"));
            None
        }
        Some(subject) => {
            let kind = xgate_proto::kind::from_proto(subject.kind);
            if kind.is_none() {
                violations.push(Violation::new(
                    "subject.kind",
                    "must be SUBJECT_KIND_RESIDENT_ID or SUBJECT_KIND_USCC",
                ));
            }
            if let Some(kind) = kind
                && let Err(e) = xgate_catalog::ids::validate(kind, &subject.id)
            {
                violations.push(Violation::new("subject.id", e.to_string()));
            }
            kind
        }
    }
}

/// What a Fetch asks for: the entries with the field a violation should
/// name, the purpose (an approval item's when the request leaves it empty)
/// and the approval item.
struct Asked {
    asked: Vec<(String, Wanted)>,
    purpose: String,
    item: Option<String>,
}

/// The record types of an approval item, of `record_types` and of
/// `requests`, within the limit on how many.
fn what_is_asked(
    request: &FetchRequest,
    policies: &PolicySet,
    limits: &Limits,
    violations: &mut Vec<Violation>,
) -> Asked {
    let mut asked: Vec<(String, Wanted)> = Vec::new();
    let mut purpose = request.purpose.clone();
    let item = (!request.approval_item.is_empty()).then(|| request.approval_item.clone());
    if let Some(code) = &item {
        if !request.record_types.is_empty() || !request.requests.is_empty() {
            violations.push(Violation::new(
                "approval_item",
                "names everything to fetch; leave record_types and requests empty",
            ));
        }
        match policies.item(code) {
            None => violations.push(Violation::new(
                "approval_item",
                format!("unknown approval item `{}`", echo(code)),
            )),
            Some(found) => {
                if purpose.is_empty() {
                    purpose = found.purpose.clone();
                } else if purpose != found.purpose {
                    violations.push(Violation::new(
                        "purpose",
                        format!(
                            "approval item `{code}` serves purpose `{}`, not `{}`",
                            found.purpose,
                            echo(&purpose)
                        ),
                    ));
                }
                for (i, entry) in found.entries.iter().enumerate() {
                    asked.push((
                        format!("approval_item({code}).entries[{i}]"),
                        Wanted {
                            record_type: entry.record_type.clone(),
                            view: Some(entry.view.clone()),
                            params: entry.params.clone(),
                        },
                    ));
                }
            }
        }
    } else if request.record_types.is_empty() && request.requests.is_empty() {
        violations.push(Violation::new(
            "record_types",
            "at least one record type (or request, or an approval item) is required",
        ));
    }
    for (i, id) in request.record_types.iter().enumerate() {
        asked.push((
            format!("record_types[{i}]"),
            Wanted {
                record_type: id.clone(),
                view: None,
                params: BTreeMap::new(),
            },
        ));
    }
    for (i, r) in request.requests.iter().enumerate() {
        asked.push((
            format!("requests[{i}]"),
            Wanted {
                record_type: r.record_type.clone(),
                view: (!r.view.is_empty()).then(|| r.view.clone()),
                params: r
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
        ));
    }
    if asked.len() > limits.max_record_types.get() {
        violations.push(Violation::new(
            if item.is_some() {
                "approval_item"
            } else {
                "record_types"
            },
            format!(
                "names {} record types; the limit is {}",
                asked.len(),
                limits.max_record_types
            ),
        ));
    }
    Asked {
        asked,
        purpose,
        item,
    }
}

/// Each entry against the catalog: a known type keyed by the subject's kind,
/// listed once per view, a view it has with complete parameters (open ones
/// filled from the request's `params`, each of which must be used).
fn check_against_catalog(
    request: &FetchRequest,
    catalog: &Catalog,
    subject_kind: Option<SubjectKind>,
    asked: &mut [(String, Wanted)],
    violations: &mut Vec<Violation>,
) {
    let mut seen = HashSet::new();
    let mut used_params = HashSet::new();
    for (field, wanted) in asked.iter_mut() {
        let id = wanted.record_type.clone();
        let Some(rt) = catalog.record_type(&id) else {
            violations.push(Violation::new(
                field.clone(),
                format!("unknown record type `{}`", echo(&id)),
            ));
            continue;
        };
        if let Some(kind) = subject_kind
            && rt.subject_kind != kind
        {
            violations.push(Violation::new(
                field.clone(),
                format!(
                    "record type `{id}` is keyed by {}, but the subject is a {kind}",
                    rt.subject_kind
                ),
            ));
        }
        if !seen.insert((id.clone(), wanted.view.clone())) {
            violations.push(Violation::new(
                field.clone(),
                format!("record type `{id}` is listed twice at the same view"),
            ));
        }
        let Some(name) = wanted.view.clone() else {
            continue;
        };
        let Some(view) = rt.view(&name) else {
            let known: Vec<&str> = rt.views().iter().map(|v| v.name.as_str()).collect();
            violations.push(Violation::new(
                format!("{field}.view"),
                format!(
                    "record type `{id}` has no view `{}` (it has: {})",
                    echo(&name),
                    known.join(", ")
                ),
            ));
            continue;
        };
        // Parameters the entry leaves open come from the request's `params`.
        if let xgate_catalog::ViewKind::Predicate(predicate) = &view.kind {
            for param in &predicate.params {
                if !wanted.params.contains_key(&param.name)
                    && let Some(value) = request.params.get(&param.name)
                {
                    used_params.insert(param.name.clone());
                    wanted.params.insert(param.name.clone(), value.clone());
                }
            }
        }
        if let Err(e) = view.check_params(&wanted.params) {
            violations.push(Violation::new(
                format!("{field}.params"),
                format!("view `{id}.{name}`: {e}"),
            ));
        }
    }
    for name in request.params.keys() {
        if !used_params.contains(name) {
            violations.push(Violation::new(
                format!("params[{}]", echo(name)),
                "is not a parameter of any requested predicate view",
            ));
        }
    }
}

/// Purpose, case id and operator id: bounded printable text, and a purpose
/// the policy set knows.
fn check_texts(
    request: &FetchRequest,
    policies: &PolicySet,
    purpose: &str,
    violations: &mut Vec<Violation>,
) {
    for (field, value) in [
        ("purpose", purpose),
        ("case_id", &request.case_id),
        ("operator_id", &request.operator_id),
    ] {
        if let Some(problem) = text_problem(value) {
            violations.push(Violation::new(field, problem));
        }
    }
    if text_problem(purpose).is_none() && policies.purpose(purpose).is_none() {
        violations.push(Violation::new(
            "purpose",
            format!("unknown purpose code `{}`", echo(purpose)),
        ));
    }
}

fn text_problem(value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return Some("is required".into());
    }
    let chars = value.chars().count();
    if chars > MAX_FIELD_CHARS {
        return Some(format!(
            "is {chars} characters; the limit is {MAX_FIELD_CHARS}"
        ));
    }
    if value.chars().any(char::is_control) {
        return Some("must not contain control characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use xgate_proto::status::violations;
    use xgate_proto::v1::Subject;

    // A valid GB 11643 number (check character computed by the catalog crate).
    fn citizen() -> String {
        let first17 = "34160219900307123";
        let check = xgate_catalog::ids::resident_id_check_char(first17).expect("check char");
        format!("{first17}{check}")
    }

    fn request(types: &[&str]) -> FetchRequest {
        FetchRequest {
            subject: Some(Subject {
                kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
                id: citizen(),
            }),
            record_types: types.iter().map(|t| (*t).to_owned()).collect(),
            purpose: "PF-WITHDRAWAL".into(),
            case_id: "case-1".into(),
            operator_id: "op-7".into(),
            ..FetchRequest::default()
        }
    }

    fn policies() -> PolicySet {
        PolicySet::from_sources(&PolicySet::builtin_files(), &catalog()).expect("policies")
    }

    fn catalog() -> Catalog {
        Catalog::builtin().expect("builtin catalog")
    }

    fn fields(status: &Status) -> Vec<String> {
        violations(status).into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn accepts_a_good_request() {
        let valid = fetch(
            &request(&["resident_identity_card"]),
            &catalog(),
            &policies(),
            &Limits::default(),
        )
        .expect("valid");
        assert_eq!(valid.wanted.len(), 1);
        assert_eq!(valid.wanted[0].record_type, "resident_identity_card");
        assert_eq!(valid.wanted[0].view, None);
        assert_eq!(valid.subject_kind, SubjectKind::ResidentId);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let mut req = request(&[
            "no_such_type",
            "business_licence",
            "resident_identity_card",
            "resident_identity_card",
        ]);
        req.purpose = String::new();
        req.operator_id = "a\u{7}b".into();
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("invalid");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            fields(&status),
            vec![
                "record_types[0]",
                "record_types[1]",
                "record_types[3]",
                "purpose",
                "operator_id"
            ]
        );
    }

    #[test]
    fn bad_check_digit_names_the_subject_id() {
        let mut req = request(&["resident_identity_card"]);
        let id = citizen();
        let wrong = if id.ends_with('0') { '1' } else { '0' };
        req.subject = Some(Subject {
            kind: xgate_proto::v1::SubjectKind::ResidentId as i32,
            id: format!("{}{wrong}", &id[..17]),
        });
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("invalid");
        let v = violations(&status);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "subject.id");
        assert!(v[0].description.contains("check"), "{}", v[0].description);
    }

    #[test]
    fn oversized_requests_are_refused_before_anything_else() {
        let limits = Limits {
            max_request_bytes: std::num::NonZeroUsize::new(64).expect("non-zero"),
            ..Limits::default()
        };
        let mut req = request(&["resident_identity_card"]);
        req.case_id = "x".repeat(100);
        let status = fetch(&req, &catalog(), &policies(), &limits).expect_err("too big");
        assert_eq!(fields(&status), vec!["request"]);
    }

    #[test]
    fn missing_subject_and_types() {
        let req = FetchRequest {
            purpose: "P".into(),
            case_id: "c".into(),
            operator_id: "o".into(),
            ..FetchRequest::default()
        };
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("invalid");
        // `P` is no purpose of the policy set either.
        assert_eq!(fields(&status), vec!["subject", "record_types", "purpose"]);
    }

    #[test]
    fn unknown_purpose_codes_are_refused() {
        let mut req = request(&["resident_identity_card"]);
        req.purpose = "SNOOPING".into();
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("bad");
        let v = violations(&status);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "purpose");
        assert!(v[0].description.contains("unknown purpose"), "{v:?}");
    }

    #[test]
    fn an_item_excludes_types_and_must_exist() {
        let mut req = request(&["resident_identity_card"]);
        req.approval_item = "NO-SUCH-ITEM".into();
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("bad");
        let v = violations(&status);
        assert_eq!(v[0].field, "approval_item");
        assert!(v[0].description.contains("leave record_types"), "{v:?}");
        assert!(v[1].description.contains("unknown approval item"), "{v:?}");
    }

    #[test]
    fn views_must_exist_and_params_must_be_used() {
        let mut req = request(&[]);
        req.requests = vec![
            xgate_proto::v1::RecordRequest {
                record_type: "resident_identity_card".into(),
                view: "no_such_view".into(),
                params: Default::default(),
            },
            xgate_proto::v1::RecordRequest {
                record_type: "household_registration".into(),
                view: "full".into(),
                params: [("n".to_owned(), "1".to_owned())].into(),
            },
        ];
        req.params = [("city".to_owned(), "亳州市".to_owned())].into();
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("bad");
        assert_eq!(
            fields(&status),
            vec!["requests[0].view", "requests[1].params", "params[city]"]
        );
    }

    #[test]
    fn over_the_type_limit_one_violation_says_so_not_one_per_entry() {
        let limits = Limits::default();
        let over = limits.max_record_types.get() + 1;
        let names: Vec<String> = (0..over).map(|i| format!("no_such_type_{i}")).collect();
        let req = request(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let status = fetch(&req, &catalog(), &policies(), &limits).expect_err("too many");
        let v = violations(&status);
        assert_eq!(fields(&status), vec!["record_types"], "{v:?}");
        assert_eq!(
            v[0].description,
            format!(
                "names {over} record types; the limit is {}",
                limits.max_record_types
            )
        );
    }

    #[test]
    fn long_user_input_is_cut_where_it_is_echoed() {
        let long = "x".repeat(10_000);
        let mut req = request(&[long.as_str()]);
        req.params = [(long.clone(), "1".to_owned())].into();
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("bad");
        let v = violations(&status);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(
            v[0].description.starts_with("unknown record type `xxx"),
            "{v:?}"
        );
        assert!(v[0].description.ends_with("…`"), "{v:?}");
        assert!(v[0].description.len() < 100, "{v:?}");
        assert!(v[1].field.len() < 100, "{v:?}");
    }

    #[test]
    fn the_same_type_may_be_asked_at_two_views_but_not_twice_at_one() {
        let mut req = request(&["resident_identity_card"]);
        let at = |view: &str| xgate_proto::v1::RecordRequest {
            record_type: "resident_identity_card".into(),
            view: view.into(),
            params: Default::default(),
        };
        req.requests = vec![at("exists"), at("full"), at("full")];
        let status = fetch(&req, &catalog(), &policies(), &Limits::default()).expect_err("bad");
        assert_eq!(fields(&status), vec!["requests[2]"]);
    }
}
