//! Fuzz targets for the parsers that take input from outside the gateway.
//!
//! Each target is a plain function of bytes, so the same code runs under AFL++
//! (`src/bin/*`, built by `run.sh` with `cargo afl build` on the stable
//! toolchain) and in the corpus replay test (`tests/corpus.rs`), which CI runs on
//! every saved input. A target never returns an error: it panics only when the
//! code under test breaks one of its promises, and a panic is what the fuzzer
//! reports as a crash.
//!
//! | target | input | promise checked besides "no panic, no hang" |
//! |---|---|---|
//! | `ids` | text | an accepted ID is 18 ASCII characters, accepted only for its own kind's rules |
//! | `fetch` | `FetchRequest` wire bytes | an accepted request names a valid subject and at most `max_record_types` types; a refusal is INVALID_ARGUMENT/NOT_FOUND whose error trailer stays within 6 KiB |
//! | `mapping` | SQL adapter mapping TOML | every refusal names the file; a parsed mapping's catalog check never panics |
//! | `policy` | one policy data file or Cedar file, in place of a shipped one | a refused set lists at least one problem, each naming a file |
//! | `audit_export` | first line: trusted keys, then an audit export | a report that says "ok" never counts more entries than lines; receipts and checkpoints parse or refuse |

use std::path::Path;
use std::sync::OnceLock;

use prost::Message as _;
use tonic::Code;
use xgate::config::Limits;
use xgate_adapter_sql::{Mapping, ParsedQuery};
use xgate_catalog::{Catalog, SubjectKind, ids};
use xgate_policy::PolicySet;
use xgate_proto::v1::FetchRequest;

/// The shipped catalog and policy set, built once per process (AFL's persistent
/// mode runs many inputs in one process).
struct Shipped {
    catalog: Catalog,
    policies: PolicySet,
    policy_files: Vec<(String, String)>,
}

fn shipped() -> &'static Shipped {
    static SHIPPED: OnceLock<Shipped> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        // The shipped files are part of the build: failing here is a broken build,
        // not a finding, and every target would report it at once.
        #[allow(clippy::expect_used)]
        let catalog = Catalog::builtin().expect("the shipped catalog loads");
        let policy_files = PolicySet::builtin_files();
        #[allow(clippy::expect_used)]
        let policies =
            PolicySet::from_sources(&policy_files, &catalog).expect("the shipped policies load");
        Shipped {
            catalog,
            policies,
            policy_files,
        }
    })
}

/// Both ID parsers (GB 11643 resident ID, GB 32100 credit code).
pub fn ids(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [SubjectKind::ResidentId, SubjectKind::Uscc] {
        if ids::validate(kind, text).is_ok() {
            assert_eq!(text.len(), 18, "accepted {kind:?} {text:?} is not 18 bytes");
            assert!(text.is_ascii(), "accepted {kind:?} {text:?} is not ASCII");
        }
    }
    if ids::validate_resident_id(text).is_ok() {
        // Resident IDs are digits with an optional final `X`.
        assert!(
            text[..17].bytes().all(|b| b.is_ascii_digit()),
            "accepted resident ID {text:?} has a non-digit body"
        );
    }
}

/// `FetchRequest` decoding and the gateway's validation against the shipped
/// catalog and policy set.
pub fn fetch(data: &[u8]) {
    let Ok(request) = FetchRequest::decode(data) else {
        return;
    };
    let shipped = shipped();
    let limits = Limits::default();
    match xgate::validate::fetch(&request, &shipped.catalog, &shipped.policies, &limits) {
        Ok(valid) => {
            assert!(
                ids::validate(valid.subject_kind, &valid.subject_id).is_ok(),
                "accepted a fetch for invalid subject {:?}",
                valid.subject_id
            );
            assert!(!valid.wanted.is_empty(), "accepted a fetch of nothing");
            assert!(
                valid.wanted.len() <= limits.max_record_types.get(),
                "accepted {} record types",
                valid.wanted.len()
            );
        }
        Err(status) => {
            assert!(
                matches!(status.code(), Code::InvalidArgument | Code::NotFound),
                "validation answered {:?}: {}",
                status.code(),
                status.message()
            );
            let bytes = xgate_proto::status::error_metadata_bytes(&status);
            assert!(
                bytes <= xgate_proto::status::MAX_ERROR_METADATA_BYTES,
                "error trailer of {bytes} bytes"
            );
        }
    }
}

/// The SQL adapter's mapping file parser, its SQL splitter, and the catalog
/// check of what parses.
pub fn mapping(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz-mapping.toml");
    match Mapping::parse(file, text) {
        Ok(mapping) => {
            if let Err(problems) = mapping.check(&shipped().catalog) {
                assert!(!problems.is_empty(), "a failed check with no problem");
                for p in problems {
                    assert!(p.to_string().contains("fuzz-mapping.toml"), "{p}");
                }
            }
        }
        Err(e) => assert!(e.to_string().contains("fuzz-mapping.toml"), "{e}"),
    }
    if let Ok(query) = ParsedQuery::parse(text) {
        // A query that parses holds `:subject` at least once (the parser's promise).
        assert!(
            text.contains(":subject"),
            "parsed {text:?} without :subject"
        );
        let _ = query;
    }
}

/// The policy loader: the first byte picks which shipped file the rest replaces
/// (Cedar policies or a TOML data file: purposes, approval items, requesters).
pub fn policy(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let shipped = shipped();
    let mut files = shipped.policy_files.clone();
    let at = usize::from(pick) % files.len();
    let name = files[at].0.clone();
    files[at].1 = text.to_owned();
    if let Err(e) = PolicySet::from_sources(&files, &shipped.catalog) {
        assert!(!e.errors.is_empty(), "a refused policy set with no problem");
        let shown = e.to_string();
        assert!(
            shown.contains(&name) || files.iter().any(|(f, _)| shown.contains(f.as_str())),
            "a policy error naming no file: {shown}"
        );
    }
}

/// The offline audit verifier: the first line is the trusted keys file, the rest
/// an export (`xgate audit export`). Every line is also tried as a receipt and as
/// a signed checkpoint.
pub fn audit_export(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (keys, export) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(anchors) = xgate_audit::PublicKeys::parse(keys) else {
        return;
    };
    if let Ok(report) = xgate_audit::verify_export(export.as_bytes(), &anchors) {
        if report.is_ok() {
            let lines = export.lines().count() as u64;
            assert!(
                report.entries() <= lines,
                "{} entries verified from {lines} lines",
                report.entries()
            );
        }
        let _ = report.to_string();
    }
    for line in export.lines() {
        if let Ok(receipt) = xgate_audit::Receipt::from_json(line) {
            let _ = receipt.verify_signature(&anchors);
        }
        let _ = xgate_audit::SignedCheckpoint::parse(line);
    }
}
