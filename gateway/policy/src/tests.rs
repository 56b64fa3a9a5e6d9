//! Loading and deciding through the public API, on a small catalog and on the repository's
//! own policies and catalog.

use std::sync::Arc;

use xgate_catalog::SharingClass;

use super::*;

/// A catalog with two departments and each sharing class.
fn small_catalog() -> Catalog {
    let record = |id: &str, kind: &str, class: &str| {
        // Every catalog schema requires its subject field.
        let field = if kind == "uscc" { "uscc" } else { "id_number" };
        format!(
            r#"{{"id":"{id}","name":"{id}","name_zh":"{id}","subject_kind":"{kind}","freshness_seconds":86400,"sharing_class":"{class}","schema":{{"type":"object","required":["{field}"],"properties":{{"{field}":{{"type":"string"}}}}}}}}"#
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

const PURPOSES: &str = r#"
[[purpose]]
code = "GENERAL-APPROVAL"
name = "general"
legal_basis = "law 1"

[[purpose]]
code = "AUDIT"
name = "audit"
legal_basis = "law 2"

[[purpose]]
code = "EMPLOYMENT-VETTING"
name = "vetting"
legal_basis = "law 3"

[[purpose]]
code = "X"
name = "x"
legal_basis = "law 4"

[[purpose]]
code = "Y"
name = "y"
legal_basis = "law 5"
"#;

const REQUESTERS: &str = r#"
[[requester]]
id = "hall"
name = "hall"
groups = ["city-bureaus"]

[[requester]]
id = "tax-office"
name = "tax office"
groups = ["city-bureaus"]

[[requester]]
id = "x"
name = "x"
"#;

/// The test data files, unless `files` brings its own.
fn with_data(files: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = sources(files);
    for (name, text) in [("purposes.toml", PURPOSES), ("requesters.toml", REQUESTERS)] {
        if !files.iter().any(|(n, _)| *n == name) {
            all.push((name.to_owned(), text.to_owned()));
        }
    }
    all
}

fn load(files: &[(&str, &str)]) -> Result<PolicySet, PolicyLoadError> {
    PolicySet::from_sources(&with_data(files), &small_catalog())
}

/// A fixed request time: 2026-11-25 10:00 China Standard Time.
fn at_ten() -> time::OffsetDateTime {
    time::macros::datetime!(2026-11-25 10:00 +8)
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
        now: at_ten(),
        explicit_request: false,
        consent: false,
        representation: "",
    })
}

const HALL: &str = r#"
@id("hall")
permit (principal == Requester::"hall", action == Action::"read", resource is View)
when { context.purpose == "GENERAL-APPROVAL" && resource.sharing_class != "not_shared" };
"#;

const TAX_OFFICE: &str = r#"
@id("tax-office")
permit (principal == Requester::"tax-office", action, resource)
when { context.purpose == "AUDIT" && resource in [RecordType::"tax_registration", RecordType::"individual_income_tax_record"] };
"#;

const GUARD: &str = r#"
@id("criminal-record-only-for-vetting")
forbid (principal, action, resource in RecordType::"no_criminal_record_certificate")
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
    let text = "@id(\"a\")\nforbid (principal, action, resource)\nwhen {\n  resource in RecordType::\"no_such_type\" };\n";
    assert_one_error(
        &[("x.cedar", text)],
        "x.cedar:4:15:",
        "unknown record type `no_such_type`",
    );
    // in the scope, and in a set literal, too
    let scope = "@id(\"a\")\nforbid (principal, action, resource in RecordType::\"nope\");";
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
    let text = "@id(\"a\")\npermit (principal, action, resource in RecordType::\"tax_registration\");\n\n// no id\npermit (principal, action, resource in RecordType::\"tax_registration\");\n";
    assert_one_error(
        &[("m.cedar", text)],
        "m.cedar:5:1:",
        "no `@id(\"...\")` annotation",
    );
    let empty =
        "@id(\"\")\npermit (principal, action, resource in RecordType::\"tax_registration\");";
    assert_one_error(&[("e.cedar", empty)], "e.cedar:1:1:", "`@id` is empty");
}

#[test]
fn duplicate_id_is_an_error_naming_the_first() {
    let first =
        "@id(\"same\")\npermit (principal, action, resource in RecordType::\"tax_registration\");";
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
        "@id(\"a\")\npermit (principal, action, resource in RecordType::\"sealed_case_file\");";
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
        "@id(\"a\")\nforbid (principal, action, resource in RecordType::\"sealed_case_file\");",
    )])
    .unwrap();
}

#[test]
fn a_permit_that_could_reach_a_not_shared_type_is_an_error() {
    for text in [
        "@id(\"a\")\npermit (principal, action, resource);",
        "@id(\"a\")\npermit (principal, action, resource is View) when { context.purpose == \"X\" };",
        // a disjunction excludes nothing
        "@id(\"a\")\npermit (principal, action, resource) when { resource in RecordType::\"tax_registration\" || context.purpose == \"X\" };",
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
        "[View::\"tax_registration.full\"].contains(resource)",
        "resource in RecordType::\"tax_registration\"",
    ] {
        let text =
            format!("@id(\"a\")\npermit (principal, action, resource) when {{ {condition} }};");
        load(&[("ok.cedar", &text)]).unwrap_or_else(|e| panic!("{condition}: {e}"));
    }
    let unless = "@id(\"a\")\npermit (principal, action, resource is View)\nunless { resource.sharing_class == \"not_shared\" || context.purpose == \"Y\" };";
    load(&[("ok.cedar", unless)]).unwrap();
}

#[test]
fn broad_permits_are_fine_when_nothing_is_not_shared() {
    let catalog = Catalog::from_sources(&[(
        "tax.json".to_owned(),
        r#"{"department":{"id":"tax","name":"t","name_zh":"t"},"record_types":[{"id":"tax_registration","name":"t","name_zh":"t","subject_kind":"uscc","freshness_seconds":60,"sharing_class":"unconditional","schema":{"type":"object","required":["uscc"],"properties":{"uscc":{"type":"string"}}}}]}"#.to_owned(),
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
    let text = "@id(\"a\")\npermit (principal == ?principal, action, resource in RecordType::\"tax_registration\");";
    assert_one_error(&[("t.cedar", text)], "t.cedar:1:1:", "templates");
}

#[test]
fn errors_from_several_files_are_all_reported_in_order() {
    let errors = load_errors(&[
        (
            "b.cedar",
            "permit (principal, action, resource in RecordType::\"tax_registration\");",
        ),
        (
            "a.cedar",
            "@id(\"a\")\nforbid (principal, action, resource in RecordType::\"zzz\");",
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
    std::fs::write(dir.path().join("purposes.toml"), PURPOSES).unwrap();
    std::fs::write(dir.path().join("requesters.toml"), REQUESTERS).unwrap();
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
        "@id(\"x\")\nforbid (principal, action, resource in RecordType::\"nope\");",
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

fn builtin() -> (Catalog, PolicySet) {
    let catalog = Catalog::builtin().unwrap();
    let set = PolicySet::from_sources(&PolicySet::builtin_files(), &catalog)
        .unwrap_or_else(|e| panic!("the repository's policies do not load:\n{e}"));
    (catalog, set)
}

fn request<'a>(
    requester: &'a str,
    record_type: &'a str,
    view: &'a str,
    purpose: &'a str,
    item: Option<&'a str>,
    now: time::OffsetDateTime,
) -> AccessRequest<'a> {
    AccessRequest {
        requester,
        record_type,
        view,
        purpose,
        item,
        now,
        explicit_request: false,
        consent: false,
        representation: "",
    }
}

#[test]
fn builtin_files_are_the_policies_directory() {
    let names: Vec<String> = PolicySet::builtin_files()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"guards.cedar".to_owned()), "{names:?}");
    assert!(names.contains(&"items.toml".to_owned()), "{names:?}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let (catalog, set) = builtin();
    let from_dir = PolicySet::load_dir(&dir, &catalog).unwrap();
    assert_eq!(from_dir.version(), set.version());
    assert_eq!(from_dir.files(), names);
}

#[test]
fn builtin_catalog_has_the_63_types() {
    assert_eq!(Catalog::builtin().unwrap().record_types().count(), 63);
}

#[test]
fn approval_hall_gets_every_shared_type_for_general_approval() {
    let (catalog, set) = builtin();
    for rt in catalog.record_types() {
        let d = decide(&set, HALL_ID, &rt.id, "GENERAL-APPROVAL");
        // Conditional types, without an item, only on the subject's say.
        assert_eq!(
            d.allowed,
            rt.sharing_class == SharingClass::Unconditional,
            "{}",
            rt.id
        );
        assert_eq!(d.daily_quota, None);
        let scanned = set.decide(&AccessRequest {
            explicit_request: true,
            ..request(HALL_ID, &rt.id, "full", "GENERAL-APPROVAL", None, at_ten())
        });
        assert_eq!(
            scanned.allowed,
            rt.sharing_class != SharingClass::NotShared,
            "{}",
            rt.id
        );
        if rt.sharing_class == SharingClass::Conditional {
            assert!(
                d.reasons.iter().any(|r| r.contains("explicit request")),
                "{}: {:?}",
                rt.id,
                d.reasons
            );
        }
    }
}

/// The issue's acceptance: the fund centre fetching the withdrawal item gets the title's
/// summary and a yes/no on tax arrears, not the full records; no grant means default deny.
#[test]
fn provident_fund_withdrawal_gets_summaries_and_predicates_only() {
    let (catalog, set) = builtin();
    let item = set.item("PF-WITHDRAWAL").unwrap();
    assert_eq!(item.purpose, "PF-WITHDRAWAL");
    for entry in &item.entries {
        let d = set.decide(&request(
            PF_ID,
            &entry.record_type,
            &entry.view,
            "PF-WITHDRAWAL",
            Some("PF-WITHDRAWAL"),
            at_ten(),
        ));
        assert!(d.allowed, "{entry:?}: {d:?}");
        assert_eq!(d.daily_quota, Some(500));
        assert_eq!(d.permit().unwrap().view(), entry.view);
    }
    let title = catalog.record_type("real_estate_title").unwrap();
    let summary = set.decide(&request(
        PF_ID,
        "real_estate_title",
        "summary",
        "PF-WITHDRAWAL",
        Some("PF-WITHDRAWAL"),
        at_ten(),
    ));
    assert!(summary.allowed);
    assert!(!title.view("summary").unwrap().is_predicate());
    let arrears = set.decide(&request(
        PF_ID,
        "no_tax_arrears_certificate",
        "no_tax_arrears",
        "PF-WITHDRAWAL",
        Some("PF-WITHDRAWAL"),
        at_ten(),
    ));
    assert!(arrears.allowed);
    // Without the item: no grant, and for a conditional type the guard too.
    for (record_type, view, denied_by) in [
        ("real_estate_title", "full", DEFAULT_DENY),
        (
            "no_tax_arrears_certificate",
            "full",
            "conditional-records-need-an-item-or-the-subjects-say",
        ),
    ] {
        let d = set.decide(&request(
            PF_ID,
            record_type,
            view,
            "PF-WITHDRAWAL",
            None,
            at_ten(),
        ));
        assert!(!d.allowed, "{record_type}.{view}");
        assert_eq!(d.policy_ids, [denied_by]);
    }
    let d = set.decide(&request(
        "no-grant-bureau",
        "real_estate_title",
        "summary",
        "PF-WITHDRAWAL",
        None,
        at_ten(),
    ));
    assert!(!d.allowed);
    assert_eq!(d.policy_ids, [DEFAULT_DENY]);
}

#[test]
fn item_requests_are_checked_against_the_item() {
    let (_, set) = builtin();
    let d = set.decide(&request(
        PF_ID,
        "real_estate_title",
        "full",
        "PF-WITHDRAWAL",
        Some("PF-WITHDRAWAL"),
        at_ten(),
    ));
    assert!(!d.allowed);
    assert_eq!(
        d.errors,
        ["approval item `PF-WITHDRAWAL` does not need view `full` of `real_estate_title`"]
    );
    let d = set.decide(&request(
        PF_ID,
        "real_estate_title",
        "summary",
        "PF-LOAN",
        Some("PF-WITHDRAWAL"),
        at_ten(),
    ));
    assert_eq!(
        d.errors,
        ["approval item `PF-WITHDRAWAL` is for purpose `PF-WITHDRAWAL`, not `PF-LOAN`"]
    );
    let d = set.decide(&request(
        PF_ID,
        "real_estate_title",
        "summary",
        "PF-LOAN",
        Some("NOPE"),
        at_ten(),
    ));
    assert_eq!(d.errors, ["unknown approval item `NOPE`"]);
    let d = set.decide(&request(
        PF_ID,
        "real_estate_title",
        "nope",
        "PF-LOAN",
        None,
        at_ten(),
    ));
    assert_eq!(
        d.errors,
        ["record type `real_estate_title` has no view `nope`"]
    );
}

#[test]
fn data_files_are_exposed() {
    let (_, set) = builtin();
    assert!(
        set.purpose("PF-WITHDRAWAL")
            .unwrap()
            .legal_basis
            .contains("住房公积金管理条例")
    );
    assert!(set.purpose("NOPE").is_none());
    assert_eq!(
        set.requester(PF_ID).unwrap().groups,
        ["bozhou-approval-bureaus"]
    );
    assert!(set.requester("no-grant-bureau").unwrap().groups.is_empty());
    assert!(set.items().iter().any(|i| i.code == "PF-LOAN"));
    assert_eq!(set.purposes().len(), 10);
}

#[test]
fn builtin_cases_pass_and_cover_every_policy() {
    let (catalog, set) = builtin();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/tests");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        files.push((
            path.display().to_string(),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    let report = run_cases(&set, &catalog, &files);
    assert!(report.passed(), "{report:#?}");
    assert!(report.decisions > 20);
}

#[test]
fn case_mismatches_are_reported() {
    let (catalog, set) = builtin();
    let case = r#"
[[case]]
name = "wrong"
requester = "no-grant-bureau"
record_type = "real_estate_title"
purpose = "GENERAL-APPROVAL"
expect = "allow"
policies = ["approval-hall-general-approval"]
"#;
    let report = run_cases(&set, &catalog, &[("c.toml".to_owned(), case.to_owned())]);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        report.failures[0].message,
        "`real_estate_title.full`: expected allow, got deny; expected policies [approval-hall-general-approval], got [default deny]"
    );
    assert!(!report.uncovered.is_empty());
    assert!(!report.passed());
}

#[test]
fn explain_names_each_candidate_policy() {
    let (_, set) = builtin();
    let evening = time::macros::datetime!(2026-11-25 20:00 +8);
    let e = set.explain(&request(
        PF_ID,
        "resident_identity_card",
        "card_valid",
        "PF-LOAN",
        None,
        evening,
    ));
    assert!(!e.decision.allowed);
    let text = e.to_string();
    assert!(text.contains("in groups bozhou-approval-bureaus"), "{text}");
    assert!(
        text.contains("permit `bozhou-bureaus-identity-checks-office-hours`: does not apply"),
        "{text}"
    );
    assert!(
        text.contains("no permit policy applies: default deny"),
        "{text}"
    );
    let e = set.explain(&request(
        PF_ID,
        "resident_identity_card",
        "card_valid",
        "PF-LOAN",
        None,
        at_ten(),
    ));
    assert!(
        e.to_string()
            .contains("permit `bozhou-bureaus-identity-checks-office-hours`: applies")
    );
}

// ---- the new model: views, groups, items, time, quotas, data files ----

fn decide_at(
    set: &PolicySet,
    requester: &str,
    record_type: &str,
    view: &str,
    purpose: &str,
    item: Option<&str>,
    now: time::OffsetDateTime,
) -> Decision {
    set.decide(&request(requester, record_type, view, purpose, item, now))
}

const ITEMS: &str = r#"
[[item]]
code = "TAX-CHECK"
name = "tax check"
purpose = "AUDIT"
entries = [{ record_type = "tax_registration", view = "exists" }]
"#;

#[test]
fn a_view_literal_grants_that_view_only() {
    let policy = r#"@id("v") permit (principal == Requester::"x", action, resource == View::"tax_registration.exists") when { context.purpose == "AUDIT" };"#;
    let set = load(&[("v.cedar", policy)]).unwrap();
    let now = at_ten();
    let d = decide_at(&set, "x", "tax_registration", "exists", "AUDIT", None, now);
    assert!(d.allowed);
    assert_eq!(d.permit().unwrap().view(), "exists");
    assert!(!decide_at(&set, "x", "tax_registration", "full", "AUDIT", None, now).allowed);
}

#[test]
fn predicate_attribute_separates_views() {
    let policy = r#"@id("p") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration") when { resource.predicate };"#;
    let set = load(&[("p.cedar", policy)]).unwrap();
    assert!(decide_at(&set, "x", "tax_registration", "exists", "X", None, at_ten()).allowed);
    assert!(!decide_at(&set, "x", "tax_registration", "full", "X", None, at_ten()).allowed);
}

#[test]
fn groups_grant_their_members() {
    let policy = r#"@id("g") permit (principal in RequesterGroup::"city-bureaus", action, resource in RecordType::"tax_registration");"#;
    let set = load(&[("g.cedar", policy)]).unwrap();
    for (requester, allowed) in [
        ("hall", true),
        ("tax-office", true),
        ("x", false),
        ("stranger", false),
    ] {
        assert_eq!(
            decide(&set, requester, "tax_registration", "X").allowed,
            allowed,
            "{requester}"
        );
    }
}

#[test]
fn items_are_a_condition() {
    let policy = r#"@id("i") permit (principal == Requester::"x", action, resource) when { context.item == "TAX-CHECK" && resource in RecordType::"tax_registration" };"#;
    let set = load(&[("i.cedar", policy), ("items.toml", ITEMS)]).unwrap();
    assert!(
        decide_at(
            &set,
            "x",
            "tax_registration",
            "exists",
            "AUDIT",
            Some("TAX-CHECK"),
            at_ten()
        )
        .allowed
    );
    // no item: the condition is false
    assert!(
        !decide_at(
            &set,
            "x",
            "tax_registration",
            "exists",
            "AUDIT",
            None,
            at_ten()
        )
        .allowed
    );
}

#[test]
fn validity_periods_use_the_request_time() {
    let policy = r#"@id("t") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration") when { context.now >= datetime("2026-01-01T00:00:00+0800") && context.now < datetime("2027-01-01T00:00:00+0800") };"#;
    let set = load(&[("t.cedar", policy)]).unwrap();
    let at = |t| decide_at(&set, "x", "tax_registration", "full", "X", None, t).allowed;
    assert!(at(time::macros::datetime!(2026-01-01 00:00 +8)));
    assert!(!at(time::macros::datetime!(2025-12-31 23:59:59 +8)));
    assert!(at(time::macros::datetime!(2026-12-31 23:59:59 +8)));
    assert!(!at(time::macros::datetime!(2027-01-01 00:00 +8)));
}

#[test]
fn office_hours_use_local_time() {
    let policy = r#"@id("o") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration") when { context.local_time >= duration("8h30m") && context.local_time < duration("17h") };"#;
    let set = load(&[("o.cedar", policy)]).unwrap();
    let at = |t| decide_at(&set, "x", "tax_registration", "full", "X", None, t).allowed;
    assert!(at(time::macros::datetime!(2026-11-25 08:30 +8)));
    assert!(at(time::macros::datetime!(2026-11-25 00:30 UTC))); // 08:30 in UTC+8
    assert!(!at(time::macros::datetime!(2026-11-25 08:29:59 +8)));
    assert!(at(time::macros::datetime!(2026-11-25 16:59:59 +8)));
    assert!(!at(time::macros::datetime!(2026-11-25 17:00 +8)));
    // the memo keys such decisions by minute: the same minute twice, then the next one
    assert!(!at(time::macros::datetime!(2026-11-25 17:00:30 +8)));
    assert!(at(time::macros::datetime!(2026-11-25 16:59:01 +8)));
}

#[test]
fn daily_quota_is_the_smallest_of_the_determining_permits() {
    let a = r#"@id("a") @daily_quota("100") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration");"#;
    let b = r#"@id("b") @daily_quota("20") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration") when { context.purpose == "AUDIT" };"#;
    let c = r#"@id("c") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration") when { context.purpose == "X" };"#;
    let set = load(&[("a.cedar", a), ("b.cedar", b), ("c.cedar", c)]).unwrap();
    assert_eq!(
        decide(&set, "x", "tax_registration", "Y").daily_quota,
        Some(100)
    );
    assert_eq!(
        decide(&set, "x", "tax_registration", "AUDIT").daily_quota,
        Some(20)
    );
    // a determining permit without a quota lifts it
    assert_eq!(decide(&set, "x", "tax_registration", "X").daily_quota, None);
    assert_eq!(
        decide(&set, "hall", "tax_registration", "X").daily_quota,
        None
    );
}

#[test]
fn memo_gives_the_same_answers_as_evaluation() {
    let set = demo_set();
    for _ in 0..3 {
        assert!(decide(&set, "tax-office", "tax_registration", "AUDIT").allowed);
        assert!(!decide(&set, "tax-office", "tax_registration", "X").allowed);
        assert_eq!(
            decide(
                &set,
                "hall",
                "no_criminal_record_certificate",
                "GENERAL-APPROVAL"
            )
            .policy_ids,
            ["criminal-record-only-for-vetting"]
        );
    }
}

#[test]
fn unknown_names_in_policies_are_load_errors_at_the_literal() {
    let cases = [
        (
            r#"@id("a") permit (principal == Requester::"ghost", action, resource);"#,
            "a.cedar:1:31: unknown requester `ghost` (not in `requesters.toml`)",
        ),
        (
            r#"@id("a") permit (principal in RequesterGroup::"ghosts", action, resource);"#,
            "a.cedar:1:31: unknown requester group `ghosts`",
        ),
        (
            r#"@id("a") permit (principal, action, resource == View::"tax_registration.nope");"#,
            "a.cedar:1:49: record type `tax_registration` has no view `nope`",
        ),
        (
            r#"@id("a") permit (principal, action, resource == View::"nope.full");"#,
            "a.cedar:1:49: unknown record type `nope` in view `nope.full`",
        ),
        (
            r#"@id("a") permit (principal, action, resource in RecordType::"tax_registration") when { context.purpose == "NOPE" };"#,
            "a.cedar:1:107: unknown purpose `NOPE` (not in `purposes.toml`)",
        ),
        (
            r#"@id("a") permit (principal, action, resource in RecordType::"tax_registration") when { ["X", "NOPE"].contains(context.purpose) };"#,
            "unknown purpose `NOPE`",
        ),
        (
            r#"@id("a") permit (principal, action, resource in RecordType::"tax_registration") when { context.item == "NOPE" };"#,
            "unknown approval item `NOPE` (not in `items.toml` nor `screening.toml`)",
        ),
        (
            r#"@id("a") permit (principal, action, resource in RecordType::"tax_registration") when { resource.view == "nope" };"#,
            "unknown view name `nope`",
        ),
        (
            r#"@id("a") @daily_quota("0") permit (principal, action, resource in RecordType::"tax_registration");"#,
            "a.cedar:1:10: `@daily_quota(\"0\")` must be a positive integer",
        ),
        (
            r#"@id("a") @daily_quota("lots") permit (principal, action, resource in RecordType::"tax_registration");"#,
            "must be a positive integer",
        ),
        (
            r#"@id("a") @daily_quota("5") forbid (principal, action, resource);"#,
            "`@daily_quota` only applies to permit policies",
        ),
        (
            r#"@id("a") permit (principal, action, resource == View::"sealed_case_file.exists");"#,
            "record type `sealed_case_file` is not_shared in the catalog",
        ),
    ];
    for (policy, needle) in cases {
        let errors = load_errors(&[("a.cedar", policy)]);
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "`{needle}` not in {errors:#?}"
        );
    }
}

#[test]
fn data_file_errors_name_file_and_line() {
    let ok = r#"@id("a") permit (principal == Requester::"x", action, resource in RecordType::"tax_registration");"#;
    let item = |entries: &str| {
        format!(
            "[[item]]\ncode = \"C\"\nname = \"c\"\npurpose = \"AUDIT\"\nentries = [\n{entries}\n]\n"
        )
    };
    let cases = [
        (item(r#"{ record_type = "nope", view = "full" }"#), "items.toml:6:17: unknown record type `nope`"),
        (item(r#"{ record_type = "tax_registration", view = "nope" }"#), "items.toml:6:44: record type `tax_registration` has no view `nope`"),
        (item(r#"{ record_type = "sealed_case_file", view = "full" }"#), "items.toml:6:17: record type `sealed_case_file` is not_shared"),
        (item(r#"{ record_type = "tax_registration", view = "full", params = { n = "1" } }"#), "view `tax_registration.full` has no parameter `n`"),
        (item(r#"{ record_type = "tax_registration", view = "full" },{ record_type = "tax_registration", view = "full" }"#), "listed twice in item `C`"),
        ("[[item]]\ncode = \"C\"\nname = \"c\"\npurpose = \"NOPE\"\nentries = []\n".to_owned(), "items.toml:4:11: unknown purpose `NOPE`"),
        ("[[item]]\ncode = \"C\"\nname = \"c\"\npurpose = \"AUDIT\"\nentries = [{ record_type = 1 }]\n".to_owned(), "items.toml:5:"),
        ("[[item]]\ncode = \"c\"\nname = \"c\"\npurpose = \"AUDIT\"\nentries = [{ record_type = \"tax_registration\", view = \"full\" }]\n".to_owned(), "item code `c` does not match"),
    ];
    for (items, needle) in cases {
        let errors = load_errors(&[("a.cedar", ok), ("items.toml", &items)]);
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "`{needle}` not in {errors:#?}"
        );
    }
    let dup = "[[purpose]]\ncode = \"A\"\nname = \"a\"\nlegal_basis = \"l\"\n[[purpose]]\ncode = \"A\"\nname = \"a\"\nlegal_basis = \"l\"\n";
    let errors = load_errors(&[("a.cedar", ok), ("purposes.toml", dup)]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("purposes.toml:6:8: purpose `A` declared twice")),
        "{errors:#?}"
    );
    let errors = load_errors(&[("a.cedar", ok), ("extra.toml", "")]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("extra.toml: unknown data file")),
        "{errors:#?}"
    );
    let bad_group = "[[requester]]\nid = \"x\"\nname = \"x\"\ngroups = [\"Bad Group\"]\n";
    let errors = load_errors(&[("a.cedar", ok), ("requesters.toml", bad_group)]);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("requesters.toml:4:11: group id `Bad Group`")),
        "{errors:#?}"
    );
}

#[test]
fn version_covers_data_files() {
    let a = load(&[("hall.cedar", HALL)]).unwrap();
    let b = PolicySet::from_sources(
        &[
            ("hall.cedar".to_owned(), HALL.to_owned()),
            (
                "purposes.toml".to_owned(),
                format!("{PURPOSES}\n# changed\n"),
            ),
            ("requesters.toml".to_owned(), REQUESTERS.to_owned()),
        ],
        &small_catalog(),
    )
    .unwrap();
    assert_ne!(a.version(), b.version());
    assert!(a.files().contains(&"purposes.toml".to_owned()));
}

/// A guard only the subject's own request (a scanned code) lifts: the same
/// request decides both ways by `context.explicit_request`, and the memo
/// keeps the two decisions apart.
#[test]
fn conditional_types_can_require_the_subjects_explicit_request() {
    const NEEDS_THE_SUBJECT: &str = r#"
@id("conditional-needs-explicit-request")
forbid (principal, action, resource is View)
when { resource.sharing_class == "conditional" }
unless { context.explicit_request };
"#;
    let set = load(&[("hall.cedar", HALL), ("guard.cedar", NEEDS_THE_SUBJECT)]).unwrap();
    let ask = |explicit_request: bool, record_type: &str| {
        set.decide(&AccessRequest {
            requester: "hall",
            record_type,
            view: "full",
            purpose: "GENERAL-APPROVAL",
            item: None,
            now: at_ten(),
            explicit_request,
            consent: false,
            representation: "",
        })
    };
    for _ in 0..2 {
        let without = ask(false, "individual_income_tax_record");
        assert!(!without.allowed);
        assert_eq!(without.policy_ids, ["conditional-needs-explicit-request"]);
        let with = ask(true, "individual_income_tax_record");
        assert!(with.allowed, "{with:?}");
        assert_eq!(with.policy_ids, ["hall"]);
        assert!(
            ask(false, "resident_identity_card").allowed,
            "unconditional types need no code"
        );
    }
}

/// CONDITIONAL types shared on the subject's say: a scanned code or a
/// consent on record; `reads_consent` tells the gateway to look consents up.
#[test]
fn a_consent_on_record_lifts_the_guard_too() {
    const GUARD: &str = r#"
@id("conditional-needs-the-subjects-say")
@reason("a conditional type needs the subject's scanned code or a consent on record")
forbid (principal, action, resource is View)
when { resource.sharing_class == "conditional" }
unless { context.explicit_request || context.consent };
"#;
    let set = load(&[("hall.cedar", HALL), ("guard.cedar", GUARD)]).unwrap();
    assert!(set.reads_consent());
    assert!(!demo_set().reads_consent());
    let ask = |consent: bool| {
        set.decide(&AccessRequest {
            requester: "hall",
            record_type: "individual_income_tax_record",
            view: "full",
            purpose: "GENERAL-APPROVAL",
            item: None,
            now: at_ten(),
            explicit_request: false,
            consent,
            representation: "",
        })
    };
    for _ in 0..2 {
        let refused = ask(false);
        assert!(!refused.allowed);
        assert_eq!(
            refused.reasons,
            ["a conditional type needs the subject's scanned code or a consent on record"]
        );
        let allowed = ask(true);
        assert!(allowed.allowed);
        assert!(allowed.reasons.is_empty());
    }
}

/// "Family agency": a policy admits the subject and a verified spouse and
/// refuses any other representative; the memo keeps the answers apart.
#[test]
fn policies_decide_on_the_verified_representation() {
    const AGENCY: &str = r#"
@id("only-the-subject-or-a-spouse")
forbid (principal, action, resource in RecordType::"individual_income_tax_record")
unless { context.representation == "" || context.representation == "spouse" };
"#;
    let set = load(&[("hall.cedar", HALL), ("agency.cedar", AGENCY)]).unwrap();
    let ask = |representation: &str| {
        set.decide(&AccessRequest {
            requester: "hall",
            record_type: "individual_income_tax_record",
            view: "full",
            purpose: "GENERAL-APPROVAL",
            item: None,
            now: at_ten(),
            explicit_request: false,
            consent: false,
            representation,
        })
    };
    for _ in 0..2 {
        assert!(ask("").allowed);
        assert!(ask("spouse").allowed);
        let refused = ask("attorney");
        assert!(!refused.allowed);
        assert_eq!(refused.policy_ids, ["only-the-subject-or-a-spouse"]);
    }
}

/// The repository's policies with `extra` appended to `screening.toml`.
fn builtin_with_screening(extra: &str) -> Result<PolicySet, PolicyLoadError> {
    let catalog = Catalog::builtin().unwrap();
    let files: Vec<(String, String)> = PolicySet::builtin_files()
        .into_iter()
        .map(|(name, text)| {
            if name.ends_with(crate::SCREENING_FILE) {
                (name, format!("{text}\n{extra}"))
            } else {
                (name, text)
            }
        })
        .collect();
    PolicySet::from_sources(&files, &catalog)
}

#[test]
fn screening_items_are_checked_at_load() {
    let item = |kind: &str, combine: &str, conditions: &str| {
        format!(
            "[[screening]]\ncode = \"S\"\nname = \"s\"\npurpose = \"ELDERLY-ALLOWANCE\"\nsubject_kind = \"{kind}\"\nmatch = \"{combine}\"\nconditions = [\n{conditions}\n]\n"
        )
    };
    let age = r#"{ record_type = "resident_identity_card", view = "age_at_least", params = { n = "60" } }"#;
    let cases = [
        (
            item(
                "resident_id",
                "all",
                r#"{ record_type = "nope", view = "exists" }"#,
            ),
            "unknown record type `nope`",
        ),
        (
            item(
                "resident_id",
                "all",
                r#"{ record_type = "resident_identity_card", view = "summary" }"#,
            ),
            "is not a predicate view",
        ),
        (
            item(
                "resident_id",
                "all",
                r#"{ record_type = "resident_identity_card", view = "age_at_least" }"#,
            ),
            "needs parameter `n`",
        ),
        (
            item(
                "resident_id",
                "all",
                r#"{ record_type = "business_licence", view = "has_valid_business_licence" }"#,
            ),
            "is about `uscc` subjects, the item screens `resident_id`",
        ),
        (
            item("resident_id", "most", age),
            "match `most` is neither `all` nor `any`",
        ),
        (
            item("person", "all", age),
            "subject_kind `person` is neither",
        ),
        (item("resident_id", "all", ""), "has no conditions"),
        (
            item("resident_id", "all", &format!("{age},{age}")),
            "asked twice",
        ),
        (
            item("resident_id", "all", &age.replace("view", "colour")),
            "unknown field `colour`",
        ),
        (
            item("resident_id", "all", age).replace("code = \"S\"", "code = \"PF-LOAN\""),
            "is an approval item's code",
        ),
        (
            item("resident_id", "all", age).replace("code = \"S\"", "code = \"ELDERLY-ALLOWANCE\""),
            "declared twice",
        ),
        (
            item("resident_id", "all", age)
                .replace("purpose = \"ELDERLY-ALLOWANCE\"", "purpose = \"NOPE\""),
            "unknown purpose `NOPE`",
        ),
    ];
    for (extra, needle) in cases {
        let errors = match builtin_with_screening(&extra) {
            Ok(_) => panic!("loaded with {extra}"),
            Err(e) => e.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        };
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("screening.toml:") && e.contains(needle)),
            "`{needle}` not in {errors:#?}"
        );
    }
    // An item that passes every check loads, its departments from the catalog.
    let set = builtin_with_screening(&item("resident_id", "any", age)).unwrap();
    assert_eq!(
        set.screening("S").unwrap().conditions[0].department,
        "public-security"
    );
}

#[test]
fn screening_is_its_own_action_with_limits_from_the_permit() {
    let (_, set) = builtin();
    let screen = set.decide_screen("civil-affairs-bozhou", "ELDERLY-ALLOWANCE", at_ten());
    assert!(screen.allowed, "{screen:?}");
    assert_eq!(screen.decisions.len(), 3);
    assert_eq!(screen.max_subjects_per_run, Some(200_000));
    assert_eq!(screen.daily_subjects, Some(1_000_000));
    // A screen grant never yields the Permit that releases a view.
    assert!(screen.decisions.iter().all(|d| d.permit().is_none()));
    let other = set.decide_screen("civil-affairs-bozhou", "SMALL-TAXPAYER-EXEMPTION", at_ten());
    assert!(!other.allowed && other.max_subjects_per_run.is_none());
    let unknown = set.decide_screen("civil-affairs-bozhou", "NOPE", at_ten());
    assert!(!unknown.allowed);
    assert_eq!(unknown.errors, ["unknown screening item `NOPE`"]);
    // Reading the same predicate is not granted by the screen permit.
    let read = set.decide(&request(
        "civil-affairs-bozhou",
        "resident_identity_card",
        "age_at_least",
        "ELDERLY-ALLOWANCE",
        None,
        at_ten(),
    ));
    assert!(!read.allowed);
    let item = set.screening("ELDERLY-ALLOWANCE").unwrap();
    assert_eq!(
        item.departments(),
        ["public-security", "human-resources-social-security"]
    );
    assert!(item.conditions[2].negate);
}
