//! Decision cost with the repository's policies and catalog: one decision and the 63 a
//! demo fetch makes in a row (one per record type), each cold (the policies evaluated,
//! `decide_uncached`) and warm (answered by the set's memo, `decide`).
#![allow(
    clippy::expect_used,
    reason = "a benchmark that cannot load has nothing to measure"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use time::OffsetDateTime;
use xgate_policy::{AccessRequest, Catalog, PolicySet};

fn hall(record_type: &str, now: OffsetDateTime) -> AccessRequest<'_> {
    AccessRequest {
        requester: "approval-hall-demo",
        record_type,
        view: "full",
        purpose: "GENERAL-APPROVAL",
        item: None,
        now,
        explicit_request: false,
        consent: false,
        representation: "",
    }
}

fn decide(c: &mut Criterion) {
    let catalog = Catalog::builtin().expect("builtin catalog");
    let set =
        PolicySet::from_sources(&PolicySet::builtin_files(), &catalog).expect("builtin policies");
    let types: Vec<String> = catalog.record_types().map(|rt| rt.id.clone()).collect();
    // Office hours, so the time-dependent group grant is among the candidates.
    let now = time::macros::datetime!(2026-11-25 10:00 +8);
    let one = AccessRequest {
        requester: "provident-fund-bozhou",
        record_type: "real_estate_title",
        view: "summary",
        purpose: "PF-WITHDRAWAL",
        item: Some("PF-WITHDRAWAL"),
        now,
        explicit_request: false,
        consent: false,
        representation: "",
    };
    let timed = AccessRequest {
        requester: "provident-fund-bozhou",
        record_type: "resident_identity_card",
        view: "card_valid",
        purpose: "PF-LOAN",
        item: None,
        now,
        explicit_request: false,
        consent: false,
        representation: "",
    };

    c.bench_function("decide/one/cold", |b| {
        b.iter(|| set.decide_uncached(black_box(&one)))
    });
    c.bench_function("decide/one/warm", |b| {
        b.iter(|| set.decide(black_box(&one)))
    });
    c.bench_function("decide/one-time-dependent/cold", |b| {
        b.iter(|| set.decide_uncached(black_box(&timed)))
    });
    c.bench_function("decide/one-time-dependent/warm", |b| {
        b.iter(|| set.decide(black_box(&timed)))
    });
    c.bench_function("decide/63-types/cold", |b| {
        b.iter(|| {
            for record_type in &types {
                black_box(set.decide_uncached(black_box(&hall(record_type, now))));
            }
        })
    });
    c.bench_function("decide/63-types/warm", |b| {
        b.iter(|| {
            for record_type in &types {
                black_box(set.decide(black_box(&hall(record_type, now))));
            }
        })
    });
    c.bench_function("load/builtin", |b| {
        b.iter(|| PolicySet::from_sources(black_box(&PolicySet::builtin_files()), &catalog))
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
