//! For a set-based [`Department::lookup_batch`](crate::Department::lookup_batch)
//! over SQL: `WHERE <subject column> IN (?, ?, ...)`, every ID a bound
//! parameter, in lists of at most [`CHUNK`].
//!
//! Each list length is its own SQL text, so its own prepared statement: a
//! driver's statement cache (sqlx keeps 100 per connection) would churn
//! through up to [`CHUNK`] texts per record type. [`padded_len`] rounds a
//! list up to a power of two (capped at [`CHUNK`]) and [`padded`] repeats the
//! last ID to fill it (a repeated value matches no extra row), so each record
//! type needs at most [`sizes`]`().len()` (10) statements.

/// Most IDs in one `IN (...)` list: far below every driver's parameter limit
/// (SQLite 32,766, MySQL and PostgreSQL 65,535), and large enough that a
/// batch of [`MAX_BATCH_SUBJECTS`](crate::MAX_BATCH_SUBJECTS) is two
/// statements.
pub const CHUNK: usize = 500;

/// The list length used for `n` IDs (`1 ..= CHUNK`): the next power of two,
/// at most [`CHUNK`].
pub fn padded_len(n: usize) -> usize {
    n.clamp(1, CHUNK).next_power_of_two().min(CHUNK)
}

/// Every length [`padded_len`] gives, ascending: `1, 2, 4, ..., 256, CHUNK`.
pub fn sizes() -> Vec<usize> {
    let mut sizes: Vec<usize> = std::iter::successors(Some(1_usize), |n| Some(n * 2))
        .take_while(|n| *n < CHUNK)
        .collect();
    sizes.push(CHUNK);
    sizes
}

/// `ids` (at most [`CHUNK`]) filled up to [`padded_len`] by repeating the
/// last one.
pub fn padded<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut list = ids.to_vec();
    if let Some(last) = ids.last() {
        list.resize(padded_len(ids.len()).max(ids.len()), last);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_padded_to_a_few_lengths() {
        assert_eq!(sizes(), [1, 2, 4, 8, 16, 32, 64, 128, 256, 500]);
        for n in 1..=CHUNK {
            let len = padded_len(n);
            assert!(len >= n && sizes().contains(&len), "{n} -> {len}");
        }
        assert_eq!(padded(&["a", "b", "c"]), ["a", "b", "c", "c"]);
        assert_eq!(padded(&["a"]), ["a"]);
        assert!(padded(&[]).is_empty());
    }
}
