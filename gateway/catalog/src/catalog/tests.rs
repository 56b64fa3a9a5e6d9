#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{collections::BTreeSet, fs};

use serde_json::{Value, json};

use super::*;

/// Every record type of the repository's catalog: department, id, subject kind.
const EXPECTED: &[(&str, &str, SubjectKind)] = {
    use SubjectKind::{ResidentId as R, Uscc as U};
    &[
        ("market-regulation", "business_licence", U),
        ("market-regulation", "food_business_licence", U),
        (
            "market-regulation",
            "industrial_product_production_licence",
            U,
        ),
        ("market-regulation", "enterprise_annual_report", U),
        (
            "market-regulation",
            "special_equipment_operator_certificate",
            R,
        ),
        ("civil-affairs", "marriage_registration", R),
        ("civil-affairs", "divorce_registration", R),
        ("civil-affairs", "adoption_registration", R),
        ("civil-affairs", "minimum_subsistence_allowance_status", R),
        ("civil-affairs", "social_organisation_registration", U),
        (
            "human-resources-social-security",
            "social_insurance_payment_record",
            R,
        ),
        ("human-resources-social-security", "pension_entitlement", R),
        (
            "human-resources-social-security",
            "professional_qualification_certificate",
            R,
        ),
        (
            "human-resources-social-security",
            "employment_registration",
            R,
        ),
        (
            "human-resources-social-security",
            "work_injury_determination",
            R,
        ),
        (
            "housing-urban-rural",
            "commercial_housing_sales_contract_filing",
            R,
        ),
        ("housing-urban-rural", "construction_permit", U),
        ("housing-urban-rural", "housing_lease_registration", R),
        (
            "housing-urban-rural",
            "construction_enterprise_qualification",
            U,
        ),
        ("housing-provident-fund", "provident_fund_account", R),
        ("housing-provident-fund", "provident_fund_loan", R),
        (
            "housing-provident-fund",
            "provident_fund_withdrawal_record",
            R,
        ),
        ("health", "birth_medical_certificate", R),
        ("health", "death_medical_certificate", R),
        ("health", "medical_practitioner_licence", R),
        ("health", "vaccination_record", R),
        ("education", "academic_degree_certificate", R),
        ("education", "teacher_qualification_certificate", R),
        ("medical-security", "medical_insurance_enrolment", R),
        ("medical-security", "medical_insurance_payment_record", R),
        ("transport", "road_transport_operation_licence", U),
        ("transport", "taxi_driver_qualification", R),
        ("ecology-environment", "pollutant_discharge_permit", U),
        (
            "ecology-environment",
            "environmental_impact_assessment_approval",
            U,
        ),
        (
            "emergency-management",
            "hazardous_chemicals_business_licence",
            U,
        ),
        ("emergency-management", "work_safety_licence", U),
        ("court", "dishonest_judgment_debtor_status", R),
        ("court", "enforcement_case_record", U),
        (
            "agriculture-rural",
            "rural_land_contract_management_right",
            R,
        ),
        ("agriculture-rural", "homestead_use_right", R),
        (
            "veterans-affairs",
            "veteran_preferential_treatment_certificate",
            R,
        ),
        ("justice", "notarial_certificate", R),
        ("justice", "lawyer_practice_certificate", R),
        ("disabled-persons-federation", "disability_certificate", R),
        ("water-resources", "water_abstraction_permit", U),
        ("public-security", "resident_identity_card", R),
        ("public-security", "household_registration", R),
        ("public-security", "residence_permit", R),
        ("public-security", "no_criminal_record_certificate", R),
        ("public-security", "motor_vehicle_registration", R),
        ("public-security", "driving_licence", R),
        ("public-security", "exit_entry_record", R),
        ("natural-resources", "real_estate_title", R),
        ("natural-resources", "real_estate_mortgage_registration", R),
        ("natural-resources", "state_land_use_right", U),
        ("natural-resources", "construction_land_planning_permit", U),
        ("natural-resources", "mining_licence", U),
        ("tax", "tax_payment_certificate", R),
        ("tax", "tax_registration", U),
        ("tax", "individual_income_tax_record", R),
        ("tax", "vat_exemption_status", U),
        ("tax", "taxpayer_credit_rating", U),
        ("tax", "no_tax_arrears_certificate", R),
    ]
};

/// Sensitive personal records that must only be released under conditions.
const CONDITIONAL: &[&str] = &[
    "divorce_registration",
    "adoption_registration",
    "minimum_subsistence_allowance_status",
    "work_injury_determination",
    "death_medical_certificate",
    "vaccination_record",
    "disability_certificate",
    "dishonest_judgment_debtor_status",
    "pension_entitlement",
    "provident_fund_account",
    "provident_fund_loan",
    "provident_fund_withdrawal_record",
];

fn builtin() -> Catalog {
    Catalog::builtin().unwrap()
}

#[test]
fn builtin_has_exactly_the_expected_types_and_departments() {
    let catalog = builtin();
    let ids: BTreeSet<&str> = catalog.record_types().map(|t| t.id.as_str()).collect();
    let expected: BTreeSet<&str> = EXPECTED.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(ids, expected);
    assert_eq!(catalog.len(), 63);
    assert!(!catalog.is_empty());

    let departments: BTreeSet<&str> = catalog.departments().map(|d| d.id.as_str()).collect();
    let expected: BTreeSet<&str> = EXPECTED.iter().map(|(d, _, _)| *d).collect();
    assert_eq!(departments, expected);
    assert_eq!(catalog.departments().count(), 20);

    for (department, id, kind) in EXPECTED {
        let record_type = catalog.record_type(id).unwrap();
        assert_eq!(record_type.department, *department, "{id}");
        assert_eq!(record_type.subject_kind, *kind, "{id}");
    }
}

/// A notarial certificate is corrected by the notary office's own review
/// procedure (公证复查, up to 30 days): its objections are due in 15 working
/// days; every other type keeps the default.
#[test]
fn objections_are_due_in_the_record_types_working_days() {
    let catalog = Catalog::builtin().unwrap();
    for t in catalog.record_types() {
        let expected = if t.id == "notarial_certificate" {
            15
        } else {
            crate::catalog::DEFAULT_OBJECTION_DUE_DAYS
        };
        assert_eq!(t.objection_due_working_days, expected, "{}", t.id);
    }
}

#[test]
fn builtin_types_follow_the_catalog_conventions() {
    let catalog = builtin();
    for department in catalog.departments() {
        assert!(
            !department.name.is_empty() && !department.name_zh.is_empty(),
            "{}",
            department.id
        );
    }
    for t in catalog.record_types() {
        let id = &t.id;
        assert!(!t.name.is_empty() && !t.name_zh.is_empty(), "{id}");
        assert_ne!(t.sharing_class, SharingClass::NotShared, "{id}");
        assert!(t.freshness >= Duration::from_secs(60), "{id}");
        assert!(t.freshness <= Duration::from_secs(86_400), "{id}");
        assert_eq!(t.schema["additionalProperties"], json!(false), "{id}");

        let properties = t.schema["properties"].as_object().unwrap();
        assert!(
            (4..=13).contains(&properties.len()),
            "{id}: {} properties",
            properties.len()
        );
        let required: BTreeSet<&str> = t.schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let names: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
        // Optional data is an explicit `null`, so every property is always present.
        assert_eq!(required, names, "{id}");

        let field = t.subject_kind.record_field();
        assert_eq!(properties[field]["type"], json!("string"), "{id}");
        assert!(properties[field]["pattern"].is_string(), "{id}");
        let other = match t.subject_kind {
            SubjectKind::ResidentId => SubjectKind::Uscc,
            SubjectKind::Uscc => SubjectKind::ResidentId,
        };
        assert!(!properties.contains_key(other.record_field()), "{id}");

        for (name, property) in properties {
            assert!(property["title"].is_string(), "{id}.{name} has no title");
            if name.ends_with("_date") || name == "valid_from" || name == "valid_until" {
                assert_eq!(property["format"], json!("date"), "{id}.{name}");
            }
        }
    }
}

#[test]
fn sensitive_types_are_conditional() {
    let catalog = builtin();
    for id in CONDITIONAL {
        assert_eq!(
            catalog.record_type(id).unwrap().sharing_class,
            SharingClass::Conditional,
            "{id}"
        );
    }
}

#[test]
fn status_flags_are_fresh_and_payments_hourly() {
    let catalog = builtin();
    let freshness = |id: &str| catalog.record_type(id).unwrap().freshness;
    assert_eq!(
        freshness("dishonest_judgment_debtor_status"),
        Duration::from_secs(600)
    );
    assert_eq!(
        freshness("minimum_subsistence_allowance_status"),
        Duration::from_secs(600)
    );
    assert_eq!(
        freshness("social_insurance_payment_record"),
        Duration::from_secs(3600)
    );
    assert_eq!(
        freshness("medical_insurance_payment_record"),
        Duration::from_secs(3600)
    );
    assert_eq!(freshness("business_licence"), Duration::from_secs(86_400));
}

#[test]
fn builtin_files_round_trip_through_from_sources_and_load_dir() {
    let files = Catalog::builtin_files();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.contains(&"market-regulation.json"));

    let from_sources = Catalog::from_sources(&files).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in &files {
        fs::write(dir.path().join(name), contents).unwrap();
    }
    let loaded = Catalog::load_dir(dir.path()).unwrap();
    let order = |c: &Catalog| c.record_types().map(|t| t.id.clone()).collect::<Vec<_>>();
    assert_eq!(order(&from_sources), order(&builtin()));
    assert_eq!(order(&loaded), order(&builtin()));
}

#[test]
fn catalog_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
}

// ---- small catalogs built by hand ----

fn record_type(id: &str, kind: &str) -> Value {
    let mut t = record_type_of_resident(id, kind);
    if kind == "uscc" {
        let schema = &mut t["schema"];
        schema["required"] = json!(["uscc", "issue_date", "items"]);
        let props = schema["properties"].as_object_mut().unwrap();
        props.remove("id_number");
        props.insert("uscc".into(), json!({"type": "string"}));
    }
    t
}

fn record_type_of_resident(id: &str, kind: &str) -> Value {
    json!({
        "id": id,
        "name": "Test record",
        "name_zh": "测试记录",
        "subject_kind": kind,
        "freshness_seconds": 60,
        "sharing_class": "unconditional",
        "schema": {
            "type": "object",
            "additionalProperties": false,
            "required": ["id_number", "issue_date", "items"],
            "properties": {
                "id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
                "issue_date": {"type": "string", "format": "date"},
                "items": {"type": "array", "items": {"type": "integer"}}
            }
        }
    })
}

fn department_file(department: &str, types: Vec<Value>) -> String {
    serde_json::to_string_pretty(&json!({
        "department": {"id": department, "name": "Test Bureau", "name_zh": "测试局"},
        "record_types": types,
    }))
    .unwrap()
}

fn sources(files: &[(&str, String)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.clone()))
        .collect()
}

fn load_err(files: &[(&str, String)]) -> String {
    Catalog::from_sources(&sources(files))
        .unwrap_err()
        .to_string()
}

fn with_type_change(change: impl FnOnce(&mut Value)) -> String {
    let mut t = record_type("test_record", "resident_id");
    change(&mut t);
    department_file("test", vec![t])
}

#[test]
fn order_follows_file_names_then_file_order() {
    let catalog = Catalog::from_sources(&sources(&[
        (
            "b.json",
            department_file(
                "bee",
                vec![record_type("b2", "uscc"), record_type("b1", "uscc")],
            ),
        ),
        (
            "a.json",
            department_file("ay", vec![record_type("a1", "resident_id")]),
        ),
    ]))
    .unwrap();
    let ids: Vec<&str> = catalog.record_types().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b2", "b1"]);
    let departments: Vec<&str> = catalog.departments().map(|d| d.id.as_str()).collect();
    assert_eq!(departments, ["ay", "bee"]);
    let of_bee: Vec<&str> = catalog
        .types_of_department("bee")
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(of_bee, ["b2", "b1"]);
    assert_eq!(catalog.types_of_department("nobody").count(), 0);
    assert_eq!(catalog.department("ay").unwrap().name_zh, "测试局");
    assert!(catalog.department("nobody").is_none());
    assert!(catalog.record_type("nothing").is_none());
    let b1 = catalog.record_type("b1").unwrap();
    assert_eq!(b1.department, "bee");
    assert_eq!(b1.subject_kind, SubjectKind::Uscc);
    assert_eq!(b1.freshness, Duration::from_secs(60));
}

#[test]
fn empty_source_list_is_an_empty_catalog() {
    let catalog = Catalog::from_sources(&[]).unwrap();
    assert!(catalog.is_empty());
    assert_eq!(catalog.len(), 0);
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let message = load_err(&[("broken.json", "{\n  \"department\": ,\n}".to_owned())]);
    assert!(
        message.starts_with("`broken.json:2:17`: invalid json: "),
        "{message}"
    );
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    let top = load_err(&[(
        "x.json",
        r#"{"department": {"id": "x", "name": "X", "name_zh": "X"}, "record_types": [], "extra": 1}"#
            .to_owned(),
    )]);
    assert!(top.starts_with("`x.json:1:"), "{top}");
    assert!(top.contains("unknown field `extra`"), "{top}");

    let department = load_err(&[(
        "x.json",
        r#"{"department": {"id": "x", "name": "X", "name_zh": "X", "head": "Y"}, "record_types": []}"#
            .to_owned(),
    )]);
    assert!(department.contains("unknown field `head`"), "{department}");

    let in_type = load_err(&[("x.json", with_type_change(|t| t["freshness"] = json!(5)))]);
    assert!(in_type.starts_with("`x.json:"), "{in_type}");
    assert!(in_type.contains("unknown field `freshness`"), "{in_type}");
}

#[test]
fn unknown_enum_values_and_missing_fields_are_rejected() {
    let kind = load_err(&[(
        "x.json",
        with_type_change(|t| t["subject_kind"] = json!("passport")),
    )]);
    assert!(kind.contains("unknown variant `passport`"), "{kind}");
    let class = load_err(&[(
        "x.json",
        with_type_change(|t| t["sharing_class"] = json!("open")),
    )]);
    assert!(class.contains("unknown variant `open`"), "{class}");
    let missing = load_err(&[(
        "x.json",
        with_type_change(|t| {
            t.as_object_mut().unwrap().remove("schema");
        }),
    )]);
    assert!(missing.starts_with("`x.json:"), "{missing}");
    assert!(missing.contains("missing field `schema`"), "{missing}");
}

#[test]
fn duplicate_record_type_names_both_files() {
    let message = load_err(&[
        (
            "a.json",
            department_file("ay", vec![record_type("same", "uscc")]),
        ),
        (
            "b.json",
            department_file("bee", vec![record_type("same", "uscc")]),
        ),
    ]);
    assert_eq!(
        message,
        "`b.json`: record type `same` is already defined in `a.json`"
    );

    let within = load_err(&[(
        "a.json",
        department_file(
            "ay",
            vec![record_type("same", "uscc"), record_type("same", "uscc")],
        ),
    )]);
    assert_eq!(
        within,
        "`a.json`: record type `same` is already defined in `a.json`"
    );
}

#[test]
fn duplicate_department_names_both_files() {
    let message = load_err(&[
        (
            "a.json",
            department_file("same", vec![record_type("a1", "uscc")]),
        ),
        (
            "b.json",
            department_file("same", vec![record_type("b1", "uscc")]),
        ),
    ]);
    assert_eq!(
        message,
        "`b.json`: department `same` is already defined in `a.json`"
    );
}

#[test]
fn ids_are_checked() {
    assert_eq!(
        load_err(&[("d.json", department_file("", vec![]))]),
        "`d.json`: department id is empty"
    );
    for bad in ["Tax", "tax_bureau", "1tax", "-tax", "税务"] {
        assert_eq!(
            load_err(&[("d.json", department_file(bad, vec![]))]),
            format!("`d.json`: department id `{bad}` does not match `^[a-z][a-z0-9-]*$`")
        );
    }
    assert_eq!(
        load_err(&[(
            "d.json",
            department_file(
                "d",
                vec![record_type("ok", "uscc"), record_type("", "uscc")]
            )
        )]),
        "`d.json`: record type 2 has an empty id"
    );
    for bad in ["Licence", "business-licence", "_x", "9x", "x y"] {
        assert_eq!(
            load_err(&[(
                "d.json",
                department_file("d", vec![record_type(bad, "uscc")])
            )]),
            format!("`d.json`: record type id `{bad}` does not match `^[a-z][a-z0-9_]*$`")
        );
    }
    assert!(
        Catalog::from_sources(&sources(&[(
            "d.json",
            department_file("a-1", vec![record_type("a_1", "uscc")])
        )]))
        .is_ok()
    );
}

#[test]
fn zero_freshness_is_rejected() {
    let message = load_err(&[(
        "z.json",
        with_type_change(|t| t["freshness_seconds"] = json!(0)),
    )]);
    assert_eq!(
        message,
        "`z.json`: record type `test_record` has `freshness_seconds` 0, expected at least 1"
    );
}

#[test]
fn schema_root_must_be_an_object_type() {
    for schema in [
        json!({"type": "array"}),
        json!({"properties": {}}),
        json!(true),
        json!({"type": ["object", "null"]}),
    ] {
        let message = load_err(&[("s.json", with_type_change(|t| t["schema"] = schema.clone()))]);
        assert_eq!(
            message,
            "`s.json`: schema of record type `test_record` must have `\"type\": \"object\"` at its root",
            "{schema}"
        );
    }
}

#[test]
fn schema_that_does_not_compile_names_file_type_and_reason() {
    let cases = [
        json!({"type": "object", "properties": {"a": {"type": "text"}}}),
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}}),
        json!({"type": "object", "required": "a"}),
        // A misspelt format would otherwise silently never be checked.
        json!({"type": "object", "properties": {"a": {"type": "string", "format": "dat"}}}),
        // Remote references are never fetched.
        json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
    ];
    for schema in cases {
        let message = load_err(&[("s.json", with_type_change(|t| t["schema"] = schema.clone()))]);
        let prefix = "`s.json`: schema of record type `test_record` does not compile: ";
        assert!(message.starts_with(prefix), "{message}");
        assert!(message.len() > prefix.len(), "{message}");
    }
}

#[test]
fn load_dir_reads_only_json_files_and_names_paths_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("b.json"),
        department_file("bee", vec![record_type("b1", "uscc")]),
    )
    .unwrap();
    fs::write(
        dir.path().join("a.json"),
        department_file("ay", vec![record_type("a1", "uscc")]),
    )
    .unwrap();
    fs::write(dir.path().join("README.md"), "not a catalog file").unwrap();
    fs::create_dir(dir.path().join("nested.json")).unwrap();
    let catalog = Catalog::load_dir(dir.path()).unwrap();
    let ids: Vec<&str> = catalog.record_types().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"]);

    fs::write(dir.path().join("c.json"), "[").unwrap();
    let message = Catalog::load_dir(dir.path()).unwrap_err().to_string();
    let path = dir.path().join("c.json");
    assert!(
        message.starts_with(&format!("`{}:1:1`: invalid json", path.display())),
        "{message}"
    );

    fs::write(dir.path().join("c.json"), [0xff, 0xfe]).unwrap();
    let message = Catalog::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("cannot read catalog file `{}`: ", path.display())),
        "{message}"
    );
}

#[test]
fn load_dir_of_a_missing_directory_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let error = Catalog::load_dir(&missing).unwrap_err();
    assert!(matches!(error, CatalogError::ReadDir { .. }));
    assert!(
        error.to_string().starts_with(&format!(
            "cannot read catalog directory `{}`: ",
            missing.display()
        )),
        "{error}"
    );
}

// ---- record validation ----

fn test_type() -> Catalog {
    Catalog::from_sources(&sources(&[(
        "t.json",
        department_file("t", vec![record_type("test_record", "resident_id")]),
    )]))
    .unwrap()
}

#[test]
fn valid_record_passes() {
    let catalog = test_type();
    let t = catalog.record_type("test_record").unwrap();
    let record =
        json!({"id_number": "11010519491231002X", "issue_date": "2024-02-29", "items": [1, 2]});
    assert_eq!(t.validate(&record), Ok(()));
    assert!(t.is_valid(&record));
}

#[test]
fn format_date_is_enforced() {
    let catalog = test_type();
    let t = catalog.record_type("test_record").unwrap();
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "20240101",
        "2024-1-01",
        "yesterday",
    ] {
        let record = json!({"id_number": "11010519491231002X", "issue_date": bad, "items": []});
        assert!(!t.is_valid(&record), "{bad}");
        let violation = t.validate(&record).unwrap_err();
        assert_eq!(violation.path, "/issue_date");
        assert_eq!(
            violation.to_string(),
            "`/issue_date`: value is not a \"date\"",
            "the offending value `{bad}` must not appear in the message"
        );
    }
}

#[test]
fn violations_report_their_path() {
    let catalog = test_type();
    let t = catalog.record_type("test_record").unwrap();

    let nested =
        json!({"id_number": "11010519491231002X", "issue_date": "2024-01-01", "items": [1, "two"]});
    let violation = t.validate(&nested).unwrap_err();
    assert_eq!(violation.path, "/items/1");
    assert!(
        violation.to_string().starts_with("`/items/1`: "),
        "{violation}"
    );

    let missing = json!({"id_number": "11010519491231002X", "items": []});
    let violation = t.validate(&missing).unwrap_err();
    assert_eq!(violation.path, "");
    assert!(violation.message.contains("issue_date"), "{violation}");
    assert!(violation.to_string().starts_with("record: "), "{violation}");

    let extra =
        json!({"id_number": "11010519491231002X", "issue_date": "2024-01-01", "items": [], "x": 1});
    assert!(!t.is_valid(&extra));
    assert!(t.validate(&extra).unwrap_err().message.contains("'x'"));

    assert!(!t.is_valid(&json!([])));
}

#[test]
fn builtin_schemas_accept_realistic_records_and_reject_broken_ones() {
    let catalog = builtin();
    let licence = catalog.record_type("business_licence").unwrap();
    let mut record = json!({
        "uscc": "91340100MA2N0X1Y35",
        "holder_name": "合肥青禾科技有限公司",
        "entity_type": "limited_liability_company",
        "legal_representative": "王建国",
        "registered_capital_cny": 5_000_000,
        "establishment_date": "2016-03-18",
        "business_term_until": null,
        "domicile": "安徽省合肥市蜀山区长江西路100号",
        "business_scope": "软件开发；信息技术咨询服务",
        "registration_authority": "合肥市蜀山区市场监督管理局",
        "status": "in_business"
    });
    assert_eq!(licence.validate(&record), Ok(()));
    record["status"] = json!("bankrupt");
    assert_eq!(licence.validate(&record).unwrap_err().path, "/status");

    let debtor = catalog
        .record_type("dishonest_judgment_debtor_status")
        .unwrap();
    let record = json!({
        "case_no": "（2023）皖0104执1234号",
        "id_number": "11010519491231002X",
        "name": "李四",
        "enforcement_court": "合肥市蜀山区人民法院",
        "basis_document_no": "（2022）皖0104民初5678号",
        "obligation": "偿还借款本金100000元及利息",
        "performance": "not_performed",
        "dishonest_conduct": "有履行能力而拒不履行生效法律文书确定义务",
        "listing_date": "2023-06-01",
        "removal_date": null,
        "status": "listed"
    });
    assert_eq!(debtor.validate(&record), Ok(()));
}

#[test]
fn cache_opt_out_is_read_and_checked() {
    let catalog = Catalog::from_sources(&sources(&[(
        "x.json",
        with_type_change(|t| t["cache"] = json!(false)),
    )]))
    .unwrap();
    assert!(!catalog.record_type("test_record").unwrap().cache);
    let catalog = Catalog::from_sources(&sources(&[("x.json", with_type_change(|_| {}))])).unwrap();
    assert!(
        catalog.record_type("test_record").unwrap().cache,
        "absent means cacheable"
    );
    let wrong = load_err(&[("x.json", with_type_change(|t| t["cache"] = json!("no")))]);
    assert!(wrong.starts_with("`x.json:"), "{wrong}");
    assert!(wrong.contains("expected a boolean"), "{wrong}");
}

#[test]
fn sensitive_builtin_types_are_never_cached() {
    let catalog = Catalog::builtin().unwrap();
    for id in [
        "no_criminal_record_certificate",
        "exit_entry_record",
        "disability_certificate",
    ] {
        assert!(!catalog.record_type(id).unwrap().cache, "{id}");
    }
    assert!(catalog.record_type("driving_licence").unwrap().cache);
}

#[test]
fn a_schema_must_require_the_subject_field() {
    let without = with_type_change(|t| {
        t["schema"]["required"] = json!(["issue_date", "items"]);
    });
    assert_eq!(
        load_err(&[("s.json", without)]),
        "`s.json`: schema of record type `test_record` must list `id_number` (the subject's number) in `required` as a `string` property"
    );
    let not_a_string = with_type_change(|t| {
        t["schema"]["properties"]["id_number"] = json!({"type": "integer"});
    });
    assert!(load_err(&[("s.json", not_a_string)]).contains("must list `id_number`"));
}

#[test]
fn check_record_is_the_one_record_check() {
    let catalog = Catalog::builtin().unwrap();
    let rt = catalog.record_type("driving_licence").unwrap();
    let subject = "341602197703051725";
    let good = json!({
        "id_number": subject,
        "name": "张海燕",
        "file_no": "341600123456",
        "licence_class": "C1",
        "first_issue_date": "2005-06-01",
        "valid_from": "2021-06-01",
        "valid_until": "2031-06-01",
        "issuing_authority": "亳州市公安局交通警察支队",
        "penalty_points": 0,
        "status": "valid"
    });
    let bytes = |v: &Value| v.to_string().into_bytes();
    assert_eq!(rt.check_record(&bytes(&good), subject).unwrap(), good);
    assert!(matches!(
        rt.check_record(&bytes(&good), "11010519491231002X"),
        Err(RecordProblem::OtherSubject { field: "id_number" })
    ));
    let mut without = good.clone();
    without.as_object_mut().unwrap().remove("id_number");
    assert!(matches!(
        rt.check_record(&bytes(&without), subject),
        Err(RecordProblem::Schema { .. })
    ));
    assert_eq!(
        rt.check_record(b"[1]", subject),
        Err(RecordProblem::NotAnObject)
    );
    assert!(matches!(
        rt.check_record(b"{", subject),
        Err(RecordProblem::NotJson(_))
    ));
}
