//! The apply step of a keyed table: one cycle's input, in phases.
//!
//! 1. [resolve](super::resolve): one final operation per key touched;
//! 2. [lay out](super::layout): the capacity's evictions, then the slot of every row written
//!    or moved;
//! 3. [rebuild]: gather the written rows, write them into their chunks (in place into the
//!    chunk columns' spares where nobody holds those, merged otherwise);
//! 4. the update: modified rows (with their column masks), the removed suffix, the added end;
//! 5. reindex: the key index and the recency list follow the new layout.
//!
//! # Cost
//!
//! O(input rows × columns + chunks touched × columns), plus O(chunk rows) for each chunk
//! column merged rather than written in place; nothing is O(table size).

use std::ops::Range;

use arrow_array::RecordBatch;

use super::layout::{RowFrom, Write};
use super::{mask_width, rebuild, KeyedState};
use crate::step::Step;
use crate::subscribe::update::Modified;
use crate::subscribe::TableUpdate;
use crate::table::chunk::{slice_chunks, ChunkLog};

impl KeyedState {
    /// Applies one cycle's input, checked when it was staged, to the rows in `log`; returns
    /// the update, or `None` when nothing changed. See the [module docs](super).
    pub(crate) fn apply(
        &mut self,
        step: Step,
        log: &mut ChunkLog,
        input: &[RecordBatch],
    ) -> Option<TableUpdate> {
        let n = self.index.len();
        debug_assert_eq!(log.rows(), 0..n as u64);
        self.resolved
            .resolve(&self.schema, &self.key, &self.index, input);
        let capacity = self.capacity.zip(self.recency.as_ref());
        self.layout.plan(&mut self.resolved, n, capacity);
        let written = rebuild::gather(
            &self.schema,
            input,
            &self.resolved,
            &self.layout,
            log.chunks(),
            self.chunk_rows,
        );
        rebuild::store(
            log,
            &mut self.spares,
            &self.schema,
            &self.key,
            &self.resolved,
            &self.layout,
            written.as_ref(),
            self.chunk_rows,
        );
        let update = self.update(step, log, written.as_ref());
        self.reindex();
        update
    }

    /// The update of the cycle laid out in `self.layout`, whose rows `written` are now in
    /// `log`.
    fn update(
        &self,
        step: Step,
        log: &ChunkLog,
        written: Option<&RecordBatch>,
    ) -> Option<TableUpdate> {
        let layout = &self.layout;
        let ncols = self.schema.fields().len();
        let modified_writes = layout.modified();
        let mut modified = Modified {
            width: mask_width(ncols),
            ..Modified::default()
        };
        if let (false, Some(written)) = (modified_writes.is_empty(), written) {
            modified
                .positions
                .extend(modified_writes.iter().map(|w| w.target as u64));
            modified.batch = Some(written.slice(0, modified_writes.len()));
            let partial = |w: &Write| (0..ncols).any(|c| w.keeps_own(&self.resolved, c));
            if modified_writes.iter().any(partial) {
                modified.masks = vec![0; modified_writes.len() * modified.width];
                let rows = modified.masks.chunks_exact_mut(modified.width);
                for (w, mask) in modified_writes.iter().zip(rows) {
                    for c in 0..ncols {
                        if !w.keeps_own(&self.resolved, c) {
                            mask[c / 8] |= 1 << (c % 8);
                        }
                    }
                }
            }
        }
        let (n, kept, n2) = (layout.n as u64, layout.kept() as u64, layout.n2 as u64);
        let added: Range<u64> = kept..n2;
        let removed: Range<u64> = kept..n;
        if removed.is_empty() && added.is_empty() && modified.positions.is_empty() {
            return None;
        }
        Some(TableUpdate {
            step,
            removed,
            batches: slice_chunks(log.chunks(), added.clone()),
            added,
            modified,
        })
    }

    /// Updates the key index and the recency list to the layout just stored.
    fn reindex(&mut self) {
        let (layout, resolved) = (&self.layout, &self.resolved);
        self.index
            .reserve((layout.n2 + layout.removals.len()).saturating_sub(layout.n));
        for &s in &layout.removals {
            self.index.remove(s);
            if let Some(recency) = &mut self.recency {
                recency.unlink(s);
            }
        }
        // Touched keys that stay are linked again, at the newest end, in write order.
        let mut placed: Vec<(u64, usize)> = Vec::new();
        if let Some(recency) = &mut self.recency {
            for t in resolved.touched() {
                if let (false, Some(old)) = (t.deleted, t.old) {
                    recency.unlink(old);
                }
            }
            recency.resize(layout.n.max(layout.n2));
        }
        for w in &layout.writes {
            match w.from {
                RowFrom::Moved(from) => {
                    self.index.move_untouched(from, w.target);
                    if let Some(recency) = &mut self.recency {
                        recency.replace(from, w.target);
                    }
                }
                RowFrom::Touched(e) => {
                    let t = resolved.touched()[e];
                    match t.old {
                        Some(old) if old == w.target => {}
                        Some(old) => self.index.move_slot(t.hash, old, w.target),
                        None => self.index.insert(t.hash, resolved.key(&t), w.target),
                    }
                    if self.recency.is_some() {
                        placed.push((t.seq, w.target));
                    }
                }
            }
        }
        self.index.truncate(layout.n2);
        if let Some(recency) = &mut self.recency {
            placed.sort_unstable();
            for (_, s) in placed {
                recency.push_newest(s);
            }
            recency.resize(layout.n2);
        }
        debug_assert_eq!(self.index.len(), layout.n2);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};
    use proptest::prelude::*;

    use super::super::{check_batch, KeyedState, OP_METADATA};
    use crate::step::Step;
    use crate::subscribe::TableUpdate;
    use crate::table::chunk::ChunkLog;

    type Row = (i64, Option<i64>, Option<String>);

    /// `k` int64 key, `a` int64 (nullable), `b` utf8 (nullable).
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]))
    }

    fn full(rows: &[(i64, Option<i64>, Option<&str>)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()),
            ],
        )
        .unwrap()
    }

    /// A partial upsert of `a` (and the key `k`) only.
    fn only_a(rows: &[(i64, Option<i64>)]) -> RecordBatch {
        let s = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("k", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(s),
            vec![
                Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            ],
        )
        .unwrap()
    }

    fn deletes(keys: &[i64]) -> RecordBatch {
        let s = Schema::new(vec![Field::new("k", DataType::Int64, false)]).with_metadata(
            HashMap::from([(OP_METADATA.to_owned(), "delete".to_owned())]),
        );
        RecordBatch::try_new(Arc::new(s), vec![Arc::new(Int64Array::from(keys.to_vec()))]).unwrap()
    }

    fn rows_of<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Vec<Row> {
        let mut out = Vec::new();
        for b in batches {
            let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let a = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            let s = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    k.value(i),
                    a.is_valid(i).then(|| a.value(i)),
                    s.is_valid(i).then(|| s.value(i).to_owned()),
                ));
            }
        }
        out
    }

    fn row(k: i64, a: Option<i64>, b: Option<&str>) -> Row {
        (k, a, b.map(str::to_owned))
    }

    /// A keyed table's state and rows, stepped by hand; chunks of 4 rows unless told.
    struct Table {
        state: KeyedState,
        log: ChunkLog,
        step: u64,
        chunk_rows: usize,
    }

    impl Table {
        fn new(capacity: Option<usize>) -> Self {
            Self::keyed_by(&[0], capacity, 4)
        }

        fn keyed_by(key: &[usize], capacity: Option<usize>, chunk_rows: usize) -> Self {
            let state = KeyedState::new(&schema(), Arc::from(key.to_vec()), capacity)
                .with_chunk_rows(chunk_rows);
            Self {
                state,
                log: ChunkLog::default(),
                step: 0,
                chunk_rows,
            }
        }

        /// Stages `input` as a writer would (checking it) and applies it as one cycle.
        fn cycle(&mut self, input: &[RecordBatch]) -> Option<TableUpdate> {
            let key = self.state.key.clone();
            let staged: Vec<RecordBatch> = input
                .iter()
                .map(|b| check_batch("t", &schema(), &key, b).unwrap())
                .collect();
            self.step += 1;
            let update = self.state.apply(Step(self.step), &mut self.log, &staged);
            self.check_chunks();
            update
        }

        fn rows(&self) -> Vec<Row> {
            rows_of(self.log.chunks().iter().map(|c| &c.batch))
        }

        /// Chunks start at multiples of the chunk size and all but the last are full.
        fn check_chunks(&self) {
            let chunks = self.log.chunks();
            for (i, c) in chunks.iter().enumerate() {
                assert_eq!(
                    c.start,
                    (i * self.chunk_rows) as u64,
                    "chunk {i} is aligned"
                );
                if i + 1 < chunks.len() {
                    assert_eq!(c.batch.num_rows(), self.chunk_rows, "chunk {i} is full");
                }
            }
        }

        fn slot_of(&self, k: i64) -> Option<usize> {
            let key: ArrayRef = Arc::new(Int64Array::from(vec![k]));
            self.state.slot_of(&[key], 0)
        }
    }

    fn table_with(keys: std::ops::Range<i64>) -> Table {
        let mut t = Table::new(None);
        let rows: Vec<_> = keys.map(|k| (k, Some(k), None)).collect();
        t.cycle(&[full(&rows)]);
        t
    }

    #[test]
    fn smoke() {
        let mut t = Table::new(None);
        let u = t
            .cycle(&[full(&[(1, Some(10), Some("x")), (2, None, None)])])
            .unwrap();
        assert_eq!((u.removed(), u.added()), (0..0, 0..2));
        assert!(u.modified().is_empty());
        assert_eq!(rows_of(u.batches()), t.rows());
        assert_eq!(
            t.rows(),
            vec![row(1, Some(10), Some("x")), row(2, None, None)]
        );
        assert!(t.cycle(&[]).is_none(), "no input, no update");
    }

    #[test]
    fn new_keys_go_at_the_end_across_chunks() {
        let mut t = table_with(0..3);
        let u = t
            .cycle(&[full(&[(3, None, None), (4, None, None), (5, None, None)])])
            .unwrap();
        assert_eq!(u.added(), 3..6);
        assert_eq!(u.num_added(), 3);
        assert_eq!(
            t.log.chunks().len(),
            2,
            "the last chunk filled, then a new one"
        );
        assert_eq!(
            t.rows().iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..6).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_upsert_of_a_key_rewrites_its_slot_in_place() {
        let mut t = table_with(0..6);
        let u = t
            .cycle(&[full(&[(4, Some(40), Some("y")), (1, None, Some("x"))])])
            .unwrap();
        assert_eq!(u.modified(), &[1, 4], "ascending positions");
        assert!(u.removed().is_empty() && u.added().is_empty());
        assert_eq!(
            rows_of(u.modified_batch()),
            vec![row(1, None, Some("x")), row(4, Some(40), Some("y"))]
        );
        assert!(
            u.modified.masks.is_empty(),
            "whole rows: every column written"
        );
        assert!((0..3).all(|c| u.is_modified(0, c) && u.is_modified(1, c)));
        assert_eq!(t.rows()[4], row(4, Some(40), Some("y")));
        assert_eq!(t.slot_of(4), Some(4));
    }

    #[test]
    fn a_partial_upsert_keeps_the_other_columns_and_masks_only_its_own() {
        let mut t = Table::new(None);
        t.cycle(&[full(&[(1, Some(1), Some("p")), (2, Some(2), Some("q"))])]);
        let u = t.cycle(&[only_a(&[(2, Some(20)), (7, Some(70))])]).unwrap();
        assert_eq!(u.modified(), &[1]);
        assert_eq!(u.added(), 2..3);
        assert!(
            u.is_modified(0, 0) && u.is_modified(0, 1),
            "the key and a were given"
        );
        assert!(!u.is_modified(0, 2), "b was left out");
        assert_eq!(u.modified.masks, vec![0b011]);
        assert_eq!(
            rows_of(u.modified_batch()),
            vec![row(2, Some(20), Some("q"))]
        );
        assert_eq!(
            t.rows(),
            vec![
                row(1, Some(1), Some("p")),
                row(2, Some(20), Some("q")),
                row(7, Some(70), None),
            ],
            "a new key gets nulls where the upsert gave nothing"
        );
    }

    #[test]
    fn untouched_columns_of_a_rebuilt_chunk_are_shared() {
        let mut t = table_with(0..4);
        let old = t.log.chunks()[0].batch.clone();
        t.cycle(&[only_a(&[(2, Some(-2))])]);
        let new = &t.log.chunks()[0].batch;
        assert!(
            Arc::ptr_eq(old.column(0), new.column(0)),
            "key column shared"
        );
        assert!(Arc::ptr_eq(old.column(2), new.column(2)), "b shared");
        assert!(!Arc::ptr_eq(old.column(1), new.column(1)), "a rebuilt");
        assert_eq!(
            rows_of([&old])[2],
            row(2, Some(2), None),
            "the old chunk is unchanged"
        );
    }

    #[test]
    fn a_changed_column_is_written_in_place_into_its_spare_once_nobody_holds_it() {
        let mut t = table_with(0..4);
        let buffer = |t: &Table| t.log.chunks()[0].batch.column(1).to_data().buffers()[0].as_ptr();
        let a = |t: &Table| t.rows().iter().map(|r| r.1.unwrap()).collect::<Vec<_>>();
        let v0 = buffer(&t);
        t.cycle(&[only_a(&[(1, Some(10))])]);
        let v1 = buffer(&t);
        assert_ne!(v0, v1, "no spare yet: merged into a new buffer");
        t.cycle(&[only_a(&[(2, Some(20))])]);
        assert_eq!(
            buffer(&t),
            v0,
            "written into the first version, which nobody holds"
        );
        assert_eq!(
            a(&t),
            vec![0, 10, 20, 3],
            "with the lag row 1 brought up to date"
        );
        // A snapshot's hold on the current version keeps it from being written next-but-one.
        let held = t.log.clone();
        t.cycle(&[only_a(&[(3, Some(30))])]);
        assert_eq!(buffer(&t), v1);
        t.cycle(&[only_a(&[(0, Some(-1))])]);
        let v4 = buffer(&t);
        assert!(v4 != v0 && v4 != v1, "the spare is held: merged instead");
        assert_eq!(a(&t), vec![-1, 10, 20, 30]);
        assert_eq!(
            rows_of(held.chunks().iter().map(|c| &c.batch)),
            vec![
                row(0, Some(0), None),
                row(1, Some(10), None),
                row(2, Some(20), None),
                row(3, Some(3), None)
            ],
            "the held version never changed"
        );
        assert!(
            t.state.spares.array_bytes() > 0,
            "a spare is kept for the next change"
        );
    }

    #[test]
    fn strings_of_the_same_length_are_written_in_place_and_others_merged() {
        let mut t = Table::new(None);
        t.cycle(&[full(&[(1, None, Some("aa")), (2, None, Some("bb"))])]);
        let buffer = |t: &Table| t.log.chunks()[0].batch.column(2).to_data().buffers()[1].as_ptr();
        let v0 = buffer(&t);
        t.cycle(&[full(&[(1, None, Some("cc"))])]);
        t.cycle(&[full(&[(2, None, Some("dd"))])]);
        assert_eq!(buffer(&t), v0, "same lengths: in place");
        t.cycle(&[full(&[(1, None, Some("longer"))])]);
        t.cycle(&[full(&[(2, None, Some("e"))])]);
        assert_eq!(
            t.rows(),
            vec![row(1, None, Some("longer")), row(2, None, Some("e"))]
        );
    }

    #[test]
    fn a_delete_fills_its_hole_with_the_last_row_and_shrinks_at_the_end() {
        let mut t = table_with(0..8);
        let u = t.cycle(&[deletes(&[1, 2, 42])]).unwrap();
        assert_eq!(u.removed(), 6..8, "the table shrinks at the end");
        assert_eq!(u.modified(), &[1, 2], "the last rows moved into the holes");
        assert!(u.added().is_empty());
        assert_eq!(
            rows_of(u.modified_batch()),
            vec![row(6, Some(6), None), row(7, Some(7), None)]
        );
        assert!(
            u.modified.masks.is_empty(),
            "a moved row has every column written"
        );
        let keys: Vec<i64> = t.rows().iter().map(|r| r.0).collect();
        assert_eq!(keys, vec![0, 6, 7, 3, 4, 5]);
        assert_eq!(
            (t.slot_of(6), t.slot_of(7), t.slot_of(1)),
            (Some(1), Some(2), None)
        );
        // Deleting rows that are last and rows that are not: the survivors fill the holes.
        let u = t.cycle(&[deletes(&[0, 5])]).unwrap();
        assert_eq!(u.removed(), 4..6);
        assert_eq!(u.modified(), &[0]);
        assert_eq!(
            t.rows().iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![4, 6, 7, 3]
        );
        // Deleting only missing keys changes nothing.
        assert!(t.cycle(&[deletes(&[42])]).is_none());
    }

    #[test]
    fn new_keys_fill_the_holes_before_going_at_the_end() {
        let mut t = table_with(0..6);
        let u = t
            .cycle(&[
                deletes(&[1, 4]),
                full(&[(10, None, None), (11, None, None), (12, None, None)]),
            ])
            .unwrap();
        assert_eq!(u.modified(), &[1, 4]);
        assert_eq!(u.added(), 6..7);
        assert!(u.removed().is_empty());
        let keys: Vec<i64> = t.rows().iter().map(|r| r.0).collect();
        assert_eq!(keys, vec![0, 10, 2, 3, 11, 5, 12]);
    }

    #[test]
    fn a_key_deleted_and_upserted_in_one_cycle_restarts_from_nulls_in_its_slot() {
        let mut t = Table::new(None);
        t.cycle(&[full(&[(1, Some(1), Some("a")), (2, Some(2), Some("b"))])]);
        let u = t
            .cycle(&[
                deletes(&[1]),
                only_a(&[(1, Some(7))]),
                full(&[(3, Some(3), None)]),
                deletes(&[3]),
            ])
            .unwrap();
        assert_eq!(u.modified(), &[0], "key 1 stays in its slot");
        assert!(
            u.added().is_empty(),
            "key 3 was upserted and deleted: it never shows"
        );
        assert!(
            (0..3).all(|c| u.is_modified(0, c)),
            "a fresh row writes every column"
        );
        assert_eq!(
            t.rows(),
            vec![row(1, Some(7), None), row(2, Some(2), Some("b"))]
        );
        // Upserted twice in one batch: the last wins.
        t.cycle(&[full(&[(2, Some(20), None), (2, Some(21), Some("z"))])]);
        assert_eq!(t.rows()[1], row(2, Some(21), Some("z")));
    }

    #[test]
    fn a_capacity_evicts_the_least_recently_written_keys() {
        let mut t = Table::new(Some(3));
        t.cycle(&[full(&[(1, None, None), (2, None, None), (3, None, None)])]);
        // Key 1 written again is the newest; key 4 then evicts key 2, then 5 evicts 3.
        t.cycle(&[only_a(&[(1, Some(10))])]);
        let u = t.cycle(&[full(&[(4, None, None)])]).unwrap();
        assert_eq!(u.modified(), &[1], "key 4 took key 2's slot");
        assert_eq!(t.slot_of(2), None);
        t.cycle(&[full(&[(5, None, None)])]);
        let mut keys: Vec<i64> = t.rows().iter().map(|r| r.0).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![1, 4, 5]);
        // More new keys in one cycle than the capacity: the last written ones stay.
        let new: Vec<_> = (10..17).map(|k| (k, None, None)).collect();
        t.cycle(&[full(&new)]);
        let mut keys: Vec<i64> = t.rows().iter().map(|r| r.0).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec![14, 15, 16]);
        for k in [14, 15, 16] {
            let s = t.slot_of(k).unwrap();
            assert_eq!(t.rows()[s].0, k);
        }
    }

    #[test]
    fn multi_column_keys_tell_rows_apart_by_every_key_column() {
        // Keyed by (b, k): the same k under two b's is two keys.
        let mut t = Table::keyed_by(&[2, 0], None, 4);
        t.cycle(&[full(&[
            (1, Some(1), Some("x")),
            (1, Some(2), Some("y")),
            (2, Some(3), Some("x")),
        ])]);
        assert_eq!(t.rows().len(), 3);
        let u = t.cycle(&[full(&[(1, Some(20), Some("y"))])]).unwrap();
        assert_eq!(u.modified(), &[1]);
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let k: ArrayRef = Arc::new(Int64Array::from(vec![2, 1]));
        assert_eq!(t.state.slot_of(&[b.clone(), k.clone()], 0), Some(2));
        assert_eq!(t.state.slot_of(&[b.clone(), k.clone()], 1), Some(1));
        assert_eq!(
            t.state.slot_of(&[k.clone(), b.clone()], 0),
            None,
            "wrong order"
        );
        assert_eq!(
            t.state.slot_of(std::slice::from_ref(&b), 0),
            None,
            "too few columns"
        );
        assert_eq!(t.state.slot_of(&[b, k], 2), None, "past the end");
    }

    #[test]
    fn slot_of_finds_each_key_where_its_row_is() {
        let mut t = table_with(0..10);
        t.cycle(&[deletes(&[0, 3, 8]), full(&[(20, None, None)])]);
        for (pos, r) in t.rows().iter().enumerate() {
            assert_eq!(t.slot_of(r.0), Some(pos), "key {}", r.0);
        }
        for k in [0, 3, 8, 99] {
            assert_eq!(t.slot_of(k), None);
        }
        let wrong: ArrayRef = Arc::new(StringArray::from(vec!["0"]));
        assert_eq!(t.state.slot_of(&[wrong], 0), None, "a key of another type");
    }

    #[test]
    fn churn_does_not_grow_the_index() {
        let mut t = Table::keyed_by(&[2], None, 64);
        let name = |k: i64| format!("key-{k:08}");
        let rows: Vec<(i64, Option<i64>, String)> = (0..2000).map(|k| (k, None, name(k))).collect();
        let batch = |rows: &[(i64, Option<i64>, String)]| {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| (r.0, r.1, Some(r.2.as_str())))
                .collect();
            full(&rows)
        };
        t.cycle(&[batch(&rows)]);
        let start = t.state.index.allocated_bytes();
        for round in 1..200 {
            let gone: Vec<i64> = ((round - 1) * 100..round * 100).collect();
            let names: Vec<String> = gone.iter().map(|&k| name(k)).collect();
            let s = Schema::new(vec![Field::new("b", DataType::Utf8, true)]).with_metadata(
                HashMap::from([(OP_METADATA.to_owned(), "delete".to_owned())]),
            );
            let del = RecordBatch::try_new(
                Arc::new(s),
                vec![Arc::new(StringArray::from_iter_values(names))],
            )
            .unwrap();
            let new: Vec<_> = (2000 + (round - 1) * 100..2000 + round * 100)
                .map(|k| (k, None, name(k)))
                .collect();
            t.cycle(&[del, batch(&new)]);
            assert_eq!(t.rows().len(), 2000);
        }
        let end = t.state.index.allocated_bytes();
        assert!(end < 3 * start, "index grew from {start} to {end} bytes");
    }

    // -----------------------------------------------------------------------------------------
    // The model: a HashMap of rows by key, and a mirror fed by the updates.
    // -----------------------------------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(i64, Option<i64>, Option<String>),
        /// Only `a`.
        UpsertA(i64, Option<i64>),
        Delete(i64),
    }

    fn op(keys: i64) -> impl Strategy<Value = Op> {
        let key = 0i64..keys;
        prop_oneof![
            4 => (key.clone(), proptest::option::of(-5i64..5), proptest::option::of("[a-c]{0,2}"))
                .prop_map(|(k, a, b)| Op::Upsert(k, a, b)),
            2 => (key.clone(), proptest::option::of(-5i64..5)).prop_map(|(k, a)| Op::UpsertA(k, a)),
            2 => key.prop_map(Op::Delete),
        ]
    }

    /// Stages a cycle's ops as batches: runs of the same kind in one batch.
    fn batches(ops: &[Op]) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for run in ops.chunk_by(|a, b| std::mem::discriminant(a) == std::mem::discriminant(b)) {
            out.push(match &run[0] {
                Op::Upsert(..) => full(
                    &run.iter()
                        .map(|o| match o {
                            Op::Upsert(k, a, b) => (*k, *a, b.as_deref()),
                            _ => unreachable!(),
                        })
                        .collect::<Vec<_>>(),
                ),
                Op::UpsertA(..) => only_a(
                    &run.iter()
                        .map(|o| match o {
                            Op::UpsertA(k, a) => (*k, *a),
                            _ => unreachable!(),
                        })
                        .collect::<Vec<_>>(),
                ),
                Op::Delete(_) => deletes(
                    &run.iter()
                        .map(|o| match o {
                            Op::Delete(k) => *k,
                            _ => unreachable!(),
                        })
                        .collect::<Vec<_>>(),
                ),
            });
        }
        out
    }

    /// Applies an update to a mirror of the rows, checking its shape.
    fn mirror(rows: &mut Vec<Row>, u: &TableUpdate) {
        let len = rows.len() as u64;
        assert!(u.removed().is_empty() || u.added().is_empty());
        let modified = u.modified();
        assert!(modified.windows(2).all(|w| w[0] < w[1]));
        let new = u.modified_batch().map(|b| rows_of([b])).unwrap_or_default();
        assert_eq!(new.len(), modified.len());
        for (r, &p) in new.into_iter().zip(modified) {
            assert!(p < len && p < u.removed().start.max(len - u.num_removed() as u64));
            rows[usize::try_from(p).unwrap()] = r;
        }
        if !u.removed().is_empty() {
            assert_eq!(u.removed().end, len, "a suffix");
            rows.truncate(usize::try_from(u.removed().start).unwrap());
        }
        assert_eq!(u.added().start, rows.len() as u64, "at the end");
        rows.extend(rows_of(u.batches()));
    }

    fn check_against_model(
        capacity: Option<usize>,
        chunk_rows: usize,
        cycles: &[Vec<Op>],
    ) -> Result<(), TestCaseError> {
        let mut t = Table::keyed_by(&[0], capacity, chunk_rows);
        // Key → (a, b, order of its last write).
        let mut model: HashMap<i64, (Option<i64>, Option<String>, u64)> = HashMap::new();
        let mut seq = 0;
        let mut mirrored: Vec<Row> = Vec::new();
        // Copies of the log as a snapshot holds it, with its rows then: chunks written in place
        // must never be ones a snapshot can see.
        let mut held: Vec<(ChunkLog, Vec<Row>)> = Vec::new();
        for (i, ops) in cycles.iter().enumerate() {
            for op in ops {
                seq += 1;
                match op {
                    Op::Upsert(k, a, b) => {
                        model.insert(*k, (*a, b.clone(), seq));
                    }
                    Op::UpsertA(k, a) => {
                        let b = model.get(k).and_then(|r| r.1.clone());
                        model.insert(*k, (*a, b, seq));
                    }
                    Op::Delete(k) => {
                        model.remove(k);
                    }
                }
            }
            while capacity.is_some_and(|c| model.len() > c) {
                let oldest = *model.iter().min_by_key(|(_, r)| r.2).unwrap().0;
                model.remove(&oldest);
            }
            if let Some(u) = t.cycle(&batches(ops)) {
                mirror(&mut mirrored, &u);
            }
            let rows = t.rows();
            prop_assert_eq!(&mirrored, &rows, "the mirror follows the updates");
            for (log, was) in &held {
                prop_assert_eq!(&rows_of(log.chunks().iter().map(|c| &c.batch)), was);
            }
            if i % 3 == 0 {
                held.push((t.log.clone(), rows.clone()));
                if held.len() > 2 {
                    held.remove(0);
                }
            }
            let mut want: Vec<Row> = model
                .iter()
                .map(|(k, (a, b, _))| (*k, *a, b.clone()))
                .collect();
            want.sort();
            let mut got = rows.clone();
            got.sort();
            prop_assert_eq!(got, want);
            let live: HashSet<i64> = model.keys().copied().collect();
            for k in -1..30 {
                let at = t.slot_of(k);
                prop_assert_eq!(at.is_some(), live.contains(&k), "key {}", k);
                if let Some(s) = at {
                    prop_assert_eq!(rows[s].0, k);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Few keys and chunks of 1 to 5 rows: collisions, moves across chunks, evictions.
        #[test]
        fn apply_matches_a_hashmap_model(
            capacity in proptest::option::of(1usize..10),
            chunk_rows in 1usize..6,
            cycles in proptest::collection::vec(proptest::collection::vec(op(24), 0..30), 1..10),
        ) {
            check_against_model(capacity, chunk_rows, &cycles)?;
        }
    }
}
