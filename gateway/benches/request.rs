//! Hot-path pieces of a fetch inside the gateway, without the network:
//! request validation, the per-record check (JSON parse + schema + subject +
//! conversion to `Struct`), and encoding a full 63-type answer.

#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message as _;
use xgate::config::Limits;
use xgate_catalog::Catalog;
use xgate_proto::v1::{
    FetchRequest, FetchResponse, RecordResult, RecordStatus, Subject, SubjectKind,
};

const CITIZEN: &str = "341602197703051725";

fn licence() -> serde_json::Value {
    serde_json::json!({
        "id_number": CITIZEN,
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

fn benches(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("catalog");
    let personal: Vec<String> = catalog
        .record_types()
        .filter(|t| t.subject_kind == xgate_catalog::SubjectKind::ResidentId)
        .map(|t| t.id.clone())
        .collect();
    let request = FetchRequest {
        subject: Some(Subject {
            kind: SubjectKind::ResidentId as i32,
            id: CITIZEN.into(),
        }),
        record_types: personal.clone(),
        purpose: "GENERAL-APPROVAL".into(),
        case_id: "CASE-2026-0001".into(),
        operator_id: "operator-7".into(),
        ..FetchRequest::default()
    };
    let limits = Limits::default();
    let policies =
        xgate_policy::PolicySet::from_sources(&xgate_policy::PolicySet::builtin_files(), &catalog)
            .expect("the repository's policies");
    c.bench_function("validate_fetch_43_types", |b| {
        b.iter(|| {
            xgate::validate::fetch(black_box(&request), &catalog, &policies, &limits)
                .expect("valid")
        })
    });

    let rt = catalog.record_type("driving_licence").expect("type");
    let bytes = licence().to_string().into_bytes();
    c.bench_function("check_record_driving_licence", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(&bytes)).expect("json");
            rt.validate(&value).expect("valid");
            xgate_proto::json::object_to_struct(value).expect("object")
        })
    });

    let record = xgate_proto::json::object_to_struct(licence()).expect("object");
    let response = FetchResponse {
        request_id: "01a213d3-15ee-74b3-985a-e33c7a26aecb".into(),
        results: (0..63)
            .map(|i| RecordResult {
                record_type: format!("record_type_{i}"),
                department: "public-security".into(),
                status: RecordStatus::Ok as i32,
                records: vec![record.clone(); 2],
                provenance: None,
                error: String::new(),
                policy_ids: vec!["approval-hall-general-approval".into()],
                latency_us: 1234,
                view: "full".into(),
                value: None,
                policy_set_version: "sha256:0123456789abcdef".into(),
                ..RecordResult::default()
            })
            .collect(),
        // A receipt as every answer carries one.
        receipt: Some(xgate_proto::v1::AuditReceipt {
            chain: "0193f0a2-6c1e-7d2b-9a51-2f3c4d5e6f70".into(),
            index: 123_456,
            entry_hash: vec![7; 32],
            records_digest: vec![9; 32],
            signature: "ab".repeat(64),
            batch_first: 123_450,
            batch_size: 12,
            batch_path: vec![vec![5; 32]; 4],
        }),
    };
    c.bench_function("encode_fetch_response_63x2_records", |b| {
        b.iter(|| black_box(&response).encode_to_vec())
    });
}

criterion_group!(request, benches);
criterion_main!(request);
