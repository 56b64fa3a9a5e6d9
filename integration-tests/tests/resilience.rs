//! The record cache and fault isolation end to end: the real gateway binary, in-process SDK
//! fixture adapters over mTLS, and the Registry, Audit and health services.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{self, describe, fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::{FixtureAdapter, FixtureDepartment, Mode};
use xgate_integration_tests::process::GatewayProcess;
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, NO_GRANT, TestEnv, records,
    wait,
};
use xgate_proto::v1::audit_client::AuditClient;
use xgate_proto::v1::{
    AuditQueryRequest, BreakerState, FetchRequest, HeartbeatRequest, ListAdaptersRequest,
    RecordResult, RecordStatus, RegisterRequest,
};
use xgate_tls::Identity;

const CERTIFICATE: &str = "tax_payment_certificate";
const INCOME: &str = "individual_income_tax_record";

fn tax_fixture() -> FixtureDepartment {
    FixtureDepartment::new("tax")
        .serving(CERTIFICATE, vec![records::tax_payment_certificate()])
        .serving(INCOME, vec![records::individual_income_tax_record()])
}

fn request(env: &TestEnv, types: &[&str]) -> tonic::Request<FetchRequest> {
    with_timeout(
        fetch_request(
            SubjectKind::ResidentId,
            &env.subjects().citizen,
            types.iter().copied(),
            GENERAL_APPROVAL,
        ),
        FETCH_TIMEOUT,
    )
}

async fn fetch(
    env: &TestEnv,
    gateway: &GatewayProcess,
    requester: &str,
    types: &[&str],
) -> Vec<RecordResult> {
    let mut client = env
        .exchange(gateway.addr(), requester)
        .await
        .expect("client");
    client
        .fetch(request(env, types))
        .await
        .expect("fetch")
        .into_inner()
        .results
}

/// Options with the cache off and `upstream` as the `[upstream]` section.
fn uncached(upstream: &str) -> GatewayOptions {
    GatewayOptions {
        extra_toml: format!("[cache]\nenabled = false\n\n[upstream]\n{upstream}"),
        ..GatewayOptions::default()
    }
}

async fn health(
    env: &TestEnv,
    gateway: &GatewayProcess,
    service: &str,
) -> anyhow::Result<ServingStatus> {
    let channel = client::connect(gateway.addr(), &env.pki().admin()).await?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
}

/// Registers `endpoints` as the one `tax` adapter serving `types`, and waits until routed.
async fn register_tax(
    env: &TestEnv,
    gateway: &GatewayProcess,
    endpoints: Vec<String>,
    types: &[&str],
) {
    let mut registry = env
        .registry_as(gateway.addr(), &env.pki().department("tax"))
        .await
        .expect("registry");
    registry
        .register(RegisterRequest {
            department: "tax".into(),
            adapter_id: "tax".into(),
            endpoints,
            record_types: types.iter().map(|t| (*t).to_owned()).collect(),
            replace: true,
        })
        .await
        .expect("register");
    let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
    env.wait_for_sources(gateway.addr(), &types)
        .await
        .expect("routed");
}

/// A cache hit is decided and audited like a miss: the second fetch does not reach the
/// department, says it came from the cache and how old it is, keeps the original provenance,
/// and is in the audit log; a requester without a grant is still denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_hit_is_policy_checked_and_audited() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let tax = env
        .start_fixture(tax_fixture(), &gateway)
        .await
        .expect("fixture");

    let first = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
        .await
        .remove(0);
    assert_eq!(status_of(&first), RecordStatus::Ok, "{first:?}");
    assert!(!first.from_cache);
    assert_eq!(first.age_ms, 0);
    assert_eq!(tax.lookups(), 1);

    let pause = Duration::from_millis(30);
    tokio::time::sleep(pause).await;
    let second = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
        .await
        .remove(0);
    assert_eq!(status_of(&second), RecordStatus::Ok, "{second:?}");
    assert!(second.from_cache, "{second:?}");
    assert!(
        second.age_ms >= pause.as_millis() as u64,
        "age {} ms",
        second.age_ms
    );
    assert_eq!(second.records, first.records);
    assert_eq!(
        second.provenance, first.provenance,
        "the original provenance"
    );
    assert_eq!(second.policy_ids, first.policy_ids);
    assert_eq!(tax.lookups(), 1, "a hit does not call the department");
    // For the record (not asserted): time inside the gateway, miss then hit.
    eprintln!(
        "latency_us: miss {} hit {}",
        first.latency_us, second.latency_us
    );

    let denied = fetch(&env, &gateway, NO_GRANT, &[CERTIFICATE])
        .await
        .remove(0);
    assert_eq!(status_of(&denied), RecordStatus::Denied, "{denied:?}");
    assert!(denied.records.is_empty() && !denied.from_cache);
    assert_eq!(tax.lookups(), 1);

    // Three entries: the miss, the hit, the denial.
    let pki = env.dir().join("pki");
    let tls = xgate_tls::devpki::issue(&pki, &Identity::Auditor("it-auditor".into()), &pki)
        .expect("auditor certificate");
    let mut audit = AuditClient::new(
        client::connect(gateway.addr(), &tls)
            .await
            .expect("connect"),
    );
    let mut pages = audit
        .query(AuditQueryRequest {
            record_type: CERTIFICATE.into(),
            kind: "access".into(),
            ..AuditQueryRequest::default()
        })
        .await
        .expect("query")
        .into_inner();
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        entries.extend(page.expect("page").entries);
    }
    let outcomes: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e.requester.as_str(), e.decision.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (APPROVAL_HALL, "permit", "OK"),
            (APPROVAL_HALL, "permit", "OK"),
            (NO_GRANT, "deny", "DENIED"),
        ]
    );
}

/// A registration change drops the department's cached records before it is answered: after
/// the tax adapter is replaced by one on another endpoint serving one type fewer, the next
/// fetch is not from the cache, names the new endpoint, and the dropped type has no source.
/// The replaced registration's heartbeat is refused and names the replacement; the new one
/// has a later registration time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_registration_drops_cached_records_and_its_heartbeats() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let tls = env.pki().department("tax");
    let old = FixtureAdapter::spawn_unregistered(tax_fixture(), &tls)
        .await
        .expect("old");
    let new = FixtureAdapter::spawn_unregistered(tax_fixture(), &tls)
        .await
        .expect("new");
    let (old_url, new_url) = (old.url().expect("url"), new.url().expect("url"));
    let mut registry = env
        .registry_as(gateway.addr(), &tls)
        .await
        .expect("registry");
    let register = |endpoint: &str, types: &[&str], replace: bool| RegisterRequest {
        department: "tax".into(),
        adapter_id: String::new(),
        endpoints: vec![endpoint.to_owned()],
        record_types: types.iter().map(|t| (*t).to_owned()).collect(),
        replace,
    };
    let first = registry
        .register(register(&old_url, &[CERTIFICATE, INCOME], false))
        .await
        .expect("register")
        .into_inner();
    let first_at = first.registration.expect("registration").registered_at;
    env.wait_for_sources(gateway.addr(), &[CERTIFICATE.to_owned(), INCOME.to_owned()])
        .await
        .expect("routed");
    for _ in 0..2 {
        let results = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE, INCOME]).await;
        assert!(
            results.iter().all(|r| status_of(r) == RecordStatus::Ok),
            "{}",
            describe(&results)
        );
    }
    assert_eq!(
        old.lookups(),
        2,
        "one lookup of each type; the second fetch was a cache hit"
    );

    // Dropping a type without replace is refused and changes nothing.
    let refused = registry
        .register(register(&new_url, &[CERTIFICATE], false))
        .await
        .expect_err("drops a type and an endpoint");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains(&format!("`{INCOME}`")),
        "{refused:?}"
    );
    let cached = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
        .await
        .remove(0);
    assert!(cached.from_cache, "{cached:?}");

    let replaced = registry
        .register(register(&new_url, &[CERTIFICATE], true))
        .await
        .expect("replace")
        .into_inner();
    let change = replaced.change.expect("change");
    assert!(change.replaced, "{change:?}");
    assert_eq!(change.removed_record_types, [INCOME]);
    assert_eq!(
        (change.added_endpoints, change.removed_endpoints),
        (vec![new_url.clone()], vec![old_url.clone()])
    );
    let new_at = replaced.registration.expect("registration").registered_at;
    assert!(
        new_at.map(|t| (t.seconds, t.nanos)) > first_at.map(|t| (t.seconds, t.nanos)),
        "{new_at:?} after {first_at:?}"
    );

    // At once: no old records, no source for the dropped type.
    let results = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE, INCOME]).await;
    let table = describe(&results);
    assert_eq!(status_of(&results[0]), RecordStatus::Ok, "{table}");
    assert!(
        !results[0].from_cache,
        "the old adapter's cached records: {table}"
    );
    assert_eq!(
        results[0].provenance.as_ref().expect("provenance").endpoint,
        new_url,
        "{table}"
    );
    assert_eq!(status_of(&results[1]), RecordStatus::NoSource, "{table}");
    assert_eq!(
        results[1].error,
        format!("no adapter of `tax` serves `{INCOME}`"),
        "{table}"
    );
    assert_eq!((old.lookups(), new.lookups()), (2, 1));

    // The replaced registration's heartbeat is refused; the current one's is kept.
    let beat = |registered_at| HeartbeatRequest {
        department: "tax".into(),
        adapter_id: String::new(),
        registered_at,
    };
    let stale = registry
        .heartbeat(beat(first_at))
        .await
        .expect_err("replaced");
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");
    assert!(stale.message().contains("was replaced"), "{stale:?}");
    registry.heartbeat(beat(new_at)).await.expect("current");
    let listed = registry
        .list(ListAdaptersRequest {})
        .await
        .expect("list")
        .into_inner()
        .adapters;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].registered_at, new_at);
}

/// A department whose data makes no valid record gives the requester INVALID (asking again
/// does not help) with the adapter's text naming the catalog field, not UNAVAILABLE; it does
/// not count against the adapter's breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_department_data_is_invalid_not_unavailable() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&uncached("breaker_failures = 2\n"))
        .await
        .expect("gateway");
    let _tax = env
        .start_fixture(tax_fixture().in_mode(Mode::BadData), &gateway)
        .await
        .expect("fixture");
    for _ in 0..3 {
        let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
            .await
            .remove(0);
        assert_eq!(status_of(&result), RecordStatus::Invalid, "{result:?}");
        assert_eq!(
            result.error,
            format!("row 1 of `{CERTIFICATE}`: field `issue_date` holds text that is not a date")
        );
    }
    assert_eq!(
        health(&env, &gateway, "xgate.adapter.tax")
            .await
            .expect("health"),
        ServingStatus::Serving,
        "bad data opened the breaker"
    );
}

/// An SDK adapter that registered itself and was then replaced keeps heartbeating with its
/// registration's time; the gateway refuses those beats, so `last seen` is not refreshed by an
/// adapter that no longer serves the department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_adapter_no_longer_refreshes_last_seen() {
    let env = TestEnv::new().expect("env");
    let gateway = env.start_gateway(&uncached("")).await.expect("gateway");
    let old = env
        .start_fixture(tax_fixture(), &gateway)
        .await
        .expect("self-registered fixture");
    let tls = env.pki().department("tax");
    let new = FixtureAdapter::spawn_unregistered(tax_fixture(), &tls)
        .await
        .expect("new");
    let mut registry = env
        .registry_as(gateway.addr(), &tls)
        .await
        .expect("registry");
    let before = registry
        .list(ListAdaptersRequest {})
        .await
        .expect("list")
        .into_inner()
        .adapters
        .remove(0);
    let replaced = registry
        .register(RegisterRequest {
            department: "tax".into(),
            adapter_id: String::new(),
            endpoints: vec![new.url().expect("url")],
            record_types: old.types().to_vec(),
            replace: true,
        })
        .await
        .expect("replace")
        .into_inner()
        .registration
        .expect("registration");
    assert_ne!(replaced.registered_at, before.registered_at);
    // One heartbeat interval of the old adapter, and some.
    tokio::time::sleep(xgate_adapter_sdk::HEARTBEAT_INTERVAL + Duration::from_secs(2)).await;
    let after = registry
        .list(ListAdaptersRequest {})
        .await
        .expect("list")
        .into_inner()
        .adapters
        .remove(0);
    assert_eq!(after.endpoints, replaced.endpoints);
    assert_eq!(after.registered_at, replaced.registered_at);
    assert_eq!(
        after.last_seen, replaced.last_seen,
        "the replaced adapter's heartbeat refreshed the registration"
    );
}

/// Twenty concurrent identical fetches of two types against a slow department make one Lookup
/// of both types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_make_one_lookup() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&GatewayOptions::default())
        .await
        .expect("gateway");
    let slow = tax_fixture().delayed(Duration::from_millis(800));
    let tax = env.start_fixture(slow, &gateway).await.expect("fixture");
    let mut client = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let fetches = (0..20).map(|_| {
        let mut client = client.clone();
        let request = request(&env, &[CERTIFICATE, INCOME]);
        async move {
            client
                .fetch(request)
                .await
                .expect("fetch")
                .into_inner()
                .results
        }
    });
    let answers = futures::future::join_all(fetches).await;
    for results in &answers {
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|r| status_of(r) == RecordStatus::Ok),
            "{}",
            describe(results)
        );
    }
    assert_eq!(tax.lookups(), 2, "one Lookup of the two types, not 20");
    // And a later fetch is a hit.
    let later = client
        .fetch(request(&env, &[CERTIFICATE, INCOME]))
        .await
        .expect("fetch")
        .into_inner()
        .results;
    assert!(later.iter().all(|r| r.from_cache), "{}", describe(&later));
    assert_eq!(tax.lookups(), 2);
}

/// A failing department trips the breaker: it is no longer called, fetches say the circuit is
/// open, health says NOT_SERVING; after the cool-down a probe finds it recovered and all is
/// well again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_failing_adapter_and_closes_when_it_recovers() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&uncached(
            "breaker_failures = 3\nbreaker_cooldown = \"1s\"\nhedge = false\n",
        ))
        .await
        .expect("gateway");
    let tax = env
        .start_fixture(tax_fixture().in_mode(Mode::Failing), &gateway)
        .await
        .expect("fixture");
    let service = "xgate.adapter.tax";
    assert_eq!(
        health(&env, &gateway, service).await.expect("health"),
        ServingStatus::Serving
    );

    for n in 0..3 {
        let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
            .await
            .remove(0);
        assert_eq!(
            status_of(&result),
            RecordStatus::Unavailable,
            "fetch {n}: {result:?}"
        );
        assert!(
            result.error.contains("fixture backend down"),
            "{}",
            result.error
        );
    }
    assert_eq!(tax.lookups(), 3);
    for _ in 0..3 {
        let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
            .await
            .remove(0);
        assert_eq!(status_of(&result), RecordStatus::Unavailable, "{result:?}");
        assert!(result.error.contains("circuit open"), "{}", result.error);
    }
    assert_eq!(
        tax.lookups(),
        3,
        "an open breaker does not call the department"
    );
    assert_eq!(
        health(&env, &gateway, service).await.expect("health"),
        ServingStatus::NotServing
    );
    let mut registry = env
        .registry_as(gateway.addr(), &env.pki().admin())
        .await
        .expect("registry");
    let listed = registry
        .list(ListAdaptersRequest::default())
        .await
        .expect("list")
        .into_inner();
    let states: Vec<i32> = listed
        .adapters
        .iter()
        .flat_map(|a| a.endpoint_states.iter().map(|s| s.breaker))
        .collect();
    assert!(
        states == vec![BreakerState::Open as i32] || states == vec![BreakerState::HalfOpen as i32],
        "{listed:?}"
    );

    tax.mode().set(Mode::Ok);
    let recovered = wait::until("the breaker to close", Duration::from_secs(20), || {
        let env = &env;
        let gateway = &gateway;
        async move {
            let result = fetch(env, gateway, APPROVAL_HALL, &[CERTIFICATE])
                .await
                .remove(0);
            Ok((status_of(&result) == RecordStatus::Ok).then_some(result))
        }
    })
    .await
    .expect("recovery");
    assert!(recovered.error.is_empty());
    assert_eq!(tax.lookups(), 4, "exactly one probe reached the department");
    assert_eq!(
        health(&env, &gateway, service).await.expect("health"),
        ServingStatus::Serving
    );
    let listed = registry
        .list(ListAdaptersRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.adapters[0].endpoint_states[0].breaker,
        BreakerState::Closed as i32
    );
}

/// One adapter, two endpoints, one of them stalled: the hedge to the other wins every time,
/// well within the deadline, and the stalled endpoint did see the calls the hedges raced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_request_wins_against_a_stalled_endpoint() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&uncached("hedge_default = \"50ms\"\n"))
        .await
        .expect("gateway");
    let tls = env.pki().department("tax");
    let stalled = FixtureAdapter::spawn_unregistered(tax_fixture().in_mode(Mode::Hanging), &tls)
        .await
        .expect("stalled");
    let good = FixtureAdapter::spawn_unregistered(tax_fixture(), &tls)
        .await
        .expect("good");
    let (stalled_url, good_url) = (stalled.url().expect("url"), good.url().expect("url"));
    register_tax(
        &env,
        &gateway,
        vec![stalled_url, good_url.clone()],
        &[CERTIFICATE],
    )
    .await;

    for n in 0..6 {
        let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
            .await
            .remove(0);
        assert_eq!(
            status_of(&result),
            RecordStatus::Ok,
            "fetch {n}: {result:?}"
        );
        assert_eq!(result.provenance.as_ref().unwrap().endpoint, good_url);
    }
    assert_eq!(good.lookups(), 6);
    assert!(
        stalled.lookups() > 0,
        "the stalled endpoint was never tried"
    );
}

/// Two endpoints, the first one dead (nothing listens): the calls that go to it first are
/// retried on the other and succeed; with a retry budget of zero they fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_go_to_another_endpoint_only_within_the_budget() {
    for (budget, retried) in [
        ("", true),
        ("retry_ratio = 0.0\nretry_min_per_sec = 0.0\n", false),
    ] {
        let env = TestEnv::new().expect("env");
        let gateway = env
            .start_gateway(&uncached(&format!(
                "hedge = false\nbreaker_failures = 100\n{budget}"
            )))
            .await
            .expect("gateway");
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("https://{}", listener.local_addr().expect("addr"))
        };
        let good = FixtureAdapter::spawn_unregistered(tax_fixture(), &env.pki().department("tax"))
            .await
            .expect("good");
        register_tax(
            &env,
            &gateway,
            vec![dead, good.url().expect("url")],
            &[CERTIFICATE],
        )
        .await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
                .await
                .remove(0);
            if status_of(&result) != RecordStatus::Ok {
                assert!(result.error.contains("unavailable"), "{result:?}");
            }
            statuses.push(status_of(&result));
        }
        if retried {
            assert_eq!(
                statuses,
                vec![RecordStatus::Ok; 4],
                "every dead-first call retried"
            );
            assert_eq!(good.lookups(), 4);
        } else {
            // The endpoints alternate: the dead-first calls fail, unretried.
            let failed = statuses.iter().filter(|s| **s != RecordStatus::Ok).count();
            assert!(failed >= 1, "{statuses:?}");
            assert_eq!(good.lookups(), 4 - failed);
        }
    }
}

/// A full bulkhead fails further calls to that adapter at once, without calling it, while
/// other departments are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bulkhead_fails_fast_without_calling_the_adapter() {
    let env = TestEnv::new().expect("env");
    let gateway = env
        .start_gateway(&uncached("max_concurrent_calls = 1\nhedge = false\n"))
        .await
        .expect("gateway");
    let tax = env
        .start_fixture(tax_fixture().in_mode(Mode::Hanging), &gateway)
        .await
        .expect("fixture");
    // The one permitted call hangs (until its own 20 s deadline at most).
    let mut first_client = env
        .exchange(gateway.addr(), APPROVAL_HALL)
        .await
        .expect("client");
    let mut first_request = request(&env, &[CERTIFICATE]);
    first_request.set_timeout(Duration::from_secs(20));
    let first = tokio::spawn(async move { first_client.fetch(first_request).await });
    wait::until(
        "the first call to reach the adapter",
        Duration::from_secs(15),
        || {
            let n = tax.lookups();
            async move { Ok((n == 1).then_some(())) }
        },
    )
    .await
    .expect("first call");
    for _ in 0..3 {
        let result = fetch(&env, &gateway, APPROVAL_HALL, &[CERTIFICATE])
            .await
            .remove(0);
        assert_eq!(status_of(&result), RecordStatus::Unavailable, "{result:?}");
        assert!(result.error.contains("bulkhead full"), "{}", result.error);
    }
    assert_eq!(tax.lookups(), 1, "refused calls never reach the department");
    first.abort();
}
