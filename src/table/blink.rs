//! Blink retention: only the latest cycle's rows are visible.
//!
//! # Retention
//!
//! After a cycle that appended rows `[e0, e1)`, `start = e0`: every row of the previous window is
//! removed and the new rows are added. A cycle with no new rows empties the table. A blink
//! table with a cap (what [`tail`](crate::EngineHandle::tail) of a blink source builds) keeps
//! only the newest `cap` rows of the cycle: `start = max(e0, e1 - cap)`.

/// The window start after a cycle appended `[e0, e1)` to a blink table.
pub(crate) fn new_start(e0: u64, e1: u64, cap: Option<u64>) -> u64 {
    match cap {
        Some(cap) => e0.max(e1.saturating_sub(cap)),
        None => e0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        assert_eq!(new_start(10, 15, None), 10);
    }

    #[test]
    fn cap_keeps_the_newest_rows_of_the_cycle() {
        assert_eq!(new_start(10, 15, Some(3)), 12);
        assert_eq!(new_start(10, 15, Some(30)), 10);
        assert_eq!(new_start(10, 10, Some(3)), 10);
    }
}
