//! Durations in the configuration file, written with their unit: `"250ms"`,
//! `"5s"`, `"2m"`, `"1h"`, or a sum such as `"1m30s"`.
//!
//! A small parser of our own rather than a crate: five units and integer
//! counts are all a gateway config needs, and the error names what was
//! written. Serde reports the error at the value's line and column.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// A duration of zero or more (`"0ms"` allowed), e.g. a hedge floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(Duration);

/// A duration that cannot be zero, e.g. a timeout or a cooldown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NonZeroDuration(Duration);

impl ConfigDuration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl NonZeroDuration {
    /// `None` for zero.
    pub const fn new(d: Duration) -> Option<Self> {
        if d.is_zero() { None } else { Some(Self(d)) }
    }
    /// For constants: a zero `ms` gives one millisecond.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(if ms == 0 { 1 } else { ms }))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", render(self.0))
    }
}

impl fmt::Display for NonZeroDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", render(self.0))
    }
}

/// The shortest spelling the parser reads back: `5s`, `250ms`, `1m30s`.
fn render(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0ms".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Parses `"250ms"`, `"5s"`, `"1m30s"`: one or more `<integer><unit>`
/// parts, units `ms`, `s`, `m`, `h`, `d`, no spaces or signs.
pub fn parse(text: &str) -> Result<Duration, String> {
    const HINT: &str = "write an integer and a unit: `250ms`, `5s`, `2m`, `1h`";
    if text.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration; {HINT}"));
        }
        let (number, tail) = rest.split_at(digits);
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let count: u64 = number
            .parse()
            .map_err(|_| format!("`{text}`: `{number}` is too large"))?;
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if tail.is_empty() => return Err(format!("`{text}` has no unit; {HINT}")),
            "" => return Err(format!("`{text}` is not a duration; {HINT}")),
            other => return Err(format!("`{text}`: unknown unit `{other}`; {HINT}")),
        };
        let ms = count
            .checked_mul(unit_ms)
            .ok_or_else(|| format!("`{text}` is too large"))?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("`{text}` is too large"))?;
        rest = tail;
    }
    Ok(total)
}

struct DurationVisitor {
    non_zero: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.non_zero {
            f.write_str("a positive duration with a unit, e.g. \"250ms\" or \"5s\"")
        } else {
            f.write_str("a duration with a unit, e.g. \"250ms\" or \"5s\"")
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        let d = parse(v).map_err(E::custom)?;
        if self.non_zero && d.is_zero() {
            return Err(E::custom(format!("`{v}`: must be more than zero")));
        }
        Ok(d)
    }

    // A bare number was the old `_ms` style: say what to write instead.
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "`{v}` has no unit; write a string such as \"{v}ms\" or \"{v}s\""
        )))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "`{v}` has no unit; write a string such as \"{v}ms\" or \"{v}s\""
        )))
    }
}

impl<'de> serde::Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { non_zero: false })
            .map(Self)
    }
}

impl<'de> serde::Deserialize<'de> for NonZeroDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { non_zero: true })
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_duration_saying_why() {
        for (text, why) in [
            ("", "empty"),
            ("5", "no unit"),
            ("5x", "unknown unit `x`"),
            ("s", "not a duration"),
            ("-5s", "not a duration"),
            ("5 s", "not a duration"),
            ("1.5s", "not a duration"),
            ("99999999999999999999s", "too large"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn renders_what_it_parses() {
        for ms in [0, 1, 250, 1_000, 5_000, 90_000, 3_600_000, 3_723_004] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&render(d)), Ok(d), "{}", render(d));
        }
        assert_eq!(
            ConfigDuration::from_millis(1_500).to_string(),
            "\"1s500ms\""
        );
    }
}
