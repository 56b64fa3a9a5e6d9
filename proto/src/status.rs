//! Rich gRPC errors shared by the gateway and the adapters.
//!
//! Violations travel twice: in `grpc-message` (for clients that ignore
//! details) and as a `google.rpc.BadRequest` in `grpc-status-details-bin`.
//! Both are trailers, and clients drop a call whose metadata passes their
//! limit (grpc-java 8 KiB, grpcio 8–16 KiB) as RESOURCE_EXHAUSTED — the
//! caller would lose every violation and think it hit a quota. So the list
//! is bounded: each field and description cut to a few hundred bytes, at
//! most [`MAX_VIOLATIONS`] listed, the rest counted in a last "and K more",
//! and fewer still while the trailer would pass [`MAX_ERROR_METADATA_BYTES`].

use tonic::codegen::http::HeaderMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// Most violations listed one by one; the rest are counted in one more.
pub const MAX_VIOLATIONS: usize = 20;

/// Ceiling of `grpc-status` + `grpc-message` + `grpc-status-details-bin` as
/// HTTP/2 counts a header list (name + value + 32 per entry, values as sent:
/// percent-encoded, base64). 8 KiB is the smallest client limit; the rest is
/// left for `:status`, `content-type` and any other metadata.
pub const MAX_ERROR_METADATA_BYTES: usize = 6 * 1024;

/// Longest field path kept in a violation, in bytes.
const MAX_FIELD_BYTES: usize = 160;
/// Longest description kept in a violation, in bytes.
const MAX_DESCRIPTION_BYTES: usize = 320;
/// Longest piece of user input echoed in a description, in characters.
const MAX_ECHO_CHARS: usize = 64;

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

/// `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with the violations
/// (bounded, see the module doc); the message lists them too, for clients
/// that ignore details.
pub fn invalid_argument(violations: &[Violation]) -> Status {
    bad_request(Code::InvalidArgument, violations)
}

/// A status of `code` carrying a `google.rpc.BadRequest` with the violations,
/// e.g. FAILED_PRECONDITION for policy files that do not validate. At most
/// [`MAX_VIOLATIONS`] are listed, each cut to a bounded length, and the
/// trailer stays within [`MAX_ERROR_METADATA_BYTES`]; what is left out is
/// counted in a last violation.
pub fn bad_request(code: Code, violations: &[Violation]) -> Status {
    let mut listed: Vec<Violation> = violations
        .iter()
        .take(MAX_VIOLATIONS)
        .map(|v| {
            Violation::new(
                truncate_bytes(&v.field, MAX_FIELD_BYTES),
                truncate_bytes(&v.description, MAX_DESCRIPTION_BYTES),
            )
        })
        .collect();
    loop {
        let status = status_listing(code, &listed, violations.len() - listed.len());
        // One bounded violation and the count fit well within the budget.
        if listed.len() <= 1 || error_metadata_bytes(&status) <= MAX_ERROR_METADATA_BYTES {
            return status;
        }
        listed.pop();
    }
}

/// The status listing `listed`, plus a last violation counting `more`.
fn status_listing(code: Code, listed: &[Violation], more: usize) -> Status {
    let rest = (more > 0).then(|| {
        Violation::new(
            "request",
            format!("and {more} more violations not listed; fix those above and retry"),
        )
    });
    let all = || listed.iter().chain(rest.as_ref());
    let message = all()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    let details = ErrorDetails::with_bad_request(
        all()
            .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(code, message, details)
}

/// The bytes `status` adds to a header list, as HTTP/2 and gRPC clients
/// count them: each header's name and value as tonic writes it, plus 32.
pub fn error_metadata_bytes(status: &Status) -> usize {
    let mut headers = HeaderMap::new();
    if status.add_header(&mut headers).is_err() {
        return usize::MAX;
    }
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// User input quoted in a message: cut to a few dozen characters, so one
/// long value cannot crowd out the other violations.
pub fn echo(input: &str) -> String {
    match input.char_indices().nth(MAX_ECHO_CHARS) {
        None => input.to_owned(),
        Some((end, _)) => format!("{}…", input.get(..end).unwrap_or_default()),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, `…` marking a cut.
fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub('…'.len_utf8());
    let end = (0..=keep)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", text.get(..end).unwrap_or_default())
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

    /// Every byte tonic percent-encodes (3x) in `grpc-message`, and
    /// multi-byte characters: the costliest text per character.
    fn costly_text(len: usize) -> String {
        " \"#%<>`?{}\u{7f}办证".chars().cycle().take(len).collect()
    }

    #[test]
    fn the_trailer_stays_under_8_kib_in_the_worst_case() {
        for (count, len) in [
            (1, 100_000),
            (2, 5_000),
            (20, 400),
            (45, 200),
            (1_000, 10_000),
        ] {
            let many: Vec<Violation> = (0..count)
                .map(|i| Violation::new(format!("{i}{}", costly_text(len)), costly_text(len)))
                .collect();
            let status = invalid_argument(&many);
            let bytes = error_metadata_bytes(&status);
            assert!(
                bytes <= MAX_ERROR_METADATA_BYTES,
                "{count} violations of {len} chars: {bytes} bytes"
            );
            let back = violations(&status);
            assert!(!back.is_empty() && back.len() <= MAX_VIOLATIONS + 1);
            // The first violations come first, cut; the rest are counted.
            assert!(back[0].field.starts_with('0') && back[0].field.ends_with('…'));
            let more = back.last().filter(|v| v.field == "request");
            let listed = back.len() - usize::from(more.is_some());
            assert_eq!(listed < count, more.is_some(), "{count} violations");
            if let Some(last) = more {
                assert!(
                    last.description
                        .starts_with(&format!("and {} more violations", count - listed)),
                    "{last:?}"
                );
            }
        }
    }

    #[test]
    fn the_list_is_capped_even_when_short_violations_would_fit() {
        let many: Vec<Violation> = (0..200)
            .map(|i| Violation::new(format!("record_types[{i}]"), "unknown record type `x`"))
            .collect();
        let back = violations(&invalid_argument(&many));
        assert_eq!(back.len(), MAX_VIOLATIONS + 1);
        assert_eq!(back[0].field, "record_types[0]");
        assert_eq!(
            back[MAX_VIOLATIONS].description,
            "and 180 more violations not listed; fix those above and retry"
        );
        // Short lists are untouched.
        let few = &many[..3];
        assert_eq!(violations(&invalid_argument(few)), few);
    }

    #[test]
    fn echo_cuts_long_input_on_a_character_boundary() {
        assert_eq!(echo("short"), "short");
        let long = "办".repeat(100);
        let echoed = echo(&long);
        assert_eq!(echoed.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(echoed.ends_with('…'));
        assert_eq!(truncate_bytes("ab办", 4), "a…");
        assert_eq!(truncate_bytes("ab办", 5), "ab办");
    }
}
