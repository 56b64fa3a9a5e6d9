//! Gateway configuration: one TOML file, unknown keys rejected, validated at
//! load, immutable afterwards.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration of one gateway process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on; port 0 lets the OS choose.
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    /// Directory of catalog JSON files; the built-in catalog when absent.
    #[serde(default)]
    pub catalog_dir: Option<PathBuf>,
    /// Directory of the policy set: `*.cedar` files and the purposes,
    /// approval items and requesters data files.
    pub policies_dir: PathBuf,
    /// Reload the policy set when a file in `policies_dir` changes (it is
    /// also reloaded on SIGHUP and by the `PolicyAdmin.ReloadPolicies` RPC).
    #[serde(default = "default_true")]
    pub watch_policies: bool,
    /// The gateway's own SQLite database (registrations).
    pub database: PathBuf,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// `[cache]`: the record cache (see [`crate::cache`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Serve records again for their catalog freshness.
    pub enabled: bool,
    /// Most bytes of cached record JSON (plus keys) held.
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// `[upstream]`: fault isolation of adapter calls (see [`crate::upstream`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Most calls in flight to one adapter (bulkhead); more fail at once.
    pub max_concurrent_calls: usize,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before one probe, in ms.
    pub breaker_cooldown_ms: u64,
    /// Send a second request to another endpoint when the first is slow.
    pub hedge: bool,
    /// Hedge delay until `hedge_min_samples` latencies are known, in ms.
    pub hedge_default_ms: u64,
    /// Shortest hedge delay, in ms, whatever the observed p95.
    pub hedge_floor_ms: u64,
    /// Latencies needed before the hedge delay follows the adapter's p95.
    pub hedge_min_samples: usize,
    /// Recent latencies kept per adapter for the p95.
    pub latency_window: usize,
    /// Retries (and hedges) earned per call: 0.1 allows 10% extra attempts.
    pub retry_ratio: f64,
    /// Retries (and hedges) allowed per second per adapter whatever the ratio.
    pub retry_min_per_sec: f64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 64,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
            hedge: true,
            hedge_default_ms: 100,
            hedge_floor_ms: 2,
            hedge_min_samples: 20,
            latency_window: 256,
            retry_ratio: 0.1,
            retry_min_per_sec: 10.0,
        }
    }
}

/// `[telemetry]`: tracing export and the Prometheus endpoint, both off by
/// default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector (`http://host:4317`) spans are exported to; when
    /// absent, the `OTEL_EXPORTER_OTLP_ENDPOINT` environment variable; when
    /// neither is set nothing is exported (trace ids still propagate).
    pub otlp_endpoint: Option<String>,
    /// Address of the plain-HTTP `GET /metrics` endpoint (Prometheus text);
    /// port 0 lets the OS choose (logged as `metrics serving`). Off when
    /// absent.
    pub metrics_listen: Option<SocketAddr>,
}

impl TelemetryConfig {
    /// The OTLP endpoint: the configured one, else the standard variable's.
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .filter(|e| !e.trim().is_empty())
            .or_else(xgate_proto::telemetry::endpoint_from_env)
    }
}

/// `[audit]`: the tamper-evident access log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `sqlite:PATH` or `postgres://...`; `sqlite:<database dir>/audit.db`
    /// when absent.
    pub database: Option<String>,
    /// Directory of the signing and subject keys (created 0600 on first
    /// start); `<database dir>/audit-keys` when absent.
    pub key_dir: Option<PathBuf>,
    /// Seconds between signed checkpoints.
    pub checkpoint_interval_secs: u64,
    /// A checkpoint at least every this many entries (answers).
    pub checkpoint_every: u64,
    /// Most entries committed in one transaction.
    pub max_batch: usize,
    /// SQLite `synchronous`: `"full"` (default; every commit is fsynced
    /// before the fetch is answered) or `"normal"` (WAL: durable across a
    /// process crash, not a power loss; shorter commits).
    pub sqlite_synchronous: xgate_audit::SqliteSync,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            database: None,
            key_dir: None,
            checkpoint_interval_secs: 1,
            checkpoint_every: 10_000,
            max_batch: 5_000,
            sqlite_synchronous: xgate_audit::SqliteSync::Full,
        }
    }
}

impl Config {
    /// The audit store URL, defaulting next to the gateway database.
    pub fn audit_database(&self) -> String {
        self.audit.database.clone().unwrap_or_else(|| {
            let dir = self.database.parent().unwrap_or(Path::new("."));
            format!("sqlite:{}", dir.join("audit.db").display())
        })
    }

    /// The audit key directory, defaulting next to the gateway database.
    pub fn audit_key_dir(&self) -> PathBuf {
        self.audit.key_dir.clone().unwrap_or_else(|| {
            self.database
                .parent()
                .unwrap_or(Path::new("."))
                .join("audit-keys")
        })
    }
}

fn default_true() -> bool {
    true
}

/// PEM paths of the gateway's certificate, key and the CA(s) it trusts for
/// callers and adapters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsConfig {
    pub fn files(&self) -> xgate_tls::TlsFiles {
        xgate_tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            ca: self.ca.clone(),
        }
    }
}

/// Bounds on requests and on the time spent on them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted Fetch request, in bytes (INVALID_ARGUMENT above).
    pub max_request_bytes: usize,
    /// Most record types one Fetch may name.
    pub max_record_types: usize,
    /// Deadline of a fetch whose caller sent no grpc-timeout, in ms.
    pub default_fetch_timeout_ms: u64,
    /// Upper bound on any fetch's deadline, in ms.
    pub max_fetch_timeout_ms: u64,
    /// Upper bound on one adapter call, in ms, whatever the fetch's deadline.
    pub adapter_timeout_cap_ms: u64,
    /// Most Fetch/FetchStream calls in progress at once, gateway-wide; more
    /// are refused at once with RESOURCE_EXHAUSTED (a stream holds its slot
    /// until it ends). Fetches mostly wait on adapters, so this bounds
    /// memory and queueing rather than CPU.
    pub max_in_flight: usize,
    /// Fetches per second each requester may start (token bucket refill);
    /// 0 means no per-requester limit.
    pub requester_rate: f64,
    /// Fetches a requester may start at once above its rate (bucket size);
    /// defaults to one second's worth of `requester_rate`.
    pub requester_burst: Option<u32>,
    /// Per-requester overrides of rate and burst, keyed by requester id.
    pub requester_limits: HashMap<String, RateLimit>,
    /// Most concurrent HTTP/2 streams (calls) one client connection may open.
    pub http2_max_concurrent_streams: u32,
    /// Largest HTTP/2 header list (gRPC metadata) accepted, in bytes.
    pub http2_max_header_list_bytes: u32,
}

/// A token bucket: `rate` fetches per second, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 64 * 1024,
            max_record_types: 128,
            default_fetch_timeout_ms: 5_000,
            max_fetch_timeout_ms: 30_000,
            adapter_timeout_cap_ms: 5_000,
            // 2,000 in-flight fetches stay within the 300 MiB memory target
            // on a 2-core box; beyond that more waiting only adds latency.
            max_in_flight: 2_048,
            requester_rate: 0.0,
            requester_burst: None,
            requester_limits: HashMap::new(),
            http2_max_concurrent_streams: 1_024,
            http2_max_header_list_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    pub fn default_fetch_timeout(&self) -> Duration {
        Duration::from_millis(self.default_fetch_timeout_ms)
    }
    pub fn max_fetch_timeout(&self) -> Duration {
        Duration::from_millis(self.max_fetch_timeout_ms)
    }
    pub fn adapter_timeout_cap(&self) -> Duration {
        Duration::from_millis(self.adapter_timeout_cap_ms)
    }

    /// The default per-requester bucket; `None` when unlimited.
    pub fn default_rate_limit(&self) -> Option<RateLimit> {
        (self.requester_rate > 0.0).then(|| RateLimit {
            rate: self.requester_rate,
            burst: self.requester_burst.unwrap_or_else(|| {
                self.requester_rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
            }),
        })
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}`: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("`{path}`: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and validates a configuration file. Relative paths inside it are
    /// taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_relative_to(base);
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn resolve_relative_to(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.ca);
        fix(&mut self.policies_dir);
        fix(&mut self.database);
        if let Some(dir) = &mut self.catalog_dir {
            fix(dir);
        }
        if let Some(dir) = &mut self.audit.key_dir {
            fix(dir);
        }
        // A relative SQLite audit path is relative to the file, like the rest.
        if let Some(url) = &mut self.audit.database
            && let Some(path) = url.strip_prefix("sqlite:")
            && !path.starts_with('/')
            && !path.starts_with("//")
            && !path.starts_with(":memory:")
        {
            *url = format!("sqlite:{}", base.join(path).display());
        }
    }

    /// Checks the values serde cannot: non-zero limits, ordered timeouts.
    pub fn validate(&self) -> Result<(), String> {
        let l = &self.limits;
        if l.max_request_bytes == 0 || l.max_record_types == 0 {
            return Err(
                "limits.max_request_bytes and limits.max_record_types must be positive".into(),
            );
        }
        if l.default_fetch_timeout_ms == 0 || l.adapter_timeout_cap_ms == 0 {
            return Err("limits: timeouts must be positive".into());
        }
        if l.max_in_flight == 0
            || l.http2_max_concurrent_streams == 0
            || l.http2_max_header_list_bytes == 0
        {
            return Err("limits.max_in_flight and limits.http2_* must be positive".into());
        }
        let bad_rate = |r: f64| !r.is_finite() || r < 0.0;
        if bad_rate(l.requester_rate) || l.requester_burst == Some(0) {
            return Err(
                "limits.requester_rate must be >= 0 and limits.requester_burst positive".into(),
            );
        }
        for (requester, limit) in &l.requester_limits {
            if bad_rate(limit.rate) || limit.rate == 0.0 || limit.burst == 0 {
                return Err(format!(
                    "limits.requester_limits.{requester}: rate and burst must be positive"
                ));
            }
        }
        if self.audit.checkpoint_interval_secs == 0
            || self.audit.max_batch == 0
            || self.audit.checkpoint_every == 0
        {
            return Err(
                "audit.checkpoint_interval_secs, audit.checkpoint_every and audit.max_batch must be positive".into(),
            );
        }
        if let Some(url) = &self.audit.database
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            return Err("audit.database must start with `sqlite:` or `postgres://`".into());
        }
        let u = &self.upstream;
        if u.max_concurrent_calls == 0
            || u.breaker_failures == 0
            || u.breaker_cooldown_ms == 0
            || u.latency_window == 0
        {
            return Err("upstream.max_concurrent_calls, breaker_failures, breaker_cooldown_ms and latency_window must be positive".into());
        }
        if !(0.0..=1.0).contains(&u.retry_ratio)
            || !u.retry_min_per_sec.is_finite()
            || u.retry_min_per_sec < 0.0
        {
            return Err(
                "upstream.retry_ratio must be within 0..=1 and retry_min_per_sec at least 0".into(),
            );
        }
        if l.default_fetch_timeout_ms > l.max_fetch_timeout_ms {
            return Err(format!(
                "limits.default_fetch_timeout_ms ({}) exceeds limits.max_fetch_timeout_ms ({})",
                l.default_fetch_timeout_ms, l.max_fetch_timeout_ms
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, text).expect("write");
        path
    }

    const MINIMAL: &str = r#"
listen = "127.0.0.1:0"
policies_dir = "policies"
database = "gateway.db"
[tls]
cert = "pki/gateway.pem"
key = "pki/gateway-key.pem"
ca = "/etc/xgate/ca.pem"
"#;

    #[test]
    fn loads_and_resolves_relative_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), MINIMAL)).expect("load");
        assert_eq!(config.policies_dir, dir.path().join("policies"));
        assert_eq!(config.tls.cert, dir.path().join("pki/gateway.pem"));
        assert_eq!(config.tls.ca, PathBuf::from("/etc/xgate/ca.pem"));
        assert_eq!(config.limits.max_request_bytes, 64 * 1024);
        assert_eq!(
            config.audit_database(),
            format!("sqlite:{}", dir.path().join("audit.db").display())
        );
        assert_eq!(config.audit_key_dir(), dir.path().join("audit-keys"));
    }

    #[test]
    fn audit_section_resolves_paths_and_rejects_bad_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text =
            format!("{MINIMAL}\n[audit]\ndatabase = \"sqlite:a/audit.db\"\nkey_dir = \"keys\"\n");
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(
            config.audit_database(),
            format!("sqlite:{}", dir.path().join("a/audit.db").display())
        );
        assert_eq!(config.audit_key_dir(), dir.path().join("keys"));
        let text = format!("{MINIMAL}\n[audit]\ndatabase = \"mysql://x\"\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("bad url");
        assert!(err.to_string().contains("audit.database"), "{err}");
    }

    #[test]
    fn audit_sqlite_synchronous_defaults_to_full_and_accepts_normal_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), MINIMAL)).expect("load");
        assert_eq!(
            config.audit.sqlite_synchronous,
            xgate_audit::SqliteSync::Full
        );
        let text = format!("{MINIMAL}\n[audit]\nsqlite_synchronous = \"normal\"\n");
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(
            config.audit.sqlite_synchronous,
            xgate_audit::SqliteSync::Normal
        );
        let text = format!("{MINIMAL}\n[audit]\nsqlite_synchronous = \"off\"\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("off is refused");
        assert!(
            err.to_string().contains("sqlite_synchronous") || err.to_string().contains("off"),
            "{err}"
        );
    }

    #[test]
    fn rejects_unknown_keys_naming_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("{MINIMAL}\nfrobnicate = true\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("unknown key");
        let message = err.to_string();
        assert!(message.contains("frobnicate"), "{message}");
        assert!(message.contains("gateway.toml"), "{message}");
    }

    #[test]
    fn cache_and_upstream_sections_have_defaults_and_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), MINIMAL)).expect("load");
        assert!(config.cache.enabled);
        assert_eq!(config.cache.max_bytes, 64 * 1024 * 1024);
        assert_eq!(config.upstream.max_concurrent_calls, 64);
        let text = format!(
            "{MINIMAL}\n[cache]\nenabled = false\n[upstream]\nbreaker_failures = 2\nretry_ratio = 0.5\n"
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert!(!config.cache.enabled);
        assert_eq!(config.upstream.breaker_failures, 2);
        assert_eq!(config.upstream.retry_ratio, 0.5);
        let text = format!("{MINIMAL}\n[upstream]\nretry_ratio = 2.0\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("bad ratio");
        assert!(err.to_string().contains("retry_ratio"), "{err}");
        let text = format!("{MINIMAL}\n[upstream]\nmax_concurrent_calls = 0\n");
        assert!(Config::load(&write(dir.path(), &text)).is_err());
        let text = format!("{MINIMAL}\n[cache]\nttl = 5\n");
        let err = Config::load(&write(dir.path(), &text)).expect_err("unknown key");
        assert!(err.to_string().contains("ttl"), "{err}");
    }

    #[test]
    fn overload_and_telemetry_keys_load_and_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::load(&write(dir.path(), MINIMAL)).expect("load");
        assert_eq!(config.limits.max_in_flight, 2_048);
        assert_eq!(config.limits.default_rate_limit(), None);
        assert_eq!(config.telemetry.metrics_listen, None);
        let text = MINIMAL.replace(
            "[tls]",
            "[limits]\nmax_in_flight = 8\nrequester_rate = 2.5\n\
             [limits.requester_limits.bulk-importer]\nrate = 100.0\nburst = 20\n\
             [telemetry]\nmetrics_listen = \"127.0.0.1:0\"\notlp_endpoint = \"http://127.0.0.1:4317\"\n[tls]",
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(config.limits.max_in_flight, 8);
        assert_eq!(
            config.limits.default_rate_limit(),
            Some(RateLimit {
                rate: 2.5,
                burst: 3
            })
        );
        assert_eq!(
            config.limits.requester_limits["bulk-importer"],
            RateLimit {
                rate: 100.0,
                burst: 20
            }
        );
        assert_eq!(
            config.telemetry.otlp_endpoint().as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert!(config.telemetry.metrics_listen.is_some());
        for bad in [
            "max_in_flight = 0",
            "requester_rate = -1.0",
            "requester_burst = 0",
            "[limits.requester_limits.x]\nrate = 0.0\nburst = 1",
        ] {
            let text = MINIMAL.replace("[tls]", &format!("[limits]\n{bad}\n[tls]"));
            let err = Config::load(&write(dir.path(), &text)).expect_err(bad);
            assert!(err.to_string().contains("limits"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_inconsistent_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace(
            "[tls]",
            "[limits]\ndefault_fetch_timeout_ms = 9000\nmax_fetch_timeout_ms = 1000\n[tls]",
        );
        let err = Config::load(&write(dir.path(), &text)).expect_err("bad limits");
        assert!(err.to_string().contains("exceeds"), "{err}");
    }
}
