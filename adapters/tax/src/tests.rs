//! Tests of the seeded database through the [`Department`] the SDK serves:
//! the checks every synthetic department passes, then the bureau's own.
//!
//! [`Department`]: xgate_adapter_sdk::Department

use serde_json::Value;
use xgate_synth::testing::{Seeded, company, holders, person};

use crate::TAX;
use crate::db;

xgate_synth::department_tests!(TAX);

/// The sample citizen works for the sample company, and her income tax
/// certificate adds up her twelve monthly declarations; the sample company
/// is rated A every year.
#[tokio::test]
async fn the_sample_citizens_income_tax_adds_up() {
    let seeded = Seeded::new(&TAX, 20, 5).await.unwrap();
    let citizen = seeded.sample_citizen().unwrap();
    let firm = seeded.sample_company().unwrap();
    let person_subject = person(&citizen.id_number);
    let income = seeded
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
            .all(|r| r["withholding_agent_uscc"] == firm.uscc.as_str())
    );
    let paid: f64 = wages
        .iter()
        .map(|r| r["tax_paid_cny"].as_f64().unwrap())
        .sum();
    let certificates = seeded
        .lookup(&person_subject, db::TAX_PAYMENT_CERTIFICATE)
        .await
        .unwrap();
    let income_tax = certificates
        .iter()
        .find(|c| c["tax_type"] == "individual_income_tax")
        .unwrap();
    assert!((income_tax["amount_cny"].as_f64().unwrap() - paid).abs() < 0.01);
    assert!(paid > 0.0);
    let arrears = seeded
        .lookup(&person_subject, db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap();
    assert_eq!(arrears[0]["has_arrears"], false);
    let ratings = seeded
        .lookup(&company(&firm.uscc), db::TAXPAYER_CREDIT_RATING)
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
    let seeded = Seeded::new(&TAX, 20, 5).await.unwrap();
    let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
    let certificates = seeded
        .lookup(&gappy, db::TAX_PAYMENT_CERTIFICATE)
        .await
        .unwrap();
    assert!(certificates.is_empty());
    let arrears = seeded
        .lookup(&gappy, db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap();
    assert_eq!(arrears.len(), 1);
}

#[tokio::test]
async fn holdings_are_plausible() {
    let seeded = Seeded::new(&TAX, 1000, 200).await.unwrap();
    let registrations = seeded.all(db::TAX_REGISTRATION).await.unwrap();
    assert_eq!(holders(&registrations, "uscc"), 200);
    let earners = holders(
        &seeded.all(db::INDIVIDUAL_INCOME_TAX_RECORD).await.unwrap(),
        "id_number",
    );
    assert!((250..=700).contains(&earners), "{earners}");
    let in_arrears = seeded
        .all(db::NO_TAX_ARREARS_CERTIFICATE)
        .await
        .unwrap()
        .iter()
        .filter(|r| r["has_arrears"] == true)
        .count();
    assert!(in_arrears <= 30, "{in_arrears}");
    let exempt = holders(&seeded.all(db::VAT_EXEMPTION_STATUS).await.unwrap(), "uscc");
    assert!((10..=120).contains(&exempt), "{exempt}");
}
