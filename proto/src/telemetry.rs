//! OpenTelemetry tracing shared by the gateway and the adapter SDK: the
//! tracer provider, the `tracing` layer that gives every span an
//! OpenTelemetry span context, and W3C trace context (`traceparent`,
//! `tracestate`) carried in gRPC metadata.
//!
//! A provider is always installed, so trace ids exist and propagate even
//! when nothing is exported. OTLP export (gRPC) is on only when an endpoint
//! is given; without one the root sampler drops (no span data is kept) but
//! a caller's sampled flag is honoured, so the decision travels downstream.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use opentelemetry_sdk::trace::SdkTracerProvider as TracerProvider;

/// The standard variable naming an OTLP collector (`http://host:4317`).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The tracer provider of a process named `service_name`, exporting over
/// OTLP/gRPC to `otlp_endpoint` when one is given. With an endpoint it
/// must be called inside a Tokio runtime (the exporter's channel lives
/// there).
pub fn provider(
    service_name: &str,
    otlp_endpoint: Option<&str>,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            builder
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
                .with_batch_exporter(exporter)
        }
        None => builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff))),
    };
    Ok(builder.build())
}

/// The `tracing` layer that backs spans with `provider`'s tracer.
pub fn layer<S>(
    provider: &SdkTracerProvider,
    scope: &'static str,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(scope))
        // Source locations and thread names on every span cost more than
        // they tell here.
        .with_location(false)
        .with_threads(false)
}

/// The OTLP endpoint of the standard environment variable, if set and not
/// empty.
pub fn endpoint_from_env() -> Option<String> {
    std::env::var(OTLP_ENDPOINT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct MetadataExtractor<'a>(&'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                KeyRef::Ascii(k) => Some(k.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Writes `span`'s trace context into outgoing request metadata; nothing
/// when the span has no valid context (no tracing layer installed).
pub fn inject(span: &tracing::Span, metadata: &mut MetadataMap) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut MetadataInjector(metadata));
    }
}

/// The caller's trace context from incoming request metadata (an empty
/// context when it sent none or an invalid one).
pub fn extract(metadata: &MetadataMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MetadataExtractor(metadata))
}

/// Makes a freshly created `span` continue the caller's trace, when the
/// request carries a valid `traceparent`. Must run before the span is first
/// entered. Returns the span's trace id (hex), if it has one.
pub fn continue_trace(span: &tracing::Span, metadata: &MetadataMap) -> Option<String> {
    let parent = extract(metadata);
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled or has no OpenTelemetry
        // layer: it then simply has no trace.
        let _ = span.set_parent(parent);
    }
    trace_id(span)
}

/// `span`'s W3C trace id (32 hex digits), if it has a valid context.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// `span`'s own span id (16 hex digits), if it has a valid context.
pub fn span_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.span_id().to_string())
}

/// The trace id and parent span id of a `traceparent` value
/// (`00-<trace id>-<parent id>-<flags>`), when well formed.
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2)
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0'))
    .then_some((trace, parent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn incoming() -> MetadataMap {
        let mut md = MetadataMap::new();
        md.insert(
            "traceparent",
            format!("00-{TRACE}-{PARENT}-01").parse().expect("ascii"),
        );
        md
    }

    #[test]
    fn a_span_continues_the_callers_trace_and_propagates_its_own_id() {
        let provider = provider("test", None).expect("provider");
        let subscriber = tracing_subscriber::registry().with(layer(&provider, "test"));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("fetch");
            assert_eq!(continue_trace(&span, &incoming()).as_deref(), Some(TRACE));
            let mut outgoing = MetadataMap::new();
            let child = span.in_scope(|| tracing::info_span!("adapter.call"));
            inject(&child, &mut outgoing);
            let sent = outgoing
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .expect("traceparent sent");
            let (trace, parent) = parse_traceparent(sent).expect("well formed");
            assert_eq!(trace, TRACE);
            // The parent the adapter sees is our span, not the caller's.
            assert_ne!(parent, PARENT);
            assert_eq!(Some(parent.to_owned()), span_id(&child));
            // And the receiving side recovers the same context.
            let back = extract(&outgoing);
            assert_eq!(back.span().span_context().trace_id().to_string(), TRACE);
        });
    }

    #[test]
    fn without_a_caller_context_a_new_trace_starts() {
        let provider = provider("test", None).expect("provider");
        let subscriber = tracing_subscriber::registry().with(layer(&provider, "test"));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("fetch");
            let mut bad = MetadataMap::new();
            bad.insert("traceparent", "garbage".parse().expect("ascii"));
            let id = continue_trace(&span, &bad).expect("a trace id");
            assert_eq!(id.len(), 32);
            assert_ne!(id, TRACE);
        });
    }

    #[test]
    fn nothing_is_injected_without_a_tracing_layer() {
        let span = tracing::Span::none();
        let mut md = MetadataMap::new();
        inject(&span, &mut md);
        assert!(md.is_empty());
        assert_eq!(trace_id(&span), None);
    }

    #[test]
    fn traceparent_parsing_rejects_malformed_values() {
        assert_eq!(
            parse_traceparent(&format!("00-{TRACE}-{PARENT}-01")),
            Some((TRACE, PARENT))
        );
        assert_eq!(parse_traceparent("00-abc-def-01"), None);
        assert_eq!(
            parse_traceparent(&format!("00-{}-{PARENT}-01", "0".repeat(32))),
            None
        );
        assert_eq!(parse_traceparent("garbage"), None);
    }

    #[tokio::test]
    async fn an_otlp_endpoint_builds_an_exporting_provider() {
        // Nothing listens there: building must not connect or fail.
        let provider = provider("test", Some("http://127.0.0.1:9")).expect("provider");
        let _ = provider.shutdown();
    }
}
