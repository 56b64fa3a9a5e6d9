//! Gateway configuration: one TOML file, unknown keys rejected, validated at
//! load, immutable afterwards.

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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 64 * 1024,
            max_record_types: 128,
            default_fetch_timeout_ms: 5_000,
            max_fetch_timeout_ms: 30_000,
            adapter_timeout_cap_ms: 5_000,
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
