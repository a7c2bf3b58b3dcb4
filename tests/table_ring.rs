//! Ring tables: the newest `capacity` rows are visible.

mod support;

use std::collections::VecDeque;

use tickertable::test_util::{i64_column, int_schema, manual_engine};
use tickertable::{Error, PublisherOptions, TableKind};

use support::{add, batch_values, drain, int_table, record, updates, values, Mirror, Seen};

fn ring(capacity: usize) -> TableKind {
    TableKind::Ring { capacity }
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(3));
    add(&publisher, 0..5);
    engine.run_cycle();
    assert_eq!(values(&table), vec![2, 3, 4]);
    assert_eq!(table.kind(), ring(3));
    assert_eq!(table.capacity(), Some(3));
}

#[test]
fn ring_of_capacity_zero_is_refused() {
    let engine = manual_engine();
    let err = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_kind(ring(0)),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidOption { option, .. } if option == "ring capacity"),
        "{err:?}"
    );
    assert!(engine.table("t").is_none());
}

#[test]
fn ring_rows_staged_before_a_cycle_are_invisible_until_it_runs() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(10));
    add(&publisher, 0..3);
    engine.run_cycle();
    add(&publisher, 3..6);
    assert_eq!(values(&table), vec![0, 1, 2]);
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn ring_keeps_every_row_until_it_is_full() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(5));
    for i in 0..5 {
        add(&publisher, i..i + 1);
        engine.run_cycle();
        assert_eq!(values(&table), (0..=i).collect::<Vec<_>>());
    }
}

#[test]
fn ring_drops_oldest_rows_when_full() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(4));
    add(&publisher, 0..4);
    engine.run_cycle();
    add(&publisher, 4..6);
    engine.run_cycle();
    assert_eq!(values(&table), vec![2, 3, 4, 5]);
    assert_eq!(table.snapshot().rows(), 2..6);
}

#[test]
fn ring_keeps_the_newest_rows_in_order_across_many_wraparounds() {
    let engine = manual_engine();
    let capacity = 7;
    let (table, publisher) = int_table(&engine, "t", ring(capacity));
    let mut model: VecDeque<i64> = VecDeque::new();
    let mut next = 0_i64;
    for cycle in 0..60_i64 {
        // Sizes 0..=9, several batches some cycles.
        for b in 0..(cycle % 3) {
            let n = (cycle * 7 + b * 5) % 10;
            if n > 0 {
                add(&publisher, next..next + n);
                model.extend(next..next + n);
                next += n;
            }
        }
        while model.len() > capacity {
            model.pop_front();
        }
        engine.run_cycle();
        assert_eq!(values(&table), Vec::from(model.clone()), "cycle {cycle}");
        let snap = table.snapshot();
        assert_eq!(snap.rows().end, u64::try_from(next).unwrap());
        assert_eq!(snap.num_rows(), model.len());
    }
}

#[test]
fn ring_single_batch_larger_than_capacity_keeps_its_newest_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(5));
    let (_h, seen) = record(&table);
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    add(&publisher, 3..20);
    let s2 = engine.run_cycle();
    assert_eq!(values(&table), vec![15, 16, 17, 18, 19]);
    assert_eq!(table.snapshot().rows(), 15..20);
    assert_eq!(
        *seen.lock(),
        vec![
            Seen {
                step: s1,
                removed: 0..0,
                added: 0..3,
                values: vec![0, 1, 2],
            },
            // Rows 3..15 were appended and evicted in the same cycle: in neither range.
            Seen {
                step: s2,
                removed: 0..3,
                added: 15..20,
                values: vec![15, 16, 17, 18, 19],
            },
        ]
    );
}

#[test]
fn ring_first_batch_larger_than_capacity_keeps_its_newest_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(3));
    let (_h, seen) = record(&table);
    add(&publisher, 0..10);
    engine.run_cycle();
    assert_eq!(values(&table), vec![7, 8, 9]);
    let seen = seen.lock();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].removed.is_empty());
    assert_eq!(seen[0].added, 7..10);
    assert_eq!(seen[0].values, vec![7, 8, 9]);
}

#[test]
fn ring_many_small_batches_in_one_cycle_past_capacity_keep_the_newest_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(4));
    let (_h, seen) = record(&table);
    add(&publisher, 0..2);
    engine.run_cycle();
    for i in 2..13 {
        add(&publisher, i..i + 1);
    }
    engine.run_cycle();
    assert_eq!(values(&table), vec![9, 10, 11, 12]);
    let seen = seen.lock();
    assert_eq!(seen[1].removed, 0..2);
    assert_eq!(seen[1].added, 9..13);
    assert_eq!(seen[1].values, vec![9, 10, 11, 12]);
}

#[test]
fn ring_update_evicts_a_prefix_when_partly_full() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(5));
    let sub = table.subscribe().unwrap();
    add(&publisher, 0..4);
    let s1 = engine.run_cycle();
    add(&publisher, 4..7);
    let s2 = engine.run_cycle();
    let events = drain(&sub);
    assert_eq!(events.len(), 3);
    let got = updates(&events[1..]);
    assert_eq!(
        got,
        vec![
            Seen {
                step: s1,
                removed: 0..0,
                added: 0..4,
                values: vec![0, 1, 2, 3],
            },
            Seen {
                step: s2,
                removed: 0..2,
                added: 4..7,
                values: vec![4, 5, 6],
            },
        ]
    );
}

#[test]
fn ring_cycle_without_rows_leaves_it_unchanged() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(3));
    let (_h, seen) = record(&table);
    add(&publisher, 0..5);
    let s1 = engine.run_cycle();
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(values(&table), vec![2, 3, 4]);
    assert_eq!(table.snapshot().step(), s1);
    assert_eq!(seen.lock().len(), 1);
}

#[test]
fn ring_subscription_mirror_equals_the_table_across_wraparound() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(6));
    let sub = table.subscribe().unwrap();
    let mut mirror = Mirror::default();
    let mut next = 0;
    for cycle in 0..40_i64 {
        let n = (cycle * 5) % 11;
        if n > 0 {
            add(&publisher, next..next + n);
            next += n;
        }
        engine.run_cycle();
        for e in drain(&sub) {
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&table.snapshot());
    }
}

#[test]
fn ring_snapshot_slice_after_wraparound_returns_rows_by_position() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(6));
    add(&publisher, 0..4);
    engine.run_cycle();
    add(&publisher, 4..7);
    engine.run_cycle();
    add(&publisher, 7..10);
    engine.run_cycle();
    let snap = table.snapshot();
    assert_eq!(snap.rows(), 4..10);
    assert_eq!(batch_values(&snap.slice(4..10)), vec![4, 5, 6, 7, 8, 9]);
    assert_eq!(batch_values(&snap.slice(5..8)), vec![5, 6, 7]);
    assert_eq!(batch_values(&snap.slice(0..5)), vec![4]);
    assert!(snap.slice(0..4).is_empty());
    assert_eq!(batch_values(&snap.slice(9..50)), vec![9]);
}

#[test]
fn ring_to_batch_returns_the_newest_rows_in_order() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(4));
    add(&publisher, 0..3);
    engine.run_cycle();
    add(&publisher, 3..6);
    engine.run_cycle();
    let batch = table.snapshot().to_batch().unwrap();
    assert_eq!(i64_column([&batch], 0), vec![2, 3, 4, 5]);
}

#[test]
fn ring_snapshot_held_across_evictions_keeps_its_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(3));
    add(&publisher, 0..3);
    engine.run_cycle();
    let held = table.snapshot();
    add(&publisher, 3..9);
    engine.run_cycle();
    assert_eq!(support::snapshot_values(&held), vec![0, 1, 2]);
    assert_eq!(held.rows(), 0..3);
    assert_eq!(values(&table), vec![6, 7, 8]);
}

#[test]
fn ring_of_capacity_one_keeps_only_the_last_row() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(1));
    for i in 0..5 {
        add(&publisher, i * 2..i * 2 + 2);
        engine.run_cycle();
        assert_eq!(values(&table), vec![i * 2 + 1]);
    }
}

#[test]
fn ring_snapshot_slice_matches_a_model_for_every_range_after_eviction() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", ring(9));
    let mut next = 0_i64;
    for sizes in [vec![2, 3], vec![4, 1, 2], vec![3], vec![1, 1, 5]] {
        for n in sizes {
            add(&publisher, next..next + n);
            next += n;
        }
        engine.run_cycle();
        let snap = table.snapshot();
        let rows = snap.rows();
        assert_eq!(rows.end, u64::try_from(next).unwrap());
        for a in 0..=rows.end + 1 {
            for b in a..=rows.end + 2 {
                let lo = a.clamp(rows.start, rows.end);
                let hi = b.clamp(rows.start, rows.end);
                let want: Vec<i64> = (lo..hi.max(lo))
                    .map(|p| i64::try_from(p).unwrap())
                    .collect();
                assert_eq!(
                    batch_values(&snap.slice(a..b)),
                    want,
                    "slice {a}..{b} of {rows:?}"
                );
            }
        }
    }
}
