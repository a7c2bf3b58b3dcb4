//! The open table's filter: the positions of the rows a [`Filter`] keeps, kept up to date as
//! rows come, change in place and go.
//!
//! # Bounded work
//!
//! A new filter scans at most the newest [`FILTER_SCAN`] rows; after that only the rows each
//! update adds (the newest [`FILTER_SCAN`] of them) or modifies. It keeps the newest
//! [`MAX_MATCHES`] matches.

use std::collections::VecDeque;
use std::ops::Range;

use crate::filter::Filter;
use crate::mirror::{Col, Mirror};
use crate::source::Delta;

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
}

impl FilterState {
    /// `filter` over the rows of `m`: the newest [`FILTER_SCAN`] scanned.
    pub(super) fn new(filter: Filter, m: &Mirror) -> Self {
        let mut f = Self {
            filter,
            matches: VecDeque::new(),
            scanned_from: 0,
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

    /// Forgets the matches and scans the newest [`FILTER_SCAN`] rows of `m` again (the rows
    /// were replaced, or the view caught up after a pause).
    pub(super) fn rescan(&mut self, m: &Mirror) {
        self.matches.clear();
        let rows = m.rows();
        let from = rows.start.max(rows.end.saturating_sub(FILTER_SCAN));
        self.scanned_from = from;
        self.scan(m, from..rows.end);
    }

    /// After `delta` was applied to `live`: drops the matches whose rows are gone, tests the
    /// rows modified in place again and scans the added rows.
    pub(super) fn on_update(&mut self, live: &Mirror, delta: &Delta) {
        let rows = live.rows();
        while self.matches.front().is_some_and(|&p| p < rows.start) {
            self.matches.pop_front();
        }
        // A keyed table shrinks at the end: its rows past the new end are gone.
        while self.matches.back().is_some_and(|&p| p >= rows.end) {
            self.matches.pop_back();
        }
        self.scanned_from = self.scanned_from.min(rows.end);
        self.refilter_modified(delta);
        let from = delta
            .added
            .start
            .max(delta.added.end.saturating_sub(FILTER_SCAN));
        if from < self.scanned_from && self.scanned_from <= delta.added.end {
            self.scanned_from = from;
        }
        self.scan(live, from..delta.added.end);
    }

    /// Scans `range` of `m`, appending matches (keeping the newest [`MAX_MATCHES`]).
    fn scan(&mut self, m: &Mirror, range: Range<u64>) {
        let filter = &self.filter;
        let matches = &mut self.matches;
        m.for_each_run(range, |p0, b, r0, n| {
            let sliced = b.slice(r0, n);
            filter.scan(&sliced, 0, n, |k| matches.push_back(p0 + k as u64));
        });
        while matches.len() > MAX_MATCHES {
            matches.pop_front();
        }
    }

    /// Updates the matches for the rows `delta` modified in place (a keyed table): a row
    /// whose filter column was written may now pass or fail. O(modified × log matches), plus one
    /// O(matches) merge when many rows changed sides.
    fn refilter_modified(&mut self, delta: &Delta) {
        /// Changes applied one by one (each an O(matches) shift at worst) up to this many.
        const ONE_BY_ONE: usize = 32;
        let m = &delta.modified;
        let Some(batch) = m.batch.as_ref() else {
            return;
        };
        let column = self.filter.column;
        if column >= batch.num_columns() {
            return;
        }
        let col = Col::new(batch.column(column));
        // (position, passes now), ascending.
        let mut changes: Vec<(u64, bool)> = Vec::new();
        for (k, &p) in m.positions.iter().enumerate() {
            if p < self.scanned_from || !m.is_written(k, column) {
                continue;
            }
            let passes = self.filter.test(&col, k);
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
    use crate::source::{Modified, Rows};

    fn schema() -> Schema {
        Schema::new(vec![Field::new("Bid", DataType::Float64, true)])
    }

    /// A filter `Bid > 50` holding `matches`, scanned from 0.
    fn filter(matches: impl IntoIterator<Item = u64>) -> FilterState {
        FilterState {
            filter: Filter::parse("Bid > 50", &schema()).unwrap(),
            matches: matches.into_iter().collect(),
            scanned_from: 0,
        }
    }

    /// A mirror holding `bids` from position `start`, in one batch.
    fn mirror(start: u64, bids: &[f64]) -> Mirror {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(Float64Array::from(bids.to_vec()))],
        )
        .unwrap();
        Mirror::from_rows(&Rows {
            step: 1,
            rows: start..start + bids.len() as u64,
            batches: vec![batch],
        })
    }

    fn modified(rows: &[(u64, f64)], masks: Vec<u8>) -> Delta {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.1),
            ))],
        )
        .unwrap();
        Delta {
            modified: Modified {
                positions: rows.iter().map(|r| r.0).collect(),
                batch: Some(batch),
                masks,
                width: 1,
            },
            ..Delta::default()
        }
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
        let delta = Delta {
            removed: 0..2,
            added: 4..6,
            ..Delta::default()
        };
        f.on_update(&live, &delta);
        assert_eq!(f.matches, [2, 3, 5]);
    }

    #[test]
    fn a_keyed_table_shrinking_drops_the_matches_past_its_end() {
        let mut f = filter([0, 2, 3]);
        let live = mirror(0, &[60.0, 10.0]);
        let delta = Delta {
            removed: 2..4,
            ..Delta::default()
        };
        f.on_update(&live, &delta);
        assert_eq!(f.matches, [0]);
        assert_eq!(f.scanned_from, 0);
    }

    #[test]
    fn a_rescan_starts_over_from_the_rows_held() {
        let mut f = filter([0, 1, 7]);
        f.rescan(&mirror(5, &[99.0, 1.0]));
        assert_eq!(f.matches, [5]);
        assert_eq!(f.scanned_from, 5);
    }
}
