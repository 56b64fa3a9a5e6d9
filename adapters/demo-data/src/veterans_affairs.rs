//! Veterans Affairs Bureau (退役军人事务局): preferential treatment
//! certificates (优待证), issued since 2022 to veterans and to the families
//! of martyrs and of service members who died on duty or of illness.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Gender, Person, Population, Records, tagged};

use crate::kin::local_agency;

/// The department id in the catalog.
pub const DEPARTMENT: &str = "veterans-affairs";

pub const VETERAN_PREFERENTIAL_TREATMENT_CERTIFICATE: &str =
    "veteran_preferential_treatment_certificate";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Veterans Affairs Bureau (退役军人事务局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Text};

static TABLES: &[Table] = &[Table {
    record_type: VETERAN_PREFERENTIAL_TREATMENT_CERTIFICATE,
    subject: "id_number",
    columns: &[
        Column::new("certificate_no", Text),
        Column::new("id_number", Text),
        Column::new("name", Text),
        Column::new("category", Text),
        Column::new("issuing_authority", Text),
        Column::new("issue_date", Date),
        Column::nullable("valid_until", Date),
        Column::new("status", Text),
    ],
}];

/// Certificates were first issued on 1 January 2022.
const FIRST_ISSUE: time::Date = date!(2022 - 01 - 01);

fn generate(population: &Population) -> Records {
    population
        .people(DEPARTMENT)
        .filter_map(|p| certificate(&p))
        .map(tagged(VETERAN_PREFERENTIAL_TREATMENT_CERTIFICATE))
        .collect()
}

/// About one man in twelve over 22 has served (far fewer women); a few
/// citizens hold a certificate as a martyr's or fallen service member's
/// family. The sample citizen served two years after school.
fn certificate(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(VETERAN_PREFERENTIAL_TREATMENT_CERTIFICATE);
    if p.gappy || c.age() < 22 {
        return None;
    }
    let veteran_share = if c.gender == Gender::Male {
        0.08
    } else {
        0.005
    };
    let category = if p.sample || rng.chance(veteran_share) {
        "veteran"
    } else if rng.chance(0.006) {
        *rng.pick_weighted(&[
            ("martyr_family", 2),
            ("family_of_service_member_died_on_duty", 5),
            ("family_of_service_member_died_of_illness", 3),
        ])
    } else {
        return None;
    };
    let issued = rng.date(FIRST_ISSUE, add_days(REFERENCE_DATE, -30));
    // Most are valid long-term; families of the fallen who are not parents or
    // spouses hold ten-year certificates.
    let valid_until = (category != "veteran" && rng.chance(0.4))
        .then(|| iso(add_days(add_years(issued, 10), -1)));
    let status = if p.sample {
        "valid"
    } else {
        *rng.pick_weighted(&[("valid", 97), ("suspended", 2), ("revoked", 1)])
    };
    Some(json!({
        "certificate_no": format!("{}{}{}", p.district.code, issued.year(), rng.digits(7)),
        "id_number": c.id_number,
        "name": c.name,
        "category": category,
        "issuing_authority": local_agency(p.city, p.district, "退役军人事务局"),
        "issue_date": iso(issued),
        "valid_until": valid_until,
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn most_holders_are_veterans_and_men() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let all = seeded
            .all(VETERAN_PREFERENTIAL_TREATMENT_CERTIFICATE)
            .await
            .unwrap();
        let count = holders(&all, "id_number");
        assert!((15..=80).contains(&count), "{count}");
        let men = all
            .iter()
            .filter(|r| {
                let id = r["id_number"].as_str().unwrap();
                (id.as_bytes()[16] - b'0') % 2 == 1
            })
            .count();
        assert!(men * 4 >= all.len() * 3, "{men} of {}", all.len());
        assert!(
            all.iter()
                .all(|r| r["issue_date"].as_str().unwrap() >= "2022-01-01")
        );
    }
}
