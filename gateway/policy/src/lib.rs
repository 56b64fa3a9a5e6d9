//! Access decisions: Cedar policies from `policies/`, validated against a schema generated
//! from the catalog.
//!
//! A request is `Requester::"<id>"` doing `Action::"read"` on `RecordType::"<catalog id>"`
//! (attributes `department`, `sharing_class`, `subject_kind`) with context `{ purpose }`.
//!
//! Loading parses each file on its own so every problem names its `file:line:column`, and
//! refuses the whole set on any problem: a syntax error; a policy without a unique
//! `@id("...")`; a `RecordType` literal, department, sharing class or subject kind the
//! catalog does not know; a strict-validation error or warning; a permit policy that names
//! a `not_shared` record type or could reach one (the exact rule is in the `check`
//! module). A set that loads is immutable and decides without I/O: deny by default,
//! `forbid` beats `permit`, `not_shared` types are refused whatever the policies say, and
//! only an allowing [`Decision`] yields the [`Permit`] that code releasing a record needs.
//!
//! Each decision evaluates only the policies that could apply to its (requester, record
//! type) pair (the `index` module), so its cost does not grow with other requesters'
//! policies.

mod check;
mod entities;
mod error;
mod index;
mod load;
mod schema;
mod shape;
mod source;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Entities, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression,
};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

pub use error::{PolicyIssue, PolicyLoadError};
pub use xgate_catalog::Catalog;

use entities::RecordTypeEntry;
use index::PolicyIndex;
use source::SourceFile;

/// The `policy_ids` of a denial that no policy determined.
pub const DEFAULT_DENY: &str = "default deny";
/// The `policy_ids` of a denial because the catalog marks the record type `not_shared`.
pub const NOT_SHARED: &str = "not shared";

/// The repository's `policies/`, embedded at build time.
static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../policies");

/// A loaded, validated policy set. Immutable; share it (the gateway keeps it in an
/// `ArcSwap` and swaps in a new one on reload).
pub struct PolicySet {
    version: Arc<str>,
    ids: Vec<String>,
    /// The policies, split by the requests they could apply to.
    index: PolicyIndex,
    entities: Entities,
    authorizer: Authorizer,
    record_types: HashMap<Box<str>, RecordTypeEntry>,
    requester_type: EntityTypeName,
    read_action: EntityUid,
    /// Contexts for the strings the policies mention (purpose codes): a clone is cheaper
    /// than building one.
    contexts: HashMap<Box<str>, Context>,
    schema_text: String,
    purposes: Vec<Purpose>,
    items: Vec<ApprovalItem>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("version", &self.version)
            .field("policy_ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// One access question.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The requester id, from its certificate URI `xgate://requester/<id>`.
    pub requester: &'a str,
    /// A catalog record type id.
    pub record_type: &'a str,
    /// The view asked for, e.g. `summary`.
    pub view: &'a str,
    /// The stated purpose code, e.g. `PF-WITHDRAWAL`.
    pub purpose: &'a str,
    /// The approval item, when the fetch named one.
    pub item: Option<&'a str>,
    /// When the request is decided.
    pub now: time::OffsetDateTime,
}

// TEMPORARY stand-ins (replaced on merge).
#[derive(Debug, Clone)]
pub struct Purpose {
    pub code: String,
    pub name: String,
    pub legal_basis: String,
}
#[derive(Debug, Clone)]
pub struct ApprovalItem {
    pub code: String,
    pub name: String,
    pub purpose: String,
    pub entries: Vec<ItemEntry>,
}
#[derive(Debug, Clone)]
pub struct ItemEntry {
    pub record_type: String,
    pub view: String,
    pub params: std::collections::BTreeMap<String, String>,
}

/// The answer to an [`AccessRequest`], with what an audit record needs.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Whether the record may be released.
    pub allowed: bool,
    /// The `@id`s of the determining policies (sorted): the permits when allowed, the
    /// forbids when one applied, else [`DEFAULT_DENY`] (or [`NOT_SHARED`]).
    pub policy_ids: Vec<String>,
    /// [`PolicySet::version`] of the set that decided.
    pub policy_set_version: Arc<str>,
    /// Evaluation errors; never expected, since every policy passed strict validation.
    pub errors: Vec<String>,
    /// The daily quota the determining permits set, if all of them set one.
    pub daily_quota: Option<u32>,
    /// Set only by [`PolicySet::decide`] when allowing: flipping `allowed` yields nothing.
    permit: Option<Permit>,
}

impl Decision {
    /// The only way to obtain a [`Permit`]: code that releases a record requires one.
    pub fn permit(&self) -> Option<Permit> {
        self.permit.clone()
    }
}

/// Proof that the policies allowed reading one record type; cannot be built outside this
/// crate.
#[derive(Debug, Clone)]
pub struct Permit {
    record_type: Arc<str>,
    view: Arc<str>,
    policy_ids: Vec<String>,
}

impl Permit {
    /// The record type that may be released.
    pub fn record_type(&self) -> &str {
        &self.record_type
    }

    /// The view that may be released.
    pub fn view(&self) -> &str {
        &self.view
    }

    /// The `@id`s of the permit policies that allowed it.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }
}

impl PolicySet {
    /// Loads every `*.cedar` file of `dir` (not of subdirectories), in file-name order.
    /// Errors name files by their path; the version covers the bare file names, so it
    /// equals that of [`PolicySet::from_sources`] over the same names and texts.
    pub fn load_dir(dir: &Path, catalog: &Catalog) -> Result<PolicySet, PolicyLoadError> {
        Self::build(load::read_dir(dir)?, catalog)
    }

    /// Loads `(file name, text)` pairs; errors name the files as given.
    pub fn from_sources(
        files: &[(String, String)],
        catalog: &Catalog,
    ) -> Result<PolicySet, PolicyLoadError> {
        let mut sources: Vec<SourceFile> = files
            .iter()
            .map(|(name, text)| SourceFile::new(name.clone(), name.clone(), text.clone()))
            .collect();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        let duplicates: Vec<PolicyIssue> = sources
            .windows(2)
            .filter_map(|pair| match pair {
                [a, b] if a.name == b.name => Some(PolicyIssue::whole_file(
                    b.display.clone(),
                    "file name given twice",
                )),
                _ => None,
            })
            .collect();
        if !duplicates.is_empty() {
            return Err(PolicyLoadError { errors: duplicates });
        }
        Self::build(sources, catalog)
    }

    /// `(file name, text)` of the repository's `policies/*.cedar`, sorted by name, so the
    /// demo can write them out.
    pub fn builtin_files() -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = BUILTIN
            .files()
            .filter(|f| f.path().extension().is_some_and(|ext| ext == "cedar"))
            .map(|f| {
                let name = f.path().display().to_string();
                (name, String::from_utf8_lossy(f.contents()).into_owned())
            })
            .collect();
        files.sort();
        files
    }

    fn build(files: Vec<SourceFile>, catalog: &Catalog) -> Result<PolicySet, PolicyLoadError> {
        let internal = |message: String| PolicyLoadError {
            errors: vec![PolicyIssue::whole_file("<catalog>", message)],
        };
        let schema = schema::generate().map_err(|e| internal(e.to_string()))?;
        let checked = load::check(&files, catalog, &schema)?;
        let built = entities::build(catalog, &schema.schema).map_err(internal)?;
        let order: Vec<&str> = built.order.iter().map(AsRef::as_ref).collect();
        let index = PolicyIndex::build(&checked.scoped, &order).map_err(internal)?;
        let purposes = checked
            .strings
            .iter()
            .map(|code| Purpose {
                code: code.clone(),
                name: code.clone(),
                legal_basis: String::new(),
            })
            .collect();
        let contexts = checked
            .strings
            .into_iter()
            .map(|purpose| {
                let context = purpose_context(&purpose).map_err(internal)?;
                Ok((purpose.into_boxed_str(), context))
            })
            .collect::<Result<_, PolicyLoadError>>()?;
        Ok(PolicySet {
            version: version(&files).into(),
            ids: checked.ids,
            index,
            entities: built.entities,
            authorizer: Authorizer::new(),
            record_types: built.record_types,
            requester_type: built.requester_type,
            read_action: built.read_action,
            contexts,
            schema_text: schema.text,
            purposes,
            items: Vec::new(),
        })
    }

    /// Content hash of the files: `sha256:` and the first 16 hex digits.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn purpose(&self, code: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.code == code)
    }
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }
    pub fn item(&self, code: &str) -> Option<&ApprovalItem> {
        self.items.iter().find(|p| p.code == code)
    }
    pub fn items(&self) -> &[ApprovalItem] {
        &self.items
    }
    pub fn files(&self) -> Vec<String> {
        Vec::new()
    }

    /// The `@id`s of all policies, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// The generated Cedar schema, human-readable.
    pub fn schema_text(&self) -> String {
        self.schema_text.clone()
    }

    /// Decides one request. Unknown requesters simply meet the default deny.
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let Some(record) = self.record_types.get(req.record_type) else {
            return self.refusal(
                DEFAULT_DENY,
                vec![format!("unknown record type `{}`", req.record_type)],
            );
        };
        if record.not_shared {
            // Loading already rejects any permit that could reach such a type; this keeps
            // the promise even if that check were wrong.
            return self.refusal(NOT_SHARED, Vec::new());
        }
        let policies = match self.index.policies(req.requester, record.index) {
            Some(policies) if !policies.is_empty() => policies,
            // Nothing could permit: skip building the request.
            _ => return self.refusal(DEFAULT_DENY, Vec::new()),
        };
        let principal = EntityUid::from_type_name_and_id(
            self.requester_type.clone(),
            EntityId::new(req.requester),
        );
        let context = match self.contexts.get(req.purpose) {
            Some(context) => Ok(context.clone()),
            None => purpose_context(req.purpose),
        };
        let request = context.and_then(|context| {
            Request::new(
                principal,
                self.read_action.clone(),
                record.uid.clone(),
                context,
                None,
            )
            .map_err(|e| e.to_string())
        });
        let request = match request {
            Ok(request) => request,
            Err(e) => return self.refusal(DEFAULT_DENY, vec![e]),
        };
        let response = self
            .authorizer
            .is_authorized(&request, policies, &self.entities);
        let diagnostics = response.diagnostics();
        // `AsRef`, not `Display`: cedar's `Display` escapes the id (and is slower).
        let mut policy_ids: Vec<String> = diagnostics
            .reason()
            .map(|id| AsRef::<str>::as_ref(id).to_owned())
            .collect();
        policy_ids.sort_unstable();
        let errors = diagnostics.errors().map(ToString::to_string).collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        if !allowed && policy_ids.is_empty() {
            policy_ids.push(DEFAULT_DENY.to_owned());
        }
        let permit = allowed.then(|| Permit {
            record_type: Arc::clone(&record.id),
            view: Arc::from(req.view),
            policy_ids: policy_ids.clone(),
        });
        Decision {
            allowed,
            policy_ids,
            policy_set_version: Arc::clone(&self.version),
            errors,
            daily_quota: None,
            permit,
        }
    }

    fn refusal(&self, reason: &str, errors: Vec<String>) -> Decision {
        Decision {
            allowed: false,
            policy_ids: vec![reason.to_owned()],
            policy_set_version: Arc::clone(&self.version),
            errors,
            daily_quota: None,
            permit: None,
        }
    }
}

/// The request context `{ purpose }`.
fn purpose_context(purpose: &str) -> Result<Context, String> {
    Context::from_pairs([(
        schema::CONTEXT_PURPOSE.to_owned(),
        RestrictedExpression::new_string(purpose.to_owned()),
    )])
    .map_err(|e| format!("cannot build the request context: {e}"))
}

/// `sha256:<first 16 hex>` over the files sorted by name; lengths are hashed too, so no
/// two different file lists hash alike by shifting text between name and content.
fn version(files: &[SourceFile]) -> String {
    let mut sorted: Vec<&SourceFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Sha256::new();
    for file in sorted {
        for part in [file.name.as_bytes(), file.text.as_bytes()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    let digest = hex::encode(hasher.finalize());
    format!("sha256:{}", digest.get(..16).unwrap_or(&digest))
}

#[cfg(test)]
mod tests;
