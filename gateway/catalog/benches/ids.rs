//! Subject ID validation: runs on every request before anything else.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use xgate_catalog::ids;

fn bench_ids(c: &mut Criterion) {
    c.bench_function("validate_resident_id", |b| {
        b.iter(|| ids::validate_resident_id(black_box("11010519491231002X")))
    });
    c.bench_function("validate_uscc", |b| {
        b.iter(|| ids::validate_uscc(black_box("91350100M000100Y43")))
    });
    c.bench_function("validate_resident_id_bad_check", |b| {
        b.iter(|| ids::validate_resident_id(black_box("110105194912310023")))
    });
}

criterion_group!(benches, bench_ids);
criterion_main!(benches);
