//! Tick highlights: which cells of the rows on screen flash, how, and since when.
//!
//! # Highlights
//!
//! A new row's numeric cells flash green when the value rose and red when it fell, compared
//! with the previous row of the same key (the first string column, such as `Sym`; the previous
//! row when there is none). The previous row is looked for at most [`KEY_LOOKBACK`] rows back;
//! past that, the last values seen per key stand in (refreshed from the newest [`KEY_ROWS`]
//! rows of each update).
//!
//! A keyed table's rows change in place: a modified row's cells that were written and whose
//! value changed flash, compared with the row as it was before the update: green or red for
//! numbers, a neutral highlight for anything else (strings, times, a null that came or went).
//! A row that holds another key than before (the table's last row moved into a deleted key's
//! slot) did not tick: the whole row gets the neutral highlight, as does a new key's row.
//!
//! Flashes are kept only for rows on screen, per cell with the time they started, keyed by row
//! position, and fade over `theme::FADE`.

use std::collections::HashMap;
use std::time::Instant;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use tickertable::Mirror;

use crate::cells::{is_numeric, is_time, num_at, text_at};
use crate::source::Change;
use crate::theme::FADE;

/// How far back a highlight looks for the previous row of the same key.
const KEY_LOOKBACK: u64 = 256;
/// Rows of each update that refresh the last value per key.
const KEY_ROWS: u64 = 2_048;

/// How a cell changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// A number rose.
    Up,
    /// A number fell.
    Down,
    /// Anything else changed, or the row is another key's (neutral).
    Changed,
}

/// One row's flashes: per column, how the cell changed and when.
#[derive(Debug, Clone)]
pub(crate) struct Flash {
    /// The newest start among the cells (the row's flash is over `FADE` after it).
    at: Instant,
    cells: Vec<Option<(Tick, Instant)>>,
}

impl Flash {
    fn new(columns: usize, at: Instant) -> Self {
        Self {
            at,
            cells: vec![None; columns],
        }
    }

    /// How column `c` changed and when, if it flashes.
    pub(crate) fn tick(&self, c: usize) -> Option<(Tick, Instant)> {
        self.cells.get(c).copied().flatten()
    }

    fn set(&mut self, c: usize, tick: Tick, at: Instant) {
        if let Some(cell) = self.cells.get_mut(c) {
            *cell = Some((tick, at));
            self.at = self.at.max(at);
        }
    }

    /// Every cell of a row, neutral: a row that is another key's than before, or new.
    fn whole_row(columns: usize, at: Instant) -> Self {
        Self {
            at,
            cells: vec![Some((Tick::Changed, at)); columns],
        }
    }

    fn is_empty(&self) -> bool {
        self.cells.iter().all(Option::is_none)
    }
}

/// The flashes of the rows on screen, by row position, and what they compare with.
#[derive(Debug)]
pub(crate) struct Flashes {
    schema: SchemaRef,
    /// The first string column: new rows compare with the previous row of the same value.
    key_col: Option<usize>,
    /// A keyed table's key columns: a row whose key changed is another key's row.
    key_cols: Vec<usize>,
    /// Numeric columns: the cells a new row's flash compares.
    num_cols: Vec<usize>,
    keyed: bool,
    by_pos: HashMap<u64, Flash>,
    /// The last values of `num_cols` per key, for a new row whose previous one is too far back.
    last_by_key: HashMap<String, Vec<f64>>,
}

impl Flashes {
    /// No flashes yet, for a table of `schema` (`keyed` with `key_cols`, or not); `key_col`
    /// is the column new rows compare within.
    pub(super) fn new(
        schema: SchemaRef,
        key_col: Option<usize>,
        key_cols: Vec<usize>,
        keyed: bool,
    ) -> Self {
        let num_cols = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| is_numeric(f.data_type()))
            .map(|(i, _)| i)
            .collect();
        Self {
            schema,
            key_col,
            key_cols,
            num_cols,
            keyed,
            by_pos: HashMap::new(),
            last_by_key: HashMap::new(),
        }
    }

    /// The flash of the row at `pos`, if it has one.
    pub(crate) fn get(&self, pos: u64) -> Option<&Flash> {
        self.by_pos.get(&pos)
    }

    /// The positions of the rows that flash, in no order.
    #[cfg(test)]
    pub(crate) fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_pos.keys().copied()
    }

    /// Whether no row flashes.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_pos.is_empty()
    }

    /// Forgets every flash (the rows were replaced or the view caught up).
    pub(super) fn clear(&mut self) {
        self.by_pos.clear();
    }

    /// Drops faded flashes.
    pub(super) fn purge(&mut self, now: Instant) {
        self.by_pos.retain(|_, f| now.duration_since(f.at) < FADE);
    }

    /// After `change` was applied to `live`: flashes the modified and new rows among
    /// `on_screen` (positions) and remembers the newest values per key. The change holds the
    /// modified rows as they were before it.
    pub(super) fn on_update(
        &mut self,
        live: &Mirror,
        change: &Change,
        on_screen: impl Iterator<Item = u64> + Clone,
        at: Instant,
    ) {
        let end = live.rows().end;
        if end < change.removed.end {
            // Positions past the end may be taken by other rows later: forget their flashes.
            self.by_pos.retain(|&p, _| p < end);
        }
        self.flash_modified(change, on_screen.clone(), at);
        if !change.added.is_empty() {
            self.flash_new(live, change.added.start, on_screen, at);
        }
        if !self.keyed {
            self.remember_keys(live, change);
        }
    }

    /// Flashes the rows of `on_screen` at or after `first_new`: against the previous row of
    /// their key, or (a keyed table's new keys) the whole row, neutral.
    fn flash_new(
        &mut self,
        live: &Mirror,
        first_new: u64,
        on_screen: impl Iterator<Item = u64>,
        at: Instant,
    ) {
        let ncols = self.schema.fields().len();
        let mut prev_vals = Vec::with_capacity(self.num_cols.len());
        for p in on_screen {
            if p < first_new {
                continue;
            }
            if self.keyed {
                self.by_pos.insert(p, Flash::whole_row(ncols, at));
                continue;
            }
            let Some((b, r)) = live.locate(p) else {
                continue;
            };
            let key = self.key_col.and_then(|k| text_at(b.column(k).as_ref(), r));
            prev_vals.clear();
            if let Some((pb, pr)) = self.previous_row(live, p, key) {
                prev_vals.extend(
                    self.num_cols
                        .iter()
                        .map(|&c| num_at(pb.column(c).as_ref(), pr).unwrap_or(f64::NAN)),
                );
            } else if let Some(v) = self.last_by_key.get(key.unwrap_or("")) {
                prev_vals.extend_from_slice(v);
            } else {
                continue;
            }
            let mut flash = Flash::new(ncols, at);
            for (&c, &before) in self.num_cols.iter().zip(&prev_vals) {
                // The symbol column and the time always change; flash only the values.
                if matches!(self.schema.field(c).data_type(), DataType::Timestamp(..)) {
                    continue;
                }
                if let Some(now) = num_at(b.column(c).as_ref(), r) {
                    if now > before {
                        flash.set(c, Tick::Up, at);
                    } else if now < before {
                        flash.set(c, Tick::Down, at);
                    }
                }
            }
            if !flash.is_empty() {
                self.by_pos.insert(p, flash);
            }
        }
    }

    /// Flashes the cells of the modified rows of `on_screen` that were written and changed,
    /// compared with the rows as they were (`change.replaced`); a row that now holds another
    /// key flashes whole, neutral. O(rows on screen × (log modified + columns)).
    fn flash_modified(
        &mut self,
        change: &Change,
        on_screen: impl Iterator<Item = u64>,
        at: Instant,
    ) {
        let Some(batch) = change.modified_rows.as_ref() else {
            return;
        };
        let ncols = self.schema.fields().len();
        let written = ncols.min(batch.num_columns());
        for p in on_screen {
            let Ok(k) = change.modified.binary_search(&p) else {
                continue;
            };
            let Some((old, r)) = change.replaced.locate(p) else {
                continue;
            };
            let moved = self.key_cols.iter().any(|&c| {
                c < written && !same_cell(old.column(c).as_ref(), r, batch.column(c).as_ref(), k)
            });
            if moved {
                // Not a tick of this row's values: another key's row took the slot.
                self.by_pos.insert(p, Flash::whole_row(ncols, at));
                continue;
            }
            let mut flash = self
                .by_pos
                .remove(&p)
                .unwrap_or_else(|| Flash::new(ncols, at));
            for c in 0..written {
                if !change.is_written(k, c) {
                    continue;
                }
                let time = is_time(self.schema.field(c).data_type());
                let (before, after) = (old.column(c).as_ref(), batch.column(c).as_ref());
                if let Some(tick) = cell_tick(before, r, after, k, time) {
                    flash.set(c, tick, at);
                }
            }
            if !flash.is_empty() {
                self.by_pos.insert(p, flash);
            }
        }
    }

    /// The previous row with the same key, looking back at most [`KEY_LOOKBACK`] rows.
    fn previous_row<'m>(
        &self,
        rows: &'m Mirror,
        pos: u64,
        key: Option<&str>,
    ) -> Option<(&'m RecordBatch, usize)> {
        let lo = rows.rows().start.max(pos.saturating_sub(KEY_LOOKBACK));
        let mut q = pos;
        while q > lo {
            q -= 1;
            let (batch, r) = rows.locate(q)?;
            match (key, self.key_col) {
                (Some(k), Some(kc)) => {
                    if text_at(batch.column(kc).as_ref(), r) == Some(k) {
                        return Some((batch, r));
                    }
                }
                _ => return Some((batch, r)),
            }
        }
        None
    }

    /// Remembers the last values per key from the newest rows of `change`.
    fn remember_keys(&mut self, live: &Mirror, change: &Change) {
        let from = change
            .added
            .start
            .max(change.added.end.saturating_sub(KEY_ROWS));
        let (key_col, num_cols, map) = (self.key_col, &self.num_cols, &mut self.last_by_key);
        for (_, b, rows) in live.runs(from..change.added.end) {
            let keys = key_col.map(|k| b.column(k).clone());
            for r in rows {
                let key = keys
                    .as_ref()
                    .and_then(|k| text_at(k.as_ref(), r))
                    .unwrap_or("");
                if !map.contains_key(key) {
                    map.insert(key.to_owned(), vec![f64::NAN; num_cols.len()]);
                }
                let Some(vals) = map.get_mut(key) else {
                    continue;
                };
                for (slot, &c) in vals.iter_mut().zip(num_cols) {
                    *slot = num_at(b.column(c).as_ref(), r).unwrap_or(f64::NAN);
                }
            }
        }
    }
}

/// How cell `j` of `after` differs from cell `i` of `before`, if it does: a number rose or
/// fell, or (times, strings, anything else, a null that came or went) it changed.
fn cell_tick(
    before: &dyn Array,
    i: usize,
    after: &dyn Array,
    j: usize,
    time: bool,
) -> Option<Tick> {
    match (before.is_null(i), after.is_null(j)) {
        (true, true) => return None,
        (true, false) | (false, true) => return Some(Tick::Changed),
        (false, false) => {}
    }
    if !time {
        if let (Some(a), Some(b)) = (num_at(before, i), num_at(after, j)) {
            return match b.partial_cmp(&a) {
                Some(std::cmp::Ordering::Greater) => Some(Tick::Up),
                Some(std::cmp::Ordering::Less) => Some(Tick::Down),
                Some(std::cmp::Ordering::Equal) => None,
                // NaN on one side or both.
                None => (a.is_nan() != b.is_nan()).then_some(Tick::Changed),
            };
        }
    }
    (!same_cell(before, i, after, j)).then_some(Tick::Changed)
}

/// Whether cell `i` of `a` and cell `j` of `b` hold the same value (nulls equal).
fn same_cell(a: &dyn Array, i: usize, b: &dyn Array, j: usize) -> bool {
    if let (Some(x), Some(y)) = (text_at(a, i), text_at(b, j)) {
        return x == y;
    }
    // Any other type: compare the one-row slices (an allocation each; rows on screen only).
    a.slice(i, 1).to_data() == b.slice(j, 1).to_data()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, StringArray, TimestampNanosecondArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, true),
        ]))
    }

    /// A mirror holding `rows` from position `start`, in one batch.
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

    fn flashes() -> Flashes {
        Flashes::new(schema(), Some(0), vec![0], false)
    }

    /// Flashes the rows `added` of `live`, all of them on screen.
    fn add(f: &mut Flashes, live: &Mirror, added: std::ops::Range<u64>, at: Instant) {
        let change = Change::moving(0..0, added.clone());
        f.on_update(live, &change, live.rows(), at);
    }

    fn price(f: &Flashes, pos: u64) -> Option<Tick> {
        f.get(pos).and_then(|fl| fl.tick(1)).map(|t| t.0)
    }

    #[test]
    fn smoke() {
        let (mut f, at) = (flashes(), Instant::now());
        let live = mirror(0, &[("AAPL", 100.0), ("MSFT", 50.0), ("AAPL", 101.0)]);
        add(&mut f, &live, 2..3, at);
        assert_eq!(price(&f, 2), Some(Tick::Up));
        assert_eq!(f.get(2).unwrap().tick(0), None, "the key does not flash");
        assert_eq!(f.positions().collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_new_row_compares_with_the_previous_row_of_its_key() {
        let (mut f, at) = (flashes(), Instant::now());
        let live = mirror(
            0,
            &[
                ("AAPL", 100.0),
                ("MSFT", 50.0),
                ("MSFT", 49.0),
                ("AAPL", 100.0),
            ],
        );
        add(&mut f, &live, 1..4, at);
        assert!(f.get(1).is_none(), "no MSFT before it, none remembered");
        assert_eq!(price(&f, 2), Some(Tick::Down));
        assert!(f.get(3).is_none(), "AAPL unchanged");
    }

    #[test]
    fn rows_gone_from_the_mirror_compare_with_the_last_values_of_their_key() {
        let (mut f, at) = (flashes(), Instant::now());
        add(&mut f, &mirror(0, &[("AAPL", 100.0)]), 0..1, at);
        assert!(f.is_empty(), "nothing to compare the first row with");
        // A blink table's next cycle: the old rows are gone.
        add(&mut f, &mirror(1, &[("AAPL", 99.0)]), 1..2, at);
        assert_eq!(price(&f, 1), Some(Tick::Down));
    }

    #[test]
    fn rows_off_screen_do_not_flash() {
        let (mut f, at) = (flashes(), Instant::now());
        let live = mirror(0, &[("AAPL", 100.0), ("AAPL", 101.0), ("AAPL", 102.0)]);
        let change = Change::moving(0..0, 1..3);
        f.on_update(&live, &change, 0..2, at);
        assert_eq!(price(&f, 1), Some(Tick::Up));
        assert!(f.get(2).is_none());
    }

    #[test]
    fn a_keyed_tables_new_rows_flash_whole_and_neutral() {
        let mut f = Flashes::new(schema(), Some(0), vec![0], true);
        let live = mirror(0, &[("AAPL", 100.0), ("MSFT", 50.0)]);
        add(&mut f, &live, 0..2, Instant::now());
        for pos in 0..2 {
            let flash = f.get(pos).unwrap();
            assert_eq!(flash.tick(0).map(|t| t.0), Some(Tick::Changed));
            assert_eq!(flash.tick(1).map(|t| t.0), Some(Tick::Changed));
        }
    }

    #[test]
    fn flashes_fade_after_fade_and_clear_forgets_them() {
        let (mut f, at) = (flashes(), Instant::now());
        let live = mirror(0, &[("AAPL", 100.0), ("AAPL", 101.0)]);
        add(&mut f, &live, 1..2, at);
        f.purge(at + FADE / 2);
        assert!(!f.is_empty(), "still fading");
        f.purge(at + FADE);
        assert!(f.is_empty(), "faded");
        add(&mut f, &live, 1..2, at);
        f.clear();
        assert!(f.is_empty());
    }

    #[test]
    fn cell_ticks_by_direction_for_numbers_and_neutral_otherwise() {
        let nums = Float64Array::from(vec![Some(1.0), Some(2.0), None, Some(f64::NAN)]);
        let tick = |i, j| cell_tick(&nums, i, &nums, j, false);
        assert_eq!(tick(0, 1), Some(Tick::Up));
        assert_eq!(tick(1, 0), Some(Tick::Down));
        assert_eq!(tick(0, 0), None);
        assert_eq!(tick(0, 2), Some(Tick::Changed), "a null came");
        assert_eq!(tick(2, 2), None, "null to null");
        assert_eq!(tick(0, 3), Some(Tick::Changed), "a NaN came");
        assert_eq!(tick(3, 3), None, "NaN to NaN");
        let text = StringArray::from(vec!["X", "Y", "X"]);
        assert_eq!(cell_tick(&text, 0, &text, 1, false), Some(Tick::Changed));
        assert_eq!(cell_tick(&text, 0, &text, 2, false), None);
        // Times change neutrally, never up or down.
        let times = TimestampNanosecondArray::from(vec![1, 2]);
        assert_eq!(cell_tick(&times, 0, &times, 1, true), Some(Tick::Changed));
    }
}
