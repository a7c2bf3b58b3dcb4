//! Mirrors: a local copy of a table, kept exact from its snapshot and its updates.
//!
//! A [`Mirror`] holds a table's rows `[start, end)` by position as the table's own Arrow
//! chunks (`Arc`'d, never copied) and applies, in order, what a consumer receives: a
//! subscription's [`Event`]s or [`TableUpdate`]s, or the messages of a Flight live stream
//! ([`Mirror::apply_message`], with the `flight` feature). It is what
//! [`RemoteSubscription`](crate::flight::RemoteSubscription) keeps, and what a viewer draws
//! from. Reading it is reading a [`TableSnapshot`]: [`Mirror::snapshot`] is O(1), and every
//! reader of a snapshot (columns, rows, slices) works on it.
//!
//! # Cost
//!
//! Applying an update costs O(chunks removed + chunks added), plus, for a keyed table's
//! modified rows, O(chunk length × columns) per chunk holding one (only those chunks are
//! rebuilt; the others stay shared). Finding a position is O(log chunks).
//!
//! # Rules
//!
//! An update drops its removed positions (a prefix; for a keyed table a suffix), replaces
//! the rows at its modified positions, then appends its added rows (see
//! [`TableUpdate`]). A snapshot or a lag's snapshot replaces everything. Anything that does
//! not fit the rows held (a gap, a removed range in the middle, modified positions not held)
//! is an [`Error::Protocol`] and means the mirror is no longer exact: reset it from a fresh
//! snapshot.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::step::Step;
use crate::subscribe::queue::Event;
use crate::subscribe::update::TableUpdate;
use crate::table::chunk::{slice_chunks, ChunkLog};
use crate::table::snapshot::{SnapshotInner, TableSnapshot};

/// The chunks an update's modified rows replaced, as they were before the update: what a
/// viewer compares a cell's new value with.
#[derive(Debug, Clone, Default)]
pub struct Replaced {
    /// `(position of the first row, batch)`, in position order.
    chunks: Vec<(u64, RecordBatch)>,
}

impl Replaced {
    /// The old batch holding `position` and the row's index in it, if `position` was in a
    /// replaced chunk. O(log chunks replaced).
    pub fn locate(&self, position: u64) -> Option<(&RecordBatch, usize)> {
        let i = self
            .chunks
            .partition_point(|(s, b)| s + b.num_rows() as u64 <= position);
        let (s, b) = self.chunks.get(i)?;
        let index = usize::try_from(position.checked_sub(*s)?).ok()?;
        Some((b, index))
    }

    /// Whether no chunk was replaced.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Adds what a later update replaced, for one view of both: a chunk both replaced keeps
    /// its version from before the first (`self`'s). For the parts of one step that a Flight
    /// stream sends in several messages, whose chunks keep their positions.
    /// O(chunks of both).
    pub fn merge(&mut self, later: Replaced) {
        let mut merged = Vec::with_capacity(self.chunks.len() + later.chunks.len());
        let mut earlier = std::mem::take(&mut self.chunks).into_iter().peekable();
        for (start, batch) in later.chunks {
            while let Some(first) = earlier.next_if(|(s, _)| *s <= start) {
                merged.push(first);
            }
            if merged.last().is_none_or(|(s, _)| *s != start) {
                merged.push((start, batch));
            }
        }
        merged.extend(earlier);
        self.chunks = merged;
    }
}

/// A local copy of a table; see the [module docs](self).
///
/// # Examples
///
/// ```
/// use tickertable::test_util::{int_batch, int_schema, manual_engine};
/// use tickertable::{Event, Mirror, PublisherOptions, TableKind};
///
/// let engine = manual_engine();
/// let (ring, publisher) = engine.table_publisher(
///     "r", int_schema(), PublisherOptions::default().with_kind(TableKind::Ring { capacity: 3 }))?;
/// let sub = ring.subscribe()?;
/// publisher.add(int_batch(0..5))?;
/// engine.run_cycle();
/// let mut mirror = Mirror::new(int_schema());
/// while let Ok(event) = sub.try_recv() {
///     mirror.apply_event(&event)?;
/// }
/// assert_eq!(mirror.rows(), ring.snapshot().rows());
/// assert_eq!(mirror.snapshot().to_batch()?, ring.snapshot().to_batch()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Mirror {
    log: ChunkLog,
    schema: SchemaRef,
    key: Arc<[usize]>,
    step: Step,
    resets: u64,
}

impl Mirror {
    /// An empty mirror of a table with this schema.
    pub fn new(schema: SchemaRef) -> Self {
        Self {
            log: ChunkLog::default(),
            schema,
            key: Arc::from(Vec::new()),
            step: Step(0),
            resets: 0,
        }
    }

    /// A mirror holding `snapshot`'s rows. O(chunks).
    pub fn from_snapshot(snapshot: &TableSnapshot) -> Self {
        let mut m = Self::new(snapshot.schema().clone());
        m.reset(snapshot);
        m
    }

    /// Replaces the rows held with `snapshot`'s (a subscription's first event, or a lag's
    /// fresh snapshot). O(chunks).
    pub fn reset(&mut self, snapshot: &TableSnapshot) {
        let mut log = ChunkLog::default();
        log.skip_to(snapshot.rows().start);
        for b in snapshot.batches() {
            log.push(b.clone());
        }
        self.log = log;
        self.schema = snapshot.schema().clone();
        self.key = Arc::from(snapshot.key_columns());
        self.step = snapshot.step();
        self.resets += 1;
    }

    /// Applies one update; returns the chunks its modified rows replaced.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] if the update does not fit the rows held (see the
    /// [module docs](self#rules)); the mirror is then as far as the update got.
    pub fn apply(&mut self, update: &TableUpdate) -> Result<Replaced> {
        let removed = self.clear_if_all_removed(update.removed(), &update.added());
        let replaced = self
            .log
            .apply_update(
                removed,
                update.modified(),
                update.modified_batch(),
                update.added(),
                update.batches(),
            )
            .map_err(|e| protocol(update.step(), &e))?;
        self.step = update.step();
        Ok(Replaced { chunks: replaced })
    }

    /// Applies a subscription's event: a snapshot or a lag resets, an update applies, a
    /// failure changes nothing.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn apply_event(&mut self, event: &Event) -> Result<Replaced> {
        match event {
            Event::Snapshot(s) | Event::Lagged { snapshot: s, .. } => {
                self.reset(s);
                Ok(Replaced::default())
            }
            Event::Update(u) => self.apply(u),
            Event::Failed(_) => Ok(Replaced::default()),
        }
    }

    /// Applies one message of a Flight live stream (see the [`flight`](crate::flight) module's
    /// wire format): its metadata and the rows it carried.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] if the message does not fit the rows held.
    #[cfg(feature = "flight")]
    pub fn apply_message(
        &mut self,
        meta: &crate::flight::wire::MessageMeta,
        batch: Option<&RecordBatch>,
    ) -> Result<Replaced> {
        if meta.reset {
            self.log = ChunkLog::default();
            self.log.skip_to(meta.added.start);
            self.resets += 1;
        }
        let removed = self.clear_if_all_removed(meta.removed.clone(), &meta.added);
        let result = if meta.modified.is_empty() {
            let rows: Vec<RecordBatch> = batch.into_iter().cloned().collect();
            self.log
                .apply_update(removed, &[], None, meta.added.clone(), &rows)
        } else {
            if !meta.added.is_empty() {
                return Err(protocol(meta.step, "a message both modifies and adds rows"));
            }
            self.log
                .apply_update(removed, &meta.modified, batch, meta.added.clone(), &[])
        };
        let replaced = result.map_err(|e| protocol(meta.step, &e))?;
        if let Some(b) = batch {
            if self.log.rows().is_empty() || self.schema.fields() != b.schema().fields() {
                self.schema = b.schema();
            }
        }
        self.step = meta.step;
        Ok(Replaced { chunks: replaced })
    }

    /// An update that removes every row held starts over where its added rows go, and then
    /// removes nothing more: a keyed table emptied puts its next key at position 0 again,
    /// below the old end (a blink cycle's or a ring's next rows go at the old end anyway).
    fn clear_if_all_removed(&mut self, removed: Range<u64>, added: &Range<u64>) -> Range<u64> {
        let held = self.log.rows();
        if removed.is_empty() || removed.start > held.start || removed.end < held.end {
            return removed;
        }
        self.log = ChunkLog::default();
        self.log.skip_to(added.start);
        added.start..added.start
    }

    /// The positions held.
    pub fn rows(&self) -> Range<u64> {
        self.log.rows()
    }

    /// How many rows are held.
    pub fn len(&self) -> usize {
        crate::table::chunk::range_len(&self.log.rows())
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.log.rows().is_empty()
    }

    /// The step of the last snapshot or update applied.
    pub fn step(&self) -> Step {
        self.step
    }

    /// How many resets (snapshots, lags, Flight resets) were applied.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows held, as a snapshot (O(1): it shares the chunks).
    pub fn snapshot(&self) -> TableSnapshot {
        TableSnapshot::from_inner(Arc::new(SnapshotInner {
            step: self.step,
            rows: self.log.rows(),
            chunks: self.log.chunks().clone(),
            schema: self.schema.clone(),
            key: self.key.clone(),
        }))
    }

    /// The chunks held, in order. No copy.
    pub fn batches(&self) -> impl Iterator<Item = &RecordBatch> + '_ {
        self.log.chunks().iter().map(|c| &c.batch)
    }

    /// The rows at positions `range` (clamped to what is held), as slices of chunks.
    /// O(log chunks + chunks returned).
    pub fn slice(&self, range: Range<u64>) -> Vec<RecordBatch> {
        slice_chunks(self.log.chunks(), range)
    }

    /// The runs of rows at positions `range` (clamped to what is held), one per chunk they
    /// fall in, in order: `(position of the run's first row, chunk, rows of the chunk)`.
    ///
    /// Like [`slice`](Self::slice) without making a batch per run: a reader that looks at
    /// cells one by one (a viewer's chart, a sort) reads the chunks as they are.
    /// O(log chunks) to start, then O(1) per run.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tickertable::test_util::{int_batch, int_schema, manual_engine};
    /// # use tickertable::Mirror;
    /// # let engine = manual_engine();
    /// # let (table, publisher) = engine.append_table("t", int_schema())?;
    /// publisher.add(int_batch(0..4))?;
    /// engine.run_cycle();
    /// publisher.add(int_batch(4..10))?;
    /// engine.run_cycle();
    /// let mirror = Mirror::from_snapshot(&table.snapshot());
    /// let mut next = 2;
    /// for (position, chunk, rows) in mirror.runs(2..7) {
    ///     assert_eq!(position, next);
    ///     assert!(rows.end <= chunk.num_rows());
    ///     next += rows.len() as u64;
    /// }
    /// assert_eq!(next, 7, "the runs cover 2..7, whatever the chunks");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn runs(
        &self,
        range: Range<u64>,
    ) -> impl Iterator<Item = (u64, &RecordBatch, Range<usize>)> + '_ {
        let held = self.log.rows();
        let (from, to) = (range.start.max(held.start), range.end.min(held.end));
        let chunks = self.log.chunks();
        let first = if from < to {
            crate::table::chunk::chunk_index(chunks, from)
        } else {
            chunks.len()
        };
        // Offsets into a chunk, which holds them: they fit `usize`.
        let index = |n: u64| crate::table::chunk::range_len(&(0..n));
        chunks
            .focus()
            .narrow(first..)
            .into_iter()
            .take_while(move |c| c.start < to)
            .filter_map(move |c| {
                let (lo, hi) = (from.max(c.start), to.min(c.end()));
                (lo < hi).then(|| (lo, &c.batch, index(lo - c.start)..index(hi - c.start)))
            })
    }

    /// The chunk holding `position` and the row's index in it. O(log chunks).
    pub fn locate(&self, position: u64) -> Option<(&RecordBatch, usize)> {
        if !self.log.rows().contains(&position) {
            return None;
        }
        let chunks = self.log.chunks();
        let c = chunks.get(crate::table::chunk::chunk_index(chunks, position))?;
        let index = usize::try_from(position.checked_sub(c.start)?).ok()?;
        (index < c.batch.num_rows()).then_some((&c.batch, index))
    }
}

impl fmt::Debug for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("rows", &self.rows())
            .field("step", &self.step)
            .field("resets", &self.resets)
            .finish_non_exhaustive()
    }
}

fn protocol(step: Step, what: &str) -> Error {
    Error::Protocol {
        message: format!("step {step}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{i64_column, int_batch, int_schema, manual_engine};
    use crate::{PublisherOptions, TableKind};

    fn follow(table: &crate::Table, sub: &crate::Subscription, mirror: &mut Mirror) {
        while let Ok(e) = sub.try_recv() {
            mirror.apply_event(&e).unwrap();
        }
        let want = i64_column(
            table
                .snapshot()
                .batches()
                .cloned()
                .collect::<Vec<_>>()
                .as_slice(),
            0,
        );
        let got = i64_column(mirror.batches().cloned().collect::<Vec<_>>().as_slice(), 0);
        assert_eq!(got, want);
        assert_eq!(mirror.rows(), table.snapshot().rows());
    }

    #[test]
    fn smoke() {
        let engine = manual_engine();
        let (t, p) = engine.append_table("t", int_schema()).unwrap();
        let sub = t.subscribe().unwrap();
        let mut m = Mirror::new(int_schema());
        p.add(int_batch(0..3)).unwrap();
        engine.run_cycle();
        follow(&t, &sub, &mut m);
        assert_eq!(m.len(), 3);
        assert_eq!(m.resets(), 1);
        let (batch, index) = m.locate(2).unwrap();
        assert_eq!(i64_column(&[batch.slice(index, 1)], 0), vec![2]);
    }

    #[test]
    fn a_mirror_follows_every_kind_exactly() {
        for kind in [
            TableKind::Append,
            TableKind::Blink,
            TableKind::Ring { capacity: 5 },
            TableKind::Keyed { capacity: None },
        ] {
            let engine = manual_engine();
            let options = PublisherOptions::default().with_kind(kind);
            let options = if matches!(kind, TableKind::Keyed { .. }) {
                options.with_key(["v"])
            } else {
                options
            };
            let (t, p) = engine.table_publisher("t", int_schema(), options).unwrap();
            let sub = t.subscribe().unwrap();
            let mut m = Mirror::new(int_schema());
            for round in 0..20_i64 {
                if round % 3 != 2 {
                    p.add(int_batch(round * 2..round * 2 + round % 4)).unwrap();
                }
                if matches!(kind, TableKind::Keyed { .. }) && round % 5 == 4 {
                    p.delete(int_batch([round * 2 - 4, round * 2 - 6])).unwrap();
                }
                engine.run_cycle();
                follow(&t, &sub, &mut m);
            }
        }
    }

    #[test]
    fn regression_a_keyed_table_emptied_starts_over_at_position_zero() {
        let engine = manual_engine();
        let options = PublisherOptions::default()
            .with_kind(TableKind::Keyed { capacity: None })
            .with_key(["v"]);
        let (t, p) = engine.table_publisher("k", int_schema(), options).unwrap();
        let sub = t.subscribe().unwrap();
        let mut m = Mirror::new(int_schema());
        p.add(int_batch(0..3)).unwrap();
        engine.run_cycle();
        follow(&t, &sub, &mut m);
        p.delete(int_batch(0..3)).unwrap();
        engine.run_cycle();
        follow(&t, &sub, &mut m);
        assert!(m.is_empty());
        p.add(int_batch(7..9)).unwrap();
        engine.run_cycle();
        follow(&t, &sub, &mut m);
        assert_eq!(m.rows(), 0..2, "the next keys are at 0 again");
    }

    #[test]
    fn merged_replaced_chunks_keep_the_oldest_version_of_each() {
        let at = |chunks: Vec<(u64, i64)>| Replaced {
            chunks: chunks
                .into_iter()
                .map(|(s, v)| (s, int_batch(v..v + 10)))
                .collect(),
        };
        let mut first = at(vec![(0, 100), (20, 120)]);
        // A later part replaced chunk 20 again (its rows as the first part left them), and
        // chunks 10 and 30 for the first time.
        first.merge(at(vec![(10, 210), (20, 220), (30, 230)]));
        let got: Vec<(u64, i64)> = first
            .chunks
            .iter()
            .map(|(s, b)| (*s, i64_column(&[b.slice(0, 1)], 0)[0]))
            .collect();
        assert_eq!(got, [(0, 100), (10, 210), (20, 120), (30, 230)]);
        let (b, i) = first.locate(25).unwrap();
        assert_eq!(
            i64_column(&[b.slice(i, 1)], 0),
            [125],
            "as it was before both"
        );
        let mut none = Replaced::default();
        none.merge(Replaced::default());
        assert!(none.is_empty());
    }

    #[test]
    fn runs_cover_exactly_the_range_held() {
        // Five chunks of ten rows (pushed as they are, not coalesced), the first five rows
        // evicted: the first chunk is sliced.
        let mut m = Mirror::new(int_schema());
        for i in 0..5 {
            m.log.push(int_batch(i * 10..i * 10 + 10));
        }
        m.log.evict_to(5);
        assert_eq!(m.rows(), 5..50);
        let runs = |r: Range<u64>| -> Vec<(u64, Range<usize>, i64)> {
            m.runs(r)
                .map(|(p, b, rows)| (p, rows.clone(), i64_column(&[b.slice(rows.start, 1)], 0)[0]))
                .collect()
        };
        assert_eq!(
            runs(15..37),
            [(15, 5..10, 15), (20, 0..10, 20), (30, 0..7, 30)]
        );
        assert_eq!(
            runs(0..12),
            [(5, 0..5, 5), (10, 0..2, 10)],
            "clamped to the rows held"
        );
        assert_eq!(runs(49..80), [(49, 9..10, 49)]);
        assert!(runs(50..60).is_empty() && runs(20..20).is_empty() && runs(0..5).is_empty());
        let all: usize = m.runs(0..u64::MAX).map(|(_, _, r)| r.len()).sum();
        assert_eq!(all, m.len());
    }

    #[test]
    fn an_update_that_does_not_fit_is_a_protocol_error() {
        let engine = manual_engine();
        let (t, p) = engine.append_table("t", int_schema()).unwrap();
        let sub = t.subscribe().unwrap();
        p.add(int_batch(0..3)).unwrap();
        engine.run_cycle();
        let _snapshot = sub.try_recv().unwrap();
        let update = sub.try_recv().unwrap();
        let mut m = Mirror::new(int_schema());
        // The update adds rows 0..3 to a mirror that holds nothing and never saw a snapshot:
        // it fits (an empty mirror takes any start). Applying it twice does not.
        m.apply_event(&update).unwrap();
        let err = m.apply_event(&update).unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err:?}");
    }
}
