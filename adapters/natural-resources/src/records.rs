//! The bureau's records about the synthetic population.
//!
//! Each record type draws from its own stream `Rng::new("natural-resources/<type>", index)`,
//! so the data of one type never shifts when another's generator changes.

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_years, days, iso};
use xgate_synth::regions::{CITIES, City, District};
use xgate_synth::{
    Citizen, Firm, MINING_INDUSTRY, Person, Population, Records, Rng, residential_address, round2,
    street_address, tagged,
};

use crate::db::{
    CONSTRUCTION_LAND_PLANNING_PERMIT, DEPARTMENT, MINING_LICENCE,
    REAL_ESTATE_MORTGAGE_REGISTRATION, REAL_ESTATE_TITLE, STATE_LAND_USE_RIGHT,
};

/// Unified real-estate registration, and with it today's certificate
/// numbers, began on 1 March 2015.
const UNIFIED_REGISTRATION: Date = date!(2015 - 03 - 01);

/// Every record of the bureau, as (record type, record).
pub fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    for person in population.people(DEPARTMENT) {
        let titles = titles(&person);
        for title in &titles {
            let mortgage = mortgage(person.citizen, title);
            out.extend(mortgage.map(tagged(REAL_ESTATE_MORTGAGE_REGISTRATION)));
        }
        out.extend(titles.into_iter().map(|t| (REAL_ESTATE_TITLE, t.record)));
    }
    for firm in population.firms(DEPARTMENT) {
        let parcels = land_use_rights(&firm);
        out.extend(
            planning_permits(&firm, &parcels).map(tagged(CONSTRUCTION_LAND_PLANNING_PERMIT)),
        );
        out.extend(
            parcels
                .into_iter()
                .map(|p| (STATE_LAND_USE_RIGHT, p.record)),
        );
        out.extend(mining_licence(&firm).map(tagged(MINING_LICENCE)));
    }
    out
}

/// The registration authority named in certificate numbers: the county for
/// a county, the city otherwise.
fn authority_name(city: &City, district: &District) -> &'static str {
    if district.is_urban() {
        city.name
    } else {
        district.name
    }
}

/// `皖（2021）亳州市不动产权第0012345号`.
fn title_no(rng: &mut Rng, year: i32, city: &City, district: &District) -> String {
    format!(
        "皖（{year}）{}不动产权第{}号",
        authority_name(city, district),
        rng.digits(7)
    )
}

/// A GB/T 37346 unit number: district code, cadastral area and sub-area,
/// parcel type and number, then the building type and unit.
fn unit_no(rng: &mut Rng, district: &District, parcel: &str, building: &str) -> String {
    format!(
        "{}{}{}{parcel}{}{building}",
        district.code,
        rng.digits(3),
        rng.digits(3),
        rng.digits(5)
    )
}

const VILLAGES: &[&str] = &[
    "王庄", "李楼", "张集", "陈湾", "刘圩", "大王", "新建", "红星", "前进", "和平", "双庙", "高庄",
];

/// A title, with what its mortgage needs to know.
struct Title {
    /// The sample citizen's first title, which always carries a mortgage.
    sample_first: bool,
    certificate_no: String,
    city: &'static City,
    district: &'static District,
    area_m2: f64,
    mortgageable: bool,
    registered: Date,
    record: Value,
}

fn titles(p: &Person) -> Vec<Title> {
    let c = p.citizen;
    let mut rng = p.rng(REAL_ESTATE_TITLE);
    let (sample, home_city, home_district) = (p.sample, p.city, p.district);
    if p.gappy || c.age() < 22 {
        return Vec::new();
    }
    let count = *rng.pick_weighted(&[(0, 35), (1, 45), (2, 15), (3, 5)]);
    let count = if sample { count.max(1) } else { count };
    (0..count)
        .map(|n| {
            // Most people own where they live; some own in another city too.
            let at_home = sample || rng.chance(if n == 0 { 0.85 } else { 0.6 });
            let city = if at_home { home_city } else { rng.pick(CITIES) };
            let district = if at_home && rng.chance(0.6) {
                home_district
            } else {
                rng.pick(city.districts)
            };
            // The sample citizen's first title is a mortgaged flat.
            let usage = if sample && n == 0 {
                "residential"
            } else {
                *rng.pick_weighted(&[
                    ("residential", 80),
                    ("parking", 8),
                    ("commercial", 6),
                    ("office", 4),
                    ("industrial", 2),
                ])
            };
            let nature = match usage {
                "residential" if !(sample && n == 0) => *rng.pick_weighted(&[
                    ("commodity_housing", 75),
                    ("resettlement_housing", 10),
                    ("affordable_housing", 5),
                    ("self_built", 10),
                ]),
                _ => "commodity_housing",
            };
            let area = round2(match usage {
                "residential" if nature == "self_built" => rng.float(90.0, 260.0),
                "residential" => rng.float(55.0, 180.0),
                "parking" => rng.float(12.0, 16.0),
                "commercial" => rng.float(20.0, 200.0),
                "office" => rng.float(40.0, 300.0),
                _ => rng.float(200.0, 2000.0),
            });
            let address = match usage {
                "residential" if nature == "self_built" => format!(
                    "{}{}{}村{}组{}号",
                    city.name,
                    district.name,
                    rng.pick(VILLAGES),
                    rng.range(1, 12),
                    rng.range(1, 80)
                ),
                "residential" => residential_address(&mut rng, city, district),
                "parking" => format!(
                    "{}地下{}层{}号车位",
                    street_address(&mut rng, city, district),
                    if rng.chance(0.7) { "一" } else { "二" },
                    rng.range(1, 600)
                ),
                "commercial" => format!(
                    "{}{}幢{}室",
                    street_address(&mut rng, city, district),
                    rng.range(1, 12),
                    100 + rng.range(1, 30)
                ),
                "office" => format!(
                    "{}{}座{}{:02}室",
                    street_address(&mut rng, city, district),
                    rng.pick(&["A", "B", "C"]),
                    rng.range(2, 30),
                    rng.range(1, 20)
                ),
                _ => format!(
                    "{}{}号厂房",
                    street_address(&mut rng, city, district),
                    rng.range(1, 8)
                ),
            };
            let registered = rng.date(
                UNIFIED_REGISTRATION.max(add_years(c.birth_date, 22)),
                add_days(REFERENCE_DATE, -30),
            );
            let certificate_no = title_no(&mut rng, registered.year(), city, district);
            // Homesteads stand on collective land (JC), the rest on state land (GB).
            let parcel = if nature == "self_built" { "JC" } else { "GB" };
            let building = format!("F{}", rng.digits(8));
            let record = json!({
                "certificate_no": certificate_no,
                "unit_no": unit_no(&mut rng, district, parcel, &building),
                "owner_name": c.name,
                "id_number": c.id_number,
                "address": address,
                "city": city.name,
                "district": district.name,
                "area_m2": area,
                "usage": usage,
                "ownership_type": rng.pick_weighted(&[("sole", 55), ("joint", 40), ("shared", 5)]),
                "property_nature": nature,
                "registration_date": iso(registered),
            });
            Title {
                sample_first: sample && n == 0,
                certificate_no,
                city,
                district,
                area_m2: area,
                mortgageable: nature == "commodity_housing"
                    && matches!(usage, "residential" | "commercial" | "office"),
                registered,
                record,
            }
        })
        .collect()
}

const BANKS: &[&str] = &[
    "中国建设银行股份有限公司",
    "中国工商银行股份有限公司",
    "中国农业银行股份有限公司",
    "中国银行股份有限公司",
    "交通银行股份有限公司",
    "徽商银行股份有限公司",
    "中国邮政储蓄银行股份有限公司",
];

/// A loan secured on a bought flat or shop, registered with the purchase.
fn mortgage(c: &Citizen, title: &Title) -> Option<Value> {
    // One stream per title: the title number keeps titles of one person apart.
    let mut rng = Rng::new(
        &format!(
            "{DEPARTMENT}/{REAL_ESTATE_MORTGAGE_REGISTRATION}/{}",
            title.certificate_no
        ),
        c.index,
    );
    let forced = title.sample_first && title.mortgageable;
    if !title.mortgageable || !(forced || rng.chance(0.45)) {
        return None;
    }
    let registered = add_days(title.registered, days(rng.range(0, 20))).min(REFERENCE_DATE);
    // The sample citizen's loan is long enough to be running today.
    let terms: &[i32] = if forced {
        &[20, 25, 30]
    } else {
        &[10, 15, 20, 25, 30]
    };
    let years = *rng.pick(terms);
    let term_end = add_years(registered, years);
    let paid_off = !forced && rng.chance(0.15);
    let status = if term_end <= REFERENCE_DATE || paid_off {
        "discharged"
    } else {
        "active"
    };
    let price_per_m2 = rng.float(5_000.0, 14_000.0);
    let amount = (title.area_m2 * price_per_m2 * rng.float(0.5, 0.7) / 1_000.0).round() * 1_000.0;
    let branch = if title.district.is_urban() {
        format!("{}分行", title.city.name)
    } else {
        format!("{}支行", title.district.name)
    };
    Some(json!({
        "proof_no": format!(
            "皖（{}）{}不动产证明第{}号",
            registered.year(),
            authority_name(title.city, title.district),
            rng.digits(7)
        ),
        "id_number": c.id_number,
        "mortgagor_name": c.name,
        "mortgagee": format!("{}{branch}", rng.pick(BANKS)),
        "property_certificate_no": title.certificate_no,
        "secured_amount_cny": amount.max(10_000.0),
        "mortgage_type": rng.pick_weighted(&[("general", 90), ("maximum_amount", 10)]),
        "term_start": iso(registered),
        "term_end": iso(term_end),
        "registration_date": iso(registered),
        "status": status,
    }))
}

/// `{district}{road}以东、{road}以北`, how the firm's parcels are located.
fn parcel_location(f: &Firm, rng: &mut Rng) -> String {
    let first = rng.pick(f.city.streets);
    let mut second = rng.pick(f.city.streets);
    if second == first {
        second = rng.pick(f.city.streets);
    }
    let (a, b) = (rng.pick(&["东", "西"]), rng.pick(&["南", "北"]));
    if second == first {
        format!("{}{}{first}{a}侧", f.city.name, f.district.name)
    } else {
        format!(
            "{}{}{first}以{a}、{second}以{b}",
            f.city.name, f.district.name
        )
    }
}

/// The bureau that issues planning permits for the firm's district.
fn planning_bureau(f: &Firm) -> String {
    format!("{}自然资源和规划局", authority_name(f.city, f.district))
}

/// A parcel of state-owned construction land, with what its planning
/// permit needs to know.
struct Parcel {
    location: String,
    area_m2: f64,
    land_use: &'static str,
    transferred: bool,
    term_start: Date,
    registered: Date,
    record: Value,
}

fn land_use_rights(f: &Firm) -> Vec<Parcel> {
    let c = f.company;
    let mut rng = f.rng(STATE_LAND_USE_RIGHT);
    let rate = match c.industry.as_str() {
        "制造业" | MINING_INDUSTRY => 0.55,
        "房地产业" => 0.5,
        "交通运输、仓储和邮政业" => 0.4,
        "农、林、牧、渔业" => 0.2,
        _ => 0.1,
    };
    if !(f.sample || rng.chance(rate)) {
        return Vec::new();
    }
    let count = rng.range(1, 3);
    (0..count)
        .map(|n| {
            let land_use = match c.industry.as_str() {
                "制造业" | MINING_INDUSTRY => "industrial",
                "房地产业" if c.name.contains("房地产") => {
                    *rng.pick(&["residential", "commercial"])
                }
                "交通运输、仓储和邮政业" => "storage",
                _ => "commercial",
            };
            let method = if f.sample && n == 0 {
                "transfer"
            } else {
                *rng.pick_weighted(&[("transfer", 85), ("lease", 10), ("allocation", 5)])
            };
            let area = round2(match land_use {
                "industrial" => rng.float(5_000.0, 80_000.0),
                "residential" => rng.float(10_000.0, 100_000.0),
                "storage" => rng.float(8_000.0, 60_000.0),
                _ => rng.float(2_000.0, 30_000.0),
            });
            // Statutory maximum terms of transferred land; leases run shorter.
            let years = match (method, land_use) {
                ("lease", _) => Some(20),
                ("allocation", _) => None,
                (_, "residential") => Some(70),
                (_, "commercial") => Some(40),
                _ => Some(50),
            };
            let term_start = rng.date(c.established, add_days(REFERENCE_DATE, -60));
            let registered = rng.date(
                term_start.max(UNIFIED_REGISTRATION),
                add_days(REFERENCE_DATE, -30),
            );
            let location = parcel_location(f, &mut rng);
            let record = json!({
                "certificate_no": title_no(&mut rng, registered.year(), f.city, f.district),
                "uscc": c.uscc,
                "holder_name": c.name,
                "unit_no": unit_no(&mut rng, f.district, "GB", "W00000000"),
                "location": location,
                "city": f.city.name,
                "land_area_m2": area,
                "land_use": land_use,
                "acquisition_method": method,
                "term_start": iso(term_start),
                "term_end": years.map(|y| iso(add_years(term_start, y))),
                "registration_date": iso(registered),
            });
            Parcel {
                location,
                area_m2: area,
                land_use,
                transferred: method == "transfer",
                term_start,
                registered,
                record,
            }
        })
        .collect()
}

/// Permits for building on transferred parcels, issued after the land
/// contract and before registration.
fn planning_permits<'a>(f: &'a Firm, parcels: &'a [Parcel]) -> impl Iterator<Item = Value> + 'a {
    let mut rng = f.rng(CONSTRUCTION_LAND_PLANNING_PERMIT);
    parcels.iter().enumerate().filter_map(move |(n, parcel)| {
        let forced = f.sample && n == 0;
        if !parcel.transferred || !(forced || rng.chance(0.7)) {
            return None;
        }
        let issued = add_days(parcel.term_start, days(rng.range(10, 90))).min(parcel.registered);
        let short = f.company.short_name();
        let project = match parcel.land_use {
            "industrial" => format!("{short}生产基地建设项目"),
            "residential" => format!(
                "{short}{}住宅小区项目",
                rng.pick(&["花园", "华府", "名苑", "雅居"])
            ),
            "storage" => format!("{short}仓储物流园项目"),
            _ => format!("{short}商业综合体项目"),
        };
        Some(json!({
            "permit_no": format!("地字第{}{}{}号", f.district.code, issued.year(), rng.digits(5)),
            "uscc": f.company.uscc,
            "holder_name": f.company.name,
            "project_name": project,
            "location": parcel.location,
            "city": f.city.name,
            "land_area_m2": parcel.area_m2,
            "land_use": parcel.land_use,
            "issuing_authority": planning_bureau(f),
            "issue_date": iso(issued),
        }))
    })
}

/// A mineral, how it is mined, its output range (10 kt a year), and whether
/// the province rather than the city licenses it.
struct Mineral {
    name: &'static str,
    method: &'static str,
    scale: (f64, f64),
    provincial: bool,
}

const COAL: Mineral = Mineral {
    name: "煤",
    method: "underground",
    scale: (30.0, 300.0),
    provincial: true,
};
const COPPER: Mineral = Mineral {
    name: "铜矿",
    method: "underground",
    scale: (5.0, 60.0),
    provincial: true,
};
const IRON: Mineral = Mineral {
    name: "铁矿",
    method: "open_pit",
    scale: (20.0, 200.0),
    provincial: true,
};
const AGGREGATES: &[Mineral] = &[
    Mineral {
        name: "建筑石料用灰岩",
        method: "open_pit",
        scale: (10.0, 150.0),
        provincial: false,
    },
    Mineral {
        name: "水泥用灰岩",
        method: "open_pit",
        scale: (50.0, 300.0),
        provincial: true,
    },
    Mineral {
        name: "建筑用砂",
        method: "open_pit",
        scale: (5.0, 50.0),
        provincial: false,
    },
];

fn mining_licence(f: &Firm) -> Option<Value> {
    let c = f.company;
    let mut rng = f.rng(MINING_LICENCE);
    if !(f.sample || (c.industry == MINING_INDUSTRY && rng.chance(0.9))) {
        return None;
    }
    // What is mined where: coal around Huainan and Huaibei, copper in
    // Tongling, iron in Ma'anshan, building stone anywhere.
    let mineral = match f.city.name {
        "淮南市" | "淮北市" if !f.sample => &COAL,
        "铜陵市" if !f.sample => &COPPER,
        "马鞍山市" if !f.sample => &IRON,
        _ => rng.pick(AGGREGATES),
    };
    let years = if mineral.name == "煤" {
        30
    } else {
        i32::try_from(rng.range(3, 11)).unwrap_or(5)
    };
    let earliest = if f.sample {
        add_years(REFERENCE_DATE, -years + 1)
    } else {
        date!(2005 - 01 - 01)
    };
    let valid_from = rng.date(earliest.max(c.established), add_days(REFERENCE_DATE, -60));
    let issuing_authority = if mineral.provincial {
        "安徽省自然资源厅".to_owned()
    } else {
        planning_bureau(f)
    };
    let (lo, hi) = mineral.scale;
    Some(json!({
        "licence_no": format!("C{}{}{}", f.district.code, valid_from.year(), rng.digits(12)),
        "uscc": c.uscc,
        "holder_name": c.name,
        "mine_name": format!("{}{}{}矿", c.name, f.district.name, mineral.name.trim_end_matches('矿')),
        "mineral": mineral.name,
        "mining_method": mineral.method,
        "production_scale_kt_per_year": (rng.float(lo, hi) * 10.0).round() / 10.0,
        "mining_area_km2": (rng.float(0.05, 15.0) * 10_000.0).round() / 10_000.0,
        "valid_from": iso(valid_from),
        "valid_until": iso(add_years(valid_from, years)),
        "issuing_authority": issuing_authority,
    }))
}

#[cfg(test)]
mod tests {
    use xgate_synth::regions;

    use super::*;

    #[test]
    fn certificate_numbers_name_the_registering_authority() {
        let bozhou = regions::city("亳州市").unwrap();
        let mut rng = Rng::new("numbers", 0);
        let urban = title_no(&mut rng, 2021, bozhou, bozhou.district("谯城区").unwrap());
        assert!(urban.starts_with("皖（2021）亳州市不动产权第") && urban.ends_with('号'));
        let county = title_no(&mut rng, 2021, bozhou, bozhou.district("涡阳县").unwrap());
        assert!(county.starts_with("皖（2021）涡阳县不动产权第"));
        let unit = unit_no(
            &mut rng,
            bozhou.district("谯城区").unwrap(),
            "GB",
            "F00010502",
        );
        assert_eq!(unit.len(), 28);
        assert!(unit.starts_with("341602") && unit.ends_with("F00010502"));
    }
}
