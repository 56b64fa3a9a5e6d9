//! Gateway replicas on one PostgreSQL database: the adapter registry is
//! shared, and a registration through one replica is routed by the other
//! within a second (LISTEN/NOTIFY), without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, fetch_request, status_of, with_timeout};
use xgate_integration_tests::pg::PgDb;
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, TestEnv,
};
use xgate_proto::v1::{FetchRequest, RecordStatus};

/// A replica's configuration: registry and audit store in `url`, its own
/// audit key directory (so its own chain).
fn replica_config(env: &TestEnv, url: &str, name: &str) -> PathBuf {
    let base = env
        .write_gateway_config(&GatewayOptions::default())
        .expect("config");
    let text = std::fs::read_to_string(&base).expect("read config");
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
    std::fs::write(&path, text).expect("write config");
    path
}

/// The sample citizen's public-security records for general approval.
fn citizen_request(env: &TestEnv) -> tonic::Request<FetchRequest> {
    with_timeout(
        fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            client::types_of(
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
