//! Emergency Management Bureau (应急管理局): hazardous chemicals business
//! licences of traders and work safety licences of mines and chemical makers.

use serde_json::{Value, json};
use xgate_synth::dates::{REFERENCE_DATE, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Population, Records, tagged};

use crate::issuing::{any_term, city_abbreviation, current_term, representative, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "emergency-management";

pub const HAZARDOUS_CHEMICALS_BUSINESS_LICENCE: &str = "hazardous_chemicals_business_licence";
pub const WORK_SAFETY_LICENCE: &str = "work_safety_licence";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Emergency Management Bureau (应急管理局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: HAZARDOUS_CHEMICALS_BUSINESS_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("licence_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("legal_representative", Text),
            Column::new("business_address", Text),
            Column::new("business_mode", Text),
            Column::new("licensed_scope", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
    Table {
        record_type: WORK_SAFETY_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("licence_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("legal_representative", Text),
            Column::new("address", Text),
            Column::new("economic_type", Text),
            Column::new("licensed_scope", Text),
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
            chemicals_licence(&firm, population).map(tagged(HAZARDOUS_CHEMICALS_BUSINESS_LICENCE)),
        );
        out.extend(work_safety_licence(&firm, population).map(tagged(WORK_SAFETY_LICENCE)));
    }
    out
}

/// Traders in fuels and solvents, and the sample company, which sells the
/// coatings and thinners it makes.
fn chemicals_licence(firm: &Firm, population: &Population) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(HAZARDOUS_CHEMICALS_BUSINESS_LICENCE);
    let (mode, scope) = if firm.sample {
        (
            "without_storage",
            "不带储存经营：油漆、稀释剂、乙酸乙酯、丙酮",
        )
    } else {
        let share = match trade(company) {
            "商贸" => 0.15,
            "汽车销售" => 0.1,
            "药业" => 0.2,
            _ => 0.0,
        };
        if !rng.chance(share) {
            return None;
        }
        *rng.pick(&[
            (
                "with_storage",
                "带储存经营：汽油、柴油［闭杯闪点≤60℃］、甲醇、乙醇［无水］",
            ),
            (
                "without_storage",
                "不带储存经营：硫酸、盐酸、氢氧化钠、过氧化氢溶液［含量>8%］",
            ),
            ("retail", "零售：汽油、柴油［闭杯闪点≤60℃］"),
        ])
    };
    // Licences run three years.
    let (issued, until) = current_term(&mut rng, company.established, 3);
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    Some(json!({
        "licence_no": format!(
            "皖{}危化经字〔{}〕{}",
            city_abbreviation(firm.city),
            issued.year(),
            rng.digits(6)
        ),
        "uscc": company.uscc,
        "holder_name": company.name,
        "legal_representative": representative,
        "business_address": company.address,
        "business_mode": mode,
        "licensed_scope": scope,
        "issuing_authority": format!("{}应急管理局", firm.city.name),
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

/// Non-coal mines and hazardous chemical producers need a work safety
/// licence; the sample company makes coatings.
fn work_safety_licence(firm: &Firm, population: &Population) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(WORK_SAFETY_LICENCE);
    let (code, scope) = match trade(company) {
        _ if firm.sample => (
            "WH",
            "危险化学品生产：溶剂型涂料（年产5000吨）、稀释剂（年产1000吨）",
        ),
        "矿业" => ("FM", "建筑用石料（灰岩）露天开采"),
        "药业" if rng.chance(0.2) => ("WH", "危险化学品生产：乙醇［无水］（回收）"),
        _ => return None,
    };
    // Licences run three years; a few have lapsed or been suspended.
    let (issued, until) = if firm.sample || rng.chance(0.9) {
        current_term(&mut rng, company.established, 3)
    } else {
        any_term(&mut rng, company.established, 3)
    };
    let status = if until < REFERENCE_DATE {
        "expired"
    } else if !firm.sample && rng.chance(0.05) {
        "suspended"
    } else {
        "valid"
    };
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    Some(json!({
        "licence_no": format!("（皖）{code}安许证字〔{}〕{}", issued.year(), rng.digits(6)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "legal_representative": representative,
        "address": company.address,
        "economic_type": "有限责任公司",
        "licensed_scope": scope,
        "issuing_authority": "安徽省应急管理厅",
        "issue_date": iso(issued),
        "valid_until": iso(until),
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, company};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// Mines hold a non-coal-mine licence (FM), chemical makers a hazardous
    /// chemicals one (WH); the sample company's are current.
    #[tokio::test]
    async fn licence_numbers_follow_the_trade() {
        let seeded = Seeded::new(&SPEC, 50, 200).await.unwrap();
        let uscc = &seeded.sample_company().unwrap().uscc;
        let own = seeded
            .lookup(&company(uscc), WORK_SAFETY_LICENCE)
            .await
            .unwrap();
        assert_eq!(own[0]["status"], "valid");
        assert!(
            own[0]["licence_no"]
                .as_str()
                .unwrap()
                .starts_with("（皖）WH")
        );
        for licence in seeded.all(WORK_SAFETY_LICENCE).await.unwrap() {
            let mine = licence["licensed_scope"].as_str().unwrap().contains("开采");
            let prefix = if mine { "（皖）FM" } else { "（皖）WH" };
            assert!(licence["licence_no"].as_str().unwrap().starts_with(prefix));
        }
    }
}
