//! The SQL adapter's mapping files in `mappings/`: each parses as TOML, names
//! its department, reads its SQLite database, and covers exactly that
//! department's catalog types with exactly their schema fields, each read
//! from a column of the table `xgate-demo-seed` writes, with the subject as
//! the only parameter; and each has a batch query, the same query for a
//! list of subjects, that the SQL adapter answers exactly as it answers the
//! subjects one by one.

// Helpers of the tests below fail as the tests do: by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use xgate_catalog::Catalog;
use xgate_synth::store::{ColumnType, Table};

/// Departments whose mapping files must be present.
fn mapping_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn table_of<'a>(department: &str, record_type: &str) -> &'a Table {
    let spec = xgate_demo_data::DEPARTMENTS
        .iter()
        .find(|d| d.id == department)
        .unwrap_or_else(|| panic!("no department spec `{department}`"));
    spec.tables
        .iter()
        .find(|t| t.record_type == record_type)
        .unwrap_or_else(|| panic!("`{department}` has no table `{record_type}`"))
}

/// Checks one record type's mapping; returns its record type id.
fn check_record_type(
    file: &str,
    department: &str,
    entry: &toml::Value,
    catalog: &Catalog,
) -> String {
    let id = entry["record_type"].as_str().unwrap().to_owned();
    let record_type = catalog
        .record_type(&id)
        .unwrap_or_else(|| panic!("{file}: unknown record type `{id}`"));
    assert_eq!(record_type.department, department, "{file}: `{id}`");
    let table = table_of(department, &id);

    let query = entry["query"].as_str().unwrap();
    assert_eq!(
        query.matches(':').count(),
        1,
        "{file}: `{id}` has one parameter"
    );
    let normalised = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let tail = format!(
        "FROM {id} WHERE {} = :subject ORDER BY row_id",
        table.subject
    );
    assert!(
        normalised.ends_with(&tail),
        "{file}: `{id}` query {normalised}"
    );
    // The batch form: the same query, the subject in a list.
    let batch = entry["batch_query"]
        .as_str()
        .unwrap_or_else(|| panic!("{file}: `{id}` has no batch_query"));
    assert_eq!(
        batch,
        query.replace("= :subject", "IN (:subjects)"),
        "{file}: `{id}` batch_query"
    );
    assert!(entry.get("batch_subject").is_none(), "{file}: `{id}`");
    let selected: Vec<&str> = normalised
        .strip_prefix("SELECT ")
        .and_then(|s| s.split(" FROM ").next())
        .unwrap()
        .split(", ")
        .collect();

    let properties: BTreeSet<&str> = record_type.schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let fields = entry["fields"].as_table().unwrap();
    let mapped: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(mapped, properties, "{file}: fields of `{id}`");
    for (field, mapping) in fields {
        let (column, ty) = match mapping {
            toml::Value::String(column) => (column.as_str(), None),
            toml::Value::Table(t) => (
                t["column"].as_str().unwrap(),
                t.get("type").and_then(toml::Value::as_str),
            ),
            other => panic!("{file}: `{id}.{field}` is {other}"),
        };
        assert!(
            selected.contains(&column),
            "{file}: `{id}` does not select `{column}`"
        );
        let spec = table
            .columns
            .iter()
            .find(|c| c.name == column)
            .unwrap_or_else(|| panic!("{file}: `{id}` has no column `{column}`"));
        let schema_type = &record_type.schema["properties"][field.as_str()]["type"];
        let is_list =
            schema_type == "array" || schema_type == &serde_json::json!(["array", "null"]);
        assert_eq!(
            spec.ty == ColumnType::TextList,
            is_list,
            "{file}: `{id}.{field}`"
        );
        if is_list {
            assert_eq!(ty, Some("string_list"), "{file}: `{id}.{field}`");
        }
    }
    id
}

#[test]
fn every_mapping_covers_exactly_its_departments_catalog_types() {
    let catalog = Catalog::builtin().unwrap();
    let files = mapping_files();
    let mut seen = BTreeSet::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mapping: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let department = mapping["department"].as_str().unwrap();
        assert_eq!(file, format!("{department}.toml"));
        assert!(
            catalog.department(department).is_some(),
            "{file}: unknown department"
        );
        assert_eq!(
            mapping["database"]["url"].as_str(),
            Some(format!("sqlite:{department}.db").as_str()),
            "{file}"
        );
        let types: Vec<String> = mapping["record_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| check_record_type(&file, department, entry, &catalog))
            .collect();
        let expected: Vec<String> = catalog
            .types_of_department(department)
            .map(|t| t.id.clone())
            .collect();
        assert_eq!(types, expected, "{file}: record types");
        seen.insert(department.to_owned());
    }
    // Every department seeded for the SQL adapter has its mapping.
    for spec in xgate_demo_data::DEPARTMENTS {
        assert!(seen.contains(spec.id), "no mapping for `{}`", spec.id);
    }
    assert_eq!(seen.len(), xgate_demo_data::DEPARTMENTS.len());
}

/// A schema field left unmapped is caught.
#[test]
fn a_wrong_field_is_caught() {
    let catalog = Catalog::builtin().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/water-resources.toml"),
    )
    .unwrap();
    let mapping: toml::Table = toml::from_str(&text).unwrap();
    let mut entry = mapping["record_types"].as_array().unwrap()[0].clone();
    let check = |entry: &toml::Value| {
        let entry = entry.clone();
        let catalog = std::panic::AssertUnwindSafe(&catalog);
        std::panic::catch_unwind(move || {
            check_record_type("water-resources.toml", "water-resources", &entry, &catalog)
        })
    };
    assert!(check(&entry).is_ok());
    let fields = entry
        .get_mut("fields")
        .and_then(toml::Value::as_table_mut)
        .unwrap();
    fields.remove("purpose");
    let outcome = check(&entry);
    assert!(outcome.is_err());
}

/// Every demo department served by the SQL adapter from its seeded database
/// and mapping: for each record type, a batch of all its subjects (strangers
/// and repeats among them) gets what the subjects get one by one, through
/// the batch query.
#[tokio::test]
async fn every_batch_query_answers_as_the_single_query() {
    use xgate_adapter_sdk::{Department as _, Subject};
    use xgate_adapter_sql::{Mapping, SqlDepartment};
    use xgate_catalog::SubjectKind;

    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let population = xgate_synth::Population::generate(150, 40);
    let stranger = |kind: SubjectKind| {
        let body = match kind {
            SubjectKind::ResidentId => "11010519900307001",
            SubjectKind::Uscc => "91110105MA0123456",
        };
        let check = match kind {
            SubjectKind::ResidentId => xgate_catalog::ids::resident_id_check_char(body),
            SubjectKind::Uscc => xgate_catalog::ids::uscc_check_char(body),
        };
        Subject {
            kind,
            id: format!("{body}{}", check.unwrap()),
        }
    };
    for spec in xgate_demo_data::DEPARTMENTS {
        spec.seed(&dir.path().join(format!("{}.db", spec.id)), 150, 40)
            .await
            .unwrap();
        let path = dir.path().join(format!("{}.toml", spec.id));
        std::fs::write(&path, xgate_demo_data::mapping(spec.id).unwrap()).unwrap();
        let mapping = Mapping::load(&path).unwrap();
        for plan in mapping.plan(&catalog).unwrap() {
            assert!(plan.batch.is_some(), "{}: no batch form", plan.record_type);
        }
        let dept = SqlDepartment::connect(&mapping, &catalog, None)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", spec.id));
        for table in spec.tables {
            let kind = if table.subject == "uscc" {
                SubjectKind::Uscc
            } else {
                SubjectKind::ResidentId
            };
            let mut subjects: Vec<Subject> = match kind {
                SubjectKind::ResidentId => population
                    .citizens
                    .iter()
                    .map(|c| Subject {
                        kind,
                        id: c.id_number.clone(),
                    })
                    .collect(),
                SubjectKind::Uscc => population
                    .companies
                    .iter()
                    .map(|c| Subject {
                        kind,
                        id: c.uscc.clone(),
                    })
                    .collect(),
            };
            subjects.push(stranger(kind));
            subjects.extend_from_within(..2);
            let batch = dept.lookup_batch(&subjects, table.record_type).await;
            assert_eq!(batch.len(), subjects.len());
            let mut found = 0;
            for (subject, result) in subjects.iter().zip(batch) {
                let single = dept.lookup_id(&subject.id, table.record_type).await;
                let (result, single) = (result.unwrap(), single.unwrap());
                found += usize::from(!result.is_empty());
                assert_eq!(result, single, "{} of {}", table.record_type, subject.id);
            }
            assert!(found > 0, "no `{}` in the batch", table.record_type);
        }
        dept.close().await;
    }
}
