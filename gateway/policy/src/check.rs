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

use std::collections::{BTreeSet, HashMap};

use cedar_policy_core::ast::{self, BinaryOp, Effect, Expr, ExprKind, Literal, Var};
use xgate_catalog::{Catalog, SharingClass, SubjectKind};

use crate::error::PolicyIssue;
use crate::schema::{ATTR_DEPARTMENT, ATTR_SHARING_CLASS, ATTR_SUBJECT_KIND, RECORD_TYPE};
use crate::shape::{self, resource_attr, string_literal};
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
}

impl CatalogFacts {
    pub(crate) fn new(catalog: &Catalog) -> Self {
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
        Self {
            sharing,
            departments: catalog.departments().map(|d| d.id.clone()).collect(),
            not_shared,
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
            ExprKind::Lit(Literal::EntityUID(uid))
                if uid.entity_type().to_string() == RECORD_TYPE =>
            {
                let id = uid.eid().as_ref();
                let offset = uid
                    .loc()
                    .map_or_else(|| offset_of(expr), |loc| loc.span.offset());
                match facts.sharing.get(id) {
                    None => issues.push(file.issue_at(offset, format!("unknown record type `{id}`"))),
                    Some(SharingClass::NotShared) if permit => issues.push(file.issue_at(
                        offset,
                        format!(
                            "record type `{id}` is not_shared in the catalog: no permit policy may name it"
                        ),
                    )),
                    Some(_) => {}
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
                }
            }
            ExprKind::BinaryApp {
                op: BinaryOp::Contains,
                arg1,
                arg2,
            } => {
                if let (ExprKind::Set(items), Some(attr)) = (arg1.expr_kind(), resource_attr(arg2))
                {
                    for item in items.iter() {
                        if let Some(value) = string_literal(item) {
                            check_attr_value(file, facts, attr, value, offset_of(item), issues);
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
    let limited = shape::possible_ids(policy, Var::Resource, RECORD_TYPE)
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
    let known = match attr {
        ATTR_DEPARTMENT => facts.departments.contains(value),
        ATTR_SHARING_CLASS => SHARING_CLASSES.iter().any(|c| c.as_str() == value),
        ATTR_SUBJECT_KIND => SUBJECT_KINDS.iter().any(|k| k.as_str() == value),
        _ => true,
    };
    if !known {
        let what = match attr {
            ATTR_DEPARTMENT => "department",
            ATTR_SHARING_CLASS => "sharing class",
            _ => "subject kind",
        };
        issues.push(file.issue_at(offset, format!("unknown {what} `{value}`")));
    }
}
