//! Draws the status line (the link to a remote engine when it is not up, engine step, cycle
//! period and last cycle time, rows per second in and shown, lags and drops) and the bottom bar
//! (the prompt, a message, or the key hints).
//!
//! What the source cannot know shows as `-`; a period measured from the steps seen go by
//! (a remote engine) shows as `~100 ms`.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::app::{App, Overlay, PromptKind};
use crate::source::{Link, Period};
use crate::stats::fmt_rate;
use crate::theme::THEME;
use tickertable_tools::demo::fmt_count;

/// Draws the status line.
pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    let s = &app.status;
    let mut text = String::with_capacity(usize::from(area.width));
    let mut x = area.x;
    if let Some(link) = link_text(&s.link, &app.source) {
        (x, _) = buf.set_stringn(x, area.y, &link, usize::from(area.width), THEME.status_warn);
        text.push_str(" │");
    }
    let _ = write!(text, " step {}", s.step);
    match s.period {
        Period::Configured(p) => {
            let _ = write!(text, " │ cycle {}", fmt_duration(p));
        }
        Period::Observed(p) => {
            let _ = write!(text, " │ cycle ~{}", fmt_duration(p));
        }
        Period::Unknown => text.push_str(" │ cycle -"),
    }
    match s.last_cycle {
        Some(last) => {
            let _ = write!(text, ", last {}", fmt_duration(last));
        }
        None => text.push_str(", last -"),
    }
    let activity = app.open_entry().map_or(&app.total, |e| &e.activity);
    let _ = write!(
        text,
        " │ in {} rows/s │ shown {} rows/s",
        fmt_rate(activity.rows_in),
        fmt_rate(activity.rows_shown)
    );
    let rest = usize::from(area.right().saturating_sub(x));
    let (x, _) = buf.set_stringn(x, area.y, &text, rest, THEME.status);
    text.clear();
    if app.recently_lagged() {
        let _ = write!(
            text,
            " │ lagged {}x: resynced from a snapshot ({} updates missed)",
            app.lags,
            fmt_count(app.missed)
        );
    }
    if app.dropped.rows_in > 0.0 {
        let _ = write!(
            text,
            " │ dropped {} rows/s (table limit)",
            fmt_rate(app.dropped.rows_in)
        );
    }
    if !text.is_empty() && x < area.right() {
        buf.set_stringn(
            x,
            area.y,
            &text,
            usize::from(area.right() - x),
            THEME.status_warn,
        );
    }
}

/// The link, when it is worth a word: connecting, or lost and when the next try is.
fn link_text(link: &Link, source: &str) -> Option<String> {
    match link {
        Link::Local | Link::Connected => None,
        Link::Connecting => Some(format!(" connecting to {source}…")),
        Link::Disconnected {
            reason,
            retry_in: Some(wait),
        } => Some(format!(
            " disconnected: {reason}, retrying in {:.1} s",
            wait.as_secs_f64()
        )),
        Link::Disconnected {
            reason,
            retry_in: None,
        } => Some(format!(" disconnected: {reason}, reconnecting…")),
    }
}

/// Draws the bottom bar: the prompt while typing, else a message, else the key hints.
pub(crate) fn draw_hints(app: &App, area: Rect, buf: &mut Buffer) {
    let width = usize::from(area.width);
    if let Some(p) = &app.prompt {
        let label = match p.kind {
            PromptKind::Search => " search /",
            PromptKind::Filter => " filter (expression, empty clears): ",
        };
        let (x, _) = buf.set_stringn(area.x, area.y, label, width, THEME.prompt);
        let rest = usize::from(area.right().saturating_sub(x));
        let (x, _) = buf.set_stringn(x, area.y, &p.text, rest, THEME.prompt);
        if x < area.right() {
            buf.set_stringn(x, area.y, "▏", 1, THEME.prompt);
        }
        return;
    }
    if let Some(m) = &app.message {
        let style = if m.error { THEME.error } else { THEME.message };
        buf.set_stringn(area.x + 1, area.y, &m.text, width.saturating_sub(1), style);
        return;
    }
    let hints: &[(&str, &str)] = match (app.overlay, app.view.is_some()) {
        (Overlay::Help, _) => &[("Esc", "close help"), ("q", "quit")],
        (Overlay::Detail, _) => &[
            ("↑↓", "row"),
            ("p", "pause"),
            ("Esc", "close"),
            ("q", "quit"),
        ],
        (Overlay::Chart, _) => &[
            ("←→", "column"),
            ("↑↓", "row"),
            ("p", "pause"),
            ("c/Esc", "close"),
            ("q", "quit"),
        ],
        (Overlay::None, false) => &[
            ("↑↓", "select"),
            ("Enter", "open"),
            ("?", "help"),
            ("q", "quit"),
        ],
        (Overlay::None, true) => &[
            ("↑↓←→", "move"),
            ("g/G", "top/tail"),
            ("/ n N", "search"),
            ("f", "filter"),
            ("s", "sort"),
            ("p", "pause"),
            ("Enter", "row"),
            ("c", "chart"),
            ("?", "help"),
            ("Esc", "back"),
            ("q", "quit"),
        ],
    };
    let mut x = area.x + 1;
    for (key, what) in hints {
        if x >= area.right() {
            break;
        }
        let (nx, _) = buf.set_stringn(
            x,
            area.y,
            key,
            usize::from(area.right() - x),
            THEME.hint_key,
        );
        if nx >= area.right() {
            break;
        }
        let (nx, _) = buf.set_stringn(
            nx + 1,
            area.y,
            what,
            usize::from(area.right() - nx - 1),
            THEME.hint_text,
        );
        x = nx + 2;
    }
}

/// `100 ms`, `0.42 ms`, `12 µs`, `1.5 s`.
pub(crate) fn fmt_duration(d: std::time::Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.0} ms", us / 1e3)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}
