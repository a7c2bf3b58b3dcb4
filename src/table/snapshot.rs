//! Snapshots: an immutable view of one table at one step.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::step::Step;
use crate::table::chunk::{slice_chunks, Chunks};

/// The rows of a table at one step: lock-free to take, immutable, cheap to clone.
///
/// A snapshot shares its chunks with the table (no row is copied) and stays valid however the
/// table changes afterwards. [`step`](Self::step) is the step of the table's last change: the
/// table's content is the same at every step from it until the next change.
///
/// Holding a snapshot keeps its chunks alive, so an old snapshot of a ring or blink table
/// keeps rows the table has evicted in memory: drop snapshots you are done with.
#[derive(Clone)]
pub struct TableSnapshot {
    inner: Arc<SnapshotInner>,
}

pub(crate) struct SnapshotInner {
    pub(crate) step: Step,
    pub(crate) rows: Range<u64>,
    pub(crate) chunks: Chunks,
    pub(crate) schema: SchemaRef,
    /// A keyed table's key columns (empty for other kinds).
    pub(crate) key: Arc<[usize]>,
}

impl TableSnapshot {
    pub(crate) fn from_inner(inner: Arc<SnapshotInner>) -> Self {
        Self { inner }
    }

    /// The step at which the table last changed.
    pub fn step(&self) -> Step {
        self.inner.step
    }

    /// The positions of the rows the snapshot holds, `[start, end)`.
    pub fn rows(&self) -> Range<u64> {
        self.inner.rows.clone()
    }

    /// How many rows the snapshot holds.
    pub fn num_rows(&self) -> usize {
        crate::table::chunk::range_len(&self.inner.rows)
    }

    /// Whether the snapshot holds no rows.
    pub fn is_empty(&self) -> bool {
        self.inner.rows.is_empty()
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.inner.schema
    }

    /// The stored chunks, in row order. O(1) to start, no copy.
    pub fn batches(&self) -> impl Iterator<Item = &RecordBatch> + '_ {
        self.inner.chunks.iter().map(|c| &c.batch)
    }

    /// How many chunks hold the rows.
    pub fn num_chunks(&self) -> usize {
        self.inner.chunks.len()
    }

    /// The rows at positions `range` (clamped to [`rows`](Self::rows)), as slices of chunks.
    ///
    /// Cost O(log chunks + chunks returned), no row copied: a viewer can show rows 9,000,000
    /// to 9,000,050 of a 10M-row table as cheaply as the first 50.
    pub fn slice(&self, range: Range<u64>) -> Vec<RecordBatch> {
        slice_chunks(&self.inner.chunks, range)
    }

    /// All the rows as one batch. Costs O(rows): it copies every row.
    ///
    /// # Errors
    ///
    /// [`Error::Arrow`](crate::Error::Arrow) if Arrow cannot concatenate the chunks.
    pub fn to_batch(&self) -> Result<RecordBatch> {
        let batches: Vec<&RecordBatch> = self.batches().collect();
        Ok(arrow_select::concat::concat_batches(
            &self.inner.schema,
            batches,
        )?)
    }
}

impl TableSnapshot {
    /// A keyed table's key columns, by index (empty for other kinds).
    pub fn key_columns(&self) -> &[usize] {
        &self.inner.key
    }

    /// The chunks with the position of their first row, in order.
    pub(crate) fn chunk_starts(&self) -> impl Iterator<Item = (u64, &RecordBatch)> + '_ {
        self.inner.chunks.iter().map(|c| (c.start, &c.batch))
    }

    /// The chunk holding `position` (which the snapshot holds), with its first position.
    pub(crate) fn chunk_holding(&self, position: u64) -> Option<(u64, &RecordBatch)> {
        let i = crate::table::chunk::chunk_index(&self.inner.chunks, position);
        let c = self.inner.chunks.get(i)?;
        (c.start <= position && position < c.end()).then_some((c.start, &c.batch))
    }
}

impl fmt::Debug for TableSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSnapshot")
            .field("step", &self.inner.step)
            .field("rows", &self.inner.rows)
            .field("chunks", &self.inner.chunks.len())
            .finish_non_exhaustive()
    }
}
