//! The row set: the rows the view shows, in order. Every row of the table (or of its frozen
//! copy while paused), or the rows a filter kept, or those sorted. The cursor and the scroll
//! are indices into it; each index stands for a row position.

use std::ops::Range;

use tickertable::Mirror;

use super::filter::FilterState;
use super::sort::Sorted;
use crate::cells::to_usize;

/// The rows shown, borrowed from the parts that choose them. Cheap to make: three references.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSet<'a> {
    data: &'a Mirror,
    filter: Option<&'a FilterState>,
    sorted: Option<&'a Sorted>,
}

impl<'a> RowSet<'a> {
    /// The rows of `data`: those `sorted` ordered if there is a sort, else those `filter`
    /// kept if there is a filter, else all.
    pub(super) fn new(
        data: &'a Mirror,
        filter: Option<&'a FilterState>,
        sorted: Option<&'a Sorted>,
    ) -> Self {
        Self {
            data,
            filter,
            sorted,
        }
    }

    /// The rows the positions are in.
    pub(crate) fn data(&self) -> &'a Mirror {
        self.data
    }

    /// How many rows the row set has.
    pub(crate) fn len(&self) -> usize {
        if let Some(s) = self.sorted {
            s.positions().len()
        } else if let Some(f) = self.filter {
            f.matches().len()
        } else {
            self.data.len()
        }
    }

    /// The position of row `i`.
    pub(crate) fn pos_at(&self, i: usize) -> Option<u64> {
        if let Some(s) = self.sorted {
            s.positions().get(i).copied()
        } else if let Some(f) = self.filter {
            f.matches().get(i).copied()
        } else {
            let rows = self.data.rows();
            let p = rows.start + i as u64;
            (p < rows.end).then_some(p)
        }
    }

    /// The index of the first row at or after `pos`; sorted, the index of the row at `pos`
    /// (`None` if it is not there). O(log n), sorted O(n).
    pub(crate) fn index_of(&self, pos: u64) -> Option<usize> {
        if let Some(s) = self.sorted {
            s.positions().iter().position(|&p| p == pos)
        } else if let Some(f) = self.filter {
            Some(f.matches().partition_point(|&p| p < pos))
        } else {
            Some(to_usize(pos.saturating_sub(self.data.rows().start)))
        }
    }

    /// The positions of rows `range` (those that exist), in order.
    pub(crate) fn positions(self, range: Range<usize>) -> impl Iterator<Item = u64> + Clone + 'a {
        range.filter_map(move |i| self.pos_at(i))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::super::sort::Sort;
    use super::*;
    use crate::filter::Filter;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![Field::new(
            "Bid",
            DataType::Float64,
            true,
        )]))
    }

    /// A mirror holding `bids` from position 10.
    fn mirror(bids: &[f64]) -> Mirror {
        let batch =
            RecordBatch::try_new(schema(), vec![Arc::new(Float64Array::from(bids.to_vec()))])
                .unwrap();
        crate::testing::mirror_at(10, &batch)
    }

    #[test]
    fn smoke() {
        let m = mirror(&[1.0, 2.0, 3.0]);
        let rows = RowSet::new(&m, None, None);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.pos_at(0), Some(10));
        assert_eq!(rows.pos_at(3), None);
        assert_eq!(rows.index_of(12), Some(2));
        assert_eq!(rows.index_of(3), Some(0), "before the first row");
        assert_eq!(rows.positions(1..5).collect::<Vec<_>>(), [11, 12]);
    }

    #[test]
    fn a_filtered_row_set_holds_the_matches() {
        let m = mirror(&[60.0, 10.0, 70.0, 20.0]);
        let f = FilterState::new(Filter::parse("Bid > 50", &schema()).unwrap(), &m);
        let rows = RowSet::new(&m, Some(&f), None);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.positions(0..2).collect::<Vec<_>>(), [10, 12]);
        assert_eq!(rows.index_of(11), Some(1), "the next match");
        assert_eq!(rows.index_of(13), Some(2), "past the last match");
    }

    #[test]
    fn a_sorted_row_set_holds_the_order_and_finds_only_its_rows() {
        let m = mirror(&[60.0, 10.0, 70.0, 20.0]);
        let f = FilterState::new(Filter::parse("Bid > 15", &schema()).unwrap(), &m);
        let by = Sort {
            column: 0,
            descending: true,
        };
        let s = Sorted::new(by, &m, Some(&f));
        let rows = RowSet::new(&m, Some(&f), Some(&s));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.positions(0..3).collect::<Vec<_>>(), [12, 10, 13]);
        assert_eq!(rows.index_of(13), Some(2));
        assert_eq!(rows.index_of(11), None, "filtered out");
    }
}
