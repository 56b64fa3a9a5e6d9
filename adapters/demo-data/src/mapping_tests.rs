//! The mapping files in `mappings/` against the catalog and the seeded
//! tables: each names its department, covers exactly its record types with
//! exactly their schema fields, and reads columns the department's table has
//! with a query of one `:subject` parameter. (The SQL adapter checks the
//! same at start; these tests keep the files right without depending on it.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use toml::Value;
use xgate_catalog::Catalog;

use crate::DEPARTMENTS;

fn mappings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")
}

fn mapping_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(mappings_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The column a field maps to: `field = "column"` or `field = { column = "…" }`.
fn column_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(column) => Some(column),
        Value::Table(table) => table.get("column").and_then(Value::as_str),
        _ => None,
    }
}

/// The columns between `SELECT` and `FROM`, and the table after `FROM`.
fn select_list(query: &str) -> (Vec<String>, String) {
    let flat = query.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = flat
        .strip_prefix("SELECT ")
        .expect("query starts with SELECT");
    let (columns, after) = rest.split_once(" FROM ").expect("query has FROM");
    let table = after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    (
        columns.split(',').map(|c| c.trim().to_owned()).collect(),
        table,
    )
}

fn check(path: &Path, catalog: &Catalog) {
    let name = path.display();
    let text = std::fs::read_to_string(path).unwrap();
    let mapping: Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let department = mapping["department"].as_str().expect("department");
    assert_eq!(
        path.file_stem().and_then(|s| s.to_str()),
        Some(department),
        "{name}: file named after its department"
    );
    assert!(
        catalog.department(department).is_some(),
        "{name}: unknown department"
    );
    assert_eq!(
        mapping["database"]["url"].as_str(),
        Some(format!("sqlite:{department}.db").as_str()),
        "{name}"
    );
    let spec = DEPARTMENTS
        .iter()
        .find(|s| s.id == department)
        .unwrap_or_else(|| panic!("{name}: no seeded department `{department}`"));

    let mapped = mapping["record_types"].as_array().expect("record_types");
    let mapped_types: Vec<&str> = mapped
        .iter()
        .map(|r| r["record_type"].as_str().expect("record_type"))
        .collect();
    let catalog_types: Vec<&str> = catalog
        .types_of_department(department)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(mapped_types, catalog_types, "{name}: record types");

    for entry in mapped {
        let id = entry["record_type"].as_str().unwrap_or_default();
        let record_type = catalog.record_type(id).unwrap();
        let properties: BTreeSet<&str> = record_type.schema["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let fields = entry["fields"].as_table().expect("fields");
        let mapped_fields: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(mapped_fields, properties, "{name}: fields of `{id}`");
        let required: Vec<&str> = record_type.schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        assert!(
            required.iter().all(|f| mapped_fields.contains(f)),
            "{name}: `{id}`"
        );

        let query = entry["query"].as_str().expect("query");
        assert_eq!(query.matches(":subject").count(), 1, "{name}: `{id}` query");
        let (selected, table) = select_list(query);
        assert_eq!(table, id, "{name}: `{id}` reads its own table");
        let seeded = spec
            .tables
            .iter()
            .find(|t| t.record_type == id)
            .unwrap_or_else(|| panic!("{name}: no table `{id}`"));
        let subject = format!("{} = :subject", seeded.subject);
        assert!(
            query.contains(&subject),
            "{name}: `{id}` looks up {subject}"
        );
        for (field, value) in fields {
            let column = column_of(value).unwrap_or_else(|| panic!("{name}: `{id}.{field}`"));
            assert!(
                selected.iter().any(|c| c == column),
                "{name}: `{id}` does not select `{column}`"
            );
            assert!(
                seeded.columns.iter().any(|c| c.name == column),
                "{name}: table `{id}` has no column `{column}`"
            );
        }
    }
}

#[test]
fn every_mapping_matches_the_catalog_and_the_tables() {
    let catalog = Catalog::builtin().unwrap();
    let files = mapping_files();
    assert!(!files.is_empty());
    for file in &files {
        check(file, &catalog);
    }
}

#[test]
fn every_seeded_department_has_a_mapping() {
    for spec in DEPARTMENTS.iter().filter(|s| !s.tables.is_empty()) {
        let path = mappings_dir().join(format!("{}.toml", spec.id));
        assert!(path.exists(), "no mapping for `{}`", spec.id);
    }
}

#[test]
fn a_mapping_of_the_wrong_fields_is_caught() {
    let dir = tempfile_dir();
    let good = std::fs::read_to_string(mappings_dir().join("veterans-affairs.toml")).unwrap();
    let bad = good.replace("status = \"status\"\n", "");
    let path = dir.join("veterans-affairs.toml");
    std::fs::write(&path, bad).unwrap();
    let catalog = Catalog::builtin().unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&path, &catalog)));
    assert!(outcome.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xgate-demo-data-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
