//! Fetching records end to end: the real gateway and adapters, plus in-process fixture adapters
//! that are slow, hang, die or send bad data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use xgate_catalog::SubjectKind;
use xgate_integration_tests::client::{
    self, by_type, describe, fetch_request, status_of, types_of, unconditional_types_of,
    with_timeout,
};
use xgate_integration_tests::fixture::FixtureDepartment;
use xgate_integration_tests::records::{self, personal_tax_records};
use xgate_integration_tests::{
    APPROVAL_HALL, DEPARTMENTS, FETCH_TIMEOUT, GENERAL_APPROVAL, GatewayOptions, TestEnv,
};
use xgate_proto::json::struct_to_json;
use xgate_proto::v1::{RecordResult, RecordStatus};

/// The policy of `policies/approval-hall-demo.cedar` that grants the approval hall.
const HALL_POLICY: &str = "approval-hall-general-approval";

fn subject_field(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::ResidentId => "id_number",
        SubjectKind::Uscc => "uscc",
    }
}

/// An OK result: records present, each valid against the catalog and about `subject`,
/// provenance naming the department's adapter at `endpoint`, retrieved during `window`.
fn assert_ok_result(
    env: &TestEnv,
    result: &RecordResult,
    kind: SubjectKind,
    subject: &str,
    endpoint: &str,
    window: (SystemTime, SystemTime),
) {
    let rt = env
        .catalog()
        .record_type(&result.record_type)
        .expect("a catalog type");
    let what = &result.record_type;
    assert_eq!(status_of(result), RecordStatus::Ok, "{what}: {result:?}");
    assert!(result.error.is_empty(), "{what}: {}", result.error);
    assert!(!result.records.is_empty(), "{what}: OK without records");
    for record in &result.records {
        let json = struct_to_json(record);
        if let Err(v) = rt.validate(&json) {
            panic!("{what}: record breaks the catalog schema: {v}\n{json:#}");
        }
        assert_eq!(
            json.get(subject_field(kind)).and_then(Value::as_str),
            Some(subject),
            "{what}: record about someone else: {json}"
        );
    }
    let provenance = result
        .provenance
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no provenance"));
    assert_eq!(provenance.department, rt.department, "{what}");
    assert_eq!(provenance.adapter_id, rt.department, "{what}");
    assert_eq!(provenance.endpoint, endpoint, "{what}");
    let retrieved: SystemTime = provenance
        .retrieved_at
        .unwrap_or_else(|| panic!("{what}: no retrieved_at"))
        .try_into()
        .expect("a representable timestamp");
    assert!(
        retrieved >= window.0 && retrieved <= window.1,
        "{what}: retrieved_at {retrieved:?} outside the fetch {window:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_of_the_three_departments_is_fetched_valid_with_provenance() -> anyhow::Result<()>
{
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let adapters = env.start_adapters(&DEPARTMENTS, &gateway).await?;
    let endpoint_of = |department: &str| {
        adapters
            .iter()
            .find(|a| a.department() == department)
            .map(|a| a.url())
    };
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let subjects = env.subjects().clone();
    // The citizen's consent lets the hall read her conditional types in full
    // too (policies/guards.cedar), so every type is fetched.
    let conditional: Vec<String> = env
        .catalog()
        .record_types()
        .filter(|t| t.sharing_class == xgate_catalog::SharingClass::Conditional)
        .map(|t| t.id.clone())
        .collect();
    client::consent(
        gateway.addr(),
        &env.pki().platform(),
        &subjects.citizen,
        APPROVAL_HALL,
        GENERAL_APPROVAL,
        conditional,
    )
    .await?;

    for (kind, subject) in [
        (SubjectKind::ResidentId, subjects.citizen.as_str()),
        (SubjectKind::Uscc, subjects.company.as_str()),
    ] {
        let types = types_of(env.catalog(), kind, None);
        let before = SystemTime::now();
        let response = client
            .fetch(with_timeout(
                fetch_request(kind, subject, &types, GENERAL_APPROVAL),
                FETCH_TIMEOUT,
            ))
            .await?
            .into_inner();
        let after = SystemTime::now();
        assert!(!response.request_id.is_empty());
        let answered: Vec<&str> = response
            .results
            .iter()
            .map(|r| r.record_type.as_str())
            .collect();
        assert_eq!(answered, types, "one result per type, in the order asked");

        let table = describe(&response.results);
        let mut ok = 0;
        for result in &response.results {
            let rt = env.catalog().record_type(&result.record_type).unwrap();
            assert_eq!(result.department, rt.department, "{table}");
            assert_eq!(result.policy_ids, vec![HALL_POLICY], "{table}");
            match endpoint_of(&rt.department) {
                Some(endpoint) => {
                    assert_ok_result(&env, result, kind, subject, &endpoint, (before, after));
                    ok += 1;
                }
                None => {
                    assert_eq!(
                        status_of(result),
                        RecordStatus::NoSource,
                        "{}:\n{table}",
                        result.record_type
                    );
                    assert!(result.records.is_empty() && result.provenance.is_none());
                    assert!(result.error.contains("no adapter"), "{}", result.error);
                }
            }
        }
        let expected_ok = DEPARTMENTS
            .iter()
            .map(|d| types_of(env.catalog(), kind, Some(d)).len())
            .sum::<usize>();
        assert_eq!(ok, expected_ok, "{table}");
    }

    // The gappy citizen owns no vehicle and no real estate: the departments say so.
    let wanted = ["motor_vehicle_registration", "real_estate_title"];
    let response = client
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &subjects.gappy_citizen,
                wanted,
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    assert_eq!(response.results.len(), wanted.len(), "{table}");
    for result in &response.results {
        assert_eq!(status_of(result), RecordStatus::NotFound, "{table}");
        assert!(result.records.is_empty(), "{table}");
        let provenance = result.provenance.as_ref().expect("the department answered");
        assert_eq!(provenance.department, result.department);
        assert_eq!(result.policy_ids, vec![HALL_POLICY]);
    }
    Ok(())
}

/// `records_as_json`: the same records as `Struct`s, as JSON bytes — and they are the bytes the
/// receipt's records digest covers, so the client can recompute what the gateway signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_as_json_are_the_records_the_receipt_signs() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let _adapters = env.start_adapters(&DEPARTMENTS, &gateway).await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let citizen = env.subjects().citizen.clone();
    let types: Vec<String> = DEPARTMENTS
        .iter()
        .flat_map(|d| unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some(d)))
        .collect();
    let ask = |as_json: bool| {
        let mut request =
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL);
        request.records_as_json = as_json;
        with_timeout(request, FETCH_TIMEOUT)
    };
    let as_structs = client.fetch(ask(false)).await?.into_inner();
    let as_json = client.fetch(ask(true)).await?.into_inner();
    assert_eq!(as_json.results.len(), types.len());
    let mut decisions = Vec::new();
    for (s, j) in as_structs.results.iter().zip(&as_json.results) {
        let what = &j.record_type;
        assert_eq!(status_of(j), RecordStatus::Ok, "{what}: {j:?}");
        assert!(
            j.records.is_empty(),
            "{what}: Struct records beside JSON ones"
        );
        assert!(
            s.records_json.is_empty(),
            "{what}: JSON records not asked for"
        );
        let parsed: Vec<Value> = j
            .records_json
            .iter()
            .map(|b| serde_json::from_slice(b).expect("a JSON record"))
            .collect();
        let structs: Vec<Value> = s.records.iter().map(struct_to_json).collect();
        assert!(!parsed.is_empty(), "{what}");
        assert_eq!(parsed.len(), structs.len(), "{what}");
        for (p, st) in parsed.iter().zip(&structs) {
            assert!(same_record(p, st), "{what}: {p} vs {st}");
            assert!(
                env.catalog().record_type(what).unwrap().validate(p).is_ok(),
                "{what}: {p}"
            );
        }
        decisions.push(xgate_audit::digest_records(
            j.records_json.iter().map(Vec::as_slice),
        ));
    }
    let receipt = as_json.receipt.expect("a receipt");
    assert_eq!(
        receipt.records_digest,
        xgate_audit::answer_digest(decisions.iter().map(Some)).to_vec(),
        "the digest recomputed from records_json is the one the gateway signed"
    );
    assert!(receipt.batch_size >= 1, "receipts are signed per batch");
    Ok(())
}

/// The same record, `Struct` numbers being doubles.
fn same_record(json: &Value, from_struct: &Value) -> bool {
    match (json, from_struct) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_record(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same_record(v, w))
        }
        _ => json == from_struct,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_stream_delivers_fast_departments_before_a_slow_one() -> anyhow::Result<()> {
    const DELAY: Duration = Duration::from_millis(1500);
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let _public_security = env.start_adapter("public-security", &gateway).await?;
    let mut slow_tax = FixtureDepartment::new("tax").delayed(DELAY);
    for (record_type, record) in personal_tax_records() {
        slow_tax = slow_tax.serving(record_type, vec![record]);
    }
    let tax = env.start_fixture(slow_tax, &gateway).await?;

    let citizen = env.subjects().citizen.clone();
    let tax_types = unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some("tax"));
    let ps_types = unconditional_types_of(
        env.catalog(),
        SubjectKind::ResidentId,
        Some("public-security"),
    );
    // The slow department's types first: the stream's order must not be the request's.
    let types: Vec<String> = tax_types.iter().chain(&ps_types).cloned().collect();
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let started = Instant::now();
    let mut stream = client
        .fetch_stream(with_timeout(
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let mut arrivals: Vec<(Duration, RecordResult)> = Vec::new();
    let mut request_ids = BTreeSet::new();
    while let Some(item) = stream.message().await? {
        request_ids.insert(item.request_id);
        arrivals.push((started.elapsed(), item.result.expect("a result")));
    }
    let results: Vec<RecordResult> = arrivals.iter().map(|(_, r)| r.clone()).collect();
    let table = arrivals
        .iter()
        .map(|(t, r)| {
            format!(
                "{:>6} ms  {}",
                t.as_millis(),
                describe(std::slice::from_ref(r))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");

    assert_eq!(request_ids.len(), 1, "one request id: {request_ids:?}");
    assert!(request_ids.iter().all(|id| !id.is_empty()));
    let streamed: BTreeSet<&str> = results.iter().map(|r| r.record_type.as_str()).collect();
    let asked: BTreeSet<&str> = types.iter().map(String::as_str).collect();
    assert_eq!(streamed, asked, "{table}");
    assert_eq!(
        results.len(),
        types.len(),
        "each type exactly once:\n{table}"
    );

    let last_fast = results
        .iter()
        .rposition(|r| r.department == "public-security")
        .expect("public-security results");
    let first_slow = results
        .iter()
        .position(|r| r.department == "tax")
        .expect("tax results");
    assert!(
        last_fast < first_slow,
        "public-security results must all arrive before any tax result:\n{table}"
    );
    for (elapsed, result) in &arrivals {
        assert_eq!(status_of(result), RecordStatus::Ok, "{table}");
        if result.department == "tax" {
            assert!(
                *elapsed >= DELAY,
                "a tax result came before the fixture's delay:\n{table}"
            );
            let rt = env.catalog().record_type(&result.record_type).unwrap();
            assert_eq!(result.records.len(), 1, "{table}");
            let record = struct_to_json(&result.records[0]);
            rt.validate(&record).unwrap();
            assert_eq!(record["id_number"], citizen.as_str());
        }
    }
    assert_eq!(tax.lookups(), tax_types.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_adapter_makes_only_its_records_unavailable() -> anyhow::Result<()> {
    let env = TestEnv::new()?;
    // Without the record cache, which would rightly serve the first fetch's records again.
    let gateway = env
        .start_gateway(&GatewayOptions {
            extra_toml: "[cache]\nenabled = false\n".into(),
            ..GatewayOptions::default()
        })
        .await?;
    let mut adapters = env.start_adapters(&DEPARTMENTS, &gateway).await?;
    let citizen = env.subjects().citizen.clone();
    let types: Vec<String> = DEPARTMENTS
        .iter()
        .flat_map(|d| unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some(d)))
        .collect();
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let request = fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL);

    // First with every adapter alive, so the gateway holds a live connection to each.
    let before = client
        .fetch(with_timeout(request.clone(), FETCH_TIMEOUT))
        .await?
        .into_inner();
    let table = describe(&before.results);
    assert!(
        before
            .results
            .iter()
            .all(|r| status_of(r) == RecordStatus::Ok),
        "{table}"
    );

    let tax = adapters
        .iter_mut()
        .find(|a| a.department() == "tax")
        .expect("tax adapter");
    tax.kill().await?;

    let after = client
        .fetch(with_timeout(request, FETCH_TIMEOUT))
        .await?
        .into_inner();
    let table = describe(&after.results);
    assert_eq!(after.results.len(), types.len(), "{table}");
    for result in &after.results {
        if result.department == "tax" {
            assert_eq!(status_of(result), RecordStatus::Unavailable, "{table}");
            assert!(result.records.is_empty(), "{table}");
            assert!(
                result.error.contains("`tax`"),
                "the error names the department: {}",
                result.error
            );
            assert_eq!(result.policy_ids, vec![HALL_POLICY]);
        } else {
            assert_eq!(status_of(result), RecordStatus::Ok, "{table}");
            assert!(!result.records.is_empty(), "{table}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_adapter_is_unavailable_within_the_callers_deadline() -> anyhow::Result<()> {
    // The gateway keeps a tenth of the caller's deadline to seal and send its answer.
    const DEADLINE: Duration = Duration::from_millis(2000);
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let _public_security = env.start_adapter("public-security", &gateway).await?;
    let mut hanging = FixtureDepartment::new("tax").hanging();
    for (record_type, record) in personal_tax_records() {
        hanging = hanging.serving(record_type, vec![record]);
    }
    let tax = env.start_fixture(hanging, &gateway).await?;

    let citizen = env.subjects().citizen.clone();
    let types: Vec<String> = ["public-security", "tax"]
        .iter()
        .flat_map(|d| unconditional_types_of(env.catalog(), SubjectKind::ResidentId, Some(d)))
        .collect();
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let started = Instant::now();
    let response = client
        .fetch(with_timeout(
            fetch_request(SubjectKind::ResidentId, &citizen, &types, GENERAL_APPROVAL),
            DEADLINE,
        ))
        .await;
    let elapsed = started.elapsed();
    let response = match response {
        Ok(response) => response.into_inner(),
        Err(status) => panic!(
            "the gateway did not answer within the caller's {} ms deadline ({} ms): {status:?}",
            DEADLINE.as_millis(),
            elapsed.as_millis()
        ),
    };
    assert!(
        elapsed < DEADLINE,
        "answered after {} ms",
        elapsed.as_millis()
    );
    // It waited for the hanging department until (nearly) the deadline, not less.
    assert!(
        elapsed >= DEADLINE * 3 / 4,
        "answered after only {} ms",
        elapsed.as_millis()
    );
    assert!(tax.lookups() > 0, "the hanging adapter was never called");
    let table = describe(&response.results);
    assert_eq!(response.results.len(), types.len(), "{table}");
    for result in &response.results {
        if result.department == "tax" {
            assert_eq!(status_of(result), RecordStatus::Unavailable, "{table}");
            assert!(result.records.is_empty());
            assert!(
                result.error.contains("did not answer within"),
                "{}",
                result.error
            );
        } else {
            assert_eq!(status_of(result), RecordStatus::Ok, "{table}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_break_the_schema_or_concern_another_subject_are_not_released()
-> anyhow::Result<()> {
    let env = TestEnv::new()?;
    let gateway = env.start_gateway(&GatewayOptions::default()).await?;
    let subjects = env.subjects().clone();

    let mut missing_amount = records::tax_payment_certificate();
    missing_amount.as_object_mut().unwrap().remove("amount_cny");
    let mut wrong_type = records::individual_income_tax_record();
    wrong_type["gross_income_cny"] = Value::String("a lot".into());
    let other_subject = records::about(
        records::no_tax_arrears_certificate(),
        &subjects.gappy_citizen,
    );
    let bad_tax = FixtureDepartment::new("tax")
        // One valid record beside a broken one: nothing of the type may be released.
        .serving(
            "tax_payment_certificate",
            vec![records::tax_payment_certificate(), missing_amount],
        )
        .serving("individual_income_tax_record", vec![wrong_type])
        .serving("no_tax_arrears_certificate", vec![other_subject]);
    let _tax = env.start_fixture(bad_tax, &gateway).await?;

    let types = [
        "tax_payment_certificate",
        "individual_income_tax_record",
        "no_tax_arrears_certificate",
    ];
    // The arrears certificate is conditional: the citizen's consent lets
    // the hall read it (and so the gateway check what the adapter sent).
    client::consent(
        gateway.addr(),
        &env.pki().platform(),
        &subjects.citizen,
        APPROVAL_HALL,
        GENERAL_APPROVAL,
        vec!["no_tax_arrears_certificate".into()],
    )
    .await?;
    let mut client = env.exchange(gateway.addr(), APPROVAL_HALL).await?;
    let response = client
        .fetch(with_timeout(
            fetch_request(
                SubjectKind::ResidentId,
                &subjects.citizen,
                types,
                GENERAL_APPROVAL,
            ),
            FETCH_TIMEOUT,
        ))
        .await?
        .into_inner();
    let table = describe(&response.results);
    let results = by_type(&response.results);
    for (record_type, problem) in [
        ("tax_payment_certificate", "amount_cny"),
        ("individual_income_tax_record", "gross_income_cny"),
        ("no_tax_arrears_certificate", "another subject"),
    ] {
        let result = results
            .get(record_type)
            .unwrap_or_else(|| panic!("no result for {record_type}:\n{table}"));
        assert_eq!(status_of(result), RecordStatus::Invalid, "{table}");
        assert!(result.records.is_empty(), "{record_type}: released records");
        assert!(
            result.error.contains(problem),
            "{record_type}: the error should name `{problem}`: {}",
            result.error
        );
        assert_eq!(
            result.provenance.as_ref().map(|p| p.department.as_str()),
            Some("tax")
        );
    }
    assert!(
        results["tax_payment_certificate"]
            .error
            .starts_with("record 1:"),
        "the broken record is the second: {}",
        results["tax_payment_certificate"].error
    );
    Ok(())
}
