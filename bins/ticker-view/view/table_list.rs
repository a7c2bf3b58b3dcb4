//! Draws the start screen: every table with its kind, rows (of capacity, for rings and keyed
//! tables with one), rows and updates per second (a keyed table's rows: those modified and
//! added), and a sparkline of rows added (or written) per data tick. Tables dropped from the
//! engine are left out.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

use crate::app::App;
use crate::stats::{fmt_rate, spark_text};
use crate::theme::THEME;
use tickertable_tools::demo::fmt_count;

const HEADERS: [&str; 6] = ["Table", "Kind", "Rows", "Rows/s", "Upd/s", "Activity"];

/// Draws the table list into `area` (header first).
#[allow(clippy::too_many_lines)] // one table, drawn top to bottom
pub(crate) fn draw(app: &App, area: Rect, buf: &mut Buffer) {
    if area.height == 0 {
        return;
    }
    let shown: Vec<(usize, &crate::app::Entry)> = app
        .listed()
        .into_iter()
        .map(|i| (i, &app.tables[i]))
        .collect();
    let name_w = shown
        .iter()
        .map(|(_, e)| e.info.name.chars().count())
        .chain([HEADERS[0].len()])
        .max()
        .unwrap_or(5);
    let kinds: Vec<String> = shown.iter().map(|(_, e)| e.info.kind.to_string()).collect();
    let kind_w = kinds
        .iter()
        .map(String::len)
        .chain([HEADERS[1].len()])
        .max()
        .unwrap_or(4);
    let rows: Vec<String> = shown
        .iter()
        .map(|(_, e)| {
            let n = fmt_count(e.mirror.len() as u64);
            match (e.info.kind, e.info.capacity) {
                (
                    tickertable::TableKind::Ring { .. } | tickertable::TableKind::Keyed { .. },
                    Some(c),
                ) => {
                    format!("{n} / {}", fmt_count(c as u64))
                }
                _ => n,
            }
        })
        .collect();
    let rows_w = rows
        .iter()
        .map(|s| s.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let widths = [name_w, kind_w, rows_w, 8, 6].map(|w| u16::try_from(w).unwrap_or(20));
    let x0 = area.x + 1;
    let mut xs = [0u16; 6];
    let mut x = x0;
    for (i, w) in widths.iter().enumerate() {
        xs[i] = x;
        x = x.saturating_add(w + 2);
    }
    xs[5] = x;
    let spark_w = area.right().saturating_sub(x + 1);

    // Header.
    for (i, h) in HEADERS.iter().enumerate() {
        if xs[i] >= area.right() {
            break;
        }
        let room = area.right() - xs[i];
        if (2..5).contains(&i) {
            super::right(buf, xs[i], area.y, widths[i].min(room), h, THEME.header);
        } else {
            buf.set_stringn(xs[i], area.y, h, usize::from(room), THEME.header);
        }
    }

    let visible = usize::from(area.height - 1);
    let selected = shown
        .iter()
        .position(|(i, _)| *i == app.list_selected)
        .unwrap_or(0);
    let top = selected.saturating_sub(visible.saturating_sub(1));
    let mut spark = String::new();
    for (k, (n, (i, e))) in shown.iter().enumerate().skip(top).take(visible).enumerate() {
        let y = area.y + 1 + u16::try_from(k).unwrap_or(0);
        let base = if *i == app.list_selected {
            buf.set_style(Rect::new(area.x, y, area.width, 1), THEME.row_selected);
            THEME.row_selected
        } else {
            Style::new()
        };
        let rate = fmt_rate(e.activity.rows_in);
        let upd = fmt_rate(e.activity.updates);
        let cells = [
            e.info.name.as_str(),
            kinds[n].as_str(),
            rows[n].as_str(),
            &rate,
            &upd,
        ];
        for (c, text) in cells.iter().enumerate() {
            if xs[c] >= area.right() {
                break;
            }
            let w = widths[c].min(area.right() - xs[c]);
            if c >= 2 {
                super::right(buf, xs[c], y, w, text, base);
            } else {
                buf.set_stringn(xs[c], y, text, usize::from(w), base);
            }
        }
        if spark_w > 0 {
            if let Some(why) = &e.ended {
                buf.set_stringn(xs[5], y, why, usize::from(spark_w), THEME.error);
            } else {
                spark_text(&e.activity.spark, usize::from(spark_w), &mut spark);
                buf.set_stringn(xs[5], y, &spark, usize::from(spark_w), THEME.spark);
            }
        }
    }
}
