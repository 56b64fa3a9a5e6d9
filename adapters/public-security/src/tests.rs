//! Tests of the seeded database through the [`Department`] the SDK serves:
//! the checks every synthetic department passes, then the bureau's own.
//!
//! [`Department`]: xgate_adapter_sdk::Department

use std::collections::HashSet;

use xgate_synth::testing::{Seeded, holders, person};

use crate::PUBLIC_SECURITY;
use crate::db;

xgate_synth::department_tests!(PUBLIC_SECURITY);

#[tokio::test]
async fn the_sample_citizen_holds_her_own_identity_card() {
    let seeded = Seeded::new(&PUBLIC_SECURITY, 20, 5).await.unwrap();
    let sample = seeded.sample_citizen().unwrap();
    let card = seeded
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
    let seeded = Seeded::new(&PUBLIC_SECURITY, 20, 5).await.unwrap();
    let subject = person(&seeded.gappy_citizen().unwrap().id_number);
    for empty in [
        db::MOTOR_VEHICLE_REGISTRATION,
        db::RESIDENCE_PERMIT,
        db::EXIT_ENTRY_RECORD,
    ] {
        assert!(
            seeded.lookup(&subject, empty).await.unwrap().is_empty(),
            "{empty}"
        );
    }
    for held in [
        db::RESIDENT_IDENTITY_CARD,
        db::HOUSEHOLD_REGISTRATION,
        db::DRIVING_LICENCE,
    ] {
        assert_eq!(
            seeded.lookup(&subject, held).await.unwrap().len(),
            1,
            "{held}"
        );
    }
}

#[tokio::test]
async fn rare_records_are_rare() {
    let seeded = &Seeded::new(&PUBLIC_SECURITY, 1000, 200).await.unwrap();
    let people =
        |record_type| async move { holders(&seeded.all(record_type).await.unwrap(), "id_number") };
    assert_eq!(people(db::RESIDENT_IDENTITY_CARD).await, 1000);
    let travellers = people(db::EXIT_ENTRY_RECORD).await;
    assert!((50..=250).contains(&travellers), "{travellers}");
    let permits = people(db::RESIDENCE_PERMIT).await;
    assert!((20..=150).contains(&permits), "{permits}");
    let owners = people(db::MOTOR_VEHICLE_REGISTRATION).await;
    assert!((100..=500).contains(&owners), "{owners}");
    let vehicles = seeded.all(db::MOTOR_VEHICLE_REGISTRATION).await.unwrap();
    let plates: HashSet<&str> = vehicles
        .iter()
        .map(|r| r["plate_number"].as_str().unwrap())
        .collect();
    assert_eq!(plates.len(), vehicles.len(), "plates are unique");
}
