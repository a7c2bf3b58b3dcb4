//! What the next frame draws, formatted ahead of drawing: the visible rows' cells, the
//! column widths, the detail of the cursor row, and the time the frame is drawn at.
//!
//! # Bounded work
//!
//! A frame formats only the visible rows (one `ArrayFormatter` per batch they are in), and
//! only when something changed ([`Formatted::touch`]). Columns are as wide as their widest
//! cell so far, up to [`MAX_WIDTH`]: they grow, never shrink, while the table is open.
//! Floating-point cells are padded to the most decimals seen in their column so the decimal
//! points line up.

use std::fmt::Write as _;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_cast::display::ArrayFormatter;
use arrow_schema::{DataType, SchemaRef};
use tickertable::Mirror;

use crate::cells::{format_cell, FORMAT};

/// The widest a column grows.
const MAX_WIDTH: u16 = 40;

/// A visible row, formatted.
#[derive(Debug, Clone, Default)]
pub(crate) struct VisibleRow {
    pub(crate) pos: u64,
    /// Whether the row is held (else its cells are empty).
    pub(crate) present: bool,
    pub(crate) cells: Vec<String>,
}

/// The next frame's rows, formatted.
#[derive(Debug)]
pub(crate) struct Formatted {
    rows: Vec<VisibleRow>,
    widths: Vec<u16>,
    /// The most decimals seen per column (floats line up on the decimal point).
    decimals: Vec<usize>,
    /// Every cell of the cursor row, when the detail popup shows it.
    detail: Vec<String>,
    /// The time the frame is drawn at (fades are computed from it).
    now: Instant,
    /// Whether the rows must be formatted again.
    stale: bool,
}

impl Formatted {
    /// Nothing formatted yet for a table of `schema`: columns as wide as their names.
    pub(super) fn new(schema: &SchemaRef, now: Instant) -> Self {
        let widths = schema
            .fields()
            .iter()
            .map(|f| u16::try_from(f.name().chars().count()).unwrap_or(MAX_WIDTH))
            .collect();
        Self {
            rows: Vec::new(),
            widths,
            decimals: vec![0; schema.fields().len()],
            detail: Vec::new(),
            now,
            stale: true,
        }
    }

    /// The visible rows, top first.
    pub(crate) fn rows(&self) -> &[VisibleRow] {
        &self.rows
    }

    /// Each column's width.
    pub(crate) fn widths(&self) -> &[u16] {
        &self.widths
    }

    /// The cursor row's cells, formatted for the detail popup; empty when it is not shown or
    /// there is no row under the cursor.
    pub(crate) fn detail(&self) -> &[String] {
        &self.detail
    }

    /// The time the frame is drawn at.
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Whether the rows must be formatted again.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale
    }

    /// Marks the rows out of date.
    pub(super) fn touch(&mut self) {
        self.stale = true;
    }

    /// Starts a frame drawn at `now`: whether the rows must be formatted again (they are up
    /// to date after [`Formatted::format`]).
    pub(super) fn begin(&mut self, now: Instant) -> bool {
        self.now = now;
        std::mem::take(&mut self.stale)
    }

    /// Formats the rows of `m` at `positions` (a position that is `None` or not held gives an
    /// empty row), and every cell of the row at `detail` if given. O(rows × columns).
    pub(super) fn format(
        &mut self,
        schema: &SchemaRef,
        m: &Mirror,
        positions: impl ExactSizeIterator<Item = Option<u64>>,
        detail: Option<u64>,
    ) {
        let ncols = schema.fields().len();
        self.rows.resize_with(positions.len(), VisibleRow::default);
        let mut last: Option<(*const RecordBatch, Vec<ArrayFormatter<'_>>)> = None;
        for (row, pos) in self.rows.iter_mut().zip(positions) {
            row.cells.resize_with(ncols, String::new);
            row.pos = pos.unwrap_or_default();
            let found = pos.and_then(|p| m.locate(p));
            row.present = found.is_some();
            let Some((b, r)) = found else {
                row.cells.iter_mut().for_each(String::clear);
                continue;
            };
            let same = last.as_ref().is_some_and(|(ptr, _)| std::ptr::eq(*ptr, b));
            if !same {
                let fmts = b
                    .columns()
                    .iter()
                    .filter_map(|a| ArrayFormatter::try_new(a.as_ref(), &FORMAT).ok())
                    .collect();
                last = Some((b, fmts));
            }
            if let Some((_, fmts)) = &last {
                for (cell, f) in row.cells.iter_mut().zip(fmts) {
                    cell.clear();
                    let _ = write!(cell, "{}", f.value(r));
                }
            }
            for (w, cell) in self.widths.iter_mut().zip(&row.cells) {
                let cw = u16::try_from(cell.chars().count()).unwrap_or(MAX_WIDTH);
                *w = (*w).max(cw.min(MAX_WIDTH));
            }
        }
        drop(last);
        align_decimals(schema, &mut self.rows, &mut self.widths, &mut self.decimals);
        self.detail.clear();
        if let Some((b, r)) = detail.and_then(|p| m.locate(p)) {
            for c in 0..ncols {
                let mut s = String::new();
                format_cell(b.column(c).as_ref(), r, &mut s);
                self.detail.push(s);
            }
        }
    }
}

/// Pads floating-point cells with zeros to the most decimals shown in their column, so the
/// decimal points line up.
fn align_decimals(
    schema: &SchemaRef,
    rows: &mut [VisibleRow],
    widths: &mut [u16],
    seen: &mut [usize],
) {
    for (c, f) in schema.fields().iter().enumerate() {
        if !matches!(f.data_type(), DataType::Float64 | DataType::Float32) {
            continue;
        }
        let decimals = |s: &str| s.find('.').map_or(0, |d| s.len() - d - 1);
        let plain = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        };
        let most = rows
            .iter()
            .filter_map(|r| r.cells.get(c))
            .filter(|s| plain(s))
            .map(|s| decimals(s))
            .max()
            .unwrap_or(0)
            .min(6)
            .max(seen.get(c).copied().unwrap_or(0));
        if let Some(s) = seen.get_mut(c) {
            *s = most;
        }
        if most == 0 {
            continue;
        }
        for r in rows.iter_mut() {
            let Some(cell) = r.cells.get_mut(c) else {
                continue;
            };
            if cell.is_empty() || !plain(cell) {
                continue;
            }
            let d = decimals(cell);
            if d == 0 && !cell.contains('.') {
                cell.push('.');
            }
            for _ in d..most {
                cell.push('0');
            }
            if let Some(w) = widths.get_mut(c) {
                *w = (*w).max(
                    u16::try_from(cell.len())
                        .unwrap_or(MAX_WIDTH)
                        .min(MAX_WIDTH),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, true),
            Field::new("Px", DataType::Float64, true),
        ]))
    }

    /// A mirror holding `rows` from position 10.
    fn mirror(rows: &[(Option<&str>, Option<f64>)]) -> Mirror {
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<Float64Array>()),
            ],
        )
        .unwrap();
        crate::testing::mirror_at(10, &batch)
    }

    fn cells(f: &Formatted) -> Vec<Vec<&str>> {
        f.rows()
            .iter()
            .map(|r| r.cells.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn smoke() {
        let mut f = Formatted::new(&schema(), Instant::now());
        assert_eq!(f.widths(), [3, 2], "the names' widths");
        let m = mirror(&[(Some("AAPL"), Some(1.5)), (Some("MSFT"), Some(20.0))]);
        f.format(&schema(), &m, [Some(10), Some(11)].into_iter(), None);
        assert_eq!(cells(&f), [["AAPL", "1.5"], ["MSFT", "20.0"]]);
        assert_eq!(f.widths(), [4, 4]);
        assert_eq!(f.rows()[1].pos, 11);
        assert!(f.detail().is_empty());
    }

    #[test]
    fn rows_not_held_are_empty() {
        let mut f = Formatted::new(&schema(), Instant::now());
        let m = mirror(&[(Some("AAPL"), Some(1.0))]);
        f.format(&schema(), &m, [Some(10)].into_iter(), None);
        f.format(&schema(), &m, [Some(3), None].into_iter(), None);
        assert_eq!(f.rows().len(), 2);
        assert!(f.rows().iter().all(|r| !r.present));
        assert_eq!(cells(&f), [["", ""], ["", ""]]);
    }

    #[test]
    fn floats_line_up_on_the_decimal_point_and_columns_never_shrink() {
        let mut f = Formatted::new(&schema(), Instant::now());
        let m = mirror(&[
            (Some("A"), Some(1.25)),
            (Some("B"), Some(3.0)),
            (None, None),
            (Some(&"x".repeat(50)), Some(7.5)),
        ]);
        f.format(
            &schema(),
            &m,
            [Some(10), Some(11), Some(12)].into_iter(),
            None,
        );
        assert_eq!(cells(&f), [["A", "1.25"], ["B", "3.00"], ["·", "·"]]);
        // The decimals seen stay: 7.5 is shown as 7.50.
        f.format(&schema(), &m, [Some(13)].into_iter(), None);
        assert_eq!(f.rows()[0].cells[1], "7.50");
        assert_eq!(f.widths(), [MAX_WIDTH, 4], "as wide as allowed");
        f.format(&schema(), &m, [Some(11)].into_iter(), None);
        assert_eq!(f.widths(), [MAX_WIDTH, 4], "never narrower");
    }

    #[test]
    fn the_detail_holds_every_cell_of_its_row() {
        let mut f = Formatted::new(&schema(), Instant::now());
        let m = mirror(&[(Some("AAPL"), Some(1.5)), (Some("MSFT"), None)]);
        f.format(&schema(), &m, [Some(10)].into_iter(), Some(11));
        assert_eq!(f.detail(), ["MSFT", "·"]);
        f.format(&schema(), &m, [Some(10)].into_iter(), Some(99));
        assert!(f.detail().is_empty(), "no such row");
    }

    #[test]
    fn a_frame_formats_again_only_once_touched() {
        let t0 = Instant::now();
        let mut f = Formatted::new(&schema(), t0);
        assert!(f.is_stale());
        let t1 = t0 + std::time::Duration::from_millis(40);
        assert!(f.begin(t1), "new: formatted first");
        assert_eq!(f.now(), t1);
        assert!(!f.is_stale());
        assert!(!f.begin(t1));
        f.touch();
        assert!(f.begin(t1));
    }
}
