//! The gateway's shared state and the two services approval systems and
//! department IT call: `Exchange` and `Registry`.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use futures::Stream;
use futures::StreamExt as _;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, PreconditionViolation, StatusExt as _};
use tracing::Instrument as _;
use xgate_catalog::{Catalog, SharingClass};
use xgate_policy::PolicySet;

use xgate_proto::status::{Violation, invalid_argument};
use xgate_proto::v1::exchange_server::Exchange;
use xgate_proto::v1::registry_server::Registry;
use xgate_proto::v1::{
    AdapterRegistration, ApprovalItemInfo, AuditReceipt, BreakerState as ProtoBreakerState,
    DeregisterRequest, DeregisterResponse, EndpointState, FetchRequest, FetchResponse,
    FetchStreamResponse, HeartbeatRequest, HeartbeatResponse, ListAdaptersRequest,
    ListAdaptersResponse, ListApprovalItemsRequest, ListApprovalItemsResponse,
    ListRecordTypesRequest, ListRecordTypesResponse, PurposeInfo, RecordRequest, RecordResult,
    RecordStatus, RecordTypeInfo, RegisterRequest, RegisterResponse, RegistrationChange,
};
use xgate_tls::TlsFiles;
use xgate_tls::role::{Department, DepartmentOrAdmin, Requester, Role as _};

use crate::audit::{self, AdminEvent, Auditor, FetchContext};
use crate::config::Limits;
use crate::error;
use crate::fetch::{self, FetchJob};
use crate::metrics::{count_records, count_request, metrics};
use crate::outcome::Settled;
use crate::overload::{HeldStream, Overload};
use crate::policy_admin::PolicyStore;
use crate::quota::Quotas;
use crate::routing::{Routes, endpoint_host};
use crate::store::{Registration, Store, Touch};
use crate::upstream::{BreakerState, Upstream};
use crate::validate;

/// Most endpoints one adapter may register.
const MAX_ENDPOINTS: usize = 16;

/// State shared by every request. Catalog and limits are fixed for the
/// process; policies and routes are immutable snapshots swapped whole.
pub struct GatewayState {
    pub catalog: Arc<Catalog>,
    /// The active policy set and its reloads.
    pub policies: Arc<PolicyStore>,
    pub routes: ArcSwap<Routes>,
    pub store: Store,
    pub tls: TlsFiles,
    pub limits: Limits,
    /// Daily quota use per requester and record type.
    pub quotas: Quotas,
    /// The access log every released record is written to first.
    pub auditor: Auditor,
    /// Serialises registry changes so the routes always match the store.
    registry_lock: tokio::sync::Mutex<()>,
    /// Checked records served again for their freshness.
    pub cache: Arc<fetch::Cache>,
    /// What adapter routes share: `[upstream]` and adapter health.
    pub upstream: Arc<Upstream>,
    /// Fetch admission: in-flight limit and per-requester rates.
    pub overload: Overload,
    /// The issuers of subject codes this gateway trusts.
    pub codes: xgate_code::Verifier,
}

impl GatewayState {
    // One argument per separately loaded part of the configuration.
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        catalog: Catalog,
        policies: PolicySet,
        policies_dir: PathBuf,
        store: Store,
        tls: TlsFiles,
        limits: Limits,
        auditor: Auditor,
        cache: &crate::config::CacheConfig,
        upstream: crate::config::UpstreamConfig,
        codes: xgate_code::Verifier,
    ) -> Result<Arc<GatewayState>, crate::store::StoreError> {
        let registrations = store.all().await?;
        let upstream = Arc::new(Upstream::new(upstream));
        let routes = Routes::build(&registrations, &tls, &upstream, None);
        let catalog = Arc::new(catalog);
        let policies = Arc::new(PolicyStore::new(
            policies,
            policies_dir,
            Arc::clone(&catalog),
            Arc::clone(&auditor),
        ));
        Ok(Arc::new(GatewayState {
            catalog,
            policies,
            routes: ArcSwap::from_pointee(routes),
            quotas: Quotas::new(store.clone()),
            store,
            tls,
            overload: Overload::new(&limits),
            limits,
            auditor,
            registry_lock: tokio::sync::Mutex::new(()),
            cache: Arc::new(fetch::Cache::new(cache)),
            upstream,
            codes,
        }))
    }

    /// Drops the cached records of `department`'s types: after any change
    /// of its registrations, an answer of the adapter it had is not served.
    fn forget_cached(&self, department: &str) {
        let types = self
            .catalog
            .types_of_department(department)
            .map(|t| t.id.clone())
            .collect();
        self.cache.forget(types);
    }

    /// Rebuilds the routes from the store; returns the registrations read.
    async fn reload_routes(&self) -> Result<Vec<Registration>, Status> {
        let registrations = self.store.all().await.map_err(error::status)?;
        self.install_routes(&registrations).await;
        Ok(registrations)
    }

    /// Catches up with the shared registry (changes made through other
    /// replicas): drops the cached records of every department whose
    /// registrations differ from `known`, then rebuilds the routes from the
    /// table, and remembers what it read.
    pub async fn resync_registry(
        &self,
        known: &mut Vec<Registration>,
    ) -> Result<(), crate::store::StoreError> {
        let _guard = self.registry_lock.lock().await;
        let registrations = self.store.all().await?;
        for department in changed_departments(known, &registrations) {
            self.forget_cached(&department);
        }
        self.install_routes(&registrations).await;
        *known = registrations;
        Ok(())
    }

    async fn install_routes(&self, registrations: &[Registration]) {
        let previous = self.routes.load_full();
        let routes = Arc::new(Routes::build(
            registrations,
            &self.tls,
            &self.upstream,
            Some(&previous),
        ));
        self.routes.store(Arc::clone(&routes));
        routes.announce(&self.upstream, Some(&previous)).await;
    }

    /// The fetch's deadlines: adapters must have answered by the first
    /// (the caller's grpc-timeout less a tenth to seal and send the answer,
    /// else the default, never above the maximum); sealing must be done by
    /// the second, 1 % (≥ 2 ms) before the caller gives up, so a stalled audit store
    /// gives UNAVAILABLE records in time instead of a cancelled call.
    fn deadlines(&self, caller: Option<Duration>, now: Instant) -> (Instant, Instant) {
        let total = match caller {
            Some(t) => t,
            None => self.limits.default_fetch_timeout(),
        }
        .min(self.limits.max_fetch_timeout());
        // A tenth (≥ 10 ms) to seal and send: a group commit on a loaded
        // 2-core box took over 80 ms in CI-like runs.
        let margin = (total / 10).max(Duration::from_millis(10)).min(total);
        // Sending the answer on takes a millisecond or two; sealing gets the
        // rest of the margin (a group commit under load takes tens of ms).
        let send = (total / 100).max(Duration::from_millis(2)).min(margin);
        (now + (total - margin), now + (total - send))
    }

    /// Authenticates the caller, spends one of its rate tokens, opens a
    /// subject code if the request carries one, validates the request and
    /// spends the code.
    async fn start_fetch(
        &self,
        mut request: Request<FetchRequest>,
        trace_id: &str,
    ) -> Result<(FetchJob, Arc<PolicySet>), Status> {
        let Requester(requester) = Requester::of(&request, "fetch")?;
        self.overload.check_rate(&requester)?;
        let span = tracing::Span::current();
        span.record("requester", requester.as_str());
        span.record(
            "record_types",
            request.get_ref().record_types.len() + request.get_ref().requests.len(),
        );
        let started = Instant::now();
        let (deadline, seal_by) = self.deadlines(
            xgate_proto::deadline::from_metadata(request.metadata()),
            started,
        );
        let now = time::OffsetDateTime::now_utc();
        let code = match crate::codes::open(&self.codes, request.get_mut(), now.unix_timestamp()) {
            Ok(code) => code,
            Err(status) => {
                crate::codes::audit_refusal(&self.auditor, &requester, None, &status).await;
                return Err(status);
            }
        };
        // One set for validation (purposes, items) and every decision.
        let policies = self.policies.current();
        let records_as_json = request.get_ref().records_as_json;
        let valid = validate::fetch(request.get_ref(), &self.catalog, &policies, &self.limits)?;
        if let Some(code) = &code
            && let Err(status) =
                crate::codes::accept(&self.store, code, &requester, &valid, now.unix_timestamp())
                    .await
        {
            let verified = Some((code, &valid));
            crate::codes::audit_refusal(&self.auditor, &requester, verified, &status).await;
            return Err(status);
        }
        let represented = crate::representation::requested(request.get_ref(), &valid)?;
        // Only a validated purpose (one of the policy set's codes) is recorded.
        span.record("purpose", valid.purpose.as_str());
        let mut job = FetchJob {
            request_id: uuid::Uuid::now_v7().to_string(),
            requester,
            fetch: valid,
            deadline,
            seal_by,
            adapter_cap: self.limits.adapter_timeout_cap(),
            started,
            now,
            records_as_json,
            code,
            consented: Vec::new(),
            representation: None,
        };
        if let Some((applicant, check)) = represented {
            job.representation = Some(
                crate::representation::verify(
                    self,
                    &policies,
                    &job,
                    applicant,
                    check,
                    trace_id.to_owned(),
                )
                .await?,
            );
        }
        // After the representation: a consent is looked up only for types
        // whose decision it could change, all else being known.
        job.consented = crate::consent::consented_types(self, &policies, &job).await?;
        Ok((job, policies))
    }

    /// Runs a fetch to the end: plan, calls, then one audit append for all
    /// of its results (nothing leaves before the end). A unary `Fetch`, and
    /// the gateway's own relation check of a representation.
    pub(crate) async fn run(
        &self,
        job: FetchJob,
        policies: Arc<PolicySet>,
        trace_id: String,
    ) -> (Vec<xgate_proto::v1::RecordResult>, Option<AuditReceipt>) {
        let (plan, ctx) = self.plan((job, policies), trace_id).await;
        let settled = fetch::collect(plan).await;
        audit::respond(audit::seal(&self.auditor, &ctx, settled).await)
    }

    /// Plans the fetch; the context carries what its audit entries share.
    async fn plan(
        &self,
        (job, policies): (FetchJob, Arc<PolicySet>),
        trace_id: String,
    ) -> (fetch::Plan, Arc<FetchContext>) {
        let routes = self.routes.load();
        let ctx = FetchContext::new(&self.auditor, &job, trace_id, policies.version());
        tracing::Span::current().record("request_id", job.request_id.as_str());
        let span = tracing::info_span!(
            "policy",
            policy_set = policies.version(),
            decisions = job.fetch.wanted.len(),
            settled = tracing::field::Empty,
        );
        let plan = fetch::plan(
            job,
            Arc::clone(&self.catalog),
            &policies,
            &routes,
            &self.quotas,
            &self.cache,
        )
        .instrument(span.clone())
        .await;
        // Results known without an adapter call: denials, spent quotas,
        // types without a source.
        span.record("settled", plan.immediate.len());
        (plan, Arc::new(ctx))
    }
}

fn log_fetch(
    job_id: &str,
    requester: &str,
    purpose: &str,
    results: &[xgate_proto::v1::RecordResult],
    started: Instant,
) {
    let ok = results
        .iter()
        .filter(|r| r.status == RecordStatus::Ok as i32)
        .count();
    // Debug, not info: the audit log is the access record, and a line per
    // fetch cost ~4 % of the gateway's CPU per fetch under load (BENCHMARKS.md).
    tracing::debug!(
        request_id = job_id,
        requester,
        purpose,
        types = results.len(),
        ok,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "fetch answered"
    );
}

/// The `Exchange` service (approval systems).
#[derive(Clone)]
pub struct ExchangeService(pub Arc<GatewayState>);

type ResultStream = Pin<Box<dyn Stream<Item = Result<FetchStreamResponse, Status>> + Send>>;

/// The audit trace id of a fetch: its span's, else the caller's header's.
fn audit_trace_id<T>(span_trace_id: String, request: &Request<T>) -> String {
    if span_trace_id.is_empty() {
        audit::trace_id(request)
    } else {
        span_trace_id
    }
}

impl ExchangeService {
    async fn fetch_unary(
        &self,
        request: Request<FetchRequest>,
        trace_id: String,
    ) -> Result<Response<FetchResponse>, Status> {
        let (job, policies) = self.0.start_fetch(request, &trace_id).await?;
        let (request_id, requester, purpose, started) = (
            job.request_id.clone(),
            job.requester.clone(),
            job.fetch.purpose.clone(),
            job.started,
        );
        let (results, receipt) = self.0.run(job, policies, trace_id).await;
        count_records(&results);
        log_fetch(&request_id, &requester, &purpose, &results, started);
        let mut response = Response::new(FetchResponse {
            request_id: request_id.clone(),
            results,
            receipt,
        });
        if let Ok(value) = request_id.parse() {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    async fn fetch_streaming(
        &self,
        request: Request<FetchRequest>,
        trace_id: String,
    ) -> Result<(ResultStream, String), Status> {
        let job = self.0.start_fetch(request, &trace_id).await?;
        let request_id = job.0.request_id.clone();
        let (fetch::Plan { immediate, calls }, ctx) = self.0.plan(job, trace_id).await;
        let wrap = {
            let request_id = request_id.clone();
            move |(result, receipt): (RecordResult, Option<AuditReceipt>)| {
                Ok(FetchStreamResponse {
                    request_id: request_id.clone(),
                    result: Some(result),
                    receipt,
                })
            }
        };
        // Known outcomes first, then each department's as soon as it
        // answers; every batch only after its audit entries are durable.
        let seal = {
            let auditor = Arc::clone(&self.0.auditor);
            move |batch: Vec<Settled>| {
                let auditor = Arc::clone(&auditor);
                let ctx = Arc::clone(&ctx);
                async move {
                    let (results, receipt) =
                        audit::respond(audit::seal(&auditor, &ctx, batch).await);
                    count_records(&results);
                    results
                        .into_iter()
                        .map(|result| (result, receipt.clone()))
                        .collect::<Vec<_>>()
                }
            }
        };
        let stream = futures::stream::once(seal.clone()(immediate))
            .chain(calls.then(seal))
            .flat_map(futures::stream::iter)
            .map(wrap);
        Ok((Box::pin(stream) as ResultStream, request_id))
    }
}

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn fetch(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<FetchResponse>, Status> {
        // Shed first: an over-limit call costs no validation, policy or
        // adapter work.
        let result = match self.0.overload.admit() {
            Err(status) => Err(status),
            Ok(_slot) => {
                let (span, trace_id) = crate::telemetry::fetch_span("Fetch", request.metadata());
                let trace_id = audit_trace_id(trace_id, &request);
                let started = Instant::now();
                let result = self.fetch_unary(request, trace_id).instrument(span).await;
                metrics()
                    .fetch_seconds
                    .observe(started.elapsed().as_secs_f64());
                result
            }
        };
        count_request(
            "Fetch",
            result
                .as_ref()
                .map_or_else(Status::code, |_| tonic::Code::Ok),
        );
        result
    }

    type FetchStreamStream = ResultStream;

    async fn fetch_stream(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let slot = match self.0.overload.admit() {
            Ok(slot) => slot,
            Err(status) => {
                count_request("FetchStream", status.code());
                return Err(status);
            }
        };
        let (span, trace_id) = crate::telemetry::fetch_span("FetchStream", request.metadata());
        let trace_id = audit_trace_id(trace_id, &request);
        let started = Instant::now();
        let (stream, request_id) = match self
            .fetch_streaming(request, trace_id)
            .instrument(span.clone())
            .await
        {
            Ok(started) => started,
            Err(status) => {
                count_request("FetchStream", status.code());
                return Err(status);
            }
        };
        count_request("FetchStream", tonic::Code::Ok);
        // The slot is held, and the span entered, until the last result
        // has been sent.
        let stream = HeldStream::new(stream, span, slot, move || {
            metrics()
                .fetch_seconds
                .observe(started.elapsed().as_secs_f64());
        });
        let mut response = Response::new(Box::pin(stream) as ResultStream);
        if let Ok(value) = request_id.parse() {
            response.metadata_mut().insert("x-request-id", value);
        }
        Ok(response)
    }

    async fn list_record_types(
        &self,
        request: Request<ListRecordTypesRequest>,
    ) -> Result<Response<ListRecordTypesResponse>, Status> {
        xgate_tls::peer_identity(&request)?;
        let filter = request.into_inner();
        let kind = xgate_proto::kind::from_proto(filter.subject_kind);
        let routes = self.0.routes.load();
        let record_types = self
            .0
            .catalog
            .record_types()
            .filter(|rt| kind.is_none_or(|k| rt.subject_kind == k))
            .filter(|rt| filter.department.is_empty() || rt.department == filter.department)
            .map(|rt| RecordTypeInfo {
                id: rt.id.clone(),
                name: rt.name.clone(),
                department: rt.department.clone(),
                subject_kind: xgate_proto::kind::to_proto(rt.subject_kind) as i32,
                sharing_class: match rt.sharing_class {
                    SharingClass::Unconditional => xgate_proto::v1::SharingClass::Unconditional,
                    SharingClass::Conditional => xgate_proto::v1::SharingClass::Conditional,
                    SharingClass::NotShared => xgate_proto::v1::SharingClass::NotShared,
                } as i32,
                freshness_seconds: rt.freshness.as_secs(),
                schema_json: rt.schema.to_string(),
                has_source: routes.serves(&rt.id),
                views: rt.views().iter().map(xgate_proto::view::to_proto).collect(),
            })
            .collect();
        Ok(Response::new(ListRecordTypesResponse { record_types }))
    }

    async fn list_approval_items(
        &self,
        request: Request<ListApprovalItemsRequest>,
    ) -> Result<Response<ListApprovalItemsResponse>, Status> {
        xgate_tls::peer_identity(&request)?;
        let set = self.0.policies.current();
        Ok(Response::new(ListApprovalItemsResponse {
            purposes: set
                .purposes()
                .iter()
                .map(|p| PurposeInfo {
                    code: p.code.clone(),
                    name: p.name.clone(),
                    legal_basis: p.legal_basis.clone(),
                })
                .collect(),
            items: set
                .items()
                .iter()
                .map(|item| ApprovalItemInfo {
                    code: item.code.clone(),
                    name: item.name.clone(),
                    purpose: item.purpose.clone(),
                    requests: item
                        .entries
                        .iter()
                        .map(|e| RecordRequest {
                            record_type: e.record_type.clone(),
                            view: e.view.clone(),
                            params: e.params.clone().into_iter().collect(),
                        })
                        .collect(),
                })
                .collect(),
            policy_set_version: set.version().to_owned(),
        }))
    }
}

/// The `Registry` service (department IT).
#[derive(Clone)]
pub struct RegistryService(pub Arc<GatewayState>);

/// A department certificate may act only for its own department.
fn own_department<T>(request: &Request<T>, department: &str) -> Result<(), Status> {
    let Department(own) = Department::of(request, "register or renew its adapters")?;
    DepartmentOrAdmin::Department(own).may_act_for(department)
}

/// The request's own faults (unknown department or types, bad ids or
/// endpoints) as one INVALID_ARGUMENT; another department's types as
/// PERMISSION_DENIED.
fn check_registration(
    catalog: &Catalog,
    department: &str,
    adapter_id: &str,
    req: &RegisterRequest,
) -> Result<(), Status> {
    let mut violations = Vec::new();
    if catalog.department(department).is_none() {
        violations.push(Violation::new(
            "department",
            format!("unknown department `{department}`"),
        ));
    }
    if !valid_adapter_id(adapter_id) {
        violations.push(Violation::new(
            "adapter_id",
            "must be 1-64 characters of a-z, 0-9 and `-`",
        ));
    }
    if req.endpoints.is_empty() || req.endpoints.len() > MAX_ENDPOINTS {
        violations.push(Violation::new(
            "endpoints",
            format!("must name 1 to {MAX_ENDPOINTS} endpoints"),
        ));
    }
    for (i, url) in req.endpoints.iter().enumerate() {
        if let Err(e) = endpoint_host(url) {
            violations.push(Violation::new(format!("endpoints[{i}]"), e));
        }
    }
    if req.record_types.is_empty() {
        violations.push(Violation::new(
            "record_types",
            "at least one record type is required",
        ));
    }
    let mut foreign = Vec::new();
    for (i, id) in req.record_types.iter().enumerate() {
        match catalog.record_type(id) {
            None => violations.push(Violation::new(
                format!("record_types[{i}]"),
                format!("unknown record type `{id}`"),
            )),
            Some(rt) if rt.department != department => {
                foreign.push(format!("`{id}` belongs to department `{}`", rt.department));
            }
            Some(_) => {}
        }
    }
    if !violations.is_empty() {
        return Err(invalid_argument(&violations));
    }
    if !foreign.is_empty() {
        tracing::warn!(department, "registration refused: foreign record types");
        return Err(Status::permission_denied(format!(
            "department `{department}` may register only its own record types: {}",
            foreign.join(", ")
        )));
    }
    Ok(())
}

/// A type is served by one adapter of its department: ALREADY_EXISTS when
/// another adapter of `department` serves one of `types`.
fn refuse_shared_types(
    existing: &[Registration],
    department: &str,
    adapter_id: &str,
    types: &[String],
) -> Result<(), Status> {
    for other in existing
        .iter()
        .filter(|r| r.department == department && r.adapter_id != adapter_id)
    {
        if let Some(t) = types.iter().find(|t| other.record_types.contains(t)) {
            return Err(Status::already_exists(format!(
                "record type `{t}` is already served by adapter `{}` of department `{department}`; deregister it first",
                other.adapter_id
            )));
        }
    }
    Ok(())
}

/// The registration `req` makes of an adapter whose current one is
/// `previous`, and what it changes. Dropping a type or an endpoint of
/// `previous` is refused unless `req.replace`: a department that meant to
/// add must not silently lose what it served. The same sets again (an
/// adapter restarting) keep the registration time, so its heartbeats stay
/// valid; a replacement gets a time later than the one it replaces.
fn plan_registration(
    previous: Option<&Registration>,
    department: &str,
    adapter_id: &str,
    req: RegisterRequest,
    now: SystemTime,
) -> Result<(Registration, RegistrationChange), Status> {
    // What `new` names that `old` does not, once each, in `new`'s order.
    let added_to = |old: &[String], new: &[String]| -> Vec<String> {
        let mut added: Vec<String> = Vec::new();
        for item in new {
            if !old.contains(item) && !added.contains(item) {
                added.push(item.clone());
            }
        }
        added
    };
    let (old_types, old_endpoints) = previous
        .map(|p| (p.record_types.as_slice(), p.endpoints.as_slice()))
        .unwrap_or_default();
    let change = RegistrationChange {
        created: previous.is_none(),
        replaced: previous.is_some() && req.replace,
        added_record_types: added_to(old_types, &req.record_types),
        removed_record_types: added_to(&req.record_types, old_types),
        added_endpoints: added_to(old_endpoints, &req.endpoints),
        removed_endpoints: added_to(&req.endpoints, old_endpoints),
    };
    let registered_at = match previous {
        None => now,
        // At least a millisecond later (the store keeps milliseconds), so
        // the replaced registration's heartbeats name another time.
        Some(p) if req.replace => now.max(p.registered_at + Duration::from_millis(1)),
        Some(p) => p.registered_at,
    };
    let drops = !change.removed_record_types.is_empty() || !change.removed_endpoints.is_empty();
    if drops && !req.replace {
        return Err(refuse_dropping(department, adapter_id, &change));
    }
    let registration = Registration {
        department: department.to_owned(),
        adapter_id: adapter_id.to_owned(),
        endpoints: req.endpoints,
        record_types: req.record_types,
        registered_at,
        last_seen: now,
    };
    Ok((registration, change))
}

/// Whether `change` changes what the gateway routes (anything but the
/// same registration again).
fn changes_anything(change: &RegistrationChange) -> bool {
    change.created
        || change.replaced
        || !change.added_record_types.is_empty()
        || !change.removed_record_types.is_empty()
        || !change.added_endpoints.is_empty()
        || !change.removed_endpoints.is_empty()
}

/// FAILED_PRECONDITION naming every type and endpoint the registration
/// would drop, in the message and as a google.rpc.PreconditionFailure.
fn refuse_dropping(department: &str, adapter_id: &str, change: &RegistrationChange) -> Status {
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut dropped = Vec::new();
    if !change.removed_record_types.is_empty() {
        dropped.push(format!(
            "record types {} (they would have no source)",
            quoted(&change.removed_record_types)
        ));
    }
    if !change.removed_endpoints.is_empty() {
        dropped.push(format!("endpoints {}", quoted(&change.removed_endpoints)));
    }
    let message = format!(
        "adapter `{adapter_id}` of department `{department}` is registered with more than this registration names: it would drop {}; name them too to keep them, register another adapter with its own adapter id, or set replace (`--replace`) to replace the registration",
        dropped.join(" and ")
    );
    let violations: Vec<PreconditionViolation> = change
        .removed_record_types
        .iter()
        .map(|t| {
            PreconditionViolation::new(
                "DROPS_RECORD_TYPE",
                t.clone(),
                format!("record type `{t}` would lose its adapter"),
            )
        })
        .chain(change.removed_endpoints.iter().map(|e| {
            PreconditionViolation::new(
                "DROPS_ENDPOINT",
                e.clone(),
                format!("endpoint `{e}` would no longer be called"),
            )
        }))
        .collect();
    Status::with_error_details(
        tonic::Code::FailedPrecondition,
        message,
        ErrorDetails::with_precondition_failure(violations),
    )
}

fn adapter_id_of(department: &str, adapter_id: &str) -> String {
    if adapter_id.is_empty() {
        department.to_owned()
    } else {
        adapter_id.to_owned()
    }
}

fn valid_adapter_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn to_proto(r: &Registration, routes: &Routes) -> AdapterRegistration {
    let endpoint_states = routes
        .adapter(&r.department, &r.adapter_id)
        .map(|route| {
            route
                .endpoint_states()
                .into_iter()
                .map(|(endpoint, breaker, outstanding)| EndpointState {
                    endpoint,
                    breaker: match breaker {
                        BreakerState::Closed => ProtoBreakerState::Closed,
                        BreakerState::HalfOpen => ProtoBreakerState::HalfOpen,
                        BreakerState::Open => ProtoBreakerState::Open,
                    } as i32,
                    outstanding: u32::try_from(outstanding).unwrap_or(u32::MAX),
                })
                .collect()
        })
        .unwrap_or_default();
    AdapterRegistration {
        endpoint_states,
        department: r.department.clone(),
        adapter_id: r.adapter_id.clone(),
        endpoints: r.endpoints.clone(),
        record_types: r.record_types.clone(),
        registered_at: Some(prost_types::Timestamp::from(r.registered_at)),
        last_seen: Some(prost_types::Timestamp::from(r.last_seen)),
    }
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let department = request.get_ref().department.clone();
        own_department(&request, &department)?;
        let req = request.into_inner();
        let gw = &self.0;
        let adapter_id = adapter_id_of(&department, &req.adapter_id);

        check_registration(&gw.catalog, &department, &adapter_id, &req)?;

        let _guard = gw.registry_lock.lock().await;
        let existing = gw.store.all().await.map_err(error::status)?;
        refuse_shared_types(&existing, &department, &adapter_id, &req.record_types)?;
        let previous = existing
            .iter()
            .find(|r| r.department == department && r.adapter_id == adapter_id);
        let (registration, change) =
            plan_registration(previous, &department, &adapter_id, req, SystemTime::now())
                .inspect_err(|_| {
                    tracing::warn!(
                        department,
                        adapter_id,
                        "registration refused: it would drop types or endpoints"
                    );
                })?;
        gw.store
            .upsert(&registration)
            .await
            .map_err(error::status)?;
        let changed = changes_anything(&change);
        if changed {
            // Before the answer: no fetch after it sees the old adapter's records.
            gw.forget_cached(&department);
            announce(gw, &department).await;
        }
        let stored = gw
            .reload_routes()
            .await?
            .into_iter()
            .find(|r| r.department == department && r.adapter_id == adapter_id)
            .unwrap_or(registration);
        tracing::info!(
            department,
            adapter_id,
            types = stored.record_types.len(),
            endpoints = ?stored.endpoints,
            created = change.created,
            replaced = change.replaced,
            added_types = ?change.added_record_types,
            removed_types = ?change.removed_record_types,
            added_endpoints = ?change.added_endpoints,
            removed_endpoints = ?change.removed_endpoints,
            "adapter registered"
        );
        audit::admin_event(
            &gw.auditor,
            &department,
            AdminEvent::AdapterRegistered {
                department: department.clone(),
                adapter_id: adapter_id.clone(),
                endpoints: stored.endpoints.clone(),
                record_types: stored.record_types.clone(),
            },
        )
        .await;
        Ok(Response::new(RegisterResponse {
            registration: Some(to_proto(&stored, &gw.routes.load())),
            change: Some(change),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let department = request.get_ref().department.clone();
        own_department(&request, &department)?;
        let adapter_id = adapter_id_of(&department, &request.get_ref().adapter_id);
        let registered_at =
            match &request.get_ref().registered_at {
                None => None,
                Some(ts) => Some(SystemTime::try_from(*ts).map_err(|_| {
                    Status::invalid_argument("registered_at is not a valid timestamp")
                })?),
            };
        let now = SystemTime::now();
        match self
            .0
            .store
            .touch(&department, &adapter_id, registered_at, now)
            .await
            .map_err(error::status)?
        {
            Touch::Alive => {}
            Touch::Missing => {
                return Err(Status::not_found(format!(
                    "adapter `{adapter_id}` of department `{department}` is not registered"
                )));
            }
            Touch::Replaced { registered_at } => {
                return Err(Status::failed_precondition(format!(
                    "adapter `{adapter_id}` of department `{department}` was replaced by a registration made at {}; this instance no longer serves it: stop it, or register it again",
                    prost_types::Timestamp::from(registered_at)
                )));
            }
        }
        Ok(Response::new(HeartbeatResponse {
            last_seen: Some(prost_types::Timestamp::from(now)),
        }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let department = request.get_ref().department.clone();
        let caller = DepartmentOrAdmin::of(&request, "deregister adapters")?;
        caller.may_act_for(&department)?;
        let by_admin = matches!(caller, DepartmentOrAdmin::Admin(_));
        let adapter_id = adapter_id_of(&department, &request.get_ref().adapter_id);
        let gw = &self.0;
        let _guard = gw.registry_lock.lock().await;
        let removed = gw
            .store
            .remove(&department, &adapter_id)
            .await
            .map_err(error::status)?;
        if removed {
            gw.forget_cached(&department);
            announce(gw, &department).await;
        }
        gw.reload_routes().await?;
        tracing::info!(
            department,
            adapter_id,
            removed,
            by_admin,
            "adapter deregistered"
        );
        if removed {
            audit::admin_event(
                &gw.auditor,
                &department,
                AdminEvent::AdapterRemoved {
                    department: department.clone(),
                    adapter_id: adapter_id.clone(),
                    by_admin,
                },
            )
            .await;
        }
        Ok(Response::new(DeregisterResponse { removed }))
    }

    async fn list(
        &self,
        request: Request<ListAdaptersRequest>,
    ) -> Result<Response<ListAdaptersResponse>, Status> {
        let only = match DepartmentOrAdmin::of(&request, "list adapters")? {
            DepartmentOrAdmin::Admin(_) => None,
            DepartmentOrAdmin::Department(d) => Some(d),
        };
        let routes = self.0.routes.load();
        let adapters = self
            .0
            .store
            .all()
            .await
            .map_err(error::status)?
            .iter()
            .filter(|r| only.as_ref().is_none_or(|d| &r.department == d))
            .map(|r| to_proto(r, &routes))
            .collect();
        Ok(Response::new(ListAdaptersResponse { adapters }))
    }
}

/// Tells the other replicas; a lost notice is healed by their resync.
async fn announce(gw: &GatewayState, department: &str) {
    if let Err(e) = gw.store.announce(department).await {
        tracing::warn!(department, error = %e, "registry change not announced; replicas resync");
    }
}

/// Departments whose registrations (anything but `last_seen`) differ.
fn changed_departments(before: &[Registration], after: &[Registration]) -> Vec<String> {
    let shape = |rs: &[Registration],
                 department: &str|
     -> Vec<(String, Vec<String>, Vec<String>, SystemTime)> {
        rs.iter()
            .filter(|r| r.department == department)
            .map(|r| {
                (
                    r.adapter_id.clone(),
                    r.endpoints.clone(),
                    r.record_types.clone(),
                    r.registered_at,
                )
            })
            .collect()
    };
    let mut departments: Vec<&str> = before
        .iter()
        .chain(after)
        .map(|r| r.department.as_str())
        .collect();
    departments.sort_unstable();
    departments.dedup();
    departments
        .into_iter()
        .filter(|d| shape(before, d) != shape(after, d))
        .map(str::to_owned)
        .collect()
}

/// Follows the shared registry when it is in PostgreSQL: a `NOTIFY` from
/// any replica, or every [`RESYNC_EVERY`] in case one was missed (a
/// dropped listener connection), resyncs this replica's routes and cache.
pub fn follow_registry(state: &Arc<GatewayState>) -> Option<tokio::task::JoinHandle<()>> {
    let pool = state.store.pg_pool()?.clone();
    let state = Arc::clone(state);
    Some(tokio::spawn(async move {
        // Unread, every department counts as changed at the first resync.
        let mut known = state.store.all().await.unwrap_or_default();
        let mut listener: Option<sqlx::postgres::PgListener> = None;
        loop {
            if listener.is_none() {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l
                        .listen_all([crate::store::CHANGES, crate::store::CORRECTIONS])
                        .await
                    {
                        Ok(()) => listener = Some(l),
                        Err(e) => tracing::warn!(error = %e, "registry listener: listen failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "registry listener: connect failed"),
                }
            }
            match &mut listener {
                Some(l) => match tokio::time::timeout(RESYNC_EVERY, l.recv()).await {
                    Ok(Ok(n)) if n.channel() == crate::store::CORRECTIONS => {
                        // A record corrected through another replica.
                        let mut parts = n.payload().splitn(3, '\t');
                        if let (Some(kind), Some(subject), Some(record_type)) =
                            (parts.next(), parts.next(), parts.next())
                            && let Some(kind) = xgate_catalog::SubjectKind::parse(kind)
                        {
                            state.cache.forget_subject(kind, subject, record_type).await;
                        }
                        continue;
                    }
                    Ok(Ok(_)) | Err(_) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "registry listener lost; resyncing");
                        listener = None;
                    }
                },
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
            if let Err(e) = state.resync_registry(&mut known).await {
                tracing::warn!(error = %e, "registry resync failed");
            }
        }
    }))
}

/// How often a replica rereads the shared registry without a notice.
pub const RESYNC_EVERY: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn changed_departments_ignore_heartbeats_and_name_every_other_change() {
        let reg = |department: &str, endpoint: &str, ms: u64| Registration {
            department: department.into(),
            adapter_id: department.into(),
            endpoints: vec![endpoint.into()],
            record_types: vec![format!("{department}_type")],
            registered_at: UNIX_EPOCH + Duration::from_millis(ms),
            last_seen: UNIX_EPOCH + Duration::from_millis(ms),
        };
        let before = vec![reg("tax", "https://a", 1), reg("courts", "https://c", 1)];
        let mut beat = before.clone();
        beat[0].last_seen = UNIX_EPOCH + Duration::from_millis(9);
        assert!(changed_departments(&before, &beat).is_empty());
        let replaced = vec![reg("tax", "https://b", 2), reg("courts", "https://c", 1)];
        assert_eq!(changed_departments(&before, &replaced), vec!["tax"]);
        let removed = vec![reg("tax", "https://a", 1)];
        assert_eq!(changed_departments(&before, &removed), vec!["courts"]);
        let added = vec![
            reg("tax", "https://a", 1),
            reg("courts", "https://c", 1),
            reg("land", "https://l", 3),
        ];
        assert_eq!(changed_departments(&before, &added), vec!["land"]);
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn request(types: &[&str], endpoints: &[&str], replace: bool) -> RegisterRequest {
        RegisterRequest {
            department: "tax".into(),
            adapter_id: String::new(),
            endpoints: strings(endpoints),
            record_types: strings(types),
            replace,
        }
    }

    fn registered(types: &[&str], endpoints: &[&str]) -> Registration {
        Registration {
            department: "tax".into(),
            adapter_id: "tax".into(),
            endpoints: strings(endpoints),
            record_types: strings(types),
            registered_at: at(1_000),
            last_seen: at(2_000),
        }
    }

    const A: &str = "https://127.0.0.1:7001";
    const B: &str = "https://127.0.0.1:7002";

    #[test]
    fn dropping_a_type_or_an_endpoint_is_refused_with_what_would_be_dropped() {
        let old = registered(&["t1", "t2", "t3"], &[A, B]);
        let status = plan_registration(
            Some(&old),
            "tax",
            "tax",
            request(&["t1"], &[A], false),
            at(5_000),
        )
        .expect_err("drops t2, t3 and B");
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        let message = status.message();
        assert!(
            message.contains("record types `t2`, `t3`")
                && message.contains(&format!("endpoints `{B}`"))
                && message.contains("`--replace`"),
            "{message}"
        );
        let failure = status
            .get_details_precondition_failure()
            .expect("precondition failure details");
        let subjects: Vec<(&str, &str)> = failure
            .violations
            .iter()
            .map(|v| (v.r#type.as_str(), v.subject.as_str()))
            .collect();
        assert_eq!(
            subjects,
            [
                ("DROPS_RECORD_TYPE", "t2"),
                ("DROPS_RECORD_TYPE", "t3"),
                ("DROPS_ENDPOINT", B)
            ]
        );
    }

    #[test]
    fn replace_takes_the_new_set_with_a_new_registration_time() {
        let old = registered(&["t1", "t2"], &[A]);
        let (new, change) = plan_registration(
            Some(&old),
            "tax",
            "tax",
            request(&["t1", "t4"], &[B], true),
            at(1_000),
        )
        .expect("replace");
        assert_eq!(new.record_types, ["t1", "t4"]);
        assert!(change.replaced && !change.created);
        assert_eq!(change.added_record_types, ["t4"]);
        assert_eq!(change.removed_record_types, ["t2"]);
        assert_eq!(
            (change.added_endpoints, change.removed_endpoints),
            (strings(&[B]), strings(&[A]))
        );
        // the clock did not move: still a later time than the replaced one
        assert_eq!(new.registered_at, at(1_001));
        assert!(changes_anything(&RegistrationChange {
            replaced: true,
            ..RegistrationChange::default()
        }));
    }

    #[test]
    fn the_same_set_again_or_a_superset_is_no_replacement() {
        let old = registered(&["t1", "t2"], &[A]);
        let (same, change) = plan_registration(
            Some(&old),
            "tax",
            "tax",
            request(&["t2", "t1"], &[A], false),
            at(9_000),
        )
        .expect("restart");
        assert_eq!(same.registered_at, old.registered_at);
        assert_eq!(same.last_seen, at(9_000));
        assert!(!changes_anything(&change), "{change:?}");

        let (more, change) = plan_registration(
            Some(&old),
            "tax",
            "tax",
            request(&["t1", "t2", "t3"], &[A, B], false),
            at(9_000),
        )
        .expect("extension");
        assert_eq!(more.registered_at, old.registered_at);
        assert_eq!(change.added_record_types, ["t3"]);
        assert_eq!(change.added_endpoints, [B]);
        assert!(!change.replaced && changes_anything(&change));

        let (first, change) =
            plan_registration(None, "tax", "tax", request(&["t1"], &[A], true), at(9_000))
                .expect("first");
        assert_eq!(first.registered_at, at(9_000));
        assert!(change.created && !change.replaced);
    }
}
