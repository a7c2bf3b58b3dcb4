//! The viewer's copy of a table: the rows `[start, end)` as shared Arrow batches, addressed by
//! row position, kept up to date from a table's snapshot and updates.
//!
//! No row is copied: the batches are the engine's (or the wire's) own, `Arc`'d. Applying an
//! update costs O(batches changed); finding a position costs O(log chunks), so showing rows
//! 9,000,000 to 9,000,050 of a 10M-row table costs what showing the first 50 does.
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

    /// Applies one update: drops the removed prefix, appends the added rows.
    pub(crate) fn apply(&mut self, d: &Delta) {
        self.step = d.step;
        if !d.removed.is_empty() {
            self.evict_to(d.removed.end);
        }
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
        m.apply(&delta(0..0, 0..4));
        m.apply(&delta(0..2, 4..6)); // a ring of 4
        assert_eq!(m.rows(), 2..6);
        assert_eq!(
            (2..6).map(|p| value(&m, p)).collect::<Vec<_>>(),
            [2, 3, 4, 5].map(Some)
        );
        m.apply(&delta(2..6, 6..7)); // blink
        assert_eq!(m.rows(), 6..7);
        assert_eq!(value(&m, 6), Some(6));
        m.apply(&delta(6..7, 7..7)); // an empty blink cycle
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn runs_cover_exactly_the_range() {
        let mut m = Mirror::default();
        for i in 0..5 {
            m.apply(&delta(0..0, i * 10..i * 10 + 10));
        }
        let mut got = Vec::new();
        m.for_each_run(15..37, |pos, _, row, n| got.push((pos, row, n)));
        assert_eq!(got, [(15, 5, 5), (20, 0, 10), (30, 0, 7)]);
    }
}
