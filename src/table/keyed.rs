//! Keyed tables: upsert and delete by key, over dense slots.
//!
//! # Layout
//!
//! A keyed table shows one row per live key, at positions `0..n` (its *slots*), stored as
//! chunks of [`CHUNK_ROWS`] rows aligned on multiples of it. A cycle resolves its input to
//! one final operation per key (the last one wins; a partial upsert merges into what the key
//! already has), then:
//!
//! - a key that exists and is upserted is rewritten in its slot (a *modified* row);
//! - a new key fills the slot of a key deleted this cycle, or goes at the end (*added*);
//! - a deleted slot that no new key fills takes the table's last row (the row moves: a
//!   *modified* row with every column written), so the table shrinks at the end (*removed*
//!   is a suffix).
//!
//! With a capacity (`Keyed { capacity: Some(n) }`, a ring and a key together) the table keeps
//! the `n` most recently written keys: after a cycle's operations the least recently written
//! ones are deleted. A key written and evicted in the same cycle never shows.
//!
//! # Cost
//!
//! The rows a cycle writes are gathered into one batch (the update's modified and added
//! rows), then written into the chunks holding a written slot. A chunk column no write
//! changed is shared with earlier snapshots, which are never mutated; a changed one is
//! written in place into its *spare*, the column's version before its last change, which no
//! snapshot holds any more (`spare`: double buffering, checked by arrow's refusal to hand out
//! a shared buffer). So a cycle costs O(rows written × columns) plus O(columns) per chunk
//! touched, whatever the table's size. Where the spare is still shared (a reader holds an old
//! snapshot) or cannot take the change (a string that changes length), that chunk column is
//! merged instead, at O([`CHUNK_ROWS`]). Deleted slots are reused at once, so churn never
//! grows the table, and no memory stays behind a deleted key.
//!
//! # Memory
//!
//! The rows' Arrow data, plus a spare copy of every chunk column that changed (up to twice
//! the data for a table whose every chunk is written), plus the key index (see `index`).
//!
//! # Input
//!
//! Staged input reaches the cycle as `RecordBatch`es in one of four shapes, checked when they
//! were staged ([`check_batch`]):
//!
//! - every column, in order: a whole-row upsert of each row;
//! - some columns by name, the key among them: a partial upsert; the other columns keep their
//!   values, or are null for a new key (so they must be nullable);
//! - schema metadata `tickertable.op = delete` and at least the key columns: a delete of each
//!   row's key (a missing key is ignored);
//! - every column (nullable) and a last `__tickertable_op` binary column: per row, a bit mask
//!   of the columns given (bit `c % 8` of byte `c / 8`); an empty mask deletes. Row writers
//!   stage this shape, and a remote writer may send it over Flight.
//!
//! # Parts
//!
//! - `input`: the input shapes, the masks and [`check_batch`];
//! - `index`: key bytes → slot, and slot → key bytes;
//! - `recency`: the least-recently-written list of a table with a capacity;
//! - `resolve`: the input → one final operation per key;
//! - `layout`: which slots empty, which are written, where each row and cell comes from;
//! - `rebuild`: gathering the written rows and writing them into the chunks;
//! - `spare`: each changed chunk column's previous version, to write in place;
//! - `apply`: [`KeyedState::apply`], the phases in order, and the update.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_row::{RowConverter, SortField};
use arrow_schema::{Schema, SchemaRef};

use crate::error::Result;
use crate::publish::columns::ColumnBuilder;
use crate::schema::OwnedValue;

mod apply;
mod index;
mod input;
mod layout;
mod rebuild;
mod recency;
mod resolve;
mod spare;

use index::KeyIndex;
pub(crate) use input::{check_batch, mask_width, staged_schema, Masks};
pub use input::{OP_COLUMN, OP_METADATA};
use layout::Layout;
use recency::Recency;
use resolve::Resolved;
use spare::Spares;

/// One-row arrays of the key columns `key` of `schema` holding `values` (one per key column,
/// in key order), for a lookup.
///
/// # Errors
///
/// The errors of [`check_value`](crate::schema::check_value) for a value that does not fit
/// its column, and [`Error::UnsupportedType`](crate::Error::UnsupportedType) for a key type
/// values cannot hold.
pub(crate) fn key_arrays(
    table: &str,
    schema: &SchemaRef,
    key: &[usize],
    values: &[OwnedValue],
) -> Result<Vec<ArrayRef>> {
    key.iter()
        .zip(values)
        .map(|(&k, v)| {
            let value = v.as_value();
            crate::schema::check_value(table, schema, k, &value)?;
            let mut builder = ColumnBuilder::try_new(schema.field(k), 1)?;
            builder.append(&value);
            Ok(builder.finish())
        })
        .collect()
}

/// Rows per chunk of a keyed table. Large, since a cycle's cost per chunk touched is O(columns)
/// when its columns are written in place: a million keys are 245 chunks, and a cycle writing
/// 10,000 random keys touches them all. A chunk column that must be merged costs this many
/// rows.
pub(crate) const CHUNK_ROWS: usize = 4096;

/// A keyed table's key index, recency order and per-cycle buffers; its rows live in the
/// table's `ChunkLog`. Guarded by the global lock, as the table's state is.
pub(crate) struct KeyedState {
    schema: SchemaRef,
    key: Arc<[usize]>,
    capacity: Option<usize>,
    /// Rows per chunk: [`CHUNK_ROWS`], smaller in tests.
    chunk_rows: usize,
    index: KeyIndex,
    /// Only with a capacity.
    recency: Option<Recency>,
    /// Buffers reused from cycle to cycle.
    resolved: Resolved,
    layout: Layout,
    /// The previous version of each changed chunk column, rewritten in place next time.
    spares: Spares,
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("key", &self.key)
            .field("capacity", &self.capacity)
            .field("keys", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl KeyedState {
    /// An empty keyed table of `schema`, keyed by the columns `key`, keeping at most
    /// `capacity` keys if given.
    ///
    /// # Panics
    ///
    /// If the key columns cannot be keys: [`supports`](Self::supports) says so first.
    pub(crate) fn new(schema: &SchemaRef, key: Arc<[usize]>, capacity: Option<usize>) -> Self {
        let index = KeyIndex::new(schema, &key);
        Self {
            resolved: Resolved::new(schema.fields().len(), &index),
            schema: schema.clone(),
            key,
            capacity,
            chunk_rows: CHUNK_ROWS,
            index,
            recency: capacity.map(|_| Recency::new()),
            layout: Layout::default(),
            spares: Spares::default(),
        }
    }

    /// With a capacity, each slot's place in the recency order (0 the least recently
    /// written), for a checkpoint; `None` without one. O(keys), once per checkpoint.
    pub(crate) fn recency_ranks(&self) -> Option<Vec<u32>> {
        self.recency.as_ref().map(|r| r.ranks(self.index.len()))
    }

    /// Puts the slots back in the recency order `ranks` gave (a checkpoint's, read back
    /// into a table just rebuilt from its rows, whose slots are the checkpoint's positions).
    ///
    /// # Errors
    ///
    /// If `ranks` is not a permutation of `0..keys` (it came from a damaged file), saying
    /// why; nothing changes then.
    pub(crate) fn restore_recency(&mut self, ranks: &[u32]) -> Result<(), String> {
        let Some(recency) = &mut self.recency else {
            return Err("a recency order for a keyed table without a capacity".to_owned());
        };
        let n = self.index.len();
        if ranks.len() != n {
            return Err(format!("{} recency ranks for {n} keys", ranks.len()));
        }
        let mut order = vec![usize::MAX; n];
        for (slot, &rank) in ranks.iter().enumerate() {
            match order.get_mut(rank as usize) {
                Some(o) if *o == usize::MAX => *o = slot,
                _ => return Err(format!("recency rank {rank} repeated or out of 0..{n}")),
            }
        }
        recency.restore(&order);
        Ok(())
    }

    /// Whether the key columns' types can be keys.
    ///
    /// # Errors
    ///
    /// [`Error::Arrow`](crate::Error::Arrow) if `arrow-row` cannot encode them.
    pub(crate) fn supports(schema: &Schema, key: &[usize]) -> Result<()> {
        let fields = key
            .iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect();
        RowConverter::new(fields)?;
        Ok(())
    }

    /// The slot, which is the position, of the key in row `row` of `key` (the key columns,
    /// in key order) as of the last cycle; `None` if the key is not in the table, or `key`
    /// does not fit the key columns (in number or type) or has no row `row`.
    ///
    /// Expected O(key width): one encoding, one hash, one probe.
    pub(crate) fn slot_of(&self, key: &[ArrayRef], row: usize) -> Option<usize> {
        self.index.slot_of(key, row)
    }

    /// The same state with chunks of `rows` rows, for tests that cross chunks with few keys.
    #[cfg(test)]
    fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows;
        self
    }
}
