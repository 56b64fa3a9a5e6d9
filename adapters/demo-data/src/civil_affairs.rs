//! Civil Affairs Bureau (民政局): marriages and divorces (from [`kin::marriages`],
//! which the health commission reads too), adoptions, the minimum subsistence
//! allowance (低保) and social organisations.

use serde_json::{Value, json};
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, days, iso};
use xgate_synth::store::{Column, ColumnType, Table};
use xgate_synth::{DepartmentSpec, Firm, Gender, Person, Population, Records, round2, tagged};

use crate::kin::{self, End, local_agency};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "civil-affairs";

pub const MARRIAGE_REGISTRATION: &str = "marriage_registration";
pub const DIVORCE_REGISTRATION: &str = "divorce_registration";
pub const ADOPTION_REGISTRATION: &str = "adoption_registration";
pub const MINIMUM_SUBSISTENCE_ALLOWANCE_STATUS: &str = "minimum_subsistence_allowance_status";
pub const SOCIAL_ORGANISATION_REGISTRATION: &str = "social_organisation_registration";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Civil Affairs Bureau (民政局)",
    tables: TABLES,
    generate,
};

use ColumnType::{Date, Integer, Real, Text};

static TABLES: &[Table] = &[
    Table {
        record_type: MARRIAGE_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("spouse_name", Text),
            Column::new("spouse_id_number", Text),
            Column::new("registration_date", Date),
            Column::new("registration_authority", Text),
            Column::new("status", Text),
        ],
    },
    Table {
        record_type: DIVORCE_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("former_spouse_name", Text),
            Column::new("former_spouse_id_number", Text),
            Column::new("marriage_registration_date", Date),
            Column::new("registration_date", Date),
            Column::new("registration_authority", Text),
        ],
    },
    Table {
        record_type: ADOPTION_REGISTRATION,
        subject: "id_number",
        columns: &[
            Column::new("certificate_no", Text),
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::nullable("co_adopter_name", Text),
            Column::new("adoptee_name", Text),
            Column::new("adoptee_gender", Text),
            Column::new("adoptee_birth_date", Date),
            Column::new("registration_date", Date),
            Column::new("registration_authority", Text),
        ],
    },
    Table {
        record_type: MINIMUM_SUBSISTENCE_ALLOWANCE_STATUS,
        subject: "id_number",
        columns: &[
            Column::new("id_number", Text),
            Column::new("name", Text),
            Column::new("area_type", Text),
            Column::new("household_size", Integer),
            Column::new("monthly_allowance_cny", Real),
            Column::new("approval_date", Date),
            Column::nullable("next_review_date", Date),
            Column::new("status", Text),
            Column::new("handling_authority", Text),
        ],
    },
    Table {
        record_type: SOCIAL_ORGANISATION_REGISTRATION,
        subject: "uscc",
        columns: &[
            Column::new("uscc", Text),
            Column::new("holder_name", Text),
            Column::new("organisation_type", Text),
            Column::new("legal_representative", Text),
            Column::new("domicile", Text),
            Column::new("initial_funds_cny", Real),
            Column::new("business_scope", Text),
            Column::nullable("supervising_unit", Text),
            Column::new("registration_authority", Text),
            Column::new("issue_date", Date),
            Column::new("valid_until", Date),
        ],
    },
];

fn generate(population: &Population) -> Records {
    let marriages = kin::marriages(population);
    let mut out = Vec::new();
    for marriage in &marriages {
        for (own, other) in [
            (&marriage.husband, &marriage.wife),
            (&marriage.wife, &marriage.husband),
        ] {
            if own.index.is_none() {
                continue;
            }
            out.push((
                MARRIAGE_REGISTRATION,
                json!({
                    "certificate_no": marriage.certificate_no,
                    "id_number": own.id_number,
                    "name": own.name,
                    "spouse_name": other.name,
                    "spouse_id_number": other.id_number,
                    "registration_date": iso(marriage.date),
                    "registration_authority": marriage.authority,
                    "status": marriage.status(),
                }),
            ));
            if let End::Divorced {
                date,
                certificate_no,
            } = &marriage.end
            {
                out.push((
                    DIVORCE_REGISTRATION,
                    json!({
                        "certificate_no": certificate_no,
                        "id_number": own.id_number,
                        "name": own.name,
                        "former_spouse_name": other.name,
                        "former_spouse_id_number": other.id_number,
                        "marriage_registration_date": iso(marriage.date),
                        "registration_date": iso(*date),
                        "registration_authority": marriage.authority,
                    }),
                ));
            }
        }
    }
    for person in population.people(DEPARTMENT) {
        out.extend(adoption(&person, &marriages).map(tagged(ADOPTION_REGISTRATION)));
        out.extend(allowance(&person).map(tagged(MINIMUM_SUBSISTENCE_ALLOWANCE_STATUS)));
    }
    for firm in population.firms(DEPARTMENT) {
        out.extend(
            social_organisation(&firm, population).map(tagged(SOCIAL_ORGANISATION_REGISTRATION)),
        );
    }
    out
}

/// About one adult in a hundred over 30 has adopted a child (the sample
/// citizen always, with her husband); adopters are at least 30.
fn adoption(p: &Person, marriages: &[kin::Marriage]) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(ADOPTION_REGISTRATION);
    let mut from = p.birthday(30).max(date!(1999 - 04 - 01));
    if p.sample {
        // She and her present husband adopted together.
        let present = marriages
            .iter()
            .find(|m| m.end == End::Lasting && m.partner_of(&c.id_number).is_some());
        if let Some(m) = present {
            from = from.max(add_years(m.date, 1));
        }
    }
    let latest = add_days(REFERENCE_DATE, -30);
    if p.gappy || from > latest || !(p.sample || rng.chance(0.01)) {
        return None;
    }
    let registered = rng.date(from, latest.min(add_years(from, 15)));
    // The spouse of a marriage lasting on that day adopts jointly.
    let spouse = marriages.iter().find_map(|m| {
        let partner = m.partner_of(&c.id_number)?;
        let lasting = match &m.end {
            End::Lasting => true,
            End::Divorced { date, .. } => *date > registered,
            End::Widowed => false,
        };
        (m.date <= registered && lasting).then_some(partner)
    });
    let adoptee_gender = if rng.chance(0.5) {
        Gender::Male
    } else {
        Gender::Female
    };
    let family = match (c.gender, spouse) {
        (Gender::Female, Some(husband)) => kin::surname(&husband.name),
        _ => kin::surname(&c.name),
    };
    let born = add_days(registered, -days(rng.range(60, 8 * 365)));
    Some(json!({
        "certificate_no": format!("S{}-{}-{:06}", p.district.code, registered.year(), rng.range(1, 3_000)),
        "id_number": c.id_number,
        "name": c.name,
        "co_adopter_name": spouse.map(|s| s.name.clone()),
        "adoptee_name": format!("{family}{}", kin::given_name(&mut rng, adoptee_gender)),
        "adoptee_gender": adoptee_gender.as_str(),
        "adoptee_birth_date": iso(born),
        "registration_date": iso(registered),
        "registration_authority": local_agency(p.city, p.district, "民政局"),
    }))
}

/// About one in twenty-five citizens has an allowance record, most still
/// receiving it; the sample citizen received it for a few years after her
/// divorce and has long left it.
fn allowance(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(MINIMUM_SUBSISTENCE_ALLOWANCE_STATUS);
    if p.gappy || c.age() < 18 || !(p.sample || rng.chance(0.04)) {
        return None;
    }
    let urban = p.district.is_urban();
    let (approved, status) = if p.sample {
        (
            rng.date(date!(2004 - 01 - 01), date!(2004 - 12 - 31)),
            "terminated",
        )
    } else {
        let approved = rng.date(
            add_years(REFERENCE_DATE, -6).max(p.birthday(18)),
            add_days(REFERENCE_DATE, -30),
        );
        let status = *rng.pick_weighted(&[("receiving", 80), ("suspended", 5), ("terminated", 15)]);
        (approved, status)
    };
    let household_size = rng.range(1, 5);
    // The gap to the local standard (about 800 yuan a month in town, 650 in
    // the countryside in 2025), per member.
    let per_member = if urban {
        rng.float(250.0, 800.0)
    } else {
        rng.float(200.0, 650.0)
    };
    let next_review = match status {
        "receiving" | "suspended" => Some(iso(add_days(REFERENCE_DATE, days(rng.range(1, 180))))),
        _ => None,
    };
    Some(json!({
        "id_number": c.id_number,
        "name": c.name,
        "area_type": if urban { "urban" } else { "rural" },
        "household_size": household_size,
        "monthly_allowance_cny": round2(per_member * household_size as f64),
        "approval_date": iso(approved),
        "next_review_date": next_review,
        "status": status,
        "handling_authority": local_agency(p.city, p.district, "民政局"),
    }))
}

/// About one registered organisation in twenty also holds a civil affairs
/// registration (always the sample company), valid five years from its
/// latest issue.
fn social_organisation(f: &Firm, population: &Population) -> Option<Value> {
    let company = f.company;
    let mut rng = f.rng(SOCIAL_ORGANISATION_REGISTRATION);
    if !(f.sample || rng.chance(0.05)) {
        return None;
    }
    let (kind, funds, scope) = *rng.pick_weighted(&[
        (
            (
                "social_group",
                30_000.0,
                "行业交流、技术培训、咨询服务、行业自律",
            ),
            50,
        ),
        (
            (
                "social_service_organisation",
                30_000.0,
                "职业技能培训、社区服务、公益咨询",
            ),
            40,
        ),
        (
            (
                "foundation",
                2_000_000.0,
                "资助教育、扶贫济困、社会公益活动",
            ),
            10,
        ),
    ]);
    let representative = population
        .citizens
        .get(usize::try_from(company.legal_representative).unwrap_or(usize::MAX))
        .map_or_else(|| company.name.clone(), |c| c.name.clone());
    let from = company.established.max(add_years(REFERENCE_DATE, -5));
    let issued = rng.date(add_days(from, 30), add_days(REFERENCE_DATE, -30));
    let supervising = rng
        .chance(0.4)
        .then(|| format!("{}工商业联合会", f.city.name));
    Some(json!({
        "uscc": company.uscc,
        "holder_name": company.name,
        "organisation_type": kind,
        "legal_representative": representative,
        "domicile": company.address,
        "initial_funds_cny": funds * f64::from(u32::try_from(rng.range(1, 6)).unwrap_or(1)),
        "business_scope": scope,
        "supervising_unit": supervising,
        "registration_authority": local_agency(f.city, f.district, "民政局"),
        "issue_date": iso(issued),
        "valid_until": iso(add_days(add_years(issued, 5), -1)),
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::testing::{Seeded, holders, person};

    use super::*;

    xgate_synth::department_tests!(SPEC);

    #[tokio::test]
    async fn the_gappy_citizen_never_married_and_the_sample_married_twice() {
        let seeded = Seeded::new(&SPEC, 20, 5).await.unwrap();
        let gappy = person(&seeded.gappy_citizen().unwrap().id_number);
        for record_type in [
            MARRIAGE_REGISTRATION,
            DIVORCE_REGISTRATION,
            ADOPTION_REGISTRATION,
        ] {
            assert!(seeded.lookup(&gappy, record_type).await.unwrap().is_empty());
        }
        let sample = person(&seeded.sample_citizen().unwrap().id_number);
        let marriages = seeded.lookup(&sample, MARRIAGE_REGISTRATION).await.unwrap();
        let statuses: Vec<&str> = marriages
            .iter()
            .map(|m| m["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["divorced", "married"]);
        let divorce = &seeded.lookup(&sample, DIVORCE_REGISTRATION).await.unwrap()[0];
        assert_eq!(
            divorce["former_spouse_id_number"],
            marriages[0]["spouse_id_number"]
        );
        assert_eq!(
            divorce["marriage_registration_date"],
            marriages[0]["registration_date"]
        );
        assert!(divorce["registration_date"].as_str() < marriages[1]["registration_date"].as_str());
        let adoption = &seeded.lookup(&sample, ADOPTION_REGISTRATION).await.unwrap()[0];
        assert_eq!(adoption["co_adopter_name"], marriages[1]["spouse_name"]);
    }

    #[tokio::test]
    async fn spouses_in_the_population_hold_each_others_registration() {
        let seeded = Seeded::new(&SPEC, 1000, 200).await.unwrap();
        let all = seeded.all(MARRIAGE_REGISTRATION).await.unwrap();
        let mut mutual = 0;
        for record in &all {
            let spouse = record["spouse_id_number"].as_str().unwrap();
            if seeded.population.citizen_by_id(spouse).is_some() {
                mutual += 1;
                assert!(all.iter().any(|r| r["id_number"] == spouse
                    && r["spouse_id_number"] == record["id_number"]
                    && r["certificate_no"] == record["certificate_no"]));
            }
        }
        assert!(mutual > 50, "{mutual}");
        let allowances = holders(
            &seeded
                .all(MINIMUM_SUBSISTENCE_ALLOWANCE_STATUS)
                .await
                .unwrap(),
            "id_number",
        );
        assert!((15..=80).contains(&allowances), "{allowances}");
        let organisations = holders(
            &seeded.all(SOCIAL_ORGANISATION_REGISTRATION).await.unwrap(),
            "uscc",
        );
        assert!((3..=25).contains(&organisations), "{organisations}");
    }
}
