//! Prometheus metrics of one gateway process, served as text by the
//! metrics endpoint (see [`crate::telemetry`]).
//!
//! One process-wide registry ([`metrics`]): the families are cheap to
//! update from any task (atomics), and label values are bounded sets
//! (departments, statuses, RPC names), never requesters' subjects.

use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `Fetch` or `FetchStream`.
    pub rpc: &'static str,
    /// The gRPC code the call ended with (`OK`, `INVALID_ARGUMENT`, ...).
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecordLabels {
    pub department: String,
    /// The per-record status (`OK`, `DENIED`, `NOT_FOUND`, ...).
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DepartmentLabels {
    pub department: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub department: String,
    /// `ok`, `error`, `timeout`, `breaker_open`, `bulkhead_full`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum CacheOutcome {
    /// Served from the cache.
    Hit,
    /// Not cached: this fetch called the adapter.
    Miss,
    /// Not cached, but another fetch was already calling the adapter for
    /// the same key: this one waited for that answer.
    Coalesced,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub outcome: CacheOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    /// `overloaded` (gateway-wide limit) or `rate_limited` (per requester).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicySetLabels {
    /// The active policy set's version (`sha256:...`).
    pub version: String,
    /// The replica's instance id, so a dashboard can compare replicas.
    pub instance: String,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Exchange RPCs answered, by RPC and gRPC code.
    pub requests: Family<RpcLabels, Counter>,
    /// Whole-fetch latency, seconds.
    pub fetch_seconds: Histogram,
    /// Per-record results, by department and status.
    pub records: Family<RecordLabels, Counter>,
    /// Adapter call latency per department (all attempts of one call,
    /// hedges and retries included), seconds.
    pub adapter_call_seconds: Family<DepartmentLabels, Histogram>,
    /// Adapter calls by department and outcome.
    pub adapter_calls: Family<CallLabels, Counter>,
    /// Hedged second requests sent, by department.
    pub adapter_hedges: Family<DepartmentLabels, Counter>,
    /// Retries sent (within the retry budget), by department.
    pub adapter_retries: Family<DepartmentLabels, Counter>,
    /// Circuit breaker state per department: 0 closed, 1 half-open, 2 open.
    pub breaker_state: Family<DepartmentLabels, Gauge>,
    /// Record cache lookups by outcome.
    pub cache_lookups: Family<CacheLabels, Counter>,
    /// Bytes held by the record cache.
    pub cache_bytes: Gauge,
    /// Audit entries waiting to be committed.
    pub audit_queue_depth: Gauge,
    /// Tamper alarms raised by the audit writer (it then refuses appends).
    pub audit_tamper_alarms: Gauge,
    /// Fetches in progress.
    pub in_flight: Gauge,
    /// Fetches refused before any work, by reason.
    pub shed: Family<ShedLabels, Counter>,
    /// 1 for the active policy set (an "info" gauge: the labels are the
    /// data); replicas whose series differ disagree.
    pub policy_set: Family<PolicySetLabels, Gauge>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 100 µs .. ~26 s
    exponential_buckets(0.0001, 2.0, 19)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("xgate");
        let requests = Family::<RpcLabels, Counter>::default();
        registry.register("requests", "Exchange RPCs answered", requests.clone());
        let fetch_seconds = Histogram::new(latency_buckets());
        registry.register(
            "fetch_duration_seconds",
            "Whole-fetch latency",
            fetch_seconds.clone(),
        );
        let records = Family::<RecordLabels, Counter>::default();
        registry.register(
            "records",
            "Per-record results by department and status",
            records.clone(),
        );
        let adapter_call_seconds =
            Family::<DepartmentLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(latency_buckets())
            });
        registry.register(
            "adapter_call_duration_seconds",
            "Adapter call latency per department",
            adapter_call_seconds.clone(),
        );
        let adapter_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "adapter_calls",
            "Adapter calls by department and outcome",
            adapter_calls.clone(),
        );
        let adapter_hedges = Family::<DepartmentLabels, Counter>::default();
        registry.register(
            "adapter_hedges",
            "Hedged second requests sent",
            adapter_hedges.clone(),
        );
        let adapter_retries = Family::<DepartmentLabels, Counter>::default();
        registry.register(
            "adapter_retries",
            "Adapter retries sent within the retry budget",
            adapter_retries.clone(),
        );
        let breaker_state = Family::<DepartmentLabels, Gauge>::default();
        registry.register(
            "breaker_state",
            "Circuit breaker state per department (0 closed, 1 half-open, 2 open)",
            breaker_state.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Record cache lookups by outcome",
            cache_lookups.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes held by the record cache",
            cache_bytes.clone(),
        );
        let audit_queue_depth = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit entries waiting to be committed",
            audit_queue_depth.clone(),
        );
        let audit_tamper_alarms = Gauge::default();
        registry.register(
            "audit_tamper_alarms",
            "Tamper alarms raised by the audit writer; above 0 it refuses appends (fails closed)",
            audit_tamper_alarms.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_fetches",
            "Fetches in progress",
            in_flight.clone(),
        );
        let shed = Family::<ShedLabels, Counter>::default();
        registry.register("shed", "Fetches refused before any work", shed.clone());
        let policy_set = Family::<PolicySetLabels, Gauge>::default();
        registry.register(
            "policy_set",
            "The active policy set (1, labelled with its version and the replica's instance)",
            policy_set.clone(),
        );
        Metrics {
            registry,
            requests,
            fetch_seconds,
            records,
            adapter_call_seconds,
            adapter_calls,
            adapter_hedges,
            adapter_retries,
            breaker_state,
            cache_lookups,
            cache_bytes,
            audit_queue_depth,
            audit_tamper_alarms,
            in_flight,
            shed,
            policy_set,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// The canonical name of a gRPC code (`OK`, `RESOURCE_EXHAUSTED`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counts one answered Exchange call.
pub fn count_request(rpc: &'static str, code: tonic::Code) {
    metrics()
        .requests
        .get_or_create(&RpcLabels {
            rpc,
            code: code_name(code),
        })
        .inc();
}

/// Counts released (sealed) per-record results by department and status.
pub fn count_records<'a>(results: impl IntoIterator<Item = &'a xgate_proto::v1::RecordResult>) {
    let m = metrics();
    for r in results {
        m.records
            .get_or_create(&RecordLabels {
                department: r.department.clone(),
                status: xgate_proto::status_name(r.status),
            })
            .inc();
    }
}

/// One department label value.
pub fn department(department: &str) -> DepartmentLabels {
    DepartmentLabels {
        department: department.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_appear_in_the_exposition() {
        let m = metrics();
        m.cache_lookups
            .get_or_create(&CacheLabels {
                outcome: CacheOutcome::Hit,
            })
            .inc();
        m.breaker_state.get_or_create(&department("tax")).set(2);
        m.adapter_call_seconds
            .get_or_create(&department("tax"))
            .observe(0.003);
        count_request("Fetch", tonic::Code::ResourceExhausted);
        count_records(&[xgate_proto::v1::RecordResult {
            department: "tax".into(),
            status: xgate_proto::v1::RecordStatus::Denied as i32,
            ..Default::default()
        }]);
        let text = m.encode();
        assert!(
            text.contains("xgate_requests_total{rpc=\"Fetch\",code=\"RESOURCE_EXHAUSTED\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("xgate_records_total{department=\"tax\",status=\"DENIED\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("xgate_cache_lookups_total{outcome=\"Hit\"}"),
            "{text}"
        );
        assert!(
            text.contains("xgate_breaker_state{department=\"tax\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("xgate_adapter_call_duration_seconds_bucket{le="),
            "{text}"
        );
    }
}
