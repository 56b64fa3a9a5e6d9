//! What every department's record generator starts from: each citizen and
//! company with its home and its part in the demo, and the department's own
//! random stream per record type.

use serde_json::Value;
use time::Date;

use crate::dates::add_years;
use crate::population::{
    Citizen, Company, GAPPY_CITIZEN, Population, SAMPLE_CITIZEN, SAMPLE_COMPANY,
};
use crate::regions::{City, District};
use crate::rng::Rng;

/// Generated records, each with its record type, as seeding takes them.
pub type Records = Vec<(&'static str, Value)>;

/// Pairs records with their type: `out.extend(records.map(tagged(TYPE)))`.
pub fn tagged(record_type: &'static str) -> impl Fn(Value) -> (&'static str, Value) {
    move |record| (record_type, record)
}

/// Rounded to two decimals: fen, square centimetres.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The stream of `department`'s records of `record_type` about the subject at
/// `index`: one stream per type, so one type's data never shifts when
/// another's generator changes.
fn stream(department: &str, record_type: &str, index: u32) -> Rng {
    Rng::new(&format!("{department}/{record_type}"), index)
}

/// A citizen as one department's generator sees them.
#[derive(Clone, Copy, Debug)]
pub struct Person<'a> {
    /// The department generating, whose streams [`Person::rng`] draws.
    pub department: &'static str,
    pub citizen: &'a Citizen,
    pub city: &'static City,
    pub district: &'static District,
    /// The [`SAMPLE_CITIZEN`], who holds every personal record type.
    pub sample: bool,
    /// The [`GAPPY_CITIZEN`], who lacks some.
    pub gappy: bool,
}

impl<'a> Person<'a> {
    /// `citizen` as `department` sees them; `None` when their home is not
    /// among the known regions (never, for a generated citizen).
    pub fn new(department: &'static str, citizen: &'a Citizen) -> Option<Person<'a>> {
        let (city, district) = citizen.home()?;
        Some(Person {
            department,
            citizen,
            city,
            district,
            sample: citizen.index == SAMPLE_CITIZEN,
            gappy: citizen.index == GAPPY_CITIZEN,
        })
    }

    /// The stream of this citizen's records of `record_type`.
    pub fn rng(&self, record_type: &str) -> Rng {
        stream(self.department, record_type, self.citizen.index)
    }

    /// The day the citizen turns `years`.
    pub fn birthday(&self, years: i32) -> Date {
        add_years(self.citizen.birth_date, years)
    }
}

/// A company as one department's generator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Firm<'a> {
    /// The department generating, whose streams [`Firm::rng`] draws.
    pub department: &'static str,
    pub company: &'a Company,
    pub city: &'static City,
    pub district: &'static District,
    /// The [`SAMPLE_COMPANY`], which holds every company record type.
    pub sample: bool,
}

impl<'a> Firm<'a> {
    /// `company` as `department` sees it; `None` when its seat is not among
    /// the known regions (never, for a generated company).
    pub fn new(department: &'static str, company: &'a Company) -> Option<Firm<'a>> {
        let (city, district) = company.home()?;
        Some(Firm {
            department,
            company,
            city,
            district,
            sample: company.index == SAMPLE_COMPANY,
        })
    }

    /// The stream of this company's records of `record_type`.
    pub fn rng(&self, record_type: &str) -> Rng {
        stream(self.department, record_type, self.company.index)
    }
}

impl Population {
    /// Every citizen as `department` sees them, in index order.
    pub fn people(&self, department: &'static str) -> impl Iterator<Item = Person<'_>> {
        self.citizens
            .iter()
            .filter_map(move |c| Person::new(department, c))
    }

    /// Every company as `department` sees it, in index order.
    pub fn firms(&self, department: &'static str) -> impl Iterator<Item = Firm<'_>> {
        self.companies
            .iter()
            .filter_map(move |c| Firm::new(department, c))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_subject_is_seen_with_its_home_and_part() {
        let population = Population::generate(5, 3);
        let people: Vec<Person> = population.people("tax").collect();
        assert_eq!(people.len(), 5);
        let flags: Vec<(bool, bool)> = people.iter().map(|p| (p.sample, p.gappy)).collect();
        assert_eq!(
            flags,
            vec![
                (true, false),
                (false, true),
                (false, false),
                (false, false),
                (false, false)
            ]
        );
        for (person, citizen) in people.iter().zip(&population.citizens) {
            assert_eq!(person.citizen, citizen);
            assert_eq!(person.city.name, citizen.city);
            assert_eq!(person.district.name, citizen.district);
        }
        let firms: Vec<Firm> = population.firms("tax").collect();
        assert_eq!(firms.len(), 3);
        assert!(firms[0].sample && !firms[1].sample);
        assert_eq!(firms[2].district.name, population.companies[2].district);

        let mut nowhere = population.citizens[3].clone();
        nowhere.city = "nowhere".to_owned();
        assert!(Person::new("tax", &nowhere).is_none());
    }

    #[test]
    fn streams_are_salted_with_department_and_record_type() {
        let population = Population::generate(3, 2);
        let person = population.people("tax").nth(2).unwrap();
        let draw = |mut rng: Rng| rng.next_u64();
        assert_eq!(
            draw(person.rng("tax_registration")),
            draw(Rng::new("tax/tax_registration", 2))
        );
        let firm = population.firms("natural-resources").nth(1).unwrap();
        assert_eq!(
            draw(firm.rng("mining_licence")),
            draw(Rng::new("natural-resources/mining_licence", 1))
        );
        assert_ne!(
            draw(person.rng("tax_registration")),
            draw(
                Person::new("court", person.citizen)
                    .unwrap()
                    .rng("tax_registration")
            )
        );
    }

    #[test]
    fn birthdays_and_rounding() {
        let population = Population::generate(1, 0);
        let person = population.people("tax").next().unwrap();
        let birth = person.citizen.birth_date;
        let adult = person.birthday(18);
        assert_eq!(
            (adult.year(), adult.month(), adult.day()),
            (birth.year() + 18, birth.month(), birth.day())
        );
        assert!((round2(123.456_7) - 123.46).abs() < 1e-9);
        assert!((round2(0.004) - 0.0).abs() < 1e-9);
        let tag = tagged("pet_licence");
        assert_eq!(tag(json!({"a": 1})), ("pet_licence", json!({"a": 1})));
    }
}
