//! Tracing (OpenTelemetry spans, OTLP export off by default), W3C trace
//! context propagation into adapter calls, and the Prometheus metrics
//! endpoint.
//!
//! Spans of a fetch: `fetch` (continues the caller's `traceparent` when
//! sent), `policy` (its decisions), `audit` (sealing its results), and the
//! adapter call and cache spans below them. Span attributes name the
//! requester, purpose, request id and counts — never a subject id.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataMap;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use xgate_proto::telemetry::TracerProvider;

use crate::metrics::metrics;

/// The `service.name` of the gateway's spans.
pub const SERVICE_NAME: &str = "xgate";

/// The spans that carry trace context when nothing is exported: the
/// fetch (continues the caller's trace, names the audit entries' trace id)
/// and the adapter call (its id is the parent the adapter sees).
const PROPAGATING_SPANS: [&str; 2] = ["fetch", "adapter.call"];

/// Whether the OpenTelemetry layer handles `meta`: every INFO-or-above span
/// and event when exporting; otherwise only [`PROPAGATING_SPANS`], since
/// OpenTelemetry data of the other spans (policy, audit, cache) and of log
/// events would be built on every fetch only to be dropped unsampled.
fn otel_wants(meta: &tracing::Metadata<'_>, exporting: bool) -> bool {
    *meta.level() <= tracing::Level::INFO
        && (exporting || (meta.is_span() && PROPAGATING_SPANS.contains(&meta.name())))
}

/// Installs the process's subscriber: log lines to `writer` filtered by
/// `RUST_LOG` (default `info`), and OpenTelemetry spans (INFO and above,
/// whatever `RUST_LOG` says, so trace context always propagates) exported
/// to `otlp_endpoint` when given; without an endpoint only the spans that
/// propagate trace context get OpenTelemetry data. Keep the provider and
/// shut it down at exit to flush the last spans. Must run inside the Tokio
/// runtime.
pub fn init_tracing(
    writer: tracing_subscriber::fmt::writer::BoxMakeWriter,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<TracerProvider> {
    let provider = xgate_proto::telemetry::provider(SERVICE_NAME, otlp_endpoint)
        .context("building the OTLP span exporter")?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let exporting = otlp_endpoint.is_some();
    let spans = xgate_proto::telemetry::layer(&provider, SERVICE_NAME).with_filter(
        tracing_subscriber::filter::filter_fn(move |meta| otel_wants(meta, exporting)),
    );
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_filter(filter);
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(spans)
        .with(logs)
        .try_init();
    Ok(provider)
}

/// Writes the current span's W3C trace context (`traceparent`,
/// `tracestate`) into an outgoing adapter request, so the adapter's spans
/// continue the fetch's trace.
pub fn inject_trace_context(metadata: &mut MetadataMap) {
    xgate_proto::telemetry::inject(&tracing::Span::current(), metadata);
}

/// The server span of one Exchange fetch, continuing the caller's trace
/// when its metadata carries a `traceparent`. Returns the span and its
/// trace id (empty without a tracing layer).
pub fn fetch_span(rpc: &'static str, metadata: &MetadataMap) -> (tracing::Span, String) {
    let span = tracing::info_span!(
        "fetch",
        otel.kind = "server",
        rpc,
        trace_id = tracing::field::Empty,
        request_id = tracing::field::Empty,
        requester = tracing::field::Empty,
        purpose = tracing::field::Empty,
        record_types = tracing::field::Empty,
    );
    let trace_id = xgate_proto::telemetry::continue_trace(&span, metadata).unwrap_or_default();
    if !trace_id.is_empty() {
        // On the span itself too, so every log line of the fetch shows it.
        span.record("trace_id", trace_id.as_str());
    }
    (span, trace_id)
}

/// Sets the gauges their owners report at scrape time (e.g. the audit
/// queue's depth); the metrics endpoint knows no gateway state.
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

/// The body of `GET /health`: the replica's own detail (instance, policy
/// set, chain head), which `grpc.health.v1` has no field for.
pub type HealthDetail = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the metrics listener answers from.
#[derive(Clone)]
pub struct Endpoints {
    pub refresh: Refresh,
    pub health: HealthDetail,
}

/// Serves `GET /metrics` (Prometheus/OpenMetrics text, calling `refresh`
/// before each scrape) and `GET /health` (JSON) on `listen` over plain
/// HTTP/1.1 until the task is aborted. Returns the bound address.
pub async fn serve_metrics(
    listen: SocketAddr,
    endpoints: Endpoints,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the metrics endpoint {listen}"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let endpoints = endpoints.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&request, &endpoints)) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    tracing::info!(%addr, "metrics serving");
    Ok((addr, task))
}

fn answer<B>(request: &http::Request<B>, endpoints: &Endpoints) -> http::Response<String> {
    let response = |status: http::StatusCode, content_type: &str, body: String| {
        let mut r = http::Response::new(body);
        *r.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        r
    };
    let path = request.uri().path();
    if path != "/metrics" && path != "/health" {
        return response(
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; metrics are at /metrics, health detail at /health\n".into(),
        );
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return response(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".into(),
        );
    }
    if path == "/health" {
        return response(
            http::StatusCode::OK,
            "application/json",
            format!("{}\n", (endpoints.health)()),
        );
    }
    (endpoints.refresh)();
    response(
        http::StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        metrics().encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trace ids of a `fetch`, an `adapter.call` inside it and a `policy`
    /// span, under the OpenTelemetry layer filtered as `init_tracing` does.
    fn trace_ids(exporting: bool) -> [Option<String>; 3] {
        let provider = xgate_proto::telemetry::provider("test", None).expect("provider");
        let spans = xgate_proto::telemetry::layer(&provider, "test").with_filter(
            tracing_subscriber::filter::filter_fn(move |meta| otel_wants(meta, exporting)),
        );
        let subscriber = tracing_subscriber::registry().with(spans);
        tracing::subscriber::with_default(subscriber, || {
            let fetch = tracing::info_span!("fetch");
            let (call, policy) = fetch.in_scope(|| {
                (
                    tracing::info_span!("adapter.call"),
                    tracing::info_span!("policy"),
                )
            });
            [&fetch, &call, &policy].map(xgate_proto::telemetry::trace_id)
        })
    }

    #[test]
    fn without_export_only_the_propagating_spans_get_trace_context() {
        let [fetch, call, policy] = trace_ids(false);
        assert!(fetch.is_some());
        assert_eq!(call, fetch, "the adapter call continues the fetch's trace");
        assert_eq!(policy, None);
    }

    #[test]
    fn when_exporting_every_span_gets_trace_context() {
        let [fetch, call, policy] = trace_ids(true);
        assert!(fetch.is_some());
        assert_eq!(call, fetch);
        assert_eq!(policy, fetch);
    }
}
