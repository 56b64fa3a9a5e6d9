//! Checking one fetched record against its type's schema: runs for every record released.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use xgate_catalog::Catalog;

fn bench_schema(c: &mut Criterion) {
    let Ok(catalog) = Catalog::builtin() else {
        return;
    };
    let Some(record_type) = catalog.record_type("marriage_registration") else {
        return;
    };
    // About 200 bytes serialised.
    let record = json!({
        "certificate_no": "J340104-2015-001234",
        "id_number": "11010519491231002X",
        "name": "张伟",
        "spouse_name": "李娜",
        "spouse_id_number": "110105195003150027",
        "registration_date": "2015-05-20",
        "registration_authority": "合肥市蜀山区民政局",
        "status": "married"
    });
    assert!(record_type.is_valid(&record), "bench record must be valid");
    c.bench_function("is_valid_200b", |b| {
        b.iter(|| record_type.is_valid(black_box(&record)))
    });
    c.bench_function("validate_200b", |b| {
        b.iter(|| record_type.validate(black_box(&record)))
    });
    c.bench_function("catalog_builtin_load", |b| b.iter(Catalog::builtin));
}

criterion_group!(benches, bench_schema);
criterion_main!(benches);
