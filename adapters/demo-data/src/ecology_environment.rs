//! Ecology and Environment Bureau (生态环境局): pollutant discharge permits of
//! factories and mines, and environmental impact assessment approvals of
//! their construction projects.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Population, Records, Rng, round2, street_address, tagged};

use crate::issuing::{city_abbreviation, current_term, local_office, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "ecology-environment";

pub const POLLUTANT_DISCHARGE_PERMIT: &str = "pollutant_discharge_permit";
pub const ENVIRONMENTAL_IMPACT_ASSESSMENT_APPROVAL: &str =
    "environmental_impact_assessment_approval";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Ecology and Environment Bureau (生态环境局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Real, Text, TextList};

static TABLES: &[Table] = &[
    Table {
        record_type: POLLUTANT_DISCHARGE_PERMIT,
        subject: "uscc",
        columns: &[
            Column::new("permit_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("production_address", Text),
            Column::new("industry_category", Text),
            Column::new("management_type", Text),
            Column::new("main_pollutants", TextList),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
    Table {
        record_type: ENVIRONMENTAL_IMPACT_ASSESSMENT_APPROVAL,
        subject: "uscc",
        columns: &[
            Column::new("approval_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("project_name", Text),
            Column::new("project_location", Text),
            Column::new("document_type", Text),
            Column::new("total_investment_cny", Real),
            Column::new("environmental_investment_cny", Real),
            Column::new("approval_authority", Text),
            Column::new("approval_date", Date),
        ],
    },
];

/// What a polluting trade makes and discharges: (industry category in the
/// permit classification, product for project names, pollutants).
fn polluter(trade: &str) -> Option<(&'static str, &'static str, &'static [&'static str])> {
    match trade {
        "建材" => Some((
            "水泥制品制造",
            "商品混凝土及水泥制品",
            &["废气", "固体废物", "噪声"],
        )),
        "机械制造" => Some(("金属结构制造", "钢结构件", &["废气", "废水", "噪声"])),
        "电子科技" => Some((
            "电子元件及电子专用材料制造",
            "电子元器件",
            &["废气", "废水"],
        )),
        "药业" => Some((
            "中成药生产",
            "中药饮片及中成药",
            &["废水", "废气", "固体废物"],
        )),
        "食品" => Some(("其他未列明食品制造", "休闲食品", &["废水", "废气"])),
        "矿业" => Some(("土砂石开采", "建筑用石料", &["废气", "噪声", "固体废物"])),
        _ => None,
    }
}

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for firm in population.firms(DEPARTMENT) {
        let Some(kind) = polluter(trade(firm.company)) else {
            continue;
        };
        out.extend(
            eia_approvals(&firm, kind).map(tagged(ENVIRONMENTAL_IMPACT_ASSESSMENT_APPROVAL)),
        );
        out.extend(discharge_permit(&firm, kind).map(tagged(POLLUTANT_DISCHARGE_PERMIT)));
    }
    out
}

/// The plant's address: the registered address, or another site in the
/// same district.
fn plant_address(rng: &mut Rng, firm: &Firm) -> String {
    if rng.chance(0.5) {
        firm.company.address.clone()
    } else {
        format!("安徽省{}", street_address(rng, firm.city, firm.district))
    }
}

type Polluter = (&'static str, &'static str, &'static [&'static str]);

fn discharge_permit(firm: &Firm, (category, _, pollutants): Polluter) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(POLLUTANT_DISCHARGE_PERMIT);
    if !firm.sample && !rng.chance(0.8) {
        return None;
    }
    let key = firm.sample || rng.chance(0.3);
    // P: a permit under key management; U: under simplified management.
    let (management, letter) = if key {
        ("key", 'P')
    } else {
        ("simplified", 'U')
    };
    // Permits run five years (three for the first permit of a plant before 2020).
    let (issued, until) = current_term(&mut rng, company.established, 5);
    Some(json!({
        "permit_no": format!("{}{:03}{letter}", company.uscc, rng.range(1, 4)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "production_address": plant_address(&mut rng, firm),
        "industry_category": category,
        "management_type": management,
        "main_pollutants": pollutants,
        "issuing_authority": format!("{}生态环境局", firm.city.name),
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

/// One or two approved projects: the plant and, for some, an expansion.
fn eia_approvals(firm: &Firm, (_, product, _): Polluter) -> impl Iterator<Item = Value> {
    let company = firm.company;
    let mut rng = firm.rng(ENVIRONMENTAL_IMPACT_ASSESSMENT_APPROVAL);
    let count = if firm.sample {
        2
    } else {
        *rng.pick_weighted(&[(0, 30), (1, 55), (2, 15)])
    };
    let capital = company.registered_capital_cny;
    let mut records = Vec::new();
    // The EIA Law took effect on 1 September 2003; a plant is approved
    // around its company's founding, an expansion years later.
    let mut earliest = add_years(company.established, -1).max(date!(2003 - 09 - 01));
    for n in 0..count {
        let latest = if n == 0 {
            add_years(earliest, 2).min(REFERENCE_DATE)
        } else {
            REFERENCE_DATE
        };
        let date = rng.date(earliest.min(latest), latest);
        earliest = add_years(date, 2).min(REFERENCE_DATE);
        let project = if n == 0 {
            format!(
                "{}年产{}万吨{product}项目",
                company.short_name(),
                rng.range(1, 30)
            )
        } else {
            format!("{}{product}生产线技术改造项目", company.short_name())
        };
        let total = round2(capital * rng.float(0.5, 3.0));
        let report = rng.chance(0.25);
        records.push(json!({
            "approval_no": format!(
                "{}环审〔{}〕{}号",
                city_abbreviation(firm.city),
                date.year(),
                rng.range(1, 300)
            ),
            "uscc": company.uscc,
            "holder_name": company.name,
            "project_name": project,
            "project_location": plant_address(&mut rng, firm),
            "document_type": if report { "report" } else { "report_form" },
            "total_investment_cny": total,
            "environmental_investment_cny": round2(total * rng.float(0.02, 0.08)),
            "approval_authority": local_office(firm.city, firm.district, "生态环境局"),
            "approval_date": iso(date),
        }));
    }
    records.into_iter()
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, company};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// The permit number is the holder's code, a sequence and the letter of
    /// its management type; the sample factory is under key management.
    #[tokio::test]
    async fn permit_numbers_carry_the_holder_and_management_type() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let uscc = &seeded.sample_company().unwrap().uscc;
        let permits = seeded
            .lookup(&company(uscc), POLLUTANT_DISCHARGE_PERMIT)
            .await
            .unwrap();
        let permit_no = permits[0]["permit_no"].as_str().unwrap();
        assert!(permit_no.starts_with(uscc.as_str()) && permit_no.ends_with('P'));
        assert_eq!(permits[0]["management_type"], "key");
        for permit in seeded.all(POLLUTANT_DISCHARGE_PERMIT).await.unwrap() {
            let letter = if permit["management_type"] == "key" {
                "P"
            } else {
                "U"
            };
            assert!(permit["permit_no"].as_str().unwrap().ends_with(letter));
        }
    }
}
