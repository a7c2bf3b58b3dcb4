//! The open table's sort: the newest rows of the row set, ordered by one column.
//!
//! # Bounded work
//!
//! A sort orders the newest [`SORT_ROWS`] rows of the row set (every row, or a filter's
//! matches), again after each update: O(n log n), n ≤ [`SORT_ROWS`]. Numbers sort by value,
//! strings by bytes, nulls last; equal values by position.

use std::cmp::Ordering;

use arrow_array::Array;
use tickertable::Mirror;

use super::filter::FilterState;
use crate::cells::{num_at, text_at};

/// Rows a sort orders: the newest of the row set.
pub(crate) const SORT_ROWS: usize = 10_000;

/// A sort: the column and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sort {
    pub(crate) column: usize,
    pub(crate) descending: bool,
}

impl Sort {
    /// The sort after sorting on `column` again, from `current`: ascending, then descending,
    /// then off. Another column's sort gives way to this column's, ascending.
    pub(crate) fn next(current: Option<Sort>, column: usize) -> Option<Sort> {
        match current {
            Some(s) if s.column == column && !s.descending => Some(Sort {
                column,
                descending: true,
            }),
            Some(s) if s.column == column => None,
            _ => Some(Sort {
                column,
                descending: false,
            }),
        }
    }
}

/// A sort and the positions it ordered.
#[derive(Debug, Clone)]
pub(crate) struct Sorted {
    by: Sort,
    positions: Vec<u64>,
}

impl Sorted {
    /// The rows of `m` (those `filter` kept, if any) sorted `by`.
    pub(super) fn new(by: Sort, m: &Mirror, filter: Option<&FilterState>) -> Self {
        let mut s = Self {
            by,
            positions: Vec::new(),
        };
        s.resort(m, filter);
        s
    }

    /// The column and the direction.
    pub(crate) fn by(&self) -> Sort {
        self.by
    }

    /// The positions in order.
    pub(crate) fn positions(&self) -> &[u64] {
        &self.positions
    }

    /// Sorts the newest [`SORT_ROWS`] rows of `m` (of those `filter` kept, if any) again.
    /// O(n log n), n ≤ `SORT_ROWS`.
    pub(super) fn resort(&mut self, m: &Mirror, filter: Option<&FilterState>) {
        let sort = self.by;
        let mut keys: Vec<(Key<'_>, u64)> = Vec::with_capacity(SORT_ROWS);
        if let Some(f) = filter {
            let skip = f.matches().len().saturating_sub(SORT_ROWS);
            for &p in f.matches().iter().skip(skip) {
                if let Some((b, r)) = m.locate(p) {
                    keys.push((Key::of(b.column(sort.column).as_ref(), r), p));
                }
            }
        } else {
            let rows = m.rows();
            let from = rows.start.max(rows.end.saturating_sub(SORT_ROWS as u64));
            for (p0, b, run) in m.runs(from..rows.end) {
                let a = b.column(sort.column).as_ref();
                for (k, r) in run.enumerate() {
                    keys.push((Key::of(a, r), p0 + k as u64));
                }
            }
        }
        keys.sort_by(|(a, pa), (b, pb)| {
            let o = a.cmp(b);
            let o = if sort.descending { o.reverse() } else { o };
            o.then(pa.cmp(pb))
        });
        self.positions.clear();
        self.positions.extend(keys.into_iter().map(|(_, p)| p));
    }
}

/// A sort key, ordered nulls last, numbers by value, strings by bytes.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Num(f64),
    Text(&'a str),
    Null,
}

impl<'a> Key<'a> {
    fn of(a: &'a dyn Array, r: usize) -> Self {
        if let Some(s) = text_at(a, r) {
            Key::Text(s)
        } else if let Some(x) = num_at(a, r) {
            Key::Num(x)
        } else {
            Key::Null
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.total_cmp(b),
            (Key::Text(a), Key::Text(b)) => a.cmp(b),
            (Key::Null, Key::Null) => Ordering::Equal,
            (Key::Null, _) | (Key::Text(_), Key::Num(_)) => Ordering::Greater,
            (_, Key::Null) | (Key::Num(_), Key::Text(_)) => Ordering::Less,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::filter::Filter;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, true),
            Field::new("Bid", DataType::Float64, true),
        ]))
    }

    /// A mirror holding `rows` from position 0, in one batch.
    fn mirror(rows: &[(Option<&str>, Option<f64>)]) -> Mirror {
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<Float64Array>()),
            ],
        )
        .unwrap();
        crate::testing::mirror_at(0, &batch)
    }

    fn by(column: usize, descending: bool) -> Sort {
        Sort { column, descending }
    }

    #[test]
    fn smoke() {
        let m = mirror(&[(Some("B"), Some(2.0)), (Some("A"), Some(1.0))]);
        let s = Sorted::new(by(1, false), &m, None);
        assert_eq!(s.positions(), [1, 0]);
        assert_eq!(s.by(), by(1, false));
    }

    #[test]
    fn sorting_a_column_again_goes_ascending_descending_off() {
        let asc = Sort::next(None, 2);
        assert_eq!(asc, Some(by(2, false)));
        let desc = Sort::next(asc, 2);
        assert_eq!(desc, Some(by(2, true)));
        assert_eq!(Sort::next(desc, 2), None);
        assert_eq!(Sort::next(desc, 0), Some(by(0, false)), "another column");
    }

    #[test]
    fn nulls_sort_after_values_and_equal_values_by_position() {
        let m = mirror(&[
            (Some("b"), None),
            (Some("a"), Some(3.0)),
            (None, Some(1.0)),
            (Some("a"), Some(1.0)),
        ]);
        assert_eq!(
            Sorted::new(by(1, false), &m, None).positions(),
            [2, 3, 1, 0]
        );
        // Descending reverses the values (the nulls come first), not the ties.
        assert_eq!(Sorted::new(by(1, true), &m, None).positions(), [0, 1, 2, 3]);
        assert_eq!(
            Sorted::new(by(0, false), &m, None).positions(),
            [1, 3, 0, 2]
        );
    }

    #[test]
    fn a_filtered_sort_orders_only_the_matches() {
        let m = mirror(&[
            (Some("a"), Some(60.0)),
            (Some("b"), Some(10.0)),
            (Some("c"), Some(55.0)),
        ]);
        let f = FilterState::new(Filter::parse("Bid > 50", &schema()).unwrap(), &m);
        assert_eq!(Sorted::new(by(1, false), &m, Some(&f)).positions(), [2, 0]);
    }

    #[test]
    fn only_the_newest_rows_are_sorted() {
        let rows: Vec<(Option<&str>, Option<f64>)> = (0..SORT_ROWS + 5)
            .map(|i| (None, Some(-(i as f64))))
            .collect();
        let s = Sorted::new(by(1, false), &mirror(&rows), None);
        assert_eq!(s.positions().len(), SORT_ROWS);
        assert_eq!(s.positions().first(), Some(&(SORT_ROWS as u64 + 4)));
        assert_eq!(s.positions().last(), Some(&5));
    }
}
