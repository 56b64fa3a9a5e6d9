//! The adapter SDK: a department implements [`Department`] (one lookup
//! function); the SDK does the rest.
//!
//! [`serve`] runs the `xgate.v1.DepartmentAdapter` gRPC service over mTLS
//! (only the gateway's certificate is let in), with `grpc.health.v1` and
//! server reflection, validates every subject ID before the department sees
//! it, answers every requested type even when some lookups fail, honours the
//! gateway's deadline, and — given `--gateway` — registers the adapter with
//! the gateway's Registry and keeps it alive with heartbeats. Each lookup
//! runs in a `lookup` span continuing the gateway's W3C trace ([`trace`]).
//!
//! `BatchLookup` (screening: up to [`MAX_BATCH_SUBJECTS`] subjects at once)
//! is served too: the SDK validates the batch (a malformed ID is answered
//! ERROR, the rest go on), calls [`Department::lookup_batch`] per type over
//! chunks of subjects, turns the results into answers with the very code
//! `Lookup` uses, and streams one answer per subject as each chunk is done.
//! `lookup_batch` defaults to one `lookup` per subject,
//! [`FALLBACK_CONCURRENCY`] at a time ([`lookup_each`]); a department whose
//! store can answer a set of subjects in one query overrides it
//! ([`in_list`] has the parts for a SQL `IN (...)` list).
//!
//! ```no_run
//! # use xgate_adapter_sdk::{AdapterArgs, Department, LookupError, Subject};
//! struct Tax;
//! impl Department for Tax {
//!     fn department(&self) -> &str { "tax" }
//!     fn record_types(&self) -> Vec<String> { vec!["tax_registration".into()] }
//!     async fn lookup(&self, subject: &Subject, record_type: &str)
//!         -> Result<Vec<serde_json::Value>, LookupError> { Ok(vec![]) }
//! }
//! # async fn run(args: AdapterArgs) -> anyhow::Result<()> {
//! xgate_adapter_sdk::serve(Tax, args).await
//! # }
//! ```

mod department;
pub mod in_list;
pub mod objections;
mod registration;
mod server;
pub mod trace;

pub use department::{
    Department, FALLBACK_CONCURRENCY, LookupError, MAX_BATCH_SUBJECTS, Subject, lookup_each,
};
pub use registration::HEARTBEAT_INTERVAL;
pub use server::{AdapterArgs, AdapterService, serve, serve_with_shutdown};

/// Logs to stderr (stdout is kept for the `listening on ADDR` line that
/// launchers read), filtered by `RUST_LOG` (default `info`), with
/// OpenTelemetry spans so each lookup continues the gateway's trace (see
/// [`trace`]). Spans are exported over OTLP/gRPC only when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set; `service.name` is
/// `OTEL_SERVICE_NAME`, else the executable's name (`xgate-adapter-<dept>`).
/// Call it inside the Tokio runtime.
pub fn init_tracing() {
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .filter(|n| n.starts_with("xgate-adapter"))
        })
        .unwrap_or_else(|| "xgate-adapter".to_owned());
    init_tracing_as(&name);
}

/// [`init_tracing`] with `service.name` `xgate-adapter-<department>`.
pub fn init_tracing_for(department: &str) {
    init_tracing_as(&format!("xgate-adapter-{department}"));
}

fn init_tracing_as(service_name: &str) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let endpoint = xgate_proto::telemetry::endpoint_from_env();
    let provider = match xgate_proto::telemetry::provider(service_name, endpoint.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            // Tracing export is optional; the adapter must still serve.
            let _ = writeln_stderr(&format!("OTLP export disabled: {e}"));
            match xgate_proto::telemetry::provider(service_name, None) {
                Ok(p) => p,
                Err(_) => return,
            }
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let spans = xgate_proto::telemetry::layer(&provider, "xgate-adapter-sdk")
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // A second call (tests) keeps the first subscriber.
    if tracing_subscriber::registry()
        .with(spans)
        .with(logs)
        .try_init()
        .is_ok()
    {
        trace::keep_provider(provider);
    }
}

fn writeln_stderr(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    writeln!(std::io::stderr(), "{line}")
}
