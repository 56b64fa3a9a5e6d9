//! Water Resources Bureau (水利局): water abstraction permits of factories,
//! farms and mines.

use serde_json::{Value, json};
use xgate_synth::dates::iso;
use xgate_synth::regions::City;
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Population, Records, round2, tagged};

use crate::issuing::{current_term, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "water-resources";

pub const WATER_ABSTRACTION_PERMIT: &str = "water_abstraction_permit";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Water Resources Bureau (水利局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Real, Text};

static TABLES: &[Table] = &[Table {
    record_type: WATER_ABSTRACTION_PERMIT,
    subject: "uscc",
    columns: &[
        Column::new("permit_no", Text),
        Column::new("uscc", Text),
        Column::new("holder_name", Text),
        Column::new("abstraction_location", Text),
        Column::new("water_source", Text),
        Column::new("purpose", Text),
        Column::new("annual_quantity_m3", Real),
        Column::new("issuing_authority", Text),
        Column::new("issue_date", Date),
        Column::new("valid_until", Date),
    ],
}];

fn generate(population: &Population) -> Records {
    population
        .firms(DEPARTMENT)
        .filter_map(|firm| abstraction_permit(&firm))
        .map(tagged(WATER_ABSTRACTION_PERMIT))
        .collect()
}

/// The main river or lake a city draws surface water from.
fn river(city: &City) -> &'static str {
    match city.name {
        "合肥市" => "巢湖",
        "芜湖市" | "马鞍山市" | "铜陵市" | "安庆市" | "池州市" => "长江",
        "蚌埠市" | "淮南市" => "淮河",
        "淮北市" => "濉河",
        "黄山市" => "新安江",
        "滁州市" => "滁河",
        "阜阳市" => "颍河",
        "宿州市" => "新汴河",
        "六安市" => "淠河",
        "亳州市" => "涡河",
        "宣城市" => "水阳江",
        _ => "淮河",
    }
}

/// Water-hungry trades (factories, farms, mines) and the sample company.
fn abstraction_permit(firm: &Firm) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(WATER_ABSTRACTION_PERMIT);
    let (purpose, share, (lo, hi)) = match trade(company) {
        "建材" | "机械制造" | "电子科技" | "药业" | "食品" => {
            ("industrial", 0.5, (20_000.0, 400_000.0))
        }
        "农业发展" => ("agricultural_irrigation", 0.6, (50_000.0, 800_000.0)),
        "矿业" => ("industrial", 0.7, (30_000.0, 300_000.0)),
        "物业管理" => ("domestic", 0.1, (5_000.0, 60_000.0)),
        _ => return None,
    };
    if !firm.sample && !rng.chance(share) {
        return None;
    }
    let surface = firm.sample || rng.chance(0.6);
    let location = if surface {
        format!(
            "{}{}{}段取水口",
            firm.city.name,
            firm.district.name,
            river(firm.city)
        )
    } else {
        format!(
            "{}{}厂区自备井{}眼",
            firm.city.name,
            firm.district.name,
            rng.range(1, 4)
        )
    };
    // Permits run five years; the first letter says which level issued it (D: city, E: county).
    let (issued, until) = current_term(&mut rng, company.established, 5);
    let (level, authority) = if firm.district.is_urban() {
        ('D', format!("{}水利局", firm.city.name))
    } else {
        ('E', format!("{}水利局", firm.district.name))
    };
    Some(json!({
        "permit_no": format!(
            "{level}{}{}{}-{}",
            firm.district.code,
            if surface { 'S' } else { 'G' },
            issued.year(),
            rng.digits(4)
        ),
        "uscc": company.uscc,
        "holder_name": company.name,
        "abstraction_location": location,
        "water_source": if surface { "surface_water" } else { "groundwater" },
        "purpose": purpose,
        "annual_quantity_m3": round2(rng.float(lo, hi).round()),
        "issuing_authority": authority,
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, company};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// The permit number carries the district and the source letter; the
    /// sample company draws from the river of its city.
    #[tokio::test]
    async fn permit_numbers_follow_source_and_district() {
        let seeded = Seeded::new(&SPEC, 20, 40).await.unwrap();
        let uscc = &seeded.sample_company().unwrap().uscc;
        let own = seeded
            .lookup(&company(uscc), WATER_ABSTRACTION_PERMIT)
            .await
            .unwrap();
        assert!(
            own[0]["abstraction_location"]
                .as_str()
                .unwrap()
                .contains("涡河")
        );
        for permit in seeded.all(WATER_ABSTRACTION_PERMIT).await.unwrap() {
            let no = permit["permit_no"].as_str().unwrap();
            let letter = if permit["water_source"] == "surface_water" {
                'S'
            } else {
                'G'
            };
            assert_eq!(no.chars().nth(7), Some(letter), "{no}");
            let uscc = permit["uscc"].as_str().unwrap();
            assert_eq!(no.get(1..7), uscc.get(2..8), "{no}");
        }
    }
}
