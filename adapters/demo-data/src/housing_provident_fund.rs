//! Housing Provident Fund Management Centre (住房公积金管理中心): accounts of
//! the employed (with the employer of [`kin::job`]) and of some voluntary
//! depositors, loans, and withdrawals.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, add_years, days, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Person, Population, Records, round2, tagged};

use crate::human_resources_social_security::{contribution_base, period, recent_months};
use crate::kin::{self, Job};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "housing-provident-fund";

pub const PROVIDENT_FUND_ACCOUNT: &str = "provident_fund_account";
pub const PROVIDENT_FUND_LOAN: &str = "provident_fund_loan";
pub const PROVIDENT_FUND_WITHDRAWAL_RECORD: &str = "provident_fund_withdrawal_record";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Housing Provident Fund Management Centre (住房公积金管理中心)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date as DateColumn, Integer, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: PROVIDENT_FUND_ACCOUNT,
        subject: "id_number",
        columns: &[
            Column::new("account_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::nullable("employer_uscc", Text),
            Column::nullable("employer_name", Text),
            Column::new("opening_date", DateColumn),
            Column::new("deposit_base_cny", Real),
            Column::new("employer_rate", Real),
            Column::new("employee_rate", Real),
            Column::new("balance_cny", Real),
            Column::nullable("last_deposit_month", Text),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: PROVIDENT_FUND_LOAN,
        subject: "id_number",
        columns: &[
            Column::new("contract_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("loan_amount_cny", Real),
            Column::new("outstanding_principal_cny", Real),
            Column::new("term_months", Integer),
            Column::new("annual_rate_percent", Real),
            Column::new("repayment_method", Text),
            Column::new("disbursement_date", DateColumn),
            Column::new("maturity_date", DateColumn),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: PROVIDENT_FUND_WITHDRAWAL_RECORD,
        subject: "id_number",
        columns: &[
            Column::new("withdrawal_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("reason", Text),
            Column::new("amount_cny", Real),
            Column::new("application_date", DateColumn),
            Column::nullable("payment_date", DateColumn),
            Column::new("status", Text),
        ],
    },
];

fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        let job = kin::job(population, person.citizen);
        let Some(account) = account(&person, job.as_ref()) else {
            continue;
        };
        let loan = loan(&person, &account);
        out.extend(
            withdrawals(&person, &account, loan.as_ref())
                .into_iter()
                .map(tagged(PROVIDENT_FUND_WITHDRAWAL_RECORD)),
        );
        out.extend(loan.map(|l| (PROVIDENT_FUND_LOAN, l.record)));
        out.push((PROVIDENT_FUND_ACCOUNT, account.record));
    }
    out
}

/// An account with what the loan and withdrawals need.
struct Account {
    opened: Date,
    /// Deposited each month, employer's and employee's shares together.
    monthly: f64,
    record: Value,
}

/// Whole months from `from` to `to`.
fn months_between(from: Date, to: Date) -> i32 {
    (to.year() - from.year()) * 12 + i32::from(u8::from(to.month()))
        - i32::from(u8::from(from.month()))
}

/// Four in five employees deposit (always the sample and the gappy
/// citizens), at 5–12% each of their wage; a few others deposit voluntarily.
fn account(p: &Person, job: Option<&Job>) -> Option<Account> {
    let c = p.citizen;
    let mut rng = p.rng(PROVIDENT_FUND_ACCOUNT);
    let (opened, base, employer) = match job {
        Some(job) if p.sample || p.gappy || rng.chance(0.8) => {
            (job.since, contribution_base(job.wage), Some(job))
        }
        None if kin::working_age(c) && c.age() >= 25 && rng.chance(0.05) => {
            let opened = rng.date(add_years(REFERENCE_DATE, -5), add_days(REFERENCE_DATE, -60));
            (opened, round2(rng.float(3_000.0, 8_000.0)), None)
        }
        _ => return None,
    };
    let rate = *rng.pick(&[0.05, 0.08, 0.10, 0.12, 0.12]);
    let monthly = round2(base * rate * 2.0);
    let deposited = f64::from(months_between(opened, REFERENCE_DATE).clamp(0, 600));
    // What is left after earlier withdrawals: a share of the deposits.
    let balance = round2(monthly * deposited.min(60.0) * rng.float(0.2, 0.9));
    let last = recent_months(1, opened).last().map(|m| period(*m));
    Some(Account {
        opened,
        monthly,
        record: json!({
            "account_no": format!("{}{}", &p.district.code[..4], rng.digits(10)),
            "id_number": c.id_number,
            "name": c.name,
            "employer_uscc": employer.map(|j| j.employer.uscc.clone()),
            "employer_name": employer.map(|j| j.employer.name.clone()),
            "opening_date": iso(opened),
            "deposit_base_cny": base,
            "employer_rate": rate,
            "employee_rate": rate,
            "balance_cny": balance,
            "last_deposit_month": last,
            "status": "normal",
        }),
    })
}

/// A loan with what the withdrawals need.
struct Loan {
    disbursed: Date,
    monthly_payment: f64,
    repaying: bool,
    record: Value,
}

/// The first-home rate for terms over five years by disbursement date.
fn annual_rate(disbursed: Date) -> f64 {
    if disbursed >= date!(2025 - 05 - 08) {
        2.6
    } else if disbursed >= date!(2024 - 05 - 18) {
        2.85
    } else if disbursed >= date!(2022 - 10 - 01) {
        3.1
    } else if disbursed >= date!(2015 - 08 - 26) {
        3.25
    } else {
        4.5
    }
}

/// A quarter of depositors of a year's standing bought a home with a fund
/// loan (the sample citizen did); equal instalments, 10 to 30 years.
fn loan(p: &Person, account: &Account) -> Option<Loan> {
    let c = p.citizen;
    let mut rng = p.rng(PROVIDENT_FUND_LOAN);
    let from = add_years(account.opened, 1);
    let latest = add_days(REFERENCE_DATE, -60);
    if p.gappy || from > latest || !(p.sample || rng.chance(0.25)) {
        return None;
    }
    let disbursed = if p.sample {
        rng.date(from, add_years(from, 3).min(latest))
    } else {
        rng.date(from, latest)
    };
    let amount = round2(f64::from(u32::try_from(rng.range(20, 61)).unwrap_or(40)) * 10_000.0);
    let term = if p.sample {
        300
    } else {
        *rng.pick(&[120_i32, 180, 240, 300, 360])
    };
    let rate = annual_rate(disbursed);
    let r = rate / 100.0 / 12.0;
    let n = f64::from(term);
    let payment = amount * r * (1.0 + r).powf(n) / ((1.0 + r).powf(n) - 1.0);
    let paid = f64::from(months_between(disbursed, REFERENCE_DATE).clamp(0, term));
    // Principal left after `paid` equal instalments.
    let outstanding =
        (amount * (1.0 + r).powf(paid) - payment * ((1.0 + r).powf(paid) - 1.0) / r).max(0.0);
    let maturity = add_months(disbursed, term);
    let settled = maturity <= REFERENCE_DATE || (!p.sample && rng.chance(0.1));
    let status = if settled {
        "settled"
    } else if !p.sample && rng.chance(0.03) {
        "overdue"
    } else {
        "repaying"
    };
    let year = disbursed.year();
    Some(Loan {
        disbursed,
        monthly_payment: round2(payment),
        repaying: !settled,
        record: json!({
            "contract_no": format!("GJJ{}{year}{}", &p.district.code[..4], rng.digits(6)),
            "id_number": c.id_number,
            "name": c.name,
            "loan_amount_cny": amount,
            "outstanding_principal_cny": if settled { 0.0 } else { round2(outstanding) },
            "term_months": term,
            "annual_rate_percent": rate,
            "repayment_method": if rng.chance(0.8) { "equal_instalments" } else { "equal_principal" },
            "disbursement_date": iso(disbursed),
            "maturity_date": iso(maturity),
            "status": status,
        }),
    })
}

/// Borrowers still repaying withdraw a year's instalments each of the last
/// two years; a few others withdraw for rent; some withdrawals are still
/// being paid or were refused.
fn withdrawals(p: &Person, account: &Account, loan: Option<&Loan>) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(PROVIDENT_FUND_WITHDRAWAL_RECORD);
    let mut out = Vec::new();
    let mut push = |rng: &mut xgate_synth::Rng, reason: &str, amount: f64, applied: Date| {
        let status = if applied > add_days(REFERENCE_DATE, -5) {
            "approved"
        } else if !p.sample && rng.chance(0.04) {
            "rejected"
        } else {
            "paid"
        };
        let paid = (status == "paid").then(|| iso(add_days(applied, days(rng.range(1, 5)))));
        out.push(json!({
            "withdrawal_no": format!("TQ{}{}", xgate_synth::dates::compact(applied), rng.digits(6)),
            "id_number": c.id_number,
            "name": c.name,
            "reason": reason,
            "amount_cny": round2(amount),
            "application_date": iso(applied),
            "payment_date": paid,
            "status": status,
        }));
    };
    match loan {
        Some(loan) if loan.repaying => {
            for back in [2, 1] {
                let applied = rng.date(
                    add_years(REFERENCE_DATE, -back),
                    add_days(add_years(REFERENCE_DATE, 1 - back), -10),
                );
                if applied > add_years(loan.disbursed, 1) {
                    push(
                        &mut rng,
                        "loan_repayment",
                        loan.monthly_payment * 12.0,
                        applied,
                    );
                }
            }
        }
        _ if rng.chance(0.1) => {
            let from = add_months(account.opened, 6);
            if from < REFERENCE_DATE {
                let applied = rng.date(from, add_days(REFERENCE_DATE, -1));
                push(&mut rng, "rent", account.monthly * 6.0, applied);
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn loans_and_withdrawals_fit_the_account() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let accounts = seeded.all(PROVIDENT_FUND_ACCOUNT).await.unwrap();
        let depositors = holders(&accounts, "id_number");
        assert!((200..=700).contains(&depositors), "{depositors}");
        for loan in seeded.all(PROVIDENT_FUND_LOAN).await.unwrap() {
            let account = accounts
                .iter()
                .find(|a| a["id_number"] == loan["id_number"])
                .unwrap();
            assert!(account["opening_date"].as_str() < loan["disbursement_date"].as_str());
            let outstanding = loan["outstanding_principal_cny"].as_f64().unwrap();
            assert!(outstanding <= loan["loan_amount_cny"].as_f64().unwrap());
            assert_eq!(loan["status"] == "settled", outstanding == 0.0, "{loan}");
        }
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let firm = seeded.sample_company().unwrap();
        let account = &seeded
            .lookup(&sample, PROVIDENT_FUND_ACCOUNT)
            .await
            .unwrap()[0];
        assert_eq!(account["employer_uscc"], firm.uscc.as_str());
        let withdrawals = seeded
            .lookup(&sample, PROVIDENT_FUND_WITHDRAWAL_RECORD)
            .await
            .unwrap();
        assert!(withdrawals.iter().all(|w| w["reason"] == "loan_repayment"));
        let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
        assert!(
            seeded
                .lookup(&gappy, PROVIDENT_FUND_LOAN)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
