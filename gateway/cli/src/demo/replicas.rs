//! `xgate demo --replicas N`: the production shape on one machine. N
//! `xgate serve` processes share one PostgreSQL database (registry, quotas,
//! replica table, audit chains — one chain per replica), Debian's HAProxy
//! balances TCP connections to them without terminating TLS, and the 20
//! department adapters register through the balancer like any client. The
//! demo's fetches go through the balancer, each on its own connection, and
//! every answer names the replica that wrote its audit entry; at the end
//! the cluster status must show one policy set and every chain must verify.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::Connection as _;
use tokio::process::{Child, Command};
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::policy_admin_client::PolicyAdminClient;
use xgate_proto::v1::registry_client::RegistryClient;
use xgate_proto::v1::{AuditVerifyRequest, ClusterStatusRequest, ListAdaptersRequest};
use xgate_tls::{Identity, devpki};

use super::{
    AdapterProcess, DemoArgs, Outcome, listening_addr, prepare_workdir, print_json, print_tables,
    progress, seed_all, start_adapters,
};
use crate::balancer::{Backend, Balancer};

/// One `xgate serve` process.
struct Replica {
    name: String,
    addr: SocketAddr,
    /// Its audit instance id (the name of its chain).
    instance: String,
    child: Child,
}

pub(super) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    // Before anything slow: without HAProxy or PostgreSQL there is no demo.
    crate::balancer::haproxy()?;
    let postgres = args.postgres.as_deref().unwrap_or(super::DEFAULT_POSTGRES);
    ensure_database(postgres).await?;
    let (work, catalog, pki) = prepare_workdir(&args.workdir)?;
    let departments: Vec<String> = catalog.departments().map(|d| d.id.clone()).collect();
    seed_all(&work, &departments).await?;

    let issuer = super::code_issuer(&work)?;
    let mut replicas = Vec::new();
    for n in 1..=args.replicas {
        let replica = start_replica(&work, &pki, postgres, &issuer.public_key_hex(), n).await?;
        progress(&format!(
            "replica {} ({}) listening on {}",
            replica.name, replica.instance, replica.addr
        ));
        replicas.push(replica);
    }
    let backends: Vec<Backend> = replicas
        .iter()
        .map(|r| Backend {
            name: r.name.clone(),
            addr: r.addr,
        })
        .collect();
    let balancer =
        Balancer::start(&work, &backends, &work.join("logs").join("haproxy.log")).await?;
    let url = balancer.url();
    progress(&format!(
        "HAProxy (TCP passthrough) on {url} in front of {} replicas; config {}",
        replicas.len(),
        balancer.config.display()
    ));
    let adapters = start_adapters(&work, &pki, &departments, &url).await?;
    wait_routed_everywhere(&replicas, &pki, &adapters).await?;
    progress("all adapters registered through the balancer; every replica routes to them");

    let outcome = Outcome::fetch(&url, &pki, &catalog, &issuer, &work).await?;
    let names: HashMap<String, String> = replicas
        .iter()
        .map(|r| (r.instance.clone(), r.name.clone()))
        .collect();
    if args.json {
        print_json(&outcome, &url, Some(&names), "")?;
    } else {
        print_tables(&outcome)?;
        crate::outln!()?;
        for (fetch, instance) in &outcome.answered_by {
            let name = names.get(instance).map_or("?", String::as_str);
            crate::outln!("{fetch:<26} answered by replica {name} ({instance})")?;
        }
    }

    let admin = pki.files(&Identity::Admin("operator".into()));
    let status = PolicyAdminClient::new(crate::client::connect(&url, &admin).await?)
        .cluster_status(ClusterStatusRequest {})
        .await
        .map_err(crate::fetch::explain)?
        .into_inner();
    let auditor = pki.files(&Identity::Auditor("auditor".into()));
    let report = AuditClient::new(crate::client::connect(&url, &auditor).await?)
        .verify(AuditVerifyRequest {})
        .await
        .map_err(crate::fetch::explain)?
        .into_inner();
    let summary = format!(
        "audit: {} entries in {} chains, {} checkpoints verified: {}",
        report.entries,
        report.chains.len(),
        report.checkpoints_verified,
        if report.ok {
            "OK"
        } else {
            report.reason.as_str()
        }
    );
    if args.json {
        progress(&format!(
            "cluster: {} replicas, policy sets {}",
            status.replicas.iter().filter(|r| r.live).count(),
            if status.policy_sets_agree {
                "agree"
            } else {
                "DISAGREE"
            }
        ));
        progress(&summary);
    } else {
        crate::outln!()?;
        crate::cluster::print_table(&status)?;
        crate::outln!()?;
        crate::outln!("{summary}")?;
    }
    anyhow::ensure!(
        status.policy_sets_agree,
        "the replicas disagree on the policy set"
    );
    anyhow::ensure!(
        report.ok,
        "the audit log does not verify: {}",
        report.reason
    );
    let missing: Vec<&str> = replicas
        .iter()
        .filter(|r| !report.chains.contains(&r.instance))
        .map(|r| r.name.as_str())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "no audit chain was verified for replica(s) {missing:?}"
    );
    progress(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));

    if !args.once {
        crate::outln!()?;
        crate::outln!(
            "The replicas keep serving behind {url} (Ctrl-C stops them). Try \
             `xgate cluster status --gateway {url} --cert {} --key {} --ca {}`, or kill one \
             replica (logs in {}) and fetch again.",
            admin.cert.display(),
            admin.key.display(),
            admin.ca.display(),
            work.join("logs").display()
        )?;
        let mut ready = super::ready_document(&url, &work, &outcome);
        ready["replicas"] = replicas
            .iter()
            .map(|r| serde_json::json!({"name": r.name, "address": r.addr.to_string(), "instance": r.instance, "pid": r.child.id()}))
            .collect();
        super::serve_until_stopped(&args, ready).await?;
    }
    for mut adapter in adapters {
        let _ = adapter.child.kill().await;
    }
    balancer.stop().await;
    for replica in replicas {
        stop_replica(replica).await;
    }
    Ok(())
}

/// Creates the database of `url` if the server does not have it yet.
pub(super) async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .with_context(|| format!("`{url}` is not a PostgreSQL URL"))?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    match sqlx::PgConnection::connect_with(&options).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let mut admin = sqlx::PgConnection::connect_with(&options.database("postgres"))
                .await
                .context("connecting to the server's `postgres` database to create the demo's")?;
            // An identifier cannot be bound; it is quoted (`"` doubled).
            let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&mut admin)
                .await
                .with_context(|| format!("creating database `{name}`"))?;
            let _ = admin.close().await;
            progress(&format!("created PostgreSQL database `{name}`"));
            Ok(())
        }
        Err(e) => Err(e).with_context(|| {
            format!("connecting to PostgreSQL at `{url}` (`--postgres URL` names another server)")
        }),
    }
}

/// Writes replica `n`'s configuration (its own audit key directory, so its
/// own chain; everything else shared) and starts `xgate serve` on it.
async fn start_replica(
    work: &Path,
    pki: &devpki::DevPki,
    postgres: &str,
    code_issuer_key: &str,
    n: u16,
) -> anyhow::Result<Replica> {
    let name = format!("r{n}");
    let tls = pki.files(&Identity::Gateway("xgate".into()));
    let keys = work.join(format!("keys-{name}"));
    let quoted = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    let config = format!(
        "listen = \"127.0.0.1:0\"
policies_dir = {policies}
watch_policies = false
database = {postgres}

[tls]
cert = {cert}
key = {key}
ca = {ca}

[audit]
database = {postgres}
key_dir = {keys}

[telemetry]
metrics_listen = \"127.0.0.1:0\"

[subject_codes.issuers]
{issuer} = \"{code_issuer_key}\"
",
        issuer = super::CODE_ISSUER,
        policies = quoted(&work.join("policies")),
        postgres = serde_json::Value::from(postgres).to_string(),
        cert = quoted(&tls.cert),
        key = quoted(&tls.key),
        ca = quoted(&tls.ca),
        keys = quoted(&keys),
    );
    let config_path: PathBuf = work.join(format!("gateway-{name}.toml"));
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let log = work.join("logs").join(format!("gateway-{name}.log"));
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let exe = std::env::current_exe().context("locating the xgate executable")?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting replica {name}"))?;
    let addr = listening_addr(&mut child, &format!("replica {name}"))
        .await
        .with_context(|| format!("see {}", log.display()))?;
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("replica {name} printed `{addr}` as its address"))?;
    let instance = std::fs::read_to_string(keys.join("audit-instance"))
        .with_context(|| format!("reading replica {name}'s instance id"))?
        .trim()
        .to_owned();
    Ok(Replica {
        name,
        addr,
        instance,
        child,
    })
}

/// Waits until every replica routes every adapter just started (an earlier
/// run's registrations in the shared table name that run's ports).
async fn wait_routed_everywhere(
    replicas: &[Replica],
    pki: &devpki::DevPki,
    adapters: &[AdapterProcess],
) -> anyhow::Result<()> {
    let admin = pki.files(&Identity::Admin("operator".into()));
    let deadline = Instant::now() + Duration::from_secs(20);
    for replica in replicas {
        let url = format!("https://{}", replica.addr);
        let mut registry = RegistryClient::new(crate::client::connect(&url, &admin).await?);
        loop {
            let listed = registry
                .list(ListAdaptersRequest {})
                .await
                .map_err(crate::fetch::explain)?
                .into_inner()
                .adapters;
            let missing: Vec<&str> = adapters
                .iter()
                .filter(|a| {
                    let endpoint = format!("https://{}", a.addr);
                    !listed.iter().any(|r| {
                        r.department == a.department
                            && r.endpoint_states.iter().any(|s| s.endpoint == endpoint)
                    })
                })
                .map(|a| a.department.as_str())
                .collect();
            if missing.is_empty() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "replica {} does not route {missing:?} within 20 s (see the logs)",
                replica.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// SIGTERM (the replica signs a final checkpoint and leaves the replica
/// table), then a kill if it has not exited within 20 s.
async fn stop_replica(mut replica: Replica) {
    if let Some(pid) = replica.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(20), replica.child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = replica.child.kill().await;
}
