//! Date helpers for the synthetic world, which stands still on
//! [`REFERENCE_DATE`] so that every seed is reproducible.

use time::macros::date;
use time::{Date, Duration, Month};

/// "Today" in the synthetic world: every generated date is on or before it,
/// and validity periods and ages are judged against it.
pub const REFERENCE_DATE: Date = date!(2026 - 06 - 30);

/// `date` moved by whole years; 29 February becomes 28 February in a
/// common year.
pub fn add_years(date: Date, years: i32) -> Date {
    let year = date.year() + years;
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, date.month(), 28))
        .unwrap_or(date)
}

/// `date` moved by whole months, clamped to the last day of the target month.
pub fn add_months(date: Date, months: i32) -> Date {
    let zero_based = date.year() * 12 + i32::from(u8::from(date.month())) - 1 + months;
    let year = zero_based.div_euclid(12);
    let month = u8::try_from(zero_based.rem_euclid(12) + 1)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .unwrap_or(date.month());
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

/// `date` moved by `days` (negative moves back).
pub fn add_days(date: Date, days: i64) -> Date {
    date.checked_add(Duration::days(days)).unwrap_or(date)
}

/// A drawn count of days (from [`Rng::range`](crate::Rng::range)) as the
/// signed offset [`add_days`] takes; 0 for a count no date could span.
pub fn days(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(0)
}

/// The first day of the month of `date`.
pub fn month_start(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

/// The last day of the month of `date`.
pub fn month_end(date: Date) -> Date {
    date.replace_day(date.month().length(date.year()))
        .unwrap_or(date)
}

/// Whole years from `birth` to `on` (0 when `on` is earlier).
pub fn age_on(birth: Date, on: Date) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// `YYYY-MM-DD`, as JSON Schema's `date` format wants.
pub fn iso(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `YYYYMMDD`, as in resident ID numbers.
pub fn compact(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_months_clamp_at_month_end() {
        assert_eq!(add_years(date!(2024 - 02 - 29), 1), date!(2025 - 02 - 28));
        assert_eq!(add_years(date!(2024 - 02 - 29), 4), date!(2028 - 02 - 29));
        assert_eq!(add_months(date!(2025 - 01 - 31), 1), date!(2025 - 02 - 28));
        assert_eq!(add_months(date!(2025 - 11 - 15), 3), date!(2026 - 02 - 15));
        assert_eq!(add_months(date!(2025 - 01 - 15), -1), date!(2024 - 12 - 15));
        assert_eq!(add_days(date!(2025 - 12 - 31), 1), date!(2026 - 01 - 01));
        assert_eq!(
            add_days(date!(2025 - 12 - 31), -days(30)),
            date!(2025 - 12 - 01)
        );
        assert_eq!(month_start(date!(2025 - 02 - 17)), date!(2025 - 02 - 01));
        assert_eq!(month_end(date!(2024 - 02 - 17)), date!(2024 - 02 - 29));
    }

    #[test]
    fn age_counts_whole_years() {
        let birth = date!(1990 - 06 - 30);
        assert_eq!(age_on(birth, date!(2026 - 06 - 29)), 35);
        assert_eq!(age_on(birth, date!(2026 - 06 - 30)), 36);
        assert_eq!(age_on(birth, date!(1980 - 01 - 01)), 0);
    }

    #[test]
    fn formats() {
        assert_eq!(iso(date!(2005 - 03 - 07)), "2005-03-07");
        assert_eq!(compact(date!(2005 - 03 - 07)), "20050307");
    }
}
