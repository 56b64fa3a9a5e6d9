//! Gateway configuration: one TOML file, unknown keys rejected, immutable
//! after load.
//!
//! Parsed, not validated: a value that can be wrong on its own is a type that
//! cannot hold the wrong value ([`NonZeroU32`], [`NonZeroUsize`], durations
//! with units in [`duration`]), so serde refuses it with the TOML line and
//! column of the value. What is left, ranges of rates and relations between
//! keys, [`Config::check`] lists all at once as `key = value: why`, each at
//! the line of its key when the file has it.
//!
//! Durations are strings with a unit (`default_fetch_timeout = "5s"`); the
//! old millisecond keys (`default_fetch_timeout_ms = 5000`) are refused with
//! a hint naming the new key (see [`RENAMED`]).

pub mod duration;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use duration::{ConfigDuration, NonZeroDuration};

/// Keys of earlier releases and what replaced them: the parse error of a file
/// that still uses one says what to write instead.
pub const RENAMED: &[(&str, &str)] = &[
    ("default_fetch_timeout_ms", "default_fetch_timeout = \"5s\""),
    ("max_fetch_timeout_ms", "max_fetch_timeout = \"30s\""),
    ("adapter_timeout_cap_ms", "adapter_timeout_cap = \"5s\""),
    ("breaker_cooldown_ms", "breaker_cooldown = \"5s\""),
    ("hedge_default_ms", "hedge_default = \"100ms\""),
    ("hedge_floor_ms", "hedge_floor = \"2ms\""),
];

/// `n` as a [`NonZeroUsize`] for defaults; zero gives one.
const fn nz_usize(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => NonZeroUsize::MIN,
    }
}

/// `n` as a [`NonZeroU32`] for defaults; zero gives one.
const fn nz_u32(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

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
    /// The gateway's own database (registrations): a SQLite file path, or a
    /// `postgres://` URL that several replicas share.
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
    #[serde(default)]
    pub subject_codes: SubjectCodesConfig,
    /// The web console; off when absent.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
}

/// `[console]`: the web console for auditors and department IT, on its own
/// HTTPS listener with the gateway's certificate (see [`crate::console`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address of the console's HTTPS listener; port 0 lets the OS choose
    /// (logged as `console serving`).
    pub listen: SocketAddr,
    /// The console's address as browsers reach it, put in sign-in URLs
    /// (`https://console.example.gov`, a balancer in front of the
    /// replicas); `https://<listen address>` when absent.
    #[serde(default)]
    pub public_url: Option<String>,
    /// How long a sign-in URL works (once).
    #[serde(default = "ConsoleConfig::default_sign_in_ttl")]
    pub sign_in_ttl: NonZeroDuration,
    /// How long a browser session lasts from sign-in.
    #[serde(default = "ConsoleConfig::default_session_ttl")]
    pub session_ttl: NonZeroDuration,
}

impl ConsoleConfig {
    fn default_sign_in_ttl() -> NonZeroDuration {
        NonZeroDuration::from_millis(60_000)
    }
    fn default_session_ttl() -> NonZeroDuration {
        NonZeroDuration::from_millis(15 * 60_000)
    }
    /// Listening on `listen` with every other setting at its default.
    pub fn on(listen: SocketAddr) -> ConsoleConfig {
        ConsoleConfig {
            listen,
            public_url: None,
            sign_in_ttl: Self::default_sign_in_ttl(),
            session_ttl: Self::default_session_ttl(),
        }
    }
}

/// `[subject_codes]`: who may issue the subject codes (scannable resident
/// codes) a fetch may carry instead of a raw subject. None by default: a
/// fetch with a code is then refused as from an unknown issuer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubjectCodesConfig {
    /// Issuer name (the code's `iss` and `kid`) -> its Ed25519 public key,
    /// 64 hex digits.
    pub issuers: std::collections::BTreeMap<String, String>,
}

impl SubjectCodesConfig {
    /// The verifier of these issuers' codes (keys are checked at load).
    pub fn verifier(&self) -> Result<xgate_code::Verifier, xgate_code::CodeError> {
        let mut verifier = xgate_code::Verifier::new();
        for (issuer, key) in &self.issuers {
            verifier.trust(issuer, key)?;
        }
        Ok(verifier)
    }
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
    pub max_concurrent_calls: NonZeroUsize,
    /// Consecutive failures that open an endpoint's circuit breaker.
    pub breaker_failures: NonZeroU32,
    /// How long an open breaker refuses calls before one probe.
    pub breaker_cooldown: NonZeroDuration,
    /// Send a second request to another endpoint when the first is slow.
    pub hedge: bool,
    /// Hedge delay until `hedge_min_samples` latencies are known.
    pub hedge_default: ConfigDuration,
    /// Shortest hedge delay, whatever the observed p95.
    pub hedge_floor: ConfigDuration,
    /// Latencies needed before the hedge delay follows the adapter's p95.
    pub hedge_min_samples: usize,
    /// Recent latencies kept per adapter for the p95.
    pub latency_window: NonZeroUsize,
    /// Retries (and hedges) earned per call: 0.1 allows 10% extra attempts.
    pub retry_ratio: f64,
    /// Retries (and hedges) allowed per second per adapter whatever the ratio.
    pub retry_min_per_sec: f64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: nz_usize(64),
            breaker_failures: nz_u32(5),
            breaker_cooldown: NonZeroDuration::from_millis(5_000),
            hedge: true,
            hedge_default: ConfigDuration::from_millis(100),
            hedge_floor: ConfigDuration::from_millis(2),
            hedge_min_samples: 20,
            latency_window: nz_usize(256),
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
    // Plain integers checked by `Config::check` (the audit crate takes them as such).
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
    pub max_request_bytes: NonZeroUsize,
    /// Most record types one Fetch may name.
    pub max_record_types: NonZeroUsize,
    /// Deadline of a fetch whose caller sent no grpc-timeout.
    pub default_fetch_timeout: NonZeroDuration,
    /// Upper bound on any fetch's deadline.
    pub max_fetch_timeout: NonZeroDuration,
    /// Upper bound on one adapter call, whatever the fetch's deadline.
    pub adapter_timeout_cap: NonZeroDuration,
    /// Most Fetch/FetchStream calls in progress at once, gateway-wide; more
    /// are refused at once with RESOURCE_EXHAUSTED (a stream holds its slot
    /// until it ends). Fetches mostly wait on adapters, so this bounds
    /// memory and queueing rather than CPU.
    pub max_in_flight: NonZeroUsize,
    /// Fetches per second each requester may start (token bucket refill);
    /// 0 means no per-requester limit.
    pub requester_rate: f64,
    /// Fetches a requester may start at once above its rate (bucket size);
    /// defaults to one second's worth of `requester_rate`.
    pub requester_burst: Option<NonZeroU32>,
    /// Per-requester overrides of rate and burst, keyed by requester id.
    pub requester_limits: HashMap<String, RateLimit>,
    /// Most concurrent HTTP/2 streams (calls) one client connection may open.
    pub http2_max_concurrent_streams: NonZeroU32,
    /// Largest HTTP/2 header list (gRPC metadata) accepted, in bytes.
    pub http2_max_header_list_bytes: NonZeroU32,
}

/// A token bucket: `rate` fetches per second, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: NonZeroU32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: nz_usize(64 * 1024),
            max_record_types: nz_usize(128),
            default_fetch_timeout: NonZeroDuration::from_millis(5_000),
            max_fetch_timeout: NonZeroDuration::from_millis(30_000),
            adapter_timeout_cap: NonZeroDuration::from_millis(5_000),
            // 2,000 in-flight fetches stay within the 300 MiB memory target
            // on a 2-core box; beyond that more waiting only adds latency.
            max_in_flight: nz_usize(2_048),
            requester_rate: 0.0,
            requester_burst: None,
            requester_limits: HashMap::new(),
            http2_max_concurrent_streams: nz_u32(1_024),
            http2_max_header_list_bytes: nz_u32(16 * 1024),
        }
    }
}

impl Limits {
    pub fn default_fetch_timeout(&self) -> Duration {
        self.default_fetch_timeout.get()
    }
    pub fn max_fetch_timeout(&self) -> Duration {
        self.max_fetch_timeout.get()
    }
    pub fn adapter_timeout_cap(&self) -> Duration {
        self.adapter_timeout_cap.get()
    }

    /// The default per-requester bucket; `None` when unlimited.
    pub fn default_rate_limit(&self) -> Option<RateLimit> {
        (self.requester_rate > 0.0).then(|| RateLimit {
            rate: self.requester_rate,
            burst: self.requester_burst.unwrap_or_else(|| {
                nz_u32(self.requester_rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32)
            }),
        })
    }
}

/// One problem in a configuration file: where, and `key = value: why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// 1-based line of the key or value; 0 when the file does not have the
    /// key (a default value that conflicts with another key).
    pub line: u32,
    /// 1-based column in characters; 0 together with `line`.
    pub column: u32,
    /// What is wrong, lowercase, user input in backticks or as TOML.
    pub message: String,
}

/// Every problem of one file, one `file:line:col: message` line each (the
/// policy loader's format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems {
    pub path: PathBuf,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, p) in self.problems.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            let file = self.path.display();
            if p.line == 0 {
                write!(f, "{file}: {}", p.message)?;
            } else {
                write!(f, "{file}:{}:{}: {}", p.line, p.column, p.message)?;
            }
        }
        Ok(())
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
    /// Not TOML, an unknown key, or a value of the wrong type (serde stops at
    /// the first of these).
    #[error("{0}")]
    Parse(ConfigProblems),
    /// Values that parse but do not go together; all of them.
    #[error("{0}")]
    Invalid(ConfigProblems),
}

impl Config {
    /// Reads and parses a configuration file and checks what its types
    /// cannot. Relative paths inside it are taken relative to the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// [`Config::load`] of `text` that was read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            ConfigError::Parse(ConfigProblems {
                path: path.to_owned(),
                problems: vec![parse_problem(text, &e)],
            })
        })?;
        let problems = config.check(text);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(ConfigProblems {
                path: path.to_owned(),
                problems,
            }));
        }
        config.resolve_relative_to(path.parent().unwrap_or(Path::new(".")));
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
        if !crate::store::is_postgres(&self.database) {
            fix(&mut self.database);
        }
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

    /// What the types cannot hold: ranges of rates, keys that must agree.
    /// Every problem, each at the line of its key in `text` when there.
    pub fn check(&self, text: &str) -> Vec<ConfigProblem> {
        let keys = KeyLocator::new(text);
        let mut problems = Vec::new();
        let mut report = |key: &str, value: &dyn fmt::Display, why: &str| {
            let (line, column) = keys.find(key);
            problems.push(ConfigProblem {
                line,
                column,
                message: format!("{key} = {value}: {why}"),
            });
        };
        let l = &self.limits;
        if !(l.requester_rate.is_finite() && l.requester_rate >= 0.0) {
            report(
                "limits.requester_rate",
                &l.requester_rate,
                "must be a number of fetches per second, 0 or more (0: no limit)",
            );
        }
        let mut requesters: Vec<_> = l.requester_limits.iter().collect();
        requesters.sort_by(|a, b| a.0.cmp(b.0));
        for (requester, limit) in requesters {
            if !(limit.rate.is_finite() && limit.rate > 0.0) {
                report(
                    &format!("limits.requester_limits.{requester}.rate"),
                    &limit.rate,
                    "must be more than 0 fetches per second",
                );
            }
        }
        if l.default_fetch_timeout > l.max_fetch_timeout {
            report(
                "limits.default_fetch_timeout",
                &l.default_fetch_timeout,
                &format!("exceeds limits.max_fetch_timeout = {}", l.max_fetch_timeout),
            );
        }
        let a = &self.audit;
        // Their defaults sit beside a database file, which a URL has not.
        if crate::store::is_postgres(&self.database) {
            if a.database.is_none() {
                report(
                    "audit.database",
                    &"(unset)",
                    "must be set when `database` is a PostgreSQL URL",
                );
            }
            if a.key_dir.is_none() {
                report(
                    "audit.key_dir",
                    &"(unset)",
                    "must be set when `database` is a PostgreSQL URL",
                );
            }
        }
        if a.checkpoint_interval_secs == 0 {
            report("audit.checkpoint_interval_secs", &0, "must be positive");
        }
        if a.max_batch == 0 {
            report("audit.max_batch", &0, "must be positive");
        }
        if a.checkpoint_every == 0 {
            report("audit.checkpoint_every", &0, "must be positive");
        }
        if let Some(url) = &a.database
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| url.starts_with(p))
        {
            report(
                "audit.database",
                &format!("{url:?}"),
                "must start with `sqlite:` or `postgres://`",
            );
        }
        for (issuer, key) in &self.subject_codes.issuers {
            if let Err(e) = xgate_code::Verifier::new().trust(issuer, key) {
                report(
                    &format!("subject_codes.issuers.{issuer}"),
                    &format!("{key:?}"),
                    &e.to_string(),
                );
            }
        }
        let u = &self.upstream;
        if !(0.0..=1.0).contains(&u.retry_ratio) {
            report(
                "upstream.retry_ratio",
                &u.retry_ratio,
                "must be within 0 and 1 (0.1: one retry per ten calls)",
            );
        }
        if !(u.retry_min_per_sec.is_finite() && u.retry_min_per_sec >= 0.0) {
            report(
                "upstream.retry_min_per_sec",
                &u.retry_min_per_sec,
                "must be 0 or more",
            );
        }
        if u.hedge_floor > u.hedge_default {
            report(
                "upstream.hedge_floor",
                &u.hedge_floor,
                &format!("exceeds upstream.hedge_default = {}", u.hedge_default),
            );
        }
        problems.sort_by_key(|p| (p.line == 0, p.line, p.column));
        problems
    }
}

/// A serde error at the line and column toml gives it, as `key = value: why`
/// (toml's own message does not name the key), with a hint when the key is
/// one of [`RENAMED`].
fn parse_problem(text: &str, e: &toml::de::Error) -> ConfigProblem {
    let span = e.span();
    let (line, column) = span
        .as_ref()
        .map_or((0, 0), |span| line_column(text, span.start));
    let why = e.message().trim_end();
    let mut message = match span.and_then(|span| KeyLocator::new(text).key_at(span.start)) {
        Some((key, Some(value))) => format!("{key} = {value}: {why}"),
        Some((key, None)) => format!("{key}: {why}"),
        None => why.to_owned(),
    };
    if let Some((old, new)) = RENAMED
        .iter()
        .find(|(old, _)| why.contains(&format!("`{old}`")))
    {
        message = format!("`{old}` was renamed: write `{new}` (durations take a unit)");
    }
    ConfigProblem {
        line,
        column,
        message,
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Where the keys of a TOML text are, for problems found after parsing.
struct KeyLocator<'t> {
    text: &'t str,
    table: Option<toml::de::DeTable<'t>>,
}

impl<'t> KeyLocator<'t> {
    fn new(text: &'t str) -> Self {
        // The text already parsed as a `Config`, so this parse succeeds; if
        // it did not, problems are reported without a line.
        let table = toml::de::DeTable::parse(text).ok().map(|t| t.into_inner());
        Self { text, table }
    }

    /// Line and column of dotted `key` (`limits.requester_rate`), or (0, 0).
    fn find(&self, key: &str) -> (u32, u32) {
        let Some(mut table) = self.table.as_ref() else {
            return (0, 0);
        };
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == part) else {
                return (0, 0);
            };
            if parts.peek().is_none() {
                return line_column(self.text, k.span().start);
            }
            match v.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => return (0, 0),
            }
        }
        (0, 0)
    }

    /// The dotted key whose value (with its source text) or whose name is at
    /// byte `offset`; the innermost one.
    fn key_at(&self, offset: usize) -> Option<(String, Option<String>)> {
        // A `[table]`'s span is its header only, so every table is searched.
        fn walk(
            text: &str,
            table: &toml::de::DeTable<'_>,
            offset: usize,
            path: &mut Vec<String>,
        ) -> Option<(String, Option<String>)> {
            for (k, v) in table.iter() {
                path.push(k.get_ref().to_string());
                if k.span().contains(&offset) {
                    return Some((path.join("."), None));
                }
                let found = match v.get_ref() {
                    toml::de::DeValue::Table(inner) => walk(text, inner, offset, path),
                    _ if v.span().contains(&offset) => {
                        let value = text.get(v.span()).map(|s| s.trim().to_owned());
                        Some((path.join("."), value))
                    }
                    _ => None,
                };
                if found.is_some() {
                    return found;
                }
                path.pop();
            }
            None
        }
        walk(self.text, self.table.as_ref()?, offset, &mut Vec::new())
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
        assert_eq!(config.limits.max_request_bytes.get(), 64 * 1024);
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
    fn a_postgres_registry_is_a_url_and_needs_the_audit_locations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = MINIMAL.replace(
            "database = \"gateway.db\"",
            "database = \"postgres://postgres@127.0.0.1/xgate\"",
        );
        let err = Config::load(&write(dir.path(), &pg)).expect_err("no audit locations");
        let text = err.to_string();
        assert!(text.contains("audit.database = (unset)"), "{text}");
        assert!(text.contains("audit.key_dir = (unset)"), "{text}");
        let text = format!(
            "{pg}\n[audit]\ndatabase = \"postgres://postgres@127.0.0.1/xgate\"\nkey_dir = \"keys\"\n"
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(
            config.database,
            PathBuf::from("postgres://postgres@127.0.0.1/xgate"),
            "a URL is not resolved against the file's directory"
        );
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
        assert_eq!(config.upstream.max_concurrent_calls.get(), 64);
        let text = format!(
            "{MINIMAL}\n[cache]\nenabled = false\n[upstream]\nbreaker_failures = 2\nretry_ratio = 0.5\n"
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert!(!config.cache.enabled);
        assert_eq!(config.upstream.breaker_failures.get(), 2);
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
        assert_eq!(config.limits.max_in_flight.get(), 2_048);
        assert_eq!(config.limits.default_rate_limit(), None);
        assert_eq!(config.telemetry.metrics_listen, None);
        let text = MINIMAL.replace(
            "[tls]",
            "[limits]\nmax_in_flight = 8\nrequester_rate = 2.5\n\
             [limits.requester_limits.bulk-importer]\nrate = 100.0\nburst = 20\n\
             [telemetry]\nmetrics_listen = \"127.0.0.1:0\"\notlp_endpoint = \"http://127.0.0.1:4317\"\n[tls]",
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(config.limits.max_in_flight.get(), 8);
        assert_eq!(
            config.limits.default_rate_limit(),
            Some(RateLimit {
                rate: 2.5,
                burst: NonZeroU32::new(3).expect("non-zero")
            })
        );
        assert_eq!(
            config.limits.requester_limits["bulk-importer"],
            RateLimit {
                rate: 100.0,
                burst: NonZeroU32::new(20).expect("non-zero")
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
            "[limits]\ndefault_fetch_timeout = \"9s\"\nmax_fetch_timeout = \"1s\"\n[tls]",
        );
        let err = Config::load(&write(dir.path(), &text)).expect_err("bad limits");
        assert!(
            err.to_string().contains(
                "limits.default_fetch_timeout = \"9s\": exceeds limits.max_fetch_timeout = \"1s\""
            ),
            "{err}"
        );
    }

    /// The README's example is a file the gateway loads, so it cannot drift.
    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Running a gateway")
            .nth(1)
            .expect("README section");
        let example = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("toml block");
        let config = Config::parse(example, Path::new("/etc/xgate/gateway.toml"))
            .unwrap_or_else(|e| panic!("README example: {e}"));
        assert_eq!(config.limits.max_fetch_timeout(), Duration::from_secs(30));
        assert_eq!(config.upstream.hedge_floor.get(), Duration::from_millis(2));
    }

    #[test]
    fn durations_take_units() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace(
            "[tls]",
            "[limits]\ndefault_fetch_timeout = \"250ms\"\nadapter_timeout_cap = \"1m30s\"\n\
             [upstream]\nbreaker_cooldown = \"2s\"\nhedge_floor = \"0ms\"\n[tls]",
        );
        let config = Config::load(&write(dir.path(), &text)).expect("load");
        assert_eq!(
            config.limits.default_fetch_timeout(),
            Duration::from_millis(250)
        );
        assert_eq!(config.limits.adapter_timeout_cap(), Duration::from_secs(90));
        assert_eq!(config.limits.max_fetch_timeout(), Duration::from_secs(30));
        assert_eq!(
            config.upstream.breaker_cooldown.get(),
            Duration::from_secs(2)
        );
        assert_eq!(config.upstream.hedge_floor.get(), Duration::ZERO);
    }

    /// Where `needle` starts in `text`: 1-based line and column.
    fn position(text: &str, needle: &str) -> (usize, usize) {
        let offset = text.find(needle).expect("needle");
        let line = text[..offset].matches('\n').count() + 1;
        let column = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    #[test]
    fn a_bad_duration_names_its_key_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace("[tls]", "[limits]\nadapter_timeout_cap = \"5x\"\n[tls]");
        let path = write(dir.path(), &text);
        let err = Config::load(&path).expect_err("bad duration");
        let message = err.to_string();
        let (line, column) = position(&text, "\"5x\"");
        assert!(
            message.starts_with(&format!("{}:{line}:{column}: ", path.display())),
            "{message}"
        );
        assert!(message.contains("unknown unit `x`"), "{message}");
        // serde names the key with the value's position.
        assert!(message.contains("adapter_timeout_cap"), "{message}");
        // Zero is not a timeout, and a bare number has no unit.
        for (bad, why) in [("\"0s\"", "more than zero"), ("5000", "no unit")] {
            let text = MINIMAL.replace(
                "[tls]",
                &format!("[limits]\ndefault_fetch_timeout = {bad}\n[tls]"),
            );
            let err = Config::load(&write(dir.path(), &text)).expect_err(bad);
            let message = err.to_string();
            let (line, column) = position(&text, bad);
            assert!(
                message.contains(&format!(":{line}:{column}: ")),
                "{message}"
            );
            assert!(message.contains(why), "{bad}: {message}");
            assert!(message.contains("default_fetch_timeout"), "{message}");
        }
    }

    #[test]
    fn a_zero_count_is_refused_at_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace("[tls]", "[limits]\nmax_record_types = 0\n[tls]");
        let err = Config::load(&write(dir.path(), &text)).expect_err("zero");
        let message = err.to_string();
        let (line, column) = position(&text, "0\n[tls]");
        assert!(
            message.contains(&format!(":{line}:{column}: ")),
            "{message}"
        );
        assert!(message.contains("max_record_types"), "{message}");
    }

    #[test]
    fn old_millisecond_keys_are_refused_naming_the_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace("[tls]", "[upstream]\nbreaker_cooldown_ms = 1000\n[tls]");
        let err = Config::load(&write(dir.path(), &text)).expect_err("old key");
        let message = err.to_string();
        let (line, column) = position(&text, "breaker_cooldown_ms");
        assert!(
            message.contains(&format!(":{line}:{column}: ")),
            "{message}"
        );
        assert!(
            message
                .contains("`breaker_cooldown_ms` was renamed: write `breaker_cooldown = \"5s\"`"),
            "{message}"
        );
    }

    #[test]
    fn a_config_with_three_problems_reports_all_three_with_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace(
            "[tls]",
            "[limits]\nrequester_rate = -1.0\ndefault_fetch_timeout = \"40s\"\n\
             [upstream]\nretry_ratio = 2.0\n[tls]",
        );
        let path = write(dir.path(), &text);
        let err = Config::load(&path).expect_err("three problems");
        let ConfigError::Invalid(problems) = &err else {
            panic!("not a check error: {err}");
        };
        assert_eq!(problems.problems.len(), 3, "{err}");
        let file = path.display();
        let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
        let at = |needle: &str| {
            let (line, column) = position(&text, needle);
            format!("{file}:{line}:{column}: ")
        };
        assert_eq!(
            lines,
            [
                format!(
                    "{}limits.requester_rate = -1: must be a number of fetches per second, 0 or more (0: no limit)",
                    at("requester_rate")
                ),
                format!(
                    "{}limits.default_fetch_timeout = \"40s\": exceeds limits.max_fetch_timeout = \"30s\"",
                    at("default_fetch_timeout")
                ),
                format!(
                    "{}upstream.retry_ratio = 2: must be within 0 and 1 (0.1: one retry per ten calls)",
                    at("retry_ratio")
                ),
            ]
        );
    }

    #[test]
    fn a_conflict_with_a_default_is_reported_without_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = MINIMAL.replace("[tls]", "[limits]\nmax_fetch_timeout = \"1s\"\n[tls]");
        let path = write(dir.path(), &text);
        let err = Config::load(&path).expect_err("default exceeds");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: limits.default_fetch_timeout = \"5s\": exceeds limits.max_fetch_timeout = \"1s\"",
                path.display()
            )
        );
    }
}
