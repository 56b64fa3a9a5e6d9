//! Who among the synthetic citizens is whose parent and guardian: the facts
//! public security's household registration carries (from birth
//! registrations and guardianship filings), and so what the gateway verifies
//! a parent, child or guardian applying for a citizen against.
//!
//! The population is a sample of a province, so most parents live outside
//! it: a citizen has a father or mother among the citizens with a modest
//! chance, drawn from the citizens of the right sex born 20 to 42 years
//! earlier. The sample citizen always has her mother among them — an
//! elderly woman, so the demo has an elderly citizen whose child applies for
//! her. A minor's guardian is a parent; an old citizen (80 and over) has one
//! of their adult children as guardian now and then.

use std::collections::HashMap;

use crate::population::{GAPPY_CITIZEN, Gender, Population, SAMPLE_CITIZEN};
use crate::rng::Rng;

/// One citizen's parents and guardian, as indexes into
/// [`Population::citizens`]; `None` when not among the citizens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Family {
    pub father: Option<u32>,
    pub mother: Option<u32>,
    pub guardian: Option<u32>,
}

/// How old a mother (father) is at a child's birth, in whole years.
const MOTHER_AGE: (i32, i32) = (20, 38);
const FATHER_AGE: (i32, i32) = (22, 42);
/// The sample citizen's mother is at least this old: "elderly" in the sense
/// of the elderly allowance and pension items.
const ELDERLY: u32 = 65;

/// Every citizen's [`Family`], by index. The same population always gives
/// the same families.
pub fn families(population: &Population) -> Vec<Family> {
    // Citizens by (sex, year of birth), in index order.
    let mut born: HashMap<(Gender, i32), Vec<u32>> = HashMap::new();
    for c in &population.citizens {
        if c.index != GAPPY_CITIZEN {
            born.entry((c.gender, c.birth_date.year()))
                .or_default()
                .push(c.index);
        }
    }
    let pick = |rng: &mut Rng, gender: Gender, year: i32, (lo, hi): (i32, i32)| {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        let offset = lo + i32::try_from(rng.range(0, span)).unwrap_or(0);
        born.get(&(gender, year - offset)).map(|c| *rng.pick(c))
    };
    let mut out: Vec<Family> = population
        .citizens
        .iter()
        .map(|c| {
            if c.index == GAPPY_CITIZEN {
                return Family::default();
            }
            let mut rng = Rng::new("synth/family", c.index);
            let year = c.birth_date.year();
            let mother = if c.index == SAMPLE_CITIZEN {
                population
                    .citizens
                    .iter()
                    .find(|m| {
                        m.gender == Gender::Female
                            && m.index != GAPPY_CITIZEN
                            && m.age() >= ELDERLY
                            && (MOTHER_AGE.0..=MOTHER_AGE.1).contains(&(year - m.birth_date.year()))
                    })
                    .map(|m| m.index)
            } else if rng.chance(0.3) {
                pick(&mut rng, Gender::Female, year, MOTHER_AGE)
            } else {
                None
            };
            let father = if rng.chance(0.3) {
                pick(&mut rng, Gender::Male, year, FATHER_AGE)
            } else {
                None
            };
            let guardian = if c.age() < 18 {
                mother.or(father)
            } else {
                None
            };
            Family {
                father,
                mother,
                guardian,
            }
        })
        .collect();
    // Old citizens: now and then an adult child is their guardian.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (child, family) in out.iter().enumerate() {
        for parent in family.father.iter().chain(family.mother.iter()) {
            children
                .entry(*parent)
                .or_default()
                .push(u32::try_from(child).unwrap_or(u32::MAX));
        }
    }
    for c in &population.citizens {
        if c.age() < 80 || !Rng::new("synth/guardian", c.index).chance(0.2) {
            continue;
        }
        let adult = children.get(&c.index).and_then(|kids| {
            kids.iter().copied().find(|k| {
                population
                    .citizens
                    .get(*k as usize)
                    .is_some_and(|k| k.age() >= 18)
            })
        });
        if let Some(family) = out.get_mut(c.index as usize) {
            family.guardian = adult;
        }
    }
    out
}

/// The children among the citizens of the citizen at `index`.
pub fn children_of(families: &[Family], index: u32) -> impl Iterator<Item = u32> + '_ {
    families.iter().enumerate().filter_map(move |(child, f)| {
        (f.father == Some(index) || f.mother == Some(index))
            .then(|| u32::try_from(child).ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_of_the_right_sex_and_age_and_the_sample_has_an_elderly_mother() {
        let population = Population::generate(1000, 0);
        let families = families(&population);
        assert_eq!(families.len(), 1000);
        let citizen = |i: u32| &population.citizens[i as usize];
        let mut parents = 0;
        for (i, f) in families.iter().enumerate() {
            let child = &population.citizens[i];
            if let Some(m) = f.mother {
                let gap = child.birth_date.year() - citizen(m).birth_date.year();
                assert_eq!(citizen(m).gender, Gender::Female);
                assert!((MOTHER_AGE.0..=MOTHER_AGE.1).contains(&gap), "{gap}");
                parents += 1;
            }
            if let Some(father) = f.father {
                let gap = child.birth_date.year() - citizen(father).birth_date.year();
                assert_eq!(citizen(father).gender, Gender::Male);
                assert!((FATHER_AGE.0..=FATHER_AGE.1).contains(&gap), "{gap}");
                parents += 1;
            }
            if child.age() < 18 {
                assert_eq!(f.guardian, f.mother.or(f.father));
            }
        }
        assert!(parents > 100, "only {parents} parents among 1,000 citizens");
        let sample = families[SAMPLE_CITIZEN as usize];
        let mother = sample.mother.expect("the sample citizen's mother");
        assert!(citizen(mother).age() >= ELDERLY);
        assert!(children_of(&families, mother).any(|c| c == SAMPLE_CITIZEN));
        assert_eq!(families[GAPPY_CITIZEN as usize], Family::default());
        assert_eq!(families, super::families(&population), "deterministic");
    }
}
