//! Screening items ("services looking for people", 免申即享): the yes/no
//! questions a benefits office or tax bureau may ask of many subjects at
//! once, declared in `screening.toml` beside the approval items and checked
//! against the catalog at load like them.
//!
//! An item is a purpose, a subject kind and a condition: `all` or `any` of
//! predicate views (each of one record type, with every parameter fixed,
//! optionally negated). Only predicate views: screening answers yes/no and
//! releases no record. Whether a requester may screen with an item is its
//! own Cedar action, `screen` ([`crate::PolicySet::decide_screen`]): a grant
//! to read does not imply one to screen, nor the other way round.
//!
//! ```toml
//! [[screening]]
//! code = "ELDERLY-ALLOWANCE"
//! name = "Elderly allowance (高龄津贴)"
//! purpose = "ELDERLY-ALLOWANCE"
//! subject_kind = "resident_id"
//! match = "all"
//! conditions = [
//!   { record_type = "household_registration", view = "registered_in", params = { place = "亳州市" } },
//!   { record_type = "resident_identity_card", view = "age_at_least", params = { n = "60" } },
//!   { record_type = "pension_entitlement", view = "receives_pension", not = true },
//! ]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use xgate_catalog::{Catalog, SharingClass, SubjectKind};

use crate::data::{ApprovalItem, Purpose};
use crate::error::PolicyIssue;
use crate::source::SourceFile;

/// File name of the screening items.
pub const SCREENING_FILE: &str = "screening.toml";

/// How an item combines its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Eligible when every condition holds.
    All,
    /// Eligible when some condition holds.
    Any,
}

/// One predicate an item asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub record_type: String,
    /// A predicate view of `record_type`.
    pub view: String,
    /// Every parameter the view declares, fixed by the item.
    pub params: BTreeMap<String, String>,
    /// The condition holds when the predicate is false.
    pub negate: bool,
    /// The department holding `record_type` (from the catalog).
    pub department: String,
}

/// A screening item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreeningItem {
    /// e.g. `ELDERLY-ALLOWANCE`; never the code of an approval item.
    pub code: String,
    pub name: String,
    /// The purpose screening runs state (and the audit log records).
    pub purpose: String,
    /// Whom the item screens: every condition's record type is of this kind.
    pub subject_kind: SubjectKind,
    pub combine: Match,
    pub conditions: Vec<Condition>,
}

impl ScreeningItem {
    /// Eligibility from the predicates' answers, in condition order (`None`:
    /// no answer, e.g. the department was unavailable). Three-valued: a
    /// subject is not eligible only when the known answers already settle
    /// it; otherwise unknown (`None`), to be screened again.
    pub fn eligible(&self, answers: &[Option<bool>]) -> Option<bool> {
        let holds = self
            .conditions
            .iter()
            .zip(answers)
            .map(|(c, a)| a.map(|v| v != c.negate));
        let (settled, unknown) = match self.combine {
            Match::All => (false, true),
            Match::Any => (true, false),
        };
        let mut missing = answers.len() < self.conditions.len();
        for h in holds {
            match h {
                Some(v) if v == settled => return Some(settled),
                None => missing = true,
                Some(_) => {}
            }
        }
        if missing { None } else { Some(unknown) }
    }

    /// The departments the item asks, each once, in condition order.
    pub fn departments(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.conditions {
            if !out.contains(&c.department.as_str()) {
                out.push(&c.department);
            }
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreeningDoc {
    #[serde(default)]
    screening: Vec<ItemDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemDoc {
    code: Spanned<String>,
    name: String,
    purpose: Spanned<String>,
    subject_kind: Spanned<String>,
    #[serde(rename = "match")]
    combine: Spanned<String>,
    conditions: Vec<ConditionDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDoc {
    record_type: Spanned<String>,
    view: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    not: bool,
}

/// Reads and checks `screening.toml`; every problem is an issue at its place.
pub(crate) fn load(
    file: &SourceFile,
    catalog: &Catalog,
    purposes: &[Purpose],
    items: &[ApprovalItem],
    issues: &mut Vec<PolicyIssue>,
) -> Vec<ScreeningItem> {
    let doc: ScreeningDoc = match toml::from_str(&file.text) {
        Ok(doc) => doc,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            issues.push(file.issue_at(offset, e.message().trim_end().to_owned()));
            return Vec::new();
        }
    };
    let mut out: Vec<ScreeningItem> = Vec::new();
    for item in doc.screening {
        let at = item.code.span().start;
        let Some(checked) = check(file, item, catalog, purposes, items, issues) else {
            continue;
        };
        if out.iter().any(|i| i.code == checked.code) {
            issues.push(file.issue_at(
                at,
                format!("screening item `{}` declared twice", checked.code),
            ));
        } else {
            out.push(checked);
        }
    }
    out
}

fn check(
    file: &SourceFile,
    doc: ItemDoc,
    catalog: &Catalog,
    purposes: &[Purpose],
    items: &[ApprovalItem],
    issues: &mut Vec<PolicyIssue>,
) -> Option<ScreeningItem> {
    let before = issues.len();
    let code = doc.code.get_ref();
    let at = doc.code.span().start;
    crate::data::check_code(file, "screening", &doc.code, issues);
    if items.iter().any(|i| &i.code == code) {
        issues.push(file.issue_at(
            at,
            format!("`{code}` is an approval item's code; a screening item needs its own"),
        ));
    }
    crate::data::check_purpose(file, &doc.purpose, purposes, issues);
    let kind = SubjectKind::parse(doc.subject_kind.get_ref());
    if kind.is_none() {
        issues.push(file.issue_at(
            doc.subject_kind.span().start,
            format!(
                "subject_kind `{}` is neither `resident_id` nor `uscc`",
                doc.subject_kind.get_ref()
            ),
        ));
    }
    let combine = match doc.combine.get_ref().as_str() {
        "all" => Some(Match::All),
        "any" => Some(Match::Any),
        other => {
            issues.push(file.issue_at(
                doc.combine.span().start,
                format!("match `{other}` is neither `all` nor `any`"),
            ));
            None
        }
    };
    if doc.conditions.is_empty() {
        issues.push(file.issue_at(at, format!("screening item `{code}` has no conditions")));
    }
    let mut conditions: Vec<Condition> = Vec::with_capacity(doc.conditions.len());
    for c in doc.conditions {
        let type_id = c.record_type.get_ref();
        let type_at = c.record_type.span().start;
        let Some(rt) = catalog.record_type(type_id) else {
            issues.push(file.issue_at(type_at, format!("unknown record type `{type_id}`")));
            continue;
        };
        if rt.sharing_class == SharingClass::NotShared {
            issues.push(file.issue_at(
                type_at,
                format!(
                    "record type `{type_id}` is not_shared in the catalog: nothing may screen it"
                ),
            ));
            continue;
        }
        if let Some(kind) = kind
            && rt.subject_kind != kind
        {
            issues.push(file.issue_at(
                type_at,
                format!(
                    "record type `{type_id}` is about `{}` subjects, the item screens `{}`",
                    rt.subject_kind.as_str(),
                    kind.as_str()
                ),
            ));
        }
        let view_name = c.view.get_ref();
        let view_at = c.view.span().start;
        match rt.view(view_name) {
            None => issues.push(file.issue_at(
                view_at,
                format!("record type `{type_id}` has no view `{view_name}`"),
            )),
            Some(view) if !view.is_predicate() => issues.push(file.issue_at(
                view_at,
                format!(
                    "`{type_id}.{view_name}` is not a predicate view: screening answers yes/no and releases no record"
                ),
            )),
            Some(view) => {
                // Every parameter fixed: a run names subjects, nothing else.
                if let Err(e) = view.check_params(&c.params) {
                    issues.push(file.issue_at(view_at, format!("`{type_id}.{view_name}`: {e}")));
                }
            }
        }
        if conditions
            .iter()
            .any(|d| &d.record_type == type_id && &d.view == view_name && d.params == c.params)
        {
            issues.push(file.issue_at(
                type_at,
                format!("`{type_id}.{view_name}` asked twice in `{code}`"),
            ));
        }
        conditions.push(Condition {
            record_type: c.record_type.get_ref().clone(),
            view: c.view.get_ref().clone(),
            params: c.params,
            negate: c.not,
            department: rt.department.clone(),
        });
    }
    match (kind, combine) {
        (Some(subject_kind), Some(combine)) if issues.len() == before => Some(ScreeningItem {
            code: doc.code.into_inner(),
            name: doc.name,
            purpose: doc.purpose.into_inner(),
            subject_kind,
            combine,
            conditions,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(combine: Match, negate: &[bool]) -> ScreeningItem {
        ScreeningItem {
            code: "X".into(),
            name: "x".into(),
            purpose: "P".into(),
            subject_kind: SubjectKind::ResidentId,
            combine,
            conditions: negate
                .iter()
                .enumerate()
                .map(|(i, n)| Condition {
                    record_type: format!("t{i}"),
                    view: "v".into(),
                    params: BTreeMap::new(),
                    negate: *n,
                    department: format!("d{}", i % 2),
                })
                .collect(),
        }
    }

    #[test]
    fn eligibility_is_three_valued() {
        let all = item(Match::All, &[false, false, true]);
        assert_eq!(
            all.eligible(&[Some(true), Some(true), Some(false)]),
            Some(true)
        );
        assert_eq!(
            all.eligible(&[Some(true), Some(true), Some(true)]),
            Some(false)
        );
        // A known failure settles it even with an answer missing.
        assert_eq!(all.eligible(&[Some(false), None, Some(false)]), Some(false));
        assert_eq!(all.eligible(&[Some(true), None, Some(false)]), None);
        assert_eq!(
            all.eligible(&[Some(true), Some(true)]),
            None,
            "too few answers"
        );
        let any = item(Match::Any, &[false, true]);
        assert_eq!(any.eligible(&[Some(false), Some(false)]), Some(true));
        assert_eq!(any.eligible(&[Some(false), Some(true)]), Some(false));
        assert_eq!(any.eligible(&[None, Some(false)]), Some(true));
        assert_eq!(any.eligible(&[None, Some(true)]), None);
        assert_eq!(all.departments(), ["d0", "d1"]);
    }
}
