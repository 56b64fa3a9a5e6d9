//! People's Court (人民法院): the list of dishonest judgment debtors among
//! citizens, and enforcement cases against companies.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, days, iso};
use xgate_synth::regions::{City, District};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Person, Population, Records, Rng, round2, tagged};

use crate::issuing::district_short_code;

/// The department id in the catalog.
pub const DEPARTMENT: &str = "court";

pub const DISHONEST_JUDGMENT_DEBTOR_STATUS: &str = "dishonest_judgment_debtor_status";
pub const ENFORCEMENT_CASE_RECORD: &str = "enforcement_case_record";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "People's Court (人民法院)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: DISHONEST_JUDGMENT_DEBTOR_STATUS,
        subject: "id_number",
        columns: &[
            Column::new("case_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("enforcement_court", Text),
            Column::new("basis_document_no", Text),
            Column::new("obligation", Text),
            Column::new("performance", Text),
            Column::new("dishonest_conduct", Text),
            Column::new("listing_date", Date),
            Column::nullable("removal_date", Date),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: ENFORCEMENT_CASE_RECORD,
        subject: "uscc",
        columns: &[
            Column::new("case_no", Text),
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("enforcement_court", Text),
            Column::new("filing_date", Date),
            Column::new("amount_cny", Real),
            Column::new("unperformed_amount_cny", Real),
            Column::new("status", Text),
            Column::nullable("conclusion_date", Date),
        ],
    },
];

/// The list of dishonest judgment debtors was published from October 2013.
const LIST_STARTED: time::Date = date!(2013 - 10 - 01);

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        out.extend(dishonest_debtor(&person).map(tagged(DISHONEST_JUDGMENT_DEBTOR_STATUS)));
    }
    for firm in population.firms(DEPARTMENT) {
        out.extend(
            enforcement_cases(&firm)
                .into_iter()
                .map(tagged(ENFORCEMENT_CASE_RECORD)),
        );
    }
    out
}

/// The basic people's court of a district or county.
fn court(city: &City, district: &District) -> String {
    if district.is_urban() {
        format!("{}{}人民法院", city.name, district.name)
    } else {
        format!("{}人民法院", district.name)
    }
}

/// `（2022）皖1602执1234号`: year, province, court code, case type, number.
fn case_no(rng: &mut Rng, year: i32, district: &District, kind: &str) -> String {
    format!(
        "（{year}）皖{}{kind}{}号",
        district_short_code(district),
        rng.range(1, 6000)
    )
}

/// A debtor listed after failing to pay what a civil judgment ordered; the
/// sample citizen paid in the end and was taken off the list.
fn dishonest_debtor(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(DISHONEST_JUDGMENT_DEBTOR_STATUS);
    let listed = p.sample || (c.age() >= 25 && rng.chance(0.015));
    if !listed {
        return None;
    }
    let earliest = p.birthday(23).max(LIST_STARTED);
    let listed = rng.date(earliest, add_days(REFERENCE_DATE, -60));
    let judged = add_days(listed, -days(rng.range(120, 540)));
    let removed = if p.sample || rng.chance(0.4) {
        let removal = add_days(listed, days(rng.range(30, 720)));
        (removal < REFERENCE_DATE).then_some(removal)
    } else {
        None
    };
    let principal = rng.range(2, 60) * 5_000;
    let obligation = *rng.pick(&[
        "偿还借款本金{}元及利息",
        "支付货款{}元",
        "赔偿经济损失{}元",
        "支付工程款{}元",
    ]);
    Some(json!({
        "case_no": case_no(&mut rng, listed.year(), p.district, "执"),
        "id_number": c.id_number,
        "name": c.name,
        "enforcement_court": court(p.city, p.district),
        "basis_document_no": case_no(&mut rng, judged.year(), p.district, "民初"),
        "obligation": obligation.replace("{}", &principal.to_string()),
        "performance": if rng.chance(0.7) { "not_performed" } else { "partially_performed" },
        "dishonest_conduct": *rng.pick(&[
            "有履行能力而拒不履行生效法律文书确定义务",
            "违反财产报告制度",
            "违反限制消费令",
        ]),
        "listing_date": iso(listed),
        "removal_date": removed.map(iso),
        "status": if removed.is_some() { "removed" } else { "listed" },
    }))
}

/// Enforcement of judgments against companies, mostly concluded; the sample
/// company's one case (an unpaid supplier) was settled in full.
fn enforcement_cases(firm: &Firm) -> Vec<Value> {
    let company = firm.company;
    let mut rng = firm.rng(ENFORCEMENT_CASE_RECORD);
    let count = if firm.sample {
        1
    } else {
        *rng.pick_weighted(&[(0, 88), (1, 9), (2, 3)])
    };
    (0..count)
        .map(|_| {
            let earliest = add_years(company.established, 1).min(add_days(REFERENCE_DATE, -90));
            let filed = rng.date(earliest, add_days(REFERENCE_DATE, -30));
            let amount = round2(rng.float(20_000.0, 2_000_000.0));
            let status = if firm.sample {
                "concluded"
            } else {
                *rng.pick_weighted(&[("concluded", 60), ("in_progress", 25), ("terminated", 15)])
            };
            let conclusion = add_days(filed, days(rng.range(30, 400)));
            let (unperformed, concluded) = match status {
                "concluded" => (0.0, Some(conclusion.min(add_days(REFERENCE_DATE, -1)))),
                "terminated" => (
                    round2(amount * rng.float(0.3, 1.0)),
                    Some(conclusion.min(add_days(REFERENCE_DATE, -1))),
                ),
                _ => (round2(amount * rng.float(0.1, 1.0)), None),
            };
            json!({
                "case_no": case_no(&mut rng, filed.year(), firm.district, "执"),
                "uscc": company.uscc,
                "holder_name": company.name,
                "enforcement_court": court(firm.city, firm.district),
                "filing_date": iso(filed),
                "amount_cny": amount,
                "unperformed_amount_cny": unperformed,
                "status": status,
                "conclusion_date": concluded.map(iso),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    /// Listing follows the judgment and removal follows listing; a removed
    /// debtor has a removal date and a listed one none.
    #[tokio::test]
    async fn listings_are_in_order() {
        let seeded = Seeded::new(&SPEC, 1000, 20).await.unwrap();
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let own = seeded
            .lookup(&sample, DISHONEST_JUDGMENT_DEBTOR_STATUS)
            .await
            .unwrap();
        assert_eq!(own[0]["status"], "removed");
        let all = seeded.all(DISHONEST_JUDGMENT_DEBTOR_STATUS).await.unwrap();
        assert!(all.len() > 5 && all.len() < 40, "{}", all.len());
        for record in all {
            let listed = record["listing_date"].as_str().unwrap();
            match record["status"].as_str().unwrap() {
                "removed" => assert!(record["removal_date"].as_str().unwrap() > listed),
                _ => assert!(record["removal_date"].is_null()),
            }
        }
    }
}
