//! Trace context of the lookup being served: every `Lookup` continues the
//! gateway's trace from the request's `traceparent`, and its handler span
//! (`lookup`, carrying `trace_id` on every log line) is the parent of
//! whatever the department's code does. An adapter reads the ids here,
//! e.g. to pass them to its own database calls or logs.

use std::sync::OnceLock;

use xgate_proto::telemetry::TracerProvider;

tokio::task_local! {
    static INCOMING: Option<String>;
}

/// The provider [`crate::init_tracing`] installed, kept for
/// [`shutdown`].
static PROVIDER: OnceLock<TracerProvider> = OnceLock::new();

pub(crate) fn keep_provider(provider: TracerProvider) {
    let _ = PROVIDER.set(provider);
}

/// Flushes spans not yet exported; call before the process exits.
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        let _ = p.shutdown();
    }
}

/// The W3C trace id (32 hex digits) of the current span — inside a lookup,
/// the gateway's fetch trace. `None` without [`crate::init_tracing`] or
/// outside any span.
pub fn current_trace_id() -> Option<String> {
    xgate_proto::telemetry::trace_id(&tracing::Span::current())
}

/// The current span's own id (16 hex digits).
pub fn current_span_id() -> Option<String> {
    xgate_proto::telemetry::span_id(&tracing::Span::current())
}

/// The `traceparent` the gateway sent with the lookup being served, if
/// any (its parent id is the gateway's span).
pub fn incoming_traceparent() -> Option<String> {
    INCOMING.try_with(Clone::clone).ok().flatten()
}

/// Runs `f` (one lookup) with `traceparent` readable through
/// [`incoming_traceparent`].
pub(crate) async fn with_incoming<F: Future>(traceparent: Option<String>, f: F) -> F::Output {
    INCOMING.scope(traceparent, f).await
}
