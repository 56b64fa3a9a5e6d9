//! Tests of the seeded database through the [`Department`] the SDK serves:
//! the checks every synthetic department passes, then the bureau's own.
//!
//! [`Department`]: xgate_adapter_sdk::Department

use std::collections::HashSet;

use serde_json::Value;
use xgate_synth::testing::{Seeded, holders, person};

use crate::NATURAL_RESOURCES;
use crate::db;

xgate_synth::department_tests!(NATURAL_RESOURCES);

/// The sample citizen owns property in her own city, and her mortgage is on
/// one of her titles.
#[tokio::test]
async fn the_sample_citizens_mortgage_is_on_her_title() {
    let seeded = Seeded::new(&NATURAL_RESOURCES, 20, 5).await.unwrap();
    let sample = seeded.sample_citizen().unwrap();
    let subject = person(&sample.id_number);
    let titles = seeded
        .lookup(&subject, db::REAL_ESTATE_TITLE)
        .await
        .unwrap();
    assert_eq!(titles[0]["city"], sample.city.as_str());
    let mortgages = seeded
        .lookup(&subject, db::REAL_ESTATE_MORTGAGE_REGISTRATION)
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
    let seeded = Seeded::new(&NATURAL_RESOURCES, 20, 5).await.unwrap();
    let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
    for empty in [db::REAL_ESTATE_TITLE, db::REAL_ESTATE_MORTGAGE_REGISTRATION] {
        assert!(
            seeded.lookup(&gappy, empty).await.unwrap().is_empty(),
            "{empty}"
        );
    }
}

#[tokio::test]
async fn rare_holdings_are_rare() {
    let seeded = Seeded::new(&NATURAL_RESOURCES, 1000, 200).await.unwrap();
    let titles = seeded.all(db::REAL_ESTATE_TITLE).await.unwrap();
    let owners = holders(&titles, "id_number");
    assert!((450..=850).contains(&owners), "{owners}");
    let miners = holders(&seeded.all(db::MINING_LICENCE).await.unwrap(), "uscc");
    assert!((1..=20).contains(&miners), "{miners}");
    // Most titles lie in the owner's own city.
    let at_home = titles
        .iter()
        .filter(|t| {
            let owner = seeded
                .population
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
