//! Pausing: the rows the view froze, and how many updates came since.
//!
//! While paused the view shows a copy of the rows as they were (O(1): the chunks are shared)
//! and ignores updates but counts them; resuming shows the live rows again.

use tickertable::Mirror;

/// The frozen rows while paused.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    frozen: Option<Mirror>,
    /// Updates that arrived while paused.
    pending: u64,
}

impl Pause {
    /// The rows shown: the frozen ones while paused, else `live`.
    pub(crate) fn data<'a>(&'a self, live: &'a Mirror) -> &'a Mirror {
        self.frozen.as_ref().unwrap_or(live)
    }

    /// Whether the view is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Updates that arrived while paused.
    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// Pauses on the rows of `live`. O(1): the copy shares the mirror's chunks.
    pub(super) fn freeze(&mut self, live: &Mirror) {
        self.frozen = Some(live.clone());
        self.pending = 0;
    }

    /// Resumes: the live rows are shown again.
    pub(super) fn resume(&mut self) {
        self.frozen = None;
        self.pending = 0;
    }

    /// Whether an update is held back (the view is paused); if so, counts it pending.
    pub(super) fn withhold(&mut self) -> bool {
        if self.is_paused() {
            self.pending += 1;
        }
        self.is_paused()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    /// A mirror of `n` rows from position 0.
    fn mirror(n: i64) -> Mirror {
        let schema = Arc::new(Schema::new(vec![Field::new("N", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))])
                .unwrap();
        crate::testing::mirror_at(0, &batch)
    }

    #[test]
    fn smoke() {
        let (mut p, live) = (Pause::default(), mirror(3));
        assert!(!p.is_paused());
        assert_eq!(p.data(&live).len(), 3);
        assert!(!p.withhold(), "updates pass while not paused");
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn paused_shows_the_frozen_rows_and_counts_updates_until_resumed() {
        let mut p = Pause::default();
        p.freeze(&mirror(3));
        let live = mirror(5);
        assert!(p.is_paused());
        assert_eq!(p.data(&live).len(), 3, "the frozen rows");
        assert!(p.withhold());
        assert!(p.withhold());
        assert_eq!(p.pending(), 2);
        p.resume();
        assert!(!p.is_paused());
        assert_eq!(p.data(&live).len(), 5, "the live rows");
        assert_eq!(p.pending(), 0);
    }
}
