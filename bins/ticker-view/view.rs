//! Drawing: the screen layout, the title bar and the too-small message; each part in
//! `view/*.rs`. Everything here reads the [`App`] and writes a `Buffer`: it never changes the
//! App and never touches the engine.
//!
//! ```text
//! title bar        table name, kind, rows, follow / PAUSED, filter, sort
//! body             the table list, a table (header + rows), or a chart
//! status line      engine step, cycle times, rows/s in and shown, lags and drops
//! key hints        or the prompt, or a message
//! ```

mod chart;
mod detail;
mod help;
mod status_bar;
mod table_list;
mod table_view;

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::widgets::Widget;
use ratatui::Frame;
use tickertable::TableKind;

use crate::app::{App, Overlay};
use crate::theme::THEME;
use table_view::TableView;
use tickertable_tools::demo::fmt_count;

/// The smallest terminal the viewer draws in.
pub(crate) const MIN_WIDTH: u16 = 40;
/// The smallest terminal height the viewer draws in.
pub(crate) const MIN_HEIGHT: u16 = 8;

/// Rows of table body a terminal `height` rows high shows: all but the title, the column
/// header, the status line and the key hints.
pub(crate) fn body_height(height: u16) -> usize {
    usize::from(height.saturating_sub(4))
}

/// Draws the whole screen.
pub(crate) fn render(app: &App, frame: &mut Frame<'_>) {
    let area = frame.area();
    draw(app, area, frame.buffer_mut());
}

/// Draws the whole screen into `buf`.
pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(area, buf);
        return;
    }
    let [title, body, status, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    title_bar(app, title, buf);
    match &app.view {
        None => table_list::draw(app, body, buf),
        Some(v) if app.overlay == Overlay::Chart => chart::draw(v, body, buf),
        Some(v) => TableView::new(v).render(body, buf),
    }
    status_bar::draw(app, status, buf);
    status_bar::draw_hints(app, hints, buf);
    match (app.overlay, &app.view) {
        (Overlay::Help, _) => help::draw(app, area, buf),
        (Overlay::Detail, Some(v)) => detail::draw(v, area, buf),
        _ => {}
    }
}

fn too_small(area: Rect, buf: &mut Buffer) {
    let lines = [
        "terminal too small".to_owned(),
        format!(
            "{}x{}, need {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        ),
    ];
    let top = area.y + area.height.saturating_sub(2) / 2;
    for (k, line) in lines.iter().enumerate() {
        let y = top + u16::try_from(k).unwrap_or(0);
        if y >= area.bottom() {
            break;
        }
        let w = u16::try_from(line.chars().count()).unwrap_or(u16::MAX);
        let x = area.x + area.width.saturating_sub(w) / 2;
        buf.set_stringn(x, y, line, usize::from(area.width), THEME.status_warn);
    }
}

fn title_bar(app: &App, area: Rect, buf: &mut Buffer) {
    buf.set_style(area, THEME.title);
    let mut text = String::with_capacity(usize::from(area.width));
    let mut warn = None;
    if let (Some(v), Some(e)) = (&app.view, app.open_entry()) {
        let m = v.data(&e.mirror);
        text.push(' ');
        text.push_str(v.name());
        text.push_str(" │ ");
        text.push_str(&v.kind().to_string());
        if let Some(key) = v.key_names() {
            text.push_str(", key ");
            text.push_str(key);
        }
        text.push_str(" │ ");
        text.push_str(&fmt_count(m.len() as u64));
        text.push_str(" rows │ step ");
        text.push_str(&m.step().to_string());
        if let Some(f) = v.filter() {
            text.push_str(" │ filter ");
            text.push_str(&f.filter().to_string());
            let _ = write!(text, " ({} shown)", fmt_count(f.matches().len() as u64));
        }
        if let Some(s) = v.sort() {
            text.push_str(" │ sort ");
            text.push_str(v.schema().field(s.column).name());
            text.push_str(if s.descending { " ↓" } else { " ↑" });
        }
        if v.is_paused() {
            let s = if v.pending() == 1 { "" } else { "s" };
            warn = Some(format!(
                " PAUSED: {} update{s} pending (p resumes) ",
                fmt_count(v.pending())
            ));
        } else if v.cursor().follows() {
            text.push_str(" │ following");
        } else if matches!(v.kind(), TableKind::Blink) {
            text.push_str(" │ latest cycle");
        }
    } else {
        text.push_str(" ticker-view │ ");
        text.push_str(&app.source);
        let n = app.listed().len();
        let _ = write!(text, " │ {n} table{}", if n == 1 { "" } else { "s" });
    }
    let (x, _) = buf.set_stringn(area.x, area.y, &text, usize::from(area.width), Style::new());
    if let Some(w) = warn {
        let x = x + 1;
        if x < area.right() {
            let rest = area.right() - x;
            buf.set_stringn(x, area.y, &w, usize::from(rest), THEME.title_warn);
        }
    }
}

/// Writes `s` right-aligned in `width` cells at `(x, y)`.
fn right(buf: &mut Buffer, x: u16, y: u16, width: u16, s: &str, style: Style) {
    let w = u16::try_from(s.chars().count())
        .unwrap_or(u16::MAX)
        .min(width);
    buf.set_stringn(x + width - w, y, s, usize::from(w), style);
}

/// A popup area `width` x `height`, centered in `area` (clamped to it).
fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width.saturating_sub(2));
    let h = height.min(area.height.saturating_sub(2));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests;
