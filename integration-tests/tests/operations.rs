//! Running xgate: the one-command demo, restarts, health checks and reflection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use xgate_catalog::{SharingClass, SubjectKind};
use xgate_integration_tests::client::{
    self, describe, fetch_request, status_of, unconditional_types_of,
};
use xgate_integration_tests::process::log_tail;
use xgate_integration_tests::{
    APPROVAL_HALL, DEPARTMENTS, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, TestEnv, bins,
};
use xgate_proto::v1::{ListAdaptersRequest, ListRecordTypesRequest, RecordStatus};

/// Every log the demo wrote, for failure messages.
fn demo_logs(workdir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(workdir.join("logs")) else {
        return "[no demo logs]".into();
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| format!("----- {} -----\n{}", p.display(), log_tail(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs the demo twice in one working folder: the second run starts from the
/// first one's PKI and gateway database, whose registrations name the first
/// run's (dead) adapter ports, and must still reach the new adapters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fetches_every_type_once_and_exits() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let workdir = env.dir().join("demo");
    for run in 1..=2 {
        check_demo_run(&env, &workdir, run).await?;
    }
    Ok(())
}

async fn check_demo_run(env: &TestEnv, workdir: &Path, run: u32) -> anyhow::Result<()> {
    let output = tokio::time::timeout(
        Duration::from_secs(100),
        tokio::process::Command::new(bins::binary(bins::GATEWAY)?)
            .args(["demo", "--once", "--json", "--workdir"])
            .arg(workdir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("`xgate demo --once` did not finish within 100 s")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = || {
        format!(
            "run {run}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\n{}",
            output.status,
            demo_logs(workdir)
        )
    };
    assert!(output.status.success(), "{}", context());
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", context()));
    let results = doc["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no `results` array: {}", context()));
    assert_eq!(results.len(), 63, "{}", context());
    assert_eq!(results.len(), env.catalog().len());

    let mut seen = BTreeSet::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for result in results {
        let record_type = result["record_type"].as_str().expect("record_type");
        let status = result["status"].as_str().expect("status");
        let department = result["department"].as_str().expect("department");
        assert!(
            result["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{result}"
        );
        let rt = env
            .catalog()
            .record_type(record_type)
            .unwrap_or_else(|| panic!("unknown type `{record_type}`"));
        assert_eq!(department, rt.department, "{result}");
        // Every department is live: 3 native adapters, 17 generic SQL
        // adapters; a conditional type, fetched without an approval item,
        // needs the citizen's say (the scan below) and names what is missing.
        if rt.sharing_class == SharingClass::Conditional {
            assert_eq!(status, "DENIED", "{result}\n{}", context());
            assert_eq!(
                result["policy_ids"][0], "conditional-records-need-an-item-or-the-subjects-say",
                "{result}"
            );
            assert!(
                result["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("explicit request")),
                "{result}"
            );
        } else {
            assert_eq!(status, "OK", "{result}\n{}", context());
        }
        seen.insert(record_type.to_owned());
        *by_status.entry(status.to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), 63, "every type exactly once");
    let conditional = env
        .catalog()
        .record_types()
        .filter(|t| t.sharing_class == SharingClass::Conditional)
        .count();
    assert_eq!(conditional, 17);
    assert_eq!(
        by_status,
        BTreeMap::from([("OK".to_owned(), 46), ("DENIED".to_owned(), 17)])
    );

    // The provident fund's withdrawal item: the title's summary and a yes/no on arrears.
    let pf = doc["provident_fund_withdrawal"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no provident fund section: {}", context()));
    let pf_result = |t: &str| {
        pf.iter()
            .find(|r| r["record_type"] == t)
            .unwrap_or_else(|| panic!("no {t}: {}", context()))
    };
    let title = pf_result("real_estate_title");
    assert_eq!(
        (title["status"].as_str(), title["view"].as_str()),
        (Some("OK"), Some("summary"))
    );
    for record in title["records"].as_array().expect("records") {
        assert!(record.get("certificate_no").is_none(), "{record}");
        assert!(record.get("owner_name").is_some(), "{record}");
    }
    let arrears = pf_result("no_tax_arrears_certificate");
    assert_eq!(arrears["status"], "OK");
    assert!(arrears["value"].is_boolean(), "{arrears}");
    assert_eq!(arrears["record_count"], 0, "{arrears}");
    let refused = &doc["no_grant"]["results"][0];
    assert_eq!(refused["status"], "DENIED", "{refused}");
    assert_eq!(refused["policy_ids"][0], "default deny", "{refused}");

    // The scanned resident code: the conditional types DENIED above, OK
    // without an ID typed, and the same code refused the second time.
    let scan = &doc["subject_code"];
    assert!(
        scan["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("XG1:")),
        "{scan}"
    );
    let scanned = scan["results"].as_array().expect("code results");
    assert_eq!(scanned.len(), conditional, "{scan}");
    assert!(scanned.iter().all(|r| r["status"] == "OK"), "{scan}");
    assert!(
        scan["replay_refused"]
            .as_str()
            .is_some_and(|m| m.contains("used before")),
        "{scan}"
    );
    // Family agency: the citizen (verified at public security as her
    // mother's child) claims the elderly mother's pension; a stranger is
    // refused with the reason. The spouse (verified at civil affairs) gets
    // the withdrawal item's records; the former spouse is refused.
    let agency = &doc["family_agency"];
    let pension = &agency["pension_claim"];
    assert_eq!(
        pension["child"], doc["subjects"]["resident_id"],
        "{pension}"
    );
    let claimed = pension["results"].as_array().expect("pension results");
    assert_eq!(claimed.len(), 4, "{pension}");
    assert!(
        claimed
            .iter()
            .all(|r| r["status"] == "OK" || r["status"] == "NOT_FOUND"),
        "{pension}"
    );
    assert!(
        claimed
            .iter()
            .any(|r| r["record_type"] == "resident_identity_card" && r["status"] == "OK"),
        "{pension}"
    );
    assert!(
        pension["stranger_refused"]
            .as_str()
            .is_some_and(|m| m.contains("not shown as the subject's child")),
        "{pension}"
    );
    let by_spouse = agency["results"].as_array().expect("agency results");
    assert_eq!(by_spouse.len(), pf.len(), "{agency}");
    assert!(by_spouse.iter().all(|r| r["status"] == "OK"), "{agency}");
    assert_ne!(agency["spouse"], agency["former_spouse"]);
    assert!(
        agency["former_spouse_refused"]
            .as_str()
            .is_some_and(|m| m.contains("not shown as the subject's spouse")),
        "{agency}"
    );
    let by_attorney = agency["by_attorney"].as_array().expect("attorney results");
    assert_eq!(by_attorney.len(), pf.len(), "{agency}");
    assert!(by_attorney.iter().all(|r| r["status"] == "OK"), "{agency}");
    // The evaluation loop: a rating, and an objection worked through every
    // state by public security, its outcome read by the hall.
    let evaluation = &doc["evaluation"];
    assert!(
        evaluation["rating"].as_str().is_some_and(|r| !r.is_empty()),
        "{evaluation}"
    );
    assert_eq!(
        evaluation["states"],
        serde_json::json!([
            "reported",
            "circulated",
            "disposed (rejected)",
            "fed_back (rejected)",
            "closed (rejected)"
        ]),
        "{evaluation}"
    );
    assert!(
        evaluation["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("the record stands")),
        "{evaluation}"
    );
    // Screening: both items, each checked against the departments' data.
    let screening = doc["screening"].as_array().expect("screening");
    assert_eq!(screening.len(), 2, "{doc}");
    for run in screening {
        assert_eq!(run["matches_ground_truth"], true, "{run}");
        assert!(run["eligible"].as_u64().is_some_and(|n| n > 0), "{run}");
    }
    assert_eq!(screening[0]["subjects"], 1000);
    assert_eq!(screening[1]["subjects"], 200);
    // A second objection waits in the department's queue, for the web
    // console, which the demo turns on.
    assert_eq!(
        evaluation["open_objection"]["field_path"], "licence_class",
        "{evaluation}"
    );
    assert!(
        doc["console"]
            .as_str()
            .is_some_and(|c| c.starts_with("https://127.0.0.1:")),
        "{doc}"
    );
    // Every fetch names the gateway (its audit chain) that answered it.
    let answered = doc["answered_by"].as_array().expect("answered_by");
    assert_eq!(answered.len(), 7, "{}", context());
    assert!(
        answered
            .iter()
            .all(|a| a["instance"].as_str().is_some_and(|i| i.starts_with("gw-"))),
        "{}",
        context()
    );

    // The citizen with gaps: no marriage, no vehicle; everything else OK or
    // NOT_FOUND (or DENIED: a conditional type, without her say).
    let gappy = &doc["gappy_citizen"];
    assert_eq!(gappy["subject"], env.subjects().gappy_citizen.as_str());
    let gappy_results = gappy["results"].as_array().expect("gappy results");
    assert_eq!(gappy_results.len(), 43, "{}", context());
    let status_of = |t: &str| {
        gappy_results
            .iter()
            .find(|r| r["record_type"] == t)
            .and_then(|r| r["status"].as_str())
            .unwrap_or_else(|| panic!("no result for {t}: {}", context()))
            .to_owned()
    };
    for missing in ["marriage_registration", "motor_vehicle_registration"] {
        assert_eq!(status_of(missing), "NOT_FOUND", "{}", context());
    }
    assert_eq!(status_of("resident_identity_card"), "OK", "{}", context());
    for r in gappy_results {
        let status = r["status"].as_str().expect("status");
        let conditional = env
            .catalog()
            .record_type(r["record_type"].as_str().expect("record_type"))
            .is_some_and(|t| t.sharing_class == SharingClass::Conditional);
        let expected: &[&str] = if conditional {
            &["DENIED"]
        } else {
            &["OK", "NOT_FOUND"]
        };
        assert!(expected.contains(&status), "{r}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_gateway_restart() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let first = env.start_gateway(&GatewayOptions::default()).await?;
    let first_addr = first.addr();
    let adapters = env.start_adapters(&DEPARTMENTS, &first).await?;
    let config = first.config().to_owned();
    first.stop().await?;

    let second = env.start_gateway_with_config(&config).await?;
    let mut admin = env.registry_as(second.addr(), &env.pki().admin()).await?;
    let listed = admin
        .list(ListAdaptersRequest {})
        .await?
        .into_inner()
        .adapters;
    let listed_departments: BTreeSet<&str> = listed.iter().map(|a| a.department.as_str()).collect();
    assert_eq!(
        listed_departments,
        DEPARTMENTS.into_iter().collect::<BTreeSet<_>>(),
        "restarted on {} after {first_addr}: {listed:?}",
        second.addr()
    );
    assert_eq!(listed.len(), DEPARTMENTS.len(), "{listed:?}");
    for adapter in &adapters {
        let registration = listed
            .iter()
            .find(|r| r.department == adapter.department())
            .unwrap();
        assert_eq!(registration.adapter_id, adapter.department());
        assert_eq!(registration.endpoints, vec![adapter.url()]);
        let registered: BTreeSet<&str> = registration
            .record_types
            .iter()
            .map(String::as_str)
            .collect();
        let owned: BTreeSet<&str> = env
            .catalog()
            .types_of_department(adapter.department())
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(registered, owned, "{}", adapter.department());
        assert!(registration.registered_at.is_some() && registration.last_seen.is_some());
    }

    let mut exchange = env.exchange_as(second.addr(), &env.pki().admin()).await?;
    let infos = exchange
        .list_record_types(ListRecordTypesRequest::default())
        .await?
        .into_inner()
        .record_types;
    assert_eq!(infos.len(), env.catalog().len());
    for info in &infos {
        assert_eq!(
            info.has_source,
            DEPARTMENTS.contains(&info.department.as_str()),
            "{}",
            info.id
        );
    }

    // The restarted gateway routes to the adapters from its database alone.
    let citizen = env.subjects().citizen.clone();
    let types = unconditional_types_of(
        env.catalog(),
        SubjectKind::ResidentId,
        Some("public-security"),
    );
    let mut requester = env.exchange(second.addr(), APPROVAL_HALL).await?;
    let response = requester
        .fetch(client::with_timeout(
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    assert!(
        response
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::Ok),
        "{table}"
    );
    Ok(())
}

async fn health(channel: Channel, service: &str) -> Result<i32, tonic::Status> {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|r| r.into_inner().status)
}

async fn reflect(channel: Channel, request: MessageRequest) -> anyhow::Result<MessageResponse> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await?
        .into_inner();
    let response: ServerReflectionResponse = responses
        .message()
        .await?
        .context("the reflection stream ended without an answer")?;
    response
        .message_response
        .context("a reflection answer without a message")
}

async fn services(channel: Channel) -> anyhow::Result<BTreeSet<String>> {
    match reflect(channel, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(list) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => anyhow::bail!("unexpected reflection answer: {other:?}"),
    }
}

/// Health of "" and of each of `serving`, and reflection listing each of them.
async fn check_server(
    addr: SocketAddr,
    tls: &xgate_tls::TlsFiles,
    serving: &[&str],
) -> anyhow::Result<()> {
    let channel = client::connect(addr, tls).await?;
    for service in std::iter::once(&"").chain(serving) {
        let status = health(channel.clone(), service).await?;
        assert_eq!(
            status,
            ServingStatus::Serving as i32,
            "{addr}: health of `{service}`"
        );
    }
    let unknown = health(channel.clone(), "xgate.v1.NoSuchService")
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let listed = services(channel.clone()).await?;
    for service in serving.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            listed.contains(*service),
            "{addr}: {service} not in {listed:?}"
        );
    }
    // Reflection serves the descriptors themselves, not only the names.
    for service in serving {
        let answer = reflect(
            channel.clone(),
            MessageRequest::FileContainingSymbol((*service).to_owned()),
        )
        .await?;
        let MessageResponse::FileDescriptorResponse(files) = answer else {
            panic!("{addr}: no descriptor for {service}: {answer:?}");
        };
        let short = service.rsplit('.').next().unwrap();
        let defined = files.file_descriptor_proto.iter().any(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice())
                .is_ok_and(|file| file.service.iter().any(|s| s.name() == short))
        });
        assert!(
            defined,
            "{addr}: the descriptors sent do not define {service}"
        );
    }
    Ok(())
}

/// The services reflection lists, asked in one reflection version (`v1` or
/// `v1alpha`: two generated clients of the same shape).
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let answer = ServerReflectionClient::new($channel)
            .server_reflection_info(futures::stream::iter([request]))
            .await?
            .into_inner()
            .message()
            .await?
            .and_then(|r| r.message_response);
        match answer {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<BTreeSet<String>>(),
            other => anyhow::bail!(
                "unexpected {} reflection answer: {other:?}",
                stringify!($version)
            ),
        }
    }};
}

/// Python's grpcio-reflection and older grpcurl speak only v1alpha; both
/// versions list exactly the services the gateway serves (not the
/// `DepartmentAdapter` service that shares its descriptor set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_reflection_speaks_v1_and_v1alpha_and_lists_only_served_services()
-> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let channel = client::connect(gateway.addr(), &env.pki().requester(APPROVAL_HALL)).await?;
    let served: BTreeSet<String> = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "xgate.v1.Audit",
        "xgate.v1.Consent",
        "xgate.v1.Console",
        "xgate.v1.Evaluation",
        "xgate.v1.Exchange",
        "xgate.v1.PolicyAdmin",
        "xgate.v1.Registry",
        "xgate.v1.Screening",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let v1 = list_services!(v1, channel.clone());
    assert_eq!(v1, served, "v1");
    let v1alpha = list_services!(v1alpha, channel.clone());
    assert_eq!(v1alpha, served, "v1alpha");
    Ok(())
}

/// `ListRecordTypes` carries each type's views (kind, fields, typed
/// parameters), and `xgate types` shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_types_carry_their_views_on_the_wire_and_in_xgate_types() -> anyhow::Result<()> {
    use xgate_proto::v1::{ViewKind, ViewParamType};
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let mut exchange = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let infos = exchange
        .list_record_types(ListRecordTypesRequest::default())
        .await?
        .into_inner()
        .record_types;
    // Every type carries the catalog's views, as the catalog declares them.
    for info in &infos {
        let rt = env.catalog().record_type(&info.id).unwrap();
        let expected: Vec<_> = rt.views().iter().map(xgate_proto::view::to_proto).collect();
        assert_eq!(info.views, expected, "{}", info.id);
    }
    let title = infos.iter().find(|t| t.id == "real_estate_title").unwrap();
    let summary = title.views.iter().find(|v| v.name == "summary").unwrap();
    assert_eq!(summary.kind, ViewKind::Fields as i32);
    assert_eq!(
        summary.fields,
        ["owner_name", "address", "city", "district", "area_m2"]
    );
    let in_city = title
        .views
        .iter()
        .find(|v| v.name == "owns_property_in_city")
        .unwrap();
    assert_eq!(in_city.kind, ViewKind::Predicate as i32);
    assert_eq!(in_city.params[0].name, "city");
    assert_eq!(in_city.params[0].r#type, ViewParamType::String as i32);

    let output = tokio::process::Command::new(bins::binary(bins::GATEWAY)?)
        .args(["types", "--gateway", &format!("https://{}", gateway.addr())])
        .args(xgate_integration_tests::kit::tls_args(
            &env.pki().requester(APPROVAL_HALL),
        ))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "views: full · summary [owner_name, address, city, district, area_m2] · exists? · \
             owns_property_in_city(city: string)? · owns_residential_property?"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("age_at_least(n: integer)?"), "{stdout}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_adapter_answer_health_checks_and_reflection() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let adapter = env.start_adapter("public-security", &gateway).await?;
    check_server(
        gateway.addr(),
        &env.pki().requester(APPROVAL_HALL),
        &["xgate.v1.Exchange", "xgate.v1.Registry"],
    )
    .await?;
    check_server(
        adapter.addr(),
        &env.pki().admin(),
        &["xgate.v1.DepartmentAdapter"],
    )
    .await?;
    Ok(())
}
