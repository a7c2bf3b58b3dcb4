//! Draws the live line chart of the current numeric column: the last few thousand points (of
//! one symbol: the cursor row's, or the one a filter pins), row position on the x axis.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Widget};

use crate::table_state::TableState;
use crate::theme::THEME;
use tickertable_tools::demo::fmt_count;

/// Draws `v`'s chart into `area`.
pub(crate) fn draw(v: &TableState, area: Rect, buf: &mut Buffer) {
    let Some(chart) = v.chart().plot() else {
        return;
    };
    let column = v.schema().field(chart.column()).name();
    let what = match (chart.key(), v.filter()) {
        (Some(k), _) => k.to_owned(),
        (None, Some(f)) => f.filter().to_string(),
        (None, None) => "all rows".to_owned(),
    };
    let paused = if v.is_paused() { " │ PAUSED" } else { "" };
    let title = format!(
        " {column} │ {what} │ last {} points{paused} ",
        fmt_count(chart.points().len() as u64)
    );
    let note = v
        .chart()
        .note()
        .map_or(String::new(), |n| format!(" │ {n}"));
    let title = format!("{title}{note}");
    let block = Block::bordered().title(title).border_style(THEME.border);
    if chart.points().is_empty() {
        let inner = block.inner(area);
        block.render(area, buf);
        buf.set_stringn(
            inner.x + 1,
            inner.y,
            "no points yet",
            usize::from(inner.width),
            THEME.status,
        );
        return;
    }
    let [x0, x1] = chart.x_bounds();
    let [y0, y1] = chart.y_bounds();
    let decimals = if (y1 - y0) < 10.0 { 2 } else { 1 };
    let y_label = |y: f64| Span::styled(format!("{y:.decimals$}"), THEME.axis);
    let x_label = |x: f64| Span::styled(format!("#{x:.0}"), THEME.axis);
    let dataset = Dataset::default()
        .name(what)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(THEME.chart_line)
        .data(chart.points());
    Chart::new(vec![dataset])
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled("row", THEME.axis))
                .style(THEME.axis)
                .bounds([x0, x1])
                .labels([x_label(x0), x_label(f64::midpoint(x0, x1)), x_label(x1)]),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled(column.to_owned(), THEME.axis))
                .style(THEME.axis)
                .bounds([y0, y1])
                .labels([y_label(y0), y_label(f64::midpoint(y0, y1)), y_label(y1)]),
        )
        .legend_position(None)
        .render(area, buf);
}
