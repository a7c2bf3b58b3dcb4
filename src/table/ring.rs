//! Ring retention: the newest `capacity` rows.
//!
//! # Retention
//!
//! After a cycle that appended rows `[e0, e1)`, `start = max(start, e1 - capacity)`. Eviction is
//! a prefix: whole chunks are popped and the first remaining chunk is sliced, so a ring holds at
//! most `capacity` rows plus the unused head of one chunk. Rows of a cycle that are evicted in
//! that same cycle (a batch larger than the capacity) are never stored.

/// The window start after a cycle appended up to `e1` to a ring whose window started at `start`.
pub(crate) fn new_start(start: u64, e1: u64, capacity: u64) -> u64 {
    start.max(e1.saturating_sub(capacity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        assert_eq!(new_start(0, 5, 10), 0);
    }

    #[test]
    fn wraps_to_keep_the_newest_capacity_rows() {
        assert_eq!(new_start(0, 15, 10), 5);
        assert_eq!(new_start(5, 16, 10), 6);
        assert_eq!(new_start(6, 1_000, 10), 990);
    }
}
