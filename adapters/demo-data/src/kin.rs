//! Facts several departments of this crate must agree on: who is married to
//! whom (civil affairs registers it, the health commission names the father
//! on a birth certificate), who works where (social security, the provident
//! fund and medical insurance all name the same employer), and how local
//! agencies and people outside the population are named.
//!
//! Each fact is drawn from the stream of the department that owns it
//! (`civil-affairs/marriage_registration`, `human-resources-social-security/
//! employment_registration`), so the departments that only read it stay
//! consistent with the one that registers it.

use time::Date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, compact, days};
use xgate_synth::regions::{City, District};
use xgate_synth::{Citizen, Company, Gender, Population, Rng, SAMPLE_COMPANY};

/// The agency of a district: `亳州市谯城区民政局` for an urban district, the
/// county's own `涡阳县民政局` otherwise.
pub fn local_agency(city: &City, district: &District, agency: &str) -> String {
    if district.is_urban() {
        format!("{}{}{agency}", city.name, district.name)
    } else {
        format!("{}{agency}", district.name)
    }
}

/// The GB 11643 check character of a 17-digit resident ID body.
pub fn resident_id_check(body: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b.wrapping_sub(b'0')) * w)
        .sum();
    CHECKS
        .get(usize::try_from(sum % 11).unwrap_or(0))
        .copied()
        .unwrap_or('X')
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗",
];
const MALE_GIVEN: &[&str] = &[
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "建国", "志强", "海峰", "俊杰",
    "浩然", "子轩", "宇航", "文博",
];
const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀英", "桂兰", "雅婷", "欣怡", "梓涵", "诗琪",
    "晓燕", "慧敏", "雨桐", "思雨",
];

/// A given name for `gender`.
pub fn given_name(rng: &mut Rng, gender: Gender) -> &'static str {
    let names = match gender {
        Gender::Male => MALE_GIVEN,
        Gender::Female => FEMALE_GIVEN,
    };
    let name: &&'static str = rng.pick(names);
    name
}

/// A full name, surname first.
pub fn full_name(rng: &mut Rng, gender: Gender) -> String {
    format!("{}{}", rng.pick(SURNAMES), given_name(rng, gender))
}

/// The surname of a generated name (all surnames here are one character).
pub fn surname(name: &str) -> String {
    name.chars().take(1).collect()
}

/// One side of a marriage: a citizen of the population, or someone from
/// elsewhere with a valid number that belongs to no citizen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spouse {
    /// Index in the population, `None` for someone from elsewhere.
    pub index: Option<u32>,
    pub name: String,
    pub id_number: String,
    pub gender: Gender,
    pub birth_date: Date,
}

impl Spouse {
    fn of(citizen: &Citizen) -> Spouse {
        Spouse {
            index: Some(citizen.index),
            name: citizen.name.clone(),
            id_number: citizen.id_number.clone(),
            gender: citizen.gender,
            birth_date: citizen.birth_date,
        }
    }

    /// Someone of `gender` born around `near` in `district`, with a number
    /// no citizen holds.
    fn stranger(
        rng: &mut Rng,
        population: &Population,
        gender: Gender,
        near: Date,
        district: &District,
    ) -> Spouse {
        let birth_date = add_days(near, days(rng.range(0, 6 * 365)) - 3 * 365);
        let parity = u64::from(gender == Gender::Male);
        let id_number = loop {
            let sequence = rng.range(0, 500) * 2 + parity;
            let body = format!("{}{}{sequence:03}", district.code, compact(birth_date));
            let id = format!("{body}{}", resident_id_check(&body));
            if population.citizen_by_id(&id).is_none() {
                break id;
            }
        };
        Spouse {
            index: None,
            name: full_name(rng, gender),
            id_number,
            gender,
            birth_date,
        }
    }

    /// The day this spouse may marry: 22 for men, 20 for women.
    fn of_age(&self) -> Date {
        add_years(
            self.birth_date,
            if self.gender == Gender::Male { 22 } else { 20 },
        )
    }
}

/// How a marriage ended, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Lasting,
    Divorced { date: Date, certificate_no: String },
    Widowed,
}

/// A registered marriage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marriage {
    pub husband: Spouse,
    pub wife: Spouse,
    pub date: Date,
    pub certificate_no: String,
    /// The civil affairs bureau that registered it (and any divorce).
    pub authority: String,
    pub end: End,
}

impl Marriage {
    /// The spouse who is not `id_number`, if `id_number` is a spouse.
    pub fn partner_of(&self, id_number: &str) -> Option<&Spouse> {
        if self.husband.id_number == id_number {
            Some(&self.wife)
        } else if self.wife.id_number == id_number {
            Some(&self.husband)
        } else {
            None
        }
    }

    /// The status of the registration: `married`, `divorced` or `widowed`.
    pub fn status(&self) -> &'static str {
        match self.end {
            End::Lasting => "married",
            End::Divorced { .. } => "divorced",
            End::Widowed => "widowed",
        }
    }
}

/// `J341602-2005-012345`: the letter, the registering district, the year and a serial.
fn certificate_no(rng: &mut Rng, letter: char, district: &District, on: Date) -> String {
    format!(
        "{letter}{}-{}-{:06}",
        district.code,
        on.year(),
        rng.range(1, 30_000)
    )
}

/// Every marriage registered about the population, in the order of the
/// citizen who registered first. The sample citizen married twice (the first
/// marriage ended in divorce); the gappy citizen never married; about four in
/// five adults married once, some of them to another citizen.
pub fn marriages(population: &Population) -> Vec<Marriage> {
    let mut taken = vec![false; population.citizens.len()];
    let mut out = Vec::new();
    for person in population.people(crate::civil_affairs::DEPARTMENT) {
        let c = person.citizen;
        let me = usize::try_from(c.index).unwrap_or(usize::MAX);
        if person.gappy || taken.get(me).copied().unwrap_or(true) {
            continue;
        }
        let mut rng = person.rng(crate::civil_affairs::MARRIAGE_REGISTRATION);
        let own = Spouse::of(c);
        let latest = add_days(REFERENCE_DATE, -30);
        if own.of_age() > latest || !(person.sample || rng.chance(0.8)) {
            continue;
        }
        if let Some(flag) = taken.get_mut(me) {
            *flag = true;
        }
        let authority = local_agency(person.city, person.district, "民政局");
        let mut from = own.of_age();
        let times = if person.sample { 2 } else { 1 };
        for time in 0..times {
            let partner_gender = match c.gender {
                Gender::Male => Gender::Female,
                Gender::Female => Gender::Male,
            };
            // Another citizen of about the same age, or someone from elsewhere.
            let count = population.citizens.len();
            let start =
                usize::try_from(rng.range(0, u64::try_from(count).unwrap_or(0))).unwrap_or(0);
            let local = (time > 0 || rng.chance(0.5))
                .then(|| {
                    (0..count)
                        .map(|k| (start + k) % count)
                        .filter_map(|j| population.citizens.get(j).map(|o| (j, o)))
                        .find(|(j, o)| {
                            !taken.get(*j).copied().unwrap_or(true)
                                && o.gender == partner_gender
                                && o.index != xgate_synth::GAPPY_CITIZEN
                                && (o.birth_date.year() - c.birth_date.year()).abs() <= 6
                                && Spouse::of(o).of_age().max(from) <= latest
                        })
                })
                .flatten();
            let partner = match local {
                Some((j, o)) => {
                    if let Some(flag) = taken.get_mut(j) {
                        *flag = true;
                    }
                    Spouse::of(o)
                }
                None => Spouse::stranger(
                    &mut rng,
                    population,
                    partner_gender,
                    c.birth_date,
                    person.district,
                ),
            };
            let earliest = from.max(partner.of_age());
            if earliest > latest {
                break;
            }
            let date = rng.date(earliest, latest.min(add_years(earliest, 8)));
            let certificate_no = certificate_no(&mut rng, 'J', person.district, date);
            let divorce_from = add_years(date, 1);
            let divorced =
                time == 0 && (person.sample || (divorce_from < latest && rng.chance(0.1)));
            let end = if divorced {
                let on = rng.date(divorce_from, latest.min(add_years(date, 4)));
                from = add_years(on, 1);
                End::Divorced {
                    date: on,
                    certificate_no: certificate_no_for(&mut rng, person.district, on),
                }
            } else if partner.index.is_none() && c.age() >= 65 && rng.chance(0.25) {
                End::Widowed
            } else {
                End::Lasting
            };
            let (husband, wife) = match c.gender {
                Gender::Male => (own.clone(), partner),
                Gender::Female => (partner, own.clone()),
            };
            out.push(Marriage {
                husband,
                wife,
                date,
                certificate_no,
                authority: authority.clone(),
                end,
            });
            if from > latest {
                break;
            }
        }
    }
    out
}

fn certificate_no_for(rng: &mut Rng, district: &District, on: Date) -> String {
    certificate_no(rng, 'L', district, on)
}

/// A citizen's job, as the employment registration records it.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    pub employer: &'a Company,
    pub since: Date,
    /// Gross monthly wage in yuan, the base of every contribution.
    pub wage: f64,
}

/// Whether `citizen` is of working age: 20 to 60 for men, to 55 for women.
pub fn working_age(citizen: &Citizen) -> bool {
    let retirement = if citizen.gender == Gender::Male {
        60
    } else {
        55
    };
    (20..retirement).contains(&citizen.age())
}

/// The citizen's employer: the sample citizen works for the sample company
/// (as in the tax records), about two in three of working age for some
/// company founded before they joined.
pub fn job<'a>(population: &'a Population, citizen: &Citizen) -> Option<Job<'a>> {
    let mut rng = Rng::new(
        &format!(
            "{}/{}",
            crate::human_resources_social_security::DEPARTMENT,
            crate::human_resources_social_security::EMPLOYMENT_REGISTRATION
        ),
        citizen.index,
    );
    let sample = citizen.index == xgate_synth::SAMPLE_CITIZEN;
    let gappy = citizen.index == xgate_synth::GAPPY_CITIZEN;
    if !(sample || gappy || (working_age(citizen) && rng.chance(0.65))) {
        return None;
    }
    let companies = &population.companies;
    let employer = if sample {
        companies.get(usize::try_from(SAMPLE_COMPANY).unwrap_or(0))?
    } else {
        let i = rng.range(0, u64::try_from(companies.len()).unwrap_or(0));
        companies.get(usize::try_from(i).ok()?)?
    };
    let from = add_years(citizen.birth_date, 20).max(employer.established);
    let to = add_days(REFERENCE_DATE, -90);
    if from > to {
        return None;
    }
    let since = if sample {
        employer.established
    } else {
        rng.date(from, to)
    };
    let wage = if sample {
        rng.float(12_000.0, 18_000.0)
    } else {
        let (lo, hi) = *rng.pick_weighted(&[
            ((3_000.0, 6_000.0), 30),
            ((6_000.0, 10_000.0), 35),
            ((10_000.0, 20_000.0), 25),
            ((20_000.0, 40_000.0), 10),
        ]);
        rng.float(lo, hi)
    };
    Some(Job {
        employer,
        since,
        wage: xgate_synth::round2(wage),
    })
}

#[cfg(test)]
mod tests {
    use xgate_catalog::ids::resident_id_check_char;
    use xgate_synth::{GAPPY_CITIZEN, SAMPLE_CITIZEN};

    use super::*;

    #[test]
    fn check_characters_agree_with_the_catalog() {
        for body in [
            "34160219770305172",
            "11010519900307001",
            "34010219800101000",
        ] {
            assert_eq!(Some(resident_id_check(body)), resident_id_check_char(body));
        }
    }

    #[test]
    fn marriages_are_consistent() {
        let population = Population::generate(1000, 200);
        let all = marriages(&population);
        let sample = &population.citizens[SAMPLE_CITIZEN as usize];
        let gappy = &population.citizens[GAPPY_CITIZEN as usize];
        let hers: Vec<&Marriage> = all
            .iter()
            .filter(|m| m.partner_of(&sample.id_number).is_some())
            .collect();
        assert_eq!(hers.len(), 2);
        assert_eq!(hers[0].status(), "divorced");
        assert_eq!(hers[1].status(), "married");
        assert!(all.iter().all(|m| m.partner_of(&gappy.id_number).is_none()));
        let mut seen = std::collections::HashMap::new();
        for m in &all {
            assert_eq!(m.husband.gender, Gender::Male);
            assert_eq!(m.wife.gender, Gender::Female);
            assert!(m.date >= add_years(m.husband.birth_date, 22));
            assert!(m.date >= add_years(m.wife.birth_date, 20));
            assert!(m.date <= REFERENCE_DATE);
            for spouse in [&m.husband, &m.wife] {
                if let Some(index) = spouse.index {
                    assert_eq!(population.citizens[index as usize].name, spouse.name);
                    if m.end == End::Lasting {
                        assert!(seen.insert(index, ()).is_none(), "married twice at once");
                    }
                } else {
                    assert!(population.citizen_by_id(&spouse.id_number).is_none());
                    assert_eq!(
                        resident_id_check(&spouse.id_number[..17]),
                        spouse.id_number.chars().last().unwrap()
                    );
                }
            }
        }
        let married = all.len();
        assert!((300..=900).contains(&married), "{married}");
    }

    #[test]
    fn the_sample_citizen_works_for_the_sample_company() {
        let population = Population::generate(20, 5);
        let job = job(&population, &population.citizens[0]).unwrap();
        assert_eq!(job.employer.index, SAMPLE_COMPANY);
        assert!(job.since >= job.employer.established);
        assert!(job.since <= REFERENCE_DATE);
    }
}
