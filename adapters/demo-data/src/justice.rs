//! Justice Bureau (司法局): notarial certificates issued to citizens, and the
//! practice certificates of lawyers.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{Citizen, DepartmentSpec, Gender, Person, Population, Records, Rng, tagged};

use crate::issuing::{city_abbreviation, district_short_code};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "justice";

pub const NOTARIAL_CERTIFICATE: &str = "notarial_certificate";
pub const LAWYER_PRACTICE_CERTIFICATE: &str = "lawyer_practice_certificate";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Justice Bureau (司法局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: NOTARIAL_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("matter", Text),
            Column::new("notary_office", Text),
            Column::new("notary_name", Text),
            Column::nullable("country_of_use", Text),
            Column::new("issue_date", Date),
            Column::nullable("agent_id_number", Text),
            Column::nullable("covered_item", Text),
        ],
    },
    Table {
        record_type: LAWYER_PRACTICE_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("law_firm", Text),
            Column::new("practice_category", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", Date),
            Column::nullable("last_assessment_year", Integer),
            Column::new("status", Text),
        ],
    },
];

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        out.extend(
            notarial_certificates(&person, population)
                .into_iter()
                .map(tagged(NOTARIAL_CERTIFICATE)),
        );
        out.extend(
            lawyer_certificate(&person, population).map(tagged(LAWYER_PRACTICE_CERTIFICATE)),
        );
    }
    out
}

/// Someone of the population aged 30 to 60 other than `c`, as the notary;
/// a fixed name when the population is too small to have one.
fn colleague(rng: &mut Rng, population: &Population, c: &Citizen) -> String {
    let count = u64::try_from(population.citizens.len()).unwrap_or(0);
    for _ in 0..16 {
        let found = usize::try_from(rng.range(0, count))
            .ok()
            .and_then(|i| population.citizens.get(i))
            .filter(|n| n.index != c.index && (30..=60).contains(&n.age()));
        if let Some(notary) = found {
            return notary.name.clone();
        }
    }
    "王建国".to_owned()
}

/// Notarised documents, most of them for use abroad (study, visas, family).
fn notarial_certificates(p: &Person, population: &Population) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(NOTARIAL_CERTIFICATE);
    let count = if p.sample {
        1
    } else if c.age() >= 18 && rng.chance(0.06) {
        rng.range(1, 3)
    } else {
        0
    };
    let office = format!("安徽省{}公证处", p.city.name);
    (0..count)
        .map(|_| {
            let issued = rng.date(
                p.birthday(18).max(date!(2005 - 01 - 01)),
                add_days(REFERENCE_DATE, -7),
            );
            let matter = if p.sample {
                "power_of_attorney"
            } else {
                *rng.pick_weighted(&[
                    ("birth", 10),
                    ("kinship", 15),
                    ("marital_status", 10),
                    ("no_criminal_record", 15),
                    ("academic_record", 15),
                    ("will", 5),
                    ("power_of_attorney", 12),
                    ("declaration", 8),
                    ("contract", 6),
                    ("other", 4),
                ])
            };
            let abroad = !p.sample
                && matches!(
                    matter,
                    "birth"
                        | "kinship"
                        | "marital_status"
                        | "no_criminal_record"
                        | "academic_record"
                )
                && rng.chance(0.8);
            let country = abroad.then(|| {
                *rng.pick(&[
                    "美国",
                    "加拿大",
                    "澳大利亚",
                    "英国",
                    "日本",
                    "德国",
                    "新西兰",
                    "新加坡",
                ])
            });
            // A power of attorney names its agent (the next citizen of the
            // population: no draw, so every other field stays as it was)
            // and covers the provident fund withdrawal.
            let power =
                (matter == "power_of_attorney").then(|| (agent_of(population, c), PF_WITHDRAWAL));
            json!({
                "certificate_no": format!(
                    "（{}）皖{}证字第{}号",
                    issued.year(),
                    city_abbreviation(p.city),
                    rng.range(1, 20_000)
                ),
                "id_number": c.id_number,
                "name": c.name,
                "matter": matter,
                "notary_office": office,
                "notary_name": colleague(&mut rng, population, c),
                "country_of_use": country,
                "issue_date": iso(issued),
                "agent_id_number": power.map(|(agent, _)| agent),
                "covered_item": power.map(|(_, item)| item),
            })
        })
        .collect()
}

/// The approval item the demo's powers of attorney cover.
const PF_WITHDRAWAL: &str = "PF-WITHDRAWAL";

/// The agent of `c`'s power of attorney: the next citizen of the population.
fn agent_of<'a>(population: &'a Population, c: &Citizen) -> &'a str {
    let next = usize::try_from(c.index + 1).unwrap_or(0) % population.citizens.len().max(1);
    population
        .citizens
        .get(next)
        .map_or("", |agent| agent.id_number.as_str())
}

const LAW_FIRM_NAMES: &[&str] = &[
    "承义",
    "天禾",
    "徽商",
    "华人",
    "金亚太",
    "淮海",
    "皖通",
    "正义",
];

/// Lawyers: a few in a thousand adults; the sample citizen is the in-house
/// (corporate) lawyer of the sample company.
fn lawyer_certificate(p: &Person, population: &Population) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(LAWYER_PRACTICE_CERTIFICATE);
    let lawyer = p.sample || ((26..=70).contains(&c.age()) && rng.chance(0.006));
    if !lawyer {
        return None;
    }
    let category = if p.sample {
        "corporate"
    } else {
        *rng.pick_weighted(&[
            ("full_time", 80),
            ("part_time", 8),
            ("corporate", 6),
            ("public", 6),
        ])
    };
    let firm = match category {
        "corporate" if p.sample => population
            .companies
            .first()
            .map_or_else(|| "安徽承义律师事务所".to_owned(), |f| f.name.clone()),
        "corporate" => format!("{}城市建设投资有限公司", p.city.name),
        "public" => format!("{}司法局", p.city.name),
        _ => format!("安徽{}律师事务所", rng.pick(LAW_FIRM_NAMES)),
    };
    let issued = rng.date(p.birthday(25), add_days(REFERENCE_DATE, -30));
    let status = if p.sample {
        "practising"
    } else {
        *rng.pick_weighted(&[
            ("practising", 90),
            ("suspended", 3),
            ("revoked", 1),
            ("cancelled", 6),
        ])
    };
    // The assessment of a year is done in the spring of the next; none yet for a newcomer.
    let last_year = REFERENCE_DATE.year() - 1;
    let assessed = (issued.year() < last_year)
        .then_some(if status == "practising" {
            last_year
        } else {
            last_year - 1 - i32::try_from(rng.range(0, 3)).unwrap_or(0)
        })
        .map(|y| y.max(issued.year()));
    let category_digit = match category {
        "full_time" => 1,
        "part_time" => 2,
        "corporate" => 3,
        _ => 4,
    };
    let sex = u8::from(c.gender == Gender::Male);
    Some(json!({
        "certificate_no": format!(
            "1{}{}{category_digit}{sex}{}",
            district_short_code(p.district),
            issued.year(),
            rng.digits(6)
        ),
        "id_number": c.id_number,
        "name": c.name,
        "law_firm": firm,
        "practice_category": category,
        "issuing_authority": "安徽省司法厅",
        "issue_date": iso(issued),
        "last_assessment_year": assessed,
        "status": status,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// The sample citizen practises as the sample company's in-house lawyer;
    /// lawyers are rare.
    #[tokio::test]
    async fn lawyers_are_few_and_the_sample_is_in_house() {
        let seeded = Seeded::new(&SPEC, 1000, 5).await.unwrap();
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let own = seeded
            .lookup(&sample, LAWYER_PRACTICE_CERTIFICATE)
            .await
            .unwrap();
        assert_eq!(
            own[0]["law_firm"],
            seeded.sample_company().unwrap().name.as_str()
        );
        assert_eq!(own[0]["practice_category"], "corporate");
        let all = seeded.all(LAWYER_PRACTICE_CERTIFICATE).await.unwrap();
        assert!(all.len() < 15, "{}", all.len());
    }
}
