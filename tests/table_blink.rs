//! Blink tables: only the rows of the latest cycle are visible.

mod support;

use tickertable::test_util::{i64_column, int_schema, manual_engine};
use tickertable::{DynamicWriterOptions, Event, TableKind, Value};

use support::{
    add, batch_values, drain, int_table, record, snapshot_values, updates, values, Mirror, Seen,
};

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..3);
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2]);
    assert_eq!(table.kind(), TableKind::Blink);
}

#[test]
fn blink_is_the_default_kind_of_a_publisher_table() {
    let engine = manual_engine();
    let (table, _p) = engine
        .table_publisher("t", int_schema(), tickertable::PublisherOptions::default())
        .unwrap();
    assert_eq!(table.kind(), TableKind::Blink);
}

#[test]
fn blink_rows_staged_before_a_cycle_are_invisible_until_it_runs() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..2);
    add(&publisher, 2..5);
    assert_eq!(table.num_rows(), 0);
    assert!(values(&table).is_empty());
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2, 3, 4]);
}

#[test]
fn blink_shows_only_the_latest_cycles_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..3);
    engine.run_cycle();
    add(&publisher, 10..12);
    add(&publisher, 12..13);
    engine.run_cycle();
    assert_eq!(values(&table), vec![10, 11, 12]);
    assert_eq!(table.snapshot().rows(), 3..6);
    add(&publisher, 20..21);
    engine.run_cycle();
    assert_eq!(values(&table), vec![20]);
    assert_eq!(table.snapshot().rows(), 6..7);
}

#[test]
fn blink_empties_on_a_cycle_with_no_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..4);
    engine.run_cycle();
    assert_eq!(table.num_rows(), 4);
    let s2 = engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
    assert!(table.snapshot().is_empty());
    assert_eq!(table.snapshot().step(), s2);
    assert_eq!(table.snapshot().num_chunks(), 0);
}

#[test]
fn blink_updates_remove_the_previous_window_and_add_the_new_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let (_h, seen) = record(&table);
    let sub = table.subscribe().unwrap();

    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    add(&publisher, 3..5);
    let s2 = engine.run_cycle();
    let s3 = engine.run_cycle(); // empties
    let _s4 = engine.run_cycle(); // already empty: no update
    add(&publisher, 7..8);
    let s5 = engine.run_cycle();

    let expected = vec![
        Seen {
            step: s1,
            removed: 0..0,
            added: 0..3,
            values: vec![0, 1, 2],
        },
        Seen {
            step: s2,
            removed: 0..3,
            added: 3..5,
            values: vec![3, 4],
        },
        Seen {
            step: s3,
            removed: 3..5,
            added: 5..5,
            values: vec![],
        },
        Seen {
            step: s5,
            removed: 5..5,
            added: 5..6,
            values: vec![7],
        },
    ];
    let got = seen.lock().clone();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(g.step, w.step);
        assert_eq!(g.values, w.values);
        assert_eq!(g.added, w.added);
        // Empty ranges may sit anywhere; non-empty ones must be exact.
        if w.removed.is_empty() {
            assert!(g.removed.is_empty(), "{g:?}");
        } else {
            assert_eq!(g.removed, w.removed);
        }
    }

    let events = drain(&sub);
    assert!(matches!(&events[0], Event::Snapshot(s) if s.is_empty()));
    assert_eq!(updates(&events[1..]), got);
}

#[test]
fn blink_subscription_mirror_equals_the_table_every_cycle() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..2);
    engine.run_cycle();
    let sub = table.subscribe().unwrap();
    let mut mirror = Mirror::default();
    for i in 0..12_i64 {
        if i % 3 != 0 {
            add(&publisher, i * 10..i * 10 + i);
        }
        engine.run_cycle();
        for e in drain(&sub) {
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&table.snapshot());
        assert_eq!(mirror.values(), values(&table));
    }
}

#[test]
fn blink_positions_keep_counting_across_cycles() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..3);
    engine.run_cycle();
    engine.run_cycle();
    add(&publisher, 0..2);
    engine.run_cycle();
    assert_eq!(table.snapshot().rows(), 3..5);
}

#[test]
fn blink_snapshot_slice_uses_absolute_positions() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..5);
    engine.run_cycle();
    add(&publisher, 100..104);
    add(&publisher, 104..106);
    engine.run_cycle();
    let snap = table.snapshot();
    assert_eq!(snap.rows(), 5..11);
    assert_eq!(batch_values(&snap.slice(6..9)), vec![101, 102, 103]);
    assert_eq!(batch_values(&snap.slice(8..11)), vec![103, 104, 105]);
    assert_eq!(batch_values(&snap.slice(0..7)), vec![100, 101]);
    assert!(snap.slice(0..5).is_empty());
}

#[test]
fn blink_to_batch_returns_only_this_cycles_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..5);
    engine.run_cycle();
    add(&publisher, 5..7);
    add(&publisher, 7..8);
    engine.run_cycle();
    let batch = table.snapshot().to_batch().unwrap();
    assert_eq!(i64_column([&batch], 0), vec![5, 6, 7]);
}

#[test]
fn blink_snapshot_keeps_its_rows_after_the_table_empties() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    let held = table.snapshot();
    engine.run_cycle();
    assert!(table.snapshot().is_empty());
    assert_eq!(held.step(), s1);
    assert_eq!(snapshot_values(&held), vec![0, 1, 2]);
}

#[test]
fn blink_snapshot_step_does_not_move_while_the_table_stays_empty() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..1);
    engine.run_cycle();
    let emptied = engine.run_cycle();
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(table.snapshot().step(), emptied);
    assert!(engine.step() > emptied);
}

#[test]
fn blink_row_writer_rows_blink_too() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "t",
            int_schema(),
            DynamicWriterOptions::default().with_kind(TableKind::Blink),
        )
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.write_row(&[Value::Int(2)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
    w.write_row(&[Value::Int(3)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![3]);
    engine.run_cycle();
    assert!(values(dtw.table()).is_empty());
}
