//! The fetch pipeline: policy per record type and view, fan-out to the
//! adapters in parallel under one deadline, schema check, view, merge.
//!
//! Order for each requested record type (see ARCHITECTURE.md):
//! policy decision on (requester, type, view, purpose, item, time) ->
//! (denied: DENIED, never fetched) -> daily quota (spent: RESOURCE_EXHAUSTED)
//! -> route lookup (none: NO_SOURCE) -> record cache (hit: the cached,
//! already checked records; concurrent misses share one call, see
//! [`crate::cache`]) -> one call per adapter for the rest of its types
//! (resilient: [`crate::routing`]) -> per-record schema and subject check ->
//! the granted view (field subset or predicate value) -> release under the
//! decision's [`Permit`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt as _};
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};
use xgate_catalog::{Catalog, RecordType};
use xgate_policy::{AccessRequest, Decision, Permit, PolicySet};
use xgate_proto::v1::{LookupRequest, LookupStatus, Provenance, Subject, TypeAnswer};

use tracing::Instrument as _;

use crate::cache::{Claim, Entry, Key, RecordCache};
use crate::metrics::{CacheLabels, CacheOutcome};
use crate::outcome::{Origin, Outcome, Release, Settled, Unavailable};
use crate::quota::Quotas;
use crate::routing::{AdapterRoute, Answered, Routes};
use crate::upstream::CallError;
use crate::validate::{ValidFetch, Wanted};

/// China Standard Time: quotas reset and predicates' "today" turn over at
/// local midnight.
pub const LOCAL_OFFSET: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// Everything a fetch needs, owned, so adapter calls can run as tasks.
pub struct FetchJob {
    pub request_id: String,
    pub requester: String,
    pub fetch: ValidFetch,
    /// When every adapter must have answered.
    pub deadline: Instant,
    /// When the audit append must have been acknowledged; past it the
    /// results are withheld (UNAVAILABLE), still in the caller's time.
    pub seal_by: Instant,
    /// Upper bound on any one adapter call.
    pub adapter_cap: Duration,
    pub started: Instant,
    /// The time every decision of this fetch is made at.
    pub now: OffsetDateTime,
    /// Release records as JSON bytes, not `Struct` trees.
    pub records_as_json: bool,
    /// The subject code the fetch was made with (the applicant's explicit
    /// request), verified and spent.
    pub code: Option<xgate_code::SubjectCode>,
    /// The wanted types a consent of the subject on record covers, with the
    /// consent's id (looked up only for types whose decision a consent
    /// could change).
    pub consented: Vec<(String, String)>,
    /// An applicant acting for the subject, its relation verified from the
    /// departments' records ([`crate::representation`]).
    pub representation: Option<crate::representation::Represented>,
}

/// A started fetch: the outcomes known without calling anyone (denied,
/// quota spent, no source), and one future per adapter call.
pub struct Plan {
    pub immediate: Vec<Settled>,
    pub calls: FuturesUnordered<futures::future::BoxFuture<'static, Vec<Settled>>>,
}

/// What one adapter call must produce: a permitted type at a view.
struct Item {
    slot: Slot,
    params: BTreeMap<String, String>,
    permit: Permit,
}

/// Where an item's outcome goes and what its result names.
struct Slot {
    index: usize,
    record_type: String,
    view: String,
    policy_set_version: String,
}

/// Decides the view of a wanted type: the named one, or else the first
/// field view (catalog order, `full` first) the policies allow. A refusal
/// reports the decision on the first view tried.
fn decide_view(
    policies: &PolicySet,
    job: &FetchJob,
    rt: &RecordType,
    wanted: &Wanted,
) -> (String, Decision) {
    let consent = job.consented.iter().any(|(t, _)| *t == rt.id);
    decide_view_with(policies, job, rt, wanted, consent)
}

/// Whether a consent on record could change how `wanted` is decided: the
/// view, the outcome or the deciding policies differ with `context.consent`
/// true and false. Decisions are memoised, so this costs two cache lookups
/// per type, where a consent lookup is a store read.
pub(crate) fn consent_matters(
    policies: &PolicySet,
    job: &FetchJob,
    rt: &RecordType,
    wanted: &Wanted,
) -> bool {
    let (view, without) = decide_view_with(policies, job, rt, wanted, false);
    let (view_with, with) = decide_view_with(policies, job, rt, wanted, true);
    view != view_with || without.allowed != with.allowed || without.policy_ids != with.policy_ids
}

fn decide_view_with(
    policies: &PolicySet,
    job: &FetchJob,
    rt: &RecordType,
    wanted: &Wanted,
    consent: bool,
) -> (String, Decision) {
    let decide = |view: &str| {
        policies.decide(&AccessRequest {
            requester: &job.requester,
            record_type: &rt.id,
            view,
            purpose: &job.fetch.purpose,
            item: job.fetch.item.as_deref(),
            now: job.now,
            explicit_request: job.code.is_some(),
            consent,
            representation: job.representation.as_ref().map_or("", |r| r.relation),
        })
    };
    if let Some(view) = &wanted.view {
        return (view.clone(), decide(view));
    }
    let mut first: Option<(String, Decision)> = None;
    for view in rt.views().iter().filter(|v| !v.is_predicate()) {
        let decision = decide(&view.name);
        if decision.allowed {
            return (view.name.clone(), decision);
        }
        first.get_or_insert((view.name.clone(), decision));
    }
    first.unwrap_or_else(|| ("full".to_owned(), decide("full")))
}

/// Decides every wanted type, takes the daily quota units of the metered ones
/// (one store statement per fetch, none when no decision carries a quota) and
/// groups the permitted ones by adapter.
pub async fn plan(
    job: FetchJob,
    catalog: Arc<Catalog>,
    policies: &PolicySet,
    routes: &Routes,
    quotas: &Quotas,
    cache: &Arc<Cache>,
) -> Plan {
    let job = Arc::new(job);
    let mut planned = Planned::default();
    let mut metered: Vec<(Item, String, u32)> = Vec::new();
    let today = job.now.to_offset(LOCAL_OFFSET).date();
    for (index, wanted) in job.fetch.wanted.iter().enumerate() {
        let id = &wanted.record_type;
        let Some(rt) = catalog.record_type(id) else {
            // Validation admits only catalog types; keep the promise of one
            // result per type anyway.
            let why = "unknown record type".to_owned();
            let outcome = Outcome::Invalid { permit: None, why };
            planned.immediate.push(settle(
                index,
                id,
                "",
                String::new(),
                String::new(),
                &job,
                outcome,
            ));
            continue;
        };
        let (view, decision) = decide_view(policies, &job, rt, wanted);
        let version = decision.policy_set_version.to_string();
        let Some(permit) = decision.permit() else {
            planned.immediate.push(settle(
                index,
                id,
                &rt.department,
                view,
                version.clone(),
                &job,
                Outcome::Denied {
                    policy_ids: decision.policy_ids.clone(),
                    policy_set_version: version,
                    reasons: decision.reasons.clone(),
                },
            ));
            continue;
        };
        let item = Item {
            slot: Slot {
                index,
                record_type: id.clone(),
                view,
                policy_set_version: version,
            },
            params: wanted.params.clone(),
            permit,
        };
        match decision.daily_quota {
            Some(limit) => metered.push((item, rt.department.clone(), limit)),
            None => planned.route(item, &rt.department, routes, &job),
        }
    }
    if !metered.is_empty() {
        let asks: Vec<(&str, u32)> = metered
            .iter()
            .map(|(item, _, limit)| (item.slot.record_type.as_str(), *limit))
            .collect();
        let granted = quotas.take(&job.requester, today, &asks).await;
        for (i, (item, department, limit)) in metered.into_iter().enumerate() {
            match &granted {
                Ok(granted) if granted.get(i).copied().unwrap_or(false) => {
                    planned.route(item, &department, routes, &job);
                }
                Ok(_) => {
                    let Item { slot, permit, .. } = item;
                    let outcome = Outcome::QuotaSpent { permit, limit };
                    planned
                        .immediate
                        .push(settle_slot(slot, &department, &job, outcome));
                }
                // Fail closed: an uncounted fetch of a metered type is not released.
                Err(e) => {
                    let Item { slot, permit, .. } = item;
                    let why = Unavailable::QuotaStore(e.to_string());
                    let outcome = Outcome::Unavailable { permit, why };
                    planned
                        .immediate
                        .push(settle_slot(slot, &department, &job, outcome));
                }
            }
        }
    }
    let calls = planned
        .per_adapter
        .into_values()
        .map(|(route, items)| {
            let job = Arc::clone(&job);
            let catalog = Arc::clone(&catalog);
            let cache = Arc::clone(cache);
            Box::pin(async move { call(route, items, job, catalog, cache).await })
                as futures::future::BoxFuture<'static, Vec<Settled>>
        })
        .collect();
    Plan {
        immediate: planned.immediate,
        calls,
    }
}

/// A plan being built: outcomes known now, and permitted items per adapter.
#[derive(Default)]
struct Planned {
    immediate: Vec<Settled>,
    per_adapter: HashMap<(String, String), (Arc<AdapterRoute>, Vec<Item>)>,
}

impl Planned {
    /// Sends a permitted (and, if metered, counted) item to its adapter, or
    /// settles it NO_SOURCE.
    fn route(&mut self, item: Item, department: &str, routes: &Routes, job: &FetchJob) {
        let Some(route) = routes.get(&item.slot.record_type) else {
            let Item { slot, permit, .. } = item;
            let outcome = Outcome::NoSource { permit };
            self.immediate
                .push(settle_slot(slot, department, job, outcome));
            return;
        };
        self.per_adapter
            .entry((route.department.clone(), route.adapter_id.clone()))
            .or_insert_with(|| (Arc::clone(route), Vec::new()))
            .1
            .push(item);
    }
}

fn settle_slot(slot: Slot, department: &str, job: &FetchJob, outcome: Outcome) -> Settled {
    settle(
        slot.index,
        &slot.record_type,
        department,
        slot.view,
        slot.policy_set_version,
        job,
        outcome,
    )
}

/// Runs a plan to the end and returns the outcomes in request order.
pub async fn collect(plan: Plan) -> Vec<Settled> {
    let Plan {
        mut immediate,
        mut calls,
    } = plan;
    while let Some(settled) = calls.next().await {
        immediate.extend(settled);
    }
    immediate.sort_by_key(|s| s.index);
    immediate
}

fn settle(
    index: usize,
    record_type: &str,
    department: &str,
    view: String,
    policy_set_version: String,
    job: &FetchJob,
    outcome: Outcome,
) -> Settled {
    Settled {
        index,
        record_type: record_type.to_owned(),
        department: department.to_owned(),
        view,
        policy_set_version,
        latency_us: micros_since(job.started),
        origin: None,
        outcome,
    }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The record cache of a gateway: it shares a type's [`Source`] between
/// concurrent fetches.
pub type Cache = RecordCache<Source>;

/// Where one type's answer came from, judged: a fresh adapter answer, one
/// shared by a concurrent fetch's call, or the cache.
#[derive(Clone)]
pub struct Source {
    verdict: Arc<Judged>,
    endpoint: String,
    retrieved_at: SystemTime,
    /// The cached answer's age when served from the cache.
    cached_age: Option<Duration>,
}

/// Calls `route` for `types` and judges each answer; checked answers of
/// cacheable types are cached.
async fn fetch_types(
    route: Arc<AdapterRoute>,
    types: Vec<String>,
    job: Arc<FetchJob>,
    catalog: Arc<Catalog>,
    cache: Arc<Cache>,
    deadline: Instant,
) -> HashMap<String, Result<Source, CallError>> {
    let kind = xgate_proto::kind::to_proto(job.fetch.subject_kind);
    let request = LookupRequest {
        subject: Some(Subject {
            kind: kind as i32,
            id: job.fetch.subject_id.clone(),
        }),
        record_types: types.clone(),
        request_id: job.request_id.clone(),
        purpose: job.fetch.purpose.clone(),
    };
    let asked_in = cache.epoch();
    let answer = route.lookup(request, deadline).await;
    let retrieved_at = SystemTime::now();
    let stored = Instant::now();
    let Answered { response, endpoint } = match answer {
        Ok(answered) => answered,
        Err(e) => return types.into_iter().map(|t| (t, Err(e.clone()))).collect(),
    };
    let department = &route.department;
    let mut answers: HashMap<String, TypeAnswer> = response
        .answers
        .into_iter()
        .map(|a| (a.record_type.clone(), a))
        .collect();
    let mut sources = HashMap::with_capacity(types.len());
    for t in types {
        let rt = catalog.record_type(&t);
        let verdict = match (answers.remove(&t), rt) {
            (Some(answer), Some(rt)) => {
                let json_bytes = answer.records_json.iter().map(|b| b.len()).sum();
                let verdict = judge(answer, rt, &job.fetch.subject_id);
                if let Judged::Records(records) = &verdict {
                    let key = cache_key(&job, &t);
                    let entry = Entry {
                        records: Arc::clone(records),
                        json_bytes,
                        endpoint: endpoint.clone(),
                        retrieved_at,
                        stored,
                        fresh_until: stored + rt.freshness,
                    };
                    cache.insert(key, rt, entry, asked_in).await;
                }
                verdict
            }
            (None, _) => Judged::Invalid(format!(
                "department `{department}` gave no answer for `{t}`"
            )),
            (Some(_), None) => Judged::Invalid(format!("record type `{t}` left the catalog")),
        };
        sources.insert(
            t,
            Ok(Source {
                verdict: Arc::new(verdict),
                endpoint: endpoint.clone(),
                retrieved_at,
                cached_age: None,
            }),
        );
    }
    sources
}

fn cache_key(job: &FetchJob, record_type: &str) -> Key {
    Key {
        kind: job.fetch.subject_kind,
        subject: job.fetch.subject_id.clone(),
        record_type: record_type.to_owned(),
    }
}

/// A cache hit as a [`Source`]: the records were parsed and checked when
/// they were cached and are shared, not parsed again.
fn cached_source(entry: &Entry, now: Instant) -> Source {
    let verdict = Judged::Records(Arc::clone(&entry.records));
    Source {
        verdict: Arc::new(verdict),
        endpoint: entry.endpoint.clone(),
        retrieved_at: entry.retrieved_at,
        cached_age: Some(entry.age(now)),
    }
}

fn count_cache(outcome: CacheOutcome, n: usize) {
    if n > 0 {
        crate::metrics::metrics()
            .cache_lookups
            .get_or_create(&CacheLabels { outcome })
            .inc_by(n as u64);
    }
}

/// Types sorted by where their answer will come from.
struct Triage {
    /// Fresh in the cache.
    hits: HashMap<String, Result<Source, CallError>>,
    /// Missing from the cache; this fetch calls for them and shares the answer.
    leading: Vec<(String, crate::cache::Flight<Source>)>,
    /// Missing, but already being fetched by a concurrent fetch.
    following: Vec<(String, crate::cache::Receiver<Source>)>,
    /// Not cached at all (opted out): called for, shared with nobody.
    direct: Vec<String>,
}

/// Looks every type up in the cache (claiming the misses) and counts the
/// outcomes.
async fn triage(
    route: &AdapterRoute,
    types: Vec<String>,
    job: &FetchJob,
    catalog: &Catalog,
    cache: &Cache,
) -> Triage {
    let mut triage = Triage {
        hits: HashMap::with_capacity(types.len()),
        leading: Vec::new(),
        following: Vec::new(),
        direct: Vec::new(),
    };
    let span = tracing::info_span!(
        "cache",
        department = %route.department,
        types = types.len(),
        hits = tracing::field::Empty,
        coalesced = tracing::field::Empty,
        misses = tracing::field::Empty,
    );
    async {
        let now = Instant::now();
        for t in types {
            if !catalog.record_type(&t).is_some_and(|rt| cache.caches(rt)) {
                triage.direct.push(t);
                continue;
            }
            let key = cache_key(job, &t);
            if let Some(entry) = cache.get(&key, now).await {
                triage.hits.insert(t, Ok(cached_source(&entry, now)));
                continue;
            }
            match cache.claim(&key) {
                Claim::Lead(flight) => triage.leading.push((t, flight)),
                Claim::Follow(rx) => triage.following.push((t, rx)),
            }
        }
        let span = tracing::Span::current();
        span.record("hits", triage.hits.len());
        span.record("coalesced", triage.following.len());
        span.record("misses", triage.leading.len());
    }
    .instrument(span)
    .await;
    count_cache(CacheOutcome::Hit, triage.hits.len());
    count_cache(CacheOutcome::Coalesced, triage.following.len());
    count_cache(CacheOutcome::Miss, triage.leading.len());
    triage
}

/// Runs an adapter call others wait for: as its own task, so it runs on
/// even if this fetch is cancelled, handing every led type's outcome over.
async fn call_for_others(
    call: impl Future<Output = HashMap<String, Result<Source, CallError>>> + Send + 'static,
    leading: Vec<(String, crate::cache::Flight<Source>)>,
) -> HashMap<String, Result<Source, CallError>> {
    let missing = || Err(CallError::Unavailable("no answer for the type".into()));
    let task = tokio::spawn(
        async move {
            let mut answered = call.await;
            for (t, flight) in leading {
                flight.complete(answered.get(&t).cloned().unwrap_or_else(missing));
                answered.entry(t).or_insert_with(missing);
            }
            answered
        }
        // The adapter call's spans (and the trace context it sends) stay in
        // this fetch's trace.
        .in_current_span(),
    );
    match task.await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::error!(error = %e, "adapter call task failed");
            HashMap::new()
        }
    }
}

/// Every type's [`Source`]: from the cache, from a concurrent fetch's call
/// of the same key, or from one call to the adapter for the rest.
async fn sources(
    route: &Arc<AdapterRoute>,
    types: Vec<String>,
    job: &Arc<FetchJob>,
    catalog: &Arc<Catalog>,
    cache: &Arc<Cache>,
    deadline: Instant,
    budget: Duration,
) -> HashMap<String, Result<Source, CallError>> {
    let Triage {
        mut hits,
        leading,
        following,
        direct,
    } = triage(route, types, job, catalog, cache).await;
    let mut call_types: Vec<String> = direct;
    call_types.extend(leading.iter().map(|(t, _)| t.clone()));
    if !call_types.is_empty() {
        let call = fetch_types(
            Arc::clone(route),
            call_types,
            Arc::clone(job),
            Arc::clone(catalog),
            Arc::clone(cache),
            deadline,
        );
        let answered = if leading.is_empty() {
            call.await
        } else {
            call_for_others(call, leading).await
        };
        hits.extend(answered);
    }
    for (t, rx) in following {
        hits.insert(t, crate::cache::follow(rx, deadline, budget).await);
    }
    hits
}

/// One call to one adapter for all of its permitted types (less those the
/// cache or a concurrent fetch answers); every item gets exactly one
/// result, whatever happens.
async fn call(
    route: Arc<AdapterRoute>,
    items: Vec<Item>,
    job: Arc<FetchJob>,
    catalog: Arc<Catalog>,
    cache: Arc<Cache>,
) -> Vec<Settled> {
    let department = route.department.clone();
    let now = Instant::now();
    let budget = job
        .deadline
        .saturating_duration_since(now)
        .min(job.adapter_cap);
    let settle_item = |slot: Slot, origin: Option<Origin>, outcome: Outcome| Settled {
        index: slot.index,
        record_type: slot.record_type,
        department: department.clone(),
        view: slot.view,
        policy_set_version: slot.policy_set_version,
        latency_us: micros_since(job.started),
        origin,
        outcome,
    };
    if budget.is_zero() {
        return items
            .into_iter()
            .map(|Item { slot, permit, .. }| {
                let why = Unavailable::DeadlinePassed;
                settle_item(slot, None, Outcome::Unavailable { permit, why })
            })
            .collect();
    }
    // A type wanted at several views is fetched once.
    let mut types: Vec<String> = Vec::with_capacity(items.len());
    for item in &items {
        if !types.contains(&item.slot.record_type) {
            types.push(item.slot.record_type.clone());
        }
    }
    let sources = sources(&route, types, &job, &catalog, &cache, now + budget, budget).await;
    let today = job.now.to_offset(LOCAL_OFFSET).date();
    items
        .into_iter()
        .map(
            |Item {
                 slot,
                 params,
                 permit,
             }| {
                let source = sources.get(&slot.record_type).cloned().unwrap_or_else(|| {
                    Err(CallError::Unavailable("no answer for the type".into()))
                });
                let source = match source {
                    Ok(source) => source,
                    Err(error) => {
                        let adapter_id = route.adapter_id.clone();
                        let why = Unavailable::Call { error, adapter_id };
                        return settle_item(slot, None, Outcome::Unavailable { permit, why });
                    }
                };
                let origin = Origin {
                    provenance: Provenance {
                        department: department.clone(),
                        adapter_id: route.adapter_id.clone(),
                        endpoint: source.endpoint.clone(),
                        retrieved_at: Some(prost_types::Timestamp::from(source.retrieved_at)),
                    },
                    cached_age: source.cached_age,
                };
                let outcome = match &*source.verdict {
                    Judged::NotFound => Outcome::NotFound { permit },
                    Judged::DepartmentError(e) => {
                        let why = Unavailable::Department(e.clone());
                        Outcome::Unavailable { permit, why }
                    }
                    Judged::Invalid(why) => Outcome::Invalid {
                        permit: Some(permit),
                        why: why.clone(),
                    },
                    Judged::Records(records) => match catalog.record_type(&slot.record_type) {
                        None => Outcome::Invalid {
                            permit: Some(permit),
                            why: format!("record type `{}` left the catalog", slot.record_type),
                        },
                        Some(rt) => match Release::apply(permit, rt, records, &params, today) {
                            Ok(release) => Outcome::Released(release),
                            Err((permit, e)) => Outcome::Invalid {
                                permit: Some(permit),
                                why: e.to_string(),
                            },
                        },
                    },
                };
                settle_item(slot, Some(origin), outcome)
            },
        )
        .collect()
}

/// The gateway's verdict on one adapter answer: checked records (every
/// one valid and about the subject), or why there are none.
pub enum Judged {
    /// Shared with the cache entry when the answer was cached.
    Records(Arc<[Value]>),
    NotFound,
    /// The department's system failed; its text.
    DepartmentError(String),
    /// The answer is unusable; why.
    Invalid(String),
}

/// Turns one adapter answer into a [`Judged`].
pub(crate) fn judge(answer: TypeAnswer, rt: &RecordType, subject_id: &str) -> Judged {
    match LookupStatus::try_from(answer.status) {
        Ok(LookupStatus::NotFound) => return Judged::NotFound,
        Ok(LookupStatus::Error) => return Judged::DepartmentError(answer.error),
        // Asking again gives the same data: INVALID, not UNAVAILABLE.
        Ok(LookupStatus::BadData) => return Judged::Invalid(answer.error),
        Ok(LookupStatus::Found) => {}
        _ => {
            let why = format!("adapter sent unknown lookup status {}", answer.status);
            return Judged::Invalid(why);
        }
    }
    if answer.records_json.is_empty() {
        return Judged::NotFound;
    }
    let mut records = Vec::with_capacity(answer.records_json.len());
    for (i, bytes) in answer.records_json.iter().enumerate() {
        match rt.check_record(bytes, subject_id) {
            Ok(record) => records.push(record),
            Err(why) => {
                tracing::warn!(
                    record_type = rt.id,
                    record = i,
                    error = %why,
                    "adapter sent an invalid record; nothing of the type released"
                );
                return Judged::Invalid(format!("record {i}: {why}"));
            }
        }
    }
    Judged::Records(records.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;
    use xgate_catalog::SubjectKind;
    use xgate_proto::v1::RecordStatus;

    const CITIZEN: &str = "341602197703051725";

    fn catalog() -> Catalog {
        Catalog::builtin().expect("catalog")
    }

    fn fetch() -> ValidFetch {
        ValidFetch {
            subject_kind: SubjectKind::ResidentId,
            subject_id: CITIZEN.into(),
            wanted: vec![Wanted {
                record_type: "driving_licence".into(),
                view: None,
                params: BTreeMap::new(),
            }],
            purpose: "P".into(),
            item: None,
            case_id: "c".into(),
            operator_id: "o".into(),
        }
    }

    /// With the shipped policies, a consent matters to the hall's general
    /// fetch of a conditional type in full, and to nothing else: no store
    /// read for the rest.
    #[test]
    fn a_consent_matters_only_where_a_decision_depends_on_it() {
        let catalog = catalog();
        let policies = PolicySet::from_sources(&PolicySet::builtin_files(), &catalog)
            .expect("the shipped policies");
        let job = |record_type: &str, view: Option<&str>, item: Option<&str>| FetchJob {
            request_id: "r".into(),
            requester: "approval-hall-demo".into(),
            fetch: ValidFetch {
                wanted: vec![Wanted {
                    record_type: record_type.into(),
                    view: view.map(str::to_owned),
                    params: BTreeMap::new(),
                }],
                purpose: "GENERAL-APPROVAL".into(),
                item: item.map(str::to_owned),
                ..fetch()
            },
            deadline: Instant::now(),
            seal_by: Instant::now(),
            adapter_cap: Duration::from_secs(1),
            started: Instant::now(),
            now: OffsetDateTime::now_utc(),
            records_as_json: false,
            code: None,
            consented: Vec::new(),
            representation: None,
        };
        let matters = |record_type: &str, view: Option<&str>| {
            let job = job(record_type, view, None);
            let rt = catalog.record_type(record_type).expect("type");
            consent_matters(&policies, &job, rt, &job.fetch.wanted[0])
        };
        assert!(matters("divorce_registration", None));
        assert!(!matters("driving_licence", None), "unconditional");
        assert!(
            !matters("resident_identity_card", Some("age_at_least")),
            "a predicate view"
        );
        assert!(
            !matters("no_tax_arrears_certificate", Some("no_tax_arrears")),
            "a predicate of a conditional type"
        );
    }

    /// A driving licence record the catalog schema accepts.
    fn licence(id_number: &str) -> serde_json::Value {
        json!({
            "id_number": id_number,
            "name": "张海燕",
            "file_no": "341600123456",
            "licence_class": "C1",
            "first_issue_date": "2005-06-01",
            "valid_from": "2021-06-01",
            "valid_until": "2031-06-01",
            "issuing_authority": "亳州市公安局交通警察支队",
            "penalty_points": 0,
            "status": "valid"
        })
    }

    fn answer(status: LookupStatus, records: Vec<Vec<u8>>) -> TypeAnswer {
        TypeAnswer {
            record_type: "driving_licence".into(),
            status: status as i32,
            records_json: records.into_iter().map(Bytes::from).collect(),
            error: "backend exploded".into(),
        }
    }

    fn judged(answer: TypeAnswer) -> (RecordStatus, usize, String) {
        let catalog = catalog();
        let rt = catalog.record_type("driving_licence").expect("type");
        match judge(answer, rt, &fetch().subject_id) {
            Judged::Records(records) => (RecordStatus::Ok, records.len(), String::new()),
            Judged::NotFound => (RecordStatus::NotFound, 0, String::new()),
            Judged::DepartmentError(e) => (RecordStatus::Unavailable, 0, e),
            Judged::Invalid(e) => (RecordStatus::Invalid, 0, e),
        }
    }

    fn valid_licence_bytes() -> Vec<u8> {
        let catalog = catalog();
        let rt = catalog.record_type("driving_licence").expect("type");
        let record = licence(CITIZEN);
        if let Err(v) = rt.validate(&record) {
            panic!("test record no longer matches the catalog: {v}");
        }
        record.to_string().into_bytes()
    }

    #[test]
    fn valid_records_are_released() {
        assert_eq!(
            judged(answer(LookupStatus::Found, vec![valid_licence_bytes()])),
            (RecordStatus::Ok, 1, String::new())
        );
    }

    #[test]
    fn not_found_and_empty_found_are_not_found() {
        assert_eq!(
            judged(answer(LookupStatus::NotFound, vec![])).0,
            RecordStatus::NotFound
        );
        assert_eq!(
            judged(answer(LookupStatus::Found, vec![])).0,
            RecordStatus::NotFound
        );
    }

    #[test]
    fn department_errors_are_unavailable_with_the_reason() {
        let (status, n, error) = judged(answer(LookupStatus::Error, vec![]));
        assert_eq!((status, n), (RecordStatus::Unavailable, 0));
        assert!(error.contains("backend exploded"), "{error}");
        // data that makes no valid record: asking again does not help
        let (status, n, error) = judged(answer(LookupStatus::BadData, vec![]));
        assert_eq!((status, n), (RecordStatus::Invalid, 0));
        assert!(error.contains("backend exploded"), "{error}");
    }

    #[test]
    fn one_bad_record_withholds_the_whole_type() {
        let mut broken = licence(CITIZEN);
        broken["valid_from"] = json!("1977-02-30");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "not JSON"),
            (b"[1,2]".to_vec(), "not a JSON object"),
            (broken.to_string().into_bytes(), "`/valid_from`"),
            (
                licence("11010519491231002X").to_string().into_bytes(),
                "another subject",
            ),
        ];
        for (bad, why) in cases {
            let (status, n, error) = judged(answer(
                LookupStatus::Found,
                vec![valid_licence_bytes(), bad],
            ));
            assert_eq!((status, n), (RecordStatus::Invalid, 0), "{why}: {error}");
            assert!(error.starts_with("record 1: "), "{error}");
            assert!(error.contains(why), "{why}: {error}");
        }
    }

    #[test]
    fn masked_violations_do_not_repeat_personal_values() {
        let mut broken = licence(CITIZEN);
        broken["name"] = json!(12345);
        let (_, _, error) = judged(answer(
            LookupStatus::Found,
            vec![broken.to_string().into_bytes()],
        ));
        assert!(!error.contains("12345"), "{error}");
    }

    #[test]
    fn unknown_lookup_status_is_invalid() {
        let mut a = answer(LookupStatus::Found, vec![valid_licence_bytes()]);
        a.status = 42;
        assert_eq!(judged(a).0, RecordStatus::Invalid);
    }
}
