//! Health Commission (卫生健康委员会): birth medical certificates (issued to
//! the mother, naming the husband of her marriage of the day as father, from
//! [`kin::marriages`]), death medical certificates, medical practitioner
//! licences and vaccinations.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, add_years, days, iso};
use xgate_synth::regions::{City, District, PROVINCE};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Gender, Person, Population, Records, Rng, tagged};

use crate::kin::{self, End, Marriage, local_agency};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "health";

pub const BIRTH_MEDICAL_CERTIFICATE: &str = "birth_medical_certificate";
pub const DEATH_MEDICAL_CERTIFICATE: &str = "death_medical_certificate";
pub const MEDICAL_PRACTITIONER_LICENCE: &str = "medical_practitioner_licence";
pub const VACCINATION_RECORD: &str = "vaccination_record";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Health Commission (卫生健康委员会)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date as DateColumn, Integer, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: BIRTH_MEDICAL_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("mother_name", Text),
            Column::new("newborn_name", Text),
            Column::new("newborn_gender", Text),
            Column::new("birth_date", DateColumn),
            Column::new("birth_place", Text),
            Column::new("gestational_weeks", Integer),
            Column::new("birth_weight_g", Integer),
            Column::nullable("father_name", Text),
            Column::nullable("father_id_number", Text),
            Column::new("issuing_institution", Text),
        ],
    },
    Table {
        record_type: DEATH_MEDICAL_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("gender", Text),
            Column::new("birth_date", DateColumn),
            Column::new("death_date", DateColumn),
            Column::new("place_of_death", Text),
            Column::new("underlying_cause_icd10", Text),
            Column::new("issuing_institution", Text),
            Column::new("issue_date", DateColumn),
        ],
    },
    Table {
        record_type: MEDICAL_PRACTITIONER_LICENCE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("qualification_certificate_no", Text),
            Column::new("category", Text),
            Column::new("practice_scope", Text),
            Column::new("practice_institution", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", DateColumn),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: VACCINATION_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("vaccine_name", Text),
            Column::new("dose_number", Integer),
            Column::new("vaccination_date", DateColumn),
            Column::new("manufacturer", Text),
            Column::new("batch_no", Text),
            Column::new("site", Text),
        ],
    },
];

fn generate(population: &Population) -> Records {
    let marriages = kin::marriages(population);
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        out.extend(
            births(&person, &marriages)
                .into_iter()
                .map(tagged(BIRTH_MEDICAL_CERTIFICATE)),
        );
        out.extend(death(&person).map(tagged(DEATH_MEDICAL_CERTIFICATE)));
        out.extend(licence(&person).map(tagged(MEDICAL_PRACTITIONER_LICENCE)));
        out.extend(
            vaccinations(&person)
                .into_iter()
                .map(tagged(VACCINATION_RECORD)),
        );
    }
    out
}

/// A hospital of the city or the district.
fn hospital(rng: &mut Rng, city: &City, district: &District) -> String {
    match rng.range(0, 3) {
        0 => format!("{}人民医院", city.name),
        1 => format!("{}妇幼保健院", city.name),
        _ => format!("{}人民医院", district.name),
    }
}

/// Birth medical certificates exist since 1996. Each married woman has up
/// to two children, born in her marriage and before she is 42; the sample
/// citizen has a son of her second marriage.
fn births(p: &Person, marriages: &[Marriage]) -> Vec<Value> {
    let c = p.citizen;
    let mut out = Vec::new();
    if c.gender != Gender::Female || p.gappy {
        return out;
    }
    let mut rng = p.rng(BIRTH_MEDICAL_CERTIFICATE);
    let last_birth = add_years(c.birth_date, 42).min(add_days(REFERENCE_DATE, -10));
    for marriage in marriages.iter().filter(|m| m.wife.id_number == c.id_number) {
        let lasting = p.sample && marriage.end == End::Lasting;
        let until = match &marriage.end {
            End::Divorced { date, .. } => *date,
            _ => last_birth,
        }
        .min(last_birth);
        let mut from = add_months(marriage.date, 10).max(date!(1996 - 01 - 01));
        let children = if lasting {
            1
        } else if p.sample {
            0
        } else {
            *rng.pick(&[0, 1, 1, 2])
        };
        for _ in 0..children {
            if from > until {
                break;
            }
            let born = rng.date(from, until.min(add_years(from, 5)));
            from = add_months(born, 18);
            let gender = if lasting || rng.chance(0.51) {
                Gender::Male
            } else {
                Gender::Female
            };
            let father = &marriage.husband;
            let institution = hospital(&mut rng, p.city, p.district);
            let letter =
                char::from(b'A' + u8::try_from((born.year() - 1996).rem_euclid(26)).unwrap_or(0));
            out.push(json!({
                "certificate_no": format!("{letter}{}{}", &p.district.code[..2], rng.digits(7)),
                "id_number": c.id_number,
                "mother_name": c.name,
                "newborn_name": format!("{}{}", kin::surname(&father.name), kin::given_name(&mut rng, gender)),
                "newborn_gender": gender.as_str(),
                "birth_date": iso(born),
                "birth_place": format!("{PROVINCE}{}{}", p.city.name, p.district.name),
                "gestational_weeks": rng.range(37, 42),
                "birth_weight_g": rng.range(2_600, 4_100),
                "father_name": father.name,
                "father_id_number": father.id_number,
                "issuing_institution": institution,
            }));
        }
    }
    out
}

/// Common underlying causes of death (ICD-10).
const CAUSES: &[(&str, u32)] = &[
    ("I63.9", 20),
    ("I21.9", 15),
    ("I61.9", 10),
    ("C34.9", 12),
    ("J44.9", 10),
    ("C16.9", 6),
    ("C22.0", 6),
    ("E11.9", 5),
    ("J18.9", 6),
    ("V89.2", 3),
];

/// A few of the very old have died in the last two years. The demo's sample
/// citizen must hold every personal type, so she holds one too (a synthetic
/// certificate dated on the reference date) — a known oddity of the demo
/// data, not of the model.
fn death(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(DEATH_MEDICAL_CERTIFICATE);
    if p.gappy || !(p.sample || (c.age() >= 75 && rng.chance(0.04))) {
        return None;
    }
    let died = if p.sample {
        REFERENCE_DATE
    } else {
        rng.date(add_years(REFERENCE_DATE, -2), add_days(REFERENCE_DATE, -2))
    };
    let place = *rng.pick_weighted(&[
        ("hospital", 45),
        ("home", 40),
        ("elderly_care_institution", 8),
        ("en_route", 4),
        ("other", 3),
    ]);
    let institution = if place == "home" || place == "other" {
        format!("{}卫生院", p.district.name)
    } else if rng.chance(0.5) {
        format!("{}人民医院", p.city.name)
    } else {
        format!("{}人民医院", p.district.name)
    };
    Some(json!({
        "certificate_no": format!("{}{}{}", p.district.code, died.year(), rng.digits(6)),
        "id_number": c.id_number,
        "name": c.name,
        "gender": c.gender.as_str(),
        "birth_date": iso(c.birth_date),
        "death_date": iso(died),
        "place_of_death": place,
        "underlying_cause_icd10": rng.pick_weighted(CAUSES),
        "issuing_institution": institution,
        "issue_date": iso(died.min(REFERENCE_DATE)),
    }))
}

/// Practice categories: scope, category digit.
const CATEGORIES: &[(&str, &str, u32)] = &[
    ("clinical", "内科专业", 1),
    ("clinical", "外科专业", 1),
    ("clinical", "妇产科专业", 1),
    ("clinical", "儿科专业", 1),
    ("traditional_chinese_medicine", "中医专业", 2),
    ("dental", "口腔专业", 3),
    ("public_health", "公共卫生类别专业", 4),
];

/// About one adult in a hundred is a licensed physician (the sample citizen
/// practises internal medicine), qualified at 24 or later.
fn licence(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(MEDICAL_PRACTITIONER_LICENCE);
    let from = p.birthday(24).max(date!(1999 - 05 - 01));
    let latest = add_days(REFERENCE_DATE, -30);
    if p.gappy || from > latest || c.age() > 70 || !(p.sample || rng.chance(0.012)) {
        return None;
    }
    let (category, scope, digit) = if p.sample {
        ("clinical", "内科专业", 1)
    } else {
        *rng.pick(CATEGORIES)
    };
    let qualified = rng.date(from, latest.min(add_years(from, 10)));
    let issued = rng.date(
        add_months(qualified, 2),
        latest
            .max(add_months(qualified, 2))
            .min(add_months(qualified, 12)),
    );
    let status = if p.sample {
        "registered"
    } else {
        *rng.pick_weighted(&[("registered", 94), ("suspended", 2), ("cancelled", 4)])
    };
    Some(json!({
        "certificate_no": format!("1{digit}{}{}{}", &p.district.code[..4], issued.year(), rng.digits(5)),
        "id_number": c.id_number,
        "name": c.name,
        "qualification_certificate_no": format!("{}{digit}{}{}{}", qualified.year(), 1, p.district.code, rng.digits(10)),
        "category": category,
        "practice_scope": scope,
        "practice_institution": hospital(&mut rng, p.city, p.district),
        "issuing_authority": local_agency(p.city, p.district, "卫生健康委员会"),
        "issue_date": iso(issued.min(latest)),
        "status": status,
    }))
}

/// Vaccines: name, manufacturer, doses, first possible date, minimum age.
const COVID: (&str, &str) = (
    "新冠病毒灭活疫苗（Vero细胞）",
    "北京科兴中维生物技术有限公司",
);
const INFLUENZA: (&str, &str) = ("流感病毒裂解疫苗", "华兰生物疫苗股份有限公司");
const PNEUMOCOCCAL: (&str, &str) = ("23价肺炎球菌多糖疫苗", "成都生物制品研究所有限责任公司");

/// `202105A0123`: the production year and month, a line letter and a serial.
fn batch(rng: &mut Rng, on: Date) -> String {
    let made = add_months(on, -i32::try_from(rng.range(2, 8)).unwrap_or(3));
    format!(
        "{}{:02}{}{}",
        made.year(),
        u8::from(made.month()),
        char::from(b'A' + u8::try_from(rng.range(0, 6)).unwrap_or(0)),
        rng.digits(3)
    )
}

/// Three in five adults' records are shared: two doses of a COVID-19 vaccine
/// in 2021 and sometimes a booster, a flu shot for some, a pneumococcal
/// vaccine for some over 60. The sample citizen had three COVID doses and a
/// flu shot last autumn.
fn vaccinations(p: &Person) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(VACCINATION_RECORD);
    let mut out = Vec::new();
    if c.age() < 18 || !(p.sample || p.gappy || rng.chance(0.6)) {
        return out;
    }
    let site = format!("{}疾病预防控制中心预防接种门诊", p.district.name);
    let mut push = |rng: &mut Rng, (vaccine, maker): (&str, &str), dose: u64, on: Date| {
        out.push(json!({
            "id_number": c.id_number,
            "name": c.name,
            "vaccine_name": vaccine,
            "dose_number": dose,
            "vaccination_date": iso(on),
            "manufacturer": maker,
            "batch_no": batch(rng, on),
            "site": site,
        }));
    };
    let first = rng.date(date!(2021 - 03 - 01), date!(2021 - 08 - 31));
    push(&mut rng, COVID, 1, first);
    let second = add_days(first, days(rng.range(21, 56)));
    push(&mut rng, COVID, 2, second);
    if p.sample || rng.chance(0.6) {
        let third = add_days(second, days(rng.range(180, 300)));
        push(&mut rng, COVID, 3, third);
    }
    if p.sample || rng.chance(0.25) {
        let flu = rng.date(date!(2025 - 10 - 01), date!(2025 - 12 - 15));
        push(&mut rng, INFLUENZA, 1, flu);
    }
    if c.age() >= 60 && rng.chance(0.2) {
        let on = rng.date(date!(2023 - 03 - 01), add_days(REFERENCE_DATE, -10));
        push(&mut rng, PNEUMOCOCCAL, 1, on);
    }
    out
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn fathers_are_husbands_and_births_follow_marriages() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let marriages = kin::marriages(&seeded.population);
        let births = seeded.all(BIRTH_MEDICAL_CERTIFICATE).await.unwrap();
        let mothers = holders(&births, "id_number");
        assert!((80..=400).contains(&mothers), "{mothers}");
        for birth in &births {
            let marriage = marriages
                .iter()
                .find(|m| {
                    m.wife.id_number == birth["id_number"]
                        && m.husband.id_number == birth["father_id_number"]
                })
                .unwrap();
            assert!(birth["birth_date"].as_str().unwrap() > iso(marriage.date).as_str());
            let surname = kin::surname(&marriage.husband.name);
            assert!(
                birth["newborn_name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&surname)
            );
        }
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let hers = seeded
            .lookup(&sample, BIRTH_MEDICAL_CERTIFICATE)
            .await
            .unwrap();
        let husband = marriages
            .iter()
            .find(|m| m.wife.id_number == sample.id && m.end == End::Lasting)
            .unwrap();
        assert_eq!(
            hers[0]["father_id_number"],
            husband.husband.id_number.as_str()
        );
        let deaths = holders(
            &seeded.all(DEATH_MEDICAL_CERTIFICATE).await.unwrap(),
            "id_number",
        );
        assert!((1..=20).contains(&deaths), "{deaths}");
    }
}
