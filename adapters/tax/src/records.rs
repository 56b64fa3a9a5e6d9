//! The bureau's records about the synthetic population.
//!
//! Each record type draws from its own stream `Rng::new("tax/<type>", index)`,
//! so the data of one type never shifts when another's generator changes.

use serde_json::{Value, json};
use time::macros::date;
use time::{Date, Month};
use xgate_synth::dates::{
    REFERENCE_DATE, add_days, add_months, add_years, days, iso, month_end, month_start,
};
use xgate_synth::regions::{District, tax_bureau};
use xgate_synth::{
    Citizen, Company, Firm, Gender, MINING_INDUSTRY, Person, Population, Records, Rng,
    SAMPLE_COMPANY, round2, tagged,
};

use crate::db::{
    DEPARTMENT, INDIVIDUAL_INCOME_TAX_RECORD, NO_TAX_ARREARS_CERTIFICATE, TAX_PAYMENT_CERTIFICATE,
    TAX_REGISTRATION, TAXPAYER_CREDIT_RATING, VAT_EXEMPTION_STATUS,
};

/// Every record of the bureau, as (record type, record).
pub fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        let income = income_tax_records(&person, &population.companies);
        out.extend(
            payment_certificates(&person, &income)
                .into_iter()
                .map(tagged(TAX_PAYMENT_CERTIFICATE)),
        );
        out.extend(
            income
                .into_iter()
                .map(|r| (INDIVIDUAL_INCOME_TAX_RECORD, r.record)),
        );
        out.extend(no_arrears_certificate(&person).map(tagged(NO_TAX_ARREARS_CERTIFICATE)));
    }
    for firm in population.firms(DEPARTMENT) {
        let Some(registration) = tax_registration(&firm, population) else {
            continue;
        };
        out.extend(
            vat_exemptions(&firm, &registration)
                .into_iter()
                .map(tagged(VAT_EXEMPTION_STATUS)),
        );
        out.extend(
            credit_ratings(&firm, &registration)
                .into_iter()
                .map(tagged(TAXPAYER_CREDIT_RATING)),
        );
        out.push((TAX_REGISTRATION, registration.record));
    }
    out
}

/// Monthly individual income tax on wages: the 2019 seven-bracket table
/// (rate, quick deduction), applied to one month's taxable income.
fn monthly_wage_tax(taxable: f64) -> f64 {
    const BRACKETS: [(f64, f64, f64); 7] = [
        (3_000.0, 0.03, 0.0),
        (12_000.0, 0.10, 210.0),
        (25_000.0, 0.20, 1_410.0),
        (35_000.0, 0.25, 2_660.0),
        (55_000.0, 0.30, 4_410.0),
        (80_000.0, 0.35, 7_160.0),
        (f64::INFINITY, 0.45, 15_160.0),
    ];
    let (_, rate, quick) = BRACKETS
        .iter()
        .find(|(upper, _, _)| taxable <= *upper)
        .copied()
        .unwrap_or((0.0, 0.0, 0.0));
    round2((taxable * rate - quick).max(0.0))
}

/// Labour remuneration: 800 yuan off up to 4,000, 20% off above, taxed at
/// 20% (the 30% and 40% surcharges start above 20,000 of taxable income).
fn labour_remuneration_taxable(gross: f64) -> f64 {
    let taxable = if gross <= 4_000.0 {
        gross - 800.0
    } else {
        gross * 0.8
    };
    round2(taxable.max(0.0))
}

/// Still of working age (statutory retirement: 60 for men, 55 for women).
fn working_age(c: &Citizen) -> bool {
    let retirement = if c.gender == Gender::Male { 60 } else { 55 };
    (20..=retirement).contains(&c.age())
}

/// The twelve months declared by [`REFERENCE_DATE`]: a month is declared by
/// the 15th of the next.
fn declared_months() -> impl Iterator<Item = Date> {
    let last = add_months(month_start(REFERENCE_DATE), -1);
    (0..12).rev().map(move |back| add_months(last, -back))
}

fn period(month: Date) -> String {
    format!("{:04}-{:02}", month.year(), u8::from(month.month()))
}

/// A monthly income tax record, with what its payment certificate needs.
struct Income {
    wages: bool,
    month: Date,
    tax: f64,
    declared: Date,
    record: Value,
}

fn income_tax_records(p: &Person, companies: &[Company]) -> Vec<Income> {
    let c = p.citizen;
    let mut rng = p.rng(INDIVIDUAL_INCOME_TAX_RECORD);
    let count = u64::try_from(companies.len()).unwrap_or(0);
    let employer = |rng: &mut Rng| {
        usize::try_from(rng.range(0, count))
            .ok()
            .and_then(|i| companies.get(i))
    };
    let mut records = Vec::new();

    let employed = p.sample || p.gappy || (working_age(c) && rng.chance(0.7));
    let wage_employer = if p.sample {
        companies.get(usize::try_from(SAMPLE_COMPANY).unwrap_or(0))
    } else {
        employer(&mut rng)
    };
    if let (true, Some(company)) = (employed, wage_employer) {
        let base = if p.sample {
            rng.float(12_000.0, 18_000.0)
        } else {
            let (lo, hi) = *rng.pick_weighted(&[
                ((3_000.0, 6_000.0), 30),
                ((6_000.0, 10_000.0), 35),
                ((10_000.0, 20_000.0), 25),
                ((20_000.0, 50_000.0), 10),
            ]);
            rng.float(lo, hi)
        };
        // Special additional deductions: children, housing loan, elderly parents.
        let special = *rng.pick(&[0.0, 1_000.0, 2_000.0, 3_000.0, 4_000.0]);
        for month in declared_months() {
            let gross = round2(base * rng.float(0.92, 1.08));
            // Pension, medical, unemployment insurance and housing fund.
            let contributions = gross.min(36_000.0) * 0.175;
            let taxable = round2((gross - 5_000.0 - contributions - special).max(0.0));
            let tax = monthly_wage_tax(taxable);
            let amounts = Amounts {
                gross,
                taxable,
                tax,
            };
            records.push(income(
                p,
                &mut rng,
                company,
                month,
                "wages_and_salaries",
                amounts,
            ));
        }
    }

    let freelances = !p.gappy && (20..=70).contains(&c.age()) && rng.chance(0.08);
    if freelances {
        let months: Vec<Date> = declared_months().collect();
        for _ in 0..rng.range(1, 4) {
            let Some(company) = employer(&mut rng) else {
                break;
            };
            let month = *rng.pick(&months);
            let gross = round2(rng.float(800.0, 20_000.0));
            let taxable = labour_remuneration_taxable(gross);
            let tax = round2(taxable * 0.2);
            let amounts = Amounts {
                gross,
                taxable,
                tax,
            };
            records.push(income(
                p,
                &mut rng,
                company,
                month,
                "labour_remuneration",
                amounts,
            ));
        }
    }
    records.sort_by_key(|r| (r.month, !r.wages));
    records
}

/// One month's income, taxable income and tax, in yuan.
struct Amounts {
    gross: f64,
    taxable: f64,
    tax: f64,
}

fn income(
    p: &Person,
    rng: &mut Rng,
    agent: &Company,
    month: Date,
    income_type: &str,
    amounts: Amounts,
) -> Income {
    let Amounts {
        gross,
        taxable,
        tax,
    } = amounts;
    let next = add_months(month, 1);
    let declared = rng.date(next, add_days(next, 14));
    // The withholding agent files with its own bureau.
    let (city, district) = agent.home().unwrap_or((p.city, p.district));
    let bureau = tax_bureau(city, district);
    Income {
        wages: income_type == "wages_and_salaries",
        month,
        tax,
        declared,
        record: json!({
            "id_number": p.citizen.id_number,
            "name": p.citizen.name,
            "period": period(month),
            "income_type": income_type,
            "withholding_agent": agent.name,
            "withholding_agent_uscc": agent.uscc,
            "gross_income_cny": gross,
            "taxable_income_cny": taxable,
            "tax_paid_cny": tax,
            "declaration_date": iso(declared),
            "tax_authority": bureau,
        }),
    }
}

fn certificate_no(rng: &mut Rng, district: &District) -> String {
    format!("{}{}", district.code, rng.digits(12))
}

fn year_bounds(year: i32) -> (Date, Date) {
    let start = Date::from_calendar_date(year, Month::January, 1).unwrap_or(REFERENCE_DATE);
    let end = Date::from_calendar_date(year, Month::December, 31).unwrap_or(REFERENCE_DATE);
    (start, end)
}

/// Certificates people print to prove taxes paid: income tax over the
/// declared year, and one-off taxes on cars, homes and property.
fn payment_certificates(p: &Person, income: &[Income]) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(TAX_PAYMENT_CERTIFICATE);
    if p.gappy {
        return Vec::new();
    }
    let mut certificates: Vec<(Date, Value)> = Vec::new();
    let mut certificate =
        |rng: &mut Rng, tax_type: &str, from: Date, to: Date, amount: f64, paid: Date| {
            let issued = rng.date(paid, REFERENCE_DATE);
            let record = json!({
                "certificate_no": certificate_no(rng, p.district),
                "id_number": c.id_number,
                "taxpayer_name": c.name,
                "tax_type": tax_type,
                "tax_period_start": iso(from),
                "tax_period_end": iso(to),
                "amount_cny": round2(amount),
                "payment_date": iso(paid),
                "tax_authority": tax_bureau(p.city, p.district),
                "issue_date": iso(issued),
            });
            certificates.push((issued, record));
        };

    let wages: Vec<&Income> = income.iter().filter(|i| i.wages).collect();
    let wage_tax: f64 = wages.iter().map(|i| i.tax).sum();
    if let (Some(first), Some(last)) = (wages.first(), wages.last())
        && (p.sample || (wage_tax > 0.0 && rng.chance(0.3)))
    {
        let (from, to) = (first.month, month_end(last.month));
        certificate(
            &mut rng,
            "individual_income_tax",
            from,
            to,
            wage_tax,
            last.declared,
        );
    }
    let adult = add_years(c.birth_date, 18);
    let since = add_years(REFERENCE_DATE, -5).max(adult);
    if rng.chance(0.08) {
        let paid = rng.date(since, REFERENCE_DATE);
        let amount = rng.float(5_000.0, 30_000.0);
        certificate(&mut rng, "vehicle_purchase_tax", paid, paid, amount, paid);
    }
    if rng.chance(0.15) {
        let year = i32::try_from(rng.range(2021, 2026)).unwrap_or(2025);
        let (from, to) = year_bounds(year);
        let paid = rng.date(from.max(adult), to);
        let amount = *rng.pick(&[300.0, 360.0, 420.0, 480.0, 660.0, 900.0]);
        certificate(&mut rng, "vehicle_and_vessel_tax", from, to, amount, paid);
    }
    if rng.chance(0.1) {
        let paid = rng.date(since, REFERENCE_DATE);
        let amount = rng.float(10_000.0, 90_000.0);
        certificate(&mut rng, "deed_tax", paid, paid, amount, paid);
    }
    if rng.chance(0.03) {
        let year = i32::try_from(rng.range(2021, 2026)).unwrap_or(2025);
        let (from, to) = year_bounds(year);
        let paid = rng.date(from.max(adult), to);
        let amount = rng.float(1_000.0, 10_000.0);
        certificate(&mut rng, "property_tax", from, to, amount, paid);
    }
    certificates.sort_by_key(|(issued, _)| *issued);
    certificates.into_iter().map(|(_, record)| record).collect()
}

fn no_arrears_certificate(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(NO_TAX_ARREARS_CERTIFICATE);
    if !(p.sample || p.gappy || (c.age() >= 18 && rng.chance(0.25))) {
        return None;
    }
    let arrears = !p.sample && !p.gappy && rng.chance(0.03);
    let outstanding = if arrears {
        round2(rng.float(100.0, 20_000.0))
    } else {
        0.0
    };
    let earliest = if p.sample {
        add_days(REFERENCE_DATE, -30)
    } else {
        add_years(REFERENCE_DATE, -2)
    };
    Some(json!({
        "certificate_no": certificate_no(&mut rng, p.district),
        "id_number": c.id_number,
        "taxpayer_name": c.name,
        "has_arrears": arrears,
        "outstanding_amount_cny": outstanding,
        "tax_authority": tax_bureau(p.city, p.district),
        "issue_date": iso(rng.date(earliest, REFERENCE_DATE)),
    }))
}

/// A registration, with what exemptions and ratings depend on.
struct Registration {
    general: bool,
    status: &'static str,
    record: Value,
}

fn tax_registration(f: &Firm, population: &Population) -> Option<Registration> {
    let c = f.company;
    let representative = population
        .citizens
        .get(usize::try_from(c.legal_representative).ok()?)?;
    let mut rng = f.rng(TAX_REGISTRATION);
    // VAT general taxpayers: mandatory above 5 million yuan of sales, which
    // large registered capital stands in for here.
    let general = f.sample
        || rng.chance(if c.registered_capital_cny >= 5_000_000.0 {
            0.8
        } else {
            0.2
        });
    let status = if f.sample {
        "normal"
    } else {
        *rng.pick_weighted(&[
            ("normal", 92),
            ("suspended", 2),
            ("abnormal", 3),
            ("cancelled", 3),
        ])
    };
    let registered = add_days(c.established, days(rng.range(0, 30))).min(REFERENCE_DATE);
    let record = json!({
        "uscc": c.uscc,
        "taxpayer_name": c.name,
        "taxpayer_type": if general { "general" } else { "small_scale" },
        "legal_representative": representative.name,
        "registered_address": c.address,
        "industry": c.industry,
        "tax_authority": tax_bureau(f.city, f.district),
        "registration_date": iso(registered),
        "status": status,
    });
    Some(Registration {
        general,
        status,
        record,
    })
}

/// A filed VAT relief: its code in the relief catalogue, item and basis.
struct Relief {
    code: &'static str,
    item: &'static str,
    basis: &'static str,
}

const SMALL_SCALE: Relief = Relief {
    code: "01129924",
    item: "小规模纳税人月销售额10万元以下免征增值税",
    basis: "财政部 税务总局公告2023年第19号",
};
const AGRICULTURE: Relief = Relief {
    code: "01011608",
    item: "农业生产者销售的自产农产品免征增值税",
    basis: "《中华人民共和国增值税暂行条例》第十五条",
};
const TECHNOLOGY: Relief = Relief {
    code: "01092203",
    item: "技术转让、技术开发和与之相关的技术咨询、技术服务免征增值税",
    basis: "财税〔2016〕36号",
};
const RECYCLING: Relief = Relief {
    code: "01013610",
    item: "资源综合利用产品及劳务增值税即征即退",
    basis: "财政部 税务总局公告2021年第40号",
};

/// The small-scale relief runs from 2023 to the end of 2027.
const SMALL_SCALE_FROM: Date = date!(2023 - 01 - 01);
const SMALL_SCALE_UNTIL: Date = date!(2027 - 12 - 31);

fn vat_exemptions(f: &Firm, registration: &Registration) -> Vec<Value> {
    let c = f.company;
    let mut rng = f.rng(VAT_EXEMPTION_STATUS);
    let rate = if registration.general { 0.1 } else { 0.5 };
    if !(f.sample || (registration.status != "cancelled" && rng.chance(rate))) {
        return Vec::new();
    }
    let relief = if !registration.general {
        &SMALL_SCALE
    } else {
        match c.industry.as_str() {
            "制造业" | MINING_INDUSTRY => &RECYCLING,
            "农、林、牧、渔业" => &AGRICULTURE,
            "信息传输、软件和信息技术服务业" | "科学研究和技术服务业" => {
                &TECHNOLOGY
            }
            _ => return Vec::new(),
        }
    };
    let (valid_from, valid_until) = if relief.code == SMALL_SCALE.code {
        (
            month_start(c.established.max(SMALL_SCALE_FROM)),
            SMALL_SCALE_UNTIL,
        )
    } else {
        let earliest = if f.sample {
            add_years(REFERENCE_DATE, -2)
        } else {
            date!(2019 - 01 - 01)
        };
        let from = rng.date(earliest.max(c.established), add_days(REFERENCE_DATE, -30));
        (from, add_days(add_years(from, 3), -1))
    };
    let status = if valid_until < REFERENCE_DATE {
        "expired"
    } else if !f.sample && rng.chance(0.03) {
        "revoked"
    } else {
        "active"
    };
    vec![json!({
        "filing_no": format!("{}{}{}", valid_from.year(), f.district.code, rng.digits(6)),
        "uscc": c.uscc,
        "taxpayer_name": c.name,
        "exemption_code": relief.code,
        "exemption_item": relief.item,
        "policy_basis": relief.basis,
        "valid_from": iso(valid_from),
        "valid_until": iso(valid_until),
        "status": status,
    })]
}

/// The rating of a score: A from 90, B from 70, C from 40, D below.
fn rating_of(score: f64) -> &'static str {
    match score {
        s if s >= 90.0 => "A",
        s if s >= 70.0 => "B",
        s if s >= 40.0 => "C",
        _ => "D",
    }
}

/// The last three annual ratings, published each April for the year before.
fn credit_ratings(f: &Firm, registration: &Registration) -> Vec<Value> {
    let c = f.company;
    let mut rng = f.rng(TAXPAYER_CREDIT_RATING);
    let base = if f.sample {
        // An A taxpayer every year, however the score wobbles.
        rng.float(94.0, 98.0)
    } else {
        let (lo, hi) = *rng.pick_weighted(&[
            ((90.0, 100.0), 22),
            ((70.0, 90.0), 64),
            ((40.0, 70.0), 10),
            ((10.0, 40.0), 4),
        ]);
        rng.float(lo, hi)
    };
    let last_year = REFERENCE_DATE.year() - 1;
    (c.established.year().max(last_year - 2)..=last_year)
        .map(|year| {
            let mut score = (base + rng.float(-4.0, 4.0)).clamp(0.0, 100.0);
            // A taxpayer gone missing from its address is rated D at once.
            if registration.status == "abnormal" && year == last_year {
                score = score.min(rng.float(10.0, 39.9));
            }
            let score = (score * 10.0).round() / 10.0;
            // Enterprises in their first year are rated M.
            let rating = if year == c.established.year() {
                "M"
            } else {
                rating_of(score)
            };
            let april =
                Date::from_calendar_date(year + 1, Month::April, 1).unwrap_or(REFERENCE_DATE);
            json!({
                "uscc": c.uscc,
                "taxpayer_name": c.name,
                "year": year,
                "rating": rating,
                "score": score,
                "evaluation_date": iso(rng.date(april, add_days(april, 29))),
                "tax_authority": tax_bureau(f.city, f.district),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wage_tax_follows_the_brackets() {
        assert_eq!(monthly_wage_tax(0.0), 0.0);
        assert_eq!(monthly_wage_tax(3_000.0), 90.0);
        assert_eq!(monthly_wage_tax(5_000.0), 290.0);
        assert_eq!(monthly_wage_tax(12_000.0), 990.0);
        assert_eq!(monthly_wage_tax(30_000.0), 4_840.0);
        assert_eq!(monthly_wage_tax(100_000.0), 29_840.0);
    }

    #[test]
    fn labour_remuneration_deductions() {
        assert_eq!(labour_remuneration_taxable(500.0), 0.0);
        assert_eq!(labour_remuneration_taxable(3_000.0), 2_200.0);
        assert_eq!(labour_remuneration_taxable(10_000.0), 8_000.0);
    }

    #[test]
    fn ratings_follow_scores() {
        assert_eq!(rating_of(95.0), "A");
        assert_eq!(rating_of(90.0), "A");
        assert_eq!(rating_of(89.9), "B");
        assert_eq!(rating_of(55.0), "C");
        assert_eq!(rating_of(12.0), "D");
    }

    #[test]
    fn the_declared_year_ends_the_month_before_the_reference_date() {
        let months: Vec<String> = declared_months().map(period).collect();
        assert_eq!(months.len(), 12);
        assert_eq!(months.first().unwrap(), "2025-06");
        assert_eq!(months.last().unwrap(), "2026-05");
    }
}
