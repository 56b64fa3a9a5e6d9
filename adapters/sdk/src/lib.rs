//! The adapter SDK: a department implements [`Department`] (one lookup
//! function); the SDK does the rest.
//!
//! [`serve`] runs the `xgate.v1.DepartmentAdapter` gRPC service over mTLS
//! (only the gateway's certificate is let in), with `grpc.health.v1` and
//! server reflection, validates every subject ID before the department sees
//! it, answers every requested type even when some lookups fail, honours the
//! gateway's deadline, and — given `--gateway` — registers the adapter with
//! the gateway's Registry and keeps it alive with heartbeats.
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
mod registration;
mod server;

pub use department::{Department, LookupError, Subject};
pub use registration::HEARTBEAT_INTERVAL;
pub use server::{AdapterArgs, AdapterService, serve, serve_with_shutdown};

/// Logs to stderr (stdout is kept for the `listening on ADDR` line that
/// launchers read), filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
