//! Resolving a cycle's input to one final operation per key touched.
//!
//! Operations apply in input order and the last one to a key wins: an upsert after a delete
//! starts the row again from nulls, a partial upsert merges into what the key has (its value
//! before the cycle, or earlier upserts of the cycle). The result says, per key, its slot
//! before the cycle, whether it ends deleted, and where each of its cells comes from.
//!
//! # Cost
//!
//! O(input rows × (key width + columns)): every key is encoded once, hashed once and looked
//! up once in this cycle's keys and at most once in the table's index. The buffers are kept
//! from cycle to cycle, so a cycle allocates only when it is larger than any before.

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::Rows;
use arrow_schema::SchemaRef;
use hashbrown::HashTable;

use super::index::KeyIndex;
use super::input::{bit, column_map, shape_of, Shape};

/// Where one cell of a touched key's row comes from: row `row` of input batch `batch`, or
/// [`Cell::KEEP`]. Eight bytes, as there are columns × keys touched of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cell {
    batch: u32,
    row: u32,
}

impl Cell {
    /// Not written this cycle: the key's value before it, or null if the row is fresh.
    pub(super) const KEEP: Cell = Cell {
        batch: u32::MAX,
        row: 0,
    };

    /// Row `row` of input batch `batch`.
    fn input(batch: usize, row: usize) -> Self {
        let batch = u32::try_from(batch)
            .ok()
            .filter(|&b| b != u32::MAX)
            .expect("invariant: a cycle's input has fewer than 2^32 - 1 batches");
        Self {
            batch,
            row: small(row),
        }
    }

    /// The input batch and row of the cell, or `None` for [`Cell::KEEP`].
    pub(super) fn given(self) -> Option<(usize, usize)> {
        (self.batch != u32::MAX).then_some((self.batch as usize, self.row as usize))
    }
}

/// One key written or deleted this cycle, after its last operation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Touched {
    /// Its row in [`Resolved::keys`].
    pub(super) key_row: u32,
    /// The hash of its key bytes.
    pub(super) hash: u64,
    /// Its slot before the cycle (looked up once every key of the cycle is known).
    pub(super) old: Option<usize>,
    /// Its last operation deletes it, or the capacity evicts it.
    pub(super) deleted: bool,
    /// Its row starts from nulls: a new key, or one deleted and then upserted again (set
    /// for new keys with `old`).
    pub(super) fresh: bool,
    /// The order of its last operation in the cycle.
    pub(super) seq: u64,
}

/// A cycle's input, resolved: the keys touched, in order of first appearance.
#[derive(Debug)]
pub(super) struct Resolved {
    ncols: usize,
    /// Per input batch, table column → batch column.
    maps: Vec<Vec<Option<usize>>>,
    /// The key rows of every input batch, one after the other.
    keys: Rows,
    touched: Vec<Touched>,
    /// `ncols` cells per touched key.
    cells: Vec<Cell>,
    /// Key hash → index in `touched`.
    pending: HashTable<u32>,
    /// `(old slot, index in touched)` of the touched keys that had a slot, by slot; made
    /// by [`sort_by_old`](Self::sort_by_old) when the layout needs it.
    by_old: Vec<(usize, u32)>,
}

/// An index as a `u32`: a cycle's input has fewer than 2^32 rows and batches.
fn small(i: usize) -> u32 {
    u32::try_from(i).expect("invariant: a cycle's input has fewer than 2^32 rows")
}

impl Resolved {
    /// Empty buffers for a table of `ncols` columns whose keys `index` encodes.
    pub(super) fn new(ncols: usize, index: &KeyIndex) -> Self {
        Self {
            ncols,
            maps: Vec::new(),
            keys: index.empty_rows(),
            touched: Vec::new(),
            cells: Vec::new(),
            pending: HashTable::new(),
            by_old: Vec::new(),
        }
    }

    /// Resolves `input` (checked when it was staged) against the keys in `index`.
    ///
    /// # Panics
    ///
    /// If a batch lacks a key column or has one of another type: [`check_batch`] refuses
    /// those.
    ///
    /// [`check_batch`]: super::check_batch
    pub(super) fn resolve(
        &mut self,
        schema: &SchemaRef,
        key: &[usize],
        index: &KeyIndex,
        input: &[RecordBatch],
    ) {
        let ncols = self.ncols;
        self.maps.clear();
        self.keys.clear();
        self.touched.clear();
        self.cells.clear();
        // Sized to this cycle's input: a table left large by a bulk load would make every
        // later cycle's probes miss the cache.
        let rows: usize = input.iter().map(RecordBatch::num_rows).sum();
        if self.pending.capacity() > 4 * rows.max(64) {
            self.pending = HashTable::with_capacity(rows);
        } else {
            self.pending.clear();
            // Empty, so no entry is rehashed.
            self.pending.reserve(rows, |_| 0);
        }
        self.by_old.clear();
        let mut key_columns: Vec<ArrayRef> = Vec::with_capacity(key.len());
        let mut seq = 0u64;
        for (b, batch) in input.iter().enumerate() {
            let shape = shape_of(batch);
            let map = column_map(schema, batch, shape);
            key_columns.clear();
            key_columns.extend(key.iter().map(|&k| {
                let i = map[k].expect("invariant: checked at staging: every shape has the key");
                batch.column(i).clone()
            }));
            let first = self.keys.num_rows();
            index
                .append_rows(&mut self.keys, &key_columns)
                .expect("invariant: checked at staging: key columns have the key's types");
            let masks = match shape {
                Shape::Mixed(op) => Some(batch.column(op).as_binary::<i32>()),
                Shape::Upsert | Shape::Delete => None,
            };
            let whole = map.iter().all(Option::is_some);
            for r in 0..batch.num_rows() {
                let e = self.touch(index, first + r);
                let mask = masks.map(|m| m.value(r));
                let delete = match shape {
                    Shape::Delete => true,
                    Shape::Mixed(_) => mask.is_some_and(|m| m.iter().all(|&x| x == 0)),
                    Shape::Upsert => false,
                };
                let touched = &mut self.touched[e];
                touched.seq = seq;
                seq += 1;
                let cells = &mut self.cells[e * ncols..(e + 1) * ncols];
                if delete {
                    touched.deleted = true;
                    touched.fresh = true;
                    cells.fill(Cell::KEEP);
                    continue;
                }
                touched.deleted = false;
                let from = Cell::input(b, r);
                match mask {
                    None if whole => cells.fill(from),
                    None => {
                        for (cell, m) in cells.iter_mut().zip(&map) {
                            if m.is_some() {
                                *cell = from;
                            }
                        }
                    }
                    Some(m) => {
                        for (c, cell) in cells.iter_mut().enumerate() {
                            if bit(m, c) {
                                *cell = from;
                            }
                        }
                    }
                }
            }
            self.maps.push(map);
        }
        // The index lookups, in a loop of their own: independent of each other, so their
        // cache misses overlap.
        let (keys, touched) = (&self.keys, &mut self.touched);
        for t in touched.iter_mut() {
            t.old = index.find(t.hash, keys.row(t.key_row as usize).data());
            t.fresh |= t.old.is_none();
        }
    }

    /// Sorts the touched keys that had a slot by that slot, for
    /// [`touched_at`](Self::touched_at). O(k log k) for k keys touched.
    pub(super) fn sort_by_old(&mut self) {
        self.by_old.clear();
        self.by_old.extend(
            self.touched
                .iter()
                .enumerate()
                .filter_map(|(e, t)| Some((t.old?, small(e)))),
        );
        self.by_old.sort_unstable();
    }

    /// The touched key whose bytes are row `key_row` of `keys`: found, or added.
    fn touch(&mut self, index: &KeyIndex, key_row: usize) -> usize {
        let bytes = self.keys.row(key_row).data();
        let hash = index.hash(bytes);
        let (keys, touched) = (&self.keys, &self.touched);
        let found = self.pending.find(hash, |&e| {
            keys.row(touched[e as usize].key_row as usize).data() == bytes
        });
        if let Some(&e) = found {
            return e as usize;
        }
        let e = self.touched.len();
        self.touched.push(Touched {
            key_row: small(key_row),
            hash,
            old: None,
            deleted: false,
            fresh: false,
            seq: 0,
        });
        self.cells
            .extend(std::iter::repeat_n(Cell::KEEP, self.ncols));
        let touched = &self.touched;
        self.pending
            .insert_unique(hash, small(e), |&x| touched[x as usize].hash);
        e
    }

    /// The keys touched, in order of first appearance.
    pub(super) fn touched(&self) -> &[Touched] {
        &self.touched
    }

    /// The cells of touched key `e`, one per column.
    pub(super) fn cells(&self, e: usize) -> &[Cell] {
        &self.cells[e * self.ncols..(e + 1) * self.ncols]
    }

    /// The key bytes of a touched key.
    pub(super) fn key(&self, t: &Touched) -> &[u8] {
        self.keys.row(t.key_row as usize).data()
    }

    /// Which input batch column holds table column `c` of batch `b`, if any.
    pub(super) fn column_of(&self, b: usize, c: usize) -> Option<usize> {
        self.maps[b][c]
    }

    /// The touched key that was in slot `slot` before the cycle, if any, once
    /// [`sort_by_old`](Self::sort_by_old) ran. O(log keys touched).
    pub(super) fn touched_at(&self, slot: usize) -> Option<usize> {
        let i = self.by_old.binary_search_by_key(&slot, |&(s, _)| s).ok()?;
        Some(self.by_old[i].1 as usize)
    }

    /// Marks touched key `e` deleted: the capacity evicts it.
    pub(super) fn evict(&mut self, e: usize) {
        let t = &mut self.touched[e];
        t.deleted = true;
        t.fresh = true;
    }
}
