//! Tracing export (OpenTelemetry, OTLP; off by default), W3C trace context
//! propagation into adapter calls, and the Prometheus metrics endpoint.

use tonic::metadata::MetadataMap;

/// Writes the current span's W3C trace context (`traceparent`,
/// `tracestate`) into an outgoing adapter request, so the adapter's spans
/// continue the fetch's trace.
pub fn inject_trace_context(_metadata: &mut MetadataMap) {
    // Filled in by the telemetry work (issue 5): the current tracing span's
    // OpenTelemetry context through the W3C propagator.
}
