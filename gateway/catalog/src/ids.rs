//! Validation of subject identifiers.
//!
//! - GB 11643-1999 citizen resident identity numbers: 17 digits (6 region code, 8 birth date
//!   `YYYYMMDD`, 3 sequence) and a mod-11 check character, `0`-`9` or `X`. The birth date must
//!   be a real calendar date from 1800-01-01 to today: the standard sets no floor, and death
//!   and household records carry people born in the nineteenth century.
//! - GB 32100-2015 unified social credit codes (USCC): 18 characters over a 31-character
//!   alphabet (digits and upper-case letters without `I`, `O`, `S`, `V`, `Z`), the last one a
//!   mod-31 check character.
//!
//! Both are accepted in upper case only: the wire format says so, and accepting `x` here would
//! let two spellings of one person reach caches, audit records and policies. A lower-case
//! character gets its own message so a caller sees at once what to fix.

use thiserror::Error;
use time::{Date, Month, OffsetDateTime, macros::offset};

use crate::SubjectKind;

/// Length of both identifiers, in characters.
const ID_LEN: usize = 18;

/// The first year of birth accepted in a resident id. GB 11643 sets none; historical records
/// (deaths, household registers) name people born in the 1800s, and an earlier date is more
/// likely a typing error than a person.
pub const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// GB 11643-1999 weights of the first 17 digits (2^(18-i) mod 11).
const RESIDENT_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by the weighted sum mod 11.
const RESIDENT_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// GB 32100-2015 alphabet; a character's value is its index.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100-2015 weights of the first 17 characters (3^(i-1) mod 31).
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why an identifier was rejected. The messages are shown verbatim to callers.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IdError {
    /// The identifier is not 18 characters long.
    #[error("{} must be 18 characters, got {got}", kind_label(*.kind))]
    Length {
        /// Which identifier was expected.
        kind: SubjectKind,
        /// The number of characters given.
        got: usize,
    },
    /// One of the first 17 characters of a resident id is not an ASCII digit.
    #[error("character {position} (`{}`) is not a digit", .found.escape_debug())]
    NotDigit {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The 18th character of a resident id is neither a digit nor `X`.
    #[error("character 18 (`{}`) is not a digit or `X`", .found.escape_debug())]
    NotCheckCharacter {
        /// The offending character.
        found: char,
    },
    /// A character of a USCC is outside its 31-character alphabet.
    #[error("character {position} (`{}`) is not in the uscc alphabet", .found.escape_debug())]
    NotInUsccAlphabet {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// A letter that would be valid in upper case was given in lower case.
    #[error("character {position} (`{found}`) must be upper case")]
    LowerCase {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// Characters 7-14 of a resident id are not a calendar date.
    #[error("birth date `{date}` is not a real date")]
    NotADate {
        /// The eight digits as given.
        date: String,
    },
    /// The birth date is before [`EARLIEST_BIRTH_YEAR`]-01-01.
    #[error("birth date `{date}` is before 1800-01-01")]
    DateTooEarly {
        /// The eight digits as given.
        date: String,
    },
    /// The birth date is after today (China Standard Time).
    #[error("birth date `{date}` is in the future")]
    DateInFuture {
        /// The eight digits as given.
        date: String,
    },
    /// The check character does not match the first 17 characters.
    #[error("check character is `{found}`, expected `{expected}`")]
    CheckMismatch {
        /// The check character given.
        found: char,
        /// The check character computed from the first 17.
        expected: char,
    },
}

fn kind_label(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::ResidentId => "resident id",
        SubjectKind::Uscc => "uscc",
    }
}

/// Validates `id` as an identifier of the given kind.
pub fn validate(kind: SubjectKind, id: &str) -> Result<(), IdError> {
    match kind {
        SubjectKind::ResidentId => validate_resident_id(id),
        SubjectKind::Uscc => validate_uscc(id),
    }
}

/// Validates a GB 11643-1999 resident identity number (upper-case `X` only).
///
/// The birth date must lie between 1800-01-01 and today in China Standard Time (UTC+8), where
/// the numbers are issued, so a baby registered just after midnight in Beijing is accepted.
pub fn validate_resident_id(id: &str) -> Result<(), IdError> {
    validate_resident_id_on(id, today_in_china())
}

fn today_in_china() -> Date {
    OffsetDateTime::now_utc().to_offset(offset!(+8)).date()
}

fn validate_resident_id_on(id: &str, today: Date) -> Result<(), IdError> {
    check_length(SubjectKind::ResidentId, id)?;
    let mut last = '\0';
    for (index, c) in id.chars().enumerate() {
        let position = index + 1;
        if position < ID_LEN {
            if !c.is_ascii_digit() {
                return Err(IdError::NotDigit { position, found: c });
            }
        } else {
            last = c;
        }
    }
    match last {
        'x' => {
            return Err(IdError::LowerCase {
                position: ID_LEN,
                found: last,
            });
        }
        '0'..='9' | 'X' => {}
        _ => return Err(IdError::NotCheckCharacter { found: last }),
    }
    // The first 17 characters are ASCII digits, so byte offsets are character offsets.
    let digits = id.get(..ID_LEN - 1).unwrap_or_default();
    check_birth_date(digits.get(6..14).unwrap_or_default(), today)?;
    match resident_id_check_char(digits) {
        Some(expected) if expected == last => Ok(()),
        Some(expected) => Err(IdError::CheckMismatch {
            found: last,
            expected,
        }),
        // Unreachable: the checks above guarantee 17 digits.
        None => Err(IdError::Length {
            kind: SubjectKind::ResidentId,
            got: id.chars().count(),
        }),
    }
}

fn check_length(kind: SubjectKind, id: &str) -> Result<(), IdError> {
    let got = id.chars().count();
    if got == ID_LEN {
        Ok(())
    } else {
        Err(IdError::Length { kind, got })
    }
}

/// Checks eight ASCII digits `YYYYMMDD` as a birth date between 1800-01-01 and `today`.
fn check_birth_date(yyyymmdd: &str, today: Date) -> Result<(), IdError> {
    let not_a_date = || IdError::NotADate {
        date: yyyymmdd.to_owned(),
    };
    let field = |range: std::ops::Range<usize>| -> Result<u16, IdError> {
        yyyymmdd
            .get(range)
            .and_then(|s| s.parse().ok())
            .ok_or_else(not_a_date)
    };
    let year = i32::from(field(0..4)?);
    let month = u8::try_from(field(4..6)?).map_err(|_| not_a_date())?;
    let day = u8::try_from(field(6..8)?).map_err(|_| not_a_date())?;
    let month = Month::try_from(month).map_err(|_| not_a_date())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| not_a_date())?;
    if year < EARLIEST_BIRTH_YEAR {
        return Err(IdError::DateTooEarly {
            date: yyyymmdd.to_owned(),
        });
    }
    if date > today {
        return Err(IdError::DateInFuture {
            date: yyyymmdd.to_owned(),
        });
    }
    Ok(())
}

/// Validates a GB 32100-2015 unified social credit code (upper case only).
pub fn validate_uscc(id: &str) -> Result<(), IdError> {
    check_length(SubjectKind::Uscc, id)?;
    for (index, c) in id.chars().enumerate() {
        if uscc_value(c).is_none() {
            let position = index + 1;
            let upper = c.to_ascii_uppercase();
            return Err(if c.is_ascii_lowercase() && uscc_value(upper).is_some() {
                IdError::LowerCase { position, found: c }
            } else {
                IdError::NotInUsccAlphabet { position, found: c }
            });
        }
    }
    // Every character is in the (ASCII) alphabet, so byte offsets are character offsets.
    let found = char::from(id.as_bytes().last().copied().unwrap_or_default());
    match id.get(..ID_LEN - 1).and_then(uscc_check_char) {
        Some(expected) if expected == found => Ok(()),
        Some(expected) => Err(IdError::CheckMismatch { found, expected }),
        // Unreachable: the checks above guarantee 17 alphabet characters.
        None => Err(IdError::Length {
            kind: SubjectKind::Uscc,
            got: id.chars().count(),
        }),
    }
}

/// The GB 11643-1999 check character of 17 ASCII digits, or `None` if `first17` is not that.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != ID_LEN - 1 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(RESIDENT_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    RESIDENT_CHECK.get(usize::try_from(sum % 11).ok()?).copied()
}

/// The GB 32100-2015 check character of 17 USCC-alphabet characters, or `None` if `first17`
/// is not that.
pub fn uscc_check_char(first17: &str) -> Option<char> {
    if first17.len() != ID_LEN - 1 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += uscc_value(c)? * w;
    }
    // 31 - (sum mod 31), where 31 itself becomes 0.
    let check = (31 - sum % 31) % 31;
    USCC_ALPHABET
        .get(usize::try_from(check).ok()?)
        .map(|&b| char::from(b))
}

fn uscc_value(c: char) -> Option<u32> {
    let byte = u8::try_from(c).ok()?;
    USCC_ALPHABET
        .iter()
        .position(|&a| a == byte)
        .and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;
    use time::macros::date;

    use super::*;

    /// The worked example of GB 11643-1999.
    const RESIDENT_EXAMPLE: &str = "11010519491231002X";
    /// A code whose check character was computed by hand from the GB 32100-2015 weights.
    const USCC_EXAMPLE: &str = "91350100M000100Y43";

    fn all_check_chars(kind: SubjectKind) -> Vec<char> {
        match kind {
            SubjectKind::ResidentId => RESIDENT_CHECK.to_vec(),
            SubjectKind::Uscc => USCC_ALPHABET.iter().map(|&b| char::from(b)).collect(),
        }
    }

    #[test]
    fn known_good_ids_pass() {
        for id in [RESIDENT_EXAMPLE, "110101199003074477", "440308199901010012"] {
            let expected = resident_id_check_char(&id[..17]).unwrap();
            let id = format!("{}{expected}", &id[..17]);
            assert_eq!(validate_resident_id(&id), Ok(()), "{id}");
        }
        assert_eq!(validate_resident_id(RESIDENT_EXAMPLE), Ok(()));
        assert_eq!(validate_uscc(USCC_EXAMPLE), Ok(()));
        assert_eq!(validate(SubjectKind::Uscc, USCC_EXAMPLE), Ok(()));
        assert_eq!(validate(SubjectKind::ResidentId, RESIDENT_EXAMPLE), Ok(()));
    }

    #[test]
    fn check_characters_match_the_standards() {
        assert_eq!(resident_id_check_char("11010519491231002"), Some('X'));
        // Weighted sum 0 gives check 1 (not 0): the table starts at `1`.
        assert_eq!(resident_id_check_char("00000000000000000"), Some('1'));
        // 1*2 + 9*1 + 1*9 + 1*5 = 25, 25 mod 11 = 3 -> `9`.
        assert_eq!(resident_id_check_char("00000019000101000"), Some('9'));
        assert_eq!(uscc_check_char("91350100M000100Y4"), Some('3'));
        // Sum 0 -> 31 - 0 = 31 -> 0.
        assert_eq!(uscc_check_char("00000000000000000"), Some('0'));
        // Sum 1 -> 30 -> `Y`, the last letter of the alphabet.
        assert_eq!(uscc_check_char("10000000000000000"), Some('Y'));
    }

    #[test]
    fn check_char_helpers_reject_bad_input() {
        assert_eq!(resident_id_check_char("1101051949123100"), None);
        assert_eq!(resident_id_check_char("110105194912310021"), None);
        assert_eq!(resident_id_check_char("1101051949123100A"), None);
        assert_eq!(uscc_check_char("91350100M000100Y"), None);
        assert_eq!(uscc_check_char("91350100I000100Y4"), None);
        assert_eq!(uscc_check_char("91350100m000100Y4"), None);
    }

    #[test]
    fn every_wrong_check_char_is_rejected() {
        for (kind, id) in [
            (SubjectKind::ResidentId, RESIDENT_EXAMPLE),
            (SubjectKind::Uscc, USCC_EXAMPLE),
        ] {
            let (body, good) = id.split_at(17);
            let good = good.chars().next().unwrap();
            for c in all_check_chars(kind).into_iter().filter(|&c| c != good) {
                let bad = format!("{body}{c}");
                assert_eq!(
                    validate(kind, &bad),
                    Err(IdError::CheckMismatch {
                        found: c,
                        expected: good
                    }),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn messages_are_precise() {
        let cases: &[(SubjectKind, &str, &str)] = &[
            (
                SubjectKind::ResidentId,
                "11010519491231002",
                "resident id must be 18 characters, got 17",
            ),
            (
                SubjectKind::ResidentId,
                "",
                "resident id must be 18 characters, got 0",
            ),
            (
                SubjectKind::Uscc,
                "91350100M000100Y4",
                "uscc must be 18 characters, got 17",
            ),
            (
                SubjectKind::ResidentId,
                "1101A519491231002X",
                "character 5 (`A`) is not a digit",
            ),
            (
                SubjectKind::ResidentId,
                "11010519491231002x",
                "character 18 (`x`) must be upper case",
            ),
            (
                SubjectKind::ResidentId,
                "11010519491231002Y",
                "character 18 (`Y`) is not a digit or `X`",
            ),
            (
                SubjectKind::ResidentId,
                "110105199902310023",
                "birth date `19990231` is not a real date",
            ),
            (
                SubjectKind::ResidentId,
                "110105199913010023",
                "birth date `19991301` is not a real date",
            ),
            (
                SubjectKind::ResidentId,
                "110105199900010023",
                "birth date `19990001` is not a real date",
            ),
            (
                SubjectKind::ResidentId,
                "110105179912310023",
                "birth date `17991231` is before 1800-01-01",
            ),
            (
                SubjectKind::ResidentId,
                "110105299912310023",
                "birth date `29991231` is in the future",
            ),
            (
                SubjectKind::ResidentId,
                "110105194912310023",
                "check character is `3`, expected `X`",
            ),
            (
                SubjectKind::Uscc,
                "91350100I000100Y43",
                "character 9 (`I`) is not in the uscc alphabet",
            ),
            (
                SubjectKind::Uscc,
                "91350100m000100Y43",
                "character 9 (`m`) must be upper case",
            ),
            (
                SubjectKind::Uscc,
                "91350100-000100Y43",
                "character 9 (`-`) is not in the uscc alphabet",
            ),
            (
                SubjectKind::Uscc,
                "91350100M000100Y44",
                "check character is `4`, expected `3`",
            ),
        ];
        for (kind, id, message) in cases {
            assert_eq!(
                validate(*kind, id).unwrap_err().to_string(),
                *message,
                "{id}"
            );
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 17 digits and one two-byte character: 18 characters, rejected for the character.
        let id = "11010519491231002é";
        assert_eq!(
            validate_resident_id(id).unwrap_err().to_string(),
            "character 18 (`é`) is not a digit or `X`"
        );
        assert_eq!(
            validate_uscc("91350100M000100Y4é").unwrap_err().to_string(),
            "character 18 (`é`) is not in the uscc alphabet"
        );
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        assert_eq!(
            validate_resident_id("1101\n519491231002X")
                .unwrap_err()
                .to_string(),
            "character 5 (`\\n`) is not a digit"
        );
    }

    #[test]
    fn birth_date_bounds_are_inclusive() {
        let id = |date: &str| {
            let body = format!("110105{date}002");
            let check = resident_id_check_char(&body).unwrap();
            format!("{body}{check}")
        };
        let today = date!(2024 - 02 - 29);
        assert_eq!(validate_resident_id_on(&id("18000101"), today), Ok(()));
        // Born 1880 with a correct check character: GB 11643 sets no 1900 floor.
        assert_eq!(validate_resident_id_on(&id("18800615"), today), Ok(()));
        assert_eq!(validate_resident_id_on(&id("18991231"), today), Ok(()));
        assert_eq!(validate_resident_id_on(&id("19000101"), today), Ok(()));
        assert_eq!(validate_resident_id_on(&id("20240229"), today), Ok(()));
        assert_eq!(
            validate_resident_id_on(&id("20240301"), today),
            Err(IdError::DateInFuture {
                date: "20240301".into()
            })
        );
        assert_eq!(
            validate_resident_id_on(&id("17991231"), today),
            Err(IdError::DateTooEarly {
                date: "17991231".into()
            })
        );
        // 1800 was not a leap year (divisible by 100, not by 400); 1804 was.
        assert_eq!(
            validate_resident_id_on(&id("18000229"), today),
            Err(IdError::NotADate {
                date: "18000229".into()
            })
        );
        assert_eq!(validate_resident_id_on(&id("18040229"), today), Ok(()));
        assert_eq!(
            validate_resident_id_on(&id("20230229"), today),
            Err(IdError::NotADate {
                date: "20230229".into()
            })
        );
    }

    fn uscc_char() -> impl Strategy<Value = char> {
        proptest::sample::select(USCC_ALPHABET.to_vec()).prop_map(char::from)
    }

    fn resident_body() -> impl Strategy<Value = String> {
        // Days from 1800-01-01 up to a date that is in the past whenever the test runs.
        let last = date!(2020 - 12 - 31).to_julian_day() - date!(1800 - 01 - 01).to_julian_day();
        ("[0-9]{6}", 0..=last, "[0-9]{3}").prop_map(|(region, days, sequence)| {
            let birth =
                Date::from_julian_day(date!(1800 - 01 - 01).to_julian_day() + days).unwrap();
            format!(
                "{region}{:04}{:02}{:02}{sequence}",
                birth.year(),
                u8::from(birth.month()),
                birth.day()
            )
        })
    }

    proptest! {
        #[test]
        fn uscc_round_trip(body in proptest::collection::vec(uscc_char(), 17)) {
            let body: String = body.into_iter().collect();
            let check = uscc_check_char(&body).unwrap();
            prop_assert_eq!(validate_uscc(&format!("{body}{check}")), Ok(()));
        }

        #[test]
        fn resident_id_round_trip(body in resident_body()) {
            let check = resident_id_check_char(&body).unwrap();
            prop_assert_eq!(validate_resident_id(&format!("{body}{check}")), Ok(()));
        }

        #[test]
        fn any_17_digits_have_a_check_char(body in "[0-9]{17}") {
            let check = resident_id_check_char(&body).unwrap();
            prop_assert!(RESIDENT_CHECK.contains(&check));
        }

        /// Both moduli are prime and no weight is a multiple of them, so changing any one
        /// character to another valid one must be caught.
        #[test]
        fn uscc_single_substitution_is_rejected(
            body in proptest::collection::vec(uscc_char(), 17),
            position in 0..18usize,
            replacement in uscc_char(),
        ) {
            let body: String = body.into_iter().collect();
            let id = format!("{body}{}", uscc_check_char(&body).unwrap());
            let mut chars: Vec<char> = id.chars().collect();
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(validate_uscc(&changed).is_err());
        }

        #[test]
        fn resident_id_single_substitution_is_rejected(
            body in resident_body(),
            position in 0..18usize,
            replacement in proptest::sample::select(RESIDENT_CHECK.to_vec()),
        ) {
            let id = format!("{body}{}", resident_id_check_char(&body).unwrap());
            let mut chars: Vec<char> = id.chars().collect();
            prop_assume!(chars[position] != replacement);
            prop_assume!(position == 17 || replacement != 'X');
            chars[position] = replacement;
            let changed: String = chars.into_iter().collect();
            prop_assert!(validate_resident_id(&changed).is_err());
        }
    }
}
