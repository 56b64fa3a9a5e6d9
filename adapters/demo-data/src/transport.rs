//! Transport Bureau (交通运输局): road transport operation licences of
//! hauliers, and qualification certificates of taxi and ride-hailing drivers.

use serde_json::{Value, json};
use xgate_synth::dates::{REFERENCE_DATE, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Gender, Person, Population, Records, tagged};

use crate::issuing::{any_term, current_term, representative, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "transport";

pub const ROAD_TRANSPORT_OPERATION_LICENCE: &str = "road_transport_operation_licence";
pub const TAXI_DRIVER_QUALIFICATION: &str = "taxi_driver_qualification";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Transport Bureau (交通运输局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Text, TextList};

static TABLES: &[Table] = &[
    Table {
        record_type: ROAD_TRANSPORT_OPERATION_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("licence_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("legal_representative", Text),
            Column::new("address", Text),
            Column::new("business_scope", TextList),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: TAXI_DRIVER_QUALIFICATION,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("qualification_type", Text),
            Column::nullable("service_company", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
            Column::new("status", Text),
        ],
    },
];

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for firm in population.firms(DEPARTMENT) {
        out.extend(
            operation_licence(&firm, population).map(tagged(ROAD_TRANSPORT_OPERATION_LICENCE)),
        );
    }
    for person in population.people(DEPARTMENT) {
        out.extend(driver_qualification(&person).map(tagged(TAXI_DRIVER_QUALIFICATION)));
    }
    out
}

/// The transport bureau of a district or county.
fn bureau(city: &xgate_synth::regions::City, district: &xgate_synth::regions::District) -> String {
    if district.is_urban() {
        format!("{}{}交通运输局", city.name, district.name)
    } else {
        format!("{}交通运输局", district.name)
    }
}

/// Hauliers, and the sample company, which delivers its own goods.
fn operation_licence(firm: &Firm, population: &Population) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(ROAD_TRANSPORT_OPERATION_LICENCE);
    let haulier = trade(company) == "物流";
    let scope: Vec<&str> = if firm.sample {
        vec!["道路普通货物运输"]
    } else if haulier {
        if rng.chance(0.3) {
            vec!["道路普通货物运输", "货物专用运输（集装箱）"]
        } else {
            vec!["道路普通货物运输"]
        }
    } else if rng.chance(0.03) {
        vec!["道路旅客运输（班车客运）", "道路旅客运输（包车客运）"]
    } else {
        return None;
    };
    // Licences run four years; a few lapsed or were suspended.
    let (issued, until) = if firm.sample || rng.chance(0.9) {
        current_term(&mut rng, company.established, 4)
    } else {
        any_term(&mut rng, company.established, 4)
    };
    let status = if until < REFERENCE_DATE {
        "expired"
    } else if !firm.sample && rng.chance(0.03) {
        "suspended"
    } else {
        "valid"
    };
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    Some(json!({
        "licence_no": format!("{}{}", firm.district.code, rng.digits(6)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "legal_representative": representative,
        "address": company.address,
        "business_scope": scope,
        "issuing_authority": bureau(firm.city, firm.district),
        "issue_date": iso(issued),
        "valid_until": iso(until),
        "status": status,
    }))
}

const TAXI_COMPANIES: &[&str] = &[
    "出租汽车有限公司",
    "公共交通集团有限公司",
    "汽车运输有限公司",
];
const PLATFORMS: &[&str] = &[
    "滴滴出行科技有限公司",
    "上海享道出行科技有限公司",
    "T3出行（南京领行科技有限公司）",
];

/// Drivers, most of them men of working age; the sample citizen drives for a
/// ride-hailing platform on the side.
fn driver_qualification(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(TAXI_DRIVER_QUALIFICATION);
    let share = if c.gender == Gender::Male {
        0.04
    } else {
        0.005
    };
    let driver = p.sample || ((21..=60).contains(&c.age()) && rng.chance(share));
    if !driver {
        return None;
    }
    let hailing = p.sample || rng.chance(0.6);
    let service = if hailing {
        Some((*rng.pick(PLATFORMS)).to_owned())
    } else if rng.chance(0.9) {
        Some(format!("{}{}", p.city.name, rng.pick(TAXI_COMPANIES)))
    } else {
        // An individual licence holder with no company.
        None
    };
    let earliest = add_years(c.birth_date, 21);
    let (issued, until) = if p.sample || rng.chance(0.85) {
        current_term(&mut rng, earliest, 6)
    } else {
        any_term(&mut rng, earliest, 6)
    };
    let status = if until < REFERENCE_DATE {
        "expired"
    } else if !p.sample && rng.chance(0.03) {
        "suspended"
    } else {
        "valid"
    };
    Some(json!({
        "certificate_no": c.id_number,
        "id_number": c.id_number,
        "name": c.name,
        "qualification_type": if hailing { "online_ride_hailing" } else { "cruising_taxi" },
        "service_company": service,
        "issuing_authority": format!("{}交通运输局", p.city.name),
        "issue_date": iso(issued),
        "valid_until": iso(until),
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, company, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// The driver's certificate number is their resident ID number; the sample
    /// company's licence is current and names its legal representative.
    #[tokio::test]
    async fn certificates_carry_the_holders() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let citizen = seeded.sample_citizen().unwrap();
        let drivers = seeded
            .lookup(&person(&citizen.id_number), TAXI_DRIVER_QUALIFICATION)
            .await
            .unwrap();
        assert_eq!(drivers[0]["certificate_no"], citizen.id_number.as_str());
        let firm = company(&seeded.sample_company().unwrap().uscc);
        let licences = seeded
            .lookup(&firm, ROAD_TRANSPORT_OPERATION_LICENCE)
            .await
            .unwrap();
        assert_eq!(licences[0]["status"], "valid");
        assert_eq!(licences[0]["legal_representative"], citizen.name.as_str());
        for driver in seeded.all(TAXI_DRIVER_QUALIFICATION).await.unwrap() {
            assert_eq!(driver["certificate_no"], driver["id_number"]);
        }
    }
}
