//! Housing and Urban-Rural Development Bureau (住房和城乡建设局): filed sales
//! contracts of new homes and registered leases of citizens, construction
//! permits of developers and qualifications of construction companies.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, add_years, compact, days, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{
    DepartmentSpec, Firm, Person, Population, Records, Rng, residential_address, round2, tagged,
};

use crate::issuing::{current_term, local_office, representative, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "housing-urban-rural";

pub const COMMERCIAL_HOUSING_SALES_CONTRACT_FILING: &str =
    "commercial_housing_sales_contract_filing";
pub const CONSTRUCTION_PERMIT: &str = "construction_permit";
pub const HOUSING_LEASE_REGISTRATION: &str = "housing_lease_registration";
pub const CONSTRUCTION_ENTERPRISE_QUALIFICATION: &str = "construction_enterprise_qualification";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Housing and Urban-Rural Development Bureau (住房和城乡建设局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Real, Text, TextList};

static TABLES: &[Table] = &[
    Table {
        record_type: COMMERCIAL_HOUSING_SALES_CONTRACT_FILING,
        subject: "id_number",
        columns: &[
            Column::new("filing_no", Text),
            Column::new("contract_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("project_name", Text),
            Column::new("property_address", Text),
            Column::new("floor_area_m2", Real),
            Column::new("total_price_cny", Real),
            Column::new("sale_type", Text),
            Column::new("filing_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: CONSTRUCTION_PERMIT,
        subject: "uscc",
        columns: &[
            Column::new("permit_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("project_name", Text),
            Column::new("construction_address", Text),
            Column::new("construction_scale", Text),
            Column::new("contract_price_cny", Real),
            Column::new("contractor_name", Text),
            Column::nullable("supervisor_name", Text),
            Column::new("contract_duration_days", Integer),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
        ],
    },
    Table {
        record_type: HOUSING_LEASE_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("registration_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("landlord_name", Text),
            Column::new("property_address", Text),
            Column::new("floor_area_m2", Real),
            Column::new("monthly_rent_cny", Real),
            Column::new("lease_start_date", Date),
            Column::new("lease_end_date", Date),
            Column::new("registration_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: CONSTRUCTION_ENTERPRISE_QUALIFICATION,
        subject: "uscc",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("legal_representative", Text),
            Column::new("registered_address", Text),
            Column::new("qualifications", TextList),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
];

/// Online contract filing of new homes, nationwide since 2006.
const ONLINE_FILING: time::Date = date!(2006 - 01 - 01);

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        out.extend(
            sales_filings(&person)
                .into_iter()
                .map(tagged(COMMERCIAL_HOUSING_SALES_CONTRACT_FILING)),
        );
        out.extend(lease(&person, population).map(tagged(HOUSING_LEASE_REGISTRATION)));
    }
    for firm in population.firms(DEPARTMENT) {
        out.extend(
            construction_permits(&firm, population)
                .into_iter()
                .map(tagged(CONSTRUCTION_PERMIT)),
        );
        out.extend(
            qualification(&firm, population).map(tagged(CONSTRUCTION_ENTERPRISE_QUALIFICATION)),
        );
    }
    out
}

const PROJECTS: &[&str] = &[
    "锦绣花园",
    "阳光城",
    "书香苑",
    "金色家园",
    "滨河花园",
    "翡翠湾",
    "东方名城",
    "世纪华庭",
    "碧桂园·天玺",
    "万科·城市之光",
    "融创·御湖宸院",
    "绿地·中央广场",
];

/// Homes bought new: the gappy citizen, who owns no real estate, has none.
fn sales_filings(p: &Person) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(COMMERCIAL_HOUSING_SALES_CONTRACT_FILING);
    if p.gappy || c.age() < 22 {
        return Vec::new();
    }
    let count = if p.sample {
        1
    } else {
        *rng.pick_weighted(&[(0, 80), (1, 17), (2, 3)])
    };
    (0..count)
        .map(|_| {
            let earliest = p.birthday(22).max(ONLINE_FILING);
            let filed = rng.date(earliest, add_days(REFERENCE_DATE, -30));
            let presale = rng.chance(0.8);
            let area = round2(rng.float(75.0, 145.0));
            // Prices in the province's cities, yuan per square metre, rising with time.
            let year_factor = 1.0 + f64::from((filed.year() - 2006).max(0)) * 0.06;
            let price = round2(area * rng.float(2_800.0, 6_500.0) * year_factor);
            let project = *rng.pick(PROJECTS);
            let address = residential_address(&mut rng, p.city, p.district);
            let cancelled = !p.sample && rng.chance(0.04);
            json!({
                "filing_no": format!("{}{}{}", if presale { "YS" } else { "XS" }, compact(filed), rng.digits(6)),
                "contract_no": format!("{}-{}", filed.year(), rng.digits(7)),
                "id_number": c.id_number,
                "name": c.name,
                "project_name": format!("{}{project}", p.district.name),
                "property_address": format!("安徽省{address}"),
                "floor_area_m2": area,
                "total_price_cny": price,
                "sale_type": if presale { "presale" } else { "completed" },
                "filing_date": iso(filed),
                "status": if cancelled { "cancelled" } else { "filed" },
            })
        })
        .collect()
}

/// A registered lease: young adults rent, and so does the gappy citizen,
/// who owns no home.
fn lease(p: &Person, population: &Population) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(HOUSING_LEASE_REGISTRATION);
    let renter = p.sample || p.gappy || ((20..=40).contains(&c.age()) && rng.chance(0.12));
    if !renter {
        return None;
    }
    let count = u64::try_from(population.citizens.len()).unwrap_or(0);
    let landlord = usize::try_from(rng.range(0, count))
        .ok()
        .and_then(|i| population.citizens.get(i))
        .filter(|l| l.index != c.index && l.age() >= 30)
        .map_or_else(|| "安徽安居房屋租赁有限公司".to_owned(), |l| l.name.clone());
    let current = p.sample || p.gappy || rng.chance(0.6);
    let years = *rng.pick(&[1, 2, 3]);
    let adult = p.birthday(18).max(date!(2012 - 01 - 01));
    let start = if current {
        let from = add_days(add_years(REFERENCE_DATE, -years), 30).max(adult);
        rng.date(from, add_days(REFERENCE_DATE, -10))
    } else {
        rng.date(adult, add_years(REFERENCE_DATE, -years))
    };
    let end = add_days(add_years(start, years), -1);
    let status = if end >= REFERENCE_DATE {
        "valid"
    } else if rng.chance(0.3) {
        "terminated"
    } else {
        "expired"
    };
    let area = round2(rng.float(35.0, 110.0));
    Some(json!({
        "registration_no": format!("{}{}{}", p.district.code, compact(start), rng.digits(4)),
        "id_number": c.id_number,
        "name": c.name,
        "landlord_name": landlord,
        "property_address": format!("安徽省{}", residential_address(&mut rng, p.city, p.district)),
        "floor_area_m2": area,
        "monthly_rent_cny": round2((area * rng.float(15.0, 35.0) / 50.0).round() * 50.0),
        "lease_start_date": iso(start),
        "lease_end_date": iso(end),
        "registration_date": iso(add_days(start, days(rng.range(0, 20)).min(10))),
        "status": status,
    }))
}

/// The contractor of a project: a construction company of the population
/// other than the client, or a provincial group.
fn contractor(rng: &mut Rng, population: &Population, client: u32) -> String {
    let builders: Vec<&str> = population
        .companies
        .iter()
        .filter(|c| c.index != client && trade(c) == "建筑工程")
        .map(|c| c.name.as_str())
        .collect();
    if builders.is_empty() || rng.chance(0.3) {
        (*rng.pick(&[
            "安徽建工集团股份有限公司",
            "安徽水利开发有限公司",
            "中铁四局集团有限公司",
        ]))
        .to_owned()
    } else {
        (*rng.pick(&builders)).to_owned()
    }
}

/// Permits of developers' housing projects and of the sample company's new plant.
fn construction_permits(firm: &Firm, population: &Population) -> Vec<Value> {
    let company = firm.company;
    let mut rng = firm.rng(CONSTRUCTION_PERMIT);
    let developer = trade(company) == "房地产开发";
    let count = if firm.sample {
        1
    } else if developer {
        rng.range(1, 4)
    } else if rng.chance(0.05) {
        1
    } else {
        0
    };
    let mut permits = Vec::new();
    for n in 0..count {
        let issued = rng.date(company.established, add_days(REFERENCE_DATE, -30));
        let (project, scale, price) = if developer {
            let area = rng.range(30_000, 150_000);
            let project = format!(
                "{}{}期",
                rng.pick(PROJECTS),
                ["一", "二", "三"]
                    .get(usize::try_from(n).unwrap_or(0))
                    .unwrap_or(&"一")
            );
            let buildings = rng.range(4, 16);
            (
                project,
                format!("总建筑面积{area}平方米，{buildings}栋住宅楼"),
                f64::from(u32::try_from(area).unwrap_or(0)) * rng.float(1_800.0, 2_600.0),
            )
        } else {
            let area = rng.range(5_000, 30_000);
            (
                format!("{}新建厂房项目", company.short_name()),
                format!("总建筑面积{area}平方米，钢结构厂房"),
                f64::from(u32::try_from(area).unwrap_or(0)) * rng.float(1_200.0, 1_800.0),
            )
        };
        let big = price > 3_000_000.0;
        let supervisor = if big || rng.chance(0.5) {
            Some(format!(
                "安徽{}工程建设监理有限公司",
                rng.pick(&["省建", "华星", "远大", "建科"])
            ))
        } else {
            None
        };
        let address = residential_address(&mut rng, firm.city, firm.district);
        let site = address.split('号').next().unwrap_or(&address).to_owned();
        permits.push(json!({
            "permit_no": format!("{}{}{}", firm.district.code, compact(issued), rng.digits(4)),
            "uscc": company.uscc,
            "holder_name": company.name,
            "project_name": project,
            "construction_address": format!("安徽省{site}号"),
            "construction_scale": scale,
            "contract_price_cny": round2(price),
            "contractor_name": contractor(&mut rng, population, company.index),
            "supervisor_name": supervisor,
            "contract_duration_days": i64::try_from(rng.range(180, 900)).unwrap_or(365),
            "issuing_authority": local_office(firm.city, firm.district, "住房和城乡建设局"),
            "issue_date": iso(issued),
        }));
    }
    permits
}

/// Qualifications of construction companies, and the sample company's
/// specialist decoration and installation grade.
fn qualification(firm: &Firm, population: &Population) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(CONSTRUCTION_ENTERPRISE_QUALIFICATION);
    let builder = trade(company) == "建筑工程";
    if !firm.sample && !builder {
        return None;
    }
    let grades: Vec<&str> = if firm.sample {
        vec!["建筑装修装饰工程专业承包二级", "钢结构工程专业承包三级"]
    } else {
        let main = *rng.pick(&[
            "建筑工程施工总承包二级",
            "建筑工程施工总承包三级",
            "市政公用工程施工总承包三级",
        ]);
        if rng.chance(0.5) {
            vec![main, "地基基础工程专业承包三级"]
        } else {
            vec![main]
        }
    };
    // Grade-two certificates come from the province, grade three from the city.
    let authority = if grades.iter().any(|g| g.ends_with("二级")) {
        "安徽省住房和城乡建设厅".to_owned()
    } else {
        format!("{}住房和城乡建设局", firm.city.name)
    };
    let (issued, until) = current_term(&mut rng, add_months(company.established, 3), 5);
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    Some(json!({
        "certificate_no": format!("D234{}", rng.digits(6)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "legal_representative": representative,
        "registered_address": company.address,
        "qualifications": grades,
        "issuing_authority": authority,
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// The gappy citizen owns no home, so has no sales filing, and rents.
    #[tokio::test]
    async fn the_gappy_citizen_rents_and_bought_nothing() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
        let filings = seeded
            .lookup(&gappy, COMMERCIAL_HOUSING_SALES_CONTRACT_FILING)
            .await
            .unwrap();
        assert!(filings.is_empty());
        let leases = seeded
            .lookup(&gappy, HOUSING_LEASE_REGISTRATION)
            .await
            .unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0]["status"], "valid");
    }
}
