//! The policy set's data files: `purposes.toml` (purpose codes and their legal basis),
//! `items.toml` (approval items: the record types and views one approval needs) and
//! `requesters.toml` (requester ids and the groups they belong to). Each is optional (an
//! absent file declares nothing) and checked against the catalog; every problem names
//! its `file:line:column`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use toml::Spanned;
use xgate_catalog::{Catalog, SharingClass};

use crate::error::PolicyIssue;
use crate::source::SourceFile;

/// File name of the purpose registry.
pub const PURPOSES_FILE: &str = "purposes.toml";
/// File name of the approval items.
pub const ITEMS_FILE: &str = "items.toml";
/// File name of the requester registry.
pub const REQUESTERS_FILE: &str = "requesters.toml";

/// A purpose code a request may state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    /// e.g. `PF-WITHDRAWAL`.
    pub code: String,
    /// Human-readable name.
    pub name: String,
    /// The legal provision that allows the processing.
    pub legal_basis: String,
}

/// An approval item: one kind of approval and the records it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalItem {
    /// e.g. `PF-WITHDRAWAL-HOUSE`.
    pub code: String,
    /// Human-readable name.
    pub name: String,
    /// The purpose code requests for this item state.
    pub purpose: String,
    /// What the item needs, in file order.
    pub entries: Vec<ItemEntry>,
}

/// One record type and view an approval item needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemEntry {
    /// Catalog record type id.
    pub record_type: String,
    /// A view of that type.
    pub view: String,
    /// Fixed view parameters; a parameter the view declares but the item leaves out is
    /// supplied by the request.
    pub params: BTreeMap<String, String>,
}

/// A known requester (a calling approval system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The id in its certificate, `xgate://requester/<id>`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Groups it belongs to (`RequesterGroup` entities), e.g. `bozhou-approval-bureaus`.
    pub groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposesDoc {
    #[serde(default)]
    purpose: Vec<PurposeDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeDoc {
    code: Spanned<String>,
    name: String,
    legal_basis: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsDoc {
    #[serde(default)]
    item: Vec<ItemDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemDoc {
    code: Spanned<String>,
    name: String,
    purpose: Spanned<String>,
    entries: Vec<EntryDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryDoc {
    record_type: Spanned<String>,
    view: Spanned<String>,
    params: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestersDoc {
    #[serde(default)]
    requester: Vec<RequesterDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequesterDoc {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

/// The checked contents of the data files.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub(crate) purposes: Vec<Purpose>,
    pub(crate) items: Vec<ApprovalItem>,
    pub(crate) requesters: Vec<Requester>,
    /// Group id -> member requester ids.
    pub(crate) groups: BTreeMap<String, BTreeSet<String>>,
    pub(crate) screenings: Vec<crate::screening::ScreeningItem>,
}

fn parse<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
    issues: &mut Vec<PolicyIssue>,
) -> Option<T> {
    match toml::from_str(&file.text) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            issues.push(file.issue_at(offset, e.message().trim_end().to_owned()));
            None
        }
    }
}

/// Whether `code` is a usable purpose or item code: upper-case letters, digits, `-`.
fn is_code(code: &str) -> bool {
    let mut bytes = code.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// An issue when an item's (`what`) code is not `^[A-Z][A-Z0-9-]*$`.
pub(crate) fn check_code(
    file: &SourceFile,
    what: &str,
    code: &Spanned<String>,
    issues: &mut Vec<PolicyIssue>,
) {
    if !is_code(code.get_ref()) {
        issues.push(file.issue_at(
            code.span().start,
            format!(
                "{what} code `{}` does not match `^[A-Z][A-Z0-9-]*$`",
                code.get_ref()
            ),
        ));
    }
}

/// An issue when `purpose` is not declared in `purposes.toml`.
pub(crate) fn check_purpose(
    file: &SourceFile,
    purpose: &Spanned<String>,
    purposes: &[Purpose],
    issues: &mut Vec<PolicyIssue>,
) {
    if !purposes.iter().any(|p| &p.code == purpose.get_ref()) {
        issues.push(file.issue_at(
            purpose.span().start,
            format!(
                "unknown purpose `{}` (not in `{PURPOSES_FILE}`)",
                purpose.get_ref()
            ),
        ));
    }
}

/// Whether `id` matches `^[a-z][a-z0-9-]*$`.
fn is_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads and checks the data files among `files` (by bare name).
pub(crate) fn load(
    files: &[&SourceFile],
    catalog: &Catalog,
    issues: &mut Vec<PolicyIssue>,
) -> Data {
    let mut data = Data::default();
    let find = |name: &str| files.iter().find(|f| f.name == name).copied();
    if let Some(file) = find(PURPOSES_FILE)
        && let Some(doc) = parse::<PurposesDoc>(file, issues)
    {
        {
            for p in doc.purpose {
                let code = p.code.get_ref();
                let at = p.code.span().start;
                if !is_code(code) {
                    issues.push(file.issue_at(
                        at,
                        format!("purpose code `{code}` does not match `^[A-Z][A-Z0-9-]*$`"),
                    ));
                } else if data.purposes.iter().any(|q| &q.code == code) {
                    issues.push(file.issue_at(at, format!("purpose `{code}` declared twice")));
                } else {
                    data.purposes.push(Purpose {
                        code: p.code.into_inner(),
                        name: p.name,
                        legal_basis: p.legal_basis,
                    });
                }
            }
        }
    }
    if let Some(file) = find(REQUESTERS_FILE)
        && let Some(doc) = parse::<RequestersDoc>(file, issues)
    {
        {
            for r in doc.requester {
                let id = r.id.get_ref();
                let at = r.id.span().start;
                if !is_id(id) {
                    issues.push(file.issue_at(
                        at,
                        format!("requester id `{id}` does not match `^[a-z][a-z0-9-]*$`"),
                    ));
                    continue;
                }
                if data.requesters.iter().any(|q| &q.id == id) {
                    issues.push(file.issue_at(at, format!("requester `{id}` declared twice")));
                    continue;
                }
                let mut groups = Vec::new();
                for g in r.groups {
                    let group = g.get_ref();
                    if !is_id(group) {
                        issues.push(file.issue_at(
                            g.span().start,
                            format!("group id `{group}` does not match `^[a-z][a-z0-9-]*$`"),
                        ));
                    } else if data.requesters.iter().any(|q| &q.id == group) || group == id {
                        issues.push(file.issue_at(
                            g.span().start,
                            format!("group `{group}` has the id of a requester"),
                        ));
                    } else if !groups.contains(group) {
                        groups.push(group.clone());
                    }
                }
                for group in &groups {
                    data.groups
                        .entry(group.clone())
                        .or_default()
                        .insert(id.clone());
                }
                data.requesters.push(Requester {
                    id: r.id.into_inner(),
                    name: r.name,
                    groups,
                });
            }
            for r in &data.requesters {
                if data.groups.contains_key(&r.id) {
                    issues.push(PolicyIssue::whole_file(
                        file.display.clone(),
                        format!("`{}` is both a requester and a group", r.id),
                    ));
                }
            }
        }
    }
    if let Some(file) = find(ITEMS_FILE)
        && let Some(doc) = parse::<ItemsDoc>(file, issues)
    {
        {
            for item in doc.item {
                if let Some(item) = check_item(file, item, catalog, &data.purposes, issues) {
                    if data.items.iter().any(|i| i.code == item.code) {
                        issues.push(PolicyIssue::whole_file(
                            file.display.clone(),
                            format!("item `{}` declared twice", item.code),
                        ));
                    } else {
                        data.items.push(item);
                    }
                }
            }
        }
    }
    if let Some(file) = find(crate::screening::SCREENING_FILE) {
        data.screenings =
            crate::screening::load(file, catalog, &data.purposes, &data.items, issues);
    }
    data
}

fn check_item(
    file: &SourceFile,
    doc: ItemDoc,
    catalog: &Catalog,
    purposes: &[Purpose],
    issues: &mut Vec<PolicyIssue>,
) -> Option<ApprovalItem> {
    let before = issues.len();
    let code = doc.code.get_ref();
    check_code(file, "item", &doc.code, issues);
    check_purpose(file, &doc.purpose, purposes, issues);
    if doc.entries.is_empty() {
        issues.push(file.issue_at(
            doc.code.span().start,
            format!("item `{code}` has no entries"),
        ));
    }
    let mut seen: HashMap<(String, String), ()> = HashMap::new();
    let mut entries = Vec::with_capacity(doc.entries.len());
    for e in doc.entries {
        let type_id = e.record_type.get_ref();
        let Some(rt) = catalog.record_type(type_id) else {
            issues.push(file.issue_at(
                e.record_type.span().start,
                format!("unknown record type `{type_id}`"),
            ));
            continue;
        };
        if rt.sharing_class == SharingClass::NotShared {
            issues.push(file.issue_at(
                e.record_type.span().start,
                format!(
                    "record type `{type_id}` is not_shared in the catalog: no item may need it"
                ),
            ));
            continue;
        }
        let view_name = e.view.get_ref();
        let Some(view) = rt.view(view_name) else {
            issues.push(file.issue_at(
                e.view.span().start,
                format!("record type `{type_id}` has no view `{view_name}`"),
            ));
            continue;
        };
        let (params, params_at) = match e.params {
            Some(p) => {
                let at = p.span().start;
                (p.into_inner(), at)
            }
            None => (BTreeMap::new(), e.view.span().start),
        };
        for (name, value) in &params {
            match view.params().iter().find(|p| &p.name == name) {
                None => issues.push(file.issue_at(
                    params_at,
                    format!("view `{type_id}.{view_name}` has no parameter `{name}`"),
                )),
                Some(p)
                    if p.ty == xgate_catalog::ParamType::Integer
                        && value.parse::<u32>().is_err() =>
                {
                    issues.push(file.issue_at(
                        params_at,
                        format!("parameter `{name}` of view `{type_id}.{view_name}` must be a non-negative integer"),
                    ));
                }
                Some(_) => {}
            }
        }
        if seen
            .insert((type_id.clone(), view_name.clone()), ())
            .is_some()
        {
            issues.push(file.issue_at(
                e.record_type.span().start,
                format!("`{type_id}.{view_name}` listed twice in item `{code}`"),
            ));
        }
        entries.push(ItemEntry {
            record_type: e.record_type.into_inner(),
            view: e.view.into_inner(),
            params,
        });
    }
    (issues.len() == before).then(|| ApprovalItem {
        code: doc.code.into_inner(),
        name: doc.name,
        purpose: doc.purpose.into_inner(),
        entries,
    })
}
