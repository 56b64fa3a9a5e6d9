//! Tests of the seeded database through the [`Department`] the SDK serves.

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::Value;
use tempfile::TempDir;
use xgate_adapter_sdk::{AdapterService, Department, Subject};
use xgate_catalog::ids::resident_id_check_char;
use xgate_catalog::{Catalog, SubjectKind};
use xgate_synth::{GAPPY_CITIZEN, Population, SAMPLE_CITIZEN};

use crate::db::{self, DEPARTMENT, TABLES};
use crate::department::PublicSecurity;

const CATALOG_FILE: &str = include_str!("../../../gateway/catalog/records/public-security.json");

async fn seeded(citizens: u32, companies: u32) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("public-security.db");
    db::seed(&path, citizens, companies).await.unwrap();
    (dir, path)
}

fn person(id: &str) -> Subject {
    Subject {
        kind: SubjectKind::ResidentId,
        id: id.to_owned(),
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
        assert_eq!(record_type["subject_kind"], "resident_id");
        table.check_schema(&record_type["schema"]).unwrap();
    }
}

#[tokio::test]
async fn serves_exactly_the_catalog_types() {
    let (_dir, path) = seeded(5, 2).await;
    let department = PublicSecurity::open(&path).await.unwrap();
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
    let (_a, first) = seeded(60, 10).await;
    let (_b, second) = seeded(60, 10).await;
    let (first, second) = (
        db::open(&first).await.unwrap(),
        db::open(&second).await.unwrap(),
    );
    for table in TABLES {
        let rows = first.all_records(table.record_type).await.unwrap();
        assert_eq!(rows, second.all_records(table.record_type).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let a = db::seed(&dir.path().join("a.db"), 60, 10).await.unwrap();
    let b = db::seed(&dir.path().join("b.db"), 60, 10).await.unwrap();
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
async fn the_sample_citizen_holds_every_type() {
    let (_dir, path) = seeded(20, 5).await;
    let department = PublicSecurity::open(&path).await.unwrap();
    let population = Population::generate(20, 5);
    let sample = &population.citizens[SAMPLE_CITIZEN as usize];
    let catalog = Catalog::builtin().unwrap();
    for record_type in department.record_types() {
        let records = department
            .lookup(&person(&sample.id_number), &record_type)
            .await
            .unwrap();
        assert!(!records.is_empty(), "{record_type}");
        for record in &records {
            assert_eq!(record["id_number"], sample.id_number.as_str());
            catalog
                .record_type(&record_type)
                .unwrap()
                .validate(record)
                .unwrap();
        }
    }
    let card = department
        .lookup(&person(&sample.id_number), db::RESIDENT_IDENTITY_CARD)
        .await
        .unwrap();
    assert_eq!(card.len(), 1);
    assert_eq!(card[0]["name"], sample.name.as_str());
    assert_eq!(card[0]["address"], sample.address.as_str());
    assert_eq!(card[0]["issuing_authority"], "亳州市公安局谯城分局");
}

#[tokio::test]
async fn the_gappy_citizen_has_no_vehicle_and_no_travel() {
    let (_dir, path) = seeded(20, 5).await;
    let department = PublicSecurity::open(&path).await.unwrap();
    let gappy = &Population::generate(20, 5).citizens[GAPPY_CITIZEN as usize];
    let subject = person(&gappy.id_number);
    for empty in [
        db::MOTOR_VEHICLE_REGISTRATION,
        db::RESIDENCE_PERMIT,
        db::EXIT_ENTRY_RECORD,
    ] {
        assert!(
            department.lookup(&subject, empty).await.unwrap().is_empty(),
            "{empty}"
        );
    }
    for held in [
        db::RESIDENT_IDENTITY_CARD,
        db::HOUSEHOLD_REGISTRATION,
        db::DRIVING_LICENCE,
    ] {
        assert_eq!(
            department.lookup(&subject, held).await.unwrap().len(),
            1,
            "{held}"
        );
    }
}

#[tokio::test]
async fn unknown_and_hostile_subjects_find_nothing() {
    let (_dir, path) = seeded(20, 5).await;
    let department = PublicSecurity::open(&path).await.unwrap();
    // A valid Beijing number: no synthetic citizen lives outside Anhui.
    let body = "11010519900307001";
    let stranger = format!("{body}{}", resident_id_check_char(body).unwrap());
    for id in [
        stranger.as_str(),
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "1; DROP TABLE driving_licence",
    ] {
        for record_type in department.record_types() {
            let records = department.lookup(&person(id), &record_type).await.unwrap();
            assert!(records.is_empty(), "{id} {record_type}");
        }
    }
    // The hostile strings changed nothing.
    let population = Population::generate(20, 5);
    let anyone = person(&population.citizens[2].id_number);
    assert!(
        department
            .lookup(&anyone, db::DRIVING_LICENCE)
            .await
            .unwrap()
            .len()
            <= 1
    );
    assert_eq!(
        department
            .lookup(&anyone, db::RESIDENT_IDENTITY_CARD)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn rare_records_are_rare() {
    let (_dir, path) = seeded(1000, 200).await;
    let store = db::open(&path).await.unwrap();
    let holders = |records: Vec<Value>| -> usize {
        records
            .iter()
            .map(|r| r["id_number"].as_str().unwrap().to_owned())
            .collect::<HashSet<_>>()
            .len()
    };
    let card_holders = holders(store.all_records(db::RESIDENT_IDENTITY_CARD).await.unwrap());
    assert_eq!(card_holders, 1000);
    let travellers = holders(store.all_records(db::EXIT_ENTRY_RECORD).await.unwrap());
    assert!((50..=250).contains(&travellers), "{travellers}");
    let permits = holders(store.all_records(db::RESIDENCE_PERMIT).await.unwrap());
    assert!((20..=150).contains(&permits), "{permits}");
    let owners = holders(
        store
            .all_records(db::MOTOR_VEHICLE_REGISTRATION)
            .await
            .unwrap(),
    );
    assert!((100..=500).contains(&owners), "{owners}");
    let plates: HashSet<String> = store
        .all_records(db::MOTOR_VEHICLE_REGISTRATION)
        .await
        .unwrap()
        .iter()
        .map(|r| r["plate_number"].as_str().unwrap().to_owned())
        .collect();
    let vehicles = store
        .all_records(db::MOTOR_VEHICLE_REGISTRATION)
        .await
        .unwrap()
        .len();
    assert_eq!(plates.len(), vehicles, "plates are unique");
}
