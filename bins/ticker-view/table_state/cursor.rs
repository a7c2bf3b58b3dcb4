//! The cursor: the row and column under it, the first row on screen, how many rows fit, and
//! whether it follows the tail.
//!
//! `selected` and `top` are indices into the row set ([`RowSet`]), which changes under them:
//! [`Cursor::clamp`] keeps them inside it and the cursor on screen, and an [`Anchor`] taken
//! before an update keeps the cursor on the same row after it.

use std::ops::Range;

use super::rows::RowSet;

/// Where the cursor was before an update, by row position, to keep it on the same row after.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Anchor {
    selected: Option<u64>,
    top: Option<u64>,
}

/// The cursor and the scroll.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// Following the tail: the cursor stays on the last row.
    follow: bool,
    selected: usize,
    /// The first row on screen.
    top: usize,
    /// The column under the cursor.
    col: usize,
    /// Body rows on screen, at least 1.
    height: usize,
}

impl Cursor {
    /// A cursor on the first row and column, `height` rows on screen, following the tail or
    /// not.
    pub(super) fn new(follow: bool, height: usize) -> Self {
        Self {
            follow,
            selected: 0,
            top: 0,
            col: 0,
            height: height.max(1),
        }
    }

    /// Whether the cursor follows the tail.
    pub(crate) fn follows(&self) -> bool {
        self.follow
    }

    /// The row under the cursor: its index in the row set.
    pub(crate) fn selected(&self) -> usize {
        self.selected
    }

    /// The first row on screen: its index in the row set.
    pub(crate) fn top(&self) -> usize {
        self.top
    }

    /// The column under the cursor.
    pub(crate) fn col(&self) -> usize {
        self.col
    }

    /// Body rows on screen.
    #[cfg(test)]
    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// The rows on screen, of a row set of `len` rows.
    pub(crate) fn on_screen(&self, len: usize) -> Range<usize> {
        self.top..self.top + self.height.min(len.saturating_sub(self.top))
    }

    /// Keeps the cursor and the scroll inside a row set of `len` rows, the cursor on screen,
    /// and on the last row when following the tail.
    pub(super) fn clamp(&mut self, len: usize) {
        let h = self.height.max(1);
        if len == 0 {
            self.selected = 0;
            self.top = 0;
            return;
        }
        if self.follow {
            self.selected = len - 1;
        }
        self.selected = self.selected.min(len - 1);
        if self.selected < self.top {
            self.top = self.selected;
        }
        if self.selected >= self.top + h {
            self.top = self.selected + 1 - h;
        }
        self.top = self.top.min(len.saturating_sub(h));
    }

    /// Sets the body height (on resize). Clamp after.
    pub(super) fn set_height(&mut self, height: usize) {
        self.height = height.max(1);
    }

    /// Moves the cursor by `delta` rows in a row set of `len`; moving up leaves follow-tail.
    /// Clamp after.
    pub(super) fn move_by(&mut self, delta: isize, len: usize) {
        if delta < 0 {
            self.follow = false;
        }
        self.selected = self
            .selected
            .saturating_add_signed(delta)
            .min(len.saturating_sub(1));
    }

    /// To the first row, leaving follow-tail. Clamp after.
    pub(super) fn go_top(&mut self) {
        self.follow = false;
        self.selected = 0;
    }

    /// To the last row of a row set of `len`, following the tail or not. Clamp after.
    pub(super) fn go_bottom(&mut self, len: usize, follow: bool) {
        self.follow = follow;
        self.selected = len.saturating_sub(1);
    }

    /// To row `i`, leaving follow-tail (a search found it there). Clamp after.
    pub(super) fn go_to(&mut self, i: usize) {
        self.selected = i;
        self.follow = false;
    }

    /// Back to the first row of a new row set (filtered or sorted anew). Clamp after.
    pub(super) fn restart(&mut self, follow: bool) {
        self.selected = 0;
        self.top = 0;
        self.follow = follow;
    }

    /// Follows the tail, or stops. Clamp after.
    pub(super) fn set_follow(&mut self, follow: bool) {
        self.follow = follow;
    }

    /// Moves the column cursor by `delta` among `columns`.
    pub(super) fn move_col(&mut self, delta: isize, columns: usize) {
        self.col = self
            .col
            .saturating_add_signed(delta)
            .min(columns.saturating_sub(1));
    }

    /// Where the cursor is in `rows`, by position.
    pub(super) fn anchor(&self, rows: &RowSet<'_>) -> Anchor {
        Anchor {
            selected: rows.pos_at(self.selected),
            top: rows.pos_at(self.top),
        }
    }

    /// Puts the cursor back on the row `anchor` was taken on (or the first one after it, if it
    /// is gone), and the scroll with it, in `rows` as they are now. Clamp after.
    pub(super) fn keep_on(&mut self, anchor: Anchor, rows: &RowSet<'_>) {
        if let Some(p) = anchor.selected {
            let index_of = |p| rows.index_of(p).unwrap_or(self.selected);
            let selected = index_of(p);
            let top = anchor.top.map_or(0, index_of);
            self.selected = selected;
            self.top = top;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use tickertable::Mirror;

    use super::*;

    /// A mirror of the positions `rows`.
    fn mirror(rows: Range<u64>) -> Mirror {
        let schema = Arc::new(Schema::new(vec![Field::new("N", DataType::Int64, false)]));
        let values = Int64Array::from_iter_values(rows.clone().map(|p| p as i64));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        crate::testing::mirror_at(rows.start, &batch)
    }

    fn at(c: &Cursor) -> (usize, usize) {
        (c.selected(), c.top())
    }

    #[test]
    fn smoke() {
        let mut c = Cursor::new(true, 3);
        c.clamp(10);
        assert_eq!(at(&c), (9, 7), "following: the last row, at the bottom");
        assert_eq!(c.on_screen(10), 7..10);
        c.clamp(0);
        assert_eq!(at(&c), (0, 0));
        assert_eq!(c.on_screen(0), 0..0);
    }

    #[test]
    fn moving_up_leaves_follow_tail_and_scrolls_to_keep_the_cursor_on_screen() {
        let mut c = Cursor::new(true, 3);
        c.clamp(10);
        c.move_by(-5, 10);
        c.clamp(10);
        assert!(!c.follows());
        assert_eq!(at(&c), (4, 4));
        c.move_by(100, 10);
        c.clamp(10);
        assert_eq!(at(&c), (9, 7), "stops at the last row");
        assert!(!c.follows(), "moving down does not follow");
    }

    #[test]
    fn the_cursor_and_scroll_clamp_when_rows_vanish() {
        let mut c = Cursor::new(false, 4);
        c.move_by(8, 10);
        c.clamp(10);
        assert_eq!(at(&c), (8, 5));
        c.clamp(3);
        assert_eq!(at(&c), (2, 0));
    }

    #[test]
    fn top_bottom_and_go_to_set_follow_as_asked() {
        let mut c = Cursor::new(true, 2);
        c.go_top();
        c.clamp(5);
        assert_eq!((at(&c), c.follows()), ((0, 0), false));
        c.go_bottom(5, false);
        c.clamp(5);
        assert_eq!((at(&c), c.follows()), ((4, 3), false), "a sorted view");
        c.go_bottom(5, true);
        c.go_to(1);
        c.clamp(5);
        assert_eq!((at(&c), c.follows()), ((1, 1), false));
        c.restart(true);
        c.clamp(5);
        assert_eq!((at(&c), c.follows()), ((4, 3), true));
    }

    #[test]
    fn a_smaller_height_scrolls_the_cursor_back_on_screen() {
        let mut c = Cursor::new(false, 10);
        c.move_by(8, 10);
        c.clamp(10);
        assert_eq!(at(&c), (8, 0));
        c.set_height(3);
        c.clamp(10);
        assert_eq!((at(&c), c.height()), ((8, 6), 3));
        c.set_height(0);
        assert_eq!(c.height(), 1, "at least one row");
    }

    #[test]
    fn the_column_cursor_stays_among_the_columns() {
        let mut c = Cursor::new(false, 1);
        c.move_col(-1, 4);
        assert_eq!(c.col(), 0);
        c.move_col(10, 4);
        assert_eq!(c.col(), 3);
    }

    #[test]
    fn an_anchor_keeps_the_cursor_on_its_row_as_older_rows_go() {
        let mut c = Cursor::new(false, 3);
        let before = mirror(0..10);
        c.move_by(6, 10);
        c.clamp(10);
        assert_eq!(at(&c), (6, 4));
        let anchor = c.anchor(&RowSet::new(&before, None, None));
        // Rows 0..5 evicted, 10..12 added.
        let after = mirror(5..12);
        c.keep_on(anchor, &RowSet::new(&after, None, None));
        c.clamp(after.len());
        assert_eq!(at(&c), (1, 0), "still on row 6");
        // Evicted past the cursor: the oldest row.
        let anchor = c.anchor(&RowSet::new(&after, None, None));
        let later = mirror(8..14);
        c.keep_on(anchor, &RowSet::new(&later, None, None));
        c.clamp(later.len());
        assert_eq!(at(&c), (0, 0));
    }
}
