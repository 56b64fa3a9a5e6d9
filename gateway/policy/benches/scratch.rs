#![allow(clippy::unwrap_used, clippy::expect_used)]
use cedar_policy::*;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::str::FromStr;
use xgate_policy::{AccessRequest, Catalog, PolicySet as PS};

fn scratch(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap();
    let set = PS::from_sources(&PS::builtin_files(), &catalog).unwrap();
    let req_t = EntityTypeName::from_str("Requester").unwrap();
    let rt_t = EntityTypeName::from_str("RecordType").unwrap();
    let act = EntityUid::from_str("Action::\"read\"").unwrap();
    c.bench_function("uid", |b| {
        b.iter(|| {
            EntityUid::from_type_name_and_id(
                req_t.clone(),
                EntityId::new(black_box("provident-fund-bozhou")),
            )
        })
    });
    c.bench_function("context", |b| {
        b.iter(|| {
            Context::from_pairs([(
                "purpose".to_owned(),
                RestrictedExpression::new_string(black_box("PF-WITHDRAWAL").to_owned()),
            )])
            .unwrap()
        })
    });
    let res = EntityUid::from_type_name_and_id(rt_t.clone(), EntityId::new("real_estate_title"));
    let p = EntityUid::from_type_name_and_id(req_t.clone(), EntityId::new("provident-fund-bozhou"));
    c.bench_function("request", |b| {
        b.iter(|| {
            let ctx = Context::from_pairs([(
                "purpose".to_owned(),
                RestrictedExpression::new_string(black_box("PF-WITHDRAWAL").to_owned()),
            )])
            .unwrap();
            Request::new(p.clone(), act.clone(), res.clone(), ctx, None).unwrap()
        })
    });
    // authorize only, per policy file
    let mut entities = Vec::new();
    for rt in catalog.record_types() {
        let uid = EntityUid::from_type_name_and_id(rt_t.clone(), EntityId::new(&rt.id));
        let attrs = std::collections::HashMap::from([
            (
                "department".to_owned(),
                RestrictedExpression::new_string(rt.department.clone()),
            ),
            (
                "sharing_class".to_owned(),
                RestrictedExpression::new_string(rt.sharing_class.to_string()),
            ),
            (
                "subject_kind".to_owned(),
                RestrictedExpression::new_string(rt.subject_kind.to_string()),
            ),
        ]);
        entities.push(Entity::new(uid, attrs, Default::default()).unwrap());
    }
    let (schema, _) = Schema::from_cedarschema_str(&set.schema_text()).unwrap();
    let entities_s = Entities::from_entities(entities.clone(), Some(&schema)).unwrap();
    let entities = Entities::from_entities(entities, None).unwrap();
    let ctx = Context::from_pairs([(
        "purpose".to_owned(),
        RestrictedExpression::new_string("PF-WITHDRAWAL".to_owned()),
    )])
    .unwrap();
    let request = Request::new(p.clone(), act.clone(), res.clone(), ctx, None).unwrap();
    let auth = Authorizer::new();
    for (name, text) in PS::builtin_files()
        .into_iter()
        .filter(|(n, _)| n.starts_with("prov"))
    {
        let ps = cedar_policy::PolicySet::from_str(&text).unwrap();
        c.bench_function(&format!("auth/{name}"), |b| {
            b.iter(|| auth.is_authorized(black_box(&request), &ps, &entities))
        });
    }
    let all: String = PS::builtin_files()
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n");
    let ps = cedar_policy::PolicySet::from_str(&all).unwrap();
    c.bench_function("auth/all", |b| {
        b.iter(|| auth.is_authorized(black_box(&request), &ps, &entities))
    });
    c.bench_function("auth/all-schema-entities", |b| {
        b.iter(|| auth.is_authorized(black_box(&request), &ps, &entities_s))
    });
    let mut renamed = cedar_policy::PolicySet::new();
    for p in ps.policies() {
        renamed
            .add(p.new_id(PolicyId::new(format!("x{}", p.id()))))
            .unwrap();
    }
    c.bench_function("auth/all-renamed", |b| {
        b.iter(|| auth.is_authorized(black_box(&request), &renamed, &entities))
    });
    let empty = cedar_policy::PolicySet::new();
    c.bench_function("auth/empty", |b| {
        b.iter(|| auth.is_authorized(black_box(&request), &empty, &entities))
    });
    c.bench_function("decide", |b| {
        b.iter(|| {
            set.decide(black_box(&AccessRequest {
                requester: "provident-fund-bozhou",
                record_type: "real_estate_title",
                purpose: "PF-WITHDRAWAL",
            }))
        })
    });
}
criterion_group!(benches, scratch);
criterion_main!(benches);
