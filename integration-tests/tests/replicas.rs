//! Gateway replicas on one PostgreSQL database: the adapter registry is
//! shared, and a registration through one replica is routed by the other
//! within a second (LISTEN/NOTIFY), without a restart; a replacement drops
//! the other replicas' cached records; daily quotas are exact across
//! replicas and survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::{FixtureAdapter, FixtureDepartment};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::process::GatewayProcess;
use xgate_integration_tests::replicas;
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, PROVIDENT_FUND, TestEnv,
    records,
};
use xgate_proto::v1::{FetchRequest, RecordStatus, RegisterRequest};

fn replica_config(env: &TestEnv, url: &str, name: &str) -> PathBuf {
    replicas::replica_config(env, url, name, &GatewayOptions::default()).expect("config")
}

/// The sample citizen's public-security records for general approval.
fn citizen_request(env: &TestEnv) -> tonic::Request<FetchRequest> {
    with_timeout(
        fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            client::unconditional_types_of(
                env.catalog(),
                SubjectKind::ResidentId,
                Some("public-security"),
            ),
            GENERAL_APPROVAL,
        ),
        FETCH_TIMEOUT,
    )
}

/// B starts first with an empty registry; the adapter registers through A
/// only. B must route to it within a second of the registration, from the
/// shared table (it has no other way to learn of it).
#[tokio::test]
async fn a_registration_through_one_replica_is_routed_by_the_other_within_a_second() {
    let db = PgDb::create("xgate_replicas").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let a = env
        .start_gateway_with_config(&replica_config(&env, &db.url(), "a"))
        .await
        .expect("gateway a");
    let b = env
        .start_gateway_with_config(&replica_config(&env, &db.url(), "b"))
        .await
        .expect("gateway b");
    let mut hall_b = env.exchange(b.addr(), APPROVAL_HALL).await.expect("client");
    let before = hall_b
        .fetch(citizen_request(&env))
        .await
        .expect("fetch")
        .into_inner();
    assert!(
        before
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::NoSource),
        "{}",
        client::describe(&before.results)
    );

    let _adapter = env
        .start_adapter("public-security", &a)
        .await
        .expect("adapter registered through a");
    let registered = Instant::now();
    loop {
        let answer = hall_b
            .fetch(citizen_request(&env))
            .await
            .expect("fetch")
            .into_inner();
        if answer
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::Ok)
        {
            break;
        }
        assert!(
            registered.elapsed() < Duration::from_secs(1),
            "b still does not route to the adapter registered through a: {}",
            client::describe(&answer.results)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
    db.drop_db().await.expect("drop");
}

async fn start_replicas(
    env: &TestEnv,
    db: &PgDb,
    names: &[&str],
    options: &GatewayOptions,
) -> Vec<GatewayProcess> {
    replicas::start_replicas(env, db, names, options)
        .await
        .expect("replicas")
}

const CERTIFICATE: &str = "tax_payment_certificate";

/// The tax department replaced through replica A (new endpoint) while B holds
/// the old adapter's record in its cache: B stops answering from it within a
/// second, without being told anything but the shared table's notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_through_one_replica_drops_the_others_cached_records() {
    let db = PgDb::create("xgate_replicas").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let replicas = start_replicas(&env, &db, &["a", "b"], &GatewayOptions::default()).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let tls = env.pki().department("tax");
    let fixture = || {
        FixtureDepartment::new("tax").serving(CERTIFICATE, vec![records::tax_payment_certificate()])
    };
    let old = FixtureAdapter::spawn_unregistered(fixture(), &tls)
        .await
        .expect("old");
    let new = FixtureAdapter::spawn_unregistered(fixture(), &tls)
        .await
        .expect("new");
    let (old_url, new_url) = (old.url().expect("url"), new.url().expect("url"));
    let mut registry = env.registry_as(a.addr(), &tls).await.expect("registry");
    let register = |endpoint: &str| RegisterRequest {
        department: "tax".into(),
        adapter_id: String::new(),
        endpoints: vec![endpoint.to_owned()],
        record_types: vec![CERTIFICATE.into()],
        replace: true,
    };
    registry
        .register(register(&old_url))
        .await
        .expect("register");
    env.wait_for_sources(b.addr(), &[CERTIFICATE.to_owned()])
        .await
        .expect("b routes");
    let mut hall_b = env.exchange(b.addr(), APPROVAL_HALL).await.expect("client");
    let request = || {
        with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &env.subjects().citizen,
                [CERTIFICATE],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        )
    };
    let mut fetch_b = async || {
        hall_b
            .fetch(request())
            .await
            .expect("fetch")
            .into_inner()
            .results
            .remove(0)
    };
    let first = fetch_b().await;
    assert_eq!(status_of(&first), RecordStatus::Ok, "{first:?}");
    let cached = fetch_b().await;
    assert!(
        cached.from_cache,
        "b's second fetch is a cache hit: {cached:?}"
    );

    registry
        .register(register(&new_url))
        .await
        .expect("replace");
    let replaced = Instant::now();
    loop {
        let result = fetch_b().await;
        let endpoint = result
            .provenance
            .as_ref()
            .map(|p| p.endpoint.clone())
            .unwrap_or_default();
        if status_of(&result) == RecordStatus::Ok && !result.from_cache && endpoint == new_url {
            break;
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(1),
            "b still answers from the replaced adapter: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        old.lookups(),
        1,
        "the old adapter was asked once, then cached"
    );
    for replica in replicas {
        replica.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}

/// Three replicas, a quota of 10 and 60 fetches at once spread over them:
/// exactly 10 are answered OK, the rest RESOURCE_EXHAUSTED; a replica started
/// afterwards (a restart) finds the day's quota spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_quota_is_exact_across_three_replicas_and_survives_a_restart() {
    let db = PgDb::create("xgate_replicas").await.expect("postgres");
    let env = TestEnv::new().expect("env");
    let policies = env
        .write_policy_set(
            "quota",
            &[(
                "grant.cedar",
                &xgate_integration_tests::grants::pf_licences_with_quota(10),
            )],
        )
        .expect("policies");
    let options = GatewayOptions {
        policies_dir: Some(policies),
        ..GatewayOptions::default()
    };
    let replicas = start_replicas(&env, &db, &["a", "b", "c"], &options).await;
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(FixtureDepartment::licences(&citizen), &replicas[0])
        .await
        .expect("fixture");
    for replica in &replicas {
        env.wait_for_sources(replica.addr(), &["driving_licence".to_owned()])
            .await
            .expect("routed");
    }
    let request = || {
        with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                ["driving_licence"],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        )
    };
    let mut clients = Vec::new();
    for replica in &replicas {
        clients.push(
            env.exchange(replica.addr(), PROVIDENT_FUND)
                .await
                .expect("client"),
        );
    }
    let fetches = (0..60).map(|i| {
        let mut client = clients[i % 3].clone();
        let request = request();
        async move {
            status_of(
                &client
                    .fetch(request)
                    .await
                    .expect("fetch")
                    .into_inner()
                    .results[0],
            )
        }
    });
    let statuses = futures::future::join_all(fetches).await;
    let ok = statuses.iter().filter(|s| **s == RecordStatus::Ok).count();
    let spent = statuses
        .iter()
        .filter(|s| **s == RecordStatus::ResourceExhausted)
        .count();
    assert_eq!((ok, spent), (10, 50), "{statuses:?}");

    let restarted = start_replicas(&env, &db, &["d"], &options).await;
    env.wait_for_sources(restarted[0].addr(), &["driving_licence".to_owned()])
        .await
        .expect("routed");
    let mut client = env
        .exchange(restarted[0].addr(), PROVIDENT_FUND)
        .await
        .expect("client");
    let after = client.fetch(request()).await.expect("fetch").into_inner();
    assert_eq!(
        status_of(&after.results[0]),
        RecordStatus::ResourceExhausted,
        "{}",
        client::describe(&after.results)
    );
    for replica in replicas.into_iter().chain(restarted) {
        replica.stop().await.expect("stop");
    }
    db.drop_db().await.expect("drop");
}
