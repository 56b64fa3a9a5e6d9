//! Loading and deciding through the public API, on a small catalog and on the repository's
//! own policies and catalog.

use std::sync::Arc;

use xgate_catalog::{SharingClass, SubjectKind};

use super::*;

/// A catalog with two departments and each sharing class.
fn small_catalog() -> Catalog {
    let record = |id: &str, kind: &str, class: &str| {
        format!(
            r#"{{"id":"{id}","name":"{id}","name_zh":"{id}","subject_kind":"{kind}","freshness_seconds":86400,"sharing_class":"{class}","schema":{{"type":"object","properties":{{}}}}}}"#
        )
    };
    let department = |id: &str, records: &[String]| {
        format!(
            r#"{{"department":{{"id":"{id}","name":"{id}","name_zh":"{id}"}},"record_types":[{}]}}"#,
            records.join(",")
        )
    };
    let files = vec![
        (
            "public-security.json".to_owned(),
            department(
                "public-security",
                &[
                    record("resident_identity_card", "resident_id", "unconditional"),
                    record(
                        "no_criminal_record_certificate",
                        "resident_id",
                        "conditional",
                    ),
                    record("sealed_case_file", "resident_id", "not_shared"),
                ],
            ),
        ),
        (
            "tax.json".to_owned(),
            department(
                "tax",
                &[
                    record("tax_registration", "uscc", "unconditional"),
                    record("individual_income_tax_record", "resident_id", "conditional"),
                ],
            ),
        ),
    ];
    Catalog::from_sources(&files).unwrap()
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect()
}

fn load(files: &[(&str, &str)]) -> Result<PolicySet, PolicyLoadError> {
    PolicySet::from_sources(&sources(files), &small_catalog())
}

/// The load error's lines.
fn load_errors(files: &[(&str, &str)]) -> Vec<String> {
    match load(files) {
        Ok(set) => panic!("loaded, with policies {:?}", set.policy_ids()),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

fn assert_one_error(files: &[(&str, &str)], prefix: &str, needle: &str) {
    let errors = load_errors(files);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(prefix) && e.contains(needle)),
        "no error starting `{prefix}` containing `{needle}` in {errors:#?}"
    );
}

fn decide(set: &PolicySet, requester: &str, record_type: &str, purpose: &str) -> Decision {
    set.decide(&AccessRequest {
        requester,
        record_type,
        view: "full",
        purpose,
        item: None,
        now: time::OffsetDateTime::now_utc(),
    })
}

const HALL: &str = r#"
@id("hall")
permit (principal == Requester::"hall", action == Action::"read", resource is RecordType)
when { context.purpose == "GENERAL-APPROVAL" && resource.sharing_class != "not_shared" };
"#;

const TAX_OFFICE: &str = r#"
@id("tax-office")
permit (principal == Requester::"tax-office", action, resource)
when { context.purpose == "AUDIT" && resource in [RecordType::"tax_registration", RecordType::"individual_income_tax_record"] };
"#;

const GUARD: &str = r#"
@id("criminal-record-only-for-vetting")
forbid (principal, action, resource == RecordType::"no_criminal_record_certificate")
unless { ["EMPLOYMENT-VETTING"].contains(context.purpose) };
"#;

fn demo_set() -> PolicySet {
    load(&[
        ("hall.cedar", HALL),
        ("tax.cedar", TAX_OFFICE),
        ("guards.cedar", GUARD),
    ])
    .unwrap()
}

#[test]
fn permits_name_their_policies_and_carry_a_permit() {
    let set = demo_set();
    let d = decide(&set, "tax-office", "tax_registration", "AUDIT");
    assert!(d.allowed);
    assert_eq!(d.policy_ids, ["tax-office"]);
    assert!(d.errors.is_empty());
    assert_eq!(&*d.policy_set_version, set.version());
    let permit = d.permit().unwrap();
    assert_eq!(permit.record_type(), "tax_registration");
    assert_eq!(permit.policy_ids(), ["tax-office"]);
}

#[test]
fn nothing_permitted_is_default_deny() {
    let set = demo_set();
    for (requester, record_type, purpose) in [
        ("tax-office", "resident_identity_card", "AUDIT"), // outside the grant
        ("tax-office", "tax_registration", "GENERAL-APPROVAL"), // wrong purpose
        ("nobody-knows-me", "tax_registration", "AUDIT"),  // unknown requester
        ("hall", "tax_registration", "general-approval"),  // purposes are exact
    ] {
        let d = decide(&set, requester, record_type, purpose);
        assert!(!d.allowed, "{requester} {record_type} {purpose}");
        assert_eq!(d.policy_ids, [DEFAULT_DENY]);
        assert!(d.permit().is_none());
        assert!(d.errors.is_empty());
    }
}

#[test]
fn forbid_beats_permit_and_is_named() {
    let set = demo_set();
    let d = decide(
        &set,
        "hall",
        "no_criminal_record_certificate",
        "GENERAL-APPROVAL",
    );
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, ["criminal-record-only-for-vetting"]);
    assert!(d.permit().is_none());
    // the hall still gets everything else it may have
    assert!(decide(&set, "hall", "resident_identity_card", "GENERAL-APPROVAL").allowed);
}

#[test]
fn unknown_record_type_is_denied_with_an_error() {
    let d = decide(&demo_set(), "hall", "no_such_type", "GENERAL-APPROVAL");
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, [DEFAULT_DENY]);
    assert_eq!(d.errors, ["unknown record type `no_such_type`"]);
}

#[test]
fn not_shared_types_are_never_allowed() {
    let d = decide(&demo_set(), "hall", "sealed_case_file", "GENERAL-APPROVAL");
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, [NOT_SHARED]);
    assert!(d.permit().is_none());
}

#[test]
fn flipping_allowed_does_not_forge_a_permit() {
    let mut d = decide(&demo_set(), "hall", "tax_registration", "WRONG");
    d.allowed = true;
    assert!(d.permit().is_none());
}

#[test]
fn policy_ids_are_the_annotations_sorted() {
    assert_eq!(
        demo_set().policy_ids(),
        ["criminal-record-only-for-vetting", "hall", "tax-office"]
    );
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let text =
        "@id(\"a\")\npermit (principal, action, resource)\nwhen { principal.nope ==== 1 };\n";
    let errors = load_errors(&[("ok.cedar", HALL), ("broken.cedar", text)]);
    assert_eq!(errors, ["broken.cedar:3:25: unexpected token `==`"]);
}

#[test]
fn unknown_record_type_literal_is_an_error_at_the_literal() {
    let text = "@id(\"a\")\nforbid (principal, action, resource)\nwhen {\n  resource == RecordType::\"no_such_type\" };\n";
    assert_one_error(
        &[("x.cedar", text)],
        "x.cedar:4:15:",
        "unknown record type `no_such_type`",
    );
    // in the scope, and in a set literal, too
    let scope = "@id(\"a\")\nforbid (principal, action, resource == RecordType::\"nope\");";
    assert_one_error(
        &[("s.cedar", scope)],
        "s.cedar:2:40:",
        "unknown record type `nope`",
    );
    let set = "@id(\"a\")\npermit (principal, action, resource) when { resource in [RecordType::\"tax_registration\", RecordType::\"typo\"] };";
    assert_one_error(
        &[("t.cedar", set)],
        "t.cedar:2:",
        "unknown record type `typo`",
    );
}

#[test]
fn missing_id_is_an_error_at_the_policy() {
    let text = "@id(\"a\")\npermit (principal, action, resource == RecordType::\"tax_registration\");\n\n// no id\npermit (principal, action, resource == RecordType::\"tax_registration\");\n";
    assert_one_error(
        &[("m.cedar", text)],
        "m.cedar:5:1:",
        "no `@id(\"...\")` annotation",
    );
    let empty =
        "@id(\"\")\npermit (principal, action, resource == RecordType::\"tax_registration\");";
    assert_one_error(&[("e.cedar", empty)], "e.cedar:1:1:", "`@id` is empty");
}

#[test]
fn duplicate_id_is_an_error_naming_the_first() {
    let first =
        "@id(\"same\")\npermit (principal, action, resource == RecordType::\"tax_registration\");";
    let second = "// another\n@id(\"same\")\nforbid (principal, action, resource);";
    assert_one_error(
        &[("b.cedar", second), ("a.cedar", first)],
        "b.cedar:2:1:",
        "duplicate `@id(\"same\")`: first used at a.cedar:1:1",
    );
}

#[test]
fn reserved_ids_are_refused() {
    let text = "@id(\"default deny\")\nforbid (principal, action, resource);";
    assert_one_error(&[("r.cedar", text)], "r.cedar:1:1:", "reserved");
}

#[test]
fn naming_a_not_shared_type_in_a_permit_is_an_error() {
    let scope =
        "@id(\"a\")\npermit (principal, action, resource == RecordType::\"sealed_case_file\");";
    assert_one_error(
        &[("n.cedar", scope)],
        "n.cedar:2:40:",
        "`sealed_case_file` is not_shared",
    );
    let condition = "@id(\"a\")\npermit (principal, action, resource)\nwhen { [RecordType::\"sealed_case_file\"].contains(resource) };";
    assert_one_error(
        &[("n.cedar", condition)],
        "n.cedar:3:9:",
        "`sealed_case_file` is not_shared",
    );
    // a forbid may name it
    load(&[(
        "f.cedar",
        "@id(\"a\")\nforbid (principal, action, resource == RecordType::\"sealed_case_file\");",
    )])
    .unwrap();
}

#[test]
fn a_permit_that_could_reach_a_not_shared_type_is_an_error() {
    for text in [
        "@id(\"a\")\npermit (principal, action, resource);",
        "@id(\"a\")\npermit (principal, action, resource is RecordType) when { context.purpose == \"X\" };",
        // a disjunction excludes nothing
        "@id(\"a\")\npermit (principal, action, resource) when { resource == RecordType::\"tax_registration\" || context.purpose == \"X\" };",
        "@id(\"a\")\npermit (principal, action, resource) when { resource.department == \"tax\" };",
    ] {
        assert_one_error(
            &[("w.cedar", text)],
            "w.cedar:1:1:",
            "could grant the not_shared record type `sealed_case_file`",
        );
    }
}

#[test]
fn permits_that_exclude_not_shared_types_load() {
    for condition in [
        "resource.sharing_class != \"not_shared\"",
        "\"not_shared\" != resource.sharing_class",
        "resource.sharing_class == \"unconditional\"",
        "context.purpose == \"X\" && (resource in [RecordType::\"tax_registration\"])",
        "[RecordType::\"tax_registration\"].contains(resource)",
        "resource == RecordType::\"tax_registration\"",
    ] {
        let text =
            format!("@id(\"a\")\npermit (principal, action, resource) when {{ {condition} }};");
        load(&[("ok.cedar", &text)]).unwrap_or_else(|e| panic!("{condition}: {e}"));
    }
    let unless = "@id(\"a\")\npermit (principal, action, resource is RecordType)\nunless { resource.sharing_class == \"not_shared\" || context.purpose == \"Y\" };";
    load(&[("ok.cedar", unless)]).unwrap();
}

#[test]
fn broad_permits_are_fine_when_nothing_is_not_shared() {
    let catalog = Catalog::from_sources(&[(
        "tax.json".to_owned(),
        r#"{"department":{"id":"tax","name":"t","name_zh":"t"},"record_types":[{"id":"tax_registration","name":"t","name_zh":"t","subject_kind":"uscc","freshness_seconds":60,"sharing_class":"unconditional","schema":{"type":"object","properties":{}}}]}"#.to_owned(),
    )])
    .unwrap();
    let files = sources(&[(
        "a.cedar",
        "@id(\"a\")\npermit (principal, action, resource);",
    )]);
    let set = PolicySet::from_sources(&files, &catalog).unwrap();
    assert!(decide(&set, "x", "tax_registration", "P").allowed);
}

#[test]
fn unknown_attribute_values_are_errors() {
    let text = "@id(\"a\")\nforbid (principal, action, resource)\nwhen { resource.department == \"taxes\" || [\"uscc\", \"company\"].contains(resource.subject_kind) || resource.sharing_class == \"secret\" };";
    let errors = load_errors(&[("v.cedar", text)]);
    assert_eq!(
        errors,
        [
            "v.cedar:3:31: unknown department `taxes`",
            "v.cedar:3:51: unknown subject kind `company`",
            "v.cedar:3:123: unknown sharing class `secret`",
        ]
    );
}

#[test]
fn validation_errors_name_file_and_line() {
    let text =
        "@id(\"a\")\nforbid (principal, action, resource)\nwhen {\n  context.purpos == \"X\" };";
    assert_one_error(&[("v.cedar", text)], "v.cedar:4:3:", "purpos");
    let wrong_type =
        "@id(\"a\")\nforbid (principal, action, resource) when { resource.department == 1 };";
    assert_one_error(
        &[("t.cedar", wrong_type)],
        "t.cedar:2:45:",
        "not compatible",
    );
    let unknown_action = "@id(\"a\")\nforbid (principal, action == Action::\"write\", resource);";
    assert_one_error(
        &[("u.cedar", unknown_action)],
        "u.cedar:2:30:",
        "unrecognized action `Action::\"write\"`",
    );
}

#[test]
fn impossible_policies_are_errors() {
    let text = "@id(\"a\")\nforbid (principal is RecordType, action, resource);";
    assert_one_error(&[("i.cedar", text)], "i.cedar:1:1:", "policy is impossible");
}

#[test]
fn confusable_strings_are_errors() {
    // a Cyrillic `А` would make this forbid silently never apply
    let text = "@id(\"a\")\nforbid (principal, action, resource) when { context.purpose == \"GENERAL-APPROVАL\" };";
    assert_one_error(&[("c.cedar", text)], "c.cedar:2:", "mixed scripts");
}

#[test]
fn templates_are_refused() {
    let text = "@id(\"a\")\npermit (principal == ?principal, action, resource == RecordType::\"tax_registration\");";
    assert_one_error(&[("t.cedar", text)], "t.cedar:1:1:", "templates");
}

#[test]
fn errors_from_several_files_are_all_reported_in_order() {
    let errors = load_errors(&[
        (
            "b.cedar",
            "permit (principal, action, resource == RecordType::\"tax_registration\");",
        ),
        (
            "a.cedar",
            "@id(\"a\")\nforbid (principal, action, resource == RecordType::\"zzz\");",
        ),
    ]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].starts_with("a.cedar:2:"));
    assert!(errors[1].starts_with("b.cedar:1:1:"));
}

#[test]
fn same_file_name_twice_is_an_error() {
    assert_one_error(
        &[("a.cedar", HALL), ("a.cedar", GUARD)],
        "a.cedar:",
        "twice",
    );
}

#[test]
fn version_follows_content_only() {
    let base = [("hall.cedar", HALL), ("guards.cedar", GUARD)];
    let v1 = load(&base).unwrap().version().to_owned();
    assert!(
        v1.starts_with("sha256:") && v1.len() == "sha256:".len() + 16,
        "{v1}"
    );
    // same files in another order: same version
    let reordered = load(&[("guards.cedar", GUARD), ("hall.cedar", HALL)]).unwrap();
    assert_eq!(reordered.version(), v1);
    // one changed byte, a renamed file, an added file: new versions
    let changed = format!("{GUARD} ");
    let v2 = load(&[("hall.cedar", HALL), ("guards.cedar", &changed)]).unwrap();
    let v3 = load(&[("hall.cedar", HALL), ("guard.cedar", GUARD)]).unwrap();
    let v4 = load(&[
        ("hall.cedar", HALL),
        ("guards.cedar", GUARD),
        ("tax.cedar", TAX_OFFICE),
    ])
    .unwrap();
    let versions = [v1.as_str(), v2.version(), v3.version(), v4.version()];
    for (i, a) in versions.iter().enumerate() {
        for b in versions.iter().skip(i + 1) {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn load_dir_reads_cedar_files_only_and_names_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hall.cedar"), HALL).unwrap();
    std::fs::write(dir.path().join("guards.cedar"), GUARD).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a policy").unwrap();
    std::fs::create_dir(dir.path().join("old")).unwrap();
    std::fs::write(dir.path().join("old/broken.cedar"), "not cedar").unwrap();
    let catalog = small_catalog();
    let set = PolicySet::load_dir(dir.path(), &catalog).unwrap();
    assert_eq!(
        set.policy_ids(),
        ["criminal-record-only-for-vetting", "hall"]
    );
    // the version does not depend on where the files are
    let same = load(&[("hall.cedar", HALL), ("guards.cedar", GUARD)]).unwrap();
    assert_eq!(set.version(), same.version());

    std::fs::write(
        dir.path().join("bad.cedar"),
        "@id(\"x\")\nforbid (principal, action, resource == RecordType::\"nope\");",
    )
    .unwrap();
    let err = PolicySet::load_dir(dir.path(), &catalog).unwrap_err();
    let expected = format!(
        "{}:2:40: unknown record type `nope`",
        dir.path().join("bad.cedar").display()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn load_dir_refuses_a_directory_without_policies() {
    let dir = tempfile::tempdir().unwrap();
    let err = PolicySet::load_dir(dir.path(), &small_catalog()).unwrap_err();
    assert!(err.to_string().contains("no `*.cedar` file"), "{err}");
    let missing = PolicySet::load_dir(&dir.path().join("missing"), &small_catalog()).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("cannot read the policy directory"),
        "{missing}"
    );
}

#[test]
fn schema_text_is_the_generated_schema() {
    let text = demo_set().schema_text();
    assert!(text.contains("entity RecordType"), "{text}");
    assert!(text.contains("purpose"), "{text}");
}

#[test]
fn policy_sets_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<PolicySet>();
    assert_send_sync::<Decision>();
    assert_send_sync::<Permit>();
    let set = Arc::new(demo_set());
    let handle = {
        let set = Arc::clone(&set);
        std::thread::spawn(move || {
            decide(&set, "hall", "tax_registration", "GENERAL-APPROVAL").allowed
        })
    };
    assert!(handle.join().unwrap());
}

// The repository's own policies, against the repository's catalog.

const HALL_ID: &str = "approval-hall-demo";
const PF_ID: &str = "provident-fund-bozhou";
const MR_ID: &str = "market-regulation-bozhou";

fn builtin() -> (Catalog, PolicySet) {
    let catalog = Catalog::builtin().unwrap();
    let set = PolicySet::from_sources(&PolicySet::builtin_files(), &catalog)
        .unwrap_or_else(|e| panic!("the repository's policies do not load:\n{e}"));
    (catalog, set)
}

const PF_WITHDRAWAL: [&str; 9] = [
    "real_estate_title",
    "resident_identity_card",
    "household_registration",
    "no_tax_arrears_certificate",
    "individual_income_tax_record",
    "tax_payment_certificate",
    "marriage_registration",
    "provident_fund_account",
    "provident_fund_withdrawal_record",
];

#[test]
fn builtin_files_are_the_policies_directory() {
    let names: Vec<String> = PolicySet::builtin_files()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "approval-hall-demo.cedar",
            "guards.cedar",
            "market-regulation.cedar",
            "provident-fund.cedar"
        ]
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let (catalog, set) = builtin();
    let from_dir = PolicySet::load_dir(&dir, &catalog).unwrap();
    assert_eq!(from_dir.version(), set.version());
}

#[test]
fn builtin_catalog_has_the_63_types() {
    assert_eq!(Catalog::builtin().unwrap().record_types().count(), 63);
}

#[test]
fn approval_hall_gets_every_shared_type_for_general_approval() {
    let (catalog, set) = builtin();
    let mut allowed = 0;
    for rt in catalog.record_types() {
        let d = decide(&set, HALL_ID, &rt.id, "GENERAL-APPROVAL");
        assert_eq!(
            d.allowed,
            rt.sharing_class != SharingClass::NotShared,
            "{}: {d:?}",
            rt.id
        );
        if d.allowed {
            allowed += 1;
            assert_eq!(d.policy_ids, ["approval-hall-general-approval"]);
        }
        // and nothing for another purpose
        assert!(
            !decide(&set, HALL_ID, &rt.id, "PF-WITHDRAWAL").allowed,
            "{}",
            rt.id
        );
    }
    assert_eq!(allowed, 63, "the demo needs every type");
}

#[test]
fn provident_fund_gets_its_types_per_purpose() {
    let (catalog, set) = builtin();
    for id in PF_WITHDRAWAL {
        let d = decide(&set, PF_ID, id, "PF-WITHDRAWAL");
        assert!(d.allowed, "{id}: {d:?}");
        assert_eq!(d.policy_ids, ["provident-fund-withdrawal"]);
        assert!(decide(&set, PF_ID, id, "PF-LOAN").allowed, "{id}");
    }
    for id in ["real_estate_mortgage_registration", "provident_fund_loan"] {
        assert!(decide(&set, PF_ID, id, "PF-LOAN").allowed, "{id}");
        let d = decide(&set, PF_ID, id, "PF-WITHDRAWAL");
        assert_eq!(d.policy_ids, [DEFAULT_DENY], "{id}");
    }
    // outside both grants, and a wrong purpose
    for (id, purpose) in [
        ("driving_licence", "PF-LOAN"),
        ("business_licence", "PF-WITHDRAWAL"),
        ("real_estate_title", "GENERAL-APPROVAL"),
    ] {
        let d = decide(&set, PF_ID, id, purpose);
        assert!(!d.allowed, "{id} {purpose}");
        assert_eq!(d.policy_ids, [DEFAULT_DENY]);
    }
    let withdrawal = catalog
        .record_types()
        .filter(|rt| decide(&set, PF_ID, &rt.id, "PF-WITHDRAWAL").allowed)
        .count();
    assert_eq!(withdrawal, PF_WITHDRAWAL.len());
}

#[test]
fn market_regulation_gets_company_types_for_business_registration() {
    let (catalog, set) = builtin();
    let mut companies = 0;
    for rt in catalog.record_types() {
        let d = decide(&set, MR_ID, &rt.id, "BUSINESS-REG");
        let company = rt.subject_kind == SubjectKind::Uscc;
        assert_eq!(
            d.allowed,
            company && rt.sharing_class != SharingClass::NotShared,
            "{}",
            rt.id
        );
        companies += usize::from(company);
        assert!(!decide(&set, MR_ID, &rt.id, "PF-LOAN").allowed);
    }
    assert!(companies > 0);
    assert!(decide(&set, MR_ID, "business_licence", "BUSINESS-REG").allowed);
}

#[test]
fn criminal_record_guard_beats_a_permit_outside_its_purposes() {
    let catalog = Catalog::builtin().unwrap();
    let mut files = PolicySet::builtin_files();
    files.push((
        "extra.cedar".to_owned(),
        "@id(\"extra\")\npermit (principal == Requester::\"x\", action, resource == RecordType::\"no_criminal_record_certificate\");".to_owned(),
    ));
    let set = PolicySet::from_sources(&files, &catalog).unwrap();
    let d = decide(&set, "x", "no_criminal_record_certificate", "PF-LOAN");
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, ["no-criminal-record-only-for-vetting"]);
    let d = decide(
        &set,
        "x",
        "no_criminal_record_certificate",
        "EMPLOYMENT-VETTING",
    );
    assert_eq!(d.policy_ids, ["extra"]);
    // the demo hall still gets it
    assert!(
        decide(
            &set,
            HALL_ID,
            "no_criminal_record_certificate",
            "GENERAL-APPROVAL"
        )
        .allowed
    );
}

#[test]
fn the_index_changes_no_decision() {
    let catalog = Catalog::builtin().unwrap();
    let mut files = PolicySet::builtin_files();
    files.push((
        "extra.cedar".to_owned(),
        r#"
@id("anyone-tax-audit")
permit (principal, action, resource == RecordType::"tax_registration") when { context.purpose == "AUDIT" };
@id("fund-no-court-records-for-loans")
forbid (principal == Requester::"provident-fund-bozhou", action, resource) when { resource.department == "court" && context.purpose == "PF-LOAN" };
@id("hall-or-fund-identity")
permit (principal, action, resource == RecordType::"resident_identity_card")
when { [Requester::"approval-hall-demo", Requester::"provident-fund-bozhou"].contains(principal) && context.purpose like "PF-*" };
"#
        .to_owned(),
    ));
    let set = PolicySet::from_sources(&files, &catalog).unwrap();

    // the reference: every policy, evaluated by Cedar without the index
    let mut all = cedar_policy::PolicySet::new();
    for (_, text) in &files {
        let parsed: cedar_policy::PolicySet = text.parse().unwrap();
        for policy in parsed.policies() {
            let id = policy.annotation("id").unwrap();
            all.add(policy.new_id(cedar_policy::PolicyId::new(id)))
                .unwrap();
        }
    }
    let authorizer = Authorizer::new();
    let mut allowed = 0;
    for requester in [HALL_ID, PF_ID, MR_ID, "stranger"] {
        for rt in catalog.record_types() {
            for purpose in [
                "GENERAL-APPROVAL",
                "PF-WITHDRAWAL",
                "PF-LOAN",
                "BUSINESS-REG",
                "AUDIT",
                "PF-OTHER",
                "",
            ] {
                let d = decide(&set, requester, &rt.id, purpose);
                let principal = EntityUid::from_type_name_and_id(
                    set.requester_type.clone(),
                    EntityId::new(requester),
                );
                let resource = set.record_types.get(rt.id.as_str()).unwrap().uid.clone();
                let request = Request::new(
                    principal,
                    set.read_action.clone(),
                    resource,
                    purpose_context(purpose).unwrap(),
                    None,
                )
                .unwrap();
                let response = authorizer.is_authorized(&request, &all, &set.entities);
                let mut expected: Vec<String> = response
                    .diagnostics()
                    .reason()
                    .map(ToString::to_string)
                    .collect();
                expected.sort();
                if expected.is_empty() {
                    expected.push(DEFAULT_DENY.to_owned());
                }
                let what = format!("{requester} {} {purpose}", rt.id);
                assert_eq!(
                    d.allowed,
                    response.decision() == cedar_policy::Decision::Allow,
                    "{what}"
                );
                assert_eq!(d.policy_ids, expected, "{what}");
                assert!(d.errors.is_empty(), "{what}");
                allowed += usize::from(d.allowed);
            }
        }
    }
    assert!(allowed > 63, "{allowed}");
}
