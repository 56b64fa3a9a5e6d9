//! Administration for Market Regulation (市场监督管理局): every company's
//! business licence and annual reports, food business and industrial product
//! licences of the companies in those trades, and the certificates of
//! special-equipment operators.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{
    DepartmentSpec, Firm, Gender, Person, Population, Records, Rng, round2, street_address, tagged,
};

use crate::issuing::{any_term, current_term, local_office, representative, trade};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "market-regulation";

pub const BUSINESS_LICENCE: &str = "business_licence";
pub const FOOD_BUSINESS_LICENCE: &str = "food_business_licence";
pub const INDUSTRIAL_PRODUCT_PRODUCTION_LICENCE: &str = "industrial_product_production_licence";
pub const ENTERPRISE_ANNUAL_REPORT: &str = "enterprise_annual_report";
pub const SPECIAL_EQUIPMENT_OPERATOR_CERTIFICATE: &str = "special_equipment_operator_certificate";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Administration for Market Regulation (市场监督管理局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Real, Text, TextList};

static TABLES: &[Table] = &[
    Table {
        record_type: BUSINESS_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("entity_type", Text),
            Column::new("legal_representative", Text),
            Column::nullable("registered_capital_cny", Real),
            Column::new("establishment_date", Date),
            Column::nullable("business_term_until", Date),
            Column::new("domicile", Text),
            Column::new("business_scope", Text),
            Column::new("registration_authority", Text),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: FOOD_BUSINESS_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("licence_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("legal_representative", Text),
            Column::new("premises", Text),
            Column::new("main_business_format", Text),
            Column::new("business_items", TextList),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
    Table {
        record_type: INDUSTRIAL_PRODUCT_PRODUCTION_LICENCE,
        subject: "uscc",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("product_name", Text),
            Column::new("domicile", Text),
            Column::new("production_address", Text),
            Column::new("inspection_method", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
    Table {
        record_type: ENTERPRISE_ANNUAL_REPORT,
        subject: "uscc",
        columns: &[
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("report_year", Integer),
            Column::new("submission_date", Date),
            Column::new("employee_count", Integer),
            Column::new("total_assets_cny", Real),
            Column::new("total_revenue_cny", Real),
            Column::new("net_profit_cny", Real),
            Column::new("total_tax_cny", Real),
            Column::new("publicity_status", Text),
        ],
    },
    Table {
        record_type: SPECIAL_EQUIPMENT_OPERATOR_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("operation_items", TextList),
            Column::nullable("employer_name", Text),
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
        out.push((BUSINESS_LICENCE, business_licence(&firm, population)));
        out.extend(food_licence(&firm, population).map(tagged(FOOD_BUSINESS_LICENCE)));
        out.extend(production_licence(&firm).map(tagged(INDUSTRIAL_PRODUCT_PRODUCTION_LICENCE)));
        out.extend(
            annual_reports(&firm)
                .into_iter()
                .map(tagged(ENTERPRISE_ANNUAL_REPORT)),
        );
    }
    for person in population.people(DEPARTMENT) {
        out.extend(
            operator_certificate(&person, population)
                .map(tagged(SPECIAL_EQUIPMENT_OPERATOR_CERTIFICATE)),
        );
    }
    out
}

/// The registration authority of a company: the district's or county's bureau.
fn registration_authority(firm: &Firm) -> String {
    format!("{}{}市场监督管理局", firm.city.name, firm.district.name)
}

/// The business scope a company of this trade registers.
fn business_scope(trade: &str) -> &'static str {
    match trade {
        "建材" => {
            "一般项目：水泥制品制造；建筑材料销售；涂料制造（不含危险化学品）；轻质建筑材料制造。（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）"
        }
        "机械制造" => {
            "一般项目：通用设备制造（不含特种设备制造）；机械零件、零部件加工；金属结构制造。"
        }
        "电子科技" => {
            "一般项目：电子元器件制造；电线、电缆经营；技术服务、技术开发、技术咨询。"
        }
        "药业" => {
            "许可项目：药品生产；药品批发。一般项目：中药饮片加工；地产中草药（不含中药饮片）购销。"
        }
        "食品" => "许可项目：食品生产；食品销售。一般项目：农副产品销售。",
        "建筑工程" => "许可项目：建设工程施工。一般项目：建筑材料销售；土石方工程施工。",
        "中药材贸易" => {
            "一般项目：中草药收购；地产中草药（不含中药饮片）购销；食品销售（仅销售预包装食品）。"
        }
        "汽车销售" => {
            "一般项目：汽车新车销售；汽车旧车销售；汽车零配件零售；机动车修理和维护。"
        }
        "物流" => {
            "许可项目：道路货物运输（不含危险货物）。一般项目：普通货物仓储服务；国内货物运输代理。"
        }
        "信息技术" => "一般项目：软件开发；信息系统集成服务；信息技术咨询服务。",
        "房地产开发" => "许可项目：房地产开发经营。一般项目：物业管理；非居住房地产租赁。",
        "物业管理" => "一般项目：物业管理；停车场服务；家政服务。",
        "矿业" => "许可项目：非煤矿山矿产资源开采。一般项目：矿物洗选加工；建筑用石加工。",
        "农业发展" => {
            "一般项目：谷物种植；蔬菜种植；农产品的生产、销售、加工、运输、贮藏及其他相关服务。"
        }
        "餐饮管理" => "许可项目：餐饮服务。一般项目：餐饮管理；外卖递送服务。",
        "科技咨询" => "一般项目：技术服务、技术开发、技术咨询、技术交流；企业管理咨询。",
        _ => "一般项目：日用百货销售；五金产品零售；建筑材料销售；电子产品销售。",
    }
}

fn business_licence(firm: &Firm, population: &Population) -> Value {
    let company = firm.company;
    let mut rng = firm.rng(BUSINESS_LICENCE);
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    // Most limited companies register an unlimited term (长期), some 20 or 30 years.
    let term = if rng.chance(0.7) {
        None
    } else {
        let years = *rng.pick(&[20, 30]);
        Some(add_days(add_years(company.established, years), -1))
    };
    let status = if firm.sample {
        "in_business"
    } else {
        *rng.pick_weighted(&[
            ("in_business", 92),
            ("deregistered", 4),
            ("revoked", 2),
            ("moved_out", 2),
        ])
    };
    json!({
        "uscc": company.uscc,
        "holder_name": company.name,
        "entity_type": "limited_liability_company",
        "legal_representative": representative,
        "registered_capital_cny": company.registered_capital_cny,
        "establishment_date": iso(company.established),
        "business_term_until": term.map(iso),
        "domicile": company.address,
        "business_scope": business_scope(trade(company)),
        "registration_authority": registration_authority(firm),
        "status": status,
    })
}

/// Food businesses (retail, catering) and the sample company's canteen.
fn food_licence(firm: &Firm, population: &Population) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(FOOD_BUSINESS_LICENCE);
    let trade = trade(company);
    let format = match trade {
        _ if firm.sample => "unit_canteen",
        "食品" | "中药材贸易" => "food_retailer",
        "商贸" if rng.chance(0.4) => "food_retailer",
        "餐饮管理" => "catering_service",
        _ if rng.chance(0.03) => "unit_canteen",
        _ => return None,
    };
    let (digit, items): (char, &[&str]) = match format {
        "food_retailer" => (
            '1',
            if trade == "中药材贸易" {
                &["预包装食品（不含冷藏冷冻食品）销售", "保健食品销售"]
            } else {
                &[
                    "预包装食品（含冷藏冷冻食品）销售",
                    "散装食品（不含冷藏冷冻食品）销售",
                ]
            },
        ),
        "catering_service" => ('2', &["热食类食品制售", "冷食类食品制售", "自制饮品制售"]),
        _ => ('3', &["热食类食品制售"]),
    };
    let (issued, until) = current_term(&mut rng, company.established, 5);
    let representative = representative(population, firm).map_or("", |c| c.name.as_str());
    Some(json!({
        "licence_no": format!("JY{digit}{}{}", firm.district.code, rng.digits(7)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "legal_representative": representative,
        "premises": company.address,
        "main_business_format": format,
        "business_items": items,
        "issuing_authority": registration_authority(firm),
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

/// Products under the production licence regime made by building-material,
/// electronics and machinery makers: (product, XK category code).
fn licensed_product(trade: &str, rng: &mut Rng) -> Option<(&'static str, &'static str)> {
    match trade {
        "建材" => Some(*rng.pick(&[("水泥", "13"), ("建筑防水卷材", "11")])),
        "电子科技" => Some(("电线电缆", "06")),
        "机械制造" => Some(("危险化学品包装物、容器", "12")),
        _ => None,
    }
}

fn production_licence(firm: &Firm) -> Option<Value> {
    let company = firm.company;
    let mut rng = firm.rng(INDUSTRIAL_PRODUCT_PRODUCTION_LICENCE);
    let holds = firm.sample || rng.chance(0.5);
    let (product, code) = licensed_product(trade(company), &mut rng).filter(|_| holds)?;
    let (issued, until) = current_term(&mut rng, company.established, 5);
    let production = if rng.chance(0.6) {
        company.address.clone()
    } else {
        format!(
            "安徽省{}",
            street_address(&mut rng, firm.city, firm.district)
        )
    };
    Some(json!({
        "certificate_no": format!("XK{code}-{}-{}", rng.range(100, 400), rng.digits(5)),
        "uscc": company.uscc,
        "holder_name": company.name,
        "product_name": product,
        "domicile": company.address,
        "production_address": production,
        "inspection_method": if rng.chance(0.7) { "self_inspection" } else { "entrusted_inspection" },
        "issuing_authority": "安徽省市场监督管理局",
        "issue_date": iso(issued),
        "valid_until": iso(until),
    }))
}

/// The reports of the last three years the company existed for; a year's
/// report is due between 1 January and 30 June of the next.
fn annual_reports(firm: &Firm) -> Vec<Value> {
    let company = firm.company;
    let mut rng = firm.rng(ENTERPRISE_ANNUAL_REPORT);
    let capital = company.registered_capital_cny;
    let employees = (capital / 10_000.0).sqrt() * rng.float(1.0, 4.0) + 3.0;
    let last = REFERENCE_DATE.year() - 1;
    let first = (company.established.year() + 1).max(last - 2).max(2013);
    let mut reports = Vec::new();
    for year in first..=last {
        let due = date!(2000 - 06 - 30)
            .replace_year(year + 1)
            .unwrap_or(REFERENCE_DATE);
        let opens = date!(2000 - 01 - 01)
            .replace_year(year + 1)
            .unwrap_or(REFERENCE_DATE);
        let late = !firm.sample && year < last && rng.chance(0.05);
        let submitted = if late {
            add_days(due, i64::try_from(rng.range(1, 120)).unwrap_or(1))
        } else {
            rng.date(opens, due)
        };
        let status = if late {
            "published_late"
        } else if rng.chance(0.05) {
            "amended"
        } else {
            "published_on_time"
        };
        let assets = round2(capital * rng.float(1.2, 4.0));
        let revenue = round2(assets * rng.float(0.4, 1.8));
        let margin = if firm.sample {
            rng.float(0.03, 0.12)
        } else {
            rng.float(-0.08, 0.15)
        };
        let tax = round2(revenue * rng.float(0.02, 0.06));
        reports.push(json!({
            "uscc": company.uscc,
            "holder_name": company.name,
            "report_year": year,
            "submission_date": iso(submitted),
            "employee_count": (employees * rng.float(0.9, 1.1)).round().max(1.0) as i64,
            "total_assets_cny": assets,
            "total_revenue_cny": revenue,
            "net_profit_cny": round2(revenue * margin),
            "total_tax_cny": tax,
            "publicity_status": status,
        }));
    }
    reports
}

/// Operation items (TSG Z6001 codes): crane driver, crane signaller, forklift,
/// boiler, pressure vessel, safety management.
const OPERATION_ITEMS: &[&str] = &["Q1", "Q2", "N1", "G1", "R1", "A"];

fn operator_certificate(p: &Person, population: &Population) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(SPECIAL_EQUIPMENT_OPERATOR_CERTIFICATE);
    let share = if c.gender == Gender::Male { 0.06 } else { 0.01 };
    let operator = p.sample || ((20..=60).contains(&c.age()) && rng.chance(share));
    if !operator {
        return None;
    }
    let mut items: Vec<&str> = if p.sample {
        vec!["A", "N1"]
    } else {
        let first = *rng.pick(OPERATION_ITEMS);
        let second = *rng.pick(OPERATION_ITEMS);
        if first == second || rng.chance(0.6) {
            vec![first]
        } else {
            vec![first, second]
        }
    };
    items.sort_unstable();
    let employer = if p.sample {
        population.companies.first().map(|c| c.name.clone())
    } else if rng.chance(0.8) {
        let count = u64::try_from(population.companies.len()).unwrap_or(0);
        usize::try_from(rng.range(0, count))
            .ok()
            .and_then(|i| population.companies.get(i))
            .map(|c| c.name.clone())
    } else {
        None
    };
    // Certificates run four years and are renewed; some lapse.
    let adult = p.birthday(18);
    let (issued, until) = if p.sample || rng.chance(0.8) {
        current_term(&mut rng, adult, 4)
    } else {
        any_term(&mut rng, adult, 4)
    };
    let status = if until < REFERENCE_DATE {
        "expired"
    } else if rng.chance(0.02) && !p.sample {
        "revoked"
    } else {
        "valid"
    };
    Some(json!({
        "certificate_no": format!("T{}", c.id_number),
        "id_number": c.id_number,
        "name": c.name,
        "operation_items": items,
        "employer_name": employer,
        "issuing_authority": local_office(p.city, p.district, "市场监督管理局"),
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

    /// The sample company's licence names the sample citizen, and its
    /// canteen licence is current.
    #[tokio::test]
    async fn the_sample_company_is_in_business_under_the_sample_citizen() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let citizen = seeded.sample_citizen().unwrap();
        let firm = company(&seeded.sample_company().unwrap().uscc);
        let licence = seeded.lookup(&firm, BUSINESS_LICENCE).await.unwrap();
        assert_eq!(licence[0]["legal_representative"], citizen.name.as_str());
        assert_eq!(licence[0]["status"], "in_business");
        let food = seeded.lookup(&firm, FOOD_BUSINESS_LICENCE).await.unwrap();
        assert_eq!(food[0]["main_business_format"], "unit_canteen");
        assert!(food[0]["valid_until"].as_str().unwrap() >= iso(REFERENCE_DATE).as_str());
        let reports = seeded
            .lookup(&firm, ENTERPRISE_ANNUAL_REPORT)
            .await
            .unwrap();
        assert_eq!(reports.len(), 3);
        let certificate = seeded
            .lookup(
                &person(&citizen.id_number),
                SPECIAL_EQUIPMENT_OPERATOR_CERTIFICATE,
            )
            .await
            .unwrap();
        assert_eq!(
            certificate[0]["certificate_no"],
            format!("T{}", citizen.id_number)
        );
    }
}
