//! The [`TableView`] widget: draws the open table, a header and the visible rows, as
//! `TableState::prepare` left them.
//!
//! Columns are as wide as their content (grown, never shrunk, while the table is open); the
//! leftmost columns scroll off when the current one would not fit. Numbers are right-aligned.
//! A new value flashes green (rose) or red (fell), and a keyed table's cell that changed in
//! any other way (or a row that is another key's) in the neutral highlight, looked up by row
//! position.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Widget;
use tickertable::TableKind;

use crate::cells::{is_numeric, is_time};
use crate::table_state::{TableState, Tick};
use crate::theme::{fade_step, THEME};

/// Draws a [`TableState`]: the widget over the open table's state (which it only reads).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableView<'a> {
    state: &'a TableState,
}

impl<'a> TableView<'a> {
    /// The widget drawing `state`.
    pub(crate) fn new(state: &'a TableState) -> Self {
        Self { state }
    }
}

impl Widget for TableView<'_> {
    #[allow(clippy::too_many_lines)] // the header, then each row, left to right
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        let state = self.state;
        let fields = state.schema().fields();
        let max_pos = state
            .formatted()
            .rows()
            .iter()
            .map(|r| r.pos)
            .max()
            .unwrap_or(0);
        let gutter = u16::try_from(digits(max_pos) + 1).unwrap_or(8).max(2);
        let first = first_column(
            state.formatted().widths(),
            state.cursor().col(),
            area.width.saturating_sub(gutter + 1),
        );
        let y0 = area.y;
        // Header.
        super::right(buf, area.x, y0, gutter, "#", THEME.header);
        let mut x = area.x + gutter + 1;
        for c in first..fields.len() {
            if x >= area.right() {
                break;
            }
            let w = state.formatted().widths()[c].min(area.right() - x);
            let style = if c == state.cursor().col() {
                THEME.header_selected
            } else {
                THEME.header
            };
            let name = fields[c].name();
            if is_numeric(fields[c].data_type()) && !is_time(fields[c].data_type()) {
                super::right(buf, x, y0, w, name, style);
            } else {
                buf.set_stringn(x, y0, name, usize::from(w), style);
            }
            x += w + 1;
        }
        let body = Rect::new(area.x, y0 + 1, area.width, area.height - 1);
        if state.formatted().rows().is_empty() {
            let msg = match state.kind() {
                TableKind::Blink if state.filter().is_none() => "no rows this cycle",
                _ if state.filter().is_some() => "no rows match the filter",
                TableKind::Keyed { .. } => "no rows",
                _ => "no rows yet",
            };
            if body.height > 0 {
                buf.set_stringn(
                    body.x + gutter + 1,
                    body.y,
                    msg,
                    usize::from(body.width),
                    THEME.status,
                );
            }
            return;
        }
        let mut num = [0u8; 20];
        for (k, row) in state.formatted().rows().iter().enumerate() {
            let Ok(dy) = u16::try_from(k) else {
                break;
            };
            if dy >= body.height {
                break;
            }
            let y = body.y + dy;
            let selected = state.cursor().top() + k == state.cursor().selected();
            if selected {
                buf.set_style(Rect::new(body.x, y, body.width, 1), THEME.row_selected);
            }
            super::right(
                buf,
                body.x,
                y,
                gutter,
                fmt_u64(row.pos, &mut num),
                THEME.gutter,
            );
            let flash = state.flashes().get(row.pos);
            let mut x = body.x + gutter + 1;
            for c in first..fields.len() {
                if x >= body.right() {
                    break;
                }
                let w = state.formatted().widths()[c].min(body.right() - x);
                let mut style = Style::new();
                if selected && c == state.cursor().col() {
                    style = THEME.cell_selected;
                }
                let tick = flash.and_then(|f| f.tick(c)).and_then(|(tick, at)| {
                    fade_step(state.formatted().now().saturating_duration_since(at))
                        .map(|s| (tick, s))
                });
                if let Some((tick, step)) = tick {
                    style = style.patch(match tick {
                        Tick::Up => THEME.up[step],
                        Tick::Down => THEME.down[step],
                        Tick::Changed => THEME.changed[step],
                    });
                }
                let text = row.cells.get(c).map_or("", String::as_str);
                let dt = fields[c].data_type();
                if is_numeric(dt) && !is_time(dt) {
                    super::right(buf, x, y, w, text, style);
                } else {
                    buf.set_stringn(x, y, text, usize::from(w), style);
                }
                x += w + 1;
            }
        }
    }
}

/// The first column to draw so that column `col` fits in `width` cells.
fn first_column(widths: &[u16], col: usize, width: u16) -> usize {
    let mut first = 0;
    while first < col {
        let used: u32 = widths[first..=col].iter().map(|&w| u32::from(w) + 1).sum();
        if used <= u32::from(width) {
            break;
        }
        first += 1;
    }
    first
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// `n` in decimal, in `buf`, without allocating.
fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        // A digit: always < 10.
        buf[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut b = [0u8; 20];
        assert_eq!(fmt_u64(0, &mut b), "0");
        assert_eq!(fmt_u64(9_876_543_210, &mut b), "9876543210");
        assert_eq!(digits(0), 1);
        assert_eq!(digits(10_000_000), 8);
    }

    #[test]
    fn leftmost_columns_scroll_off_to_show_the_current_one() {
        let widths = [10, 10, 10, 10];
        assert_eq!(first_column(&widths, 1, 30), 0);
        assert_eq!(first_column(&widths, 3, 33), 1);
        assert_eq!(first_column(&widths, 3, 30), 2);
        assert_eq!(first_column(&widths, 3, 22), 2);
    }
}
