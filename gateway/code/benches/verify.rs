//! What a subject code costs the gateway per call: verifying one (base45,
//! COSE_Sign1 and CWT decoding, one Ed25519 verification, the claim
//! checks), against issue #15's target of 50 µs; and issuing one, the
//! identity platform's side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use xgate_catalog::SubjectKind;
use xgate_code::{Issuer, Scope, Verifier};

fn codes(c: &mut Criterion) {
    let issuer = Issuer::from_pkcs8("province-identity", &Issuer::generate_pkcs8().expect("key"))
        .expect("issuer");
    let mut verifier = Verifier::new();
    verifier
        .trust("province-identity", &issuer.public_key_hex())
        .expect("trust");
    let scope = Scope {
        requester: Some("approval-hall-demo".into()),
        purpose: Some("GENERAL-APPROVAL".into()),
        approval_item: None,
        record_types: vec!["real_estate_title".into(), "marriage_registration".into()],
    };
    let now = 1_800_000_000;
    let token = issuer
        .issue(
            SubjectKind::ResidentId,
            "110101199003077571",
            300,
            &scope,
            now,
        )
        .expect("issue");
    c.bench_function("code/verify", |b| {
        b.iter(|| {
            verifier
                .verify(std::hint::black_box(&token), now)
                .expect("valid")
        });
    });
    c.bench_function("code/issue", |b| {
        b.iter(|| {
            issuer
                .issue(
                    SubjectKind::ResidentId,
                    "110101199003077571",
                    300,
                    &scope,
                    now,
                )
                .expect("issue")
        });
    });
}

criterion_group!(benches, codes);
criterion_main!(benches);
