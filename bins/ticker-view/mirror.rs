//! The viewer's copy of a table: the rows `[start, end)` as shared Arrow batches, addressed by
//! row position, kept up to date from a table's snapshot and updates.
//!
//! No row is copied: the batches are the engine's (or the wire's) own, `Arc`'d. Applying an
//! update costs O(batches changed); finding a position costs O(log chunks), so showing rows
//! 9,000,000 to 9,000,050 of a 10M-row table costs what showing the first 50 does.
//!
//! # Keyed tables
//!
//! A keyed table's update also drops a suffix and rewrites rows in place. Only the chunks
//! holding a modified row are rebuilt (arrow's `interleave` of the old chunk and the new rows),
//! so an update costs O(chunks touched × chunk length), never O(table); the other chunks stay
//! shared. [`Mirror::apply`] hands back the chunks it replaced ([`Replaced`]) so the view can
//! compare a cell's new value with its old one.
//!
//! Also here: reading one cell as a number or a string ([`Col`]) and formatting cells with
//! arrow's `ArrayFormatter`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;

use crate::source::{Delta, Rows};

/// The chunks an update's modified rows replaced, as they were: the rows before the update.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replaced {
    /// `(position of the first row, batch)`, in position order.
    chunks: Vec<(u64, RecordBatch)>,
}

impl Replaced {
    /// The old batch holding `pos` and the row's index in it, if `pos` was in a replaced
    /// chunk. O(log chunks replaced).
    pub(crate) fn locate(&self, pos: u64) -> Option<(&RecordBatch, usize)> {
        let i = self
            .chunks
            .partition_point(|(s, b)| s + b.num_rows() as u64 <= pos);
        let (s, b) = self.chunks.get(i)?;
        (*s <= pos).then(|| (b, to_usize(pos - s)))
    }
}

/// How cells are formatted: times of day to the microsecond, nulls as `·`.
pub(crate) const FORMAT: FormatOptions<'static> = FormatOptions::new()
    .with_display_error(true)
    .with_null("·")
    .with_timestamp_format(Some("%H:%M:%S%.6f"))
    .with_timestamp_tz_format(Some("%H:%M:%S%.6f"));

/// A table's rows by position.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mirror {
    /// `(position of the first row, batch)`, in position order, contiguous.
    chunks: VecDeque<(u64, RecordBatch)>,
    start: u64,
    end: u64,
    step: u64,
}

impl Mirror {
    /// The rows of a snapshot.
    pub(crate) fn from_rows(rows: &Rows) -> Self {
        let mut m = Self {
            chunks: VecDeque::with_capacity(rows.batches.len()),
            start: rows.rows.start,
            end: rows.rows.start,
            step: rows.step,
        };
        for b in &rows.batches {
            m.push(b.clone());
        }
        debug_assert_eq!(m.end, rows.rows.end);
        m.end = rows.rows.end;
        m
    }

    /// Applies one update: drops the removed prefix (or a keyed table's suffix), replaces the
    /// modified rows, appends the added rows. Returns the chunks the modified rows replaced.
    ///
    /// Cost: O(chunks removed + chunks added), plus O(chunk length × columns) per chunk
    /// holding a modified row.
    ///
    /// # Errors
    ///
    /// If the update does not fit the rows held: a removed range that is neither a prefix nor
    /// a suffix, modified positions not held or not ascending, modified rows that do not match
    /// their positions or the chunks' columns. The rows held are then as far as the update
    /// got.
    pub(crate) fn apply(&mut self, d: &Delta) -> Result<Replaced, String> {
        self.step = d.step;
        let r = &d.removed;
        if !r.is_empty() {
            if r.start <= self.start && r.end >= self.end {
                // Everything goes: a blink cycle, a ring overrun, a keyed table emptied. The
                // rows held next start where the added ones do.
                self.chunks.clear();
                self.start = d.added.start;
                self.end = d.added.start;
            } else if r.start <= self.start {
                self.evict_to(r.end);
            } else if r.end >= self.end {
                self.truncate_to(r.start);
            } else {
                return Err(format!(
                    "removed rows {r:?} are neither a prefix nor a suffix of {:?}",
                    self.rows()
                ));
            }
        }
        let replaced = if d.modified.is_empty() {
            Replaced::default()
        } else {
            let batch = d
                .modified
                .batch
                .as_ref()
                .ok_or("modified positions without their rows")?;
            self.patch(&d.modified.positions, batch)?
        };
        if d.added.start > self.end {
            // Rows appended and evicted in the same cycle were never stored anywhere.
            self.chunks.clear();
            self.start = d.added.start;
            self.end = d.added.start;
        }
        for b in &d.batches {
            self.push(b.clone());
        }
        self.end = self.end.max(d.added.end);
        self.start = self.start.min(self.end);
        Ok(replaced)
    }

    /// Replaces the rows at `positions` (ascending, held) with `batch`'s rows, in order,
    /// rebuilding only the chunks they fall in; returns those chunks as they were.
    fn patch(&mut self, positions: &[u64], batch: &RecordBatch) -> Result<Replaced, String> {
        if batch.num_rows() != positions.len() {
            return Err(format!(
                "{} modified positions for {} rows",
                positions.len(),
                batch.num_rows()
            ));
        }
        if positions.windows(2).any(|w| w[0] >= w[1]) {
            return Err("modified positions are not ascending".to_owned());
        }
        if positions.first().is_some_and(|&p| p < self.start)
            || positions.last().is_some_and(|&p| p >= self.end)
        {
            return Err(format!(
                "modified positions {}..={} outside the rows held {:?}",
                positions[0],
                positions[positions.len() - 1],
                self.rows()
            ));
        }
        let mut replaced = Replaced::default();
        let mut indices: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < positions.len() {
            let index = self
                .chunks
                .partition_point(|(s, b)| s + b.num_rows() as u64 <= positions[i]);
            let (start, chunk) = &self.chunks[index];
            let (start, len) = (*start, chunk.num_rows());
            let j = i + positions[i..].partition_point(|&p| p < start + len as u64);
            let rows = batch.slice(i, j - i);
            let columns = if j - i == len {
                // Every row of the chunk: the new rows are the chunk.
                rows.columns().to_vec()
            } else {
                indices.clear();
                indices.extend((0..len).map(|r| (0, r)));
                for (k, &p) in positions[i..j].iter().enumerate() {
                    indices[to_usize(p - start)] = (1, k);
                }
                (0..chunk.num_columns())
                    .map(|c| {
                        arrow_select::interleave::interleave(
                            &[chunk.column(c).as_ref(), rows.column(c).as_ref()],
                            &indices,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("modified rows: {e}"))?
            };
            let rebuilt = RecordBatch::try_new(chunk.schema(), columns)
                .map_err(|e| format!("modified rows: {e}"))?;
            let old = std::mem::replace(&mut self.chunks[index].1, rebuilt);
            replaced.chunks.push((start, old));
            i = j;
        }
        Ok(replaced)
    }

    /// Drops the rows at and after `new_end` (a keyed table shrinking).
    fn truncate_to(&mut self, new_end: u64) {
        let new_end = new_end.max(self.start);
        while let Some((first, batch)) = self.chunks.back() {
            if *first >= new_end {
                self.chunks.pop_back();
            } else {
                let keep = to_usize(new_end - first);
                if keep < batch.num_rows() {
                    let sliced = batch.slice(0, keep);
                    let last = self.chunks.len() - 1;
                    self.chunks[last].1 = sliced;
                }
                break;
            }
        }
        self.end = self.end.min(new_end);
    }

    fn push(&mut self, batch: RecordBatch) {
        let n = batch.num_rows() as u64;
        if n > 0 {
            self.chunks.push_back((self.end, batch));
            self.end += n;
        }
    }

    fn evict_to(&mut self, new_start: u64) {
        let new_start = new_start.min(self.end);
        if new_start <= self.start {
            return;
        }
        while let Some((first, batch)) = self.chunks.front() {
            let chunk_end = first + batch.num_rows() as u64;
            if chunk_end <= new_start {
                self.chunks.pop_front();
            } else {
                if *first < new_start {
                    let skip = to_usize(new_start - first);
                    let sliced = batch.slice(skip, batch.num_rows() - skip);
                    self.chunks[0] = (new_start, sliced);
                }
                break;
            }
        }
        self.start = new_start;
    }

    /// The positions held, `[start, end)`.
    pub(crate) fn rows(&self) -> Range<u64> {
        self.start..self.end
    }

    /// How many rows are held.
    pub(crate) fn len(&self) -> usize {
        to_usize(self.end - self.start)
    }

    /// The step of the last snapshot or update applied.
    pub(crate) fn step(&self) -> u64 {
        self.step
    }

    /// The batch holding `pos` and the row's index in it. O(log chunks).
    pub(crate) fn locate(&self, pos: u64) -> Option<(&RecordBatch, usize)> {
        if pos < self.start || pos >= self.end {
            return None;
        }
        let i = self
            .chunks
            .partition_point(|(s, b)| s + b.num_rows() as u64 <= pos);
        let (s, b) = self.chunks.get(i)?;
        Some((b, to_usize(pos - s)))
    }

    /// Calls `f(first position, batch, first row, rows)` for each batch run in `range`, in
    /// order. O(log chunks + runs).
    pub(crate) fn for_each_run<'a>(
        &'a self,
        range: Range<u64>,
        mut f: impl FnMut(u64, &'a RecordBatch, usize, usize),
    ) {
        let from = range.start.max(self.start);
        let to = range.end.min(self.end);
        if from >= to {
            return;
        }
        let first = self
            .chunks
            .partition_point(|(s, b)| s + b.num_rows() as u64 <= from);
        for (s, b) in self.chunks.range(first..) {
            if *s >= to {
                break;
            }
            let lo = from.max(*s);
            let hi = to.min(s + b.num_rows() as u64);
            if lo < hi {
                f(lo, b, to_usize(lo - s), to_usize(hi - lo));
            }
        }
    }
}

/// `u64` to `usize`; the viewer only runs where positions of held rows fit.
pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Whether a column can be read as a number (sorting, charts, numeric filters).
pub(crate) fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
        || matches!(
            dt,
            DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Duration(_)
        )
}

/// Whether a column holds times of day or dates (numbers, but not ones that rise or fall).
pub(crate) fn is_time(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
    )
}

/// Whether a column holds strings.
pub(crate) fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// One column of one batch, read as numbers or strings.
#[derive(Debug)]
pub(crate) enum Col<'a> {
    /// Numbers (integers, times and decimals converted to `f64`).
    Num(Cow<'a, Float64Array>),
    /// Strings.
    Text(&'a dyn Array),
    /// Anything else.
    Other,
}

impl<'a> Col<'a> {
    /// A reader for `array`. Converts non-`Float64` numbers once per call (O(rows)).
    pub(crate) fn new(array: &'a ArrayRef) -> Self {
        let dt = array.data_type();
        if let Some(f) = array.as_primitive_opt::<arrow_array::types::Float64Type>() {
            return Col::Num(Cow::Borrowed(f));
        }
        if is_text(dt) {
            return Col::Text(array.as_ref());
        }
        if is_numeric(dt) {
            let as_int = match dt {
                DataType::Timestamp(..)
                | DataType::Date64
                | DataType::Time64(_)
                | DataType::Duration(_) => arrow_cast::cast::cast(array, &DataType::Int64).ok(),
                DataType::Date32 | DataType::Time32(_) => {
                    arrow_cast::cast::cast(array, &DataType::Int32).ok()
                }
                _ => Some(array.clone()),
            };
            if let Some(f) = as_int
                .and_then(|a| arrow_cast::cast::cast(&a, &DataType::Float64).ok())
                .and_then(|a| {
                    a.as_primitive_opt::<arrow_array::types::Float64Type>()
                        .cloned()
                })
            {
                return Col::Num(Cow::Owned(f));
            }
        }
        Col::Other
    }

    /// Row `i` as a number, if it is one and not null.
    pub(crate) fn num(&self, i: usize) -> Option<f64> {
        match self {
            Col::Num(a) if a.is_valid(i) => Some(a.value(i)),
            _ => None,
        }
    }

    /// Row `i` as a string, if it is one and not null.
    pub(crate) fn text(&self, i: usize) -> Option<&'a str> {
        match self {
            Col::Text(a) => text_at(*a, i),
            _ => None,
        }
    }
}

/// Cell `i` of `array` as a number, if it is a non-null number (times in their unit). No
/// allocation: one downcast per call.
pub(crate) fn num_at(array: &dyn Array, i: usize) -> Option<f64> {
    use arrow_array::types::{
        Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
        DurationNanosecondType, DurationSecondType, Float32Type, Float64Type, Int16Type, Int32Type,
        Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
        UInt8Type,
    };
    if i >= array.len() || array.is_null(i) {
        return None;
    }
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(p) = array.as_primitive_opt::<$t>() {
                return Some(p.value(i) as f64);
            }
        )*};
    }
    try_types!(
        Float64Type,
        Int64Type,
        TimestampNanosecondType,
        Int32Type,
        Float32Type,
        UInt64Type,
        UInt32Type,
        Int16Type,
        Int8Type,
        UInt16Type,
        UInt8Type,
        TimestampMicrosecondType,
        TimestampMillisecondType,
        TimestampSecondType,
        Date32Type,
        Date64Type,
        DurationNanosecondType,
        DurationMicrosecondType,
        DurationMillisecondType,
        DurationSecondType
    );
    None
}

/// Cell `i` of `array` as a string, if it is a non-null string.
pub(crate) fn text_at(array: &dyn Array, i: usize) -> Option<&str> {
    if i >= array.len() || array.is_null(i) {
        return None;
    }
    if let Some(s) = array.as_string_opt::<i32>() {
        Some(s.value(i))
    } else if let Some(s) = array.as_string_opt::<i64>() {
        Some(s.value(i))
    } else {
        array.as_string_view_opt().map(|s| s.value(i))
    }
}

/// Writes cell `i` of `array` into `out` (cleared first), formatted by arrow.
pub(crate) fn format_cell(array: &dyn Array, i: usize, out: &mut String) {
    out.clear();
    match ArrayFormatter::try_new(array, &FORMAT) {
        Ok(f) => {
            let _ = write!(out, "{}", f.value(i));
        }
        Err(_) => out.push('?'),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{Field, Schema};

    use super::*;

    fn batch(values: Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    fn value(m: &Mirror, pos: u64) -> Option<i64> {
        let (b, i) = m.locate(pos)?;
        Some(
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(i),
        )
    }

    fn delta(removed: Range<u64>, added: Range<u64>) -> Delta {
        let batches = if added.is_empty() {
            vec![]
        } else {
            vec![batch(added.start as i64..added.end as i64)]
        };
        Delta {
            step: 1,
            removed,
            added,
            batches,
            ..Delta::default()
        }
    }

    #[test]
    fn smoke() {
        let m = Mirror::from_rows(&Rows {
            step: 3,
            rows: 10..15,
            batches: vec![batch(10..12), batch(12..15)],
        });
        assert_eq!(m.rows(), 10..15);
        assert_eq!(value(&m, 13), Some(13));
        assert_eq!(value(&m, 9), None);
        assert_eq!(value(&m, 15), None);
    }

    #[test]
    fn updates_evict_a_prefix_and_append() {
        let mut m = Mirror::default();
        m.apply(&delta(0..0, 0..4)).unwrap();
        m.apply(&delta(0..2, 4..6)).unwrap(); // a ring of 4
        assert_eq!(m.rows(), 2..6);
        assert_eq!(
            (2..6).map(|p| value(&m, p)).collect::<Vec<_>>(),
            [2, 3, 4, 5].map(Some)
        );
        m.apply(&delta(2..6, 6..7)).unwrap(); // blink
        assert_eq!(m.rows(), 6..7);
        assert_eq!(value(&m, 6), Some(6));
        m.apply(&delta(6..7, 7..7)).unwrap(); // an empty blink cycle
        assert_eq!(m.len(), 0);
    }

    /// A keyed delta: `removed`, then `modified` positions with values, then `added`.
    fn keyed_delta(removed: Range<u64>, modified: &[(u64, i64)], added: Range<u64>) -> Delta {
        let positions: Vec<u64> = modified.iter().map(|m| m.0).collect();
        let values = modified.iter().map(|m| m.1);
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let rows =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))])
                .unwrap();
        Delta {
            modified: crate::source::Modified {
                positions,
                batch: Some(rows),
                ..Default::default()
            },
            ..delta(removed, added)
        }
    }

    fn values(m: &Mirror) -> Vec<i64> {
        m.rows().map(|p| value(m, p).unwrap()).collect()
    }

    #[test]
    fn keyed_deltas_drop_a_suffix_replace_rows_in_place_and_append() {
        let mut m = Mirror::from_rows(&Rows {
            step: 1,
            rows: 0..10,
            batches: vec![batch(0..4), batch(4..8), batch(8..10)],
        });
        // Keys at 1 and 8 deleted: the last two rows move into their slots.
        let replaced = m
            .apply(&keyed_delta(8..10, &[(1, 9), (5, 105)], 8..8))
            .unwrap();
        assert_eq!(m.rows(), 0..8);
        assert_eq!(values(&m), [0, 9, 2, 3, 4, 105, 6, 7]);
        let old = |p| {
            let (b, r) = replaced.locate(p).unwrap();
            b.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(r)
        };
        assert_eq!((old(1), old(5)), (1, 5), "the rows as they were");
        assert!(replaced.locate(8).is_none(), "not a replaced chunk's row");
        // Rows modified and added in one update.
        m.apply(&keyed_delta(8..8, &[(0, 100), (7, 107)], 8..10))
            .unwrap();
        assert_eq!(values(&m), [100, 9, 2, 3, 4, 105, 6, 107, 8, 9]);
        // Every row deleted, then new keys from position 0.
        m.apply(&keyed_delta(0..10, &[], 0..0)).unwrap();
        assert_eq!(m.rows(), 0..0);
        m.apply(&delta(0..0, 0..3)).unwrap();
        assert_eq!(values(&m), [0, 1, 2]);
        assert!(
            m.apply(&keyed_delta(0..0, &[(3, 1)], 3..3)).is_err(),
            "not held"
        );
        assert!(
            m.apply(&delta(1..2, 3..3)).is_err(),
            "neither a prefix nor a suffix"
        );
    }

    #[test]
    fn patching_rebuilds_only_the_chunks_touched() {
        let mut m = Mirror::from_rows(&Rows {
            step: 1,
            rows: 0..40,
            batches: (0..4).map(|i| batch(i * 10..i * 10 + 10)).collect(),
        });
        let before: Vec<RecordBatch> = m.chunks.iter().map(|c| c.1.clone()).collect();
        let replaced = m
            .apply(&keyed_delta(40..40, &[(12, -1), (17, -2)], 40..40))
            .unwrap();
        assert_eq!(replaced.chunks.len(), 1, "one chunk held both rows");
        for (i, (old, (_, now))) in before.iter().zip(&m.chunks).enumerate() {
            let shared = Arc::ptr_eq(old.column(0), now.column(0));
            assert_eq!(shared, i != 1, "chunk {i}");
        }
        assert_eq!(value(&m, 12), Some(-1));
        assert_eq!(value(&m, 13), Some(13));
        // A chunk whose every row is modified becomes the new rows, with no copy.
        let all: Vec<(u64, i64)> = (30..40).map(|p| (p, -(p as i64))).collect();
        m.apply(&keyed_delta(40..40, &all, 40..40)).unwrap();
        assert_eq!(value(&m, 35), Some(-35));
        assert_eq!(m.chunks[3].1.num_rows(), 10);
    }

    /// Every cell of `m`'s rows as one batch, and the same for `s`.
    fn mirror_batch(m: &Mirror, schema: &arrow_schema::SchemaRef) -> RecordBatch {
        let mut parts = Vec::new();
        m.for_each_run(m.rows(), |_, b, r, n| parts.push(b.slice(r, n)));
        arrow_select::concat::concat_batches(schema, &parts).unwrap()
    }

    #[test]
    fn a_mirror_applies_keyed_updates_exactly_over_random_upserts_and_deletes() {
        use tickertable::PublisherOptions;

        use crate::source::{convert, DataEvent};
        use crate::testing::{bid_batch, key_batch, quote_batch, quote_schema, Quote};

        let engine = tickertable::test_util::manual_engine();
        let options = PublisherOptions::default().with_key(["Sym"]);
        let (table, publisher) = engine
            .table_publisher("quotes", quote_schema(), options)
            .unwrap();
        let sub = table.subscribe().unwrap();
        let mut mirror = Mirror::default();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let names: Vec<String> = (0..2_000).map(|k| format!("K{k:04}")).collect();
        let (mut modified, mut shrank, mut most) = (0, 0, 0);
        for cycle in 0..300 {
            // Some cycles grow the table past several chunks, some shrink it a lot.
            let (upserts, deletes) = match cycle % 10 {
                0..=3 => (next(400), next(20)),
                4..=8 => (next(60), next(60)),
                _ => (next(10), next(600)),
            };
            let keys: Vec<&str> = (0..upserts)
                .map(|_| names[next(2_000) as usize].as_str())
                .collect();
            let rows: Vec<Quote<'_>> = keys
                .iter()
                .map(|k| {
                    (
                        *k,
                        next(1000) as f64,
                        next(1000) as f64,
                        ["X", "Y", "Z"][next(3) as usize],
                    )
                })
                .collect();
            let (whole, part) = rows.split_at(rows.len() / 2);
            publisher.upsert(quote_batch(whole)).unwrap();
            let bids: Vec<(&str, f64)> = part.iter().map(|r| (r.0, r.1)).collect();
            publisher.upsert(bid_batch(&bids)).unwrap();
            let gone: Vec<&str> = (0..deletes)
                .map(|_| names[next(2_000) as usize].as_str())
                .collect();
            publisher.delete(key_batch(&gone)).unwrap();
            let before = mirror.clone();
            engine.run_cycle();
            while let Ok(e) = sub.try_recv() {
                match convert(e) {
                    Some(DataEvent::Snapshot(rows)) => mirror = Mirror::from_rows(&rows),
                    Some(DataEvent::Update(d)) => {
                        let replaced = mirror.apply(&d).unwrap();
                        // What the modified rows replaced is what the mirror held there.
                        for &p in &d.modified.positions {
                            let (old, r) = replaced.locate(p).unwrap();
                            let (held, hr) = before.locate(p).unwrap();
                            assert_eq!(old.slice(r, 1), held.slice(hr, 1), "row {p}");
                        }
                        modified += d.modified.len();
                        shrank += usize::from(!d.removed.is_empty());
                    }
                    other => panic!("{other:?}"),
                }
            }
            let want = table.snapshot();
            most = most.max(mirror.len());
            assert_eq!(mirror.rows(), want.rows(), "cycle {cycle}");
            assert_eq!(
                mirror_batch(&mirror, &quote_schema()),
                want.to_batch().unwrap(),
                "cycle {cycle}"
            );
        }
        assert!(
            modified > 1_000 && shrank > 20,
            "{modified} modified, {shrank} shrank"
        );
        assert!(
            most > 1_024,
            "{most} rows at most: the rows span several chunks"
        );
    }

    #[test]
    fn runs_cover_exactly_the_range() {
        let mut m = Mirror::default();
        for i in 0..5 {
            m.apply(&delta(0..0, i * 10..i * 10 + 10)).unwrap();
        }
        let mut got = Vec::new();
        m.for_each_run(15..37, |pos, _, row, n| got.push((pos, row, n)));
        assert_eq!(got, [(15, 5, 5), (20, 0, 10), (30, 0, 7)]);
    }
}
