//! Education Bureau (教育局): academic degree certificates and teacher
//! qualification certificates.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Person, Population, Records, Rng, tagged};

use crate::kin::local_agency;

/// The department id in the catalog.
pub const DEPARTMENT: &str = "education";

pub const ACADEMIC_DEGREE_CERTIFICATE: &str = "academic_degree_certificate";
pub const TEACHER_QUALIFICATION_CERTIFICATE: &str = "teacher_qualification_certificate";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Education Bureau (教育局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date as DateColumn, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: ACADEMIC_DEGREE_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("degree_level", Text),
            Column::new("degree_type", Text),
            Column::new("discipline", Text),
            Column::new("major", Text),
            Column::new("awarding_institution", Text),
            Column::new("award_date", DateColumn),
        ],
    },
    Table {
        record_type: TEACHER_QUALIFICATION_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("qualification_type", Text),
            Column::nullable("teaching_subject", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", DateColumn),
        ],
    },
];

/// Anhui universities and their five-digit national codes.
const INSTITUTIONS: &[(&str, &str)] = &[
    ("安徽大学", "10357"),
    ("中国科学技术大学", "10358"),
    ("合肥工业大学", "10359"),
    ("安徽工业大学", "10360"),
    ("安徽理工大学", "10361"),
    ("安徽农业大学", "10364"),
    ("安徽医科大学", "10366"),
    ("安徽师范大学", "10370"),
    ("淮北师范大学", "10373"),
    ("安徽建筑大学", "10878"),
];

/// Disciplines (学科门类) with majors.
const MAJORS: &[(&str, &str)] = &[
    ("工学", "土木工程"),
    ("工学", "材料科学与工程"),
    ("工学", "计算机科学与技术"),
    ("工学", "机械设计制造及其自动化"),
    ("理学", "数学与应用数学"),
    ("理学", "化学"),
    ("经济学", "国际经济与贸易"),
    ("管理学", "会计学"),
    ("管理学", "工商管理"),
    ("法学", "法学"),
    ("文学", "汉语言文学"),
    ("文学", "英语"),
    ("教育学", "教育学"),
    ("医学", "临床医学"),
    ("农学", "农学"),
];

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        out.extend(
            degrees(&person)
                .into_iter()
                .map(tagged(ACADEMIC_DEGREE_CERTIFICATE)),
        );
        out.extend(teacher(&person).map(tagged(TEACHER_QUALIFICATION_CERTIFICATE)));
    }
    out
}

/// A late-June degree day in `year`.
fn degree_day(rng: &mut Rng, year: i32) -> Date {
    let first = Date::from_calendar_date(year, time::Month::June, 20).unwrap_or(REFERENCE_DATE);
    rng.date(first, add_days(first, 10))
}

/// About a quarter of adults under 60 hold a bachelor's degree (awarded at
/// 22), a quarter of those a master's three years later and a few a
/// doctorate; the sample citizen studied clinical medicine (five years) and
/// took a professional master's.
fn degrees(p: &Person) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(ACADEMIC_DEGREE_CERTIFICATE);
    let mut out = Vec::new();
    // Degrees as today's records keep them: from 1982 on.
    let bachelor_year = p.birthday(if p.sample { 23 } else { 22 }).year();
    let latest = add_days(REFERENCE_DATE, -3);
    if p.gappy || bachelor_year < 1982 || !(p.sample || rng.chance(0.3)) {
        return out;
    }
    let (discipline, major) = if p.sample {
        ("医学", "临床医学")
    } else {
        *rng.pick(MAJORS)
    };
    let mut steps = vec![("bachelor", "academic", bachelor_year)];
    if p.sample || rng.chance(0.25) {
        let professional = p.sample || rng.chance(0.4);
        steps.push((
            "master",
            if professional {
                "professional"
            } else {
                "academic"
            },
            bachelor_year + 3,
        ));
        if !p.sample && rng.chance(0.15) {
            steps.push(("doctor", "academic", bachelor_year + 6));
        }
    }
    for (level, kind, year) in steps {
        let awarded = degree_day(&mut rng, year);
        if awarded > latest {
            break;
        }
        let (institution, code) = if discipline == "医学" {
            ("安徽医科大学", "10366")
        } else {
            *rng.pick(INSTITUTIONS)
        };
        let level_digit = match level {
            "doctor" => 2,
            "master" => 3,
            _ => 4,
        };
        let discipline = if kind == "professional" && discipline == "医学" {
            "临床医学"
        } else {
            discipline
        };
        out.push(json!({
            "certificate_no": format!("{code}{level_digit}{:02}{}", year % 100, rng.digits(8)),
            "id_number": c.id_number,
            "name": c.name,
            "degree_level": level,
            "degree_type": kind,
            "discipline": discipline,
            "major": major,
            "awarding_institution": institution,
            "award_date": iso(awarded),
        }));
    }
    out
}

/// Qualification types with their subjects.
const QUALIFICATIONS: &[(&str, Option<&str>)] = &[
    ("kindergarten", None),
    ("primary_school", Some("语文")),
    ("primary_school", Some("数学")),
    ("junior_secondary", Some("英语")),
    ("junior_secondary", Some("数学")),
    ("senior_secondary", Some("物理")),
    ("senior_secondary", Some("语文")),
    ("secondary_vocational", Some("机械加工技术")),
    ("secondary_vocational_practical", Some("汽车运用与维修")),
    ("higher_education", Some("临床医学")),
];

/// About one adult in twenty-five is a qualified teacher; the sample citizen
/// teaches clinical medicine part time at a medical college.
fn teacher(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(TEACHER_QUALIFICATION_CERTIFICATE);
    let from = p.birthday(21).max(date!(2001 - 04 - 01));
    let latest = add_days(REFERENCE_DATE, -30);
    if p.gappy || from > latest || !(p.sample || rng.chance(0.04)) {
        return None;
    }
    let (kind, subject) = if p.sample {
        ("higher_education", Some("临床医学"))
    } else {
        *rng.pick(QUALIFICATIONS)
    };
    let issued = rng.date(from, latest.min(add_years(from, 15)));
    // County bureaus certify kindergarten to junior secondary teachers, city
    // bureaus senior and vocational ones, the province university teachers.
    let authority = match kind {
        "kindergarten" | "primary_school" | "junior_secondary" => {
            local_agency(p.city, p.district, "教育局")
        }
        "higher_education" => "安徽省教育厅".to_owned(),
        _ => format!("{}教育局", p.city.name),
    };
    Some(json!({
        "certificate_no": format!("{}34{}{}", issued.year(), rng.range(1, 8), rng.digits(10)),
        "id_number": c.id_number,
        "name": c.name,
        "qualification_type": kind,
        "teaching_subject": subject,
        "issuing_authority": authority,
        "issue_date": iso(issued),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn degrees_follow_each_other_and_birth() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let all = seeded.all(ACADEMIC_DEGREE_CERTIFICATE).await.unwrap();
        let graduates = holders(&all, "id_number");
        assert!((100..=350).contains(&graduates), "{graduates}");
        for record in &all {
            let id = record["id_number"].as_str().unwrap();
            let citizen = seeded.population.citizen_by_id(id).unwrap();
            let year: i32 = record["award_date"].as_str().unwrap()[..4].parse().unwrap();
            assert!(year - citizen.birth_date.year() >= 22, "{record}");
        }
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let hers = seeded
            .lookup(&sample, ACADEMIC_DEGREE_CERTIFICATE)
            .await
            .unwrap();
        let levels: Vec<&str> = hers
            .iter()
            .map(|r| r["degree_level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["bachelor", "master"]);
        let kindergarten = seeded.all(TEACHER_QUALIFICATION_CERTIFICATE).await.unwrap();
        for record in kindergarten
            .iter()
            .filter(|r| r["qualification_type"] == "kindergarten")
        {
            assert!(record["teaching_subject"].is_null());
        }
    }
}
