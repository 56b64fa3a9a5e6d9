//! Running xgate under load and observing it: load shedding with health still answering,
//! per-requester rate limits, HTTP/2 limits, W3C trace context reaching the adapters, and the
//! Prometheus endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt as _;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{
    self, describe, fetch_request, status_of, unconditional_types_of,
};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::records::personal_tax_records;
use xgate_integration_tests::scrape::{metrics_addr, sample, scrape};
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, NO_GRANT, TestEnv, wait,
};
use xgate_proto::v1::{FetchRequest, RecordStatus};

/// These tests count the adapter's lookups: every admitted fetch must reach it, so no
/// answer is served from the record cache (its own tests are in resilience.rs).
const NO_CACHE: &str = "[cache]\nenabled = false\n";

/// The tax department of the fixture, serving every personal tax type.
fn tax(delay: Duration) -> FixtureDepartment {
    let mut dept = FixtureDepartment::new("tax").delayed(delay);
    for (record_type, record) in personal_tax_records() {
        dept = dept.serving(record_type, vec![record]);
    }
    dept
}

fn tax_request(env: &TestEnv) -> FetchRequest {
    let types = unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some("tax"));
    fetch_request(
        SubjectKind::ResidentId,
        &env.subjects().citizen,
        &types,
        GENERAL_APPROVAL,
    )
}

fn with_timeout<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(FETCH_TIMEOUT);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_in_flight_limit_the_gateway_sheds_and_still_answers_health() -> anyhow::Result<()>
{
    const FETCHES: usize = 12;
    let env = TestEnv::new()?;
    let mut gateway = env
        .start_gateway(&GatewayOptions {
            limits: vec![("max_in_flight", 2)],
            metrics: true,
            extra_toml: NO_CACHE.into(),
            ..GatewayOptions::default()
        })
        .await?;
    let metrics = metrics_addr(&gateway.process().log_text())?;
    // Slow enough that every fetch below overlaps the first two.
    let fixture = env
        .start_fixture(tax(Duration::from_secs(2)), &gateway)
        .await?;

    let client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let fetches: Vec<_> = (0..FETCHES)
        .map(|_| {
            let mut client = client.clone();
            let request = tax_request(&env);
            tokio::spawn(async move { client.fetch(with_timeout(request)).await })
        })
        .collect();

    // While the admitted fetches wait on the slow department: health answers, and the gauge
    // shows the limit reached.
    wait::until(
        "the fixture to receive a lookup",
        Duration::from_secs(10),
        || async {
            if fixture.lookups() > 0 {
                Ok(Some(()))
            } else {
                Err(anyhow::anyhow!("no lookup yet"))
            }
        },
    )
    .await?;
    let channel = client::connect(gateway.addr(), &env.pki().admin()).await?;
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "xgate.v1.Exchange".into(),
        })
        .await?
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    let during = scrape(metrics).await?;
    assert_eq!(
        sample(&during, "xgate_in_flight_fetches"),
        Some(2.0),
        "{during}"
    );

    let (mut ok, mut shed) = (0, 0);
    for fetch in fetches {
        match fetch.await? {
            Ok(response) => {
                let response = response.into_inner();
                let table = describe(&response.results);
                assert!(
                    response
                        .results
                        .iter()
                        .all(|r| status_of(r) == RecordStatus::Ok),
                    "{table}"
                );
                ok += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let retry = status
                    .get_details_retry_info()
                    .and_then(|r| r.retry_delay)
                    .expect("RetryInfo with a delay");
                assert!(retry > Duration::ZERO);
                shed += 1;
            }
        }
    }
    assert!(ok >= 2, "the first two are always admitted: ok {ok}");
    assert!(shed >= 1, "none shed: ok {ok}");
    assert_eq!(ok + shed, FETCHES);
    // A shed fetch did no work: one adapter call (of all tax types) per admitted fetch.
    let tax_types =
        unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some("tax")).len();
    assert_eq!(fixture.lookups(), ok * tax_types);

    let after = scrape(metrics).await?;
    assert_eq!(
        sample(&after, "xgate_shed_total{reason=\"overloaded\"}"),
        Some(shed as f64),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "xgate_requests_total{rpc=\"Fetch\",code=\"RESOURCE_EXHAUSTED\"}"
        ),
        Some(shed as f64),
        "{after}"
    );
    assert_eq!(
        sample(&after, "xgate_in_flight_fetches"),
        Some(0.0),
        "{after}"
    );
    // Capacity is back once the slow fetches ended.
    let mut client = client;
    client.fetch(with_timeout(tax_request(&env))).await?;
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holds_its_slot_until_it_ends() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            limits: vec![("max_in_flight", 1)],
            ..GatewayOptions::default()
        })
        .await?;
    let _fixture = env
        .start_fixture(tax(Duration::from_secs(1)), &gateway)
        .await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let mut stream = client
        .fetch_stream(with_timeout(tax_request(&env)))
        .await?
        .into_inner();
    // The stream is open (its answer is pending on the slow department): no room.
    let refused = client
        .fetch(with_timeout(tax_request(&env)))
        .await
        .expect_err("the stream holds the only slot");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let mut results = 0;
    while let Some(item) = stream.message().await? {
        assert_eq!(
            status_of(item.result.as_ref().expect("result")),
            RecordStatus::Ok
        );
        results += 1;
    }
    assert!(results > 0);
    // Ended: the slot is free again.
    let response = client.fetch(with_timeout(tax_request(&env))).await?;
    assert!(!response.into_inner().results.is_empty());
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_over_its_rate_is_refused_while_others_are_served() -> anyhow::Result<()> {
    const BURST: usize = 3;
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            // A refill far slower than the test: only the burst is available.
            extra_toml: format!(
                "[limits.requester_limits.{APPROVAL_HALL}]\nrate = 0.01\nburst = {BURST}\n"
            ),
            ..GatewayOptions::default()
        })
        .await?;
    let fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut hall = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    for _ in 0..BURST {
        hall.fetch(with_timeout(tax_request(&env))).await?;
    }
    let lookups = fixture.lookups();
    let refused = hall
        .fetch(with_timeout(tax_request(&env)))
        .await
        .expect_err("over the burst");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let quota = refused
        .get_details_quota_failure()
        .expect("QuotaFailure detail");
    assert_eq!(
        quota.violations[0].subject,
        format!("requester:{APPROVAL_HALL}")
    );
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(retry > Duration::from_secs(1), "{retry:?}");
    // Refused before validation and policy: no adapter work.
    assert_eq!(fixture.lookups(), lookups);
    // Another requester has its own (unlimited) budget.
    let mut other = env.exchange(gateway.addr(), NO_GRANT).await?;
    for _ in 0..BURST + 2 {
        other.fetch(with_timeout(tax_request(&env))).await?;
    }
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_metadata_is_refused_by_http2_and_the_gateway_serves_on() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            limits: vec![("http2_max_header_list_bytes", 4096)],
            ..GatewayOptions::default()
        })
        .await?;
    let _fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let mut request = with_timeout(tax_request(&env));
    request
        .metadata_mut()
        .insert("x-padding", "p".repeat(8192).parse().expect("ascii"));
    let refused = client.fetch(request).await.expect_err("headers too large");
    // Refused by HTTP/2 before any service: 431 Request Header Fields Too Large (tonic's client
    // maps a response without grpc-status to UNKNOWN, keeping the HTTP code in the message).
    assert_eq!(refused.code(), Code::Unknown, "{refused:?}");
    assert!(refused.message().contains("431"), "{refused:?}");
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = client.fetch(with_timeout(tax_request(&env))).await?;
    assert!(!response.into_inner().results.is_empty());
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_runs_at_most_its_http2_stream_limit_at_once() -> anyhow::Result<()> {
    const STREAMS: u64 = 2;
    const FETCHES: usize = 6;
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            limits: vec![("http2_max_concurrent_streams", STREAMS)],
            extra_toml: NO_CACHE.into(),
            ..GatewayOptions::default()
        })
        .await?;
    let fixture = env
        .start_fixture(tax(Duration::from_millis(500)), &gateway)
        .await?;
    // One connection: calls beyond the server's stream limit wait in the client (not refused).
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    // The first call lets the client learn the server's SETTINGS: before them, a burst may open
    // streams past the limit, which the server resets with REFUSED_STREAM (safe to retry).
    client.fetch(with_timeout(tax_request(&env))).await?;
    let fetches: Vec<_> = (0..FETCHES)
        .map(|_| {
            let mut client = client.clone();
            let request = tax_request(&env);
            tokio::spawn(async move { client.fetch(with_timeout(request)).await })
        })
        .collect();
    for fetch in fetches {
        fetch.await??;
    }
    let tax_types =
        unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some("tax")).len();
    assert_eq!(fixture.lookups(), (FETCHES + 1) * tax_types);
    // Each fetch is one Lookup of all tax types at once: at most STREAMS fetches overlapped.
    let peak = fixture.peak_concurrency();
    assert!(peak <= STREAMS as usize * tax_types, "peak {peak}");
    assert!(peak >= tax_types, "peak {peak}");
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_precise_statuses() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    // Above limits.max_request_bytes (64 KiB): INVALID_ARGUMENT naming the request.
    let mut big = tax_request(&env);
    big.case_id = "c".repeat(100 * 1024);
    let refused = client
        .fetch(with_timeout(big))
        .await
        .expect_err("too large");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let fields: Vec<String> = xgate_proto::status::violations(&refused)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["request"], "{refused:?}");
    // Above the transport's decode ceiling (4 MiB): refused by the decoder, not a reset.
    let mut huge = tax_request(&env);
    huge.case_id = "c".repeat(5 * 1024 * 1024);
    let refused = client
        .fetch(with_timeout(huge))
        .await
        .expect_err("far too large");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("too large"), "{refused:?}");
    assert_eq!(fixture.lookups(), 0);
    // The connection serves on.
    client.fetch(with_timeout(tax_request(&env))).await?;
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_trace_continues_into_the_adapter() -> anyhow::Result<()> {
    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const CALLER_SPAN: &str = "b7ad6b7169203331";
    let env = TestEnv::new()?;
    // With the record cache on: a cache miss's adapter call runs in a task of its own (shared
    // with concurrent identical fetches) and must still carry the fetch's trace.
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let mut request = with_timeout(tax_request(&env));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{CALLER_SPAN}-01").parse()?,
    );
    let response = client.fetch(request).await?.into_inner();
    let table = describe(&response.results);
    assert!(
        response
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::Ok),
        "{table}"
    );
    let traces = fixture.traces();
    assert!(!traces.is_empty());
    for seen in &traces {
        let incoming = seen
            .incoming
            .as_deref()
            .expect("a traceparent reached the adapter");
        let (trace, parent) =
            xgate_proto::telemetry::parse_traceparent(incoming).expect("well formed");
        assert_eq!(trace, TRACE, "{incoming}");
        // The adapter's parent is the gateway's span, not the caller's.
        assert_ne!(parent, CALLER_SPAN, "{incoming}");
        // The SDK's span inside the lookup continues the same trace.
        assert_eq!(seen.trace_id.as_deref(), Some(TRACE));
    }

    // Without a caller context the gateway starts a trace of its own and still propagates it
    // (another subject: the first one's records are cached now).
    let other = fetch_request(
        SubjectKind::ResidentId,
        &env.subjects().gappy_citizen,
        unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some("tax")),
        GENERAL_APPROVAL,
    );
    client.fetch(with_timeout(other)).await?;
    let own = fixture.traces().pop().expect("a second lookup");
    let incoming = own.incoming.expect("a traceparent");
    let (trace, _) = xgate_proto::telemetry::parse_traceparent(&incoming).expect("well formed");
    assert_ne!(trace, TRACE);
    assert_eq!(own.trace_id.as_deref(), Some(trace));
    gateway.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_exposes_requests_latency_records_and_the_audit_queue()
-> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let mut gateway = env
        .start_gateway(&GatewayOptions {
            metrics: true,
            ..GatewayOptions::default()
        })
        .await?;
    let metrics = metrics_addr(&gateway.process().log_text())?;
    let _fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = client
        .fetch(with_timeout(tax_request(&env)))
        .await?
        .into_inner();
    let ok = response
        .results
        .iter()
        .filter(|r| status_of(r) == RecordStatus::Ok)
        .count();
    assert!(ok > 0, "{}", describe(&response.results));
    // A denied type counts under its own status.
    let mut denied =
        client::exchange(client::connect(gateway.addr(), &env.pki().requester(NO_GRANT)).await?);
    let response = denied
        .fetch(with_timeout(tax_request(&env)))
        .await?
        .into_inner();
    let denials = response
        .results
        .iter()
        .filter(|r| status_of(r) == RecordStatus::Denied)
        .count();

    let text = scrape(metrics).await?;
    assert_eq!(
        sample(&text, "xgate_requests_total{rpc=\"Fetch\",code=\"OK\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xgate_fetch_duration_seconds_count"),
        Some(2.0),
        "{text}"
    );
    assert!(
        text.contains("xgate_fetch_duration_seconds_bucket{le=\""),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "xgate_records_total{department=\"tax\",status=\"OK\"}"
        ),
        Some(ok as f64),
        "{text}"
    );
    if denials > 0 {
        assert_eq!(
            sample(
                &text,
                "xgate_records_total{department=\"tax\",status=\"DENIED\"}"
            ),
            Some(denials as f64),
            "{text}"
        );
    }
    assert_eq!(
        sample(&text, "xgate_audit_queue_depth"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xgate_audit_tamper_alarms"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "xgate_in_flight_fetches"),
        Some(0.0),
        "{text}"
    );
    // Subjects never appear in metrics.
    assert!(!text.contains(&env.subjects().citizen), "{text}");
    // Only /metrics is served.
    let (status, _) = xgate_integration_tests::scrape::get(metrics, "/other").await?;
    assert_eq!(status, 404);
    gateway.stop().await
}

/// A measurement, not a check (run on demand; the figures go to BENCHMARKS.md): goodput of a
/// gateway whose capacity is set by `max_in_flight` = 8 over a 50 ms department (160
/// fetches/s), offered 1x, 2x and 4x its capacity by closed-loop clients that either retry a
/// shed fetch at once (the harshest caller: every shed costs the gateway a full request) or
/// wait the RetryInfo delay first.
///
/// `cargo nextest run -p xgate-integration-tests --run-ignored only -E 'test(goodput)' --no-capture`
#[ignore = "measurement; prints goodput at 1x, 2x and 4x offered load"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goodput_under_overload() -> anyhow::Result<()> {
    const SLOTS: u64 = 8;
    const RUN: Duration = Duration::from_secs(4);
    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            limits: vec![("max_in_flight", SLOTS)],
            extra_toml: NO_CACHE.into(),
            ..GatewayOptions::default()
        })
        .await?;
    let _fixture = env
        .start_fixture(tax(Duration::from_millis(50)), &gateway)
        .await?;
    for (factor, honour_retry) in [(1, false), (2, false), (4, false), (2, true), (4, true)] {
        let workers = SLOTS * factor;
        let stop = std::time::Instant::now() + RUN;
        let mut tasks = Vec::new();
        for _ in 0..workers {
            // One connection per 8 workers, like a pool of client channels.
            let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
            let request = tax_request(&env);
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut shed, mut other) = (0u64, 0u64, 0u64);
                while std::time::Instant::now() < stop {
                    match client.fetch(with_timeout(request.clone())).await {
                        Ok(_) => ok += 1,
                        Err(s) if s.code() == Code::ResourceExhausted => {
                            shed += 1;
                            if honour_retry
                                && let Some(delay) =
                                    s.get_details_retry_info().and_then(|r| r.retry_delay)
                            {
                                tokio::time::sleep(delay).await;
                            }
                        }
                        Err(_) => other += 1,
                    }
                }
                (ok, shed, other)
            }));
        }
        let (mut ok, mut shed, mut other) = (0, 0, 0);
        for task in tasks {
            let (o, s, x) = task.await?;
            ok += o;
            shed += s;
            other += x;
        }
        let secs = RUN.as_secs_f64();
        eprintln!(
            "MEASURE offered {factor}x ({workers} closed-loop clients, {}): goodput {:.0} \
             fetches/s (capacity {}), shed {:.0}/s, other errors {other}",
            if honour_retry {
                "waiting RetryInfo"
            } else {
                "retrying at once"
            },
            ok as f64 / secs,
            SLOTS * 20,
            shed as f64 / secs,
        );
    }
    gateway.stop().await
}

/// An OTLP/gRPC collector in the test process: keeps every export request it receives.
#[derive(Default, Clone)]
struct Collector {
    received: std::sync::Arc<
        std::sync::Mutex<
            Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
        >,
    >,
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        self.received
            .lock()
            .expect("collector lock")
            .push(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_otlp_endpoint_the_fetch_spans_are_exported_without_subjects() -> anyhow::Result<()>
{
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    use prost::Message as _;
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let collector = Collector::default();
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?;
    let collector_addr = incoming.local_addr()?;
    let (stop_collector, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let env = TestEnv::new()?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            extra_toml: format!("[telemetry]\notlp_endpoint = \"http://{collector_addr}\"\n"),
            ..GatewayOptions::default()
        })
        .await?;
    let _fixture = env.start_fixture(tax(Duration::ZERO), &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let mut request = with_timeout(tax_request(&env));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-00f067aa0ba902b7-01").parse()?,
    );
    client.fetch(request).await?;
    // SIGTERM: the gateway flushes its batch of spans before it exits.
    gateway.stop().await?;
    let _ = stop_collector.send(());
    server.await??;

    let received = collector.received.lock().expect("collector lock").clone();
    assert!(!received.is_empty(), "nothing exported");
    let mut names = Vec::new();
    for export in &received {
        for resource_spans in &export.resource_spans {
            let resource = resource_spans.resource.as_ref().expect("a resource");
            let service = resource
                .attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value));
            assert!(
                service.as_deref().is_some_and(|s| s.contains("\"xgate\"")),
                "{service:?}"
            );
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    names.push(span.name.clone());
                    let trace: String = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    assert_eq!(trace, TRACE, "span {}", span.name);
                }
            }
        }
        // No subject ID anywhere in what left the gateway.
        let bytes = export.encode_to_vec();
        let citizen = env.subjects().citizen.as_bytes();
        assert!(
            !bytes.windows(citizen.len()).any(|w| w == citizen),
            "the subject's ID was exported"
        );
    }
    for expected in ["fetch", "policy", "audit"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    Ok(())
}
