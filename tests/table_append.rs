//! Append tables: every row ever appended stays visible.

mod support;

use tickertable::test_util::{i64_column, manual_engine};
use tickertable::{Event, Step, TableKind};

use support::{add, batch_values, drain, int_table, record, updates, values, Mirror, Seen};

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..3);
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2]);
    assert_eq!(table.kind(), TableKind::Append);
}

#[test]
fn append_rows_staged_before_a_cycle_are_invisible_until_it_runs() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..4);
    add(&publisher, 4..6);
    assert_eq!(table.num_rows(), 0);
    assert!(table.snapshot().is_empty());
    engine.run_cycle();
    assert_eq!(table.num_rows(), 6);
    assert_eq!(values(&table), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn append_keeps_every_row_across_cycles() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let mut expected = Vec::new();
    for cycle in 0..20_i64 {
        let rows = cycle * 10..cycle * 10 + cycle % 4;
        expected.extend(rows.clone());
        if !rows.is_empty() {
            add(&publisher, rows);
        }
        engine.run_cycle();
        assert_eq!(values(&table), expected);
    }
    assert_eq!(table.snapshot().rows(), 0..expected.len() as u64);
}

#[test]
fn append_cycle_without_rows_leaves_the_table_and_its_snapshot_step_unchanged() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let (_h, seen) = record(&table);
    add(&publisher, 0..2);
    let s1 = engine.run_cycle();
    let s2 = engine.run_cycle();
    assert_eq!(s2, s1.next());
    assert_eq!(values(&table), vec![0, 1]);
    assert_eq!(table.snapshot().step(), s1);
    assert_eq!(
        seen.lock().len(),
        1,
        "a cycle with no change makes no update"
    );
}

#[test]
fn append_updates_report_only_added_ranges_and_their_values() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let (_h, seen) = record(&table);
    let sub = table.subscribe().unwrap();

    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    add(&publisher, 3..4);
    add(&publisher, 4..7);
    let s2 = engine.run_cycle();

    let expected = vec![
        Seen {
            step: s1,
            removed: 0..0,
            added: 0..3,
            values: vec![0, 1, 2],
        },
        Seen {
            step: s2,
            removed: 0..0,
            added: 3..7,
            values: vec![3, 4, 5, 6],
        },
    ];
    assert_eq!(*seen.lock(), expected);

    let events = drain(&sub);
    assert!(matches!(&events[0], Event::Snapshot(s) if s.is_empty()));
    let subbed = updates(&events[1..]);
    assert_eq!(subbed.len(), 2);
    for (got, want) in subbed.iter().zip(&expected) {
        assert_eq!(got.step, want.step);
        assert_eq!(got.added, want.added);
        assert_eq!(got.values, want.values);
        assert!(got.removed.is_empty());
    }
}

#[test]
fn append_subscription_mirror_equals_the_table() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 100..105);
    engine.run_cycle();
    let sub = table.subscribe().unwrap();
    let mut mirror = Mirror::default();
    for i in 0..10 {
        add(&publisher, i * 3..i * 3 + 2);
        engine.run_cycle();
        for e in drain(&sub) {
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&table.snapshot());
    }
    assert_eq!(mirror.values().len(), 25);
}

#[test]
fn append_snapshot_slice_returns_rows_at_the_given_positions_across_chunks() {
    // Batches of 5,000 rows stay chunks of their own (small ones would be coalesced).
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..5_000);
    add(&publisher, 5_000..10_000);
    engine.run_cycle();
    add(&publisher, 10_000..15_000);
    engine.run_cycle();
    let snap = table.snapshot();
    assert_eq!(snap.rows(), 0..15_000);
    assert_eq!(snap.num_chunks(), 3);
    assert_eq!(
        batch_values(&snap.slice(4_998..10_002)),
        (4_998..10_002).collect::<Vec<_>>()
    );
    assert_eq!(
        batch_values(&snap.slice(5_000..5_003)),
        vec![5_000, 5_001, 5_002]
    );
    assert_eq!(batch_values(&snap.slice(14_999..15_000)), vec![14_999]);
    assert_eq!(
        batch_values(&snap.slice(0..15_000)),
        (0..15_000).collect::<Vec<_>>()
    );
    // Clamped to the snapshot's rows.
    assert_eq!(
        batch_values(&snap.slice(14_998..20_000)),
        vec![14_998, 14_999]
    );
    assert!(snap.slice(15_000..15_020).is_empty());
    assert!(snap.slice(5..5).is_empty());
}

#[test]
fn small_cycles_of_an_append_table_are_coalesced_into_few_chunks() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    for i in 0..3_000 {
        add(&publisher, i..i + 1);
        engine.run_cycle();
    }
    let snap = table.snapshot();
    assert_eq!(values(&table), (0..3_000).collect::<Vec<_>>());
    assert!(snap.num_chunks() <= 12, "{} chunks", snap.num_chunks());
}

#[test]
fn append_to_batch_returns_every_row_in_order() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..3);
    engine.run_cycle();
    add(&publisher, 3..5);
    engine.run_cycle();
    let batch = table.snapshot().to_batch().unwrap();
    assert_eq!(batch.num_rows(), 5);
    assert_eq!(batch.schema(), *table.schema());
    assert_eq!(i64_column([&batch], 0), vec![0, 1, 2, 3, 4]);
}

#[test]
fn append_to_batch_of_an_empty_table_is_an_empty_batch() {
    let engine = manual_engine();
    let (table, _publisher) = int_table(&engine, "t", TableKind::Append);
    let batch = table.snapshot().to_batch().unwrap();
    assert_eq!(batch.num_rows(), 0);
    assert_eq!(batch.num_columns(), 1);
}

#[test]
fn append_snapshot_taken_earlier_is_not_changed_by_later_cycles() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    let old = table.snapshot();
    add(&publisher, 3..6);
    let s2 = engine.run_cycle();
    assert_eq!(old.step(), s1);
    assert_eq!(old.rows(), 0..3);
    assert_eq!(support::snapshot_values(&old), vec![0, 1, 2]);
    let new = table.snapshot();
    assert_eq!(new.step(), s2);
    assert_eq!(new.rows(), 0..6);
}

#[test]
fn append_snapshot_of_a_new_table_is_empty_at_the_creation_step() {
    let engine = manual_engine();
    engine.run_cycle();
    engine.run_cycle();
    let (table, _publisher) = int_table(&engine, "t", TableKind::Append);
    let snap = table.snapshot();
    assert_eq!(snap.step(), Step::new(2));
    assert_eq!(snap.rows(), 0..0);
    assert_eq!(snap.num_rows(), 0);
    assert_eq!(snap.schema(), table.schema());
}

#[test]
fn append_batches_of_one_cycle_land_in_the_order_they_were_added() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 50..52);
    add(&publisher, 0..1);
    add(&publisher, 30..33);
    engine.run_cycle();
    assert_eq!(values(&table), vec![50, 51, 0, 30, 31, 32]);
}

#[test]
fn append_snapshot_slice_matches_a_model_for_every_range() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    // Chunks of sizes 1, 3, 1, 5, 2, 1, 4 over three cycles.
    let mut next = 0;
    for (cycle, sizes) in [vec![1, 3], vec![1, 5, 2], vec![1, 4]]
        .into_iter()
        .enumerate()
    {
        for n in sizes {
            add(&publisher, next..next + n);
            next += n;
        }
        engine.run_cycle();
        let snap = table.snapshot();
        let model: Vec<i64> = (0..next).collect();
        let end = u64::try_from(next).unwrap();
        for a in 0..=end + 1 {
            for b in a..=end + 2 {
                let want: Vec<i64> = model
                    [usize::try_from(a.min(end)).unwrap()..usize::try_from(b.min(end)).unwrap()]
                    .to_vec();
                assert_eq!(
                    batch_values(&snap.slice(a..b)),
                    want,
                    "cycle {cycle}, slice {a}..{b}"
                );
            }
        }
    }
}
