//! Updates: what one cycle changed in one table.

use std::ops::Range;

use arrow_array::RecordBatch;

use crate::step::Step;

/// What one cycle changed in one table: the positions removed, the positions added and the
/// added rows, and for a keyed table the rows modified in place.
///
/// A table's window is `[start, end)` before and after. Removing `removed` (a prefix of the
/// old window for append, blink and ring tables; a suffix for a keyed table), replacing the
/// rows at [`modified`](Self::modified) (keyed tables only) and appending `added` (always the
/// end of the new window) turns the old window into the new one. A keyed table never has both
/// `removed` and `added` in one update: it shrinks or grows at the end. Rows that were appended and evicted
/// in the same cycle (a ring fed more than its capacity at once) are in neither range and in no
/// batch. [`batches`](Self::batches) hold exactly the `added` rows, in order, shared with the
/// table's storage (never copied).
#[derive(Debug, Clone)]
pub struct TableUpdate {
    pub(crate) step: Step,
    pub(crate) removed: Range<u64>,
    pub(crate) added: Range<u64>,
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) modified: Modified,
}

/// The rows a keyed table's cycle modified in place.
#[derive(Debug, Clone, Default)]
pub(crate) struct Modified {
    /// Ascending positions, all held before and after the cycle.
    pub(crate) positions: Vec<u64>,
    /// The new rows at `positions`, in order.
    pub(crate) batch: Option<RecordBatch>,
    /// Per modified row, `width` bytes: bit `c` says column `c` was written. Empty when every
    /// column of every modified row was.
    pub(crate) masks: Vec<u8>,
    pub(crate) width: usize,
}

impl Modified {
    pub(crate) fn is_modified(&self, i: usize, column: usize) -> bool {
        if self.masks.is_empty() {
            return i < self.positions.len();
        }
        self.masks
            .get(i * self.width + column / 8)
            .is_some_and(|b| b & (1 << (column % 8)) != 0)
    }
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
        crate::table::chunk::range_len(&self.added)
    }

    /// The positions a keyed table's cycle modified in place, ascending (empty for other
    /// kinds). A modified row may hold a different key than before: deleting a key moves the
    /// table's last row into its place (see [`TableKind::Keyed`](crate::TableKind::Keyed)).
    pub fn modified(&self) -> &[u64] {
        &self.modified.positions
    }

    /// The new rows at [`modified`](Self::modified), in the same order; `None` when no row
    /// was modified.
    pub fn modified_batch(&self) -> Option<&RecordBatch> {
        self.modified.batch.as_ref()
    }

    /// How many rows were modified in place.
    pub fn num_modified(&self) -> usize {
        self.modified.positions.len()
    }

    /// Whether column `column` of the `i`th modified row was written this cycle: every column
    /// of a row upserted whole or moved, only the given ones of a partial upsert.
    pub fn is_modified(&self, i: usize, column: usize) -> bool {
        self.modified.is_modified(i, column)
    }

    /// The columns the `i`th modified row had written, as a bit mask: bit `c % 8` of byte
    /// `c / 8` is column `c` (the format of the Flight stream's `masks`). `None` when every
    /// column was written (a whole-row upsert, a moved row), or when there is no such row.
    ///
    /// No copy: a slice of the update's own masks.
    pub fn modified_mask(&self, i: usize) -> Option<&[u8]> {
        let m = &self.modified;
        if m.masks.is_empty() || i >= m.positions.len() {
            return None;
        }
        m.masks.get(i * m.width..(i + 1) * m.width)
    }

    /// Whether any modified row had column `column` written: Deephaven's modified column set.
    pub fn column_modified(&self, column: usize) -> bool {
        (0..self.num_modified()).any(|i| self.modified.is_modified(i, column))
    }

    /// How many rows were removed.
    pub fn num_removed(&self) -> usize {
        crate::table::chunk::range_len(&self.removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(positions: Vec<u64>, masks: Vec<u8>, width: usize) -> TableUpdate {
        TableUpdate {
            step: Step(1),
            removed: 0..0,
            added: 0..0,
            batches: Vec::new(),
            modified: Modified {
                positions,
                batch: None,
                masks,
                width,
            },
        }
    }

    #[test]
    fn smoke() {
        let u = update(vec![3, 8], Vec::new(), 0);
        assert_eq!(u.modified_mask(0), None, "every column written");
        assert!(u.is_modified(1, 11));
    }

    #[test]
    fn modified_masks_are_the_written_columns_of_each_row() {
        // Nine columns, two bytes a row: row 0 wrote columns 1 and 8, row 1 column 0.
        let u = update(vec![3, 8], vec![0b10, 0b1, 0b1, 0], 2);
        assert_eq!(u.modified_mask(0), Some(&[0b10, 0b1][..]));
        assert_eq!(u.modified_mask(1), Some(&[0b1, 0][..]));
        assert_eq!(u.modified_mask(2), None, "no third row");
        for (i, c) in [(0, 1), (0, 8), (1, 0)] {
            assert!(u.is_modified(i, c), "row {i} column {c}");
        }
        assert!(!u.is_modified(0, 0) && !u.is_modified(1, 8));
    }
}
