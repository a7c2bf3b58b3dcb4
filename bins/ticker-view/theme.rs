//! The one style table. Every color and modifier the viewer uses is named here.

use std::time::Duration;

use ratatui::style::{Color, Modifier, Style};

/// How long a tick highlight lasts.
pub(crate) const FADE: Duration = Duration::from_millis(500);

/// The viewer's styles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    pub(crate) title: Style,
    pub(crate) title_warn: Style,
    pub(crate) header: Style,
    pub(crate) header_selected: Style,
    pub(crate) gutter: Style,
    pub(crate) row_selected: Style,
    pub(crate) cell_selected: Style,
    pub(crate) status: Style,
    pub(crate) status_warn: Style,
    pub(crate) hint_key: Style,
    pub(crate) hint_text: Style,
    pub(crate) prompt: Style,
    pub(crate) message: Style,
    pub(crate) error: Style,
    pub(crate) border: Style,
    pub(crate) popup: Style,
    pub(crate) spark: Style,
    pub(crate) chart_line: Style,
    pub(crate) axis: Style,
    /// Rising values, strongest first; the highlight steps down as it fades.
    pub(crate) up: [Style; 3],
    /// Falling values, strongest first.
    pub(crate) down: [Style; 3],
    /// Other changes (a keyed table's string or time cell, a row now holding another key or
    /// a new key), strongest first.
    pub(crate) changed: [Style; 3],
}

/// The theme.
pub(crate) const THEME: Theme = Theme {
    title: Style::new()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD),
    title_warn: Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD),
    header: Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    header_selected: Style::new()
        .fg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
        .add_modifier(Modifier::UNDERLINED),
    gutter: Style::new().fg(Color::DarkGray),
    row_selected: Style::new().bg(Color::DarkGray),
    cell_selected: Style::new().bg(Color::Blue).add_modifier(Modifier::BOLD),
    status: Style::new().fg(Color::Gray),
    status_warn: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    hint_key: Style::new().fg(Color::Black).bg(Color::Gray),
    hint_text: Style::new().fg(Color::Gray),
    prompt: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    message: Style::new().fg(Color::Cyan),
    error: Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    border: Style::new().fg(Color::Cyan),
    popup: Style::new().fg(Color::White).bg(Color::Black),
    spark: Style::new().fg(Color::Green),
    chart_line: Style::new().fg(Color::Yellow),
    axis: Style::new().fg(Color::Gray),
    up: [
        Style::new()
            .fg(Color::Black)
            .bg(Color::Green)
            .add_modifier(Modifier::BOLD),
        Style::new()
            .fg(Color::LightGreen)
            .add_modifier(Modifier::BOLD),
        Style::new().fg(Color::Green),
    ],
    down: [
        Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD),
        Style::new()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
        Style::new().fg(Color::Red),
    ],
    changed: [
        Style::new()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        Style::new()
            .fg(Color::LightYellow)
            .add_modifier(Modifier::BOLD),
        Style::new().fg(Color::Yellow),
    ],
};

/// The highlight step for a flash `age` old, or `None` once it has faded.
pub(crate) fn fade_step(age: Duration) -> Option<usize> {
    if age >= FADE {
        None
    } else {
        // Three equal steps over FADE.
        Some(
            usize::try_from(age.as_millis() * 3 / FADE.as_millis())
                .unwrap_or(2)
                .min(2),
        )
    }
}
