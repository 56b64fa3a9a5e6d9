//! Gateway replicas on one PostgreSQL database: each with the registry and
//! the audit store in that database and an audit key directory of its own
//! (so a chain of its own).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::pg::PgDb;
use crate::process::GatewayProcess;
use crate::{GatewayOptions, TestEnv};

/// Writes replica `name`'s configuration: `options`, with the registry and
/// audit store in `url` and keys in `keys-<name>`.
pub fn replica_config(
    env: &TestEnv,
    url: &str,
    name: &str,
    options: &GatewayOptions,
) -> anyhow::Result<PathBuf> {
    let base = env.write_gateway_config(options)?;
    let text = std::fs::read_to_string(&base)?;
    let mut text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("database = ") {
                format!("database = \"{url}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    text.push_str(&format!(
        "\n[audit]\ndatabase = \"{url}\"\nkey_dir = \"{}\"\n",
        env.dir().join(format!("keys-{name}")).display()
    ));
    let path = env.dir().join(format!("gateway-{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Starts one replica per name, in order.
pub async fn start_replicas(
    env: &TestEnv,
    db: &PgDb,
    names: &[&str],
    options: &GatewayOptions,
) -> anyhow::Result<Vec<GatewayProcess>> {
    let mut replicas = Vec::new();
    for name in names {
        let config = replica_config(env, &db.url(), name, options)?;
        replicas.push(env.start_gateway_with_config(&config).await?);
    }
    Ok(replicas)
}

/// Rewrites `config` to listen on `addr` (the port the OS gave it), so a
/// restart comes back where a balancer expects it.
pub fn pin_listen(config: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("listen = ") {
                format!("listen = \"{addr}\"\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(config, text)?;
    Ok(())
}

/// The audit instance id of replica `name` (its chain's name).
pub fn instance_of(env: &TestEnv, name: &str) -> anyhow::Result<String> {
    let path = env
        .dir()
        .join(format!("keys-{name}"))
        .join("audit-instance");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}
