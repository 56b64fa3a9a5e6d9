//! Rich gRPC errors shared by the gateway and the adapters.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// One thing wrong with a request: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with every violation;
/// the message lists them too, for clients that ignore details.
pub fn invalid_argument(violations: &[Violation]) -> Status {
    bad_request(Code::InvalidArgument, violations)
}

/// A status of `code` carrying a `google.rpc.BadRequest` with every violation,
/// e.g. FAILED_PRECONDITION for policy files that do not validate.
pub fn bad_request(code: Code, violations: &[Violation]) -> Status {
    let message = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_bad_request(
        violations
            .iter()
            .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(code, message, details)
}

/// The field violations of a status built by [`invalid_argument`] (for clients and tests).
pub fn violations(status: &Status) -> Vec<Violation> {
    status
        .get_details_bad_request()
        .map(|br| {
            br.field_violations
                .into_iter()
                .map(|fv| Violation::new(fv.field, fv.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_round_trip_through_details() {
        let status = invalid_argument(&[
            Violation::new("subject.id", "check character is `3`, expected `X`"),
            Violation::new("purpose", "is required"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("subject.id: check character"));
        let back = violations(&status);
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], Violation::new("purpose", "is required"));
    }
}
