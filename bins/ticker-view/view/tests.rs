//! Render tests: whole screens drawn with `TestBackend` from a rig on a manual engine and a
//! fake clock, read back as text with times of day masked; widget styles checked cell by cell.

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

use super::table_view::TableView;
use crate::testing::{lines, unstyled, Rig, HISTORY, QUOTES, TRADES};
use crate::theme::THEME;

/// A rig with six trades over two cycles.
fn rig(width: u16, height: u16) -> Rig {
    let mut rig = Rig::new(width, height);
    rig.publish(&[
        ("AAPL", 101.5),
        ("MSFT", 99.0),
        ("AAPL", 103.25),
        ("NVDA", 250.0),
    ]);
    rig.cycle();
    rig.publish(&[("AAPL", 102.0), ("MSFT", 98.0)]);
    rig.cycle();
    rig
}

#[track_caller]
fn assert_screen(rig: &mut Rig, want: &[&str]) {
    let got = rig.screen();
    assert_eq!(got, want, "\n{}", got.join("\n"));
}

#[test]
fn smoke() {
    let mut rig = rig(72, 12);
    let screen = rig.screen();
    assert_eq!(screen.len(), 12);
    assert!(screen[0].contains("ticker-view"));
}

#[test]
fn table_list_shows_kinds_rows_rates_and_activity() {
    let mut rig = rig(72, 8);
    assert_screen(
        &mut rig,
        &[
            " ticker-view │ test engine │ 3 tables                                   ",
            " Table    Kind      Rows    Rows/s   Upd/s  Activity                    ",
            " trades   blink        2        30      10                              ",
            " recent   ring(5)  5 / 5        30      10                              ",
            " history  append       6        30      10                              ",
            "                                                                        ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 90 rows/s │ shown 90 rows/s    ",
            " ↑↓ select  Enter open  ? help  q quit                                  ",
        ],
    );
    // Five ticks make a sparkline bar.
    for _ in 0..5 {
        rig.publish(&[("AAPL", 1.0)]);
        rig.cycle();
    }
    let screen = rig.screen();
    assert!(screen[4].trim_end().ends_with('█'), "{}", screen[4]);
}

#[test]
fn table_screen_shows_the_rows_with_columns_sized_to_content() {
    let mut rig = rig(72, 12);
    rig.app.open(HISTORY);
    assert_screen(
        &mut rig,
        &[
            " history │ append │ 6 rows │ step 2 │ following                         ",
            " # Time            Sym   Price Size Side                                ",
            " 0 hh:mm:ss.ffffff AAPL 101.50  100 Buy                                 ",
            " 1 hh:mm:ss.ffffff MSFT  99.00  100 Buy                                 ",
            " 2 hh:mm:ss.ffffff AAPL 103.25  100 Buy                                 ",
            " 3 hh:mm:ss.ffffff NVDA 250.00  100 Buy                                 ",
            " 4 hh:mm:ss.ffffff AAPL 102.00  100 Buy                                 ",
            " 5 hh:mm:ss.ffffff MSFT  98.00  100 Buy                                 ",
            "                                                                        ",
            "                                                                        ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 30 rows/s │ shown 30 rows/s    ",
            " ↑↓←→ move  g/G top/tail  / n N search  f filter  s sort  p pause  Enter",
        ],
    );
}

#[test]
fn a_blink_table_shows_the_latest_cycle_then_nothing() {
    let mut rig = rig(60, 8);
    rig.app.open(TRADES);
    let screen = rig.screen();
    assert_eq!(
        screen[0].trim_end(),
        " trades │ blink │ 2 rows │ step 2 │ latest cycle"
    );
    assert_eq!(
        screen[2].trim_end(),
        " 4 hh:mm:ss.ffffff AAPL 102.0  100 Buy"
    );
    rig.cycle();
    let screen = rig.screen();
    assert_eq!(
        screen[0].trim_end(),
        " trades │ blink │ 0 rows │ step 3 │ latest cycle"
    );
    assert_eq!(screen[2].trim_end(), "   no rows this cycle");
}

#[test]
fn pause_shows_the_pending_updates_in_the_title() {
    let mut rig = rig(80, 12);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Char('p'));
    for _ in 0..2 {
        rig.publish(&[("AAPL", 104.0)]);
        rig.cycle();
    }
    let screen = rig.screen();
    assert_eq!(
        screen[0],
        " history │ append │ 6 rows │ step 2  PAUSED: 2 updates pending (p resumes)      "
    );
    assert_eq!(
        screen[7].trim_end(),
        " 5 hh:mm:ss.ffffff MSFT  98.00  100 Buy"
    );
    assert_eq!(screen[8].trim(), "", "the new rows are not shown");
    rig.key(KeyCode::Char('p'));
    let screen = rig.screen();
    assert!(screen[0].ends_with("│ 8 rows │ step 4 │ following                                 "));
    assert_eq!(
        screen[9].trim_end(),
        " 7 hh:mm:ss.ffffff AAPL 104.00  100 Buy"
    );
}

#[test]
fn sort_orders_by_the_current_column() {
    let mut rig = rig(72, 12);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Char('s'));
    rig.key(KeyCode::Char('s'));
    assert_screen(
        &mut rig,
        &[
            " history │ append │ 6 rows │ step 2 │ sort Price ↓                      ",
            " # Time            Sym   Price Size Side                                ",
            " 3 hh:mm:ss.ffffff NVDA 250.00  100 Buy                                 ",
            " 2 hh:mm:ss.ffffff AAPL 103.25  100 Buy                                 ",
            " 4 hh:mm:ss.ffffff AAPL 102.00  100 Buy                                 ",
            " 0 hh:mm:ss.ffffff AAPL 101.50  100 Buy                                 ",
            " 1 hh:mm:ss.ffffff MSFT  99.00  100 Buy                                 ",
            " 5 hh:mm:ss.ffffff MSFT  98.00  100 Buy                                 ",
            "                                                                        ",
            "                                                                        ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 30 rows/s │ shown 30 rows/s    ",
            " sorted by Price descending (the newest 10,000 rows)                    ",
        ],
    );
}

#[test]
fn filter_keeps_matching_rows_and_shows_the_predicate() {
    let mut rig = rig(80, 10);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Char('f'));
    for c in "Price > 100".chars() {
        rig.key(KeyCode::Char(c));
    }
    let screen = rig.screen();
    assert_eq!(
        screen[9].trim_end(),
        " filter (expression, empty clears): Price > 100▏"
    );
    rig.key(KeyCode::Enter);
    assert_screen(
        &mut rig,
        &[
            " history │ append │ 6 rows │ step 2 │ filter Price > 100 (4 shown) │ following  ",
            " # Time            Sym   Price Size Side                                        ",
            " 0 hh:mm:ss.ffffff AAPL 101.50  100 Buy                                         ",
            " 2 hh:mm:ss.ffffff AAPL 103.25  100 Buy                                         ",
            " 3 hh:mm:ss.ffffff NVDA 250.00  100 Buy                                         ",
            " 4 hh:mm:ss.ffffff AAPL 102.00  100 Buy                                         ",
            "                                                                                ",
            "                                                                                ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 30 rows/s │ shown 30 rows/s            ",
            " filter Price > 100: 4 rows match                                               ",
        ],
    );
}

#[test]
fn chart_draws_the_column_with_axes_and_labels() {
    let mut rig = rig(72, 14);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Char('c')); // the cursor row is MSFT: its prices
    let screen = rig.screen();
    assert_eq!(
        screen[1],
        "┌ Price │ MSFT │ last 2 points ────────────────────────────────────────┐"
    );
    let text = screen.join("\n");
    for label in ["99.05", "97.95", "#1", "#5", "row", "Price"] {
        assert!(text.contains(label), "{label} missing:\n{text}");
    }
    assert!(
        screen.iter().any(|l| l.contains('⠉') || l.contains('⠒')),
        "{text}"
    );
    assert_eq!(
        screen[13].trim_end(),
        " ←→ column  ↑↓ row  p pause  c/Esc close  q quit"
    );
    // It follows new rows of MSFT, and only those.
    rig.publish(&[("MSFT", 97.0), ("AAPL", 500.0)]);
    rig.cycle();
    let screen = rig.screen();
    assert!(screen[1].contains("last 3 points"), "{}", screen[1]);
    assert!(!screen.join("").contains("500"));
    rig.key(KeyCode::Esc);
    assert!(rig.app.view.as_ref().unwrap().chart().plot().is_none());
}

#[test]
fn detail_shows_every_column_of_the_cursor_row() {
    let mut rig = rig(72, 12);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Enter);
    let screen = rig.screen();
    assert_eq!(
        screen[2],
        " 0 09:30:00.000┌ history row #5 ───────────────────────┐                "
    );
    assert_eq!(
        screen[3],
        " 1 09:30:00.000│ Time   Timestamp(ns)  hh:mm:ss.ffffff │                "
    );
    assert_eq!(
        screen[4],
        " 2 09:30:00.000│ Sym    Utf8           MSFT            │                "
    );
    assert_eq!(
        screen[5],
        " 3 09:30:00.000│ Price  Float64        98.0            │                "
    );
}

#[test]
fn help_overlay_lists_the_keys_and_the_bounds() {
    let mut rig = rig(72, 30);
    rig.app.open(HISTORY);
    rig.key(KeyCode::Char('?'));
    let screen = rig.screen();
    assert_eq!(
        screen[2],
        " 0 ┌ ticker-view keys ──────────────────────────────────────────────┐   "
    );
    assert_eq!(
        screen[3],
        " 1 │ ↑↓ j k      move the cursor                                    │   "
    );
    assert_eq!(
        screen[10],
        "   │ f           filter: Price > 100 && Sym in (\"AAPL\", \"MSFT\")     │   "
    );
    assert_eq!(
        screen[11],
        "   │             not an expression? Sym ~ aa: contains, any case    │   "
    );
    assert_eq!(
        screen[24],
        "   │ filter scans the newest 1,000,000 rows, keeps 100,000 matches  │   "
    );
    assert_eq!(
        screen[25],
        "   │ sort: the newest 10,000 rows; search: 100,000 rows ahead       │   "
    );
    assert_eq!(screen[29].trim_end(), " Esc close help  q quit");
}

#[test]
fn a_terminal_too_small_shows_a_message() {
    let mut rig = rig(30, 6);
    rig.app.open(HISTORY);
    let buf = rig.draw();
    assert_eq!(
        unstyled(&buf),
        Buffer::with_lines([
            "                              ",
            "                              ",
            "      terminal too small      ",
            "       30x6, need 40x8        ",
            "                              ",
            "                              ",
        ])
    );
    // Growing again draws the table.
    rig.app.update(crate::action::Action::Resize(72, 12));
    assert!(rig.screen()[0].starts_with(" history"));
}

#[test]
fn rising_values_flash_green_falling_red_keyed_by_row_position() {
    let mut rig = rig(60, 6); // two body rows, following the tail
    rig.app.open(HISTORY);
    rig.publish(&[("NVDA", 251.0)]); // row 6: NVDA 250 -> 251, rose
    rig.cycle();
    rig.publish(&[("MSFT", 97.5)]); // row 7: MSFT 98 -> 97.5, fell, 100 ms later
    rig.cycle();
    rig.app.prepare(rig.now);
    let area = Rect::new(0, 0, 40, 3);
    let draw = |rig: &Rig| {
        let mut buf = Buffer::empty(area);
        TableView::new(rig.app.view.as_ref().unwrap()).render(area, &mut buf);
        buf
    };
    let buf = draw(&rig);
    assert_eq!(
        lines(&unstyled(&buf)),
        [
            " # Time            Sym  Price Size Side ",
            " 6 hh:mm:ss.ffffff NVDA 251.0  100 Buy  ",
            " 7 hh:mm:ss.ffffff MSFT  97.5  100 Buy  ",
        ]
    );
    let price = |buf: &Buffer, y: u16| buf[(25, y)].style();
    assert_eq!(
        price(&buf, 1).fg,
        THEME.up[1].fg,
        "rose 100 ms ago: second step"
    );
    assert_eq!(
        price(&buf, 2).bg,
        THEME.down[0].bg,
        "fell just now: strongest red"
    );
    assert_eq!(
        buf[(20, 2)].style().bg,
        THEME.row_selected.bg,
        "Sym: no flash"
    );
    // Scroll up one row: the flash stays on row 6, wherever it is on screen.
    rig.key(KeyCode::Up);
    rig.key(KeyCode::Up);
    rig.app.prepare(rig.now);
    let buf = draw(&rig);
    assert_eq!(lines(&buf)[2], " 6 hh:mm:ss.ffffff NVDA 251.0  100 Buy  ");
    assert_eq!(lines(&buf)[1], " 5 hh:mm:ss.ffffff MSFT  98.0  100 Buy  ");
    assert_eq!(price(&buf, 2).fg, THEME.up[1].fg);
    assert_eq!(
        price(&buf, 1).fg,
        Some(Color::Reset),
        "row 5 did not change"
    );
    // Half a second later every flash has faded.
    for _ in 0..5 {
        rig.tick();
    }
    rig.app.prepare(rig.now);
    let buf = draw(&rig);
    assert_eq!(price(&buf, 2).fg, Some(Color::Reset));
}

#[test]
fn the_status_line_shows_a_lost_connection_and_when_it_retries() {
    use std::time::Duration;

    use crate::source::{Link, Period};

    let mut rig = rig(100, 8);
    let mut status = rig.status();
    status.link = Link::Disconnected {
        reason: "cannot connect: connection refused (os error 111)".into(),
        retry_in: Some(Duration::from_secs(2)),
    };
    // What a remote source knows: the period it saw steps go by at, no cycle times.
    status.period = Period::Observed(Duration::from_millis(100));
    status.last_cycle = None;
    rig.tick_with(status.clone());
    let buf = rig.draw();
    let line = &lines(&buf)[6];
    assert_eq!(
        line.trim_end(),
        " disconnected: cannot connect: connection refused (os error 111), retrying in 2.0 s │ \
         step 2 │ cycle"
    );
    // The link in the warning style, the rest as usual.
    assert_eq!(buf[(1, 6)].fg, THEME.status_warn.fg.unwrap());
    assert_eq!(buf[(95, 6)].fg, THEME.status.fg.unwrap());

    status.link = Link::Disconnected {
        reason: "connection lost (operation was canceled)".into(),
        retry_in: None,
    };
    rig.tick_with(status.clone());
    assert_eq!(
        rig.screen()[6].trim_end(),
        " disconnected: connection lost (operation was canceled), reconnecting… │ step 2 │ cycle \
         ~100 ms, las"
    );

    status.link = Link::Connected;
    status.period = Period::Unknown;
    rig.tick_with(status);
    let screen = rig.screen();
    assert_eq!(
        screen[6].trim_end(),
        " step 2 │ cycle -, last - │ in 36 rows/s │ shown 36 rows/s"
    );
    assert_eq!(screen[7].trim_end(), " reconnected to test engine");
}

#[test]
fn a_keyed_table_is_listed_with_its_capacity_and_rows_written_per_second() {
    let mut rig = Rig::keyed(72, 8, Some(3));
    rig.upsert(&[("AAPL", 100.0, 101.0, "X"), ("MSFT", 50.0, 51.0, "Y")]);
    rig.cycle();
    // A third and a fourth key: the least recently written (AAPL) is evicted, NVDA takes
    // its slot (a modified row), TSLA is added.
    rig.upsert(&[("NVDA", 200.0, 201.0, "X"), ("TSLA", 300.0, 301.0, "Z")]);
    rig.cycle();
    assert_screen(
        &mut rig,
        &[
            " ticker-view │ test engine │ 1 table                                    ",
            " Table   Kind       Rows    Rows/s   Upd/s  Activity                    ",
            " quotes  keyed(3)  3 / 3        20      10                              ",
            "                                                                        ",
            "                                                                        ",
            "                                                                        ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 20 rows/s │ shown 20 rows/s    ",
            " ↑↓ select  Enter open  ? help  q quit                                  ",
        ],
    );
    rig.app.open(QUOTES);
    assert_screen(
        &mut rig,
        &[
            " quotes │ keyed(3), key Sym │ 3 rows │ step 2                           ",
            " # Sym    Bid   Ask Venue                                               ",
            " 0 NVDA 200.0 201.0 X                                                   ",
            " 1 MSFT  50.0  51.0 Y                                                   ",
            " 2 TSLA 300.0 301.0 Z                                                   ",
            "                                                                        ",
            " step 2 │ cycle 100 ms, last 250 µs │ in 20 rows/s │ shown 20 rows/s    ",
            " ↑↓←→ move  g/G top/tail  / n N search  f filter  s sort  p pause  Enter",
        ],
    );
    rig.key(KeyCode::Enter);
    let screen = rig.screen();
    assert!(screen.join("\n").contains("quotes row #0"), "{screen:?}");
}

#[test]
fn keyed_cells_flash_green_red_or_neutral_where_they_changed() {
    let mut rig = Rig::keyed(60, 8, None);
    rig.upsert(&[
        ("AAPL", 100.0, 101.0, "X"),
        ("MSFT", 50.0, 51.0, "Y"),
        ("NVDA", 200.0, 201.0, "X"),
    ]);
    rig.cycle();
    rig.app.open(QUOTES);
    rig.key(KeyCode::Down); // the cursor off the rows checked
    rig.key(KeyCode::Down);
    for _ in 0..5 {
        rig.tick();
    }
    rig.upsert(&[("AAPL", 100.5, 101.0, "X"), ("MSFT", 49.0, 51.0, "W")]);
    rig.cycle();
    rig.app.prepare(rig.now);
    let area = Rect::new(0, 0, 40, 4);
    let draw = |rig: &Rig| {
        let mut buf = Buffer::empty(area);
        TableView::new(rig.app.view.as_ref().unwrap()).render(area, &mut buf);
        buf
    };
    let buf = draw(&rig);
    let text = lines(&unstyled(&buf));
    assert_eq!(
        text,
        [
            " # Sym    Bid   Ask Venue               ",
            " 0 AAPL 100.5 101.0 X                   ",
            " 1 MSFT  49.0  51.0 W                   ",
            " 2 NVDA 200.0 201.0 X                   ",
        ]
    );
    // Numbers are right-aligned: their last digit; strings: their first letter.
    let x = |name: &str, right: bool| {
        let at = text[0].find(name).unwrap();
        u16::try_from(if right { at + name.len() - 1 } else { at }).unwrap()
    };
    let (bid, ask, venue) = (x("Bid", true), x("Ask", true), x("Venue", false));
    let bg = |x: u16, y: u16| buf[(x, y)].bg;
    assert_eq!(bg(bid, 1), THEME.up[0].bg.unwrap(), "AAPL's bid rose");
    assert_eq!(bg(bid, 2), THEME.down[0].bg.unwrap(), "MSFT's bid fell");
    assert_eq!(
        bg(venue, 2),
        THEME.changed[0].bg.unwrap(),
        "MSFT's venue changed"
    );
    for (x, y) in [(ask, 1), (venue, 1), (ask, 2)] {
        assert_eq!(bg(x, y), Color::Reset, "written, but the same: ({x}, {y})");
    }
    assert_eq!(
        bg(bid, 3),
        THEME.row_selected.bg.unwrap(),
        "NVDA: not written"
    );
    // AAPL deleted: NVDA moves into slot 0, its whole row neutral (not green: its bid is not
    // AAPL's bid rising).
    for _ in 0..5 {
        rig.tick();
    }
    rig.delete(&["AAPL"]);
    rig.cycle();
    rig.app.prepare(rig.now);
    let buf = draw(&rig);
    assert_eq!(
        lines(&unstyled(&buf))[1],
        " 0 NVDA 200.0 201.0 X                   "
    );
    for x in [x("Sym", false), bid, ask, venue] {
        assert_eq!(
            buf[(x, 1)].bg,
            THEME.changed[0].bg.unwrap(),
            "column at {x}"
        );
    }
    assert_eq!(
        buf[(bid, 2)].bg,
        THEME.row_selected.bg.unwrap(),
        "MSFT: no flash"
    );
}
