//! Column values: what each driver's native types decode to ([`Cell`]) and
//! how a cell becomes a record field of its mapping type; which declared
//! column types can make which field types ([`Kind::verdict`]). Errors say
//! what the cell holds, never the value (it may be personal data); the
//! caller names the field (for the requester) or the column (for the log).

use serde_json::{Number, Value};
use time::Date;
use time::macros::format_description;

use crate::mapping::FieldType;

/// One column value of one row, driver-independent.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Date(Date),
    Json(Value),
    List(Vec<String>),
    /// MySQL's zero date (`0000-00-00`, also as a DATETIME), which the
    /// driver would otherwise give as NULL.
    ZeroDate,
}

/// The family of a column's declared type (PostgreSQL, MySQL), checked at
/// start against the field's mapping type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// An integer too small to hold a `YYYYMMDD` date (TINYINT, SMALLINT,
    /// MEDIUMINT, YEAR, INT2).
    SmallInt,
    Int,
    Float,
    /// NUMERIC / DECIMAL: read exactly, given as a JSON number.
    Decimal,
    Text,
    Date,
    DateTime,
    DateTimeTz,
    Json,
    TextArray,
}

impl Kind {
    /// The kind of a PostgreSQL type name as sqlx reports it.
    pub fn postgres(name: &str) -> Option<Kind> {
        Some(match name {
            "BOOL" => Kind::Bool,
            "INT2" => Kind::SmallInt,
            "INT4" | "INT8" => Kind::Int,
            "FLOAT4" | "FLOAT8" => Kind::Float,
            "NUMERIC" => Kind::Decimal,
            "TEXT" | "VARCHAR" | "CHAR" | "BPCHAR" | "NAME" | "CITEXT" => Kind::Text,
            "DATE" => Kind::Date,
            "TIMESTAMP" => Kind::DateTime,
            "TIMESTAMPTZ" => Kind::DateTimeTz,
            "JSON" | "JSONB" => Kind::Json,
            "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "BPCHAR[]" | "NAME[]" => Kind::TextArray,
            _ => return None,
        })
    }

    /// The kind of a MySQL / MariaDB type name as sqlx reports it.
    pub fn mysql(name: &str) -> Option<Kind> {
        Some(match name {
            "BOOLEAN" => Kind::Bool,
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "YEAR" | "TINYINT UNSIGNED"
            | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" => Kind::SmallInt,
            "INT" | "BIGINT" | "INT UNSIGNED" | "BIGINT UNSIGNED" => Kind::Int,
            "FLOAT" | "DOUBLE" => Kind::Float,
            "DECIMAL" => Kind::Decimal,
            "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" => {
                Kind::Text
            }
            "DATE" => Kind::Date,
            "DATETIME" | "TIMESTAMP" => Kind::DateTime,
            "JSON" => Kind::Json,
            _ => return None,
        })
    }

    /// The kind of a SQLite column as sqlx reports its declared type (the
    /// type name's affinity); `None` for an expression or a column declared
    /// without a type, whose values are checked row by row only.
    pub fn sqlite(name: &str) -> Option<Kind> {
        Some(match name {
            "BOOLEAN" => Kind::Bool,
            "INTEGER" => Kind::Int,
            "REAL" => Kind::Float,
            "NUMERIC" => Kind::Decimal,
            "TEXT" => Kind::Text,
            "DATE" => Kind::Date,
            "DATETIME" => Kind::DateTime,
            _ => return None,
        })
    }

    /// Whether a column of this kind can make a field of type `ty`: with a
    /// value map (`coded`) any code column can; a numeric column making a
    /// string is allowed only when the mapping says so (`from_number`),
    /// else a warning (the string would read `"9"`).
    pub fn verdict(self, ty: FieldType, coded: bool, from_number: bool) -> Verdict {
        use Kind::*;
        if coded {
            return if matches!(self, Text | Int | SmallInt | Bool) {
                Verdict::Fits
            } else {
                Verdict::Refused
            };
        }
        let fits = match ty {
            FieldType::String if matches!(self, Int | SmallInt) => {
                return if from_number {
                    Verdict::Fits
                } else {
                    Verdict::Warn
                };
            }
            FieldType::String => matches!(self, Text),
            FieldType::Integer => matches!(self, Int | SmallInt | Decimal),
            FieldType::Number => matches!(self, Int | SmallInt | Float | Decimal),
            FieldType::Boolean => matches!(self, Bool | Int | SmallInt),
            FieldType::Date => matches!(self, Date | DateTime | DateTimeTz | Text | Int),
            FieldType::StringList => matches!(self, Text | Json | TextArray),
        };
        if fits {
            Verdict::Fits
        } else {
            Verdict::Refused
        }
    }

    /// A cast that would make the column readable as `ty`, for messages.
    pub fn hint(ty: FieldType) -> &'static str {
        match ty {
            FieldType::String => "cast it to text in the query",
            FieldType::Integer => "cast it to an integer type in the query",
            FieldType::Number => "cast it to a double precision type in the query",
            FieldType::Boolean => "cast it to a boolean in the query",
            FieldType::Date => "cast it to DATE in the query",
            FieldType::StringList => "give a text column holding a JSON array, or a text array",
        }
    }
}

/// What a column of some kind makes of a field type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Fits,
    /// Works, but probably not what the department meant.
    Warn,
    /// Fails on every row.
    Refused,
}

/// Makes the JSON value of a field of type `ty` from `cell` (never NULL:
/// the caller decides what NULL means for the field). The error completes
/// "field `x` ..." / "column `c` ...": what the cell holds, not its value.
pub fn to_json(cell: Cell, ty: FieldType, separator: Option<&str>) -> Result<Value, String> {
    let wrong = |what: &str| format!("holds {what}, which is not {}", ty_name(ty));
    match (ty, cell) {
        (_, Cell::Null) => Ok(Value::Null),
        (_, Cell::ZeroDate) => Err("holds the zero date `0000-00-00`, which is not a date".into()),
        (FieldType::String, Cell::Text(s)) => Ok(Value::String(s)),
        (FieldType::String, Cell::Int(i)) => Ok(Value::String(i.to_string())),
        (FieldType::Integer, Cell::Int(i)) => Ok(Value::from(i)),
        (FieldType::Integer, Cell::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Exact: the check above keeps it within f64's integer range.
            #[allow(clippy::cast_possible_truncation)]
            Ok(Value::from(f as i64))
        }
        (FieldType::Integer, Cell::Text(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "holds text that is not an integer".to_owned()),
        (FieldType::Number, Cell::Int(i)) => Ok(Value::from(i)),
        (FieldType::Number, Cell::Float(f)) => Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| "holds a NaN or infinite number".to_owned()),
        (FieldType::Number, Cell::Text(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "holds text that is not a number".to_owned()),
        (FieldType::Boolean, Cell::Bool(b)) => Ok(Value::Bool(b)),
        (FieldType::Boolean, Cell::Int(0)) => Ok(Value::Bool(false)),
        (FieldType::Boolean, Cell::Int(1)) => Ok(Value::Bool(true)),
        (FieldType::Boolean, Cell::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Ok(Value::Bool(true)),
            "false" | "f" | "0" => Ok(Value::Bool(false)),
            _ => Err("holds text that is not true/false".to_owned()),
        },
        (FieldType::Date, Cell::Date(d)) => Ok(Value::String(format_date(d))),
        (FieldType::Date, Cell::Text(s)) => parse_date(s.trim())
            .map(|d| Value::String(format_date(d)))
            .ok_or_else(|| {
                "holds text that is not a date (YYYY-MM-DD, YYYY-MM-DD hh:mm:ss or YYYYMMDD)"
                    .to_owned()
            }),
        (FieldType::Date, Cell::Int(i)) => parse_date(&i.to_string())
            .map(|d| Value::String(format_date(d)))
            .ok_or_else(|| "holds a number that is not a date (YYYYMMDD)".to_owned()),
        (FieldType::StringList, Cell::List(items)) => {
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
        (FieldType::StringList, Cell::Json(value)) => string_array(value)
            .ok_or_else(|| "holds JSON that is not an array of strings".to_owned()),
        (FieldType::StringList, Cell::Text(s)) => match separator {
            Some(sep) => Ok(Value::Array(
                s.split(sep)
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Value::String(item.to_owned()))
                    .collect(),
            )),
            None => serde_json::from_str(&s)
                .ok()
                .and_then(string_array)
                .ok_or_else(|| "holds text that is not a JSON array of strings".to_owned()),
        },
        (_, cell) => Err(wrong(cell_kind(&cell))),
    }
}

/// The code a cell holds, for a value map: text as is (trailing blanks of
/// CHAR columns dropped), integers and booleans as written in SQL.
pub fn code(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Text(s) => Some(s.trim_end().to_owned()),
        Cell::Int(i) => Some(i.to_string()),
        Cell::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

fn ty_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "a string",
        FieldType::Integer => "an integer",
        FieldType::Number => "a number",
        FieldType::Boolean => "a boolean",
        FieldType::Date => "a date",
        FieldType::StringList => "a list of strings",
    }
}

fn cell_kind(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "NULL",
        Cell::Bool(_) => "a boolean",
        Cell::Int(_) => "an integer",
        Cell::Float(_) => "a floating point number",
        Cell::Text(_) => "text",
        Cell::Date(_) => "a date",
        Cell::Json(_) => "JSON",
        Cell::List(_) => "an array",
        Cell::ZeroDate => "the zero date",
    }
}

fn string_array(value: Value) -> Option<Value> {
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => Some(Value::Array(items)),
        _ => None,
    }
}

fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `YYYY-MM-DD` (alone or starting a date-time) or `YYYYMMDD`.
fn parse_date(s: &str) -> Option<Date> {
    let dashed = format_description!("[year]-[month]-[day]");
    let compact = format_description!("[year][month][day]");
    if let Some(head) = s.get(..10)
        && (s.len() == 10 || s[10..].starts_with([' ', 'T']))
        && let Ok(d) = Date::parse(head, dashed)
    {
        return Some(d);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Date::parse(s, compact).ok();
    }
    None
}

/// Reads PostgreSQL's binary NUMERIC (base-10000 digits) as an `f64`,
/// exactly rounded: the digits are written out in decimal and parsed.
pub fn pg_numeric(bytes: &[u8]) -> Result<f64, String> {
    let word = |i: usize| -> Result<u16, String> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated NUMERIC value".to_owned())
    };
    let ndigits = usize::from(word(0)?);
    #[allow(clippy::cast_possible_wrap)]
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NUMERIC NaN is not a number".into()),
        _ => return Err("infinite NUMERIC is not a number".into()),
    }
    if ndigits == 0 {
        return Ok(0.0);
    }
    let mut digits = String::with_capacity(ndigits * 4 + 8);
    if sign == 0x4000 {
        digits.push('-');
    }
    for i in 0..ndigits {
        let d = word(4 + i)?;
        if d > 9999 {
            return Err("malformed NUMERIC value".into());
        }
        digits.push_str(&format!("{d:04}"));
    }
    let ndigits = i32::try_from(ndigits).map_err(|_| "NUMERIC value too long".to_owned())?;
    let exponent = 4 * (weight - (ndigits - 1));
    format!("{digits}e{exponent}")
        .parse::<f64>()
        .map_err(|_| "malformed NUMERIC value".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::date;

    use super::*;

    fn conv(cell: Cell, ty: FieldType) -> Result<Value, String> {
        to_json(cell, ty, None)
    }

    #[test]
    fn dates_come_from_native_dates_text_and_numbers() {
        let want = json!("2021-03-04");
        assert_eq!(
            conv(Cell::Date(date!(2021 - 03 - 04)), FieldType::Date),
            Ok(want.clone())
        );
        for text in [
            "2021-03-04",
            "20210304",
            "2021-03-04 10:11:12",
            "2021-03-04T10:11:12Z",
        ] {
            assert_eq!(
                conv(Cell::Text(text.into()), FieldType::Date),
                Ok(want.clone()),
                "{text}"
            );
        }
        assert_eq!(conv(Cell::Int(20210304), FieldType::Date), Ok(want));
        for bad in ["2021-13-04", "04/03/2021", "2021-03-04x", ""] {
            let err = conv(Cell::Text(bad.into()), FieldType::Date).unwrap_err();
            assert!(err.starts_with("holds text that is not a date ("), "{err}");
            assert!(!err.contains("which is not a date"), "said twice: {err}");
            assert!(
                bad.is_empty() || !err.contains(bad),
                "the value leaked: {err}"
            );
        }
    }

    #[test]
    fn numbers_booleans_and_integers_tolerate_driver_types() {
        assert_eq!(conv(Cell::Float(12.5), FieldType::Number), Ok(json!(12.5)));
        assert_eq!(conv(Cell::Int(12), FieldType::Number), Ok(json!(12)));
        assert_eq!(
            conv(Cell::Text("12.5".into()), FieldType::Number),
            Ok(json!(12.5))
        );
        assert!(conv(Cell::Float(f64::NAN), FieldType::Number).is_err());
        assert_eq!(conv(Cell::Float(3.0), FieldType::Integer), Ok(json!(3)));
        assert!(conv(Cell::Float(3.5), FieldType::Integer).is_err());
        assert_eq!(conv(Cell::Int(1), FieldType::Boolean), Ok(json!(true)));
        assert_eq!(conv(Cell::Int(0), FieldType::Boolean), Ok(json!(false)));
        assert!(conv(Cell::Int(2), FieldType::Boolean).is_err());
        assert_eq!(conv(Cell::Bool(true), FieldType::Boolean), Ok(json!(true)));
        assert_eq!(conv(Cell::Int(7), FieldType::String), Ok(json!("7")));
        let err = conv(Cell::Date(date!(2021 - 03 - 04)), FieldType::Integer).unwrap_err();
        assert_eq!(err, "holds a date, which is not an integer");
    }

    #[test]
    fn a_zero_date_is_named_not_taken_for_null() {
        let err = conv(Cell::ZeroDate, FieldType::Date).unwrap_err();
        assert_eq!(err, "holds the zero date `0000-00-00`, which is not a date");
    }

    #[test]
    fn string_lists_come_from_json_text_arrays_or_separated_text() {
        let want = json!(["a", "b c"]);
        assert_eq!(
            conv(Cell::Text(r#"["a","b c"]"#.into()), FieldType::StringList),
            Ok(want.clone())
        );
        assert_eq!(
            conv(Cell::Json(want.clone()), FieldType::StringList),
            Ok(want.clone())
        );
        assert_eq!(
            conv(
                Cell::List(vec!["a".into(), "b c".into()]),
                FieldType::StringList
            ),
            Ok(want.clone())
        );
        assert_eq!(
            to_json(
                Cell::Text("a; b c;".into()),
                FieldType::StringList,
                Some(";")
            ),
            Ok(want)
        );
        assert!(conv(Cell::Text("a;b".into()), FieldType::StringList).is_err());
        assert!(conv(Cell::Text("[1,2]".into()), FieldType::StringList).is_err());
    }

    #[test]
    fn postgres_numeric_is_read_exactly() {
        // 1234.56 = digits [1234, 5600], weight 0, positive, dscale 2
        let bytes = [0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xD2, 0x15, 0xE0];
        assert_eq!(pg_numeric(&bytes), Ok(1234.56));
        // -0.05 = digits [500], weight -1, negative
        let bytes = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 2, 0x01, 0xF4];
        assert_eq!(pg_numeric(&bytes), Ok(-0.05));
        assert_eq!(pg_numeric(&[0, 0, 0, 0, 0, 0, 0, 0]), Ok(0.0));
        assert!(pg_numeric(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).is_err());
        assert!(pg_numeric(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn declared_types_are_checked_against_mapping_types() {
        assert_eq!(Kind::postgres("NUMERIC"), Some(Kind::Decimal));
        assert_eq!(Kind::postgres("MONEY"), None);
        assert_eq!(Kind::mysql("BIGINT UNSIGNED"), Some(Kind::Int));
        let verdict = |k: Kind, ty| k.verdict(ty, false, false);
        assert_eq!(verdict(Kind::Decimal, FieldType::Number), Verdict::Fits);
        assert_eq!(verdict(Kind::Date, FieldType::Date), Verdict::Fits);
        assert_eq!(verdict(Kind::Date, FieldType::Number), Verdict::Refused);
        assert_eq!(verdict(Kind::Float, FieldType::Integer), Verdict::Refused);
        assert_eq!(
            verdict(Kind::TextArray, FieldType::StringList),
            Verdict::Fits
        );
        assert_eq!(
            verdict(Kind::Int, FieldType::Date),
            Verdict::Fits,
            "YYYYMMDD"
        );
    }

    #[test]
    fn impossible_pairs_are_refused_and_numbers_as_strings_warned() {
        // VARCHAR -> integer, TINYINT -> date: fail on every row
        assert_eq!(Kind::mysql("VARCHAR"), Some(Kind::Text));
        assert_eq!(
            Kind::Text.verdict(FieldType::Integer, false, false),
            Verdict::Refused
        );
        assert_eq!(Kind::mysql("TINYINT"), Some(Kind::SmallInt));
        assert_eq!(
            Kind::SmallInt.verdict(FieldType::Date, false, false),
            Verdict::Refused
        );
        assert_eq!(
            Kind::Text.verdict(FieldType::Number, false, false),
            Verdict::Refused
        );
        assert_eq!(
            Kind::Text.verdict(FieldType::Boolean, false, false),
            Verdict::Refused
        );
        // INT -> string works but gives "9": a warning unless the mapping says so
        assert_eq!(
            Kind::Int.verdict(FieldType::String, false, false),
            Verdict::Warn
        );
        assert_eq!(
            Kind::Int.verdict(FieldType::String, false, true),
            Verdict::Fits
        );
        // codes through a value map
        assert_eq!(
            Kind::Text.verdict(FieldType::Boolean, true, false),
            Verdict::Fits
        );
        assert_eq!(
            Kind::Date.verdict(FieldType::String, true, false),
            Verdict::Refused
        );
        // SQLite: the declared type's affinity as sqlx names it
        assert_eq!(Kind::sqlite("INTEGER"), Some(Kind::Int));
        assert_eq!(Kind::sqlite("NULL"), None);
    }
}
