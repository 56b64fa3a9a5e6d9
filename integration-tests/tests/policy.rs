//! Declarative access policies deciding real fetches: views and predicates, approval items,
//! purposes, groups, validity periods, time of day, daily quotas, forbid over permit, the
//! not-shared rule, and hot reload (RPC, SIGHUP, file change) with a bad set rejected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tonic::Code;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{by_type, describe, fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::records;
use xgate_integration_tests::{
    APPROVAL_HALL, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, NO_GRANT, PROVIDENT_FUND,
    TestEnv, client,
};
use xgate_proto::json::{from_value, struct_to_json};
use xgate_proto::v1::policy_admin_client::PolicyAdminClient;
use xgate_proto::v1::{
    FetchRequest, GetPolicySetRequest, RecordRequest, RecordStatus, ReloadPoliciesRequest,
};

/// A fetch of `record_type` at `view` (no item).
fn at_view(subject: &str, record_type: &str, view: &str, purpose: &str) -> FetchRequest {
    let mut request = fetch_request::<&str>(SubjectKind::ResidentId, subject, [], purpose);
    request.requests = vec![RecordRequest {
        record_type: record_type.into(),
        view: view.into(),
        params: Default::default(),
    }];
    request
}

/// A fetch of approval item `item` (its purpose implied).
fn item(subject: &str, item: &str) -> FetchRequest {
    let mut request = fetch_request::<&str>(SubjectKind::ResidentId, subject, [], "");
    request.approval_item = item.into();
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_withdrawal_item_releases_exactly_its_views() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let _adapters = env
        .start_adapters(&["natural-resources", "public-security", "tax"], &gateway)
        .await?;
    let citizen = env.subjects().citizen.clone();
    let mut pf = env.exchange(gateway.addr(), PROVIDENT_FUND).await?;
    let response = pf
        .fetch(with_timeout(item(&citizen, "PF-WITHDRAWAL"), FETCH_TIMEOUT))
        .await?
        .into_inner();
    let table = describe(&response.results);
    let results = by_type(&response.results);

    // The title: OK at `summary`, each record exactly the summary's fields.
    let title = results["real_estate_title"];
    assert_eq!(status_of(title), RecordStatus::Ok, "{table}");
    assert_eq!(title.view, "summary");
    assert_eq!(title.policy_ids, vec!["provident-fund-withdrawal"]);
    assert!(!title.records.is_empty(), "{table}");
    let summary: BTreeSet<&str> = ["owner_name", "address", "city", "district", "area_m2"].into();
    for record in &title.records {
        let json = struct_to_json(record);
        let fields: BTreeSet<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, summary, "{json}");
    }

    // Tax arrears: a yes/no with the department's provenance, no record.
    let arrears = results["no_tax_arrears_certificate"];
    assert_eq!(status_of(arrears), RecordStatus::Ok, "{table}");
    assert_eq!(arrears.view, "no_tax_arrears");
    assert!(arrears.records.is_empty(), "a predicate released records");
    let value = from_value(arrears.value.as_ref().expect("a predicate value"));
    assert!(value.is_boolean(), "{value}");
    assert_eq!(arrears.provenance.as_ref().unwrap().department, "tax");

    // The identity card: the whole record, as the item says.
    let card = results["resident_identity_card"];
    assert_eq!(status_of(card), RecordStatus::Ok, "{table}");
    assert_eq!(card.view, "full");
    let rt = env.catalog().record_type("resident_identity_card").unwrap();
    for record in &card.records {
        rt.validate(&struct_to_json(record))
            .expect("a whole, valid record");
    }
    for result in &response.results {
        assert!(
            result.policy_set_version.starts_with("sha256:"),
            "{result:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purposes_items_and_requesters_decide() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let _adapters = env.start_adapters(&["natural-resources"], &gateway).await?;
    let citizen = env.subjects().citizen.clone();

    // No grant at all: default deny.
    let mut nobody = env.exchange(gateway.addr(), NO_GRANT).await?;
    let response = nobody
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                ["real_estate_title"],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let denied = &response.results[0];
    assert_eq!(status_of(denied), RecordStatus::Denied);
    assert_eq!(denied.policy_ids, vec!["default deny"]);
    assert!(denied.error.contains("default deny"), "{}", denied.error);

    let mut pf = env.exchange(gateway.addr(), PROVIDENT_FUND).await?;
    // The right view for the wrong purpose: denied.
    let response = pf
        .fetch(with_timeout(
            at_view(&citizen, "real_estate_title", "summary", GENERAL_APPROVAL),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    assert_eq!(status_of(&response.results[0]), RecordStatus::Denied);
    // The right purpose without the approval item the grant names: denied.
    let response = pf
        .fetch(with_timeout(
            at_view(&citizen, "real_estate_title", "summary", "PF-WITHDRAWAL"),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    assert_eq!(status_of(&response.results[0]), RecordStatus::Denied);
    // A wider view than granted, even inside the item's purpose: denied...
    let response = pf
        .fetch(with_timeout(
            at_view(&citizen, "real_estate_title", "full", "PF-WITHDRAWAL"),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    assert_eq!(status_of(&response.results[0]), RecordStatus::Denied);
    // ...and an item stated with another purpose is a caller error.
    let mut mismatched = item(&citizen, "PF-WITHDRAWAL");
    mismatched.purpose = "PF-LOAN".into();
    let status = pf
        .fetch(with_timeout(mismatched, FETCH_TIMEOUT))
        .await
        .expect_err("purpose and item disagree");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = xgate_proto::status::violations(&status)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, vec!["purpose"]);

    // A type without a view named: the most detailed view granted, here the hall's `full`.
    let mut hall = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = hall
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                ["real_estate_title"],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    assert_eq!(status_of(&response.results[0]), RecordStatus::Ok);
    assert_eq!(response.results[0].view, "full");
    Ok(())
}

/// A fixture adapter of public-security serving one driving licence of `citizen`.
fn licence_fixture(citizen: &str) -> FixtureDepartment {
    FixtureDepartment::new("public-security")
        .serving("driving_licence", vec![records::driving_licence(citizen)])
}

const GROUP_GRANT_WITH_QUOTA: &str = r#"
@id("it-bureaus-licences")
@daily_quota("2")
permit (
    principal in RequesterGroup::"bozhou-approval-bureaus",
    action == Action::"read",
    resource in RecordType::"driving_licence"
)
when { context.purpose == "GENERAL-APPROVAL" };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_grant_with_a_daily_quota_is_spent() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let policies = env.write_policy_set("quota", &[("grant.cedar", GROUP_GRANT_WITH_QUOTA)])?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(policies),
            ..GatewayOptions::default()
        })
        .await?;
    let citizen = env.subjects().citizen.clone();
    let fixture = env
        .start_fixture(licence_fixture(&citizen), &gateway)
        .await?;
    // The provident fund is in the group; the no-grant bureau is not.
    let mut pf = env.exchange(gateway.addr(), PROVIDENT_FUND).await?;
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
    for n in 0..2 {
        let result = pf.fetch(request()).await?.into_inner().results.remove(0);
        assert_eq!(
            status_of(&result),
            RecordStatus::Ok,
            "fetch {n}: {result:?}"
        );
        assert_eq!(result.policy_ids, vec!["it-bureaus-licences"]);
    }
    // The second fetch may be a cache hit; either way the spent one adds no lookup.
    let before_spent = fixture.lookups();
    let spent = pf.fetch(request()).await?.into_inner().results.remove(0);
    assert_eq!(
        status_of(&spent),
        RecordStatus::ResourceExhausted,
        "{spent:?}"
    );
    assert!(spent.error.contains("quota of 2"), "{}", spent.error);
    assert_eq!(
        fixture.lookups(),
        before_spent,
        "a spent quota must not reach the department"
    );
    let mut nobody = env.exchange(gateway.addr(), NO_GRANT).await?;
    let outsider = nobody
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &citizen,
                ["driving_licence"],
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner()
        .results
        .remove(0);
    assert_eq!(status_of(&outsider), RecordStatus::Denied);
    Ok(())
}

/// Minutes since local (UTC+8) midnight, now.
fn local_minutes() -> i64 {
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let now = time::OffsetDateTime::now_utc().to_offset(offset);
    i64::from(now.hour()) * 60 + i64::from(now.minute())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_periods_and_time_of_day_decide() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let now = local_minutes();
    // A window around now (clamped to the day), and one that cannot contain now.
    let (open_from, open_to) = ((now - 60).max(0), (now + 60).min(24 * 60));
    let (closed_from, closed_to) = if now < 12 * 60 {
        (now + 120, now + 180)
    } else {
        (now - 180, now - 120)
    };
    let policies = env.write_policy_set(
        "time",
        &[(
            "time.cedar",
            &format!(
                r#"
@id("it-expired")
permit (principal == Requester::"approval-hall-demo", action == Action::"read",
        resource == View::"driving_licence.full")
when {{ context.now < datetime("2020-01-01T00:00:00Z") }};

@id("it-current")
permit (principal == Requester::"approval-hall-demo", action == Action::"read",
        resource == View::"driving_licence.exists")
when {{ context.now >= datetime("2020-01-01T00:00:00Z") && context.now < datetime("2100-01-01T00:00:00Z") }};

@id("it-office-hours-now")
permit (principal == Requester::"provident-fund-bozhou", action == Action::"read",
        resource == View::"driving_licence.full")
when {{ context.local_time >= duration("{open_from}m") && context.local_time < duration("{open_to}m") }};

@id("it-office-hours-later")
permit (principal == Requester::"no-grant-bureau", action == Action::"read",
        resource == View::"driving_licence.full")
when {{ context.local_time >= duration("{closed_from}m") && context.local_time < duration("{closed_to}m") }};
"#
            ),
        )],
    )?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(policies),
            ..GatewayOptions::default()
        })
        .await?;
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(licence_fixture(&citizen), &gateway)
        .await?;
    let decided =
        async |requester: &str, view: &str| -> anyhow::Result<(RecordStatus, Vec<String>)> {
            let mut client = env.exchange(gateway.addr(), requester).await?;
            let result = client
                .fetch(with_timeout(
                    at_view(&citizen, "driving_licence", view, GENERAL_APPROVAL),
                    FETCH_TIMEOUT,
                ))
                .await?
                .into_inner()
                .results
                .remove(0);
            Ok((status_of(&result), result.policy_ids))
        };
    assert_eq!(
        decided(APPROVAL_HALL, "full").await?,
        (RecordStatus::Denied, vec!["default deny".to_owned()]),
        "an expired grant"
    );
    assert_eq!(
        decided(APPROVAL_HALL, "exists").await?,
        (RecordStatus::Ok, vec!["it-current".to_owned()])
    );
    assert_eq!(
        decided(PROVIDENT_FUND, "full").await?,
        (RecordStatus::Ok, vec!["it-office-hours-now".to_owned()]),
        "inside the grant's hours"
    );
    assert_eq!(
        decided(NO_GRANT, "full").await?.0,
        RecordStatus::Denied,
        "outside the grant's hours"
    );
    Ok(())
}

const PERMIT_HALL_ALL: &str = r#"
@id("it-hall-all")
permit (principal == Requester::"approval-hall-demo", action == Action::"read", resource is View)
when { resource.sharing_class != "not_shared" };
"#;

/// Reload through the admin RPC: a bad set is refused with file:line and the running set
/// stays; a good one takes effect at once, without a restart, and shows its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rejects_a_bad_set_and_applies_a_good_one() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let dir = env.write_policy_set("live", &[("hall.cedar", PERMIT_HALL_ALL)])?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(dir.clone()),
            ..GatewayOptions::default()
        })
        .await?;
    let citizen = env.subjects().citizen.clone();
    let _fixture = env
        .start_fixture(licence_fixture(&citizen), &gateway)
        .await?;
    let mut admin =
        PolicyAdminClient::new(client::connect(gateway.addr(), &env.pki().admin()).await?);
    let mut hall = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let licence = || {
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
    let first = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner();
    let result = hall.fetch(licence()).await?.into_inner().results.remove(0);
    assert_eq!(status_of(&result), RecordStatus::Ok);
    assert_eq!(result.policy_set_version, first.version);

    // A broken file: refused, naming it, and the running set still decides.
    std::fs::write(
        dir.join("broken.cedar"),
        "@id(\"it-broken\")\npermit (principal, action, resource == View::\"no_such_type.full\");\n",
    )?;
    let status = admin
        .reload_policies(ReloadPoliciesRequest {})
        .await
        .expect_err("a bad set");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let violations = xgate_proto::status::violations(&status);
    assert!(
        violations
            .iter()
            .any(|v| v.field.contains("broken.cedar:2:")),
        "{violations:?}"
    );
    let still = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner();
    assert_eq!(still.version, first.version);
    let result = hall.fetch(licence()).await?.into_inner().results.remove(0);
    assert_eq!(
        status_of(&result),
        RecordStatus::Ok,
        "the old set stays in force"
    );

    // A good change: forbid the licence. It applies without a restart.
    std::fs::remove_file(dir.join("broken.cedar"))?;
    std::fs::write(
        dir.join("forbid.cedar"),
        "@id(\"it-forbid-licence\")\nforbid (principal, action, resource in RecordType::\"driving_licence\");\n",
    )?;
    let reloaded = admin
        .reload_policies(ReloadPoliciesRequest {})
        .await?
        .into_inner();
    assert!(reloaded.changed);
    let active = reloaded.active.unwrap();
    assert_ne!(active.version, first.version);
    assert!(active.policy_ids.contains(&"it-forbid-licence".to_owned()));
    let result = hall.fetch(licence()).await?.into_inner().results.remove(0);
    assert_eq!(
        status_of(&result),
        RecordStatus::Denied,
        "forbid beats permit"
    );
    assert_eq!(result.policy_ids, vec!["it-forbid-licence"]);
    assert_eq!(result.policy_set_version, active.version);

    // Only an admin may reload.
    let mut requester = PolicyAdminClient::new(
        client::connect(gateway.addr(), &env.pki().requester(APPROVAL_HALL)).await?,
    );
    let refused = requester
        .reload_policies(ReloadPoliciesRequest {})
        .await
        .expect_err("not an admin");
    assert_eq!(refused.code(), Code::PermissionDenied);
    Ok(())
}

/// Waits until the gateway's active set differs from `version`.
async fn wait_for_new_version(
    admin: &mut PolicyAdminClient<tonic::transport::Channel>,
    version: &str,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = admin
            .get_policy_set(GetPolicySetRequest {})
            .await?
            .into_inner();
        if now.version != version {
            return Ok(now.version);
        }
        anyhow::ensure!(Instant::now() < deadline, "no reload within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_reloads() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let dir = env.write_policy_set("live", &[("hall.cedar", PERMIT_HALL_ALL)])?;
    let mut gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(dir.clone()),
            ..GatewayOptions::default()
        })
        .await?;
    let mut admin =
        PolicyAdminClient::new(client::connect(gateway.addr(), &env.pki().admin()).await?);
    let first = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner()
        .version;

    // A file change is picked up by the watcher.
    std::fs::write(
        dir.join("extra.cedar"),
        "@id(\"it-extra\")\nforbid (principal, action, resource in RecordType::\"exit_entry_record\");\n",
    )?;
    let second = wait_for_new_version(&mut admin, &first).await?;

    let set = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner();
    assert_eq!(set.version, second);
    assert!(set.policy_ids.contains(&"it-extra".to_owned()), "{set:?}");
    assert!(gateway.process().log_text().contains("policy set loaded"));
    Ok(())
}

/// With the watcher off, a changed file is not loaded until SIGHUP: the reload is the
/// signal's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_the_watcher() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let dir = env.write_policy_set("live", &[("hall.cedar", PERMIT_HALL_ALL)])?;
    let mut gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(dir.clone()),
            no_policy_watch: true,
            ..GatewayOptions::default()
        })
        .await?;
    let mut admin =
        PolicyAdminClient::new(client::connect(gateway.addr(), &env.pki().admin()).await?);
    let first = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner()
        .version;
    std::fs::write(
        dir.join("extra.cedar"),
        "@id(\"it-extra-2\")\nforbid (principal, action, resource in RecordType::\"exit_entry_record\");\n",
    )?;
    // Longer than the watcher's debounce: nothing may have reloaded on its own.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unchanged = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner();
    assert_eq!(unchanged.version, first, "reloaded without a trigger");

    let pid = gateway.process().pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    assert!(status.success());
    let second = wait_for_new_version(&mut admin, &first).await?;
    let set = admin
        .get_policy_set(GetPolicySetRequest {})
        .await?
        .into_inner();
    assert_eq!(set.version, second);
    assert!(set.policy_ids.contains(&"it-extra-2".to_owned()), "{set:?}");
    Ok(())
}

/// A grant reaching a type the catalog marks `not_shared` is a validation error at reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_of_a_not_shared_type_is_rejected() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    // The built-in catalog with the exit-entry record made `not_shared`.
    let catalog = env.dir().join("catalog");
    std::fs::create_dir_all(&catalog)?;
    for (name, text) in xgate_catalog::Catalog::builtin_files() {
        let text = if name.contains("public-security") {
            let mut doc: Value = serde_json::from_str(&text)?;
            for rt in doc["record_types"].as_array_mut().unwrap() {
                if rt["id"] == "exit_entry_record" {
                    rt["sharing_class"] = "not_shared".into();
                }
            }
            serde_json::to_string_pretty(&doc)?
        } else {
            text
        };
        std::fs::write(catalog.join(name), text)?;
    }
    let dir = env.write_policy_set("live", &[("hall.cedar", PERMIT_HALL_ALL)])?;
    let gateway = env
        .start_gateway(&GatewayOptions {
            policies_dir: Some(dir.clone()),
            catalog_dir: Some(catalog),
            ..GatewayOptions::default()
        })
        .await?;
    let mut admin =
        PolicyAdminClient::new(client::connect(gateway.addr(), &env.pki().admin()).await?);
    std::fs::write(
        dir.join("exit.cedar"),
        "@id(\"it-exit\")\npermit (principal, action, resource == View::\"exit_entry_record.full\");\n",
    )?;
    let status = admin
        .reload_policies(ReloadPoliciesRequest {})
        .await
        .expect_err("a not-shared grant");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let violations = xgate_proto::status::violations(&status);
    assert!(
        violations
            .iter()
            .any(|v| v.field.contains("exit.cedar:2:") && v.description.contains("not_shared")),
        "{violations:?}"
    );
    Ok(())
}

/// The policy author's tooling on the repository's policies, as CI runs it: `check` and
/// `test` pass; a broken file fails `check` with its file:line; `explain` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_test_and_explain_run_on_the_repository() -> anyhow::Result<()> {
    use xgate_integration_tests::kit::xgate;
    let repo = TestEnv::repo_policies();
    let check = xgate([
        "policy".into(),
        "check".into(),
        repo.clone().into_os_string(),
    ])
    .await?;
    assert!(check.success(), "{}", check.describe());
    assert!(check.stdout.contains("ok"), "{}", check.describe());

    let test = xgate([
        "policy".into(),
        "test".into(),
        repo.clone().into_os_string(),
    ])
    .await?;
    assert!(test.success(), "{}", test.describe());
    assert!(
        test.stdout.contains("0 failed, 0 policies uncovered"),
        "{}",
        test.describe()
    );

    let explain = xgate([
        "policy",
        "explain",
        "--requester",
        NO_GRANT,
        "--type",
        "real_estate_title",
        "--purpose",
        GENERAL_APPROVAL,
        repo.to_str().unwrap(),
    ])
    .await?;
    assert!(explain.success(), "{}", explain.describe());
    assert!(
        explain.stdout.contains("default deny"),
        "{}",
        explain.describe()
    );

    let env = TestEnv::new()?;
    let broken = env.write_policy_set(
        "broken",
        &[(
            "bad.cedar",
            "@id(\"x\")\npermit (principal, action, resource == View::\"nope.full\");\n",
        )],
    )?;
    let check = xgate(["policy".into(), "check".into(), broken.into_os_string()]).await?;
    assert!(!check.success(), "{}", check.describe());
    let out = format!("{}{}", check.stdout, check.stderr);
    assert!(out.contains("bad.cedar:2:"), "{}", check.describe());
    Ok(())
}
