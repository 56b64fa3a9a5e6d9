//! Citizens and companies, each derived from its own index so that the
//! first `n` of a larger population are the same people.

use std::collections::HashSet;

use time::Date;
use time::macros::date;
use xgate_catalog::ids::{resident_id_check_char, uscc_check_char};

use crate::dates::{REFERENCE_DATE, add_days, add_years, age_on, compact};
use crate::names::{BUSINESSES, ETHNICITIES, FEMALE_GIVEN, MALE_GIVEN, SURNAMES, TRADE_NAMES};
use crate::regions::{CITIES, City, District, PROVINCE};
use crate::rng::Rng;

/// Citizens in the default population.
pub const DEFAULT_CITIZENS: u32 = 1000;
/// Companies in the default population.
pub const DEFAULT_COMPANIES: u32 = 200;
/// The citizen who holds at least one record of every personal record type in
/// every department.
pub const SAMPLE_CITIZEN: u32 = 0;
/// The citizen with gaps: no marriage, no vehicle, no real-estate title
/// (departments leave further gaps of their own).
pub const GAPPY_CITIZEN: u32 = 1;
/// The company that holds every company record type.
pub const SAMPLE_COMPANY: u32 = 0;

/// Sex as recorded on the identity card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// The value used in records: `male` or `female`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Male => "male",
            Self::Female => "female",
        }
    }
}

/// A synthetic resident of Anhui Province.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Citizen {
    /// Position in [`Population::citizens`].
    pub index: u32,
    /// GB 11643 resident identity number with a valid check character.
    pub id_number: String,
    /// Chinese name, surname first.
    pub name: String,
    pub gender: Gender,
    pub birth_date: Date,
    /// Ethnic group as printed on the card, e.g. `汉`.
    pub ethnicity: String,
    /// Always `安徽省`.
    pub province: String,
    /// City of household registration and residence, e.g. `亳州市`.
    pub city: String,
    /// District or county, e.g. `谯城区`.
    pub district: String,
    /// Full address, e.g. `安徽省亳州市谯城区魏武大道288号3栋1单元502室`.
    pub address: String,
}

impl Citizen {
    /// Age in whole years on [`REFERENCE_DATE`].
    pub fn age(&self) -> u32 {
        age_on(self.birth_date, REFERENCE_DATE)
    }

    /// The city and district records of this citizen, when they are among
    /// [`CITIES`] (always, for a generated citizen).
    pub fn home(&self) -> Option<(&'static City, &'static District)> {
        let city = crate::regions::city(&self.city)?;
        Some((city, city.district(&self.district)?))
    }
}

/// A synthetic limited company registered in Anhui Province.
#[derive(Clone, Debug, PartialEq)]
pub struct Company {
    /// Position in [`Population::companies`].
    pub index: u32,
    /// GB 32100 unified social credit code with a valid check character.
    pub uscc: String,
    /// Registered name, e.g. `亳州市恒信建材有限公司`.
    pub name: String,
    /// Index of the citizen who is the legal representative (0 when the
    /// population has no citizens).
    pub legal_representative: u32,
    pub city: String,
    pub district: String,
    /// Registered address, e.g. `安徽省亳州市谯城区药都路66号`.
    pub address: String,
    pub established: Date,
    pub registered_capital_cny: f64,
    /// GB/T 4754 industry section, e.g. `制造业`.
    pub industry: String,
}

impl Company {
    /// The city and district records of this company, when they are among
    /// [`CITIES`] (always, for a generated company).
    pub fn home(&self) -> Option<(&'static City, &'static District)> {
        let city = crate::regions::city(&self.city)?;
        Some((city, city.district(&self.district)?))
    }

    /// The name without the city prefix and the `有限公司` suffix, e.g. `恒信建材`,
    /// as used in project and mine names.
    pub fn short_name(&self) -> &str {
        let name = self.name.strip_prefix(&self.city).unwrap_or(&self.name);
        name.strip_suffix("有限公司").unwrap_or(name)
    }
}

/// The whole synthetic population.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    pub citizens: Vec<Citizen>,
    pub companies: Vec<Company>,
}

impl Population {
    /// Generates `citizens` citizens and `companies` companies. The same
    /// arguments always give the same population. Fewer citizens are a prefix
    /// of more; fewer companies are a prefix of more for the same number of
    /// citizens (legal representatives are drawn from them).
    pub fn generate(citizens: u32, companies: u32) -> Population {
        let mut ids = HashSet::new();
        let citizens: Vec<Citizen> = (0..citizens)
            .map(|index| generate_citizen(index, &mut ids))
            .collect();
        let mut usccs = HashSet::new();
        let mut names = HashSet::new();
        let companies = (0..companies)
            .map(|index| generate_company(index, &citizens, &mut usccs, &mut names))
            .collect();
        Population {
            citizens,
            companies,
        }
    }

    /// The citizen with resident ID `id`.
    pub fn citizen_by_id(&self, id: &str) -> Option<&Citizen> {
        self.citizens.iter().find(|c| c.id_number == id)
    }

    /// The company with unified social credit code `uscc`.
    pub fn company_by_uscc(&self, uscc: &str) -> Option<&Company> {
        self.companies.iter().find(|c| c.uscc == uscc)
    }
}

const COMMUNITIES: &[&str] = &[
    "锦绣花园",
    "阳光城",
    "书香苑",
    "金色家园",
    "滨河花园",
    "幸福里",
    "翡翠湾",
    "东方名城",
    "紫薇苑",
    "世纪华庭",
    "和谐家园",
    "桂花园",
];

/// A street address in `city`/`district` without the province, e.g.
/// `亳州市谯城区魏武大道288号`.
pub fn street_address(rng: &mut Rng, city: &City, district: &District) -> String {
    format!(
        "{}{}{}{}号",
        city.name,
        district.name,
        rng.pick(city.streets),
        rng.range(1, 999)
    )
}

/// A flat's address in `city`/`district` without the province, e.g.
/// `亳州市谯城区魏武大道288号锦绣花园3栋1单元502室`.
pub fn residential_address(rng: &mut Rng, city: &City, district: &District) -> String {
    let street = street_address(rng, city, district);
    let community = if rng.chance(0.5) {
        *rng.pick(COMMUNITIES)
    } else {
        ""
    };
    let (building, unit) = (rng.range(1, 30), rng.range(1, 4));
    let (floor, flat) = (rng.range(1, 33), rng.range(1, 5));
    format!("{street}{community}{building}栋{unit}单元{floor}{flat:02}室")
}

fn generate_citizen(index: u32, ids: &mut HashSet<String>) -> Citizen {
    let mut rng = Rng::new("citizen", index);
    let gender = if rng.chance(0.5) {
        Gender::Male
    } else {
        Gender::Female
    };
    // The sample and gappy citizens are of working age, so their gaps come
    // from the data and not from being too young or too old.
    let birth_date = if index == SAMPLE_CITIZEN || index == GAPPY_CITIZEN {
        rng.date(date!(1975 - 01 - 01), date!(1992 - 12 - 31))
    } else {
        rng.date(date!(1940 - 01 - 01), date!(2005 - 12 - 31))
    };
    let city = if index == SAMPLE_CITIZEN {
        crate::regions::city("亳州市").unwrap_or_else(|| rng.pick(CITIES))
    } else {
        rng.pick(CITIES)
    };
    let district = if index == SAMPLE_CITIZEN {
        city.district("谯城区")
            .unwrap_or_else(|| rng.pick(city.districts))
    } else {
        rng.pick(city.districts)
    };
    let given = if gender == Gender::Male {
        &MALE_GIVEN
    } else {
        &FEMALE_GIVEN
    };
    let generation = match birth_date.year() {
        ..1970 => given.older,
        1970..1990 => given.middle,
        _ => given.younger,
    };
    let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(generation));
    let ethnicity = String::from(*rng.pick_weighted(ETHNICITIES));
    let address = format!(
        "{PROVINCE}{}",
        residential_address(&mut rng, city, district)
    );

    let id_number = loop {
        // The sequence's last digit is odd for men and even for women.
        let parity = u64::from(gender == Gender::Male);
        let sequence = rng.range(0, 500) * 2 + parity;
        let body = format!("{}{}{sequence:03}", district.code, compact(birth_date));
        if ids.insert(body.clone()) {
            // `body` is 17 ASCII digits, so a check character always exists;
            // the tests validate every generated number.
            let check = resident_id_check_char(&body).unwrap_or('X');
            break format!("{body}{check}");
        }
    };

    Citizen {
        index,
        id_number,
        name,
        gender,
        birth_date,
        ethnicity,
        province: PROVINCE.to_owned(),
        city: city.name.to_owned(),
        district: district.name.to_owned(),
        address,
    }
}

/// The GB 11714 check character of an eight-digit organisation code body.
fn organisation_code_check(body: &str) -> char {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b.wrapping_sub(b'0')) * w)
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from_digit(c, 10).unwrap_or('0'),
    }
}

const CAPITALS_10K_CNY: &[u32] = &[10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000];

/// Draws of a plain company name before a numbered one.
const NAME_DRAWS: u32 = 64;

fn generate_company(
    index: u32,
    citizens: &[Citizen],
    usccs: &mut HashSet<String>,
    names: &mut HashSet<String>,
) -> Company {
    let mut rng = Rng::new("company", index);
    let sample = index == SAMPLE_COMPANY;
    let (word, industry) = if sample {
        ("建材", "制造业")
    } else {
        *rng.pick_weighted(BUSINESSES)
    };

    // A legal representative old enough to have founded the company.
    let representative = if sample {
        citizens.get(usize::try_from(SAMPLE_CITIZEN).unwrap_or(0))
    } else {
        let mut chosen = None;
        for _ in 0..32 {
            let candidate = rng.range(0, u64::try_from(citizens.len()).unwrap_or(0));
            let citizen = usize::try_from(candidate)
                .ok()
                .and_then(|i| citizens.get(i));
            if citizen.is_some_and(|c| c.age() >= 25) {
                chosen = citizen;
                break;
            }
        }
        chosen.or(citizens.first())
    };
    let home = representative.and_then(Citizen::home);
    let (city, district) = match home {
        Some(home) if sample || rng.chance(0.7) => home,
        _ => {
            let city = rng.pick(CITIES);
            (city, rng.pick(city.districts))
        }
    };

    let earliest = representative
        .map(|r| add_years(r.birth_date, 22))
        .unwrap_or(date!(1995 - 01 - 01))
        .max(date!(1995 - 01 - 01));
    let established = if sample {
        rng.date(date!(2008 - 01 - 01), date!(2012 - 12 - 31))
    } else {
        rng.date(earliest, add_days(REFERENCE_DATE, -30))
    };

    // A free name of a city's trade names and the business word; once a
    // city's few hundred such names are taken (populations of thousands),
    // a branch number keeps it unique instead of drawing forever. The first
    // draws are those of smaller populations, so they keep their names.
    let mut attempts = 0u32;
    let name = loop {
        let trade = rng.pick(TRADE_NAMES);
        attempts += 1;
        let name = if attempts <= NAME_DRAWS {
            format!("{}{trade}{word}有限公司", city.name)
        } else {
            format!(
                "{}{trade}{word}{}号有限公司",
                city.name,
                attempts - NAME_DRAWS
            )
        };
        if names.insert(name.clone()) {
            break name;
        }
    };

    let uscc = loop {
        let body = rng.digits(8);
        let organisation = format!("{body}{}", organisation_code_check(&body));
        // 9: registered by the market regulator; 1: enterprise.
        let first17 = format!("91{}{organisation}", district.code);
        if usccs.insert(first17.clone()) {
            // All characters are in the USCC alphabet, so a check exists; the
            // tests validate every generated code.
            let check = uscc_check_char(&first17).unwrap_or('0');
            break format!("{first17}{check}");
        }
    };

    Company {
        index,
        uscc,
        name,
        legal_representative: representative.map_or(0, |r| r.index),
        city: city.name.to_owned(),
        district: district.name.to_owned(),
        address: format!("{PROVINCE}{}", street_address(&mut rng, city, district)),
        established,
        registered_capital_cny: f64::from(*rng.pick(CAPITALS_10K_CNY)) * 10_000.0,
        industry: industry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use xgate_catalog::ids::{validate_resident_id, validate_uscc};

    use super::*;

    fn default_population() -> Population {
        Population::generate(DEFAULT_CITIZENS, DEFAULT_COMPANIES)
    }

    #[test]
    fn every_id_is_valid_and_unique() {
        let population = default_population();
        assert_eq!(population.citizens.len(), 1000);
        assert_eq!(population.companies.len(), 200);
        let ids: HashSet<&str> = population
            .citizens
            .iter()
            .map(|c| c.id_number.as_str())
            .collect();
        assert_eq!(ids.len(), 1000);
        for citizen in &population.citizens {
            validate_resident_id(&citizen.id_number).unwrap();
        }
        let usccs: HashSet<&str> = population
            .companies
            .iter()
            .map(|c| c.uscc.as_str())
            .collect();
        assert_eq!(usccs.len(), 200);
        for company in &population.companies {
            validate_uscc(&company.uscc).unwrap();
        }
        let names: HashSet<&str> = population
            .companies
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names.len(), 200);
    }

    #[test]
    fn generation_is_deterministic_and_prefix_stable() {
        let population = default_population();
        assert_eq!(population, default_population());
        let small = Population::generate(10, 5);
        assert_eq!(small.citizens[..], population.citizens[..10]);
        // Companies pick legal representatives among the citizens, so only the
        // citizen count must match for company prefixes to agree.
        let fewer_companies = Population::generate(DEFAULT_CITIZENS, 5);
        assert_eq!(fewer_companies.companies[..], population.companies[..5]);
    }

    #[test]
    fn id_numbers_encode_region_birth_date_and_gender() {
        for citizen in &default_population().citizens {
            let id = &citizen.id_number;
            let (city, district) = citizen.home().unwrap();
            assert_eq!(&id[..6], district.code, "{id}");
            assert!(
                citizen
                    .address
                    .starts_with(&format!("安徽省{}{}", city.name, district.name))
            );
            assert_eq!(&id[6..14], compact(citizen.birth_date));
            let parity = id.as_bytes()[16] - b'0';
            assert_eq!(parity % 2 == 1, citizen.gender == Gender::Male, "{id}");
            let year = citizen.birth_date.year();
            assert!((1940..=2005).contains(&year));
            let chars = citizen.name.chars().count();
            assert!((2..=3).contains(&chars), "{}", citizen.name);
        }
    }

    #[test]
    fn thousands_of_companies_get_unique_names_and_keep_the_small_ones() {
        let large = Population::generate(1000, 5000);
        let names: HashSet<&str> = large.companies.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 5000);
        let small = Population::generate(1000, 200);
        for (a, b) in small.companies.iter().zip(&large.companies) {
            assert_eq!((&a.name, &a.uscc), (&b.name, &b.uscc));
        }
    }

    #[test]
    fn companies_are_plausible() {
        let population = default_population();
        for company in &population.companies {
            let (city, district) = company.home().unwrap();
            assert_eq!(&company.uscc[..2], "91");
            assert_eq!(&company.uscc[2..8], district.code);
            assert!(company.name.starts_with(city.name) && company.name.ends_with("有限公司"));
            assert!(company.established <= REFERENCE_DATE);
            let rep = &population.citizens[company.legal_representative as usize];
            assert!(
                age_on(rep.birth_date, company.established) >= 18,
                "{}",
                company.name
            );
            assert!(company.registered_capital_cny >= 100_000.0);
        }
    }

    #[test]
    fn sample_subjects_are_fixed_kinds_of_people() {
        let population = default_population();
        let sample = &population.citizens[SAMPLE_CITIZEN as usize];
        assert_eq!(
            (sample.city.as_str(), sample.district.as_str()),
            ("亳州市", "谯城区")
        );
        // Pinned: every department's seed data hangs off these numbers.
        assert_eq!(sample.id_number, "341602197703051725");
        assert_eq!(
            population.companies[SAMPLE_COMPANY as usize].uscc,
            "9134160296291900X9"
        );
        assert!((30..=55).contains(&sample.age()));
        assert!((30..=55).contains(&population.citizens[GAPPY_CITIZEN as usize].age()));
        let company = &population.companies[SAMPLE_COMPANY as usize];
        assert_eq!(company.legal_representative, SAMPLE_CITIZEN);
        assert!(company.established.year() <= 2012);
        assert_eq!(
            company.short_name(),
            company.name[9..company.name.len() - 12].to_owned()
        );
        assert!(company.short_name().ends_with("建材"));
        assert_eq!(population.citizen_by_id(&sample.id_number), Some(sample));
        assert_eq!(population.company_by_uscc(&company.uscc), Some(company));
        assert!(population.citizen_by_id("110101199003070000").is_none());
    }

    #[test]
    fn organisation_code_check_matches_known_codes() {
        // Worked by hand: 1·3+2·7+3·9+4·10+5·5+6·8+7·4+8·2 = 201; 11 - 201 mod 11 = 8.
        assert_eq!(organisation_code_check("12345678"), '8');
        assert_eq!(organisation_code_check("00000000"), '0');
    }

    #[test]
    fn empty_population_is_fine() {
        let population = Population::generate(0, 3);
        assert!(population.citizens.is_empty());
        assert_eq!(population.companies.len(), 3);
        assert!(
            population
                .companies
                .iter()
                .all(|c| c.legal_representative == 0)
        );
    }
}
