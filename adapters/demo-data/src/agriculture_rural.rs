//! Agriculture and Rural Affairs Bureau (农业农村局): rural land contract
//! management rights (土地承包经营权证, the second-round contracts of 1998/99
//! confirmed and certified in 2015–2019) and homestead approvals (宅基地).

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, iso};
use xgate_synth::regions::{City, District, PROVINCE};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Person, Population, Records, Rng, round2, tagged};

use crate::kin::local_agency;

/// The department id in the catalog.
pub const DEPARTMENT: &str = "agriculture-rural";

pub const RURAL_LAND_CONTRACT_MANAGEMENT_RIGHT: &str = "rural_land_contract_management_right";
pub const HOMESTEAD_USE_RIGHT: &str = "homestead_use_right";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Agriculture and Rural Affairs Bureau (农业农村局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: RURAL_LAND_CONTRACT_MANAGEMENT_RIGHT,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("contract_issuer", Text),
            Column::new("household_members", Integer),
            Column::new("plot_count", Integer),
            Column::new("contracted_area_mu", Real),
            Column::new("contract_start_date", Date),
            Column::new("contract_end_date", Date),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
        ],
    },
    Table {
        record_type: HOMESTEAD_USE_RIGHT,
        subject: "id_number",
        columns: &[
            Column::new("approval_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("household_members", Integer),
            Column::new("location", Text),
            Column::new("land_area_m2", Real),
            Column::new("building_area_m2", Real),
            Column::new("approval_authority", Text),
            Column::new("approval_date", Date),
            Column::new("status", Text),
        ],
    },
];

const TOWNS: &[&str] = &[
    "城关镇",
    "双沟镇",
    "古城镇",
    "白庙镇",
    "新集镇",
    "大店乡",
    "龙山镇",
    "高炉镇",
];
const VILLAGES: &[&str] = &[
    "王庄", "李集", "张楼", "刘寨", "陈洼", "赵桥", "孙圩", "周湾", "杨湖", "吴店",
];

/// A household's village: its town, village and villagers' group.
struct Village {
    town: &'static str,
    village: &'static str,
    group: u64,
    /// Six-digit district code, three-digit town, three-digit village, two-digit group.
    code: String,
}

impl Village {
    /// Drawn from a stream every record type of the household shares, so
    /// the contract and the homestead name the same village.
    fn of(p: &Person) -> Village {
        let mut rng = Rng::new(&format!("{DEPARTMENT}/village"), p.citizen.index);
        let town = rng.range(0, u64::try_from(TOWNS.len()).unwrap_or(1));
        let village = rng.range(0, u64::try_from(VILLAGES.len()).unwrap_or(1));
        let group = rng.range(1, 13);
        Village {
            town: TOWNS
                .get(usize::try_from(town).unwrap_or(0))
                .copied()
                .unwrap_or("城关镇"),
            village: VILLAGES
                .get(usize::try_from(village).unwrap_or(0))
                .copied()
                .unwrap_or("王庄"),
            group,
            code: format!(
                "{}{:03}{:03}{group:02}",
                p.district.code,
                100 + town,
                200 + village
            ),
        }
    }
}

/// Rural households: the sample citizen, about a third of the over-30s in
/// counties, fewer in urban districts; the gappy citizen is not one.
fn rural_household(p: &Person) -> bool {
    let mut rng = Rng::new(&format!("{DEPARTMENT}/household"), p.citizen.index);
    let share = if p.district.is_urban() { 0.1 } else { 0.35 };
    p.sample || (!p.gappy && p.citizen.age() >= 30 && rng.chance(share))
}

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        if !rural_household(&person) {
            continue;
        }
        let village = Village::of(&person);
        out.extend(contract(&person, &village).map(tagged(RURAL_LAND_CONTRACT_MANAGEMENT_RIGHT)));
        out.extend(homestead(&person, &village).map(tagged(HOMESTEAD_USE_RIGHT)));
    }
    out
}

/// The county-level people's government: `亳州市谯城区人民政府`, `涡阳县人民政府`.
fn government(city: &City, district: &District) -> String {
    local_agency(city, district, "人民政府")
}

/// Households whose representative was of age by the second-round
/// contracting of 1998/99 hold a contract, certified in 2015–2019.
fn contract(p: &Person, v: &Village) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(RURAL_LAND_CONTRACT_MANAGEMENT_RIGHT);
    let start = rng.date(date!(1998 - 01 - 01), date!(1999 - 12 - 31));
    if p.birthday(18) > start && !p.sample {
        return None;
    }
    let plots = rng.range(2, 13);
    let area = round2(rng.float(0.6, 1.4) * plots as f64);
    let issued = rng.date(date!(2015 - 06 - 01), date!(2019 - 12 - 31));
    Some(json!({
        "certificate_no": format!("{}{}J", v.code, rng.digits(5)),
        "id_number": c.id_number,
        "name": c.name,
        "contract_issuer": format!("{}{}{}村{}村民组", p.district.name, v.town, v.village, v.group),
        "household_members": rng.range(2, 7),
        "plot_count": plots,
        "contracted_area_mu": area,
        "contract_start_date": iso(start),
        "contract_end_date": iso(add_days(add_years(start, 30), -1)),
        "issuing_authority": government(p.city, p.district),
        "issue_date": iso(issued),
    }))
}

/// Four in five rural households hold an approved homestead, approved by the
/// county before 2020 and by the township government since the 2019 reform.
fn homestead(p: &Person, v: &Village) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(HOMESTEAD_USE_RIGHT);
    if !(p.sample || rng.chance(0.8)) {
        return None;
    }
    let from = p.birthday(20).max(date!(1988 - 01 - 01));
    let latest = add_days(REFERENCE_DATE, -60);
    if from > latest {
        return None;
    }
    let approved = rng.date(from, latest);
    let authority = if approved.year() >= 2020 {
        format!("{}{}人民政府", p.district.name, v.town)
    } else {
        government(p.city, p.district)
    };
    // Anhui's ceiling: 160 m² near towns, 220 m² elsewhere.
    let land = round2(rng.float(120.0, if p.district.is_urban() { 160.0 } else { 220.0 }));
    let building = round2(land * rng.float(0.45, 0.75));
    let status = if approved > add_years(REFERENCE_DATE, -1) {
        "approved"
    } else if rng.chance(0.03) {
        "revoked"
    } else {
        "built"
    };
    let short: String = p.district.name.chars().take(1).collect();
    Some(json!({
        "approval_no": format!("{short}宅批〔{}〕{:04}号", approved.year(), rng.range(1, 2_000)),
        "id_number": c.id_number,
        "name": c.name,
        "household_members": rng.range(2, 7),
        "location": format!("{PROVINCE}{}{}{}{}村{}组", p.city.name, p.district.name, v.town, v.village, v.group),
        "land_area_m2": land,
        "building_area_m2": building,
        "approval_authority": authority,
        "approval_date": iso(approved),
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn a_household_contracts_and_builds_in_one_village() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let contracts = seeded
            .all(RURAL_LAND_CONTRACT_MANAGEMENT_RIGHT)
            .await
            .unwrap();
        let homesteads = seeded.all(HOMESTEAD_USE_RIGHT).await.unwrap();
        let households = holders(&contracts, "id_number");
        assert!((60..=350).contains(&households), "{households}");
        for contract in &contracts {
            let issuer = contract["contract_issuer"].as_str().unwrap();
            let village = issuer
                .trim_end_matches("村民组")
                .split('村')
                .next()
                .unwrap();
            if let Some(home) = homesteads
                .iter()
                .find(|h| h["id_number"] == contract["id_number"])
            {
                assert!(
                    home["location"].as_str().unwrap().contains(village),
                    "{home}"
                );
            }
            let start = contract["contract_start_date"].as_str().unwrap();
            assert!(start.starts_with("1998") || start.starts_with("1999"));
        }
        let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
        assert!(
            seeded
                .lookup(&gappy, HOMESTEAD_USE_RIGHT)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
