//! Turning policy files into a checked, validated Cedar policy set.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use cedar_policy::{PolicyId, ValidationMode, Validator};
use cedar_policy_core::ast::Var;
use cedar_policy_core::parser;
use miette::Diagnostic;

use crate::Catalog;
use crate::check::{self, CatalogFacts};
use crate::data::{self, Data, ITEMS_FILE, PURPOSES_FILE, REQUESTERS_FILE};
use crate::error::{PolicyIssue, PolicyLoadError};
use crate::index::Scoped;
use crate::schema::GeneratedSchema;
use crate::screening::SCREENING_FILE;
use crate::shape;
use crate::source::SourceFile;

/// The file extension of policy files.
const EXTENSION: &str = "cedar";
/// The file extension of the data files.
const DATA_EXTENSION: &str = "toml";

/// A policy that passed the per-file checks, under its `@id`.
struct Named {
    file: usize,
    /// Where the policy starts, for validation errors without a location.
    offset: usize,
    /// Where its `@id` annotation is, for duplicate reports.
    id_offset: usize,
    scoped: Scoped,
    daily_quota: Option<u32>,
    max_subjects_per_run: Option<u32>,
}

/// The checked policies under their `@id`s.
pub(crate) struct Checked {
    /// The ids, sorted.
    pub(crate) ids: Vec<String>,
    /// The policies with the requests they are limited to.
    pub(crate) scoped: Vec<Scoped>,
    /// Policy id -> its `@daily_quota`.
    pub(crate) quotas: HashMap<String, Option<u32>>,
    /// Policy id -> its `@max_subjects_per_run` (screen permits).
    pub(crate) run_limits: HashMap<String, Option<u32>>,
    /// Policy id -> whether it is a permit.
    pub(crate) permits: HashMap<String, bool>,
    /// Policy id -> its `@reason`: what a denied caller can do about it.
    pub(crate) reasons: HashMap<String, String>,
    pub(crate) data: Data,
}

/// Reads every `*.cedar` and `*.toml` file of `dir` (not of subdirectories), sorted by
/// file name.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<SourceFile>, PolicyLoadError> {
    let dir_name = dir.display().to_string();
    let fail = |message: String| PolicyLoadError {
        errors: vec![PolicyIssue::whole_file(dir_name.clone(), message)],
    };
    let entries =
        fs::read_dir(dir).map_err(|e| fail(format!("cannot read the policy directory: {e}")))?;
    let mut issues = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("cannot read the policy directory: {e}")))?;
        let path = entry.path();
        if path
            .extension()
            .is_none_or(|ext| ext != EXTENSION && ext != DATA_EXTENSION)
            || !path.is_file()
        {
            continue;
        }
        let display = path.display().to_string();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            issues.push(PolicyIssue::whole_file(display, "file name is not utf-8"));
            continue;
        };
        match fs::read_to_string(&path) {
            Ok(text) => files.push(SourceFile::new(name.to_owned(), display, text)),
            Err(e) => issues.push(PolicyIssue::whole_file(
                display,
                format!("cannot read: {e}"),
            )),
        }
    }
    if !issues.is_empty() {
        return Err(PolicyLoadError { errors: issues });
    }
    if !files.iter().any(|f| f.name.ends_with(".cedar")) {
        // Deny-everything from a mistyped path would look like a policy problem; say so.
        return Err(fail(format!(
            "no `*.{EXTENSION}` file in the policy directory"
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Parses, checks and validates `files` (sorted by name, names unique).
pub(crate) fn check(
    files: &[SourceFile],
    catalog: &Catalog,
    schema: &GeneratedSchema,
) -> Result<Checked, PolicyLoadError> {
    let mut issues = Vec::new();
    let mut data_files = Vec::new();
    for file in files {
        if file.name.ends_with(&format!(".{DATA_EXTENSION}")) {
            if [PURPOSES_FILE, ITEMS_FILE, REQUESTERS_FILE, SCREENING_FILE]
                .contains(&file.name.as_str())
            {
                data_files.push(file);
            } else {
                issues.push(PolicyIssue::whole_file(
                    file.display.clone(),
                    format!(
                        "unknown data file: expected `{PURPOSES_FILE}`, `{ITEMS_FILE}`, `{REQUESTERS_FILE}` or `{SCREENING_FILE}`"
                    ),
                ));
            }
        } else if !file.name.ends_with(&format!(".{EXTENSION}")) {
            issues.push(PolicyIssue::whole_file(
                file.display.clone(),
                format!("not a policy file: expected `*.{EXTENSION}` or `*.{DATA_EXTENSION}`"),
            ));
        }
    }
    let data = data::load(&data_files, catalog, &mut issues);
    let facts = CatalogFacts::new(catalog, &data);
    let mut named: HashMap<String, Named> = HashMap::new();
    for (index, file) in files.iter().enumerate() {
        if file.name.ends_with(&format!(".{EXTENSION}")) {
            check_file(index, file, files, &facts, &mut named, &mut issues);
        }
    }

    let mut policies = cedar_policy::PolicySet::new();
    for named in named.values() {
        if let Err(e) = policies.add(named.scoped.policy.clone()) {
            let file = files.get(named.file);
            issues.extend(file.map(|f| f.issue_at(named.offset, e.to_string())));
        }
    }
    let validation =
        Validator::new(schema.schema.clone()).validate(&policies, ValidationMode::Strict);
    // Warnings count as errors: an impossible policy is a mistake, and a confusable or
    // bidirectional string can make a forbid policy read otherwise than it evaluates.
    let diagnostics = validation
        .validation_errors()
        .map(|e| (e.policy_id(), e as &dyn Diagnostic))
        .chain(
            validation
                .validation_warnings()
                .map(|w| (w.policy_id(), w as &dyn Diagnostic)),
        );
    for (id, diagnostic) in diagnostics {
        let located = named
            .get(AsRef::<str>::as_ref(id))
            .and_then(|n| files.get(n.file).map(|file| (file, n.offset)));
        issues.push(match located {
            Some((file, offset)) => file.issue_from_diagnostic(diagnostic, offset),
            // Never expected; but a finding must not be lost for want of a place.
            None => PolicyIssue::whole_file("<policies>", diagnostic.to_string()),
        });
    }

    if !issues.is_empty() {
        issues.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        issues.dedup();
        return Err(PolicyLoadError { errors: issues });
    }
    let mut ids: Vec<String> = named.keys().cloned().collect();
    ids.sort_unstable();
    let mut scoped = Vec::with_capacity(named.len());
    let mut quotas = HashMap::with_capacity(named.len());
    let mut run_limits = HashMap::with_capacity(named.len());
    let mut permits = HashMap::with_capacity(named.len());
    let mut reasons = HashMap::new();
    for (id, named) in named {
        if let Some(reason) = named.scoped.policy.annotation(crate::REASON_ANNOTATION) {
            reasons.insert(id.clone(), reason.to_owned());
        }
        permits.insert(
            id.clone(),
            named.scoped.policy.effect() == cedar_policy::Effect::Permit,
        );
        run_limits.insert(id.clone(), named.max_subjects_per_run);
        quotas.insert(id, named.daily_quota);
        scoped.push(named.scoped);
    }
    Ok(Checked {
        ids,
        scoped,
        quotas,
        run_limits,
        permits,
        reasons,
        data,
    })
}

/// Parses one file, checks its policies and adds those with a unique `@id` to `named`.
fn check_file(
    index: usize,
    file: &SourceFile,
    files: &[SourceFile],
    facts: &CatalogFacts,
    named: &mut HashMap<String, Named>,
    issues: &mut Vec<PolicyIssue>,
) {
    // `cedar-policy` gives the policies the authorizer runs; `cedar-policy-core` the same
    // policies (same ids: `policy0`, `policy1`, ... in file order) with source locations.
    let parsed: cedar_policy::PolicySet = match file.text.parse() {
        Ok(parsed) => parsed,
        Err(errors) => {
            let errors: &cedar_policy::ParseErrors = &errors;
            issues.extend(errors.iter().map(|e| file.issue_from_diagnostic(e, 0)));
            return;
        }
    };
    let located = match parser::parse_policyset(&file.text) {
        Ok(located) => located,
        Err(errors) => {
            issues.extend(errors.iter().map(|e| file.issue_from_diagnostic(e, 0)));
            return;
        }
    };
    for template in located.templates() {
        let offset = template.loc().map_or(0, |loc| loc.span.offset());
        issues.push(file.issue_at(
            offset,
            "policy templates (`?principal`, `?resource`) are not supported",
        ));
    }
    let mut in_file: Vec<_> = located.policies().collect();
    in_file.sort_by_key(|p| check::policy_offset(p));
    for policy in in_file {
        check::check_policy(file, policy, facts, issues);
        let daily_quota = check::positive_annotation(file, policy, crate::QUOTA_ANNOTATION, issues);
        let max_subjects_per_run =
            check::positive_annotation(file, policy, crate::RUN_LIMIT_ANNOTATION, issues);
        let Some(name) = check::policy_name(file, policy, issues) else {
            continue;
        };
        if let Some(first) = named.get(&name.id) {
            let where_first = files.get(first.file).map_or_else(String::new, |f| {
                let (line, column) = f.position(first.id_offset);
                format!(": first used at {}:{line}:{column}", f.display)
            });
            issues.push(file.issue_at(
                name.offset,
                format!("duplicate `@id(\"{}\")`{where_first}", name.id),
            ));
            continue;
        }
        let Some(policy_text) = parsed.policy(&PolicyId::new(policy.id().as_ref())) else {
            issues.push(file.issue_at(
                check::policy_offset(policy),
                "internal error: the two cedar parsers disagree on this file",
            ));
            continue;
        };
        named.insert(
            name.id.clone(),
            Named {
                file: index,
                offset: check::policy_offset(policy),
                id_offset: name.offset,
                scoped: Scoped {
                    policy: policy_text.new_id(PolicyId::new(&name.id)),
                    requesters: shape::possible_ids(policy, Var::Principal, &|uid| {
                        facts.requester_ids(uid)
                    }),
                    record_types: shape::possible_ids(policy, Var::Resource, &|uid| {
                        facts.resource_ids(uid)
                    }),
                    reads_time: shape::reads_time(&policy.condition()),
                },
                daily_quota,
                max_subjects_per_run,
            },
        );
    }
}
