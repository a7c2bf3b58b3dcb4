//! App state tests: key handling, cursor clamping, follow-tail, pause, filter, sort, search,
//! highlights and lag, on a manual engine and a fake clock.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tickertable::SubscriptionOptions;

use super::*;
use crate::testing::{Rig, HISTORY, RECENT, TRADES};

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
    assert_eq!(rig.app.view.as_ref().map(|v| v.table), Some(RECENT));
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
        !rig.app.view.as_ref().unwrap().follow,
        "blink tables do not follow"
    );
    rig.publish(&rows(10, "AAPL", 100.0));
    rig.cycle();
    for _ in 0..8 {
        rig.key(KeyCode::Down);
    }
    assert_eq!(rig.app.view.as_ref().unwrap().selected, 8);
    rig.publish(&rows(10, "MSFT", 200.0));
    rig.cycle();
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!(
        v.selected, 8,
        "a stable cursor: the same line of the new cycle"
    );
    assert_eq!(rig.selected_pos(), Some(18));
    rig.publish(&rows(3, "MSFT", 300.0));
    rig.cycle();
    assert_eq!(
        rig.app.view.as_ref().unwrap().selected,
        2,
        "clamped to the last row"
    );
    assert_eq!(rig.selected_pos(), Some(22));
    rig.cycle(); // a cycle with no rows empties a blink table
    let v = rig.app.view.as_ref().unwrap();
    assert_eq!((v.selected, v.top, rig.view_len()), (0, 0, 0));
    assert_eq!(rig.selected_pos(), None);
    rig.key(KeyCode::Down);
    rig.key(KeyCode::PageDown);
    assert_eq!(rig.app.view.as_ref().unwrap().selected, 0);
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
        assert!(v.follow);
        assert_eq!(v.selected, len - 1);
        assert_eq!(v.top, len.saturating_sub(6));
    }
    rig.key(KeyCode::Up);
    let pos = rig.selected_pos();
    assert_eq!(pos, Some(18));
    assert!(!rig.app.view.as_ref().unwrap().follow);
    rig.publish(&rows(5, "AAPL", 50.0));
    rig.cycle();
    assert_eq!(rig.selected_pos(), pos, "the cursor stays on its row");
    rig.key(KeyCode::Char('G'));
    rig.publish(&rows(5, "AAPL", 50.0));
    rig.cycle();
    assert!(rig.app.view.as_ref().unwrap().follow);
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
    assert_eq!(rig.app.view.as_ref().unwrap().selected, 0);
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
    assert_eq!(v.pending, 3);
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
    assert!(v.follow, "...and unpausing resumes it");
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
    rig.type_line("Sym == AAPL");
    assert_eq!(rig.view_len(), 2);
    rig.publish(&[("AAPL", 102.0), ("MSFT", 98.0)]);
    rig.cycle();
    assert_eq!(rig.view_len(), 3, "new rows are filtered as they arrive");
    assert_eq!(rig.selected_pos(), Some(4), "following the filtered tail");

    rig.key(KeyCode::Char('f'));
    assert_eq!(rig.app.prompt.as_ref().unwrap().text, "Sym == AAPL");
    for _ in 0.."Sym == AAPL".len() {
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
    assert!(rig.app.view.as_ref().unwrap().filter.is_none());
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
    let price = v.flash_bit(2).unwrap();
    let f = |pos| v.flashes.get(&pos).copied();
    assert_eq!(f(2).map(|f| (f.up >> price) & 1), Some(1), "AAPL rose");
    assert_eq!(f(3).map(|f| (f.down >> price) & 1), Some(1), "MSFT fell");
    assert!(f(4).is_none(), "AAPL unchanged: no flash");
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
    assert_eq!(v.height, 6);
    assert_eq!((v.selected, v.top), (39, 34));
    rig.key(KeyCode::PageUp);
    assert_eq!(rig.app.view.as_ref().unwrap().selected, 33);
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
    let step = entry.mirror.step() + 1;
    // One step's rows in two messages, as a remote source may deliver them.
    for (added, slice) in [(4..6, batch.slice(0, 2)), (6..8, batch.slice(2, 2))] {
        rig.app.update(Action::Data {
            table: HISTORY,
            event: DataEvent::Update(crate::source::Delta {
                step,
                removed: 0..0,
                added,
                batches: vec![slice],
            }),
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
    rig.app.update(Action::Data {
        table: HISTORY,
        event: DataEvent::Snapshot(crate::source::Rows {
            step,
            rows: 0..2,
            batches: vec![batch.slice(0, 2)],
        }),
        at: rig.now,
    });
    rig.app.update(Action::Data {
        table: HISTORY,
        event: DataEvent::Update(crate::source::Delta {
            step,
            removed: 2..2,
            added: 2..4,
            batches: vec![batch.slice(2, 2)],
        }),
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
        event: DataEvent::Snapshot(crate::source::Rows {
            step: step + 1,
            rows: 0..2,
            batches: vec![batch.slice(0, 2)],
        }),
        at: rig.now,
    });
    assert_eq!(rig.app.tables[HISTORY].ended, None);
    assert_eq!(rig.app.tables[HISTORY].mirror.len(), 2);
}
