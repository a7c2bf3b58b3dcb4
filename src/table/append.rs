//! Append retention: `start` never moves; an optional limit refuses rows past it.
//!
//! # Retention
//!
//! After a cycle that brings `n` rows to a table holding `len` rows, an append table accepts
//! `n` rows, or with a limit `min(n, limit - len)`: once the limit is reached, further rows are
//! ignored (and counted as dropped in [`CycleStats`](crate::CycleStats)), as Deephaven's
//! `blink_to_append_only` with a size limit does. Nothing is ever removed.

/// How many of `incoming` rows an append table holding `len` rows accepts.
pub(crate) fn accepted(len: u64, incoming: u64, limit: Option<u64>) -> u64 {
    match limit {
        Some(limit) => incoming.min(limit.saturating_sub(len)),
        None => incoming,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        assert_eq!(accepted(10, 5, None), 5);
    }

    #[test]
    fn limit_accepts_up_to_the_limit_then_nothing() {
        assert_eq!(accepted(8, 5, Some(10)), 2);
        assert_eq!(accepted(10, 5, Some(10)), 0);
        assert_eq!(accepted(0, 0, Some(0)), 0);
    }
}
