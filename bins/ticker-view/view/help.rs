//! Draws the help overlay: every key, and the bounds filter, sort and search work within.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear, Widget};

use crate::app::App;
use crate::table_state::{FILTER_SCAN, MAX_MATCHES, SEARCH_ROWS, SORT_ROWS};
use crate::theme::THEME;
use tickertable_tools::demo::fmt_count;

const KEYS: [(&str, &str); 20] = [
    ("↑↓ j k", "move the cursor"),
    ("←→ h l", "select a column"),
    ("PgUp PgDn", "page up / down (also Ctrl-b Ctrl-f, Space)"),
    ("g  G", "first row / last row and follow the tail"),
    ("Enter", "open a table / show the cursor row in full"),
    ("/", "search the rows below the cursor"),
    ("n  N", "next / previous match"),
    ("f", "filter: Price > 100 && Sym in (\"AAPL\", \"MSFT\")"),
    ("", "not an expression? Sym ~ aa: contains, any case"),
    ("s", "sort by the column: ascending, descending, off"),
    ("p", "pause: freeze the rows; p again resumes the tail"),
    ("c", "live chart of the column (per symbol)"),
    ("?", "this help"),
    ("Esc", "close / back to the table list"),
    ("q  Ctrl-c", "quit"),
    ("", ""),
    ("follow", "append and ring tables follow the tail"),
    ("blink", "tables show the latest cycle's rows"),
    ("flash", "green: rose, red: fell; yellow: other change"),
    ("lag", "a slow viewer resyncs from a snapshot"),
];

/// Draws the help popup over `area`.
pub(crate) fn draw(_app: &App, area: Rect, buf: &mut Buffer) {
    let notes = [
        format!(
            "filter scans the newest {} rows, keeps {} matches",
            fmt_count(FILTER_SCAN),
            fmt_count(MAX_MATCHES as u64)
        ),
        format!(
            "sort: the newest {} rows; search: {} rows ahead",
            fmt_count(SORT_ROWS as u64),
            fmt_count(SEARCH_ROWS as u64)
        ),
    ];
    let height = u16::try_from(KEYS.len() + notes.len() + 3).unwrap_or(u16::MAX);
    let rect = super::popup(area, 66, height);
    Clear.render(rect, buf);
    let block = Block::bordered()
        .title(" ticker-view keys ")
        .border_style(THEME.border)
        .style(THEME.popup);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let mut y = inner.y;
    for (key, what) in KEYS {
        if y >= inner.bottom() {
            return;
        }
        buf.set_stringn(
            inner.x + 1,
            y,
            key,
            11,
            THEME.hint_key.patch(THEME.popup).patch(THEME.header),
        );
        buf.set_stringn(
            inner.x + 13,
            y,
            what,
            usize::from(inner.width.saturating_sub(13)),
            THEME.popup,
        );
        y += 1;
    }
    y += 1;
    for note in &notes {
        if y >= inner.bottom() {
            return;
        }
        buf.set_stringn(
            inner.x + 1,
            y,
            note,
            usize::from(inner.width.saturating_sub(1)),
            THEME.status,
        );
        y += 1;
    }
}
