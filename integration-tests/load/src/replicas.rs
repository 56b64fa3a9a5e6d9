//! `xgate-bench replicas`: the figures of gateway replicas sharing one
//! PostgreSQL database (the `xgate serve` binaries on loopback, the local
//! PostgreSQL server, a database of the run's own, dropped at the end).
//!
//! - Registry propagation: `changes` re-registrations of one department
//!   through replica A, alternating between two live adapters; for each, the
//!   time from the Register call until replica B routes to the new endpoint
//!   (B's `Registry.List` polled every millisecond).
//! - Quota exactness: `fetches` concurrent fetches spread over three
//!   replicas against a daily quota of `quota`: how many were answered OK.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::{FixtureAdapter, FixtureDepartment};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::replicas::start_replicas;
use xgate_integration_tests::{GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv, records};
use xgate_proto::v1::{ListAdaptersRequest, RecordStatus, RegisterRequest};

#[derive(clap::Args, Debug)]
pub struct ReplicasArgs {
    /// Registration changes through replica A.
    #[arg(long, default_value_t = 100)]
    pub changes: usize,
    /// Concurrent fetches over three replicas.
    #[arg(long, default_value_t = 1000)]
    pub fetches: usize,
    /// The daily quota they share.
    #[arg(long, default_value_t = 100)]
    pub quota: u32,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Output {
    changes: usize,
    propagation_ms: Percentiles,
    fetches: usize,
    quota: u32,
    answered_ok: usize,
    quota_exhausted: usize,
    other: usize,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
        ms.get(i).copied().unwrap_or(f64::NAN)
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: at(1.0),
    }
}

pub async fn run(args: ReplicasArgs) -> anyhow::Result<()> {
    let propagation = registry_propagation(args.changes).await?;
    println!(
        "registry: {} changes through replica A, visible (routed) on replica B after p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.changes, propagation.p50, propagation.p90, propagation.p99, propagation.max
    );
    let (ok, exhausted, other) = quota_exactness(args.fetches, args.quota).await?;
    println!(
        "quota: {} concurrent fetches over 3 replicas against a daily quota of {}: {ok} OK, {exhausted} RESOURCE_EXHAUSTED, {other} other",
        args.fetches, args.quota
    );
    let output = Output {
        changes: args.changes,
        propagation_ms: propagation,
        fetches: args.fetches,
        quota: args.quota,
        answered_ok: ok,
        quota_exhausted: exhausted,
        other,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&output)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    anyhow::ensure!(
        ok == args.quota as usize || args.fetches < args.quota as usize,
        "the quota was not exact: {ok} OK against {}",
        args.quota
    );
    Ok(())
}

const CERTIFICATE: &str = "tax_payment_certificate";

async fn registry_propagation(changes: usize) -> anyhow::Result<Percentiles> {
    let db = PgDb::create("xgate_bench").await?;
    let env = TestEnv::new()?;
    let replicas = start_replicas(&env, &db, &["a", "b"], &GatewayOptions::default()).await?;
    let tls = env.pki().department("tax");
    let fixture = || {
        FixtureDepartment::new("tax").serving(CERTIFICATE, vec![records::tax_payment_certificate()])
    };
    let adapters = [
        FixtureAdapter::spawn_unregistered(fixture(), &tls).await?,
        FixtureAdapter::spawn_unregistered(fixture(), &tls).await?,
    ];
    let urls: Vec<String> = adapters
        .iter()
        .map(|a| a.url().context("fixture url"))
        .collect::<anyhow::Result<_>>()?;
    let mut through_a = env.registry_as(replicas[0].addr(), &tls).await?;
    let mut on_b = env
        .registry_as(replicas[1].addr(), &env.pki().admin())
        .await?;
    let mut ms = Vec::with_capacity(changes);
    for i in 0..changes {
        let endpoint = &urls[i % 2];
        let started = Instant::now();
        through_a
            .register(RegisterRequest {
                department: "tax".into(),
                adapter_id: String::new(),
                endpoints: vec![endpoint.clone()],
                record_types: vec![CERTIFICATE.into()],
                replace: true,
            })
            .await
            .context("register")?;
        loop {
            let listed = on_b
                .list(ListAdaptersRequest {})
                .await?
                .into_inner()
                .adapters;
            let routed = listed.iter().any(|r| {
                r.department == "tax"
                    && r.endpoint_states.len() == 1
                    && r.endpoint_states.iter().all(|s| &s.endpoint == endpoint)
            });
            if routed {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "change {i} not visible on B within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    for adapter in adapters {
        adapter.stop().await?;
    }
    for replica in replicas {
        replica.stop().await?;
    }
    db.drop_db().await?;
    Ok(percentiles(ms))
}

async fn quota_exactness(fetches: usize, quota: u32) -> anyhow::Result<(usize, usize, usize)> {
    let db = PgDb::create("xgate_bench").await?;
    let env = TestEnv::new()?;
    let grant = xgate_integration_tests::grants::pf_licences_with_quota(quota);
    let policies = env.write_policy_set("quota", &[("grant.cedar", &grant)])?;
    let options = GatewayOptions {
        policies_dir: Some(policies),
        ..GatewayOptions::default()
    };
    let replicas = start_replicas(&env, &db, &["a", "b", "c"], &options).await?;
    let citizen = env.subjects().citizen.clone();
    let fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &replicas[0])
        .await?;
    let mut clients = Vec::new();
    for replica in &replicas {
        env.wait_for_sources(replica.addr(), &["driving_licence".to_owned()])
            .await?;
        clients.push(env.exchange(replica.addr(), PROVIDENT_FUND).await?);
    }
    let calls = (0..fetches).map(|i| {
        let mut client = clients[i % clients.len()].clone();
        let request = with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                ["driving_licence"],
                GENERAL_APPROVAL,
            ),
            Duration::from_secs(60),
        );
        async move {
            client
                .fetch(request)
                .await
                .ok()
                .and_then(|a| a.into_inner().results.first().map(status_of))
        }
    });
    let statuses = futures::future::join_all(calls).await;
    let ok = statuses
        .iter()
        .filter(|s| **s == Some(RecordStatus::Ok))
        .count();
    let exhausted = statuses
        .iter()
        .filter(|s| **s == Some(RecordStatus::ResourceExhausted))
        .count();
    fixture.stop().await?;
    for replica in replicas {
        replica.stop().await?;
    }
    db.drop_db().await?;
    Ok((ok, exhausted, fetches - ok - exhausted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
    }
}
