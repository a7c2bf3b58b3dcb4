//! Updates: what one cycle changed in one table.

use std::ops::Range;

use arrow_array::RecordBatch;

use crate::graph::Step;

/// What one cycle changed in one table: the positions removed, the positions added and the
/// added rows.
///
/// A table's window is `[start, end)` before and after. Removing `removed` (always a prefix of
/// the old window) and appending `added` (always the end of the new window) turns the old
/// window into the new one: `new = (old - removed) + added`. Rows that were appended and evicted
/// in the same cycle (a ring fed more than its capacity at once) are in neither range and in no
/// batch. [`batches`](Self::batches) hold exactly the `added` rows, in order, shared with the
/// table's storage (never copied).
#[derive(Debug, Clone)]
pub struct TableUpdate {
    pub(crate) step: Step,
    pub(crate) removed: Range<u64>,
    pub(crate) added: Range<u64>,
    pub(crate) batches: Vec<RecordBatch>,
}

impl TableUpdate {
    /// The step of the cycle that made this update.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The positions that left the table.
    pub fn removed(&self) -> Range<u64> {
        self.removed.clone()
    }

    /// The positions that entered the table.
    pub fn added(&self) -> Range<u64> {
        self.added.clone()
    }

    /// The added rows, in position order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// How many rows were added.
    pub fn num_added(&self) -> usize {
        crate::table::range_len(&self.added)
    }

    /// How many rows were removed.
    pub fn num_removed(&self) -> usize {
        crate::table::range_len(&self.removed)
    }
}
