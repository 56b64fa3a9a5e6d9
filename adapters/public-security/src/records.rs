//! The bureau's records about the synthetic population.
//!
//! Each record type draws from its own stream `Rng::new("public-security/<type>", index)`,
//! so the data of one type never shifts when another's generator changes.

use std::collections::HashSet;

use serde_json::{Value, json};
use time::Date;
use time::macros::date;
use xgate_synth::dates::{REFERENCE_DATE, add_days, add_months, add_years, age_on, days, iso};
use xgate_synth::regions::{CITIES, PROVINCE, public_security_bureau};
use xgate_synth::{Gender, Person, Population, Records, Rng, family, residential_address, tagged};

use crate::db::{
    DEPARTMENT, DRIVING_LICENCE, EXIT_ENTRY_RECORD, HOUSEHOLD_REGISTRATION,
    MOTOR_VEHICLE_REGISTRATION, NO_CRIMINAL_RECORD_CERTIFICATE, RESIDENCE_PERMIT,
    RESIDENT_IDENTITY_CARD,
};

/// Every record of the bureau, as (record type, record).
pub fn generate(population: &Population) -> Records {
    let mut out = Vec::new();
    let mut plates = HashSet::new();
    let families = family::families(population);
    for person in population.people(DEPARTMENT) {
        let family = families
            .get(person.citizen.index as usize)
            .copied()
            .unwrap_or_default();
        let id_of = |index: Option<u32>| {
            index
                .and_then(|i| population.citizens.get(i as usize))
                .map(|c| c.id_number.clone())
        };
        let kin = Kin {
            father: id_of(family.father),
            mother: id_of(family.mother),
            guardian: id_of(family.guardian),
        };
        out.push((RESIDENT_IDENTITY_CARD, identity_card(&person)));
        out.push((
            HOUSEHOLD_REGISTRATION,
            household_registration(&person, &kin),
        ));
        out.extend(residence_permit(&person).map(tagged(RESIDENCE_PERMIT)));
        out.extend(
            no_criminal_record_certificates(&person)
                .into_iter()
                .map(tagged(NO_CRIMINAL_RECORD_CERTIFICATE)),
        );
        let licence = driving_licence(&person);
        let vehicles = licence
            .as_ref()
            .map(|l| vehicles(&person, l, &mut plates))
            .unwrap_or_default();
        out.extend(licence.map(|l| (DRIVING_LICENCE, l.record)));
        out.extend(vehicles.into_iter().map(tagged(MOTOR_VEHICLE_REGISTRATION)));
        out.extend(
            exit_entry_records(&person)
                .into_iter()
                .map(tagged(EXIT_ENTRY_RECORD)),
        );
    }
    out
}

/// GB 11643 validity of a card issued at `age`: 5, 10 or 20 years, or long-term from 46.
fn identity_card_years(age: u32) -> Option<i32> {
    match age {
        0..=15 => Some(5),
        16..=25 => Some(10),
        26..=45 => Some(20),
        _ => None,
    }
}

fn identity_card(p: &Person) -> Value {
    let c = p.citizen;
    let mut rng = p.rng(RESIDENT_IDENTITY_CARD);
    // Second-generation cards were issued from 2004; each is renewed shortly
    // before it expires, so follow the chain up to the card in use today.
    let rollout = rng.date(date!(2004 - 01 - 01), date!(2008 - 12 - 31));
    let mut valid_from = p.birthday(16).max(rollout);
    let valid_until = loop {
        let Some(years) = identity_card_years(age_on(c.birth_date, valid_from)) else {
            break None;
        };
        let until = add_years(valid_from, years);
        if until > REFERENCE_DATE {
            break Some(until);
        }
        valid_from = add_days(until, -days(rng.range(0, 60)));
    };
    json!({
        "id_number": c.id_number,
        "name": c.name,
        "gender": c.gender.as_str(),
        "ethnicity": c.ethnicity,
        "birth_date": iso(c.birth_date),
        "address": c.address,
        "issuing_authority": public_security_bureau(p.city, p.district),
        "valid_from": iso(valid_from),
        "valid_until": valid_until.map(iso),
    })
}

const POLICE_STATIONS: &[&str] = &[
    "城关",
    "城东",
    "城西",
    "城南",
    "城北",
    "新华",
    "人民路",
    "花园",
    "东关",
    "西关",
    "站前",
    "开发区",
];

/// The resident IDs of a citizen's parents and guardian, from
/// [`family::families`]; `None` for someone outside the population.
struct Kin {
    father: Option<String>,
    mother: Option<String>,
    guardian: Option<String>,
}

fn household_registration(p: &Person, kin: &Kin) -> Value {
    let c = p.citizen;
    let mut rng = p.rng(HOUSEHOLD_REGISTRATION);
    let collective = !p.sample && rng.chance(0.05);
    let relationship = if collective {
        "other"
    } else if c.age() >= 30 {
        let parent = if c.gender == Gender::Male {
            "father"
        } else {
            "mother"
        };
        *rng.pick_weighted(&[("head", 50), ("spouse", 38), (parent, 7), ("other", 5)])
    } else {
        let child = if c.gender == Gender::Male {
            "son"
        } else {
            "daughter"
        };
        *rng.pick_weighted(&[(child, 75), ("head", 20), ("grandchild", 5)])
    };
    let native_city = if rng.chance(0.85) {
        p.city
    } else {
        rng.pick(CITIES)
    };
    // Registered at birth, or when moving in as an adult; the present
    // register dates from 1958.
    let registered = if rng.chance(0.6) {
        add_days(c.birth_date, days(rng.range(7, 60)))
    } else {
        rng.date(p.birthday(18), add_days(REFERENCE_DATE, -30))
    };
    let bureau = public_security_bureau(p.city, p.district);
    json!({
        "id_number": c.id_number,
        "name": c.name,
        "household_no": rng.digits(9),
        "household_type": if collective { "collective" } else { "family" },
        "relationship_to_head": relationship,
        "father_id_number": kin.father,
        "mother_id_number": kin.mother,
        "guardian_id_number": kin.guardian,
        "registered_address": c.address,
        "native_place": format!("{PROVINCE}{}", native_city.name),
        "police_station": format!("{bureau}{}派出所", rng.pick(POLICE_STATIONS)),
        "registration_date": iso(registered.max(date!(1958 - 01 - 09))),
        "status": "active",
    })
}

/// A permit for living in another Anhui city than the household registration.
fn residence_permit(p: &Person) -> Option<Value> {
    let c = p.citizen;
    let mut rng = p.rng(RESIDENCE_PERMIT);
    let holds = p.sample || (!p.gappy && (18..=60).contains(&c.age()) && rng.chance(0.12));
    if !holds {
        return None;
    }
    let city = loop {
        let city = rng.pick(CITIES);
        if city.name != p.city.name {
            break city;
        }
    };
    let district = rng.pick(city.districts);
    // Signed for one year at a time; the sample citizen's is current.
    let earliest = if p.sample { 330 } else { 4 * 365 };
    let valid_from = rng.date(
        add_days(REFERENCE_DATE, -earliest).max(p.birthday(18)),
        add_days(REFERENCE_DATE, -30),
    );
    let valid_until = add_years(valid_from, 1);
    let status = if valid_until >= REFERENCE_DATE {
        "valid"
    } else if rng.chance(0.1) {
        "cancelled"
    } else {
        "expired"
    };
    Some(json!({
        "id_number": c.id_number,
        "name": c.name,
        "permit_no": format!("{}{}{}", district.code, valid_from.year(), rng.digits(8)),
        "residence_address": format!("{PROVINCE}{}", residential_address(&mut rng, city, district)),
        "residence_city": city.name,
        "issuing_authority": public_security_bureau(city, district),
        "valid_from": iso(valid_from),
        "valid_until": iso(valid_until),
        "status": status,
    }))
}

fn no_criminal_record_certificates(p: &Person) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(NO_CRIMINAL_RECORD_CERTIFICATE);
    let holds = p.sample || p.gappy || (c.age() >= 18 && rng.chance(0.3));
    if !holds {
        return Vec::new();
    }
    let count = if rng.chance(0.2) { 2 } else { 1 };
    let mut issued: Vec<Date> = (0..count)
        .map(|_| {
            rng.date(
                add_years(REFERENCE_DATE, -2).max(p.birthday(18)),
                REFERENCE_DATE,
            )
        })
        .collect();
    if p.sample {
        // One still valid (a certificate is good for three months).
        issued.push(rng.date(add_days(REFERENCE_DATE, -60), REFERENCE_DATE));
    }
    issued.sort();
    let city_stem = p.city.name.trim_end_matches('市');
    issued
        .into_iter()
        .map(|issue_date| {
            let record = !p.sample && !p.gappy && rng.chance(0.02);
            let purpose = rng.pick_weighted(&[
                ("employment", 60),
                ("study_abroad", 10),
                ("immigration", 5),
                ("qualification", 20),
                ("other", 5),
            ]);
            json!({
                "certificate_no": format!(
                    "皖公（{city_stem}）无犯证字〔{}〕第{}号", issue_date.year(), rng.digits(6)
                ),
                "id_number": c.id_number,
                "name": c.name,
                "has_criminal_record": record,
                "purpose": purpose,
                "issuing_authority": public_security_bureau(p.city, p.district),
                "issue_date": iso(issue_date),
                "valid_until": iso(add_months(issue_date, 3)),
            })
        })
        .collect()
}

struct Licence {
    class: &'static str,
    first_issue: Date,
    record: Value,
}

fn driving_licence(p: &Person) -> Option<Licence> {
    let c = p.citizen;
    let mut rng = p.rng(DRIVING_LICENCE);
    let rate = if c.age() < 70 { 0.6 } else { 0.15 };
    let holds = p.sample || p.gappy || (c.age() >= 18 && rng.chance(rate));
    if !holds {
        return None;
    }
    let class = if p.sample || p.gappy {
        "C1"
    } else {
        *rng.pick_weighted(&[
            ("C1", 70),
            ("C2", 10),
            ("B2", 6),
            ("A2", 3),
            ("A1", 2),
            ("B1", 2),
            ("D", 5),
            ("E", 2),
        ])
    };
    let first_issue = rng.date(
        p.birthday(18).max(date!(1990 - 01 - 01)),
        add_days(REFERENCE_DATE, -60),
    );
    // Six years, then ten, then long-term.
    let mut valid_from = first_issue;
    let mut renewals = 0;
    let valid_until = loop {
        let years = match renewals {
            0 => 6,
            1 => 10,
            _ => break None,
        };
        let until = add_years(valid_from, years);
        if until > REFERENCE_DATE {
            break Some(until);
        }
        valid_from = add_days(until, -days(rng.range(0, 90)));
        renewals += 1;
    };
    let status = if p.sample || p.gappy {
        "valid"
    } else {
        *rng.pick_weighted(&[("valid", 96), ("suspended", 3), ("revoked", 1)])
    };
    let points = match status {
        "suspended" => 12,
        _ if rng.chance(0.7) => 0,
        _ => rng.range(1, 12),
    };
    let record = json!({
        "id_number": c.id_number,
        "name": c.name,
        // The city's four-digit region prefix, then a serial.
        "file_no": format!("{}{}", p.district.code.get(..4).unwrap_or("3400"), rng.digits(8)),
        "licence_class": class,
        "first_issue_date": iso(first_issue),
        "valid_from": iso(valid_from),
        "valid_until": valid_until.map(iso),
        "issuing_authority": format!("{PROVINCE}{}公安局交通警察支队", p.city.name),
        "penalty_points": points,
        "status": status,
    });
    Some(Licence {
        class,
        first_issue,
        record,
    })
}

/// A vehicle model: brand and model, vehicle type, fuel, and the maker's
/// world manufacturer identifier.
struct Model {
    name: &'static str,
    vehicle_type: &'static str,
    fuel: &'static str,
    wmi: &'static str,
}

const MODELS: &[Model] = &[
    model("大众牌SVW7155LSD", "small_passenger_car", "petrol", "LSV"),
    model("丰田牌TV7180BEV", "small_passenger_car", "petrol", "LFM"),
    model("本田牌HG7152ABCAN", "small_passenger_car", "petrol", "LHG"),
    model(
        "比亚迪牌BYD7152WT6HEVC",
        "small_passenger_car",
        "hybrid",
        "LGX",
    ),
    model(
        "比亚迪牌BYD7005BEV2",
        "small_passenger_car",
        "electric",
        "LGX",
    ),
    model("吉利牌MR7152D11", "small_passenger_car", "petrol", "L6T"),
    model("长安牌SC6469HAB6", "small_passenger_car", "petrol", "LS5"),
    model("奇瑞牌SQR6471T1T6", "small_passenger_car", "petrol", "LVV"),
    model("江淮牌HFC6483A1C8V", "small_passenger_car", "petrol", "LJ1"),
    model(
        "蔚来牌HFC6502ECEV-W",
        "small_passenger_car",
        "electric",
        "LJ1",
    ),
    model("五菱牌LZW6447NF", "small_passenger_car", "petrol", "LZW"),
    model("江淮牌HFC1041P73K1C3V", "light_truck", "diesel", "LJ1"),
    model("福田牌BJ1048V9JD6-FA", "light_truck", "diesel", "LVB"),
    model("解放牌CA4250P66K24T1A1E5", "heavy_truck", "diesel", "LFW"),
    model("宇通牌ZK6117HQ5Y", "large_passenger_car", "diesel", "LZY"),
    model("豪爵牌HJ125-23", "motorcycle", "petrol", "LC6"),
];

const fn model(
    name: &'static str,
    vehicle_type: &'static str,
    fuel: &'static str,
    wmi: &'static str,
) -> Model {
    Model {
        name,
        vehicle_type,
        fuel,
        wmi,
    }
}

/// Vehicle types a licence class may drive.
fn drivable(class: &str, vehicle_type: &str) -> bool {
    match class {
        "D" | "E" => vehicle_type == "motorcycle",
        "A1" | "B1" => vehicle_type != "motorcycle" && vehicle_type != "heavy_truck",
        "A2" | "B2" => vehicle_type != "motorcycle" && vehicle_type != "large_passenger_car",
        _ => vehicle_type == "small_passenger_car" || vehicle_type == "light_truck",
    }
}

const COLOURS: &[(&str, u32)] = &[
    ("白", 30),
    ("黑", 25),
    ("灰", 15),
    ("银", 12),
    ("蓝", 8),
    ("红", 6),
    ("棕", 4),
];

fn vehicles(p: &Person, licence: &Licence, plates: &mut HashSet<String>) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(MOTOR_VEHICLE_REGISTRATION);
    if p.gappy {
        return Vec::new();
    }
    let count = *rng.pick_weighted(&[(0, 50), (1, 38), (2, 12)]);
    let count = if p.sample { count.max(1) } else { count };
    let models: Vec<&Model> = MODELS
        .iter()
        .filter(|m| drivable(licence.class, m.vehicle_type))
        .collect();
    if models.is_empty() {
        return Vec::new();
    }
    let mut registered: Vec<Date> = (0..count)
        .map(|_| {
            rng.date(
                licence.first_issue.max(date!(2005 - 01 - 01)),
                add_days(REFERENCE_DATE, -30),
            )
        })
        .collect();
    registered.sort();
    registered
        .into_iter()
        .enumerate()
        .map(|(n, registration_date)| {
            let model = *rng.pick(&models);
            let plate = loop {
                let plate = plate_number(&mut rng, p.city.plate_letter, model.fuel == "electric");
                if plates.insert(plate.clone()) {
                    break plate;
                }
            };
            let status = if p.sample && n == 0 {
                "normal"
            } else {
                *rng.pick_weighted(&[
                    ("normal", 86),
                    ("mortgaged", 12),
                    ("seized", 1),
                    ("scrapped", 1),
                ])
            };
            json!({
                "id_number": c.id_number,
                "owner_name": c.name,
                "certificate_no": format!("34{}", rng.digits(10)),
                "plate_number": plate,
                "vehicle_type": model.vehicle_type,
                "brand_model": model.name,
                "vin": vin(&mut rng, model.wmi, registration_date.year()),
                "color": rng.pick_weighted(COLOURS),
                "fuel_type": model.fuel,
                "registration_date": iso(registration_date),
                "status": status,
            })
        })
        .collect()
}

/// Plate letters: no `I` or `O`, which read as digits.
const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// `皖S12345`, `皖SA3B56`; new-energy plates are `皖SD12345`.
fn plate_number(rng: &mut Rng, city_letter: char, new_energy: bool) -> String {
    let mut plate = format!("皖{city_letter}");
    if new_energy {
        plate.push(if rng.chance(0.8) { 'D' } else { 'F' });
        plate.push_str(&rng.digits(5));
        return plate;
    }
    for position in 0..5 {
        // Up to two letters, never in the last place.
        let letters_so_far = plate
            .chars()
            .skip(2)
            .filter(char::is_ascii_uppercase)
            .count();
        if position < 4 && letters_so_far < 2 && rng.chance(0.2) {
            plate.push(char::from(*rng.pick(PLATE_LETTERS)));
        } else {
            plate.push_str(&rng.digits(1));
        }
    }
    plate
}

/// VIN characters: no `I`, `O` or `Q`.
const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
/// Model-year codes, 1980 = `A`, repeating every 30 years.
const VIN_YEARS: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// ISO 3779 / GB 16735 transliteration of a VIN character.
fn vin_value(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A'..=b'H' => u32::from(c - b'A') + 1,
        b'J'..=b'N' => u32::from(c - b'J') + 1,
        b'P' => 7,
        b'R' => 9,
        b'S'..=b'Z' => u32::from(c - b'S') + 2,
        _ => 0,
    }
}

/// A 17-character VIN with the model year and a valid check digit in place 9.
fn vin(rng: &mut Rng, wmi: &str, year: i32) -> String {
    let year_index = usize::try_from((year - 1980).rem_euclid(30)).unwrap_or(0);
    let year_code = VIN_YEARS.get(year_index).copied().unwrap_or(b'A');
    let mut chars: Vec<u8> = wmi.bytes().collect();
    chars.extend((0..5).map(|_| *rng.pick(VIN_CHARS)));
    chars.push(b'0');
    chars.push(year_code);
    chars.push(*rng.pick(VIN_CHARS));
    chars.extend(rng.digits(6).bytes());
    let sum: u32 = chars
        .iter()
        .zip(VIN_WEIGHTS)
        .map(|(c, w)| vin_value(*c) * w)
        .sum();
    let check = match sum % 11 {
        10 => b'X',
        d => b'0' + u8::try_from(d).unwrap_or(0),
    };
    if let Some(slot) = chars.get_mut(8) {
        *slot = check;
    }
    String::from_utf8_lossy(&chars).into_owned()
}

/// Destinations: country or region, travel document, weight.
const DESTINATIONS: &[((&str, &str), u32)] = &[
    (("日本", "passport"), 15),
    (("韩国", "passport"), 10),
    (("泰国", "passport"), 15),
    (("新加坡", "passport"), 8),
    (("马来西亚", "passport"), 6),
    (("美国", "passport"), 6),
    (("澳大利亚", "passport"), 4),
    (("德国", "passport"), 3),
    (("中国香港", "hk_macao_permit"), 15),
    (("中国澳门", "hk_macao_permit"), 8),
    (("中国台湾", "taiwan_permit"), 2),
];

/// Ports with the carriers that serve them; land ports are crossed on foot.
const AIRPORTS: &[(&str, &[&str])] = &[
    ("上海浦东国际机场", &["MU", "FM", "HO", "CA"]),
    ("合肥新桥国际机场", &["MU", "CA", "3U"]),
    ("南京禄口国际机场", &["MU", "CZ", "JD"]),
    ("北京首都国际机场", &["CA", "HU"]),
    ("广州白云国际机场", &["CZ"]),
];
const HONG_KONG_LAND_PORTS: &[&str] = &["深圳湾口岸", "罗湖口岸", "福田口岸"];
const MACAO_LAND_PORTS: &[&str] = &["拱北口岸", "横琴口岸", "港珠澳大桥珠海公路口岸"];

fn exit_entry_records(p: &Person) -> Vec<Value> {
    let c = p.citizen;
    let mut rng = p.rng(EXIT_ENTRY_RECORD);
    let travels = p.sample || (!p.gappy && c.age() >= 18 && rng.chance(0.15));
    if !travels {
        return Vec::new();
    }
    let passport = format!("E{}", rng.digits(8));
    let permit = format!("C{}", rng.digits(8));
    let taiwan_permit = format!("L{}", rng.digits(8));
    // Non-overlapping trips: one in each equal slice of the last six years.
    let start = add_years(REFERENCE_DATE, -6).max(p.birthday(18));
    let end = add_days(REFERENCE_DATE, -10);
    let trips = rng.range(1, 4);
    let slice = u64::try_from((end - start).whole_days()).unwrap_or(0) / trips;
    let mut records = Vec::new();
    for trip in 0..trips {
        let exit = add_days(start, days(trip * slice + rng.range(0, slice / 2)));
        let length = rng.range(3, (slice / 2).clamp(4, 31));
        let entry = add_days(exit, days(length));
        let (region, document) = *rng.pick_weighted(DESTINATIONS);
        let document_no = match document {
            "hk_macao_permit" => &permit,
            "taiwan_permit" => &taiwan_permit,
            _ => &passport,
        };
        let land_ports = match region {
            "中国香港" => HONG_KONG_LAND_PORTS,
            "中国澳门" => MACAO_LAND_PORTS,
            _ => &[],
        };
        let (port, carrier) = if !land_ports.is_empty() && rng.chance(0.6) {
            (*rng.pick(land_ports), None)
        } else {
            let (port, carriers) = rng.pick(AIRPORTS);
            (*port, Some(*rng.pick(carriers)))
        };
        for (direction, day) in [("exit", exit), ("entry", entry)] {
            if day > REFERENCE_DATE {
                // Still abroad.
                continue;
            }
            let flight = carrier.map_or_else(
                || "徒步".to_owned(),
                |carrier| format!("{carrier}{}", rng.range(501, 9000)),
            );
            records.push(json!({
                "id_number": c.id_number,
                "name": c.name,
                "direction": direction,
                "crossing_date": iso(day),
                "port": port,
                "country_or_region": region,
                "document_type": document,
                "document_no": document_no,
                "flight_or_vehicle": flight,
            }));
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_card_validity_follows_age_at_issue() {
        assert_eq!(identity_card_years(15), Some(5));
        assert_eq!(identity_card_years(16), Some(10));
        assert_eq!(identity_card_years(25), Some(10));
        assert_eq!(identity_card_years(26), Some(20));
        assert_eq!(identity_card_years(45), Some(20));
        assert_eq!(identity_card_years(46), None);
    }

    #[test]
    fn vin_check_digit_matches_iso_3779() {
        // The worked example of ISO 3779 / 49 CFR 565: 1M8GDM9AXKP042788.
        let body: Vec<u8> = b"1M8GDM9A_KP042788".to_vec();
        let sum: u32 = body
            .iter()
            .zip(VIN_WEIGHTS)
            .map(|(c, w)| vin_value(*c) * w)
            .sum();
        assert_eq!(sum % 11, 10);
        let mut rng = Rng::new("vin", 0);
        for year in [2005, 2016, 2026] {
            let vin = vin(&mut rng, "LSV", year);
            assert_eq!(vin.len(), 17);
            let sum: u32 = vin
                .bytes()
                .zip(VIN_WEIGHTS)
                .map(|(c, w)| vin_value(c) * w)
                .sum();
            let expected = match sum % 11 {
                10 => 'X',
                d => char::from_digit(d, 10).unwrap(),
            };
            assert_eq!(vin.chars().nth(8), Some(expected), "{vin}");
        }
        assert_eq!(vin(&mut rng, "LSV", 2026).as_bytes()[9], b'T');
        assert_eq!(vin(&mut rng, "LSV", 2009).as_bytes()[9], b'9');
    }

    #[test]
    fn plates_have_the_city_letter_and_at_most_two_letters() {
        let mut rng = Rng::new("plates", 0);
        for _ in 0..200 {
            let plate = plate_number(&mut rng, 'S', false);
            assert!(plate.starts_with("皖S"));
            let tail: Vec<char> = plate.chars().skip(2).collect();
            assert_eq!(tail.len(), 5);
            assert!(tail.iter().filter(|c| c.is_ascii_uppercase()).count() <= 2);
            assert!(tail[4].is_ascii_digit());
        }
        let electric = plate_number(&mut rng, 'A', true);
        assert_eq!(electric.chars().count(), 8);
    }

    #[test]
    fn licence_classes_limit_vehicle_types() {
        assert!(drivable("C1", "small_passenger_car") && drivable("C1", "light_truck"));
        assert!(!drivable("C1", "heavy_truck") && !drivable("C1", "motorcycle"));
        assert!(drivable("D", "motorcycle") && !drivable("D", "small_passenger_car"));
        assert!(drivable("A2", "heavy_truck") && drivable("A1", "large_passenger_car"));
    }
}
