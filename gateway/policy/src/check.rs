//! Load-time checks that need the catalog or the policy source, beyond Cedar's own strict
//! validation: the `@id` annotation, `RecordType` literals, catalog attribute values, and
//! the rule that a `not_shared` record type can never be granted.
//!
//! These walk `cedar-policy-core`'s syntax tree because only it carries the source
//! location of each policy, annotation and literal; `cedar-policy`'s `Policy` exposes
//! `entity_literals()` but not where they are.
//!
//! # When a permit policy could grant a `not_shared` type
//!
//! Only when the catalog has such types is anything checked. A permit policy passes if
//! [`shape::possible_ids`] limits its resource to record types none of which is
//! `not_shared` (`resource == RecordType::"x"` in the scope, `resource in [RecordType::"x",
//! ..]` as a top-level conjunct, ...), or if a top-level conjunct of its conditions
//! excludes the class ([`shape::excludes_sharing_class`]: `resource.sharing_class !=
//! "not_shared"`, `resource.sharing_class == "unconditional"`, `unless {
//! resource.sharing_class == "not_shared" }`).
//!
//! Any permit policy naming a `not_shared` type anywhere is an error as well. The rule is
//! sound: a conjunct that is false (or an error) keeps the policy from applying. It is
//! not complete: a condition that excludes `not_shared` types in another way is rejected
//! and must be rewritten in one of those forms. `PolicySet::decide` refuses `not_shared`
//! types too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cedar_policy_core::ast::{self, BinaryOp, Effect, EntityUID, Expr, ExprKind, Literal, Var};
use xgate_catalog::{Catalog, SharingClass, SubjectKind};

use crate::data::{Data, ITEMS_FILE, PURPOSES_FILE, REQUESTERS_FILE};
use crate::error::PolicyIssue;
use crate::schema::{
    ATTR_DEPARTMENT, ATTR_RECORD_TYPE, ATTR_SHARING_CLASS, ATTR_SUBJECT_KIND, ATTR_VIEW,
    CONTEXT_ITEM, CONTEXT_PURPOSE, RECORD_TYPE, REQUESTER, REQUESTER_GROUP, VIEW,
};
use crate::shape::{self, context_attr, resource_attr, string_literal};
use crate::source::SourceFile;
use crate::{DEFAULT_DENY, NOT_SHARED};

/// Every sharing class, for checking string literals compared with `resource.sharing_class`.
const SHARING_CLASSES: [SharingClass; 3] = [
    SharingClass::Unconditional,
    SharingClass::Conditional,
    SharingClass::NotShared,
];
/// Every subject kind, for checking string literals compared with `resource.subject_kind`.
const SUBJECT_KINDS: [SubjectKind; 2] = [SubjectKind::ResidentId, SubjectKind::Uscc];

/// What the checks need to know of the catalog.
pub(crate) struct CatalogFacts {
    sharing: HashMap<String, SharingClass>,
    departments: BTreeSet<String>,
    /// The `not_shared` record type ids, sorted.
    not_shared: Vec<String>,
    /// `<record type>.<view>` of every view.
    views: BTreeSet<String>,
    view_names: BTreeSet<String>,
    purposes: BTreeSet<String>,
    items: BTreeSet<String>,
    requesters: BTreeSet<String>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl CatalogFacts {
    pub(crate) fn new(catalog: &Catalog, data: &Data) -> Self {
        let sharing: HashMap<String, SharingClass> = catalog
            .record_types()
            .map(|rt| (rt.id.clone(), rt.sharing_class))
            .collect();
        let mut not_shared: Vec<String> = sharing
            .iter()
            .filter(|(_, class)| **class == SharingClass::NotShared)
            .map(|(id, _)| id.clone())
            .collect();
        not_shared.sort_unstable();
        let mut views = BTreeSet::new();
        let mut view_names = BTreeSet::new();
        for rt in catalog.record_types() {
            for view in rt.views() {
                views.insert(crate::entities::view_id(&rt.id, &view.name));
                view_names.insert(view.name.clone());
            }
        }
        Self {
            sharing,
            departments: catalog.departments().map(|d| d.id.clone()).collect(),
            not_shared,
            views,
            view_names,
            purposes: data.purposes.iter().map(|p| p.code.clone()).collect(),
            // `context.item` is an approval item's code for `read` and a
            // screening item's for `screen`; their codes never clash.
            items: data
                .items
                .iter()
                .map(|i| i.code.clone())
                .chain(data.screenings.iter().map(|s| s.code.clone()))
                .collect(),
            requesters: data.requesters.iter().map(|r| r.id.clone()).collect(),
            groups: data.groups.clone(),
        }
    }

    /// The record type ids a resource literal stands for: a `RecordType` itself, a `View`
    /// its record type.
    pub(crate) fn resource_ids(&self, uid: &EntityUID) -> Option<BTreeSet<String>> {
        let id = uid.eid().as_ref();
        match uid.entity_type().to_string().as_str() {
            RECORD_TYPE => Some(BTreeSet::from([id.to_owned()])),
            VIEW => self
                .views
                .contains(id)
                .then(|| {
                    id.split_once('.')
                        .map(|(t, _)| BTreeSet::from([t.to_owned()]))
                })
                .flatten(),
            _ => None,
        }
    }

    /// The requester ids a principal literal stands for: a `Requester` itself, a
    /// `RequesterGroup` its members.
    pub(crate) fn requester_ids(&self, uid: &EntityUID) -> Option<BTreeSet<String>> {
        let id = uid.eid().as_ref();
        match uid.entity_type().to_string().as_str() {
            REQUESTER => Some(BTreeSet::from([id.to_owned()])),
            REQUESTER_GROUP => Some(self.groups.get(id).cloned().unwrap_or_default()),
            _ => None,
        }
    }

    fn is_not_shared(&self, record_type: &str) -> bool {
        self.sharing.get(record_type) == Some(&SharingClass::NotShared)
    }
}

/// A policy's `@id` and the byte offset of the annotation.
pub(crate) struct PolicyName {
    pub(crate) id: String,
    pub(crate) offset: usize,
}

/// Byte offset where a policy starts (its first annotation).
pub(crate) fn policy_offset(policy: &ast::Policy) -> usize {
    policy.loc().map_or(0, |loc| loc.span.offset())
}

/// The policy's `@id`, or `None` after reporting why it has no usable one.
pub(crate) fn policy_name(
    file: &SourceFile,
    policy: &ast::Policy,
    issues: &mut Vec<PolicyIssue>,
) -> Option<PolicyName> {
    let Some((_, annotation)) = policy.annotations().find(|(key, _)| key.as_ref() == "id") else {
        issues.push(file.issue_at(
            policy_offset(policy),
            "policy has no `@id(\"...\")` annotation",
        ));
        return None;
    };
    let offset = annotation
        .loc
        .as_ref()
        .map_or_else(|| policy_offset(policy), |loc| loc.span.offset());
    let id = annotation.val.as_str();
    if id.trim().is_empty() {
        issues.push(file.issue_at(offset, "`@id` is empty"));
        return None;
    }
    if id == DEFAULT_DENY || id == NOT_SHARED {
        issues.push(file.issue_at(
            offset,
            format!("`@id(\"{id}\")` is reserved for decisions no policy made"),
        ));
        return None;
    }
    Some(PolicyName {
        id: id.to_owned(),
        offset,
    })
}

/// Reports every catalog-related problem of one policy.
pub(crate) fn check_policy(
    file: &SourceFile,
    policy: &ast::Policy,
    facts: &CatalogFacts,
    issues: &mut Vec<PolicyIssue>,
) {
    let start = policy_offset(policy);
    let offset_of = |expr: &Expr| expr.source_loc().map_or(start, |loc| loc.span.offset());
    let permit = policy.effect() == Effect::Permit;
    // `condition()` is the scope constraints and the conditions as one expression.
    let condition = policy.condition();
    for expr in condition.subexpressions() {
        match expr.expr_kind() {
            ExprKind::Lit(Literal::EntityUID(uid)) => {
                let id = uid.eid().as_ref();
                let offset = uid
                    .loc()
                    .map_or_else(|| offset_of(expr), |loc| loc.span.offset());
                let entity_type = uid.entity_type().to_string();
                let record_type = match entity_type.as_str() {
                    RECORD_TYPE => Some(id),
                    VIEW => {
                        if facts.views.contains(id) {
                            id.split_once('.').map(|(t, _)| t)
                        } else {
                            issues.push(file.issue_at(offset, unknown_view(facts, id)));
                            None
                        }
                    }
                    REQUESTER => {
                        if !facts.requesters.contains(id) {
                            issues.push(file.issue_at(
                                offset,
                                format!("unknown requester `{id}` (not in `{REQUESTERS_FILE}`)"),
                            ));
                        }
                        None
                    }
                    REQUESTER_GROUP => {
                        if !facts.groups.contains_key(id) {
                            issues.push(file.issue_at(
                                offset,
                                format!(
                                    "unknown requester group `{id}` (no requester in `{REQUESTERS_FILE}` belongs to it)"
                                ),
                            ));
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(record_type) = record_type {
                    match facts.sharing.get(record_type) {
                        None => issues.push(
                            file.issue_at(offset, format!("unknown record type `{record_type}`")),
                        ),
                        Some(SharingClass::NotShared) if permit => issues.push(file.issue_at(
                            offset,
                            format!(
                                "record type `{record_type}` is not_shared in the catalog: no permit policy may name it"
                            ),
                        )),
                        Some(_) => {}
                    }
                }
            }
            ExprKind::BinaryApp {
                op: BinaryOp::Eq,
                arg1,
                arg2,
            } => {
                for (attr_side, value_side) in [(arg1, arg2), (arg2, arg1)] {
                    if let (Some(attr), Some(value)) =
                        (resource_attr(attr_side), string_literal(value_side))
                    {
                        check_attr_value(file, facts, attr, value, offset_of(value_side), issues);
                    }
                    if let (Some(attr), Some(value)) =
                        (context_attr(attr_side), string_literal(value_side))
                    {
                        check_context_value(
                            file,
                            facts,
                            attr,
                            value,
                            offset_of(value_side),
                            issues,
                        );
                    }
                }
            }
            ExprKind::BinaryApp {
                op: BinaryOp::Contains,
                arg1,
                arg2,
            } => {
                if let ExprKind::Set(items) = arg1.expr_kind() {
                    for item in items.iter() {
                        let Some(value) = string_literal(item) else {
                            continue;
                        };
                        if let Some(attr) = resource_attr(arg2) {
                            check_attr_value(file, facts, attr, value, offset_of(item), issues);
                        }
                        if let Some(attr) = context_attr(arg2) {
                            check_context_value(file, facts, attr, value, offset_of(item), issues);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if permit && !facts.not_shared.is_empty() && !excludes_not_shared(policy, facts) {
        issues.push(file.issue_at(
            start,
            format!(
                "permit policy could grant the not_shared record type{} {}: name the record \
                 types it grants, or add `when {{ resource.sharing_class != \"not_shared\" }}`",
                if facts.not_shared.len() == 1 { "" } else { "s" },
                backticked(&facts.not_shared),
            ),
        ));
    }
}

/// Whether `policy` is limited to record types that are not `not_shared`, or guarded by
/// a conjunct on the sharing class.
fn excludes_not_shared(policy: &ast::Policy, facts: &CatalogFacts) -> bool {
    let limited = shape::possible_ids(policy, Var::Resource, &|uid| facts.resource_ids(uid))
        .is_some_and(|ids| ids.iter().all(|id| !facts.is_not_shared(id)));
    limited
        || policy.non_scope_constraints().is_some_and(|conditions| {
            shape::conjuncts(conditions)
                .into_iter()
                .any(|c| shape::excludes_sharing_class(c, SharingClass::NotShared.as_str()))
        })
}

fn backticked(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("`{id}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_attr_value(
    file: &SourceFile,
    facts: &CatalogFacts,
    attr: &str,
    value: &str,
    offset: usize,
    issues: &mut Vec<PolicyIssue>,
) {
    let (known, what) = match attr {
        ATTR_DEPARTMENT => (facts.departments.contains(value), "department"),
        ATTR_SHARING_CLASS => (
            SHARING_CLASSES.iter().any(|c| c.as_str() == value),
            "sharing class",
        ),
        ATTR_SUBJECT_KIND => (
            SUBJECT_KINDS.iter().any(|k| k.as_str() == value),
            "subject kind",
        ),
        ATTR_RECORD_TYPE => (facts.sharing.contains_key(value), "record type"),
        ATTR_VIEW => (facts.view_names.contains(value), "view name"),
        _ => (true, ""),
    };
    if !known {
        issues.push(file.issue_at(offset, format!("unknown {what} `{value}`")));
    }
}

/// A string compared with `context.purpose` or `context.item` must be a declared code.
fn check_context_value(
    file: &SourceFile,
    facts: &CatalogFacts,
    attr: &str,
    value: &str,
    offset: usize,
    issues: &mut Vec<PolicyIssue>,
) {
    let message = match attr {
        CONTEXT_PURPOSE if !facts.purposes.contains(value) => {
            format!("unknown purpose `{value}` (not in `{PURPOSES_FILE}`)")
        }
        // `""` is the item of requests that name none.
        CONTEXT_ITEM if !value.is_empty() && !facts.items.contains(value) => {
            format!(
                "unknown approval item `{value}` (not in `{ITEMS_FILE}` nor `{}`)",
                crate::SCREENING_FILE
            )
        }
        _ => return,
    };
    issues.push(file.issue_at(offset, message));
}

fn unknown_view(facts: &CatalogFacts, id: &str) -> String {
    match id.split_once('.') {
        Some((record_type, view)) if facts.sharing.contains_key(record_type) => {
            format!("record type `{record_type}` has no view `{view}`")
        }
        Some((record_type, _)) => format!("unknown record type `{record_type}` in view `{id}`"),
        None => format!("view id `{id}` is not `<record type>.<view>`"),
    }
}

/// A permit's limit annotation, `@daily_quota("N")` or `@max_subjects_per_run("N")`:
/// `None` without one; an issue when it is not a positive integer or sits on a forbid
/// policy.
pub(crate) fn positive_annotation(
    file: &SourceFile,
    policy: &ast::Policy,
    key: &str,
    issues: &mut Vec<PolicyIssue>,
) -> Option<u32> {
    let (_, annotation) = policy.annotations().find(|(k, _)| k.as_ref() == key)?;
    let offset = annotation
        .loc
        .as_ref()
        .map_or_else(|| policy_offset(policy), |loc| loc.span.offset());
    if policy.effect() != Effect::Permit {
        issues.push(file.issue_at(offset, format!("`@{key}` only applies to permit policies")));
        return None;
    }
    match annotation.val.parse::<u32>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            issues.push(file.issue_at(
                offset,
                format!(
                    "`@{key}(\"{}\")` must be a positive integer",
                    annotation.val.as_str()
                ),
            ));
            None
        }
    }
}
