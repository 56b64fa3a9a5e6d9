//! The conformance kit (`xgate adapter check`) against every adapter of the repository and
//! against misbehaving ones, and the onboarding flow (`xgate certs issue`, `xgate adapter
//! register | list | deregister`) run with the real binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use tokio::process::Command;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{describe, fetch_request, status_of, with_timeout};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::kit::{
    BlockingDepartment, SdkAdapter, check_adapter, registered_endpoints, tls_args, xgate,
};
use xgate_integration_tests::process::{AdapterProcess, Process};
use xgate_integration_tests::records::{individual_income_tax_record, no_tax_arrears_certificate};
use xgate_integration_tests::{
    APPROVAL_HALL, DEPARTMENTS, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, TestEnv, bins,
};
use xgate_proto::v1::RecordStatus;

/// The generic SQL adapter serving each of the 17 demo departments from its seeded
/// database and mapping passes the kit, given the sample subjects with `--subject`
/// (a mapping names no sample subjects of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_adapter_passes_the_kit_for_every_demo_department() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let data = env.dir().join("sql-data");
    std::fs::create_dir_all(&data)?;
    AdapterProcess::seed_demo_data(&data, &env.dir().join("seed.log")).await?;
    let departments: Vec<String> = xgate_demo_data::DEPARTMENTS
        .iter()
        .map(|d| d.id.to_owned())
        .collect();
    assert_eq!(departments.len(), 17);
    let (citizen, company) = (&env.subjects().citizen, &env.subjects().company);
    for department in &departments {
        let adapter = AdapterProcess::start_sql(
            department,
            &data.join(format!("{department}.db")),
            &env.pki().department(department),
            None,
            &env.dir().join(format!("sql-{department}.log")),
        )
        .await?;
        let output = check_adapter(
            &adapter.url(),
            department,
            &env.pki().admin(),
            &[citizen.as_str(), company.as_str()],
        )
        .await?;
        let report = output.describe();
        assert!(output.success(), "{department}: {report}");
        assert!(!output.stdout.contains("FAIL"), "{report}");
        for rt in env.catalog().types_of_department(department) {
            let row = output
                .row(&format!("records: {} ", rt.id))
                .unwrap_or_else(|| panic!("no row for {}: {report}", rt.id));
            assert!(row.contains("PASS"), "{row}");
        }
    }
    Ok(())
}

/// The repository's adapter binaries pass the kit with the subjects their Describe names
/// (no `--subject`), checked with the operator's (admin) certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_in_the_repository_passes_the_kit() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let adapters = env.start_adapters(&DEPARTMENTS, &gateway).await?;
    for adapter in &adapters {
        let output = check_adapter(
            &adapter.url(),
            adapter.department(),
            &env.pki().admin(),
            &[],
        )
        .await?;
        let report = output.describe();
        assert!(output.success(), "{}: {report}", adapter.department());
        assert!(output.stdout.contains("checks passed"), "{report}");
        assert!(!output.stdout.contains("FAIL"), "{report}");
        // One records row per catalog type of the department, each passing.
        for rt in env.catalog().types_of_department(adapter.department()) {
            let row = output
                .row(&format!("records: {} ", rt.id))
                .unwrap_or_else(|| panic!("no row for {}: {report}", rt.id));
            assert!(row.contains("PASS"), "{row}");
        }
        for check in [
            "connect",
            "health",
            "describe",
            "unknown subject",
            "malformed ID",
            "deadline",
            "trace context",
        ] {
            let row = output
                .row(check)
                .unwrap_or_else(|| panic!("no `{check}` row: {report}"));
            assert!(row.contains("PASS"), "{row}");
        }
        // No plain ID number of the sample subjects in the output.
        for id in [&env.subjects().citizen, &env.subjects().company] {
            assert!(!output.stdout.contains(id.as_str()), "{report}");
        }
    }
    Ok(())
}

/// The kit refuses to talk to an adapter whose certificate is another department's, and a
/// client certificate the adapter does not let in fails the describe row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_checks_who_the_adapter_is_and_who_may_call_it() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let adapter = env.start_adapter("tax", &gateway).await?;

    let output =
        check_adapter(&adapter.url(), "natural-resources", &env.pki().admin(), &[]).await?;
    assert!(!output.success(), "{}", output.describe());
    let row = output.row("connect").expect("connect row");
    assert!(row.contains("FAIL"), "{row}");
    assert!(
        row.contains("xgate://department/natural-resources"),
        "{row}"
    );

    // Health is open to any client of the CA; the adapter service is not.
    let requester = env.pki().requester(APPROVAL_HALL);
    let output = check_adapter(&adapter.url(), "tax", &requester, &[]).await?;
    assert!(!output.success(), "{}", output.describe());
    let row = output.row("describe").expect("describe row");
    assert!(
        row.contains("FAIL") && row.contains("PermissionDenied"),
        "{row}"
    );
    Ok(())
}

/// A fixture adapter answering a schema-invalid record fails the records row of that type
/// (and only that type's records row); the exit code is non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_invalid_record_fails_its_row() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let mut broken = individual_income_tax_record();
    broken["gross_income_cny"] = "a lot".into();
    let dept = FixtureDepartment::new("tax")
        .serving(
            "no_tax_arrears_certificate",
            vec![no_tax_arrears_certificate()],
        )
        .serving("individual_income_tax_record", vec![broken]);
    let _fixture = env.start_fixture(dept, &gateway).await?;
    let endpoint = registered_endpoints(&env, gateway.addr(), "tax")
        .await?
        .pop()
        .expect("the fixture registered an endpoint");

    let citizen = env.subjects().citizen.clone();
    let output = check_adapter(&endpoint, "tax", &env.pki().admin(), &[&citizen]).await?;
    let report = output.describe();
    assert!(!output.success(), "{report}");
    let row = output
        .row("records: individual_income_tax_record")
        .expect("row of the broken type");
    assert!(row.contains("FAIL"), "{row}");
    assert!(
        row.contains("breaks the `individual_income_tax_record` schema"),
        "{row}"
    );
    assert!(row.contains("gross_income_cny"), "{row}");
    let good = output
        .row("records: no_tax_arrears_certificate")
        .expect("row of the good type");
    assert!(good.contains("PASS"), "{good}");
    assert!(output.stderr.contains("checks failed"), "{report}");
    assert!(!output.stdout.contains(citizen.as_str()), "{report}");
    Ok(())
}

/// An adapter whose lookups block past the grpc-timeout fails the deadline rows (the default
/// 100 ms and the tight 1 ms probe), and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adapter_ignoring_deadlines_fails_the_deadline_row() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let citizen = env.subjects().citizen.clone();
    let dept = BlockingDepartment {
        department: "tax".into(),
        records: BTreeMap::from([(
            "no_tax_arrears_certificate".to_owned(),
            vec![no_tax_arrears_certificate()],
        )]),
        subject: citizen.clone(),
        block: Duration::from_millis(1500),
    };
    let _adapter = SdkAdapter::spawn(dept, &env.pki().department("tax"), &gateway.url());
    env.wait_for_sources(gateway.addr(), &["no_tax_arrears_certificate".to_owned()])
        .await?;
    let endpoint = registered_endpoints(&env, gateway.addr(), "tax")
        .await?
        .pop()
        .expect("registered");

    let output = check_adapter(&endpoint, "tax", &env.pki().admin(), &[&citizen]).await?;
    let report = output.describe();
    assert!(!output.success(), "{report}");
    for check in ["deadline (100 ms)", "deadline (1 ms)"] {
        let row = output.row(check).expect("deadline row");
        assert!(row.contains("FAIL"), "{row}");
        assert!(row.contains("ignored"), "{row}");
    }
    let failed: Vec<&str> = output
        .stdout
        .lines()
        .filter(|l| l.contains(" FAIL "))
        .collect();
    assert_eq!(failed.len(), 2, "{report}");
    assert!(output.stderr.contains("2 of"), "{report}");
    Ok(())
}

/// `--subject` must be a valid ID: bad input is refused before any check runs.
#[tokio::test]
async fn a_malformed_subject_flag_is_refused() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let output = check_adapter(
        "https://127.0.0.1:9",
        "tax",
        &env.pki().admin(),
        &["11010519491231002Y"],
    )
    .await?;
    assert!(!output.success(), "{}", output.describe());
    assert!(output.stderr.contains("--subject"), "{}", output.describe());
    assert!(
        !output.stderr.contains("11010519491231002Y"),
        "{}",
        output.describe()
    );
    Ok(())
}

/// Onboarding from the department's side: a certificate from the dev CA, the adapter started
/// without `--gateway`, `adapter register`, `adapter list`, a fetch through the gateway,
/// `adapter deregister`; a registration with another department's type is refused with the
/// gateway's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_issue_register_list_fetch_deregister() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let gateway_url = gateway.url();
    let pki_dir = env.pki().ca().parent().expect("pki folder").to_owned();
    let out = env.dir().join("tax-it");

    // 1. The department's certificate.
    let issued = xgate([
        OsString::from("certs"),
        "issue".into(),
        "--dir".into(),
        pki_dir.clone().into(),
        "--out".into(),
        out.clone().into(),
        "--department".into(),
        "tax".into(),
    ])
    .await?;
    assert!(issued.success(), "{}", issued.describe());
    let tls = xgate_tls::TlsFiles {
        cert: out.join("department-tax.pem"),
        key: out.join("department-tax-key.pem"),
        ca: env.pki().ca().to_owned(),
    };
    assert_eq!(
        tls.identity()?,
        xgate_tls::Identity::Department("tax".into())
    );
    assert!(
        issued.stdout.contains("department-tax.pem"),
        "{}",
        issued.describe()
    );

    // 2. The adapter, started on its own (no --gateway), checked before registering.
    let db = env.dir().join("data").join("tax.db");
    AdapterProcess::seed("tax", &db, &env.dir().join("logs").join("seed-tax.log")).await?;
    let mut command = Command::new(bins::binary(&bins::adapter_name("tax"))?);
    command
        .arg("serve")
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .args(tls_args(&tls));
    let (_adapter, addr) = Process::start(
        "xgate-adapter-tax serve",
        command,
        &env.dir().join("logs").join("adapter-tax.log"),
    )
    .await?;
    let endpoint = format!("https://{addr}");
    let checked = check_adapter(&endpoint, "tax", &env.pki().admin(), &[]).await?;
    assert!(checked.success(), "{}", checked.describe());

    let client_args = |command: &str| -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "adapter".into(),
            command.into(),
            "--gateway".into(),
            gateway_url.clone().into(),
        ];
        args.extend(tls_args(&tls));
        args
    };

    // 3. A registration with another department's type is refused with the reason.
    let mut foreign = client_args("register");
    foreign.extend([
        "--endpoint".into(),
        endpoint.clone().into(),
        "--types".into(),
        "tax_registration,real_estate_title".into(),
    ]);
    let refused = xgate(foreign).await?;
    assert!(!refused.success(), "{}", refused.describe());
    assert!(refused.stderr.contains("refused"), "{}", refused.describe());
    assert!(
        refused
            .stderr
            .contains("`real_estate_title` belongs to department `natural-resources`"),
        "{}",
        refused.describe()
    );

    let mut unknown = client_args("register");
    unknown.extend([
        "--endpoint".into(),
        endpoint.clone().into(),
        "--types".into(),
        "tax_registration,no_such_type".into(),
    ]);
    let refused = xgate(unknown).await?;
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused
            .stderr
            .contains("record_types[1]: unknown record type `no_such_type`"),
        "{}",
        refused.describe()
    );

    // 4. Register every catalog type of the department (the default).
    let mut register = client_args("register");
    register.extend(["--endpoint".into(), endpoint.clone().into()]);
    let registered = xgate(register).await?;
    assert!(registered.success(), "{}", registered.describe());
    assert!(
        registered.stdout.contains("tax/tax"),
        "{}",
        registered.describe()
    );

    // 5. The operator's list shows it.
    let mut list: Vec<OsString> = vec![
        "adapter".into(),
        "list".into(),
        "--gateway".into(),
        gateway_url.clone().into(),
    ];
    list.extend(tls_args(&env.pki().admin()));
    let listed = xgate(list.clone()).await?;
    assert!(listed.success(), "{}", listed.describe());
    assert!(listed.stdout.contains("tax/tax"), "{}", listed.describe());
    assert!(listed.stdout.contains(&endpoint), "{}", listed.describe());

    // 6. A fetch through the gateway reaches the adapter.
    let tax_types: Vec<String> = env
        .catalog()
        .types_of_department("tax")
        .filter(|t| t.subject_kind == SubjectKind::Uscc)
        .map(|t| t.id.clone())
        .collect();
    env.wait_for_sources(gateway.addr(), &tax_types).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = client
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::Uscc,
                &env.subjects().company,
                tax_types.clone(),
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    assert_eq!(response.results.len(), tax_types.len(), "{table}");
    // Policy may deny a type; none may lack a source or an answer.
    for result in &response.results {
        let status = status_of(result);
        assert!(
            status != RecordStatus::NoSource && status != RecordStatus::Unavailable,
            "{table}"
        );
    }
    assert!(
        response
            .results
            .iter()
            .any(|r| status_of(r) == RecordStatus::Ok),
        "{table}"
    );

    // 6b. Registering fewer types without --replace is refused, naming what
    // would be dropped; with --replace it takes effect and says what changed,
    // with a new registration time.
    let registered_line = |stdout: &str| -> String {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with("registered:"))
            .unwrap_or_default()
            .to_owned()
    };
    let before = registered_line(&listed.stdout);
    let mut fewer = client_args("register");
    fewer.extend([
        "--endpoint".into(),
        endpoint.clone().into(),
        "--types".into(),
        "tax_registration".into(),
    ]);
    let refused = xgate(fewer.clone()).await?;
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused.stderr.contains("FailedPrecondition")
            && refused.stderr.contains("`individual_income_tax_record`")
            && refused.stderr.contains("--replace"),
        "{}",
        refused.describe()
    );
    let unchanged = xgate(list.clone()).await?;
    assert_eq!(
        registered_line(&unchanged.stdout),
        before,
        "{}",
        unchanged.describe()
    );
    fewer.push("--replace".into());
    let replaced = xgate(fewer).await?;
    assert!(replaced.success(), "{}", replaced.describe());
    assert!(
        replaced
            .stdout
            .contains("replacing the previous registration")
            && replaced.stdout.contains("types removed: ")
            && replaced.stdout.contains("individual_income_tax_record"),
        "{}",
        replaced.describe()
    );
    let after = xgate(list.clone()).await?;
    assert!(
        after.stdout.contains("types:      tax_registration\n"),
        "{}",
        after.describe()
    );
    assert_ne!(
        registered_line(&after.stdout),
        before,
        "{}",
        after.describe()
    );

    // 7. Deregister; the list no longer shows it, and a second deregister says so.
    let deregistered = xgate(client_args("deregister")).await?;
    assert!(deregistered.success(), "{}", deregistered.describe());
    let listed = xgate(list).await?;
    assert!(listed.success(), "{}", listed.describe());
    assert!(!listed.stdout.contains("tax/tax"), "{}", listed.describe());
    let again = xgate(client_args("deregister")).await?;
    assert!(!again.success(), "{}", again.describe());
    assert!(
        again.stderr.contains("not registered"),
        "{}",
        again.describe()
    );
    Ok(())
}
