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
use crate::department::Tax;

const CATALOG_FILE: &str = include_str!("../../../gateway/catalog/records/tax.json");

async fn seeded(citizens: u32, companies: u32) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tax.db");
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
    let department = Tax::open(&path).await.unwrap();
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
    let department = Tax::open(&path).await.unwrap();
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
    // The sample citizen works for the sample company, and her income tax
    // certificate adds up her twelve monthly declarations.
    let person_subject = subject(SubjectKind::ResidentId, &person.id_number);
    let income = department
        .lookup(&person_subject, db::INDIVIDUAL_INCOME_TAX_RECORD)
        .await
        .unwrap();
    let wages: Vec<&Value> = income
        .iter()
        .filter(|r| r["income_type"] == "wages_and_salaries")
        .collect();
    assert_eq!(wages.len(), 12);
    assert!(
        wages
            .iter()
            .all(|r| r["withholding_agent_uscc"] == company.uscc.as_str())
    );
    let paid: f64 = wages
        .iter()
        .map(|r| r["tax_paid_cny"].as_f64().unwrap())
        .sum();
    let certificates = department
        .lookup(&person_subject, db::TAX_PAYMENT_CERTIFICATE)
        .await
        .unwrap();
    let income_tax = certificates
        .iter()
        .find(|c| c["tax_type"] == "individual_income_tax")
        .unwrap();
    assert!((income_tax["amount_cny"].as_f64().unwrap() - paid).abs() < 0.01);
    assert!(paid > 0.0);
    let arrears = department
        .lookup(&person_subject, db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap();
    assert_eq!(arrears[0]["has_arrears"], false);
    let company_subject = subject(SubjectKind::Uscc, &company.uscc);
    let ratings = department
        .lookup(&company_subject, db::TAXPAYER_CREDIT_RATING)
        .await
        .unwrap();
    let years: Vec<i64> = ratings
        .iter()
        .map(|r| r["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years, vec![2023, 2024, 2025]);
    assert!(ratings.iter().all(|r| r["rating"] == "A"));
}

#[tokio::test]
async fn the_gappy_citizen_has_gaps() {
    let (_dir, path) = seeded(20, 5).await;
    let department = Tax::open(&path).await.unwrap();
    let gappy = &Population::generate(20, 5).citizens[GAPPY_CITIZEN as usize];
    let gappy = subject(SubjectKind::ResidentId, &gappy.id_number);
    let certificates = department
        .lookup(&gappy, db::TAX_PAYMENT_CERTIFICATE)
        .await
        .unwrap();
    assert!(certificates.is_empty());
    let arrears = department
        .lookup(&gappy, db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap();
    assert_eq!(arrears.len(), 1);
}

#[tokio::test]
async fn unknown_and_hostile_subjects_find_nothing() {
    let (_dir, path) = seeded(20, 5).await;
    let department = Tax::open(&path).await.unwrap();
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
            "x' UNION SELECT * FROM tax_registration --",
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
async fn holdings_are_plausible() {
    let (_dir, path) = seeded(1000, 200).await;
    let store = db::open(&path).await.unwrap();
    let holders = |records: &[Value], field: &str| -> usize {
        records
            .iter()
            .map(|r| r[field].as_str().unwrap().to_owned())
            .collect::<HashSet<_>>()
            .len()
    };
    let registrations = store.all_records(db::TAX_REGISTRATION).await.unwrap();
    assert_eq!(holders(&registrations, "uscc"), 200);
    let earners = holders(
        &store
            .all_records(db::INDIVIDUAL_INCOME_TAX_RECORD)
            .await
            .unwrap(),
        "id_number",
    );
    assert!((250..=700).contains(&earners), "{earners}");
    let in_arrears = store
        .all_records(db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap()
        .iter()
        .filter(|r| r["has_arrears"] == true)
        .count();
    assert!(in_arrears <= 30, "{in_arrears}");
    let exempt = holders(
        &store.all_records(db::VAT_EXEMPTION_STATUS).await.unwrap(),
        "uscc",
    );
    assert!((10..=120).contains(&exempt), "{exempt}");
}
