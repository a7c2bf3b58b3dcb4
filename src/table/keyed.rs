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
//! Only the chunks holding a written slot are rebuilt (Arrow's `interleave`, O(chunk length
//! × columns) each); the rest are shared with earlier snapshots. So a cycle costs
//! O(keys changed × chunk length) at most, and never grows with churn: deleted slots are
//! reused at once, key buffers are reused, nothing stays behind a deleted key.
//!
//! With a capacity (`Keyed { capacity: Some(n) }`, a ring and a key together) the table keeps
//! the `n` most recently written keys: after a cycle's operations the least recently written
//! ones are deleted. A key written and evicted in the same cycle never shows.
//!
//! # Input
//!
//! Staged input reaches the cycle as `RecordBatch`es in one of four shapes, checked when they
//! were staged ([`check_batch`]):
//!
//! - every column, in order: a whole-row upsert of each row (zero copy);
//! - some columns by name, the key among them: a partial upsert; the other columns keep their
//!   values, or are null for a new key (so they must be nullable);
//! - schema metadata `tickertable.op = delete` and at least the key columns: a delete of each
//!   row's key (a missing key is ignored);
//! - every column (nullable) and a last `__tickertable_op` binary column: per row, a bit mask
//!   of the columns given (bit `c % 8` of byte `c / 8`); an empty mask deletes. Row writers
//!   stage this shape, and a remote writer may send it over Flight.

use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{make_array, new_null_array, Array, ArrayRef, RecordBatch};
use arrow_data::transform::MutableArrayData;
use arrow_data::ArrayData;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashTable;

use crate::error::{Error, Result};
use crate::step::Step;
use crate::subscribe::update::Modified;
use crate::subscribe::TableUpdate;
use crate::table::chunk::{slice_chunks, ChunkLog};

/// The name of the per-row operation column of the mixed input shape.
pub const OP_COLUMN: &str = "__tickertable_op";
/// The schema metadata key that marks a batch of deletes (value `delete`).
pub const OP_METADATA: &str = "tickertable.op";
/// Rows per chunk of a keyed table.
pub(crate) const CHUNK_ROWS: usize = 256;

/// The bytes of a column mask for `columns` columns.
pub(crate) fn mask_width(columns: usize) -> usize {
    columns.div_ceil(8)
}

/// The operation masks writers stage for whole rows: every column given (an upsert), and
/// none (a delete).
#[derive(Debug, Clone)]
pub(crate) struct Masks {
    pub(crate) upsert: Vec<u8>,
    pub(crate) delete: Vec<u8>,
}

impl Masks {
    pub(crate) fn new(columns: usize) -> Self {
        let mut upsert = vec![0u8; mask_width(columns)];
        for c in 0..columns {
            upsert[c / 8] |= 1 << (c % 8);
        }
        Self {
            delete: vec![0u8; upsert.len()],
            upsert,
        }
    }
}

fn bit(mask: &[u8], c: usize) -> bool {
    mask.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0)
}

/// The schema row writers and multithreaded writers stage for a keyed table: every column
/// nullable (a delete row has only its key) and the operation column last.
pub(crate) fn staged_schema(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Binary, false));
    Arc::new(Schema::new(fields))
}

/// The shape of one staged batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Upsert,
    Delete,
    /// The operation column's index.
    Mixed(usize),
}

fn shape_of(batch: &RecordBatch) -> Shape {
    let schema = batch.schema_ref();
    if let Some(last) = schema.fields().last() {
        if last.name() == OP_COLUMN {
            return Shape::Mixed(schema.fields().len() - 1);
        }
    }
    if schema.metadata().get(OP_METADATA).map(String::as_str) == Some("delete") {
        Shape::Delete
    } else {
        Shape::Upsert
    }
}

/// Per table column, the batch column holding it.
fn column_map(schema: &SchemaRef, batch: &RecordBatch, shape: Shape) -> Vec<Option<usize>> {
    if matches!(shape, Shape::Mixed(_)) || Arc::ptr_eq(schema, batch.schema_ref()) {
        return (0..schema.fields().len()).map(Some).collect();
    }
    let given = batch.schema_ref();
    schema
        .fields()
        .iter()
        .map(|f| given.index_of(f.name()).ok())
        .collect()
}

/// Checks a batch staged into a keyed table and returns what to stage: the batch, re-labelled
/// with the table's schema when it has every column.
///
/// # Errors
///
/// [`Error::InvalidOp`] for a bad operation tag or mask, [`Error::MissingKeyColumn`],
/// [`Error::NoColumnNamed`], [`Error::UnsetColumn`] (a partial upsert leaving out a column
/// that is not nullable), and the errors of [`crate::schema::check_batch`].
pub(crate) fn check_batch(
    table: &str,
    schema: &SchemaRef,
    key: &[usize],
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let shape = shape_of(batch);
    let given = batch.schema_ref();
    if let Some(op) = given.metadata().get(OP_METADATA) {
        if op != "delete" && op != "upsert" {
            return Err(Error::InvalidOp {
                table: table.to_owned(),
                reason: format!("{OP_METADATA} must be \"upsert\" or \"delete\", found {op:?}"),
            });
        }
    }
    match shape {
        Shape::Mixed(op) => check_mixed(table, schema, key, batch, op),
        Shape::Delete => {
            for &k in key {
                check_named(table, schema, batch, k, true)?;
            }
            Ok(batch.clone())
        }
        Shape::Upsert => {
            if given.fields().len() == schema.fields().len()
                && given
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name())
            {
                return crate::schema::check_batch(table, schema, batch);
            }
            for f in given.fields() {
                if schema.index_of(f.name()).is_err() {
                    return Err(Error::NoColumnNamed {
                        table: table.to_owned(),
                        column: f.name().clone(),
                    });
                }
            }
            let mut names = std::collections::HashSet::new();
            if let Some(dup) = given.fields().iter().find(|f| !names.insert(f.name())) {
                return Err(Error::InvalidOp {
                    table: table.to_owned(),
                    reason: format!("column {:?} given twice", dup.name()),
                });
            }
            for (c, field) in schema.fields().iter().enumerate() {
                let present = check_named(table, schema, batch, c, key.contains(&c))?;
                if !present && !field.is_nullable() {
                    return Err(Error::UnsetColumn {
                        table: table.to_owned(),
                        column: field.name().clone(),
                    });
                }
            }
            Ok(batch.clone())
        }
    }
}

/// Checks table column `c` in a batch that names its columns: its type, its nulls. Returns
/// whether it is there; a missing key column is an error when `required`.
fn check_named(
    table: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
    c: usize,
    required: bool,
) -> Result<bool> {
    let field = schema.field(c);
    let Ok(i) = batch.schema_ref().index_of(field.name()) else {
        if required {
            return Err(Error::MissingKeyColumn {
                table: table.to_owned(),
                column: field.name().clone(),
            });
        }
        return Ok(false);
    };
    let found = batch.schema_ref().field(i).data_type();
    if found != field.data_type() {
        return Err(Error::SchemaMismatch {
            table: table.to_owned(),
            column: field.name().clone(),
            expected: field.data_type().clone(),
            found: found.clone(),
        });
    }
    if !field.is_nullable() && batch.column(i).null_count() > 0 {
        return Err(Error::NullInNonNullable {
            table: table.to_owned(),
            column: field.name().clone(),
        });
    }
    Ok(true)
}

fn check_mixed(
    table: &str,
    schema: &SchemaRef,
    key: &[usize],
    batch: &RecordBatch,
    op: usize,
) -> Result<RecordBatch> {
    let invalid = |reason: String| Error::InvalidOp {
        table: table.to_owned(),
        reason,
    };
    let ncols = schema.fields().len();
    if op != ncols {
        return Err(Error::ColumnCount {
            table: table.to_owned(),
            expected: ncols + 1,
            found: batch.num_columns(),
        });
    }
    crate::schema::check_fields(table, schema, batch)?;
    let Some(masks) = batch.column(op).as_binary_opt::<i32>() else {
        return Err(invalid(format!(
            "{OP_COLUMN} must be Binary, found {}",
            batch.column(op).data_type()
        )));
    };
    let width = mask_width(ncols);
    for r in 0..batch.num_rows() {
        if masks.is_null(r) || masks.value(r).len() != width {
            return Err(invalid(format!(
                "row {r}: the {OP_COLUMN} mask must be {width} bytes"
            )));
        }
        let mask = masks.value(r);
        let delete = mask.iter().all(|&b| b == 0);
        if (ncols..width * 8).any(|c| bit(mask, c)) {
            return Err(invalid(format!("row {r}: mask bits past the last column")));
        }
        for (c, field) in schema.fields().iter().enumerate() {
            let given = bit(mask, c);
            let is_key = key.contains(&c);
            if !delete && is_key && !given {
                return Err(Error::MissingKeyColumn {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
            if !delete && !given && !field.is_nullable() {
                return Err(Error::UnsetColumn {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
            let needs_value = if delete { is_key } else { given };
            if needs_value && !field.is_nullable() && batch.column(c).is_null(r) {
                return Err(Error::NullInNonNullable {
                    table: table.to_owned(),
                    column: field.name().clone(),
                });
            }
        }
    }
    Ok(batch.clone())
}

/// Where one cell of a written row comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    /// The key's current value (its old slot), or null for a key new this cycle.
    Keep,
    /// Row `row` of input batch `batch`.
    Input { batch: u32, row: u32 },
}

/// One key touched this cycle.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Where its key bytes are: row `row` of input batch `batch`.
    batch: u32,
    row: u32,
    /// Its slot before the cycle.
    old: Option<usize>,
    /// The final operation deletes it.
    deleted: bool,
    /// Its unwritten columns are null, not its old values (new, or deleted and re-upserted).
    fresh: bool,
    /// Evicted by the capacity this cycle.
    evicted: bool,
    /// The sequence number of its last operation.
    seq: u64,
}

/// A slot written this cycle and where its row comes from.
#[derive(Debug, Clone, Copy)]
struct Write {
    target: usize,
    from: From,
}

/// A source array of a rebuilt chunk's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The chunk's own old column.
    Own,
    Null,
    /// Another old chunk.
    Old(usize),
    /// An input batch.
    Input(usize),
}

#[derive(Debug, Clone, Copy)]
enum From {
    /// An entry's resolved row.
    Entry(usize),
    /// An untouched row moving from this old slot.
    Moved(usize),
}

const NIL: usize = usize::MAX;

/// A keyed table's key index and recency order; its rows live in the table's `ChunkLog`.
pub(crate) struct KeyedState {
    schema: SchemaRef,
    key: Arc<[usize]>,
    capacity: Option<usize>,
    converter: RowConverter,
    hasher: foldhash::fast::RandomState,
    /// Key hash → slot.
    index: HashTable<usize>,
    /// Slot → key bytes; buffers past `n` are kept for reuse.
    keys: Vec<Vec<u8>>,
    n: usize,
    /// Recency (only with a capacity): a doubly linked list of slots, oldest first.
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize,
    tail: usize,
    /// Scratch reused from cycle to cycle.
    entries: Vec<Entry>,
    srcs: Vec<Src>,
    pending: HashTable<usize>,
}

impl std::fmt::Debug for KeyedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedState")
            .field("key", &self.key)
            .field("capacity", &self.capacity)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// The key bytes of an entry.
fn entry_key<'a>(rows: &'a [Rows], e: &Entry) -> &'a [u8] {
    rows[e.batch as usize].row(e.row as usize).data()
}

impl KeyedState {
    pub(crate) fn new(schema: &SchemaRef, key: Arc<[usize]>, capacity: Option<usize>) -> Self {
        let fields = key
            .iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect();
        Self {
            schema: schema.clone(),
            converter: RowConverter::new(fields)
                .expect("invariant: key column types were checked when the table was made"),
            key,
            capacity,
            hasher: foldhash::fast::RandomState::default(),
            index: HashTable::new(),
            keys: Vec::new(),
            n: 0,
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            entries: Vec::new(),
            srcs: Vec::new(),
            pending: HashTable::new(),
        }
    }

    /// Whether the key columns' types can be keys.
    pub(crate) fn supports(schema: &Schema, key: &[usize]) -> Result<()> {
        let fields = key
            .iter()
            .map(|&k| SortField::new(schema.field(k).data_type().clone()))
            .collect();
        RowConverter::new(fields)?;
        Ok(())
    }

    /// Applies one cycle's input; see the [module docs](self).
    #[allow(clippy::too_many_lines)] // one pass in four phases, each commented
    pub(crate) fn apply(
        &mut self,
        step: Step,
        log: &mut ChunkLog,
        input: &[RecordBatch],
    ) -> Option<TableUpdate> {
        let schema = &self.schema.clone();
        let ncols = schema.fields().len();
        let n = self.n;
        debug_assert_eq!(log.rows(), 0..n as u64);

        // 1. Resolve the input to one entry per key, last operation winning.
        let shapes: Vec<Shape> = input.iter().map(shape_of).collect();
        let maps: Vec<Vec<Option<usize>>> = input
            .iter()
            .zip(&shapes)
            .map(|(b, &s)| column_map(schema, b, s))
            .collect();
        let rows: Vec<Rows> = input
            .iter()
            .zip(&maps)
            .map(|(b, map)| {
                let cols: Vec<ArrayRef> = self
                    .key
                    .iter()
                    .map(|&k| {
                        b.column(map[k].expect("invariant: checked at staging"))
                            .clone()
                    })
                    .collect();
                self.converter
                    .convert_columns(&cols)
                    .expect("invariant: key columns have the key's types")
            })
            .collect();
        self.entries.clear();
        self.srcs.clear();
        self.pending.clear();
        let mut seq = 0u64;
        for (b, batch) in input.iter().enumerate() {
            let masks = match shapes[b] {
                Shape::Mixed(op) => Some(batch.column(op).as_binary::<i32>()),
                _ => None,
            };
            for r in 0..batch.num_rows() {
                let bytes = rows[b].row(r).data();
                let h = self.hasher.hash_one(bytes);
                let (entries, keys) = (&self.entries, &self.keys);
                let found = self
                    .pending
                    .find(h, |&e| entry_key(&rows, &entries[e]) == bytes)
                    .copied();
                let e = if let Some(e) = found {
                    e
                } else {
                    let old = self.index.find(h, |&s| keys[s] == bytes).copied();
                    let e = self.entries.len();
                    self.entries.push(Entry {
                        batch: u32::try_from(b).expect("invariant: fewer than 2^32 batches"),
                        row: u32::try_from(r).expect("invariant: fewer than 2^32 rows"),
                        old,
                        deleted: false,
                        fresh: old.is_none(),
                        evicted: false,
                        seq,
                    });
                    self.srcs.extend(std::iter::repeat_n(Src::Keep, ncols));
                    let (entries, pending) = (&self.entries, &mut self.pending);
                    pending.insert_unique(h, e, |&x| {
                        self.hasher.hash_one(entry_key(&rows, &entries[x]))
                    });
                    e
                };
                let mask = masks.map(|m| m.value(r));
                let delete = match shapes[b] {
                    Shape::Delete => true,
                    Shape::Mixed(_) => mask.is_some_and(|m| m.iter().all(|&x| x == 0)),
                    Shape::Upsert => false,
                };
                let entry = &mut self.entries[e];
                entry.seq = seq;
                seq += 1;
                let srcs = &mut self.srcs[e * ncols..(e + 1) * ncols];
                if delete {
                    entry.deleted = true;
                    entry.fresh = true;
                    srcs.fill(Src::Keep);
                    continue;
                }
                entry.deleted = false;
                let src = Src::Input {
                    batch: u32::try_from(b).expect("invariant: fewer than 2^32 batches"),
                    row: u32::try_from(r).expect("invariant: fewer than 2^32 rows"),
                };
                for (c, slot) in srcs.iter_mut().enumerate() {
                    let given = match mask {
                        Some(m) => bit(m, c),
                        None => maps[b][c].is_some(),
                    };
                    if given {
                        *slot = src;
                    }
                }
            }
        }

        // 2. Apply the capacity: evict the least recently written keys.
        let mut removals: Vec<usize> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .filter_map(|e| e.old)
            .collect();
        let news = self
            .entries
            .iter()
            .filter(|e| !e.deleted && e.old.is_none())
            .count();
        if let Some(cap) = self.capacity {
            let live = n - removals.len() + news;
            let mut excess = live.saturating_sub(cap);
            let mut s = self.head;
            while excess > 0 && s != NIL {
                if self.entry_of_slot(s, &rows).is_none() {
                    removals.push(s);
                    excess -= 1;
                }
                s = self.next[s];
            }
            if excess > 0 {
                let mut order: Vec<usize> = (0..self.entries.len())
                    .filter(|&e| !self.entries[e].deleted)
                    .collect();
                order.sort_unstable_by_key(|&e| self.entries[e].seq);
                for e in order.into_iter().take(excess) {
                    let entry = &mut self.entries[e];
                    entry.evicted = true;
                    entry.deleted = true;
                    if let Some(old) = entry.old {
                        removals.push(old);
                    }
                }
            }
        }
        removals.sort_unstable();
        let new_entries: Vec<usize> = (0..self.entries.len())
            .filter(|&e| !self.entries[e].deleted && self.entries[e].old.is_none())
            .collect();
        let n2 = n - removals.len() + new_entries.len();

        // 3. Lay out the slots: new keys fill the holes first, then the end; rows past the new
        //    end move into the holes left.
        let mut writes: Vec<Write> = Vec::with_capacity(self.entries.len());
        let mut partial: Vec<bool> = Vec::with_capacity(self.entries.len());
        for (e, entry) in self.entries.iter().enumerate() {
            if let (false, Some(old)) = (entry.deleted, entry.old) {
                if old < n2 {
                    writes.push(Write {
                        target: old,
                        from: From::Entry(e),
                    });
                    let srcs = &self.srcs[e * ncols..(e + 1) * ncols];
                    partial.push(!entry.fresh && srcs.contains(&Src::Keep));
                }
            }
        }
        let holes: Vec<usize> = removals.iter().copied().filter(|&s| s < n2).collect();
        let mut holes = holes.into_iter();
        let mut appended = n;
        for &e in &new_entries {
            let target = holes.next().unwrap_or_else(|| {
                appended += 1;
                appended - 1
            });
            writes.push(Write {
                target,
                from: From::Entry(e),
            });
            partial.push(false);
        }
        let mut moves: Vec<(usize, usize)> = Vec::new();
        if n2 < n {
            let mut r = removals.iter().peekable();
            for s in n2..n {
                while r.next_if(|&&x| x < s).is_some() {}
                if r.next_if(|&&x| x == s).is_some() {
                    continue;
                }
                let hole = holes.next().expect("invariant: one hole per survivor");
                let from = match self.entry_of_slot(s, &rows) {
                    Some(e) => From::Entry(e),
                    None => From::Moved(s),
                };
                writes.push(Write { target: hole, from });
                partial.push(false);
                moves.push((s, hole));
            }
        }
        debug_assert!(holes.next().is_none());
        let mut order: Vec<usize> = (0..writes.len()).collect();
        order.sort_unstable_by_key(|&w| writes[w].target);

        // 4. Rebuild the chunks holding a written slot, then update the index.
        let old_chunks = log.chunks().clone();
        let mut touched: Vec<usize> = order
            .iter()
            .map(|&w| writes[w].target / CHUNK_ROWS)
            .collect();
        touched.dedup();
        let nulls: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        let mut rebuilt: Vec<(usize, RecordBatch)> = Vec::with_capacity(touched.len());
        let srcs = &self.srcs;
        let entries = &self.entries;
        let key = &self.key;
        // Where cell `c` of a written row comes from; `None`: the slot's own old value.
        let cell = |w: Write, c: usize| -> Option<(Source, usize)> {
            match w.from {
                From::Moved(s) => Some((Source::Old(s / CHUNK_ROWS), s % CHUNK_ROWS)),
                From::Entry(e) => {
                    let entry = entries[e];
                    let in_place = entry.old == Some(w.target);
                    match srcs[e * ncols + c] {
                        // A key rewritten in its own slot has the same key bytes.
                        _ if in_place && key.contains(&c) => None,
                        Src::Input { batch, row } => {
                            Some((Source::Input(batch as usize), row as usize))
                        }
                        Src::Keep => match (entry.fresh, entry.old) {
                            (false, Some(_)) if in_place => None,
                            (false, Some(old)) => {
                                Some((Source::Old(old / CHUNK_ROWS), old % CHUNK_ROWS))
                            }
                            _ => Some((Source::Null, 0)),
                        },
                    }
                }
            }
        };
        let input_data: Vec<Vec<Option<ArrayData>>> = input
            .iter()
            .zip(&maps)
            .map(|(b, map)| {
                map.iter()
                    .map(|m| m.map(|i| b.column(i).to_data()))
                    .collect()
            })
            .collect();
        let null_data: Vec<ArrayData> = nulls.iter().map(Array::to_data).collect();
        let mut cursor = 0;
        let mut cells: Vec<(usize, Option<(Source, usize)>)> = Vec::new();
        let mut sources: Vec<(Source, ArrayData)> = Vec::new();
        for &ci in &touched {
            let start = ci * CHUNK_ROWS;
            let end = (start + CHUNK_ROWS).min(n2);
            let first = cursor;
            while cursor < order.len() && writes[order[cursor]].target < end {
                cursor += 1;
            }
            let chunk_writes = &order[first..cursor];
            let old = old_chunks.get(ci).map(|c| &c.batch);
            let columns: Vec<ArrayRef> = (0..ncols)
                .map(|c| {
                    cells.clear();
                    cells.extend(chunk_writes.iter().map(|&w| {
                        let w = writes[w];
                        (w.target - start, cell(w, c))
                    }));
                    let untouched = cells.iter().all(|(_, src)| src.is_none());
                    match old {
                        Some(b) if untouched && b.num_rows() == end - start => {
                            return b.column(c).clone();
                        }
                        Some(b) if untouched => return b.column(c).slice(0, end - start),
                        _ => {}
                    }
                    // Runs of unchanged rows are copied in bulk, written rows one by one.
                    sources.clear();
                    sources.push((
                        Source::Own,
                        old.map_or_else(|| null_data[c].clone(), |b| b.column(c).to_data()),
                    ));
                    for (_, src) in &cells {
                        let Some((id, _)) = *src else { continue };
                        if sources.iter().any(|(s, _)| *s == id) {
                            continue;
                        }
                        let data = match id {
                            Source::Null | Source::Own => null_data[c].clone(),
                            Source::Old(o) => old_chunks[o].batch.column(c).to_data(),
                            Source::Input(b) => input_data[b][c]
                                .clone()
                                .expect("invariant: a given cell's column is in its batch"),
                        };
                        sources.push((id, data));
                    }
                    let refs: Vec<&ArrayData> = sources.iter().map(|(_, d)| d).collect();
                    let mut out = MutableArrayData::new(refs, true, end - start);
                    let mut at = 0;
                    for &(row, src) in &cells {
                        if at < row {
                            out.try_extend(0, at, row)
                                .expect("invariant: a chunk's offsets fit their type");
                        }
                        match src {
                            Some((id, r)) => {
                                let i = sources
                                    .iter()
                                    .position(|(s, _)| *s == id)
                                    .expect("invariant: sources were collected above");
                                out.try_extend(i, r, r + 1)
                                    .expect("invariant: a chunk's offsets fit their type");
                            }
                            None => out
                                .try_extend(0, row, row + 1)
                                .expect("invariant: a chunk's offsets fit their type"),
                        }
                        at = row + 1;
                    }
                    if at < end - start {
                        out.try_extend(0, at, end - start)
                            .expect("invariant: a chunk's offsets fit their type");
                    }
                    make_array(out.freeze())
                })
                .collect();
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .expect("invariant: checked input never puts a null where none is allowed");
            rebuilt.push((ci, batch));
        }
        log.truncate_to(n2.min(n) as u64);
        for (ci, batch) in &rebuilt {
            if *ci < log.chunks().len() {
                log.replace(*ci, batch.clone());
            } else {
                log.push(batch.clone());
            }
        }
        debug_assert_eq!(log.rows(), 0..n2 as u64);

        // The update: modified rows (held before and after), then the added tail.
        let keep = n.min(n2);
        let mut modified = Modified {
            width: mask_width(ncols),
            ..Modified::default()
        };
        let mut any_partial = false;
        let mut gather: Vec<(usize, usize)> = Vec::new();
        for &w in &order {
            let write = writes[w];
            if write.target >= keep {
                continue;
            }
            modified.positions.push(write.target as u64);
            let chunk = touched
                .binary_search(&(write.target / CHUNK_ROWS))
                .expect("invariant: written chunks were rebuilt");
            gather.push((chunk, write.target % CHUNK_ROWS));
            any_partial |= partial[w];
        }
        if !modified.positions.is_empty() {
            let columns: Vec<ArrayRef> = (0..ncols)
                .map(|c| {
                    let arrays: Vec<&dyn Array> =
                        rebuilt.iter().map(|(_, b)| b.column(c).as_ref()).collect();
                    arrow_select::interleave::interleave(&arrays, &gather)
                        .expect("invariant: rebuilt chunks share the schema")
                })
                .collect();
            modified.batch = Some(
                RecordBatch::try_new(schema.clone(), columns)
                    .expect("invariant: rows of the table fit its schema"),
            );
            if any_partial {
                for &w in &order {
                    let write = writes[w];
                    if write.target >= keep {
                        continue;
                    }
                    let mut mask = vec![0u8; modified.width];
                    for c in 0..ncols {
                        let written = match write.from {
                            From::Entry(e) if partial[w] => srcs[e * ncols + c] != Src::Keep,
                            _ => true,
                        };
                        if written {
                            mask[c / 8] |= 1 << (c % 8);
                        }
                    }
                    modified.masks.extend_from_slice(&mask);
                }
            }
        }
        let added: Range<u64> = keep as u64..n2 as u64;
        let removed: Range<u64> = n2.min(n) as u64..n as u64;
        let batches = slice_chunks(log.chunks(), added.clone());

        self.reindex(&rows, &removals, &moves, &writes, n2);
        self.n = n2;

        if removed.is_empty() && added.is_empty() && modified.positions.is_empty() {
            return None;
        }
        Some(TableUpdate {
            step,
            removed,
            added,
            batches,
            modified,
        })
    }

    /// The entry of the key in slot `s`, if that key was touched this cycle.
    fn entry_of_slot(&self, s: usize, rows: &[Rows]) -> Option<usize> {
        let bytes = self.keys[s].as_slice();
        let h = self.hasher.hash_one(bytes);
        self.pending
            .find(h, |&e| entry_key(rows, &self.entries[e]) == bytes)
            .copied()
    }

    /// Updates the key index, the slot keys and the recency list to the new layout.
    fn reindex(
        &mut self,
        rows: &[Rows],
        removals: &[usize],
        moves: &[(usize, usize)],
        writes: &[Write],
        n2: usize,
    ) {
        let ring = self.capacity.is_some();
        for &s in removals {
            let h = self.hasher.hash_one(&self.keys[s]);
            if let Ok(entry) = self.index.find_entry(h, |&x| x == s) {
                entry.remove();
            }
            if ring {
                self.unlink(s);
            }
        }
        // Touched keys that stay are re-linked at the newest end, in write order, below.
        if ring {
            for i in 0..self.entries.len() {
                if let (false, Some(old)) = (self.entries[i].deleted, self.entries[i].old) {
                    self.unlink(old);
                }
            }
        }
        for &(from, to) in moves {
            let h = self.hasher.hash_one(&self.keys[from]);
            if let Some(slot) = self.index.find_mut(h, |&x| x == from) {
                *slot = to;
            }
            self.keys.swap(from, to);
            if ring && self.entry_of_slot(to, rows).is_none() {
                self.relink(from, to);
            }
        }
        if self.keys.len() < n2 {
            self.keys.resize_with(n2, Vec::new);
        }
        if ring && self.prev.len() < n2 {
            self.prev.resize(n2, NIL);
            self.next.resize(n2, NIL);
        }
        let mut placed: Vec<(u64, usize)> = Vec::new();
        for w in writes {
            let From::Entry(e) = w.from else { continue };
            let entry = self.entries[e];
            if entry.old.is_none() {
                let bytes = entry_key(rows, &entry);
                let buf = &mut self.keys[w.target];
                buf.clear();
                buf.extend_from_slice(bytes);
                let h = self.hasher.hash_one(bytes);
                let keys = &self.keys;
                self.index
                    .insert_unique(h, w.target, |&s| self.hasher.hash_one(&keys[s]));
            }
            if ring {
                placed.push((entry.seq, w.target));
            }
        }
        placed.sort_unstable();
        for (_, s) in placed {
            self.push_newest(s);
        }
    }

    fn unlink(&mut self, s: usize) {
        let (p, nx) = (self.prev[s], self.next[s]);
        if p == NIL {
            self.head = nx;
        } else {
            self.next[p] = nx;
        }
        if nx == NIL {
            self.tail = p;
        } else {
            self.prev[nx] = p;
        }
        self.prev[s] = NIL;
        self.next[s] = NIL;
    }

    /// Puts slot `to` where slot `from` is in the recency list.
    fn relink(&mut self, from: usize, to: usize) {
        let (p, nx) = (self.prev[from], self.next[from]);
        self.prev[to] = p;
        self.next[to] = nx;
        if p == NIL {
            self.head = to;
        } else {
            self.next[p] = to;
        }
        if nx == NIL {
            self.tail = to;
        } else {
            self.prev[nx] = to;
        }
        self.prev[from] = NIL;
        self.next[from] = NIL;
    }

    fn push_newest(&mut self, s: usize) {
        self.prev[s] = self.tail;
        self.next[s] = NIL;
        if self.tail == NIL {
            self.head = s;
        } else {
            self.next[self.tail] = s;
        }
        self.tail = s;
    }
}
