//! The fetch pipeline: policy per record, fan-out to the adapters in
//! parallel under one deadline, schema check, merge.
//!
//! Order for each requested record type (see ARCHITECTURE.md):
//! policy decision -> (denied: DENIED, never fetched) -> route lookup
//! (none: NO_SOURCE) -> one call per adapter for all of its types ->
//! per-record schema and subject check -> release under the decision's
//! [`Permit`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt as _};
use tonic::Request;
use xgate_catalog::{Catalog, RecordType};
use xgate_policy::{AccessRequest, Permit, PolicySet};
use xgate_proto::v1::{
    LookupRequest, LookupStatus, Provenance, RecordResult, RecordStatus, Subject, TypeAnswer,
};

use crate::routing::{AdapterRoute, Routes};
use crate::validate::ValidFetch;

/// Everything a fetch needs, owned, so adapter calls can run as tasks.
pub struct FetchJob {
    pub request_id: String,
    pub requester: String,
    pub fetch: ValidFetch,
    /// When the whole fetch must be answered.
    pub deadline: Instant,
    /// Upper bound on any one adapter call.
    pub adapter_cap: Duration,
    pub started: Instant,
}

/// A result and its position in the request.
pub type Indexed = (usize, RecordResult);

/// A started fetch: the results known without calling anyone (denied, no
/// source), and one future per adapter call.
pub struct Plan {
    pub immediate: Vec<Indexed>,
    pub calls: FuturesUnordered<futures::future::BoxFuture<'static, Vec<Indexed>>>,
}

/// What one adapter call must fetch: the permitted types and their positions.
struct Item {
    index: usize,
    record_type: String,
    permit: Permit,
}

/// Decides every record type and groups the permitted ones by adapter.
pub fn plan(job: FetchJob, catalog: Arc<Catalog>, policies: &PolicySet, routes: &Routes) -> Plan {
    let job = Arc::new(job);
    let mut immediate = Vec::new();
    let mut per_adapter: HashMap<(String, String), (Arc<AdapterRoute>, Vec<Item>)> = HashMap::new();
    for (index, id) in job.fetch.record_types.iter().enumerate() {
        let department = catalog
            .record_type(id)
            .map(|rt| rt.department.clone())
            .unwrap_or_default();
        let decision = policies.decide(&AccessRequest {
            requester: &job.requester,
            record_type: id,
            // Until fetch plans views and items: the whole record, no item.
            view: xgate_catalog::FULL,
            purpose: &job.fetch.purpose,
            item: None,
            now: time::OffsetDateTime::now_utc(),
        });
        let Some(permit) = decision.permit() else {
            let error = if decision
                .policy_ids
                .iter()
                .any(|id| id == xgate_policy::DEFAULT_DENY)
            {
                format!(
                    "no policy permits this (default deny; policy set {})",
                    decision.policy_set_version
                )
            } else {
                format!(
                    "denied by policy {} (policy set {})",
                    decision.policy_ids.join(", "),
                    decision.policy_set_version
                )
            };
            let mut result = failed(id, &department, RecordStatus::Denied, error, &job);
            result.policy_ids = decision.policy_ids.clone();
            immediate.push((index, result));
            continue;
        };
        let Some(route) = routes.get(id) else {
            let mut result = failed(
                id,
                &department,
                RecordStatus::NoSource,
                format!("no adapter of `{department}` is registered"),
                &job,
            );
            result.policy_ids = permit.policy_ids().to_vec();
            immediate.push((index, result));
            continue;
        };
        per_adapter
            .entry((route.department.clone(), route.adapter_id.clone()))
            .or_insert_with(|| (Arc::clone(route), Vec::new()))
            .1
            .push(Item {
                index,
                record_type: id.clone(),
                permit,
            });
    }
    let calls = per_adapter
        .into_values()
        .map(|(route, items)| {
            let job = Arc::clone(&job);
            let catalog = Arc::clone(&catalog);
            Box::pin(async move { call(route, items, job, catalog).await })
                as futures::future::BoxFuture<'static, Vec<Indexed>>
        })
        .collect();
    Plan { immediate, calls }
}

/// Runs a plan to the end and returns the results in request order.
pub async fn collect(plan: Plan) -> Vec<RecordResult> {
    let Plan {
        mut immediate,
        mut calls,
    } = plan;
    while let Some(results) = calls.next().await {
        immediate.extend(results);
    }
    immediate.sort_by_key(|(index, _)| *index);
    immediate.into_iter().map(|(_, result)| result).collect()
}

fn failed(
    record_type: &str,
    department: &str,
    status: RecordStatus,
    error: String,
    job: &FetchJob,
) -> RecordResult {
    RecordResult {
        record_type: record_type.to_owned(),
        department: department.to_owned(),
        status: status as i32,
        records: Vec::new(),
        provenance: None,
        error,
        policy_ids: Vec::new(),
        latency_us: micros_since(job.started),
    }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One call to one adapter for all of its permitted types; every item gets
/// exactly one result, whatever happens.
async fn call(
    route: Arc<AdapterRoute>,
    items: Vec<Item>,
    job: Arc<FetchJob>,
    catalog: Arc<Catalog>,
) -> Vec<Indexed> {
    let department = route.department.clone();
    let now = Instant::now();
    let budget = job
        .deadline
        .saturating_duration_since(now)
        .min(job.adapter_cap);
    let fail_all = |status: RecordStatus, error: String| -> Vec<Indexed> {
        items
            .iter()
            .map(|item| {
                let mut result =
                    failed(&item.record_type, &department, status, error.clone(), &job);
                result.policy_ids = item.permit.policy_ids().to_vec();
                (item.index, result)
            })
            .collect()
    };
    let Some((endpoint, mut client)) = route.pick() else {
        return fail_all(
            RecordStatus::Unavailable,
            format!("adapter `{}` has no endpoint", route.adapter_id),
        );
    };
    if budget.is_zero() {
        return fail_all(
            RecordStatus::Unavailable,
            "the fetch deadline passed before the department was called".into(),
        );
    }
    let kind = xgate_proto::kind::to_proto(job.fetch.subject_kind);
    let mut request = Request::new(LookupRequest {
        subject: Some(Subject {
            kind: kind as i32,
            id: job.fetch.subject_id.clone(),
        }),
        record_types: items.iter().map(|i| i.record_type.clone()).collect(),
        request_id: job.request_id.clone(),
        purpose: job.fetch.purpose.clone(),
    });
    // Sent as grpc-timeout, so the adapter gives up when we do.
    request.set_timeout(budget);
    let answer = tokio::time::timeout(budget, client.lookup(request)).await;
    let retrieved_at = SystemTime::now();
    let response = match answer {
        Err(_) => {
            return fail_all(
                RecordStatus::Unavailable,
                format!(
                    "department `{department}` did not answer within {} ms",
                    budget.as_millis()
                ),
            );
        }
        Ok(Err(status)) => {
            tracing::warn!(department, adapter = route.adapter_id, code = ?status.code(), message = status.message(), "adapter call failed");
            let reason = if status.code() == tonic::Code::DeadlineExceeded
                || status.code() == tonic::Code::Cancelled
            {
                format!(
                    "department `{department}` did not answer within {} ms",
                    budget.as_millis()
                )
            } else {
                format!(
                    "department `{department}` unavailable: {}",
                    status.message()
                )
            };
            return fail_all(RecordStatus::Unavailable, reason);
        }
        Ok(Ok(response)) => response.into_inner(),
    };
    let provenance = Provenance {
        department: department.clone(),
        adapter_id: route.adapter_id.clone(),
        endpoint: endpoint.to_owned(),
        retrieved_at: Some(prost_types::Timestamp::from(retrieved_at)),
    };
    let mut answers: HashMap<String, TypeAnswer> = response
        .answers
        .into_iter()
        .map(|a| (a.record_type.clone(), a))
        .collect();
    items
        .into_iter()
        .map(|item| {
            let (status, records, error) = match (
                answers.remove(&item.record_type),
                catalog.record_type(&item.record_type),
            ) {
                (Some(answer), Some(rt)) => judge(answer, rt, &job.fetch, &item.permit),
                (None, _) => (
                    RecordStatus::Invalid,
                    Vec::new(),
                    format!(
                        "department `{department}` gave no answer for `{}`",
                        item.record_type
                    ),
                ),
                (Some(_), None) => (
                    RecordStatus::Invalid,
                    Vec::new(),
                    format!("record type `{}` left the catalog", item.record_type),
                ),
            };
            (
                item.index,
                RecordResult {
                    record_type: item.record_type,
                    department: department.clone(),
                    status: status as i32,
                    records,
                    provenance: Some(provenance.clone()),
                    error,
                    policy_ids: item.permit.policy_ids().to_vec(),
                    latency_us: micros_since(job.started),
                },
            )
        })
        .collect()
}

/// Turns one adapter answer into a status, the records to release (only when
/// every record is valid and about the subject), and an error text.
fn judge(
    answer: TypeAnswer,
    rt: &RecordType,
    fetch: &ValidFetch,
    permit: &Permit,
) -> (RecordStatus, Vec<prost_types::Struct>, String) {
    debug_assert_eq!(permit.record_type(), rt.id);
    match LookupStatus::try_from(answer.status) {
        Ok(LookupStatus::NotFound) => {
            return (RecordStatus::NotFound, Vec::new(), "no record".into());
        }
        Ok(LookupStatus::Error) => {
            return (
                RecordStatus::Unavailable,
                Vec::new(),
                format!("department error: {}", answer.error),
            );
        }
        Ok(LookupStatus::Found) => {}
        _ => {
            return (
                RecordStatus::Invalid,
                Vec::new(),
                format!("adapter sent unknown lookup status {}", answer.status),
            );
        }
    }
    if answer.records_json.is_empty() {
        return (RecordStatus::NotFound, Vec::new(), "no record".into());
    }
    let mut records = Vec::with_capacity(answer.records_json.len());
    for (i, bytes) in answer.records_json.iter().enumerate() {
        match check_record(bytes, rt, fetch) {
            Ok(record) => records.push(record),
            Err(why) => {
                tracing::warn!(
                    record_type = rt.id,
                    record = i,
                    error = why,
                    "adapter sent an invalid record; nothing of the type released"
                );
                return (
                    RecordStatus::Invalid,
                    Vec::new(),
                    format!("record {i}: {why}"),
                );
            }
        }
    }
    (RecordStatus::Ok, records, String::new())
}

fn check_record(
    bytes: &[u8],
    rt: &RecordType,
    fetch: &ValidFetch,
) -> Result<prost_types::Struct, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    rt.validate(&value)
        .map_err(|v| format!("breaks the `{}` schema: {v}", rt.id))?;
    // A record about somebody else must never be released, whatever the schema says.
    if let Some(owner) = value.get(fetch.subject_kind.record_field())
        && owner.as_str() != Some(fetch.subject_id.as_str())
    {
        return Err("belongs to another subject".into());
    }
    xgate_proto::json::object_to_struct(value).ok_or_else(|| "not a JSON object".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;
    use xgate_catalog::SubjectKind;

    const CITIZEN: &str = "341602197703051725";

    fn catalog() -> Catalog {
        Catalog::builtin().expect("catalog")
    }

    fn permit(catalog: &Catalog, record_type: &str) -> Permit {
        let policies = PolicySet::from_sources(
            &[(
                "all.cedar".into(),
                r#"@id("all") permit(principal, action, resource);"#.into(),
            )],
            catalog,
        )
        .expect("policy set");
        policies
            .decide(&AccessRequest {
                requester: "r",
                record_type,
                view: "full",
                purpose: "P",
                item: None,
                now: time::OffsetDateTime::now_utc(),
            })
            .permit()
            .expect("permitted")
    }

    fn fetch() -> ValidFetch {
        ValidFetch {
            subject_kind: SubjectKind::ResidentId,
            subject_id: CITIZEN.into(),
            record_types: vec!["driving_licence".into()],
            purpose: "P".into(),
            case_id: "c".into(),
            operator_id: "o".into(),
        }
    }

    /// A driving licence record the catalog schema accepts.
    fn licence(id_number: &str) -> serde_json::Value {
        json!({
            "id_number": id_number,
            "name": "张海燕",
            "file_no": "341600123456",
            "licence_class": "C1",
            "first_issue_date": "2005-06-01",
            "valid_from": "2021-06-01",
            "valid_until": "2031-06-01",
            "issuing_authority": "亳州市公安局交通警察支队",
            "penalty_points": 0,
            "status": "valid"
        })
    }

    fn answer(status: LookupStatus, records: Vec<Vec<u8>>) -> TypeAnswer {
        TypeAnswer {
            record_type: "driving_licence".into(),
            status: status as i32,
            records_json: records.into_iter().map(Bytes::from).collect(),
            error: "backend exploded".into(),
        }
    }

    fn judged(answer: TypeAnswer) -> (RecordStatus, usize, String) {
        let catalog = catalog();
        let rt = catalog.record_type("driving_licence").expect("type");
        let (status, records, error) =
            judge(answer, rt, &fetch(), &permit(&catalog, "driving_licence"));
        (status, records.len(), error)
    }

    fn valid_licence_bytes() -> Vec<u8> {
        let catalog = catalog();
        let rt = catalog.record_type("driving_licence").expect("type");
        let record = licence(CITIZEN);
        if let Err(v) = rt.validate(&record) {
            panic!("test record no longer matches the catalog: {v}");
        }
        record.to_string().into_bytes()
    }

    #[test]
    fn valid_records_are_released() {
        assert_eq!(
            judged(answer(LookupStatus::Found, vec![valid_licence_bytes()])),
            (RecordStatus::Ok, 1, String::new())
        );
    }

    #[test]
    fn not_found_and_empty_found_are_not_found() {
        assert_eq!(
            judged(answer(LookupStatus::NotFound, vec![])).0,
            RecordStatus::NotFound
        );
        assert_eq!(
            judged(answer(LookupStatus::Found, vec![])).0,
            RecordStatus::NotFound
        );
    }

    #[test]
    fn department_errors_are_unavailable_with_the_reason() {
        let (status, n, error) = judged(answer(LookupStatus::Error, vec![]));
        assert_eq!((status, n), (RecordStatus::Unavailable, 0));
        assert!(error.contains("backend exploded"), "{error}");
    }

    #[test]
    fn one_bad_record_withholds_the_whole_type() {
        let mut broken = licence(CITIZEN);
        broken["valid_from"] = json!("1977-02-30");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "not JSON"),
            (b"[1,2]".to_vec(), "schema"),
            (broken.to_string().into_bytes(), "`/valid_from`"),
            (
                licence("11010519491231002X").to_string().into_bytes(),
                "another subject",
            ),
        ];
        for (bad, why) in cases {
            let (status, n, error) = judged(answer(
                LookupStatus::Found,
                vec![valid_licence_bytes(), bad],
            ));
            assert_eq!((status, n), (RecordStatus::Invalid, 0), "{why}: {error}");
            assert!(error.starts_with("record 1: "), "{error}");
            assert!(error.contains(why), "{why}: {error}");
        }
    }

    #[test]
    fn masked_violations_do_not_repeat_personal_values() {
        let mut broken = licence(CITIZEN);
        broken["name"] = json!(12345);
        let (_, _, error) = judged(answer(
            LookupStatus::Found,
            vec![broken.to_string().into_bytes()],
        ));
        assert!(!error.contains("12345"), "{error}");
    }

    #[test]
    fn unknown_lookup_status_is_invalid() {
        let mut a = answer(LookupStatus::Found, vec![valid_licence_bytes()]);
        a.status = 42;
        assert_eq!(judged(a).0, RecordStatus::Invalid);
    }
}
