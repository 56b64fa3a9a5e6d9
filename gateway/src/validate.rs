//! Request validation: every problem of a Fetch becomes one field violation
//! of a single INVALID_ARGUMENT, so a caller fixes them all at once.

use std::collections::HashSet;

use prost::Message as _;
use tonic::Status;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::FetchRequest;

use crate::config::Limits;

/// Longest purpose code, case id or operator id accepted.
const MAX_FIELD_CHARS: usize = 128;

/// A Fetch that passed validation.
#[derive(Debug, Clone)]
pub struct ValidFetch {
    pub subject_kind: SubjectKind,
    pub subject_id: String,
    /// Catalog ids, in the order asked, each known and keyed by `subject_kind`.
    pub record_types: Vec<String>,
    pub purpose: String,
    pub case_id: String,
    pub operator_id: String,
}

/// Validates a Fetch against the catalog and the limits.
pub fn fetch(
    request: &FetchRequest,
    catalog: &Catalog,
    limits: &Limits,
) -> Result<ValidFetch, Status> {
    let size = request.encoded_len();
    if size > limits.max_request_bytes {
        return Err(invalid_argument(&[Violation::new(
            "request",
            format!("is {size} bytes; the limit is {}", limits.max_request_bytes),
        )]));
    }
    let mut violations = Vec::new();

    let subject_kind = match &request.subject {
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
    };

    if request.record_types.is_empty() {
        violations.push(Violation::new(
            "record_types",
            "at least one record type is required",
        ));
    }
    if request.record_types.len() > limits.max_record_types {
        violations.push(Violation::new(
            "record_types",
            format!(
                "names {} record types; the limit is {}",
                request.record_types.len(),
                limits.max_record_types
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, id) in request.record_types.iter().enumerate() {
        let field = format!("record_types[{i}]");
        match catalog.record_type(id) {
            None => violations.push(Violation::new(field, format!("unknown record type `{id}`"))),
            Some(rt) => {
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
                if !seen.insert(id.as_str()) {
                    violations.push(Violation::new(
                        field,
                        format!("record type `{id}` is listed twice"),
                    ));
                }
            }
        }
    }

    for (field, value) in [
        ("purpose", &request.purpose),
        ("case_id", &request.case_id),
        ("operator_id", &request.operator_id),
    ] {
        if let Some(problem) = text_problem(value) {
            violations.push(Violation::new(field, problem));
        }
    }

    match (subject_kind, &request.subject) {
        (Some(kind), Some(subject)) if violations.is_empty() => Ok(ValidFetch {
            subject_kind: kind,
            subject_id: subject.id.clone(),
            record_types: request.record_types.clone(),
            purpose: request.purpose.clone(),
            case_id: request.case_id.clone(),
            operator_id: request.operator_id.clone(),
        }),
        _ => Err(invalid_argument(&violations)),
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
        }
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
            &Limits::default(),
        )
        .expect("valid");
        assert_eq!(valid.record_types, vec!["resident_identity_card"]);
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
        let status = fetch(&req, &catalog(), &Limits::default()).expect_err("invalid");
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
        let status = fetch(&req, &catalog(), &Limits::default()).expect_err("invalid");
        let v = violations(&status);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].field, "subject.id");
        assert!(v[0].description.contains("check"), "{}", v[0].description);
    }

    #[test]
    fn oversized_requests_are_refused_before_anything_else() {
        let limits = Limits {
            max_request_bytes: 64,
            ..Limits::default()
        };
        let mut req = request(&["resident_identity_card"]);
        req.case_id = "x".repeat(100);
        let status = fetch(&req, &catalog(), &limits).expect_err("too big");
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
        let status = fetch(&req, &catalog(), &Limits::default()).expect_err("invalid");
        assert_eq!(fields(&status), vec!["subject", "record_types"]);
    }
}
