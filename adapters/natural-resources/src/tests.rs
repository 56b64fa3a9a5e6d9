//! Tests of the seeded database through the [`Department`] the SDK serves.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;
use tempfile::TempDir;
use xgate_adapter_sdk::{AdapterService, Department, Subject};
use xgate_catalog::ids::{resident_id_check_char, uscc_check_char};
use xgate_catalog::{Catalog, SubjectKind};
use xgate_synth::{GAPPY_CITIZEN, Population, SAMPLE_CITIZEN, SAMPLE_COMPANY};

use crate::db::{self, DEPARTMENT, TABLES};
use crate::department::NaturalResources;

const CATALOG_FILE: &str = include_str!("../../../gateway/catalog/records/natural-resources.json");

async fn seeded(citizens: u32, companies: u32) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natural-resources.db");
    db::seed(&path, citizens, companies).await.unwrap();
    (dir, path)
}

fn subject(kind: SubjectKind, id: &str) -> Subject {
    Subject {
        kind,
        id: id.to_owned(),
    }
}

/// The subject of a record type: a person or a company.
fn kind_of(record_type: &str) -> SubjectKind {
    let table = TABLES
        .iter()
        .find(|t| t.record_type == record_type)
        .unwrap();
    if table.subject == "uscc" {
        SubjectKind::Uscc
    } else {
        SubjectKind::ResidentId
    }
}

#[test]
fn tables_match_the_catalog_file() {
    let file: Value = serde_json::from_str(CATALOG_FILE).unwrap();
    assert_eq!(file["department"]["id"], DEPARTMENT);
    let types = file["record_types"].as_array().unwrap();
    assert_eq!(types.len(), TABLES.len());
    for (record_type, table) in types.iter().zip(TABLES) {
        assert_eq!(record_type["id"], table.record_type);
        let kind = if table.subject == "uscc" {
            "uscc"
        } else {
            "resident_id"
        };
        assert_eq!(record_type["subject_kind"], kind);
        table.check_schema(&record_type["schema"]).unwrap();
    }
}

#[tokio::test]
async fn serves_exactly_the_catalog_types() {
    let (_dir, path) = seeded(5, 2).await;
    let department = NaturalResources::open(&path).await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    let expected: Vec<String> = catalog
        .types_of_department(DEPARTMENT)
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(department.department(), DEPARTMENT);
    assert_eq!(department.record_types(), expected);
    // The SDK accepts it: every type is in the catalog under this department.
    AdapterService::new(department, &catalog).unwrap();
}

#[tokio::test]
async fn seeding_is_deterministic() {
    let (_a, first) = seeded(60, 20).await;
    let (_b, second) = seeded(60, 20).await;
    let (first, second) = (
        db::open(&first).await.unwrap(),
        db::open(&second).await.unwrap(),
    );
    for table in TABLES {
        let rows = first.all_records(table.record_type).await.unwrap();
        assert_eq!(rows, second.all_records(table.record_type).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let a = db::seed(&dir.path().join("a.db"), 60, 20).await.unwrap();
    let b = db::seed(&dir.path().join("b.db"), 60, 20).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.counts.len(), TABLES.len());
}

#[tokio::test]
async fn every_record_of_the_default_population_validates() {
    let (_dir, path) = seeded(1000, 200).await;
    let store = db::open(&path).await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    for table in TABLES {
        let record_type = catalog.record_type(table.record_type).unwrap();
        let records = store.all_records(table.record_type).await.unwrap();
        assert!(!records.is_empty(), "{}", table.record_type);
        for record in &records {
            if let Err(violation) = record_type.validate(record) {
                panic!("{}: {violation:?} in {record}", table.record_type);
            }
        }
    }
}

#[tokio::test]
async fn the_sample_subjects_hold_every_type() {
    let (_dir, path) = seeded(20, 5).await;
    let department = NaturalResources::open(&path).await.unwrap();
    let population = Population::generate(20, 5);
    let person = &population.citizens[SAMPLE_CITIZEN as usize];
    let company = &population.companies[SAMPLE_COMPANY as usize];
    let catalog = Catalog::builtin().unwrap();
    for record_type in department.record_types() {
        let kind = kind_of(&record_type);
        let (id, field) = match kind {
            SubjectKind::ResidentId => (person.id_number.as_str(), "id_number"),
            SubjectKind::Uscc => (company.uscc.as_str(), "uscc"),
        };
        let records = department
            .lookup(&subject(kind, id), &record_type)
            .await
            .unwrap();
        assert!(!records.is_empty(), "{record_type}");
        for record in &records {
            assert_eq!(record[field], id);
            catalog
                .record_type(&record_type)
                .unwrap()
                .validate(record)
                .unwrap();
        }
    }
    // The sample citizen owns property in her own city, and her mortgage is
    // on one of her titles.
    let person_subject = subject(SubjectKind::ResidentId, &person.id_number);
    let titles = department
        .lookup(&person_subject, db::REAL_ESTATE_TITLE)
        .await
        .unwrap();
    assert_eq!(titles[0]["city"], person.city.as_str());
    let mortgages = department
        .lookup(&person_subject, db::REAL_ESTATE_MORTGAGE_REGISTRATION)
        .await
        .unwrap();
    let title_numbers: HashSet<&Value> = titles.iter().map(|t| &t["certificate_no"]).collect();
    assert!(
        mortgages
            .iter()
            .all(|m| title_numbers.contains(&m["property_certificate_no"]))
    );
    assert!(mortgages.iter().any(|m| m["status"] == "active"));
}

#[tokio::test]
async fn the_gappy_citizen_has_no_real_estate() {
    let (_dir, path) = seeded(20, 5).await;
    let department = NaturalResources::open(&path).await.unwrap();
    let gappy = &Population::generate(20, 5).citizens[GAPPY_CITIZEN as usize];
    let gappy = subject(SubjectKind::ResidentId, &gappy.id_number);
    for empty in [db::REAL_ESTATE_TITLE, db::REAL_ESTATE_MORTGAGE_REGISTRATION] {
        assert!(
            department.lookup(&gappy, empty).await.unwrap().is_empty(),
            "{empty}"
        );
    }
}

#[tokio::test]
async fn unknown_and_hostile_subjects_find_nothing() {
    let (_dir, path) = seeded(20, 5).await;
    let department = NaturalResources::open(&path).await.unwrap();
    // Valid Beijing numbers: every synthetic subject is registered in Anhui.
    let person = "11010519900307001";
    let person = format!("{person}{}", resident_id_check_char(person).unwrap());
    let company = "91110105MA01234567";
    let company = format!(
        "{}{}",
        &company[..17],
        uscc_check_char(&company[..17]).unwrap()
    );
    for record_type in department.record_types() {
        let kind = kind_of(&record_type);
        let stranger = if kind == SubjectKind::Uscc {
            &company
        } else {
            &person
        };
        for id in [
            stranger.as_str(),
            "' OR 1=1 --",
            "x' UNION SELECT * FROM mining_licence --",
        ] {
            let records = department
                .lookup(&subject(kind, id), &record_type)
                .await
                .unwrap();
            assert!(records.is_empty(), "{id} {record_type}");
        }
    }
}

#[tokio::test]
async fn rare_holdings_are_rare() {
    let (_dir, path) = seeded(1000, 200).await;
    let store = db::open(&path).await.unwrap();
    let holders = |records: &[Value], field: &str| -> usize {
        records
            .iter()
            .map(|r| r[field].as_str().unwrap().to_owned())
            .collect::<HashSet<_>>()
            .len()
    };
    let titles = store.all_records(db::REAL_ESTATE_TITLE).await.unwrap();
    let owners = holders(&titles, "id_number");
    assert!((450..=850).contains(&owners), "{owners}");
    let miners = holders(
        &store.all_records(db::MINING_LICENCE).await.unwrap(),
        "uscc",
    );
    assert!((1..=20).contains(&miners), "{miners}");
    // Most titles lie in the owner's own city.
    let population = Population::generate(1000, 200);
    let at_home = titles
        .iter()
        .filter(|t| {
            let owner = population
                .citizen_by_id(t["id_number"].as_str().unwrap())
                .unwrap();
            t["city"] == owner.city.as_str()
        })
        .count();
    assert!(
        at_home * 10 > titles.len() * 7,
        "{at_home} of {}",
        titles.len()
    );
}
