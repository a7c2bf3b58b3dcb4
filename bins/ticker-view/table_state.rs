//! The open table's state, [`TableState`]: a facade over its parts, each in its own file and
//! owning its own fields. [`TableState`] routes the App's actions and the table's updates to
//! them in the right order, and the widgets in `view/` read them.
//!
//! - [`cursor`]: the row and column under the cursor, the scroll, follow-tail.
//! - [`pause`]: the rows frozen while paused, and the updates pending.
//! - [`filter`]: the rows a filter keeps.
//! - [`sort`]: the rows in a column's order.
//! - [`rows`]: the row set those make, which the cursor indexes.
//! - [`search`]: the query, and the next row that holds it.
//! - [`chart`]: a column's points and the bounds to draw them in.
//! - [`flashes`]: tick highlights.
//! - [`format`](mod@format): what the next frame draws, formatted (`prepare`).
//!
//! # Rows and cursor
//!
//! The view shows a *row set*: every row of the table, or the rows a filter kept, or those
//! sorted. The cursor's `selected` and `top` index into it. After each update the cursor stays
//! on the same row (append, ring and keyed tables: by position, until the row is evicted or the
//! keyed table shrinks past it), on the same line (blink tables, whose rows are all new every
//! cycle, and sorted views), or on the last row (follow-tail, the default for append and ring
//! tables). Both are clamped whenever rows vanish, which blink tables do every cycle and keyed
//! tables do when keys are deleted.
//!
//! # Bounded work
//!
//! Nothing is O(table) per frame or per update. A filter scans at most the newest
//! [`FILTER_SCAN`] rows when it is set and then only the rows each update adds or modifies
//! (a mask over those batches),
//! and keeps the newest [`MAX_MATCHES`] matches. A sort orders the newest [`SORT_ROWS`] rows
//! of the row set. A search looks at most [`SEARCH_ROWS`] rows ahead. Highlights are computed
//! for the rows on screen only. A frame formats only the visible rows. Each part's module says
//! what it bounds and how.

mod chart;
mod cursor;
mod filter;
mod flashes;
mod format;
mod pause;
mod rows;
mod search;
mod sort;

use std::time::Instant;

use arrow_schema::SchemaRef;
use tickertable::{Mirror, TableKind};

use crate::cells::{is_numeric, is_text, text_at};
use crate::filter::Filter;
use crate::source::{Change, TableInfo};
use chart::Chart;
use cursor::{Anchor, Cursor};
pub(crate) use filter::{FilterState, FILTER_SCAN, MAX_MATCHES};
use flashes::Flashes;
pub(crate) use flashes::Tick;
use format::Formatted;
use pause::Pause;
use rows::RowSet;
use search::Search;
pub(crate) use search::SEARCH_ROWS;
use sort::Sorted;
pub(crate) use sort::{Sort, SORT_ROWS};

/// Whether a table kind follows its tail by default: append and ring tables, whose new rows
/// come at the end. A blink table shows its latest cycle; a keyed table's rows change in place.
fn follows_tail(kind: TableKind) -> bool {
    matches!(kind, TableKind::Append | TableKind::Ring { .. })
}

/// The open table's state: which table, and its parts.
#[derive(Debug)]
pub(crate) struct TableState {
    table: usize,
    name: String,
    kind: TableKind,
    schema: SchemaRef,
    /// The first string column: a chart keeps to the cursor row's value of it (a symbol).
    key_col: Option<usize>,
    /// A keyed table's key columns' names, `A, B`.
    key_names: Option<String>,
    cursor: Cursor,
    pause: Pause,
    filter: Option<FilterState>,
    sort: Option<Sorted>,
    flashes: Flashes,
    search: Search,
    chart: Chart,
    /// What the next frame draws.
    format: Formatted,
}

impl TableState {
    /// The state of table `table` (its list index), showing `mirror`, `height` rows high.
    pub(crate) fn new(
        table: usize,
        info: &TableInfo,
        mirror: &Mirror,
        height: usize,
        now: Instant,
    ) -> Self {
        let schema = info.schema.clone();
        let key_col = schema.fields().iter().position(|f| is_text(f.data_type()));
        let key_cols = if info.key.is_empty() {
            key_col.into_iter().collect()
        } else {
            info.key.clone()
        };
        let format = Formatted::new(&schema, now);
        let key_names = (info.is_keyed() && !key_cols.is_empty()).then(|| {
            let names: Vec<&str> = key_cols
                .iter()
                .filter_map(|&c| schema.fields().get(c).map(|f| f.name().as_str()))
                .collect();
            names.join(", ")
        });
        let flashes = Flashes::new(schema.clone(), key_col, key_cols, info.is_keyed());
        let mut v = Self {
            table,
            name: info.name.clone(),
            kind: info.kind,
            schema,
            key_col,
            key_names,
            cursor: Cursor::new(follows_tail(info.kind), height),
            pause: Pause::default(),
            filter: None,
            sort: None,
            flashes,
            search: Search::default(),
            chart: Chart::default(),
            format,
        };
        v.clamp(mirror);
        v
    }

    /// The table's index in the App's list.
    pub(crate) fn table(&self) -> usize {
        self.table
    }

    /// The table's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The table's kind.
    pub(crate) fn kind(&self) -> TableKind {
        self.kind
    }

    /// The table's columns.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows shown: the frozen ones while paused, else the live ones.
    pub(crate) fn data<'a>(&'a self, live: &'a Mirror) -> &'a Mirror {
        self.pause.data(live)
    }

    /// Whether the view is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.pause.is_paused()
    }

    /// Updates that arrived while paused.
    pub(crate) fn pending(&self) -> u64 {
        self.pause.pending()
    }

    /// The row set: the rows shown, in order.
    fn rows<'a>(&'a self, live: &'a Mirror) -> RowSet<'a> {
        RowSet::new(
            self.pause.data(live),
            self.filter.as_ref(),
            self.sort.as_ref(),
        )
    }

    /// How many rows the row set has.
    pub(crate) fn len(&self, live: &Mirror) -> usize {
        self.rows(live).len()
    }

    /// The position of row `i` of the row set.
    pub(crate) fn pos_at(&self, live: &Mirror, i: usize) -> Option<u64> {
        self.rows(live).pos_at(i)
    }

    /// The position under the cursor.
    pub(crate) fn selected_pos(&self, live: &Mirror) -> Option<u64> {
        self.pos_at(live, self.cursor.selected())
    }

    /// The cursor and the scroll.
    pub(crate) fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Keeps the cursor and the scroll inside the row set, the cursor on screen, and on the
    /// last row when following the tail.
    fn clamp(&mut self, live: &Mirror) {
        let len = self.len(live);
        self.cursor.clamp(len);
        // An empty row set does not mark the frame out of date: after `on_reset` to no rows,
        // the last frame's rows stay until something else changes.
        if len > 0 {
            self.format.touch();
        }
    }

    /// Sets the body height (on resize).
    pub(crate) fn set_height(&mut self, height: usize, live: &Mirror) {
        self.cursor.set_height(height);
        self.clamp(live);
    }

    /// Moves the cursor by `delta` rows; moving up leaves follow-tail.
    pub(crate) fn move_by(&mut self, delta: isize, live: &Mirror) {
        self.cursor.move_by(delta, self.len(live));
        self.clamp(live);
    }

    /// The first row; leaves follow-tail.
    pub(crate) fn go_top(&mut self, live: &Mirror) {
        self.cursor.go_top();
        self.clamp(live);
    }

    /// The last row, following the tail (unless sorted: a sorted view has no tail).
    pub(crate) fn go_bottom(&mut self, live: &Mirror) {
        self.cursor.go_bottom(self.len(live), self.sort.is_none());
        self.clamp(live);
    }

    /// Moves the column cursor; an open chart follows it.
    pub(crate) fn move_col(&mut self, delta: isize, live: &Mirror) {
        self.cursor.move_col(delta, self.schema.fields().len());
        self.format.touch();
        let col = self.cursor.col();
        if self.chart.plot().is_some_and(|c| c.column() != col) {
            if let Err(e) = self.open_chart(live) {
                // Not a numeric column: keep the old chart, say why on the next frame.
                self.chart.set_note(e);
            }
        }
    }

    /// Where the cursor is, before an update is applied to the live rows.
    pub(crate) fn anchor(&self, live: &Mirror) -> Anchor {
        self.cursor.anchor(&self.rows(live))
    }

    /// After `change` was applied to `live`: follow the tail or keep the cursor on its row,
    /// update the filter and sort, and flash the new and modified rows on screen (the change
    /// holds the modified rows as they were before it).
    pub(crate) fn on_update(
        &mut self,
        live: &Mirror,
        change: &Change,
        anchor: Anchor,
        at: Instant,
    ) {
        if self.pause.withhold() {
            return;
        }
        if let Some(f) = &mut self.filter {
            f.on_update(live, change);
        }
        self.resort(live);
        let filter = self.filter.as_ref().map(FilterState::filter);
        self.chart.on_update(filter, live, change);
        self.place_cursor(live, anchor);
        // The row set borrows the parts that make it; the flashes change meanwhile.
        let rows = RowSet::new(
            self.pause.data(live),
            self.filter.as_ref(),
            self.sort.as_ref(),
        );
        let on_screen = rows.positions(self.cursor.on_screen(rows.len()));
        self.flashes.on_update(live, change, on_screen, at);
        self.format.touch();
    }

    /// A keyed table's key columns' names, `A, B`; `None` for other kinds.
    pub(crate) fn key_names(&self) -> Option<&str> {
        self.key_names.as_deref()
    }

    /// The table was reset (a lag, or a new snapshot): rebuild the filter and sort.
    pub(crate) fn on_reset(&mut self, live: &Mirror) {
        if self.pause.withhold() {
            return;
        }
        self.flashes.clear();
        self.refilter(live);
        self.resort(live);
        self.clamp(live);
    }

    /// After an update: the cursor stays on its row, unless it follows the tail or the view
    /// is sorted or shows a blink table's latest cycle (it stays on its line then).
    fn place_cursor(&mut self, live: &Mirror, anchor: Anchor) {
        let stays =
            !self.cursor.follows() && self.sort.is_none() && !matches!(self.kind, TableKind::Blink);
        if stays {
            let rows = RowSet::new(
                self.pause.data(live),
                self.filter.as_ref(),
                self.sort.as_ref(),
            );
            self.cursor.keep_on(anchor, &rows);
        }
        self.clamp(live);
    }

    /// Pauses or resumes. Resuming catches up with the live rows and follows the tail again
    /// (append and ring tables).
    pub(crate) fn toggle_pause(&mut self, live: &Mirror) {
        if self.pause.is_paused() {
            self.pause.resume();
            self.cursor
                .set_follow(follows_tail(self.kind) && self.sort.is_none());
            self.flashes.clear();
            self.refilter(live);
            self.resort(live);
        } else {
            self.pause.freeze(live);
        }
        self.clamp(live);
    }

    /// Sets or clears the filter.
    pub(crate) fn set_filter(&mut self, filter: Option<Filter>, live: &Mirror) {
        let m = self.pause.data(live);
        self.filter = filter.map(|filter| FilterState::new(filter, m));
        self.resort(live);
        self.cursor
            .restart(follows_tail(self.kind) && self.sort.is_none());
        self.clamp(live);
    }

    /// Scans the filter again over the rows shown.
    fn refilter(&mut self, live: &Mirror) {
        let m = self.pause.data(live);
        if let Some(f) = &mut self.filter {
            f.rescan(m);
        }
    }

    /// The filter, if one is set.
    pub(crate) fn filter(&self) -> Option<&FilterState> {
        self.filter.as_ref()
    }

    /// Cycles the sort on the current column: ascending, descending, off.
    pub(crate) fn cycle_sort(&mut self, live: &Mirror) {
        let next = Sort::next(self.sort(), self.cursor.col());
        let m = self.pause.data(live);
        self.sort = next.map(|by| Sorted::new(by, m, self.filter.as_ref()));
        self.cursor
            .restart(self.sort.is_none() && follows_tail(self.kind));
        self.clamp(live);
    }

    /// The sort, if one is set.
    pub(crate) fn sort(&self) -> Option<Sort> {
        self.sort.as_ref().map(Sorted::by)
    }

    /// Sorts the newest [`SORT_ROWS`] rows of the row set again.
    fn resort(&mut self, live: &Mirror) {
        let m = self.pause.data(live);
        if let Some(s) = &mut self.sort {
            s.resort(m, self.filter.as_ref());
        }
    }

    /// Searches for the query (case-insensitive, in any cell's text) from the row after (or
    /// before) the cursor, at most [`SEARCH_ROWS`] rows. Moves the cursor to the match and
    /// returns its position.
    ///
    /// # Errors
    ///
    /// A message for the status line when there is no query or nothing matched.
    pub(crate) fn find(&mut self, live: &Mirror, forward: bool) -> Result<u64, String> {
        let (i, pos) = self
            .search
            .find(&self.rows(live), self.cursor.selected(), forward)?;
        self.cursor.go_to(i);
        self.clamp(live);
        Ok(pos)
    }

    /// Sets the query [`TableState::find`] looks for.
    pub(crate) fn set_search(&mut self, query: String) {
        self.search.set(query);
    }

    /// The query searched for, once one was typed.
    pub(crate) fn search(&self) -> Option<&str> {
        self.search.query()
    }

    /// Opens the chart of the current column, restricted to the cursor row's key (say, its
    /// symbol) unless a filter already pins one.
    ///
    /// # Errors
    ///
    /// If the column is not numeric.
    pub(crate) fn open_chart(&mut self, live: &Mirror) -> Result<(), String> {
        let field = self.schema.field(self.cursor.col());
        if !is_numeric(field.data_type()) {
            return Err(format!(
                "{} is {}: pick a numeric column to chart (←/→)",
                field.name(),
                field.data_type()
            ));
        }
        let pinned = self.filter.as_ref().is_some_and(|f| {
            f.filter()
                .pinned()
                .is_some_and(|(column, _)| Some(column) == self.key_col)
        });
        let key = if pinned {
            None
        } else {
            self.key_col.and_then(|k| {
                let (b, r) = self
                    .selected_pos(live)
                    .and_then(|p| self.data(live).locate(p))?;
                text_at(b.column(k).as_ref(), r).map(|s| (k, s.to_owned()))
            })
        };
        let filter = self.filter.as_ref().map(FilterState::filter);
        self.chart
            .open(self.cursor.col(), key, filter, self.pause.data(live));
        self.format.touch();
        Ok(())
    }

    /// Closes the chart.
    pub(crate) fn close_chart(&mut self) {
        self.chart.close();
        self.format.touch();
    }

    /// The chart.
    pub(crate) fn chart(&self) -> &Chart {
        &self.chart
    }

    /// Drops faded flashes.
    pub(crate) fn purge_flashes(&mut self, now: Instant) {
        self.flashes.purge(now);
    }

    /// The flashes of the rows on screen.
    pub(crate) fn flashes(&self) -> &Flashes {
        &self.flashes
    }

    /// Whether a flash is still fading (the screen must be redrawn as it does).
    pub(crate) fn is_animating(&self) -> bool {
        !self.flashes.is_empty()
    }

    /// Whether the next frame must be prepared again.
    pub(crate) fn is_stale(&self) -> bool {
        self.format.is_stale()
    }

    /// Marks the prepared frame out of date.
    pub(crate) fn touch(&mut self) {
        self.format.touch();
    }

    /// What the next frame draws, as [`TableState::prepare`] left it.
    pub(crate) fn formatted(&self) -> &Formatted {
        &self.format
    }

    /// Formats what the next frame shows: the visible rows, column widths, the chart's points
    /// and the detail of the cursor row. O(visible rows), plus O(chart scan) with a chart.
    pub(crate) fn prepare(&mut self, live: &Mirror, now: Instant, detail: bool) {
        self.flashes.purge(now);
        if !self.format.begin(now) {
            return;
        }
        // The row set borrows the parts that make it; the formatted rows change meanwhile.
        let rows = RowSet::new(
            self.pause.data(live),
            self.filter.as_ref(),
            self.sort.as_ref(),
        );
        let shown = self.cursor.on_screen(rows.len()).map(|i| rows.pos_at(i));
        let detail = if detail {
            rows.pos_at(self.cursor.selected())
        } else {
            None
        };
        self.format.format(&self.schema, rows.data(), shown, detail);
        self.chart.fit();
    }
}
