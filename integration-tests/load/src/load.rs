//! The load client's engine: N tasks, each looping one operation over a shared set of
//! HTTP/2 connections; a warm-up, then a measured window.
//!
//! An operation is one or more calls issued together (e.g. a citizen's and a company's Fetch,
//! the demo's 63 types) and finishes when the last one answers. It is an error when any call
//! ends with a gRPC status other than OK, or any record in an answer is not OK (Fetch) /
//! FOUND (Lookup): h2load counts gRPC errors as successes, this client does not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::{FetchRequest, LookupRequest, LookupStatus, RecordStatus};
use xgate_tls::TlsFiles;

/// Largest answer accepted (every record type of a subject).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// One call of an operation.
#[derive(Debug, Clone)]
pub enum Call {
    /// `xgate.v1.Exchange/Fetch` on a gateway.
    Fetch(FetchRequest),
    /// `xgate.v1.DepartmentAdapter/Lookup` on an adapter (directly or through a proxy).
    Lookup(LookupRequest),
}

/// How hard and how long to drive the target.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Tasks, each with one operation in flight at a time.
    pub concurrency: usize,
    /// HTTP/2 connections the tasks share (task `i` uses connection `i % connections`).
    pub connections: usize,
    /// Operations before this long after the start are not recorded.
    pub warmup: Duration,
    /// The measured window after the warm-up.
    pub duration: Duration,
    /// Deadline sent with every call (`grpc-timeout`).
    pub timeout: Duration,
}

/// Where the calls go: `https://` (mTLS with `tls`) or `http://` (plaintext).
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Client certificate, key and CA; `None` for plaintext.
    pub tls: Option<TlsFiles>,
}

impl Target {
    /// Opens one connection (TLS handshake included) to the target.
    pub async fn connect(&self) -> anyhow::Result<Channel> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.addr))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10));
        if let Some(tls) = &self.tls {
            xgate_tls::install_crypto_provider();
            // The dev certificates carry 127.0.0.1 as an IP SAN.
            endpoint = endpoint.tls_config(tls.client_config(&self.addr.ip().to_string())?)?;
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {scheme}://{}", self.addr))
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub concurrency: usize,
    pub connections: usize,
    /// Operations recorded in the measured window.
    pub operations: u64,
    /// Operations with no error.
    pub ok: u64,
    /// Operations with a non-OK gRPC status or a record not OK / FOUND.
    pub errors: u64,
    /// Length of the measured window, in seconds.
    pub seconds: f64,
    /// Operations per second in the measured window.
    pub throughput: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Calls by gRPC status code name.
    pub grpc_status: BTreeMap<String, u64>,
    /// Records by status name (Fetch: `RECORD_STATUS_*`; Lookup: `LOOKUP_STATUS_*`).
    pub record_status: BTreeMap<String, u64>,
    /// The first error seen, for the reader.
    pub first_error: Option<String>,
}

impl Report {
    /// One line for people: throughput, percentiles, errors.
    pub fn summary(&self) -> String {
        format!(
            "{:<28} {:>9.1} op/s  p50 {:>8.3} ms  p90 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  ops {:>7}  errors {}{}",
            self.label,
            self.throughput,
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.operations,
            self.errors,
            self.first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        )
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Counters of one task, merged at the end.
struct Tally {
    histogram: Histogram<u64>,
    operations: u64,
    errors: u64,
    grpc_status: BTreeMap<String, u64>,
    record_status: BTreeMap<String, u64>,
    first_error: Option<String>,
    last_end: Instant,
}

impl Tally {
    fn new(start: Instant) -> anyhow::Result<Tally> {
        Ok(Tally {
            // 1 µs to 10 min, 3 significant digits.
            histogram: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            operations: 0,
            errors: 0,
            grpc_status: BTreeMap::new(),
            record_status: BTreeMap::new(),
            first_error: None,
            last_end: start,
        })
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.histogram.add(&other.histogram)?;
        self.operations += other.operations;
        self.errors += other.errors;
        for (k, v) in other.grpc_status {
            *self.grpc_status.entry(k).or_default() += v;
        }
        for (k, v) in other.record_status {
            *self.record_status.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.last_end = self.last_end.max(other.last_end);
        Ok(())
    }
}

/// What one call came back with: its gRPC status and its records' statuses.
struct Outcome {
    grpc: tonic::Code,
    records: Vec<String>,
    error: Option<String>,
}

async fn call(channel: Channel, call: &Call, timeout: Duration) -> Outcome {
    match call {
        Call::Fetch(request) => {
            let mut client =
                ExchangeClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(timeout);
            match client.fetch(req).await {
                Ok(resp) => tally(
                    resp.into_inner().results.iter().map(|r| {
                        let status =
                            RecordStatus::try_from(r.status).unwrap_or(RecordStatus::Unspecified);
                        (
                            r.record_type.as_str(),
                            status.as_str_name(),
                            r.error.as_str(),
                        )
                    }),
                    RecordStatus::Ok.as_str_name(),
                ),
                Err(status) => failed(status),
            }
        }
        Call::Lookup(request) => {
            let mut client =
                DepartmentAdapterClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(timeout);
            match client.lookup(req).await {
                Ok(resp) => tally(
                    resp.into_inner().answers.iter().map(|a| {
                        let status =
                            LookupStatus::try_from(a.status).unwrap_or(LookupStatus::Unspecified);
                        (
                            a.record_type.as_str(),
                            status.as_str_name(),
                            a.error.as_str(),
                        )
                    }),
                    LookupStatus::Found.as_str_name(),
                ),
                Err(status) => failed(status),
            }
        }
    }
}

/// An answered call: each record's status (type, status name, error text), the first one that
/// is not `ok` being the operation's error.
fn tally<'a>(rows: impl Iterator<Item = (&'a str, &'static str, &'a str)>, ok: &str) -> Outcome {
    let mut error = None;
    let records = rows
        .map(|(record_type, status, text)| {
            if status != ok && error.is_none() {
                error = Some(format!("{record_type}: {status} {text}"));
            }
            status.to_owned()
        })
        .collect();
    Outcome {
        grpc: tonic::Code::Ok,
        records,
        error,
    }
}

fn failed(status: tonic::Status) -> Outcome {
    Outcome {
        grpc: status.code(),
        records: Vec::new(),
        error: Some(format!("{:?}: {}", status.code(), status.message())),
    }
}

/// Drives `target` with `calls` per operation as `spec` says, and reports the measured window.
pub async fn run(
    label: &str,
    target: &Target,
    calls: Vec<Call>,
    spec: &Spec,
) -> anyhow::Result<Report> {
    anyhow::ensure!(spec.concurrency > 0, "concurrency must be at least 1");
    anyhow::ensure!(!calls.is_empty(), "an operation needs at least one call");
    let connections = spec.connections.clamp(1, spec.concurrency);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(target.connect().await?);
    }
    let calls = Arc::new(calls);
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let stop_at = measure_from + spec.duration;
    let mut tasks = Vec::with_capacity(spec.concurrency);
    for i in 0..spec.concurrency {
        let channel = channels
            .get(i % connections)
            .cloned()
            .context("no connection")?;
        let calls = Arc::clone(&calls);
        let timeout = spec.timeout;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(start)?;
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let outcomes = futures::future::join_all(
                    calls.iter().map(|c| call(channel.clone(), c, timeout)),
                )
                .await;
                let ended = Instant::now();
                if began < measure_from {
                    continue;
                }
                tally.operations += 1;
                tally.last_end = ended;
                let mut error = None;
                for outcome in outcomes {
                    *tally
                        .grpc_status
                        .entry(format!("{:?}", outcome.grpc))
                        .or_default() += 1;
                    for record in outcome.records {
                        *tally.record_status.entry(record).or_default() += 1;
                    }
                    if error.is_none() {
                        error = outcome.error;
                    }
                }
                if let Some(error) = error {
                    tally.errors += 1;
                    if tally.first_error.is_none() {
                        tally.first_error = Some(error);
                    }
                }
                let us = u64::try_from(ended.duration_since(began).as_micros()).unwrap_or(u64::MAX);
                tally.histogram.saturating_record(us.max(1));
            }
            anyhow::Ok(tally)
        }));
    }
    let mut total = Tally::new(start)?;
    for task in tasks {
        total.merge(task.await.context("a load task panicked")??)?;
    }
    let seconds = total
        .last_end
        .max(stop_at)
        .duration_since(measure_from)
        .as_secs_f64();
    let h = &total.histogram;
    Ok(Report {
        label: label.to_owned(),
        concurrency: spec.concurrency,
        connections,
        operations: total.operations,
        ok: total.operations - total.errors,
        errors: total.errors,
        seconds,
        throughput: if seconds > 0.0 {
            total.operations as f64 / seconds
        } else {
            0.0
        },
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        mean_us: h.mean(),
        grpc_status: total.grpc_status,
        record_status: total.record_status,
        first_error: total.first_error,
    })
}

/// Case and operator ids sent with every benchmark Fetch.
pub const CASE_ID: &str = "BENCH-CASE-0001";
pub const OPERATOR_ID: &str = "bench-operator";

/// The record types of `department` (every department when `None`) keyed by `kind`.
pub fn types_of(
    catalog: &xgate_catalog::Catalog,
    department: Option<&str>,
    kind: xgate_catalog::SubjectKind,
) -> Vec<String> {
    catalog
        .record_types()
        .filter(|t| t.subject_kind == kind && department.is_none_or(|d| t.department == d))
        .map(|t| t.id.clone())
        .collect()
}

fn subject(kind: xgate_catalog::SubjectKind, id: &str) -> xgate_proto::v1::Subject {
    xgate_proto::v1::Subject {
        kind: xgate_proto::kind::to_proto(kind) as i32,
        id: id.to_owned(),
    }
}

/// A Fetch of `types` about subject `id` for `purpose`.
pub fn fetch(kind: xgate_catalog::SubjectKind, id: &str, types: &[String], purpose: &str) -> Call {
    Call::Fetch(FetchRequest {
        subject: Some(subject(kind, id)),
        record_types: types.to_vec(),
        purpose: purpose.to_owned(),
        case_id: CASE_ID.to_owned(),
        operator_id: OPERATOR_ID.to_owned(),
        // As a client that cares for speed asks: no Struct trees.
        records_as_json: true,
        ..FetchRequest::default()
    })
}

/// A Lookup of `types` about subject `id`, as the gateway sends it.
pub fn lookup(kind: xgate_catalog::SubjectKind, id: &str, types: &[String]) -> Call {
    Call::Lookup(LookupRequest {
        subject: Some(subject(kind, id)),
        record_types: types.to_vec(),
        request_id: "bench".to_owned(),
        purpose: "GENERAL-APPROVAL".to_owned(),
    })
}
