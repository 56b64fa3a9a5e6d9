//! Declarative decision cases (`policies/tests/*.toml`), run by `xgate policy test`.
//!
//! ```toml
//! [[case]]
//! name = "the fund centre gets the title summary for a withdrawal"
//! requester = "provident-fund-bozhou"
//! subject_kind = "resident_id"        # optional
//! record_type = "real_estate_title"   # and/or `item`; with only `item`, every entry
//! view = "summary"                    # default `full`
//! item = "PF-WITHDRAWAL-HOUSE"        # optional
//! purpose = "PF-WITHDRAWAL"
//! at = "2026-11-25T10:00:00+08:00"    # optional, RFC 3339; default that instant
//! explicit_request = true             # optional: the fetch carries the subject's code
//! consent = true                      # optional: a consent on record covers it
//! representation = "spouse"            # optional: a verified relation acting for the subject
//! expect = "allow"                    # or "deny"
//! policies = ["provident-fund-withdrawal"]  # the deciding ids, any order
//! daily_quota = 500                   # optional: expected quota of an allow
//! ```
//!
//! A screening case names `screening = "ELDERLY-ALLOWANCE"` instead of a record type or
//! item (and no purpose: the item's is used): the `screen` action is decided for each of
//! the item's conditions, and each decision is checked against `expect` and `policies`.

use std::collections::BTreeSet;

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xgate_catalog::{Catalog, SubjectKind};

use crate::{AccessRequest, Decision, PolicySet};

/// The default `at` of a case: a Wednesday morning in office hours, China Standard Time.
const DEFAULT_AT: &str = "2026-11-25T10:00:00+08:00";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    requester: String,
    subject_kind: Option<SubjectKind>,
    record_type: Option<String>,
    view: Option<String>,
    item: Option<String>,
    /// A screening item: decide `screen` for each of its conditions.
    screening: Option<String>,
    /// Required but for screening cases.
    #[serde(default)]
    purpose: String,
    at: Option<String>,
    #[serde(default)]
    explicit_request: bool,
    #[serde(default)]
    consent: bool,
    /// A verified relation of an applicant acting for the subject.
    #[serde(default)]
    representation: String,
    expect: Expect,
    policies: Vec<String>,
    daily_quota: Option<u32>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Allow,
    Deny,
}

/// One case (or one entry of an item case) that did not decide as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    /// `file: case name`, and the view for item cases.
    pub case: String,
    /// What differed.
    pub message: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct CaseReport {
    /// Cases read.
    pub cases: usize,
    /// Decisions checked (an item case checks one per entry).
    pub decisions: usize,
    /// Mismatches and malformed cases.
    pub failures: Vec<CaseFailure>,
    /// Policy ids of the set that decided no case, sorted.
    pub uncovered: Vec<String>,
}

impl CaseReport {
    /// Whether every case passed and every policy decided at least one.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.uncovered.is_empty()
    }
}

/// Runs the cases of `files` (`(file name, toml text)`) against `set`.
pub fn run_cases(set: &PolicySet, catalog: &Catalog, files: &[(String, String)]) -> CaseReport {
    let mut report = CaseReport::default();
    let mut covered = BTreeSet::new();
    for (file, text) in files {
        let doc: CaseFile = match toml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                report.failures.push(CaseFailure {
                    case: file.clone(),
                    message: e.to_string().trim_end().to_owned(),
                });
                continue;
            }
        };
        for case in doc.case {
            report.cases += 1;
            let label = format!("{file}: {}", case.name);
            let mut fail = |message: String| {
                report.failures.push(CaseFailure {
                    case: label.clone(),
                    message,
                });
            };
            let at = case.at.as_deref().unwrap_or(DEFAULT_AT);
            let now = match OffsetDateTime::parse(at, &Rfc3339) {
                Ok(now) => now,
                Err(e) => {
                    fail(format!("`at` is not RFC 3339: {e}"));
                    continue;
                }
            };
            if let Some(code) = &case.screening {
                let screen = set.decide_screen(&case.requester, code, now);
                if !screen.errors.is_empty() && screen.decisions.is_empty() {
                    fail(screen.errors.join("; "));
                    continue;
                }
                for (condition, decision) in set
                    .screening(code)
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .zip(&screen.decisions)
                {
                    report.decisions += 1;
                    covered.extend(decision.policy_ids.iter().cloned());
                    if let Some(message) = mismatch(&case, decision) {
                        fail(format!(
                            "screen `{}.{}`: {message}",
                            condition.record_type, condition.view
                        ));
                    }
                }
                continue;
            }
            if case.purpose.is_empty() {
                fail("a case needs `purpose` (or `screening`)".to_owned());
                continue;
            }
            let targets: Vec<(String, String)> = match (&case.record_type, &case.item) {
                (Some(t), _) => {
                    vec![(
                        t.clone(),
                        case.view.clone().unwrap_or_else(|| "full".to_owned()),
                    )]
                }
                (None, Some(code)) => match set.item(code) {
                    Some(item) => item
                        .entries
                        .iter()
                        .filter(|e| {
                            case.subject_kind.is_none_or(|k| {
                                catalog.record_type(&e.record_type).map(|t| t.subject_kind)
                                    == Some(k)
                            })
                        })
                        .map(|e| (e.record_type.clone(), e.view.clone()))
                        .collect(),
                    None => {
                        fail(format!("unknown approval item `{code}`"));
                        continue;
                    }
                },
                (None, None) => {
                    fail("a case needs `record_type` or `item`".to_owned());
                    continue;
                }
            };
            if targets.is_empty() {
                fail("the item has no entry of this subject kind".to_owned());
                continue;
            }
            for (record_type, view) in targets {
                if let (Some(kind), Some(rt)) =
                    (case.subject_kind, catalog.record_type(&record_type))
                    && rt.subject_kind != kind
                {
                    fail(format!(
                        "`{record_type}` is about `{}`, not `{kind}`",
                        rt.subject_kind
                    ));
                    continue;
                }
                report.decisions += 1;
                let decision = set.decide(&AccessRequest {
                    requester: &case.requester,
                    record_type: &record_type,
                    view: &view,
                    purpose: &case.purpose,
                    item: case.item.as_deref(),
                    now,
                    explicit_request: case.explicit_request,
                    consent: case.consent,
                    representation: &case.representation,
                });
                covered.extend(decision.policy_ids.iter().cloned());
                if let Some(message) = mismatch(&case, &decision) {
                    fail(format!("`{record_type}.{view}`: {message}"));
                }
            }
        }
    }
    report.uncovered = set
        .policy_ids()
        .into_iter()
        .filter(|id| !covered.contains(id))
        .collect();
    report
}

fn mismatch(case: &Case, decision: &Decision) -> Option<String> {
    let got = if decision.allowed { "allow" } else { "deny" };
    let want = if case.expect == Expect::Allow {
        "allow"
    } else {
        "deny"
    };
    let mut want_ids = case.policies.clone();
    want_ids.sort_unstable();
    let mut problems = Vec::new();
    if got != want {
        problems.push(format!("expected {want}, got {got}"));
    }
    if want_ids != decision.policy_ids {
        problems.push(format!(
            "expected policies [{}], got [{}]",
            want_ids.join(", "),
            decision.policy_ids.join(", ")
        ));
    }
    if case.daily_quota.is_some() && case.daily_quota != decision.daily_quota {
        problems.push(format!(
            "expected daily quota {:?}, got {:?}",
            case.daily_quota, decision.daily_quota
        ));
    }
    if !decision.errors.is_empty() {
        problems.push(format!("errors: {}", decision.errors.join("; ")));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}
