//! App state tests: key handling, cursor clamping, follow-tail, pause, filter, sort, search,
//! highlights and lag, on a manual engine and a fake clock; and the same for a keyed table,
//! whose rows change in place and which shrinks at the end.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tickertable::flight::MessageMeta;
use tickertable::SubscriptionOptions;

use super::*;
use crate::table_state::Tick;
use crate::testing::{meta, mirror_at, update, Quote, Rig, HISTORY, QUOTES, RECENT, TRADES};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn rows(n: usize, sym: &str, from: f64) -> Vec<(&str, f64)> {
    (0..n).map(|i| (sym, from + i as f64)).collect()
}

#[test]
fn smoke() {
    let mut rig = Rig::new(80, 12);
    assert_eq!(rig.app.tables.len(), 3);
    rig.publish(&rows(3, "AAPL", 100.0));
    rig.cycle();
    assert_eq!(rig.app.tables[TRADES].mirror.len(), 3);
    assert_eq!(rig.app.tables[HISTORY].mirror.len(), 3);
    rig.key(KeyCode::Char('j'));
    assert_eq!(rig.app.list_selected, 1);
    rig.key(KeyCode::Enter);
    assert_eq!(rig.app.view.as_ref().map(TableState::table), Some(RECENT));
    rig.key(KeyCode::Esc);
    assert!(rig.app.view.is_none());
    rig.key(KeyCode::Char('q'));
    assert!(rig.app.quit);
}

#[test]
fn keys_map_to_actions_by_screen_and_mode() {
    let mut rig = Rig::new(80, 12);
    let app = &rig.app;
    let map = |c| app.map_key(key(c)).map(|a| format!("{a:?}"));
    assert_eq!(map(KeyCode::Down).as_deref(), Some("Down"));
    assert_eq!(map(KeyCode::Char('k')).as_deref(), Some("Up"));
    assert_eq!(map(KeyCode::Enter).as_deref(), Some("Open"));
    assert_eq!(map(KeyCode::Char('G')).as_deref(), Some("Bottom"));
    assert_eq!(map(KeyCode::Char('s')), None, "no sort on the table list");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert!(matches!(app.map_key(ctrl_c), Some(Action::Quit)));

    rig.key(KeyCode::Enter);
    let app = &rig.app;
    let map = |c| app.map_key(key(c)).map(|a| format!("{a:?}"));
    for (code, want) in [
        (KeyCode::Enter, "Detail"),
        (KeyCode::Char('c'), "Chart"),
        (KeyCode::Char('/'), "Search"),
        (KeyCode::Char('n'), "NextMatch"),
        (KeyCode::Char('N'), "PrevMatch"),
        (KeyCode::Char('f'), "Filter"),
        (KeyCode::Char('s'), "Sort"),
        (KeyCode::Char('p'), "Pause"),
        (KeyCode::Char('?'), "Help"),
        (KeyCode::Char('g'), "Top"),
        (KeyCode::PageDown, "PageDown"),
        (KeyCode::Char('h'), "Left"),
        (KeyCode::Right, "Right"),
        (KeyCode::Esc, "Back"),
    ] {
        assert_eq!(map(code).as_deref(), Some(want), "{code:?}");
    }
    let ctrl_f = KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL);
    assert!(matches!(app.map_key(ctrl_f), Some(Action::PageDown)));

    rig.key(KeyCode::Char('/'));
    let app = &rig.app;
    assert!(matches!(
        app.map_key(key(KeyCode::Char('q'))),
        Some(Action::Input('q'))
    ));
    assert!(matches!(
        app.map_key(key(KeyCode::Esc)),
        Some(Action::InputCancel)
    ));
    rig.key(KeyCode::Esc);
    assert!(rig.app.prompt.is_none());

    rig.key(KeyCode::Char('?'));
    assert_eq!(rig.app.overlay, Overlay::Help);
    assert!(
        rig.app.map_key(key(KeyCode::Char('j'))).is_none(),
        "help eats keys"
    );
    rig.key(KeyCode::Esc);
    assert_eq!(rig.app.overlay, Overlay::None);
    assert!(rig.app.view.is_some(), "Esc closed only the help");
}

#[test]
fn cursor_clamps_when_blink_rows_vanish() {
    let mut rig = Rig::new(80, 30);
    rig.app.open(TRADES);
    assert!(
        !rig.app.view.as_ref().unwrap().cursor().follows(),
        "blink tables do not follow"
    );
    rig.publish(&rows(10, "AAPL", 100.0));
    rig.cycle();
    for _ in 0..8 {
        rig.key(KeyCode::Down);
    }
    assert_eq!(rig.app.view.as_ref().unwrap().cursor().selected(), 8);
    rig.publish(&rows(10, "MSFT", 200.0));
    rig.cycle();
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!(
        v.cursor().selected(),
        8,
        "a stable cursor: the same line of the new cycle"
    );
    assert_eq!(rig.selected_pos(), Some(18));
    rig.publish(&rows(3, "MSFT", 300.0));
    rig.cycle();
    assert_eq!(
        rig.app.view.as_ref().unwrap().cursor().selected(),
        2,
        "clamped to the last row"
    );
    assert_eq!(rig.selected_pos(), Some(22));
    rig.cycle(); // a cycle with no rows empties a blink table
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!(
        (v.cursor().selected(), v.cursor().top(), rig.view_len()),
        (0, 0, 0)
    );
    assert_eq!(rig.selected_pos(), None);
    rig.key(KeyCode::Down);
    rig.key(KeyCode::PageDown);
    assert_eq!(rig.app.view.as_ref().unwrap().cursor().selected(), 0);
}

#[test]
fn follow_tail_tracks_new_rows_until_the_cursor_moves_up() {
    let mut rig = Rig::new(80, 10); // 6 body rows
    rig.app.open(HISTORY);
    for i in 0..4 {
        rig.publish(&rows(5, "AAPL", 100.0 + f64::from(i)));
        rig.cycle();
        let v = rig.app.view.as_ref().unwrap();
        let len = rig.view_len();
        assert!(v.cursor().follows());
        assert_eq!(v.cursor().selected(), len - 1);
        assert_eq!(v.cursor().top(), len.saturating_sub(6));
    }
    rig.key(KeyCode::Up);
    let pos = rig.selected_pos();
    assert_eq!(pos, Some(18));
    assert!(!rig.app.view.as_ref().unwrap().cursor().follows());
    rig.publish(&rows(5, "AAPL", 50.0));
    rig.cycle();
    assert_eq!(rig.selected_pos(), pos, "the cursor stays on its row");
    rig.key(KeyCode::Char('G'));
    rig.publish(&rows(5, "AAPL", 50.0));
    rig.cycle();
    assert!(rig.app.view.as_ref().unwrap().cursor().follows());
    assert_eq!(rig.selected_pos(), Some(29));
}

#[test]
fn ring_cursor_stays_on_its_row_until_it_is_evicted() {
    let mut rig = Rig::new(80, 12);
    rig.app.open(RECENT);
    rig.publish(&rows(5, "AAPL", 1.0));
    rig.cycle();
    assert_eq!(rig.selected_pos(), Some(4), "rings follow the tail");
    rig.key(KeyCode::Up);
    rig.key(KeyCode::Up);
    assert_eq!(rig.selected_pos(), Some(2));
    rig.publish(&rows(2, "AAPL", 1.0));
    rig.cycle();
    assert_eq!(rig.app.tables[RECENT].mirror.rows(), 2..7);
    assert_eq!(rig.selected_pos(), Some(2), "same row, now the first");
    assert_eq!(rig.app.view.as_ref().unwrap().cursor().selected(), 0);
    rig.publish(&rows(1, "AAPL", 1.0));
    rig.cycle();
    assert_eq!(
        rig.selected_pos(),
        Some(3),
        "evicted: clamped to the oldest row"
    );
}

#[test]
fn pause_freezes_the_rows_counts_pending_updates_and_resumes_the_tail() {
    let mut rig = Rig::new(80, 12);
    rig.app.open(HISTORY);
    rig.publish(&rows(4, "AAPL", 1.0));
    rig.cycle();
    rig.key(KeyCode::Char('p'));
    for _ in 0..3 {
        rig.publish(&rows(2, "AAPL", 1.0));
        rig.cycle();
    }
    let v = rig.app.view.as_ref().unwrap();
    assert!(v.is_paused());
    assert_eq!(v.pending(), 3);
    assert_eq!(rig.view_len(), 4, "the frozen rows");
    assert_eq!(
        rig.app.tables[HISTORY].mirror.len(),
        10,
        "the live rows went on"
    );
    rig.key(KeyCode::Up); // scrolling while paused leaves follow-tail...
    rig.key(KeyCode::Char('p'));
    let v = rig.app.view.as_ref().unwrap();
    assert!(!v.is_paused());
    assert!(v.cursor().follows(), "...and unpausing resumes it");
    assert_eq!(rig.view_len(), 10);
    assert_eq!(rig.selected_pos(), Some(9));
}

#[test]
fn filter_sort_and_search_work_on_the_row_set() {
    let mut rig = Rig::new(80, 12);
    rig.app.open(HISTORY);
    rig.publish(&[
        ("AAPL", 101.0),
        ("MSFT", 99.0),
        ("AAPL", 103.0),
        ("NVDA", 250.0),
    ]);
    rig.cycle();
    rig.key(KeyCode::Char('f'));
    rig.type_line(r#"Sym == "AAPL""#);
    assert_eq!(rig.view_len(), 2);
    rig.publish(&[("AAPL", 102.0), ("MSFT", 98.0)]);
    rig.cycle();
    assert_eq!(rig.view_len(), 3, "new rows are filtered as they arrive");
    assert_eq!(rig.selected_pos(), Some(4), "following the filtered tail");

    rig.key(KeyCode::Char('f'));
    assert_eq!(rig.app.prompt.as_ref().unwrap().text, r#"Sym == "AAPL""#);
    for _ in 0..r#"Sym == "AAPL""#.len() {
        rig.key(KeyCode::Backspace);
    }
    rig.type_line("Price > 100");
    assert_eq!(rig.view_len(), 4);
    rig.key(KeyCode::Char('f'));
    for _ in 0.."Price > 100".len() {
        rig.key(KeyCode::Backspace);
    }
    rig.type_line("Price >> x");
    assert!(rig.app.message.as_ref().unwrap().error);
    assert_eq!(rig.view_len(), 4, "a bad filter leaves the old one");
    rig.key(KeyCode::Char('f'));
    for _ in 0.."Price > 100".len() {
        rig.key(KeyCode::Backspace);
    }
    rig.key(KeyCode::Enter);
    assert!(rig.app.view.as_ref().unwrap().filter().is_none());
    assert_eq!(rig.view_len(), 6);

    // Sort by Price: ascending, descending, off.
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Char('s'));
    let order = |rig: &Rig| -> Vec<u64> {
        let v = rig.app.view.as_ref().unwrap();
        let m = &rig.app.tables[HISTORY].mirror;
        (0..rig.view_len()).filter_map(|i| v.pos_at(m, i)).collect()
    };
    assert_eq!(order(&rig), [5, 1, 0, 4, 2, 3]);
    rig.key(KeyCode::Char('s'));
    assert_eq!(order(&rig), [3, 2, 4, 0, 1, 5]);
    rig.key(KeyCode::Char('s'));
    assert_eq!(order(&rig), [0, 1, 2, 3, 4, 5]);

    // Search.
    rig.key(KeyCode::Char('g'));
    rig.key(KeyCode::Char('/'));
    rig.type_line("aapl");
    assert_eq!(rig.selected_pos(), Some(2));
    rig.key(KeyCode::Char('n'));
    assert_eq!(rig.selected_pos(), Some(4));
    rig.key(KeyCode::Char('n'));
    assert!(
        rig.app.message.as_ref().unwrap().error,
        "no more matches below"
    );
    rig.key(KeyCode::Char('N'));
    assert_eq!(rig.selected_pos(), Some(2));
}

#[test]
fn new_values_flash_up_or_down_per_symbol_and_fade() {
    let mut rig = Rig::new(80, 12);
    rig.app.open(HISTORY);
    rig.publish(&[("AAPL", 100.0), ("MSFT", 50.0)]);
    rig.cycle();
    rig.publish(&[("AAPL", 101.0), ("MSFT", 49.0), ("AAPL", 101.0)]);
    rig.cycle();
    let v = rig.app.view.as_ref().unwrap();
    let price = |pos| v.flashes().get(pos).and_then(|f| f.tick(2)).map(|t| t.0);
    assert_eq!(price(2), Some(Tick::Up), "AAPL rose");
    assert_eq!(price(3), Some(Tick::Down), "MSFT fell");
    assert!(
        v.flashes().get(2).unwrap().tick(1).is_none(),
        "Sym: no flash"
    );
    assert!(v.flashes().get(4).is_none(), "AAPL unchanged: no flash");
    assert!(v.is_animating());
    for _ in 0..5 {
        rig.tick();
    }
    rig.app.prepare(rig.now);
    assert!(!rig.app.view.as_ref().unwrap().is_animating(), "faded");
}

#[test]
fn a_lagging_subscriber_resynchronises_and_says_so() {
    let options = SubscriptionOptions::default().with_capacity(2);
    let mut rig = Rig::with_options(120, 12, options);
    rig.app.open(HISTORY);
    for _ in 0..5 {
        rig.publish(&rows(2, "AAPL", 1.0));
        rig.cycle_unread();
    }
    rig.pump();
    rig.tick();
    assert!(rig.app.lags >= 1);
    assert_eq!(
        rig.app.tables[HISTORY].mirror.len(),
        10,
        "resynced from the snapshot"
    );
    assert_eq!(rig.selected_pos(), Some(9));
    let screen = rig.screen();
    let status = &screen[screen.len() - 2];
    assert!(status.contains("lagged"), "{status}");
    assert!(status.contains("resynced from a snapshot"), "{status}");
}

#[test]
fn resize_changes_the_page_and_keeps_the_cursor_on_screen() {
    let mut rig = Rig::new(80, 30);
    rig.app.open(HISTORY);
    rig.publish(&rows(40, "AAPL", 1.0));
    rig.cycle();
    rig.app.update(Action::Resize(80, 10));
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!(v.cursor().height(), 6);
    assert_eq!((v.cursor().selected(), v.cursor().top()), (39, 34));
    rig.key(KeyCode::PageUp);
    assert_eq!(rig.app.view.as_ref().unwrap().cursor().selected(), 33);
}

#[test]
fn redraws_only_when_something_changed() {
    let mut rig = Rig::new(80, 12);
    rig.draw();
    assert!(!rig.app.needs_redraw());
    rig.key(KeyCode::Down);
    assert!(rig.app.needs_redraw());
    rig.draw();
    rig.tick(); // same step, same status
    assert!(!rig.app.needs_redraw());
}

#[test]
fn tables_listed_later_join_the_list_once() {
    let mut rig = Rig::new(80, 12);
    let mut late = rig.app.tables[HISTORY].info.clone();
    late.name = "late".into();
    rig.app.update(Action::AddTable(late.clone()));
    rig.app.update(Action::AddTable(late));
    assert_eq!(rig.app.tables.len(), 4);
    assert_eq!(rig.app.tables[3].info.name, "late");
    assert_eq!(rig.app.tables[3].mirror.len(), 0);
    rig.tick(); // a status without the new table's counters
    assert!(rig.screen()[5].starts_with(" late"), "{:?}", rig.screen());
}

#[test]
fn steps_and_snapshots_in_several_parts_count_once_and_a_snapshot_revives_a_table() {
    let mut rig = Rig::new(80, 12);
    rig.publish(&rows(4, "AAPL", 1.0));
    rig.cycle();
    let entry = &rig.app.tables[HISTORY];
    let (updates, batch) = (entry.updates, entry.mirror.locate(0).unwrap().0.clone());
    let step = entry.mirror.step().next();
    let mut mirror = entry.mirror.clone();
    // One step's rows in two messages, as a remote source may deliver them.
    for (added, slice) in [(4..6, batch.slice(0, 2)), (6..8, batch.slice(2, 2))] {
        let event = update(&mut mirror, meta(step, 0..0, vec![], added), Some(slice));
        rig.app.update(Action::Data {
            table: HISTORY,
            event,
            at: rig.now,
        });
    }
    let entry = &rig.app.tables[HISTORY];
    assert_eq!(entry.updates, updates + 1);
    assert_eq!(entry.mirror.rows(), 0..8);

    // A snapshot whose rest comes as updates of its step: rows that were there, not new.
    let (updates, shown) = (
        rig.app.tables[HISTORY].updates,
        rig.app.tables[HISTORY].shown,
    );
    let mut mirror = Mirror::new(batch.schema());
    let first = MessageMeta {
        reset: true,
        rows: Some(0..4),
        ..meta(step, 0..0, vec![], 0..2)
    };
    mirror
        .apply_message(&first, Some(&batch.slice(0, 2)))
        .unwrap();
    rig.app.update(Action::Data {
        table: HISTORY,
        event: DataEvent::Snapshot(mirror.clone()),
        at: rig.now,
    });
    let rest = update(
        &mut mirror,
        meta(step, 2..2, vec![], 2..4),
        Some(batch.slice(2, 2)),
    );
    rig.app.update(Action::Data {
        table: HISTORY,
        event: rest,
        at: rig.now,
    });
    let entry = &rig.app.tables[HISTORY];
    assert_eq!(entry.mirror.rows(), 0..4);
    assert_eq!((entry.updates, entry.shown), (updates, shown));

    rig.app.update(Action::Data {
        table: HISTORY,
        event: DataEvent::Failed("the server ended the stream".into()),
        at: rig.now,
    });
    assert!(rig.app.tables[HISTORY].ended.is_some());
    rig.app.update(Action::Data {
        table: HISTORY,
        event: DataEvent::Snapshot(mirror_at(0, &batch.slice(0, 2))),
        at: rig.now,
    });
    assert_eq!(rig.app.tables[HISTORY].ended, None);
    assert_eq!(rig.app.tables[HISTORY].mirror.len(), 2);
}

#[test]
fn filter_expressions_errors_with_positions_and_the_contains_shorthand() {
    let mut rig = Rig::new(80, 12);
    rig.app.open(HISTORY);
    rig.publish(&[
        ("AAPL", 101.0),
        ("MSFT", 99.0),
        ("AAPL", 103.0),
        ("NVDA", 250.0),
    ]);
    rig.cycle();
    let clear = |rig: &mut Rig| {
        rig.key(KeyCode::Char('f'));
        while rig.app.prompt.as_ref().is_some_and(|p| !p.text.is_empty()) {
            rig.key(KeyCode::Backspace);
        }
    };
    rig.key(KeyCode::Char('f'));
    rig.type_line(r#"Price > 100 && Sym in ("AAPL", "NVDA")"#);
    assert_eq!(rig.view_len(), 3);
    let message = rig.app.message.clone().unwrap();
    assert!(!message.error, "{}", message.text);
    assert!(message.text.contains("3 rows match"), "{}", message.text);
    // A new row is tested as it arrives: the mask of the update's rows.
    rig.publish(&[("NVDA", 251.0), ("NVDA", 1.0)]);
    rig.cycle();
    assert_eq!(rig.view_len(), 4);

    clear(&mut rig);
    rig.type_line("Price >");
    let message = rig.app.message.clone().unwrap();
    assert!(message.error);
    assert!(
        message.text.starts_with("filter: at 7: expected"),
        "{}",
        message.text
    );
    assert_eq!(rig.view_len(), 4, "a bad filter leaves the old one");
    clear(&mut rig);
    rig.type_line("Sym > 1");
    let text = rig.app.message.clone().unwrap().text;
    assert_eq!(text, "filter: at 4: cannot apply '>' to Utf8 and Int64");

    // Not an expression, but the shorthand: a text column contains, ignoring case.
    clear(&mut rig);
    rig.type_line("sym ~ VD");
    assert_eq!(rig.view_len(), 3);
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!(v.filter().unwrap().filter().to_string(), "Sym ~ VD");
    rig.key(KeyCode::Char('f'));
    assert_eq!(rig.app.prompt.as_ref().unwrap().text, "Sym ~ VD");
}

/// The `Sym` of each row of the open table's mirror.
fn syms(rig: &Rig, table: usize) -> Vec<String> {
    let m = &rig.app.tables[table].mirror;
    m.rows()
        .map(|p| {
            let (b, r) = m.locate(p).unwrap();
            crate::cells::text_at(b.column(0).as_ref(), r)
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The `Bid` of the row at `pos` of the keyed rig's mirror.
fn bid(rig: &Rig, pos: u64) -> Option<f64> {
    let (b, r) = rig.app.tables[QUOTES].mirror.locate(pos)?;
    crate::cells::num_at(b.column(1).as_ref(), r)
}

fn quotes(syms: &[&'static str], bid: f64) -> Vec<Quote<'static>> {
    syms.iter().map(|&s| (s, bid, bid + 1.0, "X")).collect()
}

#[test]
fn keyed_rows_change_in_place_and_count_as_rows_in() {
    let mut rig = Rig::keyed(80, 12, None);
    rig.upsert(&quotes(&["AAPL", "MSFT", "NVDA"], 100.0));
    rig.cycle();
    assert_eq!(syms(&rig, QUOTES), ["AAPL", "MSFT", "NVDA"]);
    rig.upsert_bids(&[("AAPL", 100.5)]);
    rig.upsert(&quotes(&["TSLA"], 300.0));
    rig.cycle();
    assert_eq!(bid(&rig, 0), Some(100.5), "rewritten in its slot");
    assert_eq!(syms(&rig, QUOTES), ["AAPL", "MSFT", "NVDA", "TSLA"]);
    rig.delete(&["AAPL"]);
    rig.cycle();
    assert_eq!(
        syms(&rig, QUOTES),
        ["TSLA", "MSFT", "NVDA"],
        "the last row moved into the deleted key's slot"
    );
    let e = &rig.app.tables[QUOTES];
    assert_eq!(e.updates, 3);
    // 3 added, then 1 modified and 1 added, then 1 modified (the moved row).
    assert_eq!((e.written, e.shown), (6, 6));
    // Over the 300 ms since the first tick: 6 rows, 20 rows/s (not the table's size moving).
    assert!(
        (e.activity.rows_in - 20.0).abs() < 1e-9,
        "{}",
        e.activity.rows_in
    );
}

#[test]
fn keyed_cursor_stays_on_its_row_and_clamps_as_the_table_shrinks() {
    let mut rig = Rig::keyed(80, 12, None);
    rig.upsert(&quotes(&["A", "B", "C", "D", "E", "F"], 1.0));
    rig.cycle();
    rig.app.open(QUOTES);
    assert!(
        !rig.app.view.as_ref().unwrap().cursor().follows(),
        "keyed tables do not follow"
    );
    assert_eq!(rig.selected_pos(), Some(0));
    for _ in 0..3 {
        rig.key(KeyCode::Down);
    }
    rig.upsert(&quotes(&["D", "G"], 2.0));
    rig.cycle();
    assert_eq!(rig.selected_pos(), Some(3), "the cursor stays on its row");
    assert_eq!(bid(&rig, 3), Some(2.0));
    rig.delete(&["E", "F", "G"]);
    rig.cycle();
    assert_eq!((rig.view_len(), rig.selected_pos()), (4, Some(3)));
    rig.delete(&["C", "D"]);
    rig.cycle();
    assert_eq!(
        (rig.view_len(), rig.selected_pos()),
        (2, Some(1)),
        "clamped to the last row"
    );
    rig.key(KeyCode::Char('G'));
    rig.upsert(&quotes(&["H", "I", "J"], 3.0));
    rig.cycle();
    assert_eq!(rig.selected_pos(), Some(4), "following the tail");
    rig.delete(&["J", "A"]);
    rig.cycle();
    assert_eq!(syms(&rig, QUOTES), ["I", "B", "H"]);
    assert_eq!(rig.selected_pos(), Some(2), "still on the last row");
    rig.delete(&["I", "B", "H"]);
    rig.cycle();
    assert_eq!(rig.app.tables[QUOTES].ended, None);
    assert_eq!((rig.view_len(), rig.selected_pos()), (0, None));
    let screen = rig.screen();
    assert_eq!(screen[2].trim(), "no rows", "{screen:?}");
}

#[test]
fn keyed_filter_and_sort_track_rows_changed_in_place() {
    let mut rig = Rig::keyed(80, 40, None);
    let names: Vec<String> = (0..60).map(|k| format!("K{k:02}")).collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    rig.upsert(
        &names
            .iter()
            .map(|k| (k.as_str(), next(1000) as f64, 0.0, "X"))
            .collect::<Vec<_>>(),
    );
    rig.cycle();
    rig.app.open(QUOTES);
    rig.key(KeyCode::Char('f'));
    rig.type_line("Bid > 500");
    rig.key(KeyCode::Right);
    rig.key(KeyCode::Char('s'));
    let want = |rig: &Rig| -> Vec<u64> {
        let m = &rig.app.tables[QUOTES].mirror;
        let mut kept: Vec<(f64, u64)> = m
            .rows()
            .filter_map(|p| bid(rig, p).filter(|&b| b > 500.0).map(|b| (b, p)))
            .collect();
        kept.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        kept.into_iter().map(|(_, p)| p).collect()
    };
    let got = |rig: &Rig| -> Vec<u64> {
        let v = rig.app.view.as_ref().unwrap();
        let m = &rig.app.tables[QUOTES].mirror;
        (0..rig.view_len()).filter_map(|i| v.pos_at(m, i)).collect()
    };
    let matches = |rig: &Rig| -> Vec<u64> {
        let f = rig.app.view.as_ref().unwrap().filter().unwrap();
        f.matches().iter().copied().collect()
    };
    assert_eq!(got(&rig), want(&rig));
    for cycle in 0..200 {
        let bids: Vec<(&str, f64)> = (0..next(20))
            .map(|_| (names[next(60) as usize].as_str(), next(1000) as f64))
            .collect();
        rig.upsert_bids(&bids);
        // Whole rows that keep the bid: the filter column written, its value unchanged.
        let rows: Vec<Quote<'_>> = (0..next(5))
            .map(|_| {
                let k = names[next(60) as usize].as_str();
                (k, next(1000) as f64, 1.0, "Y")
            })
            .collect();
        rig.upsert(&rows);
        let gone: Vec<&str> = (0..next(if cycle % 7 == 0 { 30 } else { 4 }))
            .map(|_| names[next(60) as usize].as_str())
            .collect();
        rig.delete(&gone);
        rig.cycle();
        assert_eq!(got(&rig), want(&rig), "cycle {cycle}");
        let mut filtered = want(&rig);
        filtered.sort_unstable();
        assert_eq!(matches(&rig), filtered, "cycle {cycle}");
        let len = rig.app.tables[QUOTES].mirror.len() as u64;
        let v = rig.app.view.as_ref().unwrap();
        assert!(v.flashes().positions().all(|p| p < len), "cycle {cycle}");
    }
    // Sort off: the filtered rows by position.
    rig.key(KeyCode::Char('s'));
    rig.key(KeyCode::Char('s'));
    let mut filtered = want(&rig);
    filtered.sort_unstable();
    assert_eq!(got(&rig), filtered);
}

#[test]
fn modified_cells_flash_by_direction_only_where_written_and_changed() {
    let mut rig = Rig::keyed(80, 12, None);
    rig.app.open(QUOTES);
    rig.upsert(&[
        ("AAPL", 100.0, 101.0, "X"),
        ("MSFT", 50.0, 51.0, "Y"),
        ("NVDA", 200.0, 201.0, "X"),
        ("TSLA", 300.0, 301.0, "Z"),
    ]);
    rig.cycle();
    let tick = |rig: &Rig, pos: u64, c: usize| {
        let v = rig.app.view.as_ref().unwrap();
        v.flashes().get(pos).and_then(|f| f.tick(c)).map(|t| t.0)
    };
    let row = |rig: &Rig, pos: u64| (0..4).map(|c| tick(rig, pos, c)).collect::<Vec<_>>();
    let fade = |rig: &mut Rig| {
        for _ in 0..5 {
            rig.tick();
        }
        assert!(rig.app.view.as_ref().unwrap().flashes().is_empty(), "faded");
    };
    assert_eq!(
        row(&rig, 3),
        [Some(Tick::Changed); 4],
        "a new key: the whole row"
    );
    fade(&mut rig);

    rig.upsert(&[
        ("AAPL", 100.5, 101.0, "X"), // the bid rose; the rest written but the same
        ("MSFT", 49.0, 51.0, "W"),   // the bid fell, the venue changed
    ]);
    rig.upsert_bids(&[("NVDA", 200.0)]); // written, the same
    rig.cycle();
    assert_eq!(row(&rig, 0), [None, Some(Tick::Up), None, None]);
    assert_eq!(
        row(&rig, 1),
        [None, Some(Tick::Down), None, Some(Tick::Changed)]
    );
    assert!(rig.app.view.as_ref().unwrap().flashes().get(2).is_none());
    fade(&mut rig);

    // A partial upsert flashes only the columns it wrote.
    rig.upsert_bids(&[("TSLA", 299.0)]);
    rig.cycle();
    assert_eq!(row(&rig, 3), [None, Some(Tick::Down), None, None]);
    // Another cell of the same row, later: both flash, each from its own time.
    rig.upsert(&[("TSLA", 299.0, 302.0, "Z")]);
    rig.cycle();
    assert_eq!(row(&rig, 3), [None, Some(Tick::Down), Some(Tick::Up), None]);
    fade(&mut rig);

    // AAPL deleted: TSLA moves into slot 0. Not a tick of AAPL's values: the whole row,
    // neutral, though its bid is higher than AAPL's was.
    rig.delete(&["AAPL"]);
    rig.cycle();
    assert_eq!(syms(&rig, QUOTES), ["TSLA", "MSFT", "NVDA"]);
    assert_eq!(row(&rig, 0), [Some(Tick::Changed); 4]);
    assert!(
        rig.app
            .view
            .as_ref()
            .unwrap()
            .flashes()
            .positions()
            .all(|p| p < 3),
        "no flash past the end"
    );
    fade(&mut rig);

    // Paused: nothing flashes, updates are pending.
    rig.key(KeyCode::Char('p'));
    rig.upsert(&[("MSFT", 60.0, 61.0, "Y")]);
    rig.cycle();
    let v = rig.app.view.as_ref().unwrap();
    assert!(v.flashes().is_empty());
    assert_eq!(v.pending(), 1);
}

#[test]
fn a_dropped_table_leaves_the_list_and_the_selection_skips_it() {
    let mut rig = Rig::new(80, 12);
    rig.publish(&rows(3, "AAPL", 100.0));
    rig.cycle();
    assert!(rig.screen().iter().any(|l| l.contains("recent")));
    rig.key(KeyCode::Char('j'));
    assert_eq!(rig.app.list_selected, RECENT);
    rig.engine.drop_table("recent").unwrap();
    rig.cycle();
    assert_eq!(rig.app.listed(), [TRADES, HISTORY]);
    assert_eq!(
        rig.app.list_selected, HISTORY,
        "moved off the dropped table"
    );
    let screen = rig.screen();
    assert!(!screen.iter().any(|l| l.contains("recent")), "{screen:#?}");
    assert!(screen[0].contains("2 tables"), "{screen:#?}");
    // Up skips the gap; the dropped table cannot be opened.
    rig.key(KeyCode::Char('k'));
    assert_eq!(rig.app.list_selected, TRADES);
    rig.key(KeyCode::Char('j'));
    assert_eq!(rig.app.list_selected, HISTORY);
    rig.key(KeyCode::Char('G'));
    assert_eq!(rig.app.list_selected, HISTORY);
    rig.app.open(RECENT);
    assert!(rig.app.view.is_none());
    // The other tables go on.
    rig.publish(&rows(2, "MSFT", 10.0));
    rig.cycle();
    assert_eq!(rig.app.tables[HISTORY].mirror.len(), 5);
}
