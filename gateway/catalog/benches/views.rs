//! View filtering: runs on every released record type (a field view cuts each record, a
//! predicate answers yes/no over the records).

#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use time::macros::date;
use xgate_catalog::Catalog;
use xgate_catalog::views::ViewOutput;

fn bench_views(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("catalog");
    let card = catalog
        .record_type("resident_identity_card")
        .expect("resident_identity_card");
    let record = json!({
        "id_number": "11010519491231002X",
        "name": "张伟",
        "gender": "male",
        "ethnicity": "汉",
        "birth_date": "1949-12-31",
        "address": "安徽省亳州市谯城区示例路1号",
        "issuing_authority": "亳州市公安局谯城分局",
        "valid_from": "2016-01-01",
        "valid_until": "2036-01-01",
        "status": "valid"
    });
    let records = vec![record];
    let today = date!(2026 - 06 - 30);
    let none = BTreeMap::new();

    let summary = card.view("summary").expect("summary view");
    let out = summary.apply(&records, &none, today).expect("apply");
    assert!(
        matches!(&out, ViewOutput::Records(r) if r.len() == 1),
        "a field view gives one record per record: {out:?}"
    );
    c.bench_function("view_fields_summary_1_record", |b| {
        b.iter(|| summary.apply(black_box(&records), &none, today))
    });

    let age = card.view("age_at_least").expect("age_at_least view");
    let params = BTreeMap::from([("n".to_owned(), "60".to_owned())]);
    let out = age.apply(&records, &params, today).expect("apply");
    assert_eq!(
        out,
        ViewOutput::Value(json!(true)),
        "born 1949: at least 60"
    );
    c.bench_function("view_predicate_age_at_least_1_record", |b| {
        b.iter(|| age.apply(black_box(&records), &params, today))
    });
}

criterion_group!(benches, bench_views);
criterion_main!(benches);
