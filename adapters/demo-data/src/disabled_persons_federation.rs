//! Disabled Persons' Federation (残疾人联合会): third-generation disability
//! certificates (第三代残疾人证), numbered as the holder's ID plus category
//! and grade digits.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Person, Population, Records, tagged};

use crate::kin::local_agency;

/// The department id in the catalog.
pub const DEPARTMENT: &str = "disabled-persons-federation";

pub const DISABILITY_CERTIFICATE: &str = "disability_certificate";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Disabled Persons' Federation (残疾人联合会)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Text};

static TABLES: &[Table] = &[Table {
    record_type: DISABILITY_CERTIFICATE,
    subject: "id_number",
    columns: &[
        Column::new("certificate_no", Text),
        Column::new("id_number", Text),
        Column::new("name", Text),
        Column::new("category", Text),
        Column::new("grade", Integer),
        Column::new("issuing_authority", Text),
        Column::new("issue_date", Date),
        Column::new("valid_until", Date),
    ],
}];

/// Categories with their certificate digit and share among holders.
const CATEGORIES: &[((&str, u8), u32)] = &[
    (("visual", 1), 14),
    (("hearing", 2), 22),
    (("speech", 3), 2),
    (("physical", 4), 35),
    (("intellectual", 5), 7),
    (("mental", 6), 9),
    (("multiple", 7), 11),
];

fn generate(population: &Population) -> Records {
    population
        .people(DEPARTMENT)
        .filter_map(|p| certificate(&p))
        .map(tagged(DISABILITY_CERTIFICATE))
        .collect()
}

/// About one citizen in sixteen, more of the old (China's rate is about
/// 6.3%); the sample citizen's certificate is for a physical disability,
/// grade 3. Certificates run ten years from their latest issue.
fn certificate(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(DISABILITY_CERTIFICATE);
    let share = if c.age() >= 65 { 0.12 } else { 0.045 };
    if p.gappy || !(p.sample || rng.chance(share)) {
        return None;
    }
    let (category, digit) = if p.sample {
        ("physical", 4)
    } else {
        *rng.pick_weighted(CATEGORIES)
    };
    let grade = if p.sample { 3 } else { rng.range(1, 5) };
    // The third generation of certificates has been issued since 2018.
    let from = date!(2018 - 01 - 01).max(add_days(c.birth_date, 365));
    let issued = if p.sample {
        rng.date(date!(2021 - 01 - 01), date!(2022 - 06 - 30))
    } else {
        rng.date(from, add_days(REFERENCE_DATE, -30))
    };
    Some(json!({
        "certificate_no": format!("{}{digit}{grade}", c.id_number),
        "id_number": c.id_number,
        "name": c.name,
        "category": category,
        "grade": grade,
        "issuing_authority": local_agency(p.city, p.district, "残疾人联合会"),
        "issue_date": iso(issued),
        "valid_until": iso(add_days(add_years(issued, 10), -1)),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn numbers_encode_holder_category_and_grade() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let all = seeded.all(DISABILITY_CERTIFICATE).await.unwrap();
        let count = holders(&all, "id_number");
        assert!((30..=120).contains(&count), "{count}");
        for record in &all {
            let no = record["certificate_no"].as_str().unwrap();
            assert_eq!(&no[..18], record["id_number"].as_str().unwrap());
            let (category, _) = CATEGORIES
                .iter()
                .map(|(c, _)| *c)
                .find(|(name, _)| record["category"] == *name)
                .unwrap();
            assert_eq!(
                &no[18..19],
                (CATEGORIES
                    .iter()
                    .position(|((n, _), _)| *n == category)
                    .unwrap()
                    + 1)
                .to_string()
            );
            assert_eq!(&no[19..], record["grade"].to_string());
            assert!(record["valid_until"].as_str().unwrap() > "2026-06-30");
        }
    }
}
