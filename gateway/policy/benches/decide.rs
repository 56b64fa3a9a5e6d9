//! Decision cost with the repository's policies and catalog: one decision, and the 63 a
//! demo fetch makes in a row (one per record type).
#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot load has nothing to measure"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use xgate_policy::{AccessRequest, Catalog, PolicySet};

fn decide(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("builtin catalog");
    let set =
        PolicySet::from_sources(&PolicySet::builtin_files(), &catalog).expect("builtin policies");
    let types: Vec<String> = catalog.record_types().map(|rt| rt.id.clone()).collect();

    c.bench_function("decide/one", |b| {
        b.iter(|| {
            set.decide(black_box(&AccessRequest {
                requester: "provident-fund-bozhou",
                record_type: "real_estate_title",
                purpose: "PF-WITHDRAWAL",
            }))
        })
    });

    c.bench_function("decide/63-in-a-row", |b| {
        b.iter(|| {
            for record_type in &types {
                let decision = set.decide(black_box(&AccessRequest {
                    requester: "approval-hall-demo",
                    record_type,
                    purpose: "GENERAL-APPROVAL",
                }));
                black_box(decision);
            }
        })
    });

    c.bench_function("load/builtin", |b| {
        b.iter(|| PolicySet::from_sources(black_box(&PolicySet::builtin_files()), &catalog))
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
