//! Human Resources and Social Security Bureau (人力资源和社会保障局): employment
//! registrations (the jobs of [`kin::job`], which the provident fund and
//! medical insurance read too), social insurance contributions, pensions,
//! professional qualifications and work injury determinations.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, add_years, days, iso, month_start};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Gender, Person, Population, Records, round2, tagged};

use crate::kin::{self, Job, local_agency};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "human-resources-social-security";

pub const SOCIAL_INSURANCE_PAYMENT_RECORD: &str = "social_insurance_payment_record";
pub const PENSION_ENTITLEMENT: &str = "pension_entitlement";
pub const PROFESSIONAL_QUALIFICATION_CERTIFICATE: &str = "professional_qualification_certificate";
pub const EMPLOYMENT_REGISTRATION: &str = "employment_registration";
pub const WORK_INJURY_DETERMINATION: &str = "work_injury_determination";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Human Resources and Social Security Bureau (人力资源和社会保障局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date as DateColumn, Integer, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: SOCIAL_INSURANCE_PAYMENT_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("insurance_type", Text),
            Column::new("period", Text),
            Column::nullable("employer_uscc", Text),
            Column::nullable("employer_name", Text),
            Column::new("contribution_base_cny", Real),
            Column::new("employer_contribution_cny", Real),
            Column::new("individual_contribution_cny", Real),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: PENSION_ENTITLEMENT,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("scheme", Text),
            Column::new("retirement_date", DateColumn),
            Column::new("contribution_months", Integer),
            Column::new("monthly_amount_cny", Real),
            Column::new("status", Text),
            Column::new("handling_agency", Text),
        ],
    },
    Table {
        record_type: PROFESSIONAL_QUALIFICATION_CERTIFICATE,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("qualification_name", Text),
            Column::new("level", Text),
            Column::nullable("specialty", Text),
            Column::new("issuing_authority", Text),
            Column::new("issue_date", DateColumn),
        ],
    },
    Table {
        record_type: EMPLOYMENT_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("card_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("employment_status", Text),
            Column::nullable("employment_form", Text),
            Column::nullable("employer_uscc", Text),
            Column::nullable("employer_name", Text),
            Column::new("registration_date", DateColumn),
            Column::new("handling_agency", Text),
        ],
    },
    Table {
        record_type: WORK_INJURY_DETERMINATION,
        subject: "id_number",
        columns: &[
            Column::new("decision_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("employer_uscc", Text),
            Column::new("employer_name", Text),
            Column::new("accident_date", DateColumn),
            Column::new("determination_date", DateColumn),
            Column::new("conclusion", Text),
            Column::nullable("disability_grade", Integer),
            Column::new("determining_authority", Text),
        ],
    },
];

/// Anhui's 2025 contribution base bounds (60% and 300% of the average wage).
const BASE_FLOOR: f64 = 4_227.0;
const BASE_CEILING: f64 = 21_135.0;

/// A wage as a contribution base.
pub fn contribution_base(wage: f64) -> f64 {
    round2(wage.clamp(BASE_FLOOR, BASE_CEILING))
}

/// The last `n` months declared by [`REFERENCE_DATE`] (a month is paid in
/// the next), oldest first, not before `from`'s month.
pub fn recent_months(n: i32, from: Date) -> Vec<Date> {
    let last = add_months(month_start(REFERENCE_DATE), -1);
    (0..n)
        .rev()
        .map(|back| add_months(last, -back))
        .filter(|m| *m >= month_start(from))
        .collect()
}

/// `2026-05`.
pub fn period(month: Date) -> String {
    format!("{:04}-{:02}", month.year(), u8::from(month.month()))
}

/// The sample citizen retired early on her 46th birthday (a disability the
/// federation certified left her unable to work), after which she still runs
/// her company; her contributions are the year before she retired.
fn sample_retirement(p: &Person) -> Date {
    p.birthday(46)
}

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        let job = kin::job(population, person.citizen);
        out.extend(
            contributions(&person, job.as_ref())
                .into_iter()
                .map(tagged(SOCIAL_INSURANCE_PAYMENT_RECORD)),
        );
        out.extend(pension(&person, job.as_ref()).map(tagged(PENSION_ENTITLEMENT)));
        out.extend(qualification(&person).map(tagged(PROFESSIONAL_QUALIFICATION_CERTIFICATE)));
        out.extend(employment(&person, job.as_ref()).map(tagged(EMPLOYMENT_REGISTRATION)));
        out.extend(
            job.as_ref()
                .and_then(|job| injury(&person, job))
                .map(tagged(WORK_INJURY_DETERMINATION)),
        );
    }
    out
}

/// Six months of pension, unemployment and work injury contributions for
/// everyone employed, and pension contributions of some flexible workers.
fn contributions(p: &Person, job: Option<&Job>) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(SOCIAL_INSURANCE_PAYMENT_RECORD);
    let mut out = Vec::new();
    let record = |insurance: &str,
                  month: Date,
                  employer: Option<&Job>,
                  base: f64,
                  shares: (f64, f64),
                  status: &str| {
        json!({
            "id_number": c.id_number,
            "name": c.name,
            "insurance_type": insurance,
            "period": period(month),
            "employer_uscc": employer.map(|j| j.employer.uscc.clone()),
            "employer_name": employer.map(|j| j.employer.name.clone()),
            "contribution_base_cny": base,
            "employer_contribution_cny": round2(base * shares.0),
            "individual_contribution_cny": round2(base * shares.1),
            "status": status,
        })
    };
    match job {
        Some(job) => {
            let base = contribution_base(job.wage);
            let months = if p.sample {
                let retired = month_start(sample_retirement(p));
                (1..=12)
                    .rev()
                    .map(|back| add_months(retired, -back))
                    .collect()
            } else {
                recent_months(6, add_months(job.since, 1))
            };
            let injury_rate = *rng.pick(&[0.002, 0.004, 0.008, 0.012]);
            let late = !p.sample && rng.chance(0.05);
            for (i, month) in months.iter().enumerate() {
                let status = if late && i + 1 == months.len() {
                    "arrears"
                } else if late && i + 2 == months.len() {
                    "back_paid"
                } else {
                    "paid"
                };
                out.push(record(
                    "basic_pension",
                    *month,
                    Some(job),
                    base,
                    (0.16, 0.08),
                    status,
                ));
                out.push(record(
                    "unemployment",
                    *month,
                    Some(job),
                    base,
                    (0.005, 0.005),
                    status,
                ));
                out.push(record(
                    "work_injury",
                    *month,
                    Some(job),
                    base,
                    (injury_rate, 0.0),
                    status,
                ));
            }
        }
        None if kin::working_age(c) && c.age() >= 25 && rng.chance(0.2) => {
            // Flexible employment: pension only, 20% of a base the person chooses.
            let base = *rng.pick(&[BASE_FLOOR, 6_000.0, 8_454.0]);
            for month in recent_months(6, date!(2000 - 01 - 01)) {
                out.push(record(
                    "basic_pension",
                    month,
                    None,
                    base,
                    (0.0, 0.20),
                    "paid",
                ));
            }
        }
        None => {}
    }
    out
}

/// Most of the retired draw a pension: employees from 60 (men) or 55 (women),
/// residents from 60; the sample citizen retired early.
fn pension(p: &Person, job: Option<&Job>) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(PENSION_ENTITLEMENT);
    let (scheme, retired) = if p.sample {
        ("enterprise_employee", sample_retirement(p))
    } else {
        let employee = rng.chance(0.6);
        let age = match (employee, c.gender) {
            (true, Gender::Female) => 55,
            _ => 60,
        };
        let retired = p.birthday(age);
        if p.gappy || job.is_some() || retired > REFERENCE_DATE || !rng.chance(0.85) {
            return None;
        }
        let scheme = if !employee {
            "urban_rural_resident"
        } else if rng.chance(0.2) {
            "public_institution"
        } else {
            "enterprise_employee"
        };
        (scheme, retired)
    };
    let (months, amount) = match scheme {
        "urban_rural_resident" => {
            // The resident scheme began in 2009-2011: at most 15 years.
            let years = rng.range(8, 16);
            (years * 12, rng.float(150.0, 400.0))
        }
        _ => {
            let years = if p.sample { 25 } else { rng.range(15, 40) };
            (years * 12, rng.float(2_000.0, 5_500.0))
        }
    };
    let status = if p.sample {
        "paying"
    } else {
        *rng.pick_weighted(&[("paying", 95), ("suspended", 3), ("terminated", 2)])
    };
    Some(json!({
        "id_number": c.id_number,
        "name": c.name,
        "scheme": scheme,
        "retirement_date": iso(retired),
        "contribution_months": months,
        "monthly_amount_cny": round2(amount),
        "status": status,
        "handling_agency": local_agency(p.city, p.district, "社会保险事业管理中心"),
    }))
}

/// Professional qualifications (职业资格): name, specialty, and whether the
/// province or the ministry issues it.
const QUALIFICATIONS: &[(&str, Option<&str>, bool)] = &[
    ("经济专业技术资格", Some("财政税收"), true),
    ("经济专业技术资格", Some("人力资源管理"), true),
    ("会计专业技术资格", None, false),
    ("审计专业技术资格", None, false),
    ("统计专业技术资格", None, true),
    ("社会工作者职业资格", None, false),
    ("工程师", Some("建筑材料"), true),
    ("工程师", Some("土木工程"), true),
];

/// About one adult in ten over 25 holds a professional qualification; the
/// sample citizen an engineering one in building materials.
fn qualification(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(PROFESSIONAL_QUALIFICATION_CERTIFICATE);
    let from = p.birthday(25).max(date!(1995 - 01 - 01));
    let latest = add_days(REFERENCE_DATE, -30);
    if p.gappy || from > latest || !(p.sample || rng.chance(0.1)) {
        return None;
    }
    let (name, specialty, provincial) = if p.sample {
        ("工程师", Some("建筑材料"), true)
    } else {
        *rng.pick(QUALIFICATIONS)
    };
    let level = if p.sample {
        "intermediate"
    } else {
        *rng.pick_weighted(&[
            ("junior", 35),
            ("intermediate", 45),
            ("associate_senior", 17),
            ("senior", 3),
        ])
    };
    let issued = rng.date(from, latest.min(add_years(from, 20)));
    let authority = if provincial {
        "安徽省人力资源和社会保障厅"
    } else {
        "中华人民共和国人力资源和社会保障部"
    };
    Some(json!({
        "certificate_no": format!("{}{}{}", issued.year(), p.district.code, rng.digits(8)),
        "id_number": c.id_number,
        "name": c.name,
        "qualification_name": name,
        "level": level,
        "specialty": specialty,
        "issuing_authority": authority,
        "issue_date": iso(issued),
    }))
}

/// Everyone with a job has a registration naming the employer; some of the
/// rest of working age are registered self-employed, in flexible work, or
/// unemployed.
fn employment(p: &Person, job: Option<&Job>) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(EMPLOYMENT_REGISTRATION);
    let (status, form, registered) = match job {
        Some(job) => ("employed", Some("employee"), job.since),
        None => {
            if !kin::working_age(c) || c.age() < 18 || !rng.chance(0.35) {
                return None;
            }
            let (status, form) = *rng.pick_weighted(&[
                (("employed", Some("self_employed")), 35),
                (("employed", Some("flexible")), 35),
                (("unemployed", None), 30),
            ]);
            let from = p.birthday(18).max(add_years(REFERENCE_DATE, -8));
            (status, form, rng.date(from, add_days(REFERENCE_DATE, -10)))
        }
    };
    Some(json!({
        "card_no": format!("{}{}{}", p.district.code, registered.year(), rng.digits(8)),
        "id_number": c.id_number,
        "name": c.name,
        "employment_status": status,
        "employment_form": form,
        "employer_uscc": job.map(|j| j.employer.uscc.clone()),
        "employer_name": job.map(|j| j.employer.name.clone()),
        "registration_date": iso(registered),
        "handling_agency": local_agency(p.city, p.district, "人力资源和社会保障局"),
    }))
}

/// About one employee in sixty has had a work injury determined; the
/// sample citizen's was a fall at a warehouse of her company.
fn injury(p: &Person, job: &Job) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(WORK_INJURY_DETERMINATION);
    if p.gappy || !(p.sample || rng.chance(0.016)) {
        return None;
    }
    let latest = add_days(REFERENCE_DATE, -90);
    let until = if p.sample {
        add_days(sample_retirement(p), -400)
    } else {
        latest
    };
    if job.since > until {
        return None;
    }
    let accident = rng.date(job.since, until);
    let determined = add_days(accident, days(rng.range(30, 60)));
    let conclusion = if p.sample {
        "work_injury"
    } else {
        *rng.pick_weighted(&[
            ("work_injury", 80),
            ("deemed_work_injury", 8),
            ("not_work_injury", 12),
        ])
    };
    let grade = (conclusion != "not_work_injury" && rng.chance(0.5)).then(|| rng.range(5, 11));
    // The bureau where the employer is registered determines the injury.
    let (city, district) = job.employer.home().unwrap_or((p.city, p.district));
    let abbreviation: String = city.name.chars().take(1).collect();
    Some(json!({
        "decision_no": format!("{abbreviation}人社工认〔{}〕{:04}号", determined.year(), rng.range(1, 3_000)),
        "id_number": c.id_number,
        "name": c.name,
        "employer_uscc": job.employer.uscc,
        "employer_name": job.employer.name,
        "accident_date": iso(accident),
        "determination_date": iso(determined),
        "conclusion": conclusion,
        "disability_grade": grade,
        "determining_authority": local_agency(city, district, "人力资源和社会保障局"),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn the_sample_citizen_works_for_the_sample_company() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let firm = seeded.sample_company().unwrap();
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let employment = seeded
            .lookup(&sample, EMPLOYMENT_REGISTRATION)
            .await
            .unwrap();
        assert_eq!(employment[0]["employer_uscc"], firm.uscc.as_str());
        let payments = seeded
            .lookup(&sample, SOCIAL_INSURANCE_PAYMENT_RECORD)
            .await
            .unwrap();
        assert_eq!(payments.len(), 36);
        assert!(
            payments
                .iter()
                .all(|r| r["employer_uscc"] == firm.uscc.as_str())
        );
        let pension = &seeded.lookup(&sample, PENSION_ENTITLEMENT).await.unwrap()[0];
        // She paid until the month before she retired.
        let last = payments.last().unwrap()["period"].as_str().unwrap();
        assert!(last < &pension["retirement_date"].as_str().unwrap()[..7]);
    }

    #[tokio::test]
    async fn holdings_are_plausible() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let employed = holders(
            &seeded.all(EMPLOYMENT_REGISTRATION).await.unwrap(),
            "id_number",
        );
        assert!((250..=800).contains(&employed), "{employed}");
        let pensioners = holders(&seeded.all(PENSION_ENTITLEMENT).await.unwrap(), "id_number");
        assert!((80..=400).contains(&pensioners), "{pensioners}");
        let injured = holders(
            &seeded.all(WORK_INJURY_DETERMINATION).await.unwrap(),
            "id_number",
        );
        assert!((2..=30).contains(&injured), "{injured}");
        for record in seeded.all(WORK_INJURY_DETERMINATION).await.unwrap() {
            let uscc = record["employer_uscc"].as_str().unwrap();
            let (city, _) = seeded
                .population
                .company_by_uscc(uscc)
                .unwrap()
                .home()
                .unwrap();
            let authority = record["determining_authority"].as_str().unwrap();
            let county = authority.trim_end_matches("人力资源和社会保障局");
            assert!(
                authority.starts_with(city.name) || city.district(county).is_some(),
                "{record}"
            );
        }
        for record in seeded.all(SOCIAL_INSURANCE_PAYMENT_RECORD).await.unwrap() {
            let base = record["contribution_base_cny"].as_f64().unwrap();
            assert!((BASE_FLOOR..=BASE_CEILING).contains(&base), "{record}");
        }
    }
}
