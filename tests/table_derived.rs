//! Derived tables: `ring_table`, `blink_to_append_only` and `tail`, updated in the same cycle
//! as their source.

mod support;

use std::sync::Arc;

use parking_lot::Mutex;
use tickertable::test_util::{int_schema, manual_engine};
use tickertable::{DynamicWriterOptions, Error, Event, Listener, TableKind, TableUpdate, Value};

use support::{add, drain, int_table, record, values, Mirror, Seen};

#[derive(Debug, thiserror::Error)]
#[error("feed broke")]
struct FeedBroke;

/// A listener that records its updates' steps and the failure it got.
#[derive(Clone, Default)]
struct Watch {
    steps: Arc<Mutex<Vec<tickertable::Step>>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Listener for Watch {
    fn on_update(&mut self, update: &TableUpdate) {
        self.steps.lock().push(update.step());
    }

    fn on_failure(&mut self, error: &Error) {
        *self.failure.lock() = Some(error.to_string());
    }
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 3).unwrap();
    add(&publisher, 0..5);
    engine.run_cycle();
    assert_eq!(values(&ring), vec![2, 3, 4]);
    assert_eq!(ring.kind(), TableKind::Ring { capacity: 3 });
}

#[test]
fn ring_table_of_a_blink_source_keeps_the_newest_rows_across_cycles() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 4).unwrap();
    add(&publisher, 0..3);
    engine.run_cycle();
    assert_eq!(values(&ring), vec![0, 1, 2]);
    engine.run_cycle(); // the source empties; the ring keeps its rows
    assert!(values(&source).is_empty());
    assert_eq!(values(&ring), vec![0, 1, 2]);
    add(&publisher, 3..6);
    engine.run_cycle();
    assert_eq!(values(&ring), vec![2, 3, 4, 5]);
}

#[test]
fn derived_tables_update_in_the_same_cycle_as_their_source() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 10).unwrap();
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    let tail = engine.tail("tail", &source, 2).unwrap();
    let (_hs, src_seen) = record(&source);
    let (_hr, ring_seen) = record(&ring);
    let (_ha, all_seen) = record(&all);
    let (_ht, tail_seen) = record(&tail);
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    // Every table shows this cycle's rows right after it, at the same step.
    assert_eq!(values(&ring), vec![0, 1, 2]);
    assert_eq!(values(&all), vec![0, 1, 2]);
    assert_eq!(values(&tail), vec![1, 2]);
    for t in [&source, &ring, &all, &tail] {
        assert_eq!(t.snapshot().step(), s1, "{}", t.name());
    }
    for seen in [&src_seen, &ring_seen, &all_seen, &tail_seen] {
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].step, s1);
    }
}

#[test]
fn ring_table_starts_with_the_sources_current_rows() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    add(&publisher, 0..10);
    engine.run_cycle();
    let ring = engine.ring_table("ring", &source, 4).unwrap();
    assert_eq!(values(&ring), vec![6, 7, 8, 9]);
    let sub = ring.subscribe().unwrap();
    add(&publisher, 10..12);
    engine.run_cycle();
    assert_eq!(values(&ring), vec![8, 9, 10, 11]);
    let mut mirror = Mirror::default();
    for e in drain(&sub) {
        assert!(mirror.on_event(&e));
    }
    mirror.assert_matches(&ring.snapshot());
}

#[test]
fn blink_to_append_only_keeps_every_row_its_blink_source_ever_shows() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    assert_eq!(all.kind(), TableKind::Append);
    let mut expected = Vec::new();
    for i in 0..10_i64 {
        if i % 4 != 3 {
            let n = i % 3 + 1;
            add(&publisher, i * 10..i * 10 + n);
            expected.extend(i * 10..i * 10 + n);
        }
        engine.run_cycle();
        assert_eq!(values(&all), expected);
    }
}

#[test]
fn blink_to_append_only_starts_with_the_sources_current_rows() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    add(&publisher, 0..3);
    engine.run_cycle();
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    assert_eq!(values(&all), vec![0, 1, 2]);
    engine.run_cycle();
    add(&publisher, 3..4);
    engine.run_cycle();
    assert_eq!(values(&all), vec![0, 1, 2, 3]);
}

#[test]
fn blink_to_append_only_with_limit_refuses_rows_past_it_and_counts_them() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let all = engine
        .blink_to_append_only("all", &source, Some(5))
        .unwrap();
    assert_eq!(all.capacity(), Some(5));
    let (_h, seen) = record(&all);

    add(&publisher, 0..3);
    engine.run_cycle();
    assert_eq!(engine.last_cycle().unwrap().rows_dropped, 0);

    add(&publisher, 3..7);
    engine.run_cycle();
    assert_eq!(values(&all), vec![0, 1, 2, 3, 4]);
    assert_eq!(engine.last_cycle().unwrap().rows_dropped, 2);

    add(&publisher, 7..10);
    engine.run_cycle();
    assert_eq!(values(&all), vec![0, 1, 2, 3, 4]);
    assert_eq!(engine.last_cycle().unwrap().rows_dropped, 3);

    engine.run_cycle();
    assert_eq!(engine.last_cycle().unwrap().rows_dropped, 0);

    let seen = seen.lock();
    assert_eq!(
        seen.len(),
        2,
        "a cycle whose rows were all refused is no update"
    );
    assert_eq!(seen[1].added, 3..5);
    assert_eq!(seen[1].values, vec![3, 4]);
}

#[test]
fn blink_to_append_only_with_limit_keeps_the_oldest_rows_of_a_big_first_batch() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let all = engine
        .blink_to_append_only("all", &source, Some(3))
        .unwrap();
    add(&publisher, 0..10);
    let stats_step = engine.run_cycle();
    assert_eq!(values(&all), vec![0, 1, 2]);
    let stats = engine.last_cycle().unwrap();
    assert_eq!(stats.step, stats_step);
    assert_eq!(stats.rows_dropped, 7);
}

#[test]
fn tail_of_a_blink_source_shows_the_last_rows_of_each_cycle() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let tail = engine.tail("tail", &source, 3).unwrap();
    assert_eq!(tail.kind(), TableKind::Blink);
    let sub = tail.subscribe().unwrap();
    add(&publisher, 0..10);
    engine.run_cycle();
    assert_eq!(values(&tail), vec![7, 8, 9]);
    add(&publisher, 10..12);
    engine.run_cycle();
    assert_eq!(values(&tail), vec![10, 11]);
    engine.run_cycle();
    assert!(values(&tail).is_empty(), "a tail of a blink table blinks");
    let mut mirror = Mirror::default();
    for e in drain(&sub) {
        assert!(mirror.on_event(&e));
    }
    mirror.assert_matches(&tail.snapshot());
}

#[test]
fn tail_of_a_blink_source_starts_with_the_last_rows_of_its_current_cycle() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    add(&publisher, 0..5);
    engine.run_cycle();
    let tail = engine.tail("tail", &source, 2).unwrap();
    assert_eq!(values(&tail), vec![3, 4]);
    let (_h, seen) = record(&tail);
    let s2 = engine.run_cycle(); // the source empties, so does its tail
    assert!(values(&tail).is_empty());
    let seen = seen.lock();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].step, s2);
    assert_eq!(seen[0].removed, 3..5);
}

#[test]
fn tail_of_an_append_source_keeps_the_last_rows_across_cycles() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    add(&publisher, 0..4);
    engine.run_cycle();
    let tail = engine.tail("tail", &source, 3).unwrap();
    assert_eq!(tail.kind(), TableKind::Ring { capacity: 3 });
    assert_eq!(values(&tail), vec![1, 2, 3]);
    add(&publisher, 4..5);
    engine.run_cycle();
    assert_eq!(values(&tail), vec![2, 3, 4]);
    engine.run_cycle();
    assert_eq!(values(&tail), vec![2, 3, 4]);
}

#[test]
fn tail_of_a_ring_source_keeps_the_last_rows() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Ring { capacity: 5 });
    let tail = engine.tail("tail", &source, 2).unwrap();
    add(&publisher, 0..7);
    engine.run_cycle();
    assert_eq!(values(&source), vec![2, 3, 4, 5, 6]);
    assert_eq!(values(&tail), vec![5, 6]);
    add(&publisher, 7..8);
    engine.run_cycle();
    assert_eq!(values(&tail), vec![6, 7]);
}

#[test]
fn tail_of_zero_rows_is_refused() {
    let engine = manual_engine();
    let (source, _p) = int_table(&engine, "src", TableKind::Blink);
    assert!(matches!(
        engine.tail("tail", &source, 0),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        engine.ring_table("ring", &source, 0),
        Err(Error::InvalidOption { .. })
    ));
    assert!(engine.table("tail").is_none());
    assert!(engine.table("ring").is_none());
}

#[test]
fn derived_table_of_a_derived_table_updates_in_the_same_cycle() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    let ring = engine.ring_table("ring", &all, 5).unwrap();
    let tail = engine.tail("tail", &ring, 2).unwrap();
    let (_h, seen) = record(&tail);
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    add(&publisher, 3..8);
    let s2 = engine.run_cycle();
    assert_eq!(values(&all), (0..8).collect::<Vec<_>>());
    assert_eq!(values(&ring), vec![3, 4, 5, 6, 7]);
    assert_eq!(values(&tail), vec![6, 7]);
    assert_eq!(
        *seen.lock(),
        vec![
            Seen {
                step: s1,
                removed: 0..0,
                added: 1..3,
                values: vec![1, 2],
            },
            Seen {
                step: s2,
                removed: 1..3,
                added: 6..8,
                values: vec![6, 7],
            },
        ]
    );
}

#[test]
fn derived_table_of_a_table_from_another_engine_is_refused() {
    let engine = manual_engine();
    let other = manual_engine();
    let (source, _p) = int_table(&other, "src", TableKind::Blink);
    let err = engine.ring_table("ring", &source, 3).unwrap_err();
    assert!(
        matches!(err, Error::NoSuchTable { ref table } if table == "src"),
        "{err:?}"
    );
}

#[test]
fn cycle_stats_count_rows_of_derived_tables() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let _ring = engine.ring_table("ring", &source, 2).unwrap();
    add(&publisher, 0..3);
    engine.run_cycle();
    let stats = engine.last_cycle().unwrap();
    // 3 into the blink table, 2 into the ring (the third was appended and evicted at once).
    assert_eq!(stats.rows_appended, 5);
    assert_eq!(stats.tables_changed, 2);
    assert_eq!(stats.rows_removed, 0);
    engine.run_cycle();
    let stats = engine.last_cycle().unwrap();
    // The blink table empties; the ring does not change.
    assert_eq!(stats.rows_appended, 0);
    assert_eq!(stats.rows_removed, 3);
    assert_eq!(stats.tables_changed, 1);
}

#[test]
fn derived_tables_are_consistent_with_their_source_in_a_read() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    let ring = engine.ring_table("ring", &source, 3).unwrap();
    for i in 0..5 {
        add(&publisher, i * 2..i * 2 + 2);
        engine.run_cycle();
        engine.read(|view| {
            let src = support::snapshot_values(&view.snapshot(&source));
            let r = support::snapshot_values(&view.snapshot(&ring));
            assert_eq!(r, src[src.len().saturating_sub(3)..].to_vec());
        });
    }
}

#[test]
fn source_failure_fails_its_derived_tables() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 10).unwrap();
    let watch = Watch::default();
    let _h = ring.listen(watch.clone()).unwrap();
    let sub = ring.subscribe().unwrap();
    add(&publisher, 0..3);
    let s1 = engine.run_cycle();
    add(&publisher, 3..5);
    publisher.publish_failure(FeedBroke);
    let s2 = engine.run_cycle();

    // Rows staged before the failure still reach the derived table.
    assert_eq!(values(&ring), vec![0, 1, 2, 3, 4]);
    assert_eq!(*watch.steps.lock(), vec![s1, s2]);
    let failure = watch.failure.lock().clone().expect("on_failure ran");
    assert!(failure.contains("feed broke"), "{failure}");

    let events = drain(&sub);
    assert!(matches!(events.first(), Some(Event::Snapshot(_))));
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
    match events.last() {
        Some(Event::Failed(e)) => assert!(
            matches!(&**e, Error::TableFailed { table, .. } if table == "ring"),
            "{e:?}"
        ),
        _ => unreachable!(),
    }
    assert!(matches!(
        sub.try_recv(),
        Err(tickertable::TryRecvError::Ended)
    ));
    assert!(ring.failure().is_some());
}

#[test]
fn derived_table_reports_closed_after_its_source_fails() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 10).unwrap();
    assert!(!ring.is_closed());
    publisher.publish_failure(FeedBroke);
    engine.run_cycle();
    assert!(source.is_closed());
    assert!(ring.failure().is_some());
    // Same as a derived table made from an already failed source (which is closed).
    assert!(
        ring.is_closed(),
        "a failed derived table must report is_closed()"
    );
}

#[test]
fn source_failure_propagates_through_a_chain_of_derived_tables() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    let tail = engine.tail("tail", &all, 2).unwrap();
    let sub_src = source.subscribe().unwrap();
    let sub_all = all.subscribe().unwrap();
    let sub_tail = tail.subscribe().unwrap();
    publisher.publish_failure(FeedBroke);
    engine.run_cycle();
    for (name, sub) in [("src", &sub_src), ("all", &sub_all), ("tail", &sub_tail)] {
        let events = drain(sub);
        assert!(
            matches!(events.last(), Some(Event::Failed(_))),
            "{name}: {events:?}"
        );
        assert!(sub.try_recv().is_err());
    }
    assert!(source.failure().is_some());
    assert!(all.failure().is_some());
    assert!(tail.failure().is_some());
    // The engine goes on.
    let (other, p2) = int_table(&engine, "other", TableKind::Append);
    add(&p2, 0..1);
    engine.run_cycle();
    assert_eq!(values(&other), vec![0]);
}

#[test]
fn derived_table_of_a_failed_source_starts_failed() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    add(&publisher, 0..3);
    engine.run_cycle();
    publisher.publish_failure(FeedBroke);
    engine.run_cycle();
    let ring = engine.ring_table("ring", &source, 2).unwrap();
    assert_eq!(values(&ring), vec![1, 2]);
    assert!(ring.is_closed());
    let sub = ring.subscribe().unwrap();
    let events = drain(&sub);
    assert!(
        matches!(events.first(), Some(Event::Snapshot(_))),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
}

#[test]
fn derived_table_of_a_derived_table_of_a_failed_source_starts_failed() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    add(&publisher, 0..3);
    publisher.publish_failure(FeedBroke);
    engine.run_cycle();
    let ring = engine.ring_table("ring", &source, 2).unwrap();
    assert!(ring.failure().is_some());
    let tail = engine.tail("tail", &ring, 1).unwrap();
    assert_eq!(values(&tail), vec![2]);
    assert!(tail.is_closed());
    // Like `ring`, and like a chain that fails while it exists, `tail` has failed.
    assert!(
        tail.failure().is_some(),
        "the failure was lost one level down"
    );
    let sub = tail.subscribe().unwrap();
    let events = drain(&sub);
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
}

#[test]
fn failure_of_a_derived_table_names_it_whether_the_source_failed_before_or_after() {
    fn failed_table(event: Option<&Event>) -> String {
        match event {
            Some(Event::Failed(e)) => match &**e {
                Error::TableFailed { table, .. } => table.clone(),
                other => panic!("expected TableFailed, got {other:?}"),
            },
            other => panic!("expected Failed, got {other:?}"),
        }
    }
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    let before = engine.ring_table("before", &source, 2).unwrap();
    let sub_before = before.subscribe().unwrap();
    publisher.publish_failure(FeedBroke);
    engine.run_cycle();
    let after = engine.ring_table("after", &source, 2).unwrap();
    let sub_after = after.subscribe().unwrap();
    assert_eq!(failed_table(drain(&sub_before).last()), "before");
    assert_eq!(failed_table(drain(&sub_after).last()), "after");
    assert!(
        matches!(after.failure().as_deref(), Some(Error::TableFailed { table, .. }) if table == "after")
    );
}

#[test]
fn clean_close_of_a_source_ends_derived_subscriptions_without_failure() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("src", int_schema(), DynamicWriterOptions::default())
        .unwrap();
    let ring = engine.ring_table("ring", dtw.table(), 2).unwrap();
    let sub = ring.subscribe().unwrap();
    dtw.write_row(&[Value::Int(1)]).unwrap();
    dtw.close();
    engine.run_cycle();
    assert_eq!(values(&ring), vec![1]);
    let events = drain(&sub);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(events[0], Event::Snapshot(_)));
    assert!(matches!(events[1], Event::Update(_)));
    assert!(matches!(
        sub.try_recv(),
        Err(tickertable::TryRecvError::Ended)
    ));
    assert!(ring.failure().is_none());
}
