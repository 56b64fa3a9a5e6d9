//! What the licence-issuing departments' generators share: validity terms
//! around [`REFERENCE_DATE`], the legal representative of a company, city
//! abbreviations used in document numbers, and a department's local office.

use time::Date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years};
use xgate_synth::regions::{City, District};
use xgate_synth::{Citizen, Company, Firm, Population, Rng};

/// A term of `years` years that is current on [`REFERENCE_DATE`]: issued
/// no earlier than `earliest` (when the holder came to be) and at least ten
/// days before the reference date; valid until the day before the
/// anniversary.
pub fn current_term(rng: &mut Rng, earliest: Date, years: i32) -> (Date, Date) {
    let latest = add_days(REFERENCE_DATE, -10);
    let from = add_days(add_years(REFERENCE_DATE, -years), 30).max(earliest);
    let issued = rng.date(from.min(latest), latest);
    (issued, add_days(add_years(issued, years), -1))
}

/// A term of `years` years issued between `earliest` and ten days before
/// [`REFERENCE_DATE`], which may have run out.
pub fn any_term(rng: &mut Rng, earliest: Date, years: i32) -> (Date, Date) {
    let latest = add_days(REFERENCE_DATE, -10);
    let issued = rng.date(earliest.min(latest), latest);
    (issued, add_days(add_years(issued, years), -1))
}

/// The company's legal representative.
pub fn representative<'a>(population: &'a Population, firm: &Firm) -> Option<&'a Citizen> {
    usize::try_from(firm.company.legal_representative)
        .ok()
        .and_then(|i| population.citizens.get(i))
}

/// The one-character abbreviation of a city in document numbers
/// (`亳` for `亳州市`, `马` for `马鞍山市`).
pub fn city_abbreviation(city: &City) -> char {
    city.name.chars().next().unwrap_or('皖')
}

/// A department's local office: the city's for an urban district
/// (`亳州市生态环境局`), the county's own otherwise (`涡阳县生态环境局`).
pub fn local_office(city: &City, district: &District, suffix: &str) -> String {
    if district.is_urban() {
        format!("{}{suffix}", city.name)
    } else {
        format!("{}{suffix}", district.name)
    }
}

/// The four-digit court or office code of a district in case numbers
/// (`1602` for `341602`): its GB/T 2260 code without the province.
pub fn district_short_code(district: &District) -> &str {
    district.code.get(2..6).unwrap_or("0000")
}

/// The trade word of a company's name (`建材` in `亳州市恒信建材有限公司`),
/// which says what it does; the short name itself for an unknown trade.
pub fn trade(company: &Company) -> &str {
    trade_of(company.short_name())
}

fn trade_of(short_name: &str) -> &str {
    // Longest first, so `中药材贸易` is not read as `贸易`-something shorter.
    const TRADES: &[&str] = &[
        "中药材贸易",
        "房地产开发",
        "建筑工程",
        "机械制造",
        "电子科技",
        "汽车销售",
        "信息技术",
        "物业管理",
        "农业发展",
        "餐饮管理",
        "科技咨询",
        "建材",
        "药业",
        "食品",
        "商贸",
        "物流",
        "矿业",
    ];
    TRADES
        .iter()
        .find(|t| short_name.ends_with(**t))
        .copied()
        .unwrap_or(short_name)
}

#[cfg(test)]
mod tests {
    use xgate_synth::regions;

    use super::*;

    #[test]
    fn terms_are_current_or_past_and_after_earliest() {
        for index in 0..200 {
            let mut rng = Rng::new("issuing-test", index);
            let earliest = add_years(REFERENCE_DATE, -3);
            let (issued, until) = current_term(&mut rng, earliest, 5);
            assert!(earliest <= issued && issued < REFERENCE_DATE);
            assert!(until >= REFERENCE_DATE, "{until}");
            let recent = add_days(REFERENCE_DATE, -20);
            let (issued, _) = current_term(&mut rng, recent, 5);
            assert!(recent <= issued && issued < REFERENCE_DATE);
            let (issued, until) = any_term(&mut rng, earliest, 1);
            assert!(earliest <= issued && issued < REFERENCE_DATE);
            assert_eq!(until, add_days(add_years(issued, 1), -1));
        }
    }

    #[test]
    fn offices_and_codes() {
        let city = regions::city("亳州市").unwrap();
        let urban = city.district("谯城区").unwrap();
        let county = city.district("涡阳县").unwrap();
        assert_eq!(local_office(city, urban, "水利局"), "亳州市水利局");
        assert_eq!(local_office(city, county, "水利局"), "涡阳县水利局");
        assert_eq!(city_abbreviation(city), '亳');
        assert_eq!(district_short_code(urban), "1602");
    }

    #[test]
    fn trades_are_read_from_short_names() {
        assert_eq!(trade_of("恒信建材"), "建材");
        assert_eq!(trade_of("华康中药材贸易"), "中药材贸易");
        assert_eq!(trade_of("其他"), "其他");
        let population = Population::generate(2, 1);
        assert_eq!(trade(&population.companies[0]), "建材");
    }
}
