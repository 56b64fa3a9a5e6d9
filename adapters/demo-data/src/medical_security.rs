//! Healthcare Security Administration (医疗保障局): basic medical insurance
//! enrolment and contributions. The employed (of [`kin::job`]) are in the
//! employee scheme through their employer, everyone else in the resident
//! scheme, paid once a year.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Person, Population, Records, round2, tagged};

use crate::human_resources_social_security::{contribution_base, period, recent_months};
use crate::kin::{self, Job};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "medical-security";

pub const MEDICAL_INSURANCE_ENROLMENT: &str = "medical_insurance_enrolment";
pub const MEDICAL_INSURANCE_PAYMENT_RECORD: &str = "medical_insurance_payment_record";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Healthcare Security Administration (医疗保障局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date as DateColumn, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: MEDICAL_INSURANCE_ENROLMENT,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("scheme", Text),
            Column::new("insured_region_code", Text),
            Column::nullable("employer_name", Text),
            Column::new("enrolment_date", DateColumn),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: MEDICAL_INSURANCE_PAYMENT_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("scheme", Text),
            Column::new("period", Text),
            Column::nullable("contribution_base_cny", Real),
            Column::new("employer_contribution_cny", Real),
            Column::new("individual_contribution_cny", Real),
            Column::nullable("payment_date", DateColumn),
            Column::new("status", Text),
        ],
    },
];

/// The resident scheme's yearly individual contribution, by year.
const RESIDENT_CONTRIBUTIONS: &[(i32, f64)] = &[(2024, 380.0), (2025, 400.0), (2026, 400.0)];

/// Urban and rural resident insurance were merged in 2017.
const RESIDENT_SCHEME: Date = date!(2017 - 01 - 01);

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        let job = kin::job(population, person.citizen);
        let Some(enrolment) = enrolment(&person, job.as_ref()) else {
            continue;
        };
        out.extend(
            payments(&person, job.as_ref())
                .into_iter()
                .map(tagged(MEDICAL_INSURANCE_PAYMENT_RECORD)),
        );
        out.push((MEDICAL_INSURANCE_ENROLMENT, enrolment));
    }
    out
}

/// About 95% are insured (everyone employed): in the employee scheme at the
/// employer's seat, or in the resident scheme at home.
fn enrolment(p: &Person, job: Option<&Job>) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(MEDICAL_INSURANCE_ENROLMENT);
    if job.is_none() && !rng.chance(0.95) {
        return None;
    }
    let (scheme, region, employer, enrolled) = match job {
        Some(job) => (
            "employee_basic",
            job.employer
                .uscc
                .get(2..8)
                .unwrap_or(p.district.code)
                .to_owned(),
            Some(job.employer.name.clone()),
            job.since,
        ),
        None => {
            let from = RESIDENT_SCHEME.max(c.birth_date);
            let enrolled = rng.date(from, add_days(REFERENCE_DATE, -30).max(from));
            (
                "urban_rural_resident",
                p.district.code.to_owned(),
                None,
                enrolled,
            )
        }
    };
    let status = if job.is_some() {
        "active"
    } else {
        *rng.pick_weighted(&[("active", 95), ("suspended", 3), ("terminated", 2)])
    };
    Some(json!({
        "id_number": c.id_number,
        "name": c.name,
        "scheme": scheme,
        "insured_region_code": region,
        "employer_name": employer,
        "enrolment_date": iso(enrolled),
        "status": status,
    }))
}

/// Six months of employee contributions (employer 6.5%, employee 2% of the
/// wage), or the resident scheme's yearly payments, made in the autumn
/// before the year they cover.
fn payments(p: &Person, job: Option<&Job>) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(MEDICAL_INSURANCE_PAYMENT_RECORD);
    let mut out = Vec::new();
    match job {
        Some(job) => {
            let base = contribution_base(job.wage);
            let late = !p.sample && rng.chance(0.04);
            let months = recent_months(6, add_months(job.since, 1));
            for (i, month) in months.iter().enumerate() {
                let arrears = late && i + 1 == months.len();
                let paid = add_days(
                    add_months(*month, 1),
                    i64::try_from(rng.range(5, 15)).unwrap_or(10),
                );
                out.push(json!({
                    "id_number": c.id_number,
                    "name": c.name,
                    "scheme": "employee_basic",
                    "period": period(*month),
                    "contribution_base_cny": base,
                    "employer_contribution_cny": round2(base * 0.065),
                    "individual_contribution_cny": round2(base * 0.02),
                    "payment_date": (!arrears).then(|| iso(paid.min(REFERENCE_DATE))),
                    "status": if arrears { "arrears" } else { "paid" },
                }));
            }
        }
        None => {
            for (year, amount) in RESIDENT_CONTRIBUTIONS {
                let Some(start) =
                    Date::from_calendar_date(*year - 1, time::Month::September, 1).ok()
                else {
                    continue;
                };
                if start < c.birth_date {
                    continue;
                }
                let missed = rng.chance(0.05);
                let paid = rng.date(start, add_days(start, 110));
                out.push(json!({
                    "id_number": c.id_number,
                    "name": c.name,
                    "scheme": "urban_rural_resident",
                    "period": year.to_string(),
                    "contribution_base_cny": null,
                    "employer_contribution_cny": 0.0,
                    "individual_contribution_cny": amount,
                    "payment_date": (!missed).then(|| iso(paid)),
                    "status": if missed { "arrears" } else { "paid" },
                }));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn schemes_follow_employment() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let enrolments = seeded.all(MEDICAL_INSURANCE_ENROLMENT).await.unwrap();
        let insured = holders(&enrolments, "id_number");
        assert!(insured >= 900, "{insured}");
        let payments = seeded.all(MEDICAL_INSURANCE_PAYMENT_RECORD).await.unwrap();
        for payment in &payments {
            let resident = payment["scheme"] == "urban_rural_resident";
            assert_eq!(
                resident,
                payment["contribution_base_cny"].is_null(),
                "{payment}"
            );
            assert_eq!(resident, payment["period"].as_str().unwrap().len() == 4);
            assert_eq!(
                payment["status"] == "arrears",
                payment["payment_date"].is_null()
            );
        }
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let hers = &seeded
            .lookup(&sample, MEDICAL_INSURANCE_ENROLMENT)
            .await
            .unwrap()[0];
        assert_eq!(hers["scheme"], "employee_basic");
        assert_eq!(
            hers["employer_name"],
            seeded.sample_company().unwrap().name.as_str()
        );
    }
}
