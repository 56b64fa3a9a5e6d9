use std::collections::BTreeMap;

use serde_json::json;
use time::macros::date;

use super::*;
use crate::Catalog;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const TODAY: Date = date!(2026 - 11 - 25);

fn builtin_view(record_type: &str, view: &str) -> View {
    let catalog = Catalog::builtin().unwrap();
    catalog
        .record_type(record_type)
        .unwrap()
        .view(view)
        .unwrap()
        .clone()
}

fn value(view: &View, records: &[Value], p: &[(&str, &str)]) -> Value {
    match view.apply(records, &params(p), TODAY).unwrap() {
        ViewOutput::Value(v) => v,
        ViewOutput::Records(r) => panic!("records {r:?}"),
    }
}

/// A catalog file with one record type carrying `views`.
fn catalog_with_views(views: &str) -> Result<Catalog, crate::CatalogError> {
    let file = format!(
        r#"{{"department":{{"id":"d","name":"d","name_zh":"d"}},"record_types":[{{"id":"t","name":"t","name_zh":"t","subject_kind":"resident_id","freshness_seconds":1,"sharing_class":"unconditional","views":{views},"schema":{{"type":"object","required":["id_number"],"properties":{{"id_number":{{"type":"string"}},"city":{{"type":"string"}},"born":{{"type":"string"}}}}}}}}]}}"#
    );
    Catalog::from_sources(&[("d.json".to_owned(), file)])
}

fn view_error(views: &str) -> String {
    match catalog_with_views(views) {
        Ok(_) => panic!("loaded: {views}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_type_has_full_first_and_exists() {
    let catalog = Catalog::builtin().unwrap();
    for rt in catalog.record_types() {
        let names: Vec<&str> = rt.views().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names.first(), Some(&FULL), "{}", rt.id);
        assert!(names.contains(&EXISTS), "{}", rt.id);
        // field views before predicates
        let first_predicate = rt.views().iter().position(View::is_predicate).unwrap();
        assert!(
            rt.views()
                .iter()
                .skip(first_predicate)
                .all(View::is_predicate)
        );
    }
}

#[test]
fn summary_keeps_only_its_fields() {
    let view = builtin_view("real_estate_title", "summary");
    let record = json!({"owner_name": "张三", "id_number": "x", "address": "a", "city": "亳州市",
        "district": "谯城区", "area_m2": 90.5, "usage": "residential"});
    let out = view.apply(&[record], &params(&[]), TODAY).unwrap();
    assert_eq!(
        out,
        ViewOutput::Records(vec![
            json!({"owner_name": "张三", "address": "a", "city": "亳州市",
            "district": "谯城区", "area_m2": 90.5})
        ])
    );
}

#[test]
fn full_keeps_everything_and_exists_counts() {
    let full = builtin_view("real_estate_title", FULL);
    let record = json!({"owner_name": "张三", "city": "亳州市"});
    assert_eq!(
        full.apply(std::slice::from_ref(&record), &params(&[]), TODAY)
            .unwrap(),
        ViewOutput::Records(vec![record.clone()])
    );
    let exists = builtin_view("real_estate_title", EXISTS);
    assert_eq!(value(&exists, &[record], &[]), json!(true));
    assert_eq!(value(&exists, &[], &[]), json!(false));
}

#[test]
fn eq_param_predicate() {
    let view = builtin_view("real_estate_title", "owns_property_in_city");
    let records = [json!({"city": "合肥市"}), json!({"city": "亳州市"})];
    assert_eq!(value(&view, &records, &[("city", "亳州市")]), json!(true));
    assert_eq!(value(&view, &records, &[("city", "阜阳市")]), json!(false));
    assert_eq!(value(&view, &[], &[("city", "亳州市")]), json!(false));
}

#[test]
fn age_at_least_counts_whole_years() {
    let view = builtin_view("resident_identity_card", "age_at_least");
    let born = |d: &str| [json!({"birth_date": d})];
    assert_eq!(
        value(&view, &born("2008-11-25"), &[("n", "18")]),
        json!(true)
    );
    assert_eq!(
        value(&view, &born("2008-11-26"), &[("n", "18")]),
        json!(false)
    );
    assert_eq!(
        value(&view, &born("not a date"), &[("n", "0")]),
        json!(false)
    );
}

#[test]
fn registered_in_finds_the_place_in_an_active_registration() {
    let view = builtin_view("household_registration", "registered_in");
    let reg =
        |address: &str, status: &str| [json!({"registered_address": address, "status": status})];
    let place = [("place", "亳州市")];
    assert_eq!(
        value(&view, &reg("安徽省亳州市谯城区药都路8号", "active"), &place),
        json!(true)
    );
    assert_eq!(
        value(&view, &reg("安徽省合肥市蜀山区", "active"), &place),
        json!(false)
    );
    assert_eq!(
        value(&view, &reg("安徽省亳州市谯城区", "cancelled"), &place),
        json!(false)
    );
    // An empty place would match every address: it matches none.
    assert_eq!(
        value(&view, &reg("安徽省亳州市", "active"), &[("place", "")]),
        json!(false)
    );
    assert_eq!(value(&view, &[], &place), json!(false));
}

#[test]
fn all_needs_a_record_and_every_record() {
    let view = builtin_view("no_tax_arrears_certificate", "no_tax_arrears");
    assert_eq!(
        value(&view, &[json!({"has_arrears": false})], &[]),
        json!(true)
    );
    assert_eq!(
        value(
            &view,
            &[json!({"has_arrears": false}), json!({"has_arrears": true})],
            &[]
        ),
        json!(false)
    );
    assert_eq!(value(&view, &[], &[]), json!(false));
}

#[test]
fn nested_conditions_with_null_and_dates() {
    let view = builtin_view("business_licence", "has_valid_business_licence");
    let licence =
        |status: &str, until: Value| [json!({"status": status, "business_term_until": until})];
    assert_eq!(
        value(&view, &licence("in_business", Value::Null), &[]),
        json!(true)
    );
    assert_eq!(
        value(&view, &licence("in_business", json!("2026-11-25")), &[]),
        json!(true)
    );
    assert_eq!(
        value(&view, &licence("in_business", json!("2026-11-24")), &[]),
        json!(false)
    );
    assert_eq!(
        value(&view, &licence("revoked", Value::Null), &[]),
        json!(false)
    );
}

#[test]
fn one_of_and_none_and_not() {
    let loan = builtin_view("provident_fund_loan", "has_outstanding_loan");
    assert_eq!(
        value(&loan, &[json!({"status": "overdue"})], &[]),
        json!(true)
    );
    assert_eq!(
        value(&loan, &[json!({"status": "settled"})], &[]),
        json!(false)
    );
    let catalog = catalog_with_views(
        r#"[{"name":"never_in","description":"d","params":[{"name":"city","type":"string"}],"none":{"not":{"not":{"field":"city","eq_param":"city"}}}}]"#,
    )
    .unwrap();
    let view = catalog.record_type("t").unwrap().view("never_in").unwrap();
    assert_eq!(
        value(view, &[json!({"city": "a"})], &[("city", "b")]),
        json!(true)
    );
    assert_eq!(
        value(view, &[json!({"city": "a"})], &[("city", "a")]),
        json!(false)
    );
    assert_eq!(value(view, &[], &[("city", "a")]), json!(true));
}

#[test]
fn params_are_checked() {
    let view = builtin_view("resident_identity_card", "age_at_least");
    let err = |p: &[(&str, &str)]| view.check_params(&params(p)).unwrap_err().to_string();
    assert_eq!(err(&[]), "view `age_at_least` needs parameter `n`");
    assert_eq!(
        err(&[("n", "x")]),
        "parameter `n` of view `age_at_least` must be a non-negative integer"
    );
    assert_eq!(
        err(&[("n", "1"), ("m", "2")]),
        "view `age_at_least` has no parameter `m`"
    );
    assert!(view.apply(&[], &params(&[]), TODAY).is_err());
    view.check_params(&params(&[("n", "18")])).unwrap();
    let summary = builtin_view("real_estate_title", "summary");
    assert!(summary.check_params(&params(&[("city", "x")])).is_err());
}

#[test]
fn malformed_views_are_load_errors() {
    let cases = [
        (
            r#"[{"name":"s","description":"d","fields":["nope"]}]"#,
            "view `s`: unknown field `nope`",
        ),
        (
            r#"[{"name":"full","description":"d","fields":["city"]}]"#,
            "view `full` is implicit",
        ),
        (
            r#"[{"name":"Bad","description":"d","fields":["city"]}]"#,
            "view name `Bad` does not match",
        ),
        (
            r#"[{"name":"s","description":"d","fields":[]}]"#,
            "`fields` is empty",
        ),
        (
            r#"[{"name":"s","description":"d","fields":["city","city"]}]"#,
            "field `city` listed twice",
        ),
        (
            r#"[{"name":"s","description":"d","fields":["city"]},{"name":"s","description":"d","fields":["city"]}]"#,
            "view `s` is declared twice",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"field":"city","eq_param":"c"}}]"#,
            "undeclared parameter `c`",
        ),
        (
            r#"[{"name":"p","description":"d","params":[{"name":"c","type":"string"}],"any":{"field":"born","age_at_least_param":"c"}}]"#,
            "parameter `c` must be of type integer",
        ),
        (
            r#"[{"name":"p","description":"d","params":[{"name":"c","type":"string"}],"any":{"field":"city","eq":"x"}}]"#,
            "parameter `c` is never used",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"field":"city"}}]"#,
            "`field` without a comparison",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"field":"city","eq":"a","one_of":["b"]}}]"#,
            "exactly one form",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"eq":"a"}}]"#,
            "`eq` needs a `field`",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"field":"city","eq":"a"},"all":{"field":"city","eq":"a"}}]"#,
            "exactly one of",
        ),
        (
            r#"[{"name":"p","description":"d","fields":["city"],"params":[{"name":"c","type":"string"}]}]"#,
            "takes no `params`",
        ),
        (
            r#"[{"name":"p","description":"d","any":{"field":"born","date_not_before_today":false}}]"#,
            "must be `true`",
        ),
    ];
    for (views, needle) in cases {
        let error = view_error(views);
        assert!(error.contains(needle), "`{needle}` not in `{error}`");
        assert!(error.starts_with("`d.json`: record type `t`: "), "{error}");
    }
}
