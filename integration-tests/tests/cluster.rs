//! Gateway replicas as production runs them: on one PostgreSQL database,
//! reporting their policy sets to each other (`xgate cluster status`), behind
//! Debian's HAProxy in TCP passthrough. A replica killed with SIGKILL under
//! load costs the callers only the calls it had in flight; every answer a
//! caller got has its audit entry; PostgreSQL going away fails fetches
//! closed, and the replicas recover by themselves when it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tonic::transport::Channel;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::{FixtureAdapter, FixtureDepartment};
use xgate_integration_tests::kit::{tls_args, xgate};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::process::GatewayProcess;
use xgate_integration_tests::replicas::{instance_of, pin_listen, replica_config, start_replicas};
use xgate_integration_tests::{GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv, scrape};
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::policy_admin_client::PolicyAdminClient;
use xgate_proto::v1::{
    AuditReceipt, AuditVerifyRequest, FetchRequest, RecordStatus, ReloadPoliciesRequest,
};

const LICENCE: &str = "driving_licence";

const GRANT: &str = xgate_integration_tests::grants::PF_LICENCES;

fn licence_request(env: &TestEnv) -> tonic::Request<FetchRequest> {
    with_timeout(
        fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            [LICENCE],
            GENERAL_APPROVAL,
        ),
        Duration::from_secs(5),
    )
}

/// The fixture serving the citizen's driving licence, registered through
/// `gateway` and routed by every replica.
async fn licence_source(env: &TestEnv, replicas: &[GatewayProcess]) -> FixtureAdapter {
    let fixture = env
        .start_fixture(
            FixtureDepartment::licences(&env.subjects().citizen),
            &replicas[0],
        )
        .await
        .expect("fixture");
    for replica in replicas {
        env.wait_for_sources(replica.addr(), &[LICENCE.to_owned()])
            .await
            .expect("routed");
    }
    fixture
}

async fn cluster_status(addr: std::net::SocketAddr, env: &TestEnv) -> (bool, String) {
    let mut args = vec![
        "cluster".into(),
        "status".into(),
        "--gateway".into(),
        format!("https://{addr}").into(),
    ];
    args.extend(tls_args(&env.pki().admin()));
    let out = xgate(args).await.expect("xgate cluster status");
    (out.success(), format!("{}{}", out.stdout, out.stderr))
}

/// Two replicas with different policy sets: `xgate cluster status` lists
/// both with their versions and chain heads and fails; each replica's
/// `/health` and `/metrics` name its own set. After the second replica is
/// reloaded with the first one's files, the status agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_flags_replicas_that_run_different_policy_sets() {
    let db = PgDb::create("xgate_cluster").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let full = env
        .write_policy_set("full", &[("grant.cedar", GRANT)])
        .expect("policies");
    // Another set: the same grant under another id.
    let partial = env
        .write_policy_set(
            "partial",
            &[(
                "grant.cedar",
                &GRANT.replace("pf-licences", "pf-licences-old"),
            )],
        )
        .expect("policies");
    let options = |dir: &std::path::Path| GatewayOptions {
        policies_dir: Some(dir.to_owned()),
        no_policy_watch: true,
        metrics: true,
        ..GatewayOptions::default()
    };
    let a = start_replicas(&env, &db, &["a"], &options(&full))
        .await
        .expect("a")
        .remove(0);
    let b = start_replicas(&env, &db, &["b"], &options(&partial))
        .await
        .expect("b")
        .remove(0);
    let (instance_a, instance_b) = (
        instance_of(&env, "a").expect("a"),
        instance_of(&env, "b").expect("b"),
    );
    let admin_a = client::connect(a.addr(), &env.pki().admin())
        .await
        .expect("admin");
    let version_a = PolicyAdminClient::new(admin_a)
        .get_policy_set(xgate_proto::v1::GetPolicySetRequest {})
        .await
        .expect("policy set")
        .into_inner()
        .version;

    let (ok, out) = cluster_status(a.addr(), &env).await;
    assert!(!ok, "disagreement must fail the command:\n{out}");
    assert!(out.contains("POLICY SETS DISAGREE"), "{out}");
    assert!(
        out.contains(&instance_a) && out.contains(&instance_b),
        "{out}"
    );
    assert!(
        out.contains(&version_a),
        "a's version {version_a} listed:\n{out}"
    );
    assert!(
        out.contains("entries, root"),
        "chain heads are listed:\n{out}"
    );

    // The replica's own report: health detail and the info metric.
    let metrics = scrape::metrics_addr(&a.log_text()).expect("metrics addr");
    let (code, health) = scrape::get(metrics, "/health").await.expect("health");
    assert_eq!(code, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).expect("json");
    assert_eq!(health["instance"], instance_a.as_str());
    assert_eq!(health["policy_set"]["version"], version_a.as_str());
    let exposition = scrape::scrape(metrics).await.expect("scrape");
    assert!(
        exposition.contains(&format!(
            "xgate_policy_set{{version=\"{version_a}\",instance=\"{instance_a}\"}} 1"
        )),
        "{exposition}"
    );

    // B gets A's files and reloads; within a heartbeat the status agrees.
    std::fs::copy(full.join("grant.cedar"), partial.join("grant.cedar")).expect("copy");
    let admin_b = client::connect(b.addr(), &env.pki().admin())
        .await
        .expect("admin");
    PolicyAdminClient::new(admin_b)
        .reload_policies(ReloadPoliciesRequest {})
        .await
        .expect("reload b");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let (ok, out) = cluster_status(a.addr(), &env).await;
        if ok {
            assert!(out.contains("policy sets agree"), "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still disagreeing 6 s after the reload:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await.expect("stop a");
    // A left the table on a clean stop; B alone is listed.
    let (ok, out) = cluster_status(b.addr(), &env).await;
    assert!(ok, "{out}");
    assert!(!out.contains(&instance_a), "a stopped cleanly:\n{out}");
    b.stop().await.expect("stop b");
    db.drop_db().await.expect("drop");
}

/// What one call of the load saw.
enum Seen {
    Ok(AuditReceipt),
    Failed(Instant, tonic::Code, String),
}

/// `workers` clients, each on a connection of its own through `url`,
/// fetching one after another until `stop`.
fn load(
    env: &TestEnv,
    balancer: std::net::SocketAddr,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Seen>>> {
    (0..workers)
        .map(|_| {
            let stop = Arc::clone(stop);
            let tls = env.pki().requester(PROVIDENT_FUND);
            let request = licence_request(env).into_inner();
            tokio::spawn(async move {
                let channel = client::connect(balancer, &tls).await.expect("connect");
                let mut exchange = ExchangeClient::new(channel);
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(
                        match exchange
                            .fetch(with_timeout(request.clone(), Duration::from_secs(5)))
                            .await
                        {
                            Ok(answer) => {
                                let answer = answer.into_inner();
                                assert_eq!(
                                    status_of(&answer.results[0]),
                                    RecordStatus::Ok,
                                    "{}",
                                    client::describe(&answer.results)
                                );
                                Seen::Ok(answer.receipt.expect("an OK answer has a receipt"))
                            }
                            Err(status) => Seen::Failed(
                                Instant::now(),
                                status.code(),
                                status.message().to_owned(),
                            ),
                        },
                    );
                }
                seen
            })
        })
        .collect()
}

/// Every receipt verifies against the audit store (through `replica`), and
/// the audit log verifies as a whole, every chain.
async fn every_receipt_and_chain_verifies(
    env: &TestEnv,
    replica: &GatewayProcess,
    receipts: Vec<AuditReceipt>,
) -> BTreeSet<String> {
    let holder = AuditClient::new(
        client::connect(replica.addr(), &env.pki().requester(PROVIDENT_FUND))
            .await
            .expect("connect"),
    );
    let failed: Vec<String> = futures::stream::iter(receipts)
        .map(|receipt| {
            let mut holder = holder.clone();
            async move {
                let answer = holder
                    .verify_receipt(receipt.clone())
                    .await
                    .expect("verify receipt")
                    .into_inner();
                (!answer.ok)
                    .then(|| format!("{}#{}: {}", receipt.chain, receipt.index, answer.reason))
            }
        })
        .buffer_unordered(8)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(
        failed.is_empty(),
        "receipts without their entry: {failed:?}"
    );
    let report = AuditClient::new(
        client::connect(replica.addr(), &env.pki().auditor())
            .await
            .expect("connect"),
    )
    .verify(AuditVerifyRequest {})
    .await
    .expect("verify")
    .into_inner();
    assert!(report.ok, "{report:?}");
    report.chains.into_iter().collect()
}

/// Three replicas behind HAProxy, six callers fetching through it; replica
/// b is killed with SIGKILL. Only calls in flight at that moment fail (at
/// most one per caller, all within a second of the kill); the balancer
/// sends nothing more to b; every OK answer has its audit entry and every
/// chain verifies; b restarted on its port rejoins and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_behind_haproxy_costs_only_its_in_flight_calls() {
    if xgate_cli::balancer::haproxy().is_err() {
        eprintln!(
            "SKIPPED: HAProxy is not installed (integration-tests/load/install-tools.sh installs it)"
        );
        return;
    }
    const WORKERS: usize = 6;
    let db = PgDb::create("xgate_cluster").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let policies = env
        .write_policy_set("grant", &[("grant.cedar", GRANT)])
        .expect("policies");
    let options = GatewayOptions {
        policies_dir: Some(policies),
        ..GatewayOptions::default()
    };
    let names = ["a", "b", "c"];
    let mut replicas = start_replicas(&env, &db, &names, &options)
        .await
        .expect("replicas");
    for (name, replica) in names.iter().zip(&replicas) {
        pin_listen(
            &replica_config(&env, &db.url(), name, &options).expect("config"),
            replica.addr(),
        )
        .expect("pin");
    }
    let _fixture = licence_source(&env, &replicas).await;
    let backends: Vec<_> = names
        .iter()
        .zip(&replicas)
        .map(|(name, r)| xgate_cli::balancer::Backend {
            name: (*name).to_owned(),
            addr: r.addr(),
        })
        .collect();
    let balancer =
        xgate_cli::balancer::Balancer::start(env.dir(), &backends, &env.dir().join("haproxy.log"))
            .await
            .expect("haproxy");

    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&env, balancer.addr, WORKERS, &stop);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    replicas[1].process().kill().await.expect("kill -9 b");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut receipts = Vec::new();
    let mut failures = Vec::new();
    for worker in workers {
        for seen in worker.await.expect("worker") {
            match seen {
                Seen::Ok(receipt) => receipts.push(receipt),
                Seen::Failed(at, code, message) => failures.push((at, code, message)),
            }
        }
    }
    let (instance_a, instance_b, instance_c) = (
        instance_of(&env, "a").expect("a"),
        instance_of(&env, "b").expect("b"),
        instance_of(&env, "c").expect("c"),
    );
    let answered: BTreeMap<&str, usize> = receipts.iter().fold(BTreeMap::new(), |mut by, r| {
        *by.entry(r.chain.as_str()).or_default() += 1;
        by
    });
    eprintln!(
        "{} OK answers by chain {answered:?}; {} failed: {:?}",
        receipts.len(),
        failures.len(),
        failures
            .iter()
            .map(|(at, code, m)| format!(
                "{code:?} {} ms after the kill: {m}",
                at.duration_since(killed_at).as_millis()
            ))
            .collect::<Vec<_>>()
    );
    assert!(
        failures.len() <= WORKERS,
        "more failures than calls in flight"
    );
    for (at, code, message) in &failures {
        assert!(
            at.duration_since(killed_at) < Duration::from_secs(1),
            "a call failed {} ms after the kill, not in flight at it: {code:?} {message}",
            at.duration_since(killed_at).as_millis()
        );
    }
    assert!(
        answered.get(instance_b.as_str()).copied().unwrap_or(0) > 0,
        "b served before the kill: {answered:?}"
    );
    assert!(
        answered.get(instance_a.as_str()).copied().unwrap_or(0) > 0
            && answered.get(instance_c.as_str()).copied().unwrap_or(0) > 0,
        "a and c served: {answered:?}"
    );
    let chains = every_receipt_and_chain_verifies(&env, &replicas[0], receipts).await;
    assert!(
        [&instance_a, &instance_b, &instance_c]
            .iter()
            .all(|i| chains.contains(*i)),
        "{chains:?}"
    );

    // b comes back on its port: HAProxy's check marks it up, and fresh
    // connections (round robin) reach it.
    let config_b = env.dir().join("gateway-b.toml");
    let restarted = env
        .start_gateway_with_config(&config_b)
        .await
        .expect("restart b");
    assert_eq!(restarted.addr(), replicas[1].addr());
    replicas[1] = restarted;
    let deadline = Instant::now() + Duration::from_secs(10);
    let tls = env.pki().requester(PROVIDENT_FUND);
    loop {
        let channel: Channel = client::connect(balancer.addr, &tls).await.expect("connect");
        let answer = ExchangeClient::new(channel)
            .fetch(licence_request(&env))
            .await
            .expect("fetch through the balancer")
            .into_inner();
        assert_eq!(status_of(&answer.results[0]), RecordStatus::Ok);
        if answer.receipt.is_some_and(|r| r.chain == instance_b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted b got no connection within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    balancer.stop().await;
    for replica in replicas {
        replica.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// PostgreSQL away for two seconds (the replicas' role locked out and its
/// sessions terminated): fetches fail closed (nothing OK without a receipt)
/// and both replicas answer again on their own once it is back; every chain
/// verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_away_fetches_fail_closed_and_replicas_recover_by_themselves() {
    let db = PgDb::create("xgate_cluster").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let policies = env
        .write_policy_set("grant", &[("grant.cedar", GRANT)])
        .expect("policies");
    let options = GatewayOptions {
        policies_dir: Some(policies),
        ..GatewayOptions::default()
    };
    let replicas = start_replicas(&env, &db, &["a", "b"], &options)
        .await
        .expect("replicas");
    let _fixture = licence_source(&env, &replicas).await;
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(
            env.exchange(replica.addr(), PROVIDENT_FUND)
                .await
                .expect("client"),
        );
    }
    for client in &mut clients {
        let answer = client.fetch(licence_request(&env)).await.expect("fetch");
        assert_eq!(status_of(&answer.into_inner().results[0]), RecordStatus::Ok);
    }

    db.server_admin(format!("ALTER ROLE {} NOLOGIN", db.name))
        .await
        .expect("lock out");
    db.server_admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'",
        db.name
    ))
    .await
    .expect("terminate");
    let away = Instant::now();
    let mut refused = 0;
    let mut receipts = Vec::new();
    while away.elapsed() < Duration::from_secs(2) {
        for client in &mut clients {
            match client.fetch(licence_request(&env)).await {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    match answer.receipt {
                        Some(receipt) => receipts.push(receipt),
                        None => {
                            assert!(
                                answer
                                    .results
                                    .iter()
                                    .all(|r| status_of(r) == RecordStatus::Unavailable
                                        && r.records.is_empty()),
                                "released without a receipt: {}",
                                client::describe(&answer.results)
                            );
                            refused += 1;
                        }
                    }
                }
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    refused += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused > 0,
        "no fetch was refused while PostgreSQL was away"
    );
    db.server_admin(format!("ALTER ROLE {} LOGIN", db.name))
        .await
        .expect("let back in");

    let back = Instant::now();
    for (i, client) in clients.iter_mut().enumerate() {
        loop {
            if let Ok(answer) = client.fetch(licence_request(&env)).await {
                let answer = answer.into_inner();
                if status_of(&answer.results[0]) == RecordStatus::Ok {
                    receipts.push(answer.receipt.expect("receipt"));
                    break;
                }
            }
            assert!(
                back.elapsed() < Duration::from_secs(15),
                "replica {i} did not recover within 15 s of PostgreSQL's return; its log:\n{}",
                replicas[i].log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "{refused} fetches refused while PostgreSQL was away; recovered in {} ms",
        back.elapsed().as_millis()
    );
    every_receipt_and_chain_verifies(&env, &replicas[0], receipts).await;
    for replica in replicas {
        replica.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// `xgate demo --replicas 2 --once --json`: two `xgate serve` processes on
/// the test's PostgreSQL database behind HAProxy; every type OK through the
/// balancer, each fetch naming the replica that answered (both do), and
/// the run verifies every chain (it exits non-zero otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicated_demo_answers_through_the_balancer_and_names_each_fetchs_replica() {
    if xgate_cli::balancer::haproxy().is_err() {
        eprintln!(
            "SKIPPED: HAProxy is not installed (integration-tests/load/install-tools.sh installs it)"
        );
        return;
    }
    let db = PgDb::create("xgate_demo_replicas").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let workdir = env.dir().join("demo");
    let output = tokio::time::timeout(
        Duration::from_secs(150),
        tokio::process::Command::new(
            xgate_integration_tests::bins::binary(xgate_integration_tests::bins::GATEWAY)
                .expect("xgate"),
        )
        .args(["demo", "--replicas", "2", "--once", "--json", "--postgres"])
        .arg(db.url())
        .arg("--workdir")
        .arg(&workdir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output(),
    )
    .await
    .expect("the demo finished within 150 s")
    .expect("xgate demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(
        doc["gateway"]
            .as_str()
            .is_some_and(|g| g.starts_with("https://127.0.0.1:")),
        "{doc}"
    );
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 63);
    // Every type OK but the conditional ones, which wait for the citizen's
    // say (the demo's code scan fetches them).
    assert_eq!(
        results.iter().filter(|r| r["status"] == "OK").count(),
        46,
        "{stdout}"
    );
    assert_eq!(
        doc["subject_code"]["results"]
            .as_array()
            .map(|r| r.iter().filter(|r| r["status"] == "OK").count()),
        Some(17),
        "{stdout}"
    );
    let replicas: BTreeSet<&str> = doc["answered_by"]
        .as_array()
        .expect("answered_by")
        .iter()
        .map(|a| a["replica"].as_str().expect("replica name"))
        .collect();
    assert_eq!(
        replicas,
        BTreeSet::from(["r1", "r2"]),
        "both replicas answered: {}",
        doc["answered_by"]
    );
    assert!(stderr.contains("policy sets agree"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(" in 2 chains,") && l.ends_with(": OK")),
        "both chains verified: {stderr}"
    );
    db.drop_db().await.expect("drop");
}
