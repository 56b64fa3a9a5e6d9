//! Access decisions: Cedar policies and their data files from `policies/`, validated
//! against a schema generated from the catalog, purposes, items and requesters.
//!
//! A request is `Requester::"<id>"` (member of its `RequesterGroup`s) doing
//! `Action::"read"` on `View::"<record type>.<view>"` (member of `RecordType::"<type>"`),
//! with context `{ purpose, item, explicit_request, consent, representation, now,
//! local_time }` (see the `schema` module; `explicit_request`: the fetch carries the
//! subject's verified code; `consent`: a consent on record covers it; `representation`: the
//! relation of an applicant acting for the subject, verified by the gateway). Data files
//! beside the policies: `purposes.toml`, `items.toml`, `requesters.toml` (the `data`
//! module).
//!
//! Loading parses each file on its own so every problem names its `file:line:column`, and
//! refuses the whole set on any problem: a syntax error; a policy without a unique
//! `@id("...")`; a `RecordType`, `View`, `Requester` or `RequesterGroup` literal, purpose
//! or item code, department, sharing class or subject kind that is not declared; a
//! strict-validation error or warning; a bad `@daily_quota`; a permit policy that names a
//! `not_shared` record type or could reach one (the exact rule is in the `check` module).
//! A set that loads is immutable and decides without I/O: deny by default, `forbid` beats
//! `permit`, `not_shared` types are refused whatever the policies say, and only an
//! allowing [`Decision`] yields the [`Permit`] that code releasing a record needs.
//!
//! Speed: each decision evaluates only the policies that could apply to its (requester,
//! record type) pair (the `index` module), and decisions are memoised per set, keyed by
//! requester, view, purpose and item, plus the minute of the request when a candidate
//! policy reads `context.now` or `context.local_time`. That key is exact because the
//! context carries the time truncated to the minute: policies cannot see seconds.

mod cases;
mod check;
mod data;
mod entities;
mod error;
mod explain;
mod index;
mod load;
mod schema;
mod screening;
mod shape;
mod source;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use cedar_policy::{
    Authorizer, Context, Entities, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression,
};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

pub use cases::{CaseFailure, CaseReport, run_cases};
pub use data::{
    ApprovalItem, ITEMS_FILE, ItemEntry, PURPOSES_FILE, Purpose, REQUESTERS_FILE, Requester,
};
pub use error::{PolicyIssue, PolicyLoadError};
pub use explain::Explanation;
pub use screening::{Condition, Match, SCREENING_FILE, ScreeningItem};
pub use xgate_catalog::Catalog;

use entities::ViewEntry;
use index::PolicyIndex;
use source::SourceFile;

/// The `policy_ids` of a denial that no policy determined.
pub const DEFAULT_DENY: &str = "default deny";
/// The `policy_ids` of a denial because the catalog marks the record type `not_shared`.
pub const NOT_SHARED: &str = "not shared";
/// The annotation giving a permit policy's per-requester daily quota on a record type
/// (on a `screen` permit: subjects screened per day).
pub const QUOTA_ANNOTATION: &str = "daily_quota";
/// The annotation giving a `screen` permit's most subjects in one run.
pub const RUN_LIMIT_ANNOTATION: &str = "max_subjects_per_run";
/// `@reason("...")` on a forbid policy: what a caller it denies lacks, in
/// words the caller can act on; carried in [`Decision::reasons`] and the
/// denied result's message.
pub const REASON_ANNOTATION: &str = "reason";
/// The local time zone of `context.local_time`: China Standard Time, UTC+8 all year.
pub const LOCAL_OFFSET_SECONDS: i32 = 8 * 3600;
/// Memoised decisions kept per set before the memo is emptied (entries keyed by minute
/// would otherwise grow without bound).
const MEMO_CAPACITY: usize = 65_536;

/// The repository's `policies/`, embedded at build time.
static BUILTIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../policies");

/// A loaded, validated policy set. Immutable but for its decision memo; share it (the
/// gateway keeps it in an `ArcSwap` and swaps in a new one on reload).
pub struct PolicySet {
    version: Arc<str>,
    ids: Vec<String>,
    /// The policies, split by the requests they could apply to.
    index: PolicyIndex,
    entities: Entities,
    authorizer: Authorizer,
    views: HashMap<Box<str>, ViewEntry>,
    requester_type: EntityTypeName,
    read_action: EntityUid,
    screen_action: EntityUid,
    quotas: HashMap<String, Option<u32>>,
    run_limits: HashMap<String, Option<u32>>,
    screenings: Vec<ScreeningItem>,
    reasons: HashMap<String, String>,
    permits: HashMap<String, bool>,
    purposes: Vec<Purpose>,
    items: Vec<ApprovalItem>,
    requesters: Vec<Requester>,
    files: Vec<String>,
    schema_text: String,
    /// Some policy mentions `consent`: fetches must look up consents.
    reads_consent: bool,
    memo: RwLock<HashMap<MemoKey, Decision>>,
}

/// Everything a decision depends on; `minute` is `None` when no candidate policy reads the
/// time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    requester: Box<str>,
    view: Box<str>,
    purpose: Box<str>,
    item: Option<Box<str>>,
    explicit_request: bool,
    consent: bool,
    representation: Box<str>,
    minute: Option<i64>,
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("version", &self.version)
            .field("policy_ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// One access question: may `requester` read `view` of `record_type`?
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The requester id, from its certificate URI `xgate://requester/<id>`.
    pub requester: &'a str,
    /// A catalog record type id.
    pub record_type: &'a str,
    /// A view of that record type (`full`, `summary`, a predicate, ...).
    pub view: &'a str,
    /// The stated purpose code, e.g. `PF-WITHDRAWAL`.
    pub purpose: &'a str,
    /// The approval item the request is made for, if any.
    pub item: Option<&'a str>,
    /// When the request is made; policies see it truncated to the minute.
    pub now: OffsetDateTime,
    /// The subject asked for this fetch (a verified subject code was scanned).
    pub explicit_request: bool,
    /// A consent of the subject on record covers this requester, purpose
    /// (item) and record type.
    pub consent: bool,
    /// The relation of an applicant acting for the subject, verified from
    /// the departments' records (`"spouse"`); `""` when the applicant is
    /// the subject.
    pub representation: &'a str,
}

/// Whether a requester may run a screening item, and its limits.
#[derive(Debug, Clone)]
pub struct ScreenDecision {
    /// Every condition's view may be screened.
    pub allowed: bool,
    /// One decision per condition of the item, in its order (which policies
    /// allowed or denied each, for the audit log and the refusal).
    pub decisions: Vec<Decision>,
    /// Why the question could not be asked (unknown item ...).
    pub errors: Vec<String>,
    /// When allowed: the most subjects in one run (`@max_subjects_per_run`
    /// of the permits), `None` for no limit.
    pub max_subjects_per_run: Option<u32>,
    /// When allowed: subjects per requester and day (`@daily_quota` of the
    /// permits), `None` for no limit.
    pub daily_subjects: Option<u32>,
}

/// The answer to an [`AccessRequest`], with what an audit record needs.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Whether the view may be released.
    pub allowed: bool,
    /// The `@id`s of the determining policies (sorted): the permits when allowed, the
    /// forbids when one applied, else [`DEFAULT_DENY`] (or [`NOT_SHARED`]).
    pub policy_ids: Vec<String>,
    /// [`PolicySet::version`] of the set that decided.
    pub policy_set_version: Arc<str>,
    /// Why a request could not be evaluated (unknown view or item, item mismatch) or
    /// evaluation errors (never expected: every policy passed strict validation).
    pub errors: Vec<String>,
    /// When allowed: `None` if some determining permit has no `@daily_quota`, else the
    /// smallest quota among them (the gateway counts and answers RESOURCE_EXHAUSTED).
    pub daily_quota: Option<u32>,
    /// When denied by policies carrying `@reason`: their reasons, in
    /// `policy_ids` order.
    pub reasons: Vec<String>,
    /// Set only by [`PolicySet::decide`] when allowing: flipping `allowed` yields nothing.
    permit: Option<Permit>,
}

impl Decision {
    /// The only way to obtain a [`Permit`]: code that releases a record requires one.
    pub fn permit(&self) -> Option<Permit> {
        self.permit.clone()
    }
}

/// Proof that the policies allowed reading one view of one record type; cannot be built
/// outside this crate.
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

    /// The view of it that may be released.
    pub fn view(&self) -> &str {
        &self.view
    }

    /// The `@id`s of the permit policies that allowed it.
    pub fn policy_ids(&self) -> &[String] {
        &self.policy_ids
    }
}

impl PolicySet {
    /// Loads every `*.cedar` and `*.toml` file of `dir` (not of subdirectories), in
    /// file-name order. Errors name files by their path; the version covers the bare file
    /// names, so it equals that of [`PolicySet::from_sources`] over the same names and texts.
    pub fn load_dir(dir: &Path, catalog: &Catalog) -> Result<PolicySet, PolicyLoadError> {
        Self::build(load::read_dir(dir)?, catalog)
    }

    /// Loads `(file name, text)` pairs (`*.cedar` policies and the `*.toml` data files);
    /// errors name the files as given.
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

    /// `(file name, text)` of the repository's `policies/*.cedar` and `policies/*.toml`,
    /// sorted by name, so the demo can write them out.
    pub fn builtin_files() -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = BUILTIN
            .files()
            .filter(|f| {
                f.path()
                    .extension()
                    .is_some_and(|ext| ext == "cedar" || ext == "toml")
            })
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
        let built = entities::build(catalog, &checked.data, &schema.schema).map_err(internal)?;
        let order: Vec<&str> = built.order.iter().map(AsRef::as_ref).collect();
        let index = PolicyIndex::build(&checked.scoped, &order).map_err(internal)?;
        Ok(PolicySet {
            version: version(&files).into(),
            ids: checked.ids,
            index,
            entities: built.entities,
            authorizer: Authorizer::new(),
            views: built.views,
            requester_type: built.requester_type,
            read_action: built.read_action,
            screen_action: built.screen_action,
            quotas: checked.quotas,
            run_limits: checked.run_limits,
            screenings: checked.data.screenings,
            reasons: checked.reasons,
            permits: checked.permits,
            purposes: checked.data.purposes,
            items: checked.data.items,
            requesters: checked.data.requesters,
            files: files.iter().map(|f| f.name.clone()).collect(),
            schema_text: schema.text,
            // Textual on purpose: a false positive (a comment) costs one
            // store read per fetch, a false negative is impossible.
            reads_consent: files
                .iter()
                .any(|f| f.name.ends_with(".cedar") && f.text.contains("consent")),
            memo: RwLock::new(HashMap::new()),
        })
    }

    /// Content hash of all files (policies and data): `sha256:` and the first 16 hex digits.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The `@id`s of all policies, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// The bare names of the files in the set, sorted.
    pub fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    /// The generated Cedar schema, human-readable.
    pub fn schema_text(&self) -> String {
        self.schema_text.clone()
    }

    /// Whether any policy reads `context.consent` (then a fetch looks up
    /// the subject's consents; otherwise it need not).
    pub fn reads_consent(&self) -> bool {
        self.reads_consent
    }

    /// The purpose with this code.
    pub fn purpose(&self, code: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.code == code)
    }

    /// All purposes, in file order.
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }

    /// The approval item with this code.
    pub fn item(&self, code: &str) -> Option<&ApprovalItem> {
        self.items.iter().find(|i| i.code == code)
    }

    /// All approval items, in file order.
    pub fn items(&self) -> &[ApprovalItem] {
        &self.items
    }

    /// The requester with this id.
    pub fn requester(&self, id: &str) -> Option<&Requester> {
        self.requesters.iter().find(|r| r.id == id)
    }

    /// All declared requesters, in file order.
    pub fn requesters(&self) -> &[Requester] {
        &self.requesters
    }

    /// The screening items (`screening.toml`).
    pub fn screenings(&self) -> &[ScreeningItem] {
        &self.screenings
    }

    /// The screening item `code`.
    pub fn screening(&self, code: &str) -> Option<&ScreeningItem> {
        self.screenings.iter().find(|s| s.code == code)
    }

    /// May `requester` screen subjects with item `code` now? One Cedar
    /// decision per condition — the `screen` action on its predicate view,
    /// with `context.item` the item's code and `context.purpose` its purpose
    /// (no subject yet: `explicit_request` and `consent` are false) — and
    /// allowed only when every condition is. Not memoised: a run decides
    /// once, at its start.
    pub fn decide_screen(
        &self,
        requester: &str,
        code: &str,
        now: OffsetDateTime,
    ) -> ScreenDecision {
        let Some(item) = self.screening(code) else {
            return ScreenDecision {
                allowed: false,
                decisions: Vec::new(),
                errors: vec![format!("unknown screening item `{code}`")],
                max_subjects_per_run: None,
                daily_subjects: None,
            };
        };
        let decisions: Vec<Decision> = item
            .conditions
            .iter()
            .map(|c| {
                let req = AccessRequest {
                    requester,
                    record_type: &c.record_type,
                    view: &c.view,
                    purpose: &item.purpose,
                    item: Some(code),
                    now,
                    explicit_request: false,
                    consent: false,
                    representation: "",
                };
                self.decide_screen_view(&req)
            })
            .collect();
        let allowed = decisions.iter().all(|d| d.allowed);
        // The tightest limit of any permit that allowed a condition; none
        // when some permit sets none.
        let limit = |table: &HashMap<String, Option<u32>>| -> Option<u32> {
            if !allowed {
                return None;
            }
            decisions
                .iter()
                .flat_map(|d| d.policy_ids.iter())
                .filter(|id| self.permits.get(*id).copied().unwrap_or(false))
                .map(|id| table.get(id).copied().flatten())
                .try_fold(u32::MAX, |least, n| n.map(|n| least.min(n)))
        };
        ScreenDecision {
            allowed,
            max_subjects_per_run: limit(&self.run_limits),
            daily_subjects: limit(&self.quotas),
            errors: decisions.iter().flat_map(|d| d.errors.clone()).collect(),
            decisions,
        }
    }

    fn decide_screen_view(&self, req: &AccessRequest<'_>) -> Decision {
        let view_id = entities::view_id(req.record_type, req.view);
        let Some(view) = self.views.get(view_id.as_str()) else {
            return self.refusal(DEFAULT_DENY, vec![self.unknown_view(req)]);
        };
        if view.not_shared {
            return self.refusal(NOT_SHARED, Vec::new());
        }
        let Some(bucket) = self
            .index
            .policies(req.requester, view.type_index)
            .filter(|b| !b.policies.is_empty())
        else {
            return self.refusal(DEFAULT_DENY, Vec::new());
        };
        let minute = Some(req.now.unix_timestamp().div_euclid(60));
        let mut decision = self.evaluate(req, view, &bucket.policies, minute, &self.screen_action);
        // A screen grant answers yes/no inside the gateway; it is never the
        // `Permit` that releases a view to a requester.
        decision.permit = None;
        decision
    }

    /// Decides one request. Unknown requesters simply meet the default deny; an unknown
    /// view or item, or a view the item does not need, is refused with an error.
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        self.decide_with(req, true)
    }

    /// [`PolicySet::decide`] without the memo: always evaluates the policies (for
    /// benchmarks of the cold path and for tools; the answer is the same).
    pub fn decide_uncached(&self, req: &AccessRequest<'_>) -> Decision {
        self.decide_with(req, false)
    }

    fn decide_with(&self, req: &AccessRequest<'_>, use_memo: bool) -> Decision {
        let view_id = entities::view_id(req.record_type, req.view);
        let Some(view) = self.views.get(view_id.as_str()) else {
            return self.refusal(DEFAULT_DENY, vec![self.unknown_view(req)]);
        };
        if view.not_shared {
            // Loading already rejects any permit that could reach such a type; this keeps
            // the promise even if that check were wrong.
            return self.refusal(NOT_SHARED, Vec::new());
        }
        if let Some(code) = req.item
            && let Err(e) = self.check_item(code, req)
        {
            return self.refusal(DEFAULT_DENY, vec![e]);
        }
        let bucket = match self.index.policies(req.requester, view.type_index) {
            Some(bucket) if !bucket.policies.is_empty() => bucket,
            // Nothing could permit: skip building the request.
            _ => return self.refusal(DEFAULT_DENY, Vec::new()),
        };
        let minute = bucket
            .reads_time
            .then(|| req.now.unix_timestamp().div_euclid(60));
        if !use_memo {
            return self.evaluate(req, view, &bucket.policies, minute, &self.read_action);
        }
        let key = MemoKey {
            requester: req.requester.into(),
            view: view_id.into_boxed_str(),
            purpose: req.purpose.into(),
            item: req.item.map(Into::into),
            explicit_request: req.explicit_request,
            consent: req.consent,
            representation: req.representation.into(),
            minute,
        };
        if let Ok(memo) = self.memo.read()
            && let Some(decision) = memo.get(&key)
        {
            return decision.clone();
        }
        let decision = self.evaluate(req, view, &bucket.policies, minute, &self.read_action);
        if let Ok(mut memo) = self.memo.write() {
            if memo.len() >= MEMO_CAPACITY {
                memo.clear();
            }
            memo.insert(key, decision.clone());
        }
        decision
    }

    /// Runs Cedar on the candidate policies.
    fn evaluate(
        &self,
        req: &AccessRequest<'_>,
        view: &ViewEntry,
        policies: &cedar_policy::PolicySet,
        minute: Option<i64>,
        action: &EntityUid,
    ) -> Decision {
        let principal = EntityUid::from_type_name_and_id(
            self.requester_type.clone(),
            EntityId::new(req.requester),
        );
        let request = context(req, minute).and_then(|context| {
            Request::new(principal, action.clone(), view.uid.clone(), context, None)
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
        let daily_quota = if allowed {
            policy_ids
                .iter()
                .filter(|id| self.permits.get(*id).copied().unwrap_or(false))
                .map(|id| self.quotas.get(id).copied().flatten())
                .try_fold(u32::MAX, |least, quota| quota.map(|q| least.min(q)))
        } else {
            None
        };
        let permit = allowed.then(|| Permit {
            record_type: Arc::clone(&view.record_type),
            view: Arc::clone(&view.view),
            policy_ids: policy_ids.clone(),
        });
        let reasons = if allowed {
            Vec::new()
        } else {
            policy_ids
                .iter()
                .filter_map(|id| self.reasons.get(id).cloned())
                .collect()
        };
        Decision {
            allowed,
            policy_ids,
            policy_set_version: Arc::clone(&self.version),
            errors,
            daily_quota,
            reasons,
            permit,
        }
    }

    fn check_item(&self, code: &str, req: &AccessRequest<'_>) -> Result<(), String> {
        let item = self
            .item(code)
            .ok_or_else(|| format!("unknown approval item `{code}`"))?;
        if item.purpose != req.purpose {
            return Err(format!(
                "approval item `{code}` is for purpose `{}`, not `{}`",
                item.purpose, req.purpose
            ));
        }
        if !item
            .entries
            .iter()
            .any(|e| e.record_type == req.record_type && e.view == req.view)
        {
            return Err(format!(
                "approval item `{code}` does not need view `{}` of `{}`",
                req.view, req.record_type
            ));
        }
        Ok(())
    }

    fn unknown_view(&self, req: &AccessRequest<'_>) -> String {
        let type_known = self
            .views
            .values()
            .any(|v| &*v.record_type == req.record_type);
        if type_known {
            format!(
                "record type `{}` has no view `{}`",
                req.record_type, req.view
            )
        } else {
            format!("unknown record type `{}`", req.record_type)
        }
    }

    fn refusal(&self, reason: &str, errors: Vec<String>) -> Decision {
        Decision {
            allowed: false,
            policy_ids: vec![reason.to_owned()],
            policy_set_version: Arc::clone(&self.version),
            errors,
            daily_quota: None,
            reasons: Vec::new(),
            permit: None,
        }
    }
}

/// The request context. `minute` (minutes since the Unix epoch) is given only when a
/// candidate policy reads the time; other policies never look at `now`/`local_time`, so
/// they are left out (cheaper, and Cedar does not check the context against the schema
/// here).
fn context(req: &AccessRequest<'_>, minute: Option<i64>) -> Result<Context, String> {
    let mut pairs = vec![
        (
            schema::CONTEXT_PURPOSE.to_owned(),
            RestrictedExpression::new_string(req.purpose.to_owned()),
        ),
        (
            schema::CONTEXT_ITEM.to_owned(),
            RestrictedExpression::new_string(req.item.unwrap_or("").to_owned()),
        ),
        (
            schema::CONTEXT_EXPLICIT_REQUEST.to_owned(),
            RestrictedExpression::new_bool(req.explicit_request),
        ),
        (
            schema::CONTEXT_CONSENT.to_owned(),
            RestrictedExpression::new_bool(req.consent),
        ),
        (
            schema::CONTEXT_REPRESENTATION.to_owned(),
            RestrictedExpression::new_string(req.representation.to_owned()),
        ),
    ];
    if let Some(minute) = minute {
        let (now, local) = time_values(minute)?;
        pairs.push((
            schema::CONTEXT_NOW.to_owned(),
            RestrictedExpression::new_datetime(now),
        ));
        pairs.push((
            schema::CONTEXT_LOCAL_TIME.to_owned(),
            RestrictedExpression::new_duration(local),
        ));
    }
    Context::from_pairs(pairs).map_err(|e| format!("cannot build the request context: {e}"))
}

/// Cedar literals for a minute since the epoch: the UTC datetime and the duration since
/// local midnight.
fn time_values(minute: i64) -> Result<(String, String), String> {
    let at = OffsetDateTime::from_unix_timestamp(minute.saturating_mul(60))
        .map_err(|e| format!("request time out of range: {e}"))?;
    let offset = UtcOffset::from_whole_seconds(LOCAL_OFFSET_SECONDS)
        .map_err(|e| format!("local offset: {e}"))?;
    let local = at.to_offset(offset);
    let now = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    let since_midnight = u32::from(local.hour()) * 60 + u32::from(local.minute());
    Ok((now, format!("{since_midnight}m")))
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
