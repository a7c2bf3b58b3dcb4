//! The open table's filter: the positions of the rows a [`Filter`] keeps, kept up to date as
//! rows come, change in place and go. The filter evaluates whole batches (Arrow kernels over
//! a chunk's columns): the rows scanned, the rows an update adds, the rows it modifies.
//!
//! # Bounded work
//!
//! A new filter scans at most the newest [`FILTER_SCAN`] rows; after that only the rows each
//! update adds (the newest [`FILTER_SCAN`] of them) or modifies. It keeps the newest
//! [`MAX_MATCHES`] matches.

use std::collections::VecDeque;
use std::ops::Range;

use arrow_array::RecordBatch;
use tickertable::Mirror;

use crate::filter::Filter;
use crate::source::Change;

/// Rows a new filter scans, newest first.
pub(crate) const FILTER_SCAN: u64 = 1_000_000;
/// Matches a filter keeps, newest.
pub(crate) const MAX_MATCHES: usize = 100_000;

/// A filter and the positions it kept, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct FilterState {
    filter: Filter,
    matches: VecDeque<u64>,
    /// The first position scanned: matches cover `[scanned_from, end)`.
    scanned_from: u64,
    /// Why the filter could not be evaluated on some rows (they count as not kept).
    error: Option<String>,
}

impl FilterState {
    /// `filter` over the rows of `m`: the newest [`FILTER_SCAN`] scanned.
    pub(super) fn new(filter: Filter, m: &Mirror) -> Self {
        let mut f = Self {
            filter,
            matches: VecDeque::new(),
            scanned_from: 0,
            error: None,
        };
        f.rescan(m);
        f
    }

    /// The filter.
    pub(crate) fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The positions the filter kept, ascending.
    pub(crate) fn matches(&self) -> &VecDeque<u64> {
        &self.matches
    }

    /// Why the filter failed on some rows, if it did.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Forgets the matches and scans the newest [`FILTER_SCAN`] rows of `m` again (the rows
    /// were replaced, or the view caught up after a pause).
    pub(super) fn rescan(&mut self, m: &Mirror) {
        self.matches.clear();
        let rows = m.rows();
        let from = rows.start.max(rows.end.saturating_sub(FILTER_SCAN));
        self.scanned_from = from;
        self.scan(m, from..rows.end);
    }

    /// After `change` was applied to `live`: drops the matches whose rows are gone, tests the
    /// rows modified in place again and scans the added rows.
    pub(super) fn on_update(&mut self, live: &Mirror, change: &Change) {
        let rows = live.rows();
        while self.matches.front().is_some_and(|&p| p < rows.start) {
            self.matches.pop_front();
        }
        // A keyed table shrinks at the end: its rows past the new end are gone.
        while self.matches.back().is_some_and(|&p| p >= rows.end) {
            self.matches.pop_back();
        }
        self.scanned_from = self.scanned_from.min(rows.end);
        self.refilter_modified(change);
        let from = change
            .added
            .start
            .max(change.added.end.saturating_sub(FILTER_SCAN));
        if from < self.scanned_from && self.scanned_from <= change.added.end {
            self.scanned_from = from;
        }
        self.scan(live, from..change.added.end);
    }

    /// The filter's mask over `batch`; an error counts as no row kept, and is remembered.
    fn mask(&mut self, batch: &RecordBatch) -> Option<arrow_array::BooleanArray> {
        match self.filter.mask(batch) {
            Ok(mask) => Some(mask),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    /// Scans `range` of `m`, a mask per chunk it spans, appending matches (keeping the newest
    /// [`MAX_MATCHES`]).
    fn scan(&mut self, m: &Mirror, range: Range<u64>) {
        for (p0, b, rows) in m.runs(range) {
            let Some(mask) = self.mask(&b.slice(rows.start, rows.len())) else {
                continue;
            };
            self.matches
                .extend(mask.values().set_indices().map(|k| p0 + k as u64));
        }
        while self.matches.len() > MAX_MATCHES {
            self.matches.pop_front();
        }
    }

    /// Updates the matches for the rows `change` modified in place (a keyed table): a row
    /// one of whose filter columns was written may now pass or fail. One mask over the
    /// modified rows, O(modified × log matches), plus one O(matches) merge when many rows
    /// changed sides.
    fn refilter_modified(&mut self, change: &Change) {
        /// Changes applied one by one (each an O(matches) shift at worst) up to this many.
        const ONE_BY_ONE: usize = 32;
        let Some(batch) = change.modified_rows.as_ref() else {
            return;
        };
        let Some(mask) = self.mask(batch) else {
            return;
        };
        // (position, passes now), ascending.
        let mut changes: Vec<(u64, bool)> = Vec::new();
        for (k, &p) in change.modified.iter().enumerate() {
            let read = self.filter.columns();
            if p < self.scanned_from || !read.iter().any(|&c| change.is_written(k, c)) {
                continue;
            }
            let passes = mask.value(k);
            if passes != self.matches.binary_search(&p).is_ok() {
                changes.push((p, passes));
            }
        }
        if changes.len() <= ONE_BY_ONE {
            for (p, passes) in changes {
                match (self.matches.binary_search(&p), passes) {
                    (Err(at), true) => self.matches.insert(at, p),
                    (Ok(at), false) => {
                        self.matches.remove(at);
                    }
                    _ => {}
                }
            }
        } else {
            let old = std::mem::take(&mut self.matches);
            let mut changes = changes.into_iter().peekable();
            for p in old {
                while let Some(&(q, passes)) = changes.peek() {
                    if q >= p {
                        break;
                    }
                    if passes {
                        self.matches.push_back(q);
                    }
                    changes.next();
                }
                // A position that changes here stops matching; else it stays.
                if changes.peek().is_some_and(|&(q, _)| q == p) {
                    changes.next();
                } else {
                    self.matches.push_back(p);
                }
            }
            self.matches
                .extend(changes.filter(|&(_, passes)| passes).map(|(q, _)| q));
        }
        while self.matches.len() > MAX_MATCHES {
            self.matches.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::testing::mirror_at;

    fn schema() -> Schema {
        Schema::new(vec![Field::new("Bid", DataType::Float64, true)])
    }

    /// A filter `Bid > 50` holding `matches`, scanned from 0.
    fn filter(matches: impl IntoIterator<Item = u64>) -> FilterState {
        FilterState {
            filter: Filter::parse("Bid > 50", &schema()).unwrap(),
            matches: matches.into_iter().collect(),
            scanned_from: 0,
            error: None,
        }
    }

    /// A mirror holding `bids` from position `start`, in one batch.
    fn mirror(start: u64, bids: &[f64]) -> Mirror {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(Float64Array::from(bids.to_vec()))],
        )
        .unwrap();
        mirror_at(start, &batch)
    }

    fn modified(rows: &[(u64, f64)], masks: Vec<u8>) -> Change {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.1),
            ))],
        )
        .unwrap();
        Change::modifying(rows.iter().map(|r| r.0).collect(), batch, masks)
    }

    #[test]
    fn smoke() {
        let mut f = filter([1, 3]);
        f.refilter_modified(&modified(&[(1, 10.0), (2, 60.0)], vec![]));
        assert_eq!(f.matches, [2, 3]);
    }

    #[test]
    fn many_rows_changing_sides_merge_like_one_by_one() {
        // Even positions matched; every third position is rewritten to pass iff it is odd.
        let rows: Vec<(u64, f64)> = (0..300)
            .step_by(3)
            .map(|p| (p, if p % 2 == 1 { 99.0 } else { 1.0 }))
            .collect();
        let mut f = filter((0..300).step_by(2));
        f.refilter_modified(&modified(&rows, vec![]));
        let want: Vec<u64> = (0..300)
            .filter(|p| if p % 3 == 0 { p % 2 == 1 } else { p % 2 == 0 })
            .collect();
        assert_eq!(f.matches, want);
    }

    #[test]
    fn rows_whose_filter_column_was_not_written_keep_their_place() {
        let mut f = filter([1]);
        // Bit 0 clear: the bid was not written (a partial upsert of other columns).
        f.refilter_modified(&modified(&[(1, 10.0), (2, 60.0)], vec![0, 1]));
        assert_eq!(f.matches, [1, 2]);
    }

    #[test]
    fn a_new_filter_keeps_the_rows_that_pass() {
        let f = FilterState::new(
            Filter::parse("Bid > 50", &schema()).unwrap(),
            &mirror(3, &[60.0, 10.0, 70.0, 50.0]),
        );
        assert_eq!(f.matches, [3, 5]);
        assert_eq!(f.scanned_from, 3);
        assert_eq!(f.filter().to_string(), "Bid > 50");
    }

    #[test]
    fn an_update_drops_the_rows_gone_and_scans_the_rows_added() {
        let mut f = filter([0, 2, 3]);
        // Rows 0 and 1 evicted, 4 and 5 added.
        let live = mirror(2, &[60.0, 70.0, 10.0, 80.0]);
        let change = Change::moving(0..2, 4..6);
        f.on_update(&live, &change);
        assert_eq!(f.matches, [2, 3, 5]);
    }

    #[test]
    fn a_keyed_table_shrinking_drops_the_matches_past_its_end() {
        let mut f = filter([0, 2, 3]);
        let live = mirror(0, &[60.0, 10.0]);
        let change = Change::moving(2..4, 0..0);
        f.on_update(&live, &change);
        assert_eq!(f.matches, [0]);
        assert_eq!(f.scanned_from, 0);
    }

    #[test]
    fn a_scan_masks_each_chunk_and_an_expression_retests_rows_whose_columns_were_written() {
        use arrow_array::StringArray;

        // Sym, Bid and an unrelated Note; two chunks.
        let schema = Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Bid", DataType::Float64, true),
            Field::new("Note", DataType::Utf8, true),
        ]));
        let rows = |syms: &[&str], bids: &[f64]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(syms.iter().copied())),
                    Arc::new(Float64Array::from(bids.to_vec())),
                    Arc::new(StringArray::from(vec![Some("n"); syms.len()])),
                ],
            )
            .unwrap()
        };
        let mut m = mirror_at(0, &rows(&["A", "B", "A"], &[60.0, 70.0, 10.0]));
        let step = tickertable::Step::new(2);
        let more = crate::testing::meta(step, 0..0, vec![], 3..5);
        crate::testing::update(&mut m, more, Some(rows(&["A", "A"], &[99.0, 98.0])));
        assert_eq!(m.slice(m.rows()).len(), 2, "two chunks");
        let filter = Filter::parse(r#"Bid > 50 && Sym == "A""#, &schema).unwrap();
        let mut f = FilterState::new(filter, &m);
        assert_eq!(f.matches, [0, 3, 4]);
        // Row 0 rewritten to B (its Sym written), row 3 to a low bid with only Note written
        // (a partial upsert that leaves the filter's columns as they were), row 2 to a high bid.
        let batch = rows(&["B", "A", "A"], &[60.0, 99.0, 80.0]);
        let all = 0b111;
        let change = Change::modifying(vec![0, 2, 3], batch, vec![all, all, 0b100]);
        f.on_update(&m, &change);
        assert_eq!(f.matches, [2, 3, 4]);
        assert!(f.error().is_none());
    }

    #[test]
    fn a_rescan_starts_over_from_the_rows_held() {
        let mut f = filter([0, 1, 7]);
        f.rescan(&mirror(5, &[99.0, 1.0]));
        assert_eq!(f.matches, [5]);
        assert_eq!(f.scanned_from, 5);
    }
}
