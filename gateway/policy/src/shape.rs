//! What a policy's shape says about the requests it can apply to, read from
//! `cedar-policy-core`'s syntax tree: which requester and record type ids it is limited to.
//! Both the `not_shared` check and the decision index rest on this.
//!
//! A variable is limited by its scope (`== E`, `in E`, `is T in E`) and by top-level
//! conjuncts of the conditions (`var == E`, `var in E`, `var in [E, ..]`,
//! `[E, ..].contains(var)`), where every `E` is a literal the caller's resolver maps to the
//! ids it stands for: a `RecordType` or `View` literal to its record type, a `Requester`
//! to itself, a `RequesterGroup` to its members (treating `==` like `in` only widens the
//! set, which is safe). Any other form, or a literal the resolver does not know, limits
//! nothing: the answer is then "unlimited", which is always safe.

use std::collections::BTreeSet;

use cedar_policy_core::ast::{
    self, BinaryOp, EntityReference, EntityUID, Expr, ExprKind, Literal,
    PrincipalOrResourceConstraint, UnaryOp, Var,
};

use crate::schema::ATTR_SHARING_CLASS;

/// The top-level conjuncts of an expression (`a && (b && c)` → `a`, `b`, `c`).
pub(crate) fn conjuncts(expr: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e.expr_kind() {
            ExprKind::And { left, right } => {
                stack.push(right);
                stack.push(left);
            }
            _ => out.push(e),
        }
    }
    out
}

/// Maps an entity literal to the ids it stands for; `None` for a literal it cannot place.
pub(crate) type Resolver<'a> = &'a dyn Fn(&EntityUID) -> Option<BTreeSet<String>>;

/// The ids `var` (`principal` or `resource`) may have for `policy` to apply, `None` when
/// the policy does not limit them.
pub(crate) fn possible_ids(
    policy: &ast::Policy,
    var: Var,
    entity_type: Resolver<'_>,
) -> Option<BTreeSet<String>> {
    let scope = match var {
        Var::Principal => policy.principal_constraint().as_inner().clone(),
        _ => policy.resource_constraint().as_inner().clone(),
    };
    let mut limit = match &scope {
        PrincipalOrResourceConstraint::Eq(EntityReference::EUID(uid))
        | PrincipalOrResourceConstraint::In(EntityReference::EUID(uid))
        | PrincipalOrResourceConstraint::IsIn(_, EntityReference::EUID(uid)) => {
            ids_of([uid.as_ref()], entity_type)
        }
        _ => None,
    };
    for conjunct in policy
        .non_scope_constraints()
        .map(conjuncts)
        .unwrap_or_default()
    {
        if let Some(ids) = conjunct_ids(conjunct, var, entity_type) {
            limit = Some(match limit {
                Some(known) => known.intersection(&ids).cloned().collect(),
                None => ids,
            });
        }
    }
    limit
}

/// The ids one conjunct limits `var` to, if it is one of the recognised forms.
fn conjunct_ids(expr: &Expr, var: Var, entity_type: Resolver<'_>) -> Option<BTreeSet<String>> {
    match expr.expr_kind() {
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => {
            if is_var(arg1, var) {
                ids_of([entity_literal(arg2)?], entity_type)
            } else if is_var(arg2, var) {
                ids_of([entity_literal(arg1)?], entity_type)
            } else {
                None
            }
        }
        ExprKind::BinaryApp {
            op: BinaryOp::In,
            arg1,
            arg2,
        } if is_var(arg1, var) => match arg2.expr_kind() {
            ExprKind::Set(items) => ids_of(entity_literals(items)?, entity_type),
            _ => ids_of([entity_literal(arg2)?], entity_type),
        },
        ExprKind::BinaryApp {
            op: BinaryOp::Contains,
            arg1,
            arg2,
        } if is_var(arg2, var) => match arg1.expr_kind() {
            ExprKind::Set(items) => ids_of(entity_literals(items)?, entity_type),
            _ => None,
        },
        _ => None,
    }
}

/// The ids `uids` stand for, if the resolver places all of them.
fn ids_of<'a>(
    uids: impl IntoIterator<Item = &'a EntityUID>,
    resolve: Resolver<'_>,
) -> Option<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for uid in uids {
        ids.extend(resolve(uid)?);
    }
    Some(ids)
}

fn entity_literal(expr: &Expr) -> Option<&EntityUID> {
    match expr.expr_kind() {
        ExprKind::Lit(Literal::EntityUID(uid)) => Some(uid),
        _ => None,
    }
}

fn entity_literals(items: &[Expr]) -> Option<Vec<&EntityUID>> {
    items.iter().map(entity_literal).collect()
}

fn is_var(expr: &Expr, var: Var) -> bool {
    matches!(expr.expr_kind(), ExprKind::Var(v) if *v == var)
}

/// `resource.<attr>` → `attr`.
pub(crate) fn resource_attr(expr: &Expr) -> Option<&str> {
    match expr.expr_kind() {
        ExprKind::GetAttr { expr, attr } if is_var(expr, Var::Resource) => Some(attr.as_str()),
        _ => None,
    }
}

/// `context.<attr>` → `attr`.
pub(crate) fn context_attr(expr: &Expr) -> Option<&str> {
    match expr.expr_kind() {
        ExprKind::GetAttr { expr, attr } if is_var(expr, Var::Context) => Some(attr.as_str()),
        _ => None,
    }
}

/// Whether the expression reads `context.now` or `context.local_time`, or uses `context`
/// other than through an attribute (conservatively counted as reading them): decisions of
/// such a policy depend on the minute of the request.
pub(crate) fn reads_time(expr: &Expr) -> bool {
    let mut bare = 0usize;
    let mut through_attr = 0usize;
    for e in expr.subexpressions() {
        if let Some(attr) = context_attr(e) {
            through_attr += 1;
            if attr == crate::schema::CONTEXT_NOW || attr == crate::schema::CONTEXT_LOCAL_TIME {
                return true;
            }
        } else if is_var(e, Var::Context) {
            bare += 1;
        }
    }
    bare > through_attr
}

pub(crate) fn string_literal(expr: &Expr) -> Option<&str> {
    match expr.expr_kind() {
        ExprKind::Lit(Literal::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// Whether a conjunct is false for every record type of sharing class `excluded`:
/// `resource.sharing_class == "<other class>"`, `resource.sharing_class != "<excluded>"`,
/// or the negation of a disjunction with a disjunct `resource.sharing_class ==
/// "<excluded>"` (how `unless { .. || .. }` reads).
pub(crate) fn excludes_sharing_class(conjunct: &Expr, excluded: &str) -> bool {
    match conjunct.expr_kind() {
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => sharing_class_compared(arg1, arg2).is_some_and(|class| class != excluded),
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => tests_sharing_class(arg, excluded),
        _ => false,
    }
}

/// Whether `expr` is true for every record type of sharing class `class`.
fn tests_sharing_class(expr: &Expr, class: &str) -> bool {
    match expr.expr_kind() {
        ExprKind::Or { left, right } => {
            tests_sharing_class(left, class) || tests_sharing_class(right, class)
        }
        ExprKind::BinaryApp {
            op: BinaryOp::Eq,
            arg1,
            arg2,
        } => sharing_class_compared(arg1, arg2) == Some(class),
        _ => false,
    }
}

/// `resource.sharing_class == "x"` (either way round) → `x`.
fn sharing_class_compared<'a>(a: &'a Expr, b: &'a Expr) -> Option<&'a str> {
    if resource_attr(a) == Some(ATTR_SHARING_CLASS) {
        string_literal(b)
    } else if resource_attr(b) == Some(ATTR_SHARING_CLASS) {
        string_literal(a)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use cedar_policy_core::parser;

    use super::*;

    /// A resolver accepting literals of one entity type, each standing for its own id.
    fn same_type(entity_type: &str) -> impl Fn(&EntityUID) -> Option<BTreeSet<String>> + '_ {
        move |uid| {
            (uid.entity_type().to_string() == entity_type)
                .then(|| BTreeSet::from([uid.eid().as_ref().to_owned()]))
        }
    }

    fn ids(src: &str, var: Var, entity_type: &str) -> Option<Vec<String>> {
        let set = parser::parse_policyset(src).unwrap();
        let policy = set.policies().next().unwrap();
        possible_ids(policy, var, &same_type(entity_type)).map(|ids| ids.into_iter().collect())
    }

    fn resources(src: &str) -> Option<Vec<String>> {
        ids(src, Var::Resource, "RecordType")
    }

    #[test]
    fn scope_and_conjuncts_limit_ids() {
        assert_eq!(resources("permit(principal, action, resource);"), None);
        assert_eq!(
            resources(r#"permit(principal, action, resource == RecordType::"a");"#),
            Some(vec!["a".into()])
        );
        assert_eq!(
            resources(r#"permit(principal, action, resource is RecordType in RecordType::"a");"#),
            Some(vec!["a".into()])
        );
        assert_eq!(
            resources(
                r#"permit(principal, action, resource) when { context.purpose == "x" && resource in [RecordType::"a", RecordType::"b"] };"#
            ),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            resources(
                r#"permit(principal, action, resource) when { [RecordType::"a", RecordType::"b"].contains(resource) } when { RecordType::"b" == resource };"#
            ),
            Some(vec!["b".into()])
        );
        assert_eq!(
            ids(
                r#"permit(principal in Requester::"r", action, resource);"#,
                Var::Principal,
                "Requester"
            ),
            Some(vec!["r".into()])
        );
    }

    #[test]
    fn other_forms_limit_nothing() {
        for src in [
            // a disjunction
            r#"permit(principal, action, resource) when { resource == RecordType::"a" || context.purpose == "x" };"#,
            // a literal of another type (groups may come)
            r#"permit(principal, action, resource in Group::"g");"#,
            r#"permit(principal, action, resource) when { resource in [RecordType::"a", Group::"g"] };"#,
            // a negation
            r#"permit(principal, action, resource) unless { resource == RecordType::"a" };"#,
            // not a literal
            r#"permit(principal, action, resource) when { [resource].contains(resource) };"#,
        ] {
            assert_eq!(resources(src), None, "{src}");
        }
    }

    #[test]
    fn sharing_class_exclusions() {
        let conjunct = |src: &str| {
            let set = parser::parse_policyset(&format!(
                "permit(principal, action, resource) when {{ {src} }};"
            ))
            .unwrap();
            let policy = set.policies().next().unwrap();
            excludes_sharing_class(policy.non_scope_constraints().unwrap(), "not_shared")
        };
        assert!(conjunct(r#"resource.sharing_class != "not_shared""#));
        assert!(conjunct(r#""not_shared" != resource.sharing_class"#));
        assert!(conjunct(r#"resource.sharing_class == "conditional""#));
        assert!(conjunct(
            r#"!(context.purpose == "x" || resource.sharing_class == "not_shared")"#
        ));
        assert!(!conjunct(r#"resource.sharing_class == "not_shared""#));
        assert!(!conjunct(r#"resource.sharing_class != "conditional""#));
        assert!(!conjunct(r#"!(resource.department == "not_shared")"#));
    }
}
