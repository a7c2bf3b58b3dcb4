//! Draws the detail popup: every column of the cursor row, with its type, live.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear, Widget};

use crate::table_state::TableState;
use crate::theme::THEME;

/// Draws the cursor row of `v` in a popup over `area`.
pub(crate) fn draw(v: &TableState, area: Rect, buf: &mut Buffer) {
    let fields = v.schema().fields();
    let name_w = fields
        .iter()
        .map(|f| f.name().chars().count())
        .max()
        .unwrap_or(4);
    let types: Vec<String> = fields.iter().map(|f| f.data_type().to_string()).collect();
    let type_w = types.iter().map(|t| t.chars().count()).max().unwrap_or(4);
    let value_w = v
        .formatted()
        .detail()
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let width = u16::try_from(name_w + type_w + value_w + 8).unwrap_or(u16::MAX);
    let height = u16::try_from(fields.len() + 2).unwrap_or(u16::MAX);
    let rect = super::popup(area, width, height);
    Clear.render(rect, buf);
    let pos = v
        .formatted()
        .rows()
        .get(v.cursor().selected().saturating_sub(v.cursor().top()))
        .map(|r| r.pos);
    let title = match pos {
        Some(p) if !v.formatted().detail().is_empty() => format!(" {} row #{p} ", v.name()),
        _ => format!(" {}: no row under the cursor ", v.name()),
    };
    let block = Block::bordered()
        .title(title)
        .border_style(THEME.border)
        .style(THEME.popup);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let name_w = u16::try_from(name_w).unwrap_or(20);
    let type_w = u16::try_from(type_w).unwrap_or(20);
    for (k, f) in fields.iter().enumerate() {
        let y = inner.y + u16::try_from(k).unwrap_or(u16::MAX - inner.y);
        if y >= inner.bottom() {
            break;
        }
        let mut x = inner.x + 1;
        buf.set_stringn(x, y, f.name(), usize::from(name_w), THEME.header);
        x += name_w + 2;
        if x >= inner.right() {
            continue;
        }
        buf.set_stringn(
            x,
            y,
            &types[k],
            usize::from(type_w.min(inner.right() - x)),
            THEME.status,
        );
        x += type_w + 2;
        if x >= inner.right() {
            continue;
        }
        let value = v.formatted().detail().get(k).map_or("", String::as_str);
        buf.set_stringn(x, y, value, usize::from(inner.right() - x), THEME.popup);
    }
}
