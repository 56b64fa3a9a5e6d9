//! A small deterministic random stream per (salt, index).
//!
//! SplitMix64 seeded from an FNV-1a hash of the salt and the index: no
//! dependency, no platform- or version-dependent output, and every department
//! derives its own stream for the same person (`Rng::new("tax/…", i)`), so
//! adding a record type to one department never shifts another's data.

use time::Date;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A deterministic pseudo-random stream. Not for cryptography.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The stream of `salt` for the subject at `index`.
    pub fn new(salt: &str, index: u32) -> Rng {
        let mut hash = FNV_OFFSET;
        // 0xff never occurs in UTF-8, so ("ab", 1) and ("a", …) cannot collide by concatenation.
        for byte in salt.bytes().chain([0xff]).chain(index.to_le_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        let mut rng = Rng { state: hash };
        // One round so that nearby seeds start far apart.
        rng.next_u64();
        rng
    }

    /// The next 64 random bits (SplitMix64).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in the half-open range `lo..hi`; `lo` when the range is empty.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = u128::from(hi - lo);
        // Multiply-shift maps 64 random bits onto the span without a modulo bias worth noticing.
        let offset = (u128::from(self.next_u64()) * span) >> 64;
        lo + u64::try_from(offset).unwrap_or(0)
    }

    /// One element of `items`, uniformly.
    ///
    /// # Panics
    ///
    /// If `items` is empty; callers pass fixed, non-empty tables.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let len = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let index = usize::try_from(self.range(0, len)).unwrap_or(0);
        &items[index]
    }

    /// One element of `items`, chosen with probability proportional to its weight.
    ///
    /// # Panics
    ///
    /// If `items` is empty; callers pass fixed, non-empty tables.
    pub fn pick_weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = self.range(0, total);
        for (item, weight) in items {
            let weight = u64::from(*weight);
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        &items[items.len() - 1].0
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A number in `0.0..1.0` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        // 2^53 fits an f64 exactly, so every step is representable.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `lo..hi`.
    pub fn float(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A date in the inclusive range `from..=to`; `from` when the range is empty.
    pub fn date(&mut self, from: Date, to: Date) -> Date {
        let (lo, hi) = (from.to_julian_day(), to.to_julian_day());
        if hi <= lo {
            return from;
        }
        let span = u64::from((hi - lo).unsigned_abs()) + 1;
        let offset = i32::try_from(self.range(0, span)).unwrap_or(0);
        Date::from_julian_day(lo + offset).unwrap_or(from)
    }

    /// `count` random decimal digits.
    pub fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + u8::try_from(self.range(0, 10)).unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn same_seed_same_stream_and_fixed_output() {
        let mut a = Rng::new("tax/tax_registration", 7);
        let mut b = Rng::new("tax/tax_registration", 7);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        // Pinned so that a change of algorithm (which would reshuffle every
        // department's data) cannot go unnoticed.
        assert_eq!(Rng::new("", 0).next_u64(), PINNED_EMPTY_0);
    }

    const PINNED_EMPTY_0: u64 = 1_551_016_640_127_502_698;

    #[test]
    fn salt_and_index_both_matter() {
        let first = |salt: &str, index| Rng::new(salt, index).next_u64();
        assert_ne!(first("a", 0), first("a", 1));
        assert_ne!(first("a", 0), first("b", 0));
        assert_ne!(first("ab", 0), first("a", 0));
    }

    #[test]
    fn range_stays_inside_and_covers() {
        let mut rng = Rng::new("range", 0);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = rng.range(10, 15);
            assert!((10..15).contains(&v));
            seen[usize::try_from(v - 10).unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(rng.range(3, 3), 3);
        assert_eq!(rng.range(4, 2), 4);
    }

    #[test]
    fn chance_follows_probability() {
        let mut rng = Rng::new("chance", 0);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        assert!(!(0..100).any(|_| rng.chance(0.0)));
        assert!((0..100).all(|_| rng.chance(1.0)));
    }

    #[test]
    fn weighted_pick_never_picks_zero_weight() {
        let mut rng = Rng::new("weighted", 0);
        let items = [("never", 0), ("often", 9), ("sometimes", 1)];
        let picks: Vec<&str> = (0..1000).map(|_| *rng.pick_weighted(&items)).collect();
        assert!(!picks.contains(&"never"));
        let often = picks.iter().filter(|p| **p == "often").count();
        assert!(often > 800, "{often}");
    }

    #[test]
    fn dates_are_inclusive_and_ordered() {
        let mut rng = Rng::new("date", 0);
        let (from, to) = (date!(2020 - 01 - 01), date!(2020 - 01 - 03));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = rng.date(from, to);
            assert!(from <= d && d <= to);
            seen.insert(d);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(rng.date(to, from), to);
    }

    #[test]
    fn digits_are_digits() {
        let digits = Rng::new("digits", 0).digits(30);
        assert_eq!(digits.len(), 30);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    }
}
