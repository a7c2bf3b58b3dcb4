//! Spare chunk columns: the version of each chunk column before its last change, rewritten in
//! place the next time the column changes.
//!
//! A snapshot never changes, so a chunk column that a cycle writes cannot be written in
//! place: the last published snapshot holds it. But the version before it is usually held by
//! nobody else once that snapshot has been replaced, and it differs from the current column
//! only in the rows the last change wrote (its *lag*). So each changed chunk column keeps its
//! previous version as a spare: the next change to the column takes the spare's buffers
//! (only if no snapshot, update or reader still holds them: arrow's `Buffer::into_mutable`
//! checks that the buffer is not shared), copies the lag rows from the current column, writes
//! the new rows, and the current column becomes the spare in turn. Double buffering, as a
//! game's frame buffers do; the cost of a change is its rows, not the chunk's.
//!
//! When the spare is still shared (a reader kept an old snapshot, or a subscriber has not
//! taken an update whose added rows slice the chunk), or the change does not fit it (a string
//! of another length, a type without a fast path), the column is rebuilt by merging, as if
//! there were no spare: correct, at O(chunk rows). That happens once per held version.
//!
//! # Memory
//!
//! A chunk column that changes keeps two versions: a table whose every chunk is written holds
//! its data twice (plus the lag rows, a `u32` each). Columns that never change (a key
//! rewritten in place, columns a partial upsert leaves out) keep one.

use arrow_array::ArrayRef;

/// The previous version of one chunk column and the rows where it may differ from the
/// current one.
#[derive(Debug)]
pub(super) struct Spare {
    pub(super) array: ArrayRef,
    /// Rows (in the chunk) the change after `array` wrote; every other row of `array` below
    /// the current column's length is equal to it.
    pub(super) lag: Vec<u32>,
}

/// The spare of every chunk column, by chunk index then column; guarded by the global lock,
/// as the table's state is.
#[derive(Debug, Default)]
pub(super) struct Spares {
    chunks: Vec<Vec<Option<Spare>>>,
}

impl Spares {
    /// Takes chunk `chunk`'s spare of column `column`, if there is one.
    pub(super) fn take(&mut self, chunk: usize, column: usize) -> Option<Spare> {
        self.chunks.get_mut(chunk)?.get_mut(column)?.take()
    }

    /// Keeps `array`, the version of chunk `chunk`'s column `column` just replaced, as its
    /// spare; `rows` are the rows (in the chunk) the replacement wrote, kept in `lag` (a
    /// buffer to reuse). A change that wrote most of the chunk keeps no spare: rewriting it
    /// would cost as much as a merge.
    pub(super) fn keep(
        &mut self,
        chunk: usize,
        column: usize,
        ncols: usize,
        array: ArrayRef,
        rows: &[usize],
        mut lag: Vec<u32>,
    ) {
        if self.chunks.len() <= chunk {
            self.chunks.resize_with(chunk + 1, Vec::new);
        }
        let columns = &mut self.chunks[chunk];
        if columns.len() < ncols {
            columns.resize_with(ncols, || None);
        }
        columns[column] =
            (rows.len() * 2 <= array.len()).then(|| {
                lag.clear();
                lag.extend(rows.iter().map(|&r| {
                    u32::try_from(r).expect("invariant: a chunk has fewer than 2^32 rows")
                }));
                Spare { array, lag }
            });
    }

    /// Drops the spares of the chunks from `chunks` on (the table shrank past them).
    pub(super) fn truncate(&mut self, chunks: usize) {
        self.chunks.truncate(chunks);
    }

    /// The bytes of Arrow memory the spares hold, for tests and stats.
    #[cfg(test)]
    pub(super) fn array_bytes(&self) -> usize {
        self.chunks
            .iter()
            .flatten()
            .flatten()
            .map(|s| s.array.get_array_memory_size())
            .sum()
    }
}
