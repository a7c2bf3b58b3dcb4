//! The chart: one numeric column's values by row position (of one key's rows, say a symbol's,
//! and of the rows the filter keeps), and the bounds to draw them in.
//!
//! # Bounded work
//!
//! A new chart looks back over at most [`CHART_SCAN`] rows for its newest [`CHART_POINTS`]
//! points; each update adds the points among its newest [`CHART_UPDATE_SCAN`] rows. Points
//! outlive their rows (a blink table's chart shows its history); at most 2 × [`CHART_POINTS`]
//! are kept and the newest [`CHART_POINTS`] drawn.

use std::ops::Range;

use tickertable::Mirror;

use crate::cells::{num_at, text_at};
use crate::filter::Filter;
use crate::source::Change;

/// Points a chart shows.
pub(crate) const CHART_POINTS: usize = 2_000;
/// Rows a new chart looks back over to find its points.
const CHART_SCAN: u64 = 1_000_000;
/// Rows of each update a chart looks at (the newest).
const CHART_UPDATE_SCAN: u64 = 200_000;
/// Rows a new chart scans at a time, newest first, until it has its points.
const SEED_STEP: u64 = 16_384;

/// A chart's points and the bounds to draw them in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plot {
    column: usize,
    /// The key column and the value the points are restricted to (a symbol), if any.
    key: Option<(usize, String)>,
    /// `(row position, value)`, by position.
    points: Vec<(f64, f64)>,
    x: [f64; 2],
    y: [f64; 2],
}

impl Plot {
    /// The column charted.
    pub(crate) fn column(&self) -> usize {
        self.column
    }

    /// The key value (a symbol) the points are restricted to, if any.
    pub(crate) fn key(&self) -> Option<&str> {
        self.key.as_ref().map(|(_, k)| k.as_str())
    }

    /// The points to draw: the newest [`CHART_POINTS`].
    pub(crate) fn points(&self) -> &[(f64, f64)] {
        &self.points[self.points.len().saturating_sub(CHART_POINTS)..]
    }

    /// The x axis bounds (row positions), as of the last [`Chart::fit`].
    pub(crate) fn x_bounds(&self) -> [f64; 2] {
        self.x
    }

    /// The y axis bounds (values, padded), as of the last [`Chart::fit`].
    pub(crate) fn y_bounds(&self) -> [f64; 2] {
        self.y
    }

    /// Appends the chart's points among `range` of `m` to `out`: the rows of its key that
    /// `filter` keeps (a mask per chunk the range spans).
    fn collect(
        &self,
        filter: Option<&Filter>,
        m: &Mirror,
        range: Range<u64>,
        out: &mut Vec<(f64, f64)>,
    ) {
        let c = self.column;
        for (p0, b, rows) in m.runs(range) {
            let mask = match filter.map(|f| f.mask(&b.slice(rows.start, rows.len()))) {
                Some(Ok(mask)) => Some(mask),
                // Rows the filter cannot evaluate are not kept (the filter says why).
                Some(Err(_)) => continue,
                None => None,
            };
            let key = self.key.as_ref().map(|(kc, k)| (b.column(*kc), k.as_str()));
            for (k, r) in rows.enumerate() {
                if mask.as_ref().is_some_and(|m| !m.value(k))
                    || key.is_some_and(|(col, k)| text_at(col.as_ref(), r) != Some(k))
                {
                    continue;
                }
                if let Some(v) = num_at(b.column(c).as_ref(), r) {
                    out.push(((p0 + k as u64) as f64, v));
                }
            }
        }
    }

    /// Fills the chart from the newest rows of `m`, at most [`CHART_SCAN`] back.
    fn seed(&mut self, filter: Option<&Filter>, m: &Mirror) {
        let rows = m.rows();
        let lo_limit = rows.start.max(rows.end.saturating_sub(CHART_SCAN));
        let mut hi = rows.end;
        let mut parts: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut found = 0;
        while hi > lo_limit && found < CHART_POINTS {
            let lo = lo_limit.max(hi.saturating_sub(SEED_STEP));
            let mut part = Vec::new();
            self.collect(filter, m, lo..hi, &mut part);
            found += part.len();
            parts.push(part);
            hi = lo;
        }
        self.points.clear();
        for part in parts.into_iter().rev() {
            self.points.extend(part);
        }
        let skip = self.points.len().saturating_sub(CHART_POINTS);
        self.points.drain(..skip);
    }

    /// Adds the points among the rows `change` added to `live`.
    fn extend(&mut self, filter: Option<&Filter>, live: &Mirror, change: &Change) {
        let from = change
            .added
            .start
            .max(change.added.end.saturating_sub(CHART_UPDATE_SCAN));
        let mut fresh = Vec::new();
        self.collect(filter, live, from..change.added.end, &mut fresh);
        self.points.extend(fresh);
        if self.points.len() > 2 * CHART_POINTS {
            let skip = self.points.len() - CHART_POINTS;
            self.points.drain(..skip);
        }
    }

    /// Sets the bounds around the points drawn, the values padded 5%.
    fn fit(&mut self) {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in self.points() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            (y0, y1) = (y0 - 0.5, y1 + 0.5);
        }
        let pad = (y1 - y0) * 0.05;
        self.x = [x0, x1];
        self.y = [y0 - pad, y1 + pad];
    }
}

/// The chart, while open, and why it did not follow the column cursor.
#[derive(Debug, Default)]
pub(crate) struct Chart {
    plot: Option<Plot>,
    /// Why the chart did not follow the column cursor (a column that is not numeric).
    note: Option<String>,
}

impl Chart {
    /// The chart's points, while it is open.
    pub(crate) fn plot(&self) -> Option<&Plot> {
        self.plot.as_ref()
    }

    /// Why the chart did not follow the column cursor, if it did not.
    pub(crate) fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Opens the chart of `column` over the rows of `m`: those whose column `key.0` holds
    /// `key.1`, if given, and that `filter` keeps.
    pub(super) fn open(
        &mut self,
        column: usize,
        key: Option<(usize, String)>,
        filter: Option<&Filter>,
        m: &Mirror,
    ) {
        let mut plot = Plot {
            column,
            key,
            ..Plot::default()
        };
        plot.seed(filter, m);
        self.plot = Some(plot);
        self.note = None;
    }

    /// Closes the chart.
    pub(super) fn close(&mut self) {
        self.plot = None;
    }

    /// Says why the chart did not follow the column cursor.
    pub(super) fn set_note(&mut self, note: String) {
        self.note = Some(note);
    }

    /// After `change` was applied to `live`: adds the points among the rows it added.
    pub(super) fn on_update(&mut self, filter: Option<&Filter>, live: &Mirror, change: &Change) {
        if let Some(plot) = &mut self.plot {
            plot.extend(filter, live, change);
        }
    }

    /// Sets the bounds around the points to draw.
    pub(super) fn fit(&mut self) {
        if let Some(plot) = &mut self.plot {
            plot.fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema, SchemaRef};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, false),
        ]))
    }

    /// A mirror holding `rows` from position `start`.
    fn mirror(start: u64, rows: &[(&str, f64)]) -> Mirror {
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        crate::testing::mirror_at(start, &batch)
    }

    /// The key `Sym == AAPL`.
    fn aapl() -> (usize, String) {
        (0, "AAPL".to_owned())
    }

    #[test]
    fn smoke() {
        let mut c = Chart::default();
        assert!(c.plot().is_none());
        c.set_note("Sym is Utf8".to_owned());
        let m = mirror(0, &[("AAPL", 1.0), ("MSFT", 2.0), ("AAPL", 3.0)]);
        c.open(1, Some(aapl()), None, &m);
        let plot = c.plot().unwrap();
        assert_eq!((plot.column(), plot.key()), (1, Some("AAPL")));
        assert_eq!(plot.points(), [(0.0, 1.0), (2.0, 3.0)]);
        assert_eq!(c.note(), None, "opening clears the note");
        c.close();
        assert!(c.plot().is_none());
    }

    #[test]
    fn the_filter_and_the_key_both_choose_the_points() {
        let mut c = Chart::default();
        let m = mirror(0, &[("AAPL", 1.0), ("MSFT", 60.0), ("AAPL", 70.0)]);
        let filter = Filter::parse("Price > 50", &schema()).unwrap();
        c.open(1, None, Some(&filter), &m);
        assert_eq!(c.plot().unwrap().points(), [(1.0, 60.0), (2.0, 70.0)]);
        c.open(1, Some(aapl()), Some(&filter), &m);
        assert_eq!(c.plot().unwrap().points(), [(2.0, 70.0)]);
    }

    #[test]
    fn updates_add_points_that_outlive_their_rows() {
        let mut c = Chart::default();
        c.open(1, Some(aapl()), None, &mirror(0, &[("AAPL", 1.0)]));
        // A blink table's next cycle: row 0 is gone.
        let live = mirror(1, &[("AAPL", 2.0), ("MSFT", 9.0)]);
        let change = Change::moving(0..1, 1..3);
        c.on_update(None, &live, &change);
        assert_eq!(c.plot().unwrap().points(), [(0.0, 1.0), (1.0, 2.0)]);
    }

    #[test]
    fn the_newest_points_are_drawn_and_twice_as_many_kept() {
        let mut c = Chart::default();
        let rows: Vec<(&str, f64)> = (0..CHART_POINTS + 10).map(|i| ("A", i as f64)).collect();
        c.open(1, None, None, &mirror(0, &rows));
        let plot = c.plot().unwrap();
        assert_eq!(plot.points().len(), CHART_POINTS);
        assert_eq!(plot.points()[..1], [(10.0, 10.0)], "the newest");
        let start = rows.len() as u64;
        let more: Vec<(&str, f64)> = (0..=CHART_POINTS).map(|_| ("A", 0.0)).collect();
        let change = Change::moving(0..0, start..start + more.len() as u64);
        c.on_update(None, &mirror(start, &more), &change);
        // 2 000 + 2 001 points: over twice the drawn ones, trimmed to the newest 2 000.
        let plot = c.plot().unwrap();
        assert_eq!(plot.points.len(), CHART_POINTS);
        assert_eq!(plot.points()[0].0 as u64, start + 1);
    }

    /// Whether `a` and `b` are the same bounds, to rounding.
    fn near(a: [f64; 2], b: [f64; 2]) -> bool {
        (a[0] - b[0]).abs() < 1e-9 && (a[1] - b[1]).abs() < 1e-9
    }

    #[test]
    fn bounds_fit_the_points_with_room_for_flat_and_empty_charts() {
        let mut c = Chart::default();
        c.open(1, None, None, &mirror(0, &[]));
        c.fit();
        let plot = c.plot().unwrap();
        assert!(near(plot.x_bounds(), [0.0, 1.0]));
        assert!(
            near(plot.y_bounds(), [-0.05, 1.05]),
            "{:?}",
            plot.y_bounds()
        );
        c.open(1, None, None, &mirror(4, &[("A", 10.0)]));
        c.fit();
        let plot = c.plot().unwrap();
        assert!(near(plot.x_bounds(), [4.0, 5.0]), "one point: a row wide");
        let y = plot.y_bounds();
        assert!(near(y, [9.45, 10.55]), "flat: a unit high, padded: {y:?}");
        c.open(1, None, None, &mirror(0, &[("A", 10.0), ("A", 30.0)]));
        c.fit();
        let y = c.plot().unwrap().y_bounds();
        assert!(near(y, [9.0, 31.0]), "{y:?}");
    }
}
