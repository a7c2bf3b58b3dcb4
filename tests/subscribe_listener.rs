//! Listeners: callbacks on the cycle thread; panics, removal, detaching, failing callbacks.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tickertable::test_util::{int_batch, int_schema, manual_engine};
use tickertable::{Error, Event, Listener, PublisherOptions, TableKind, TableUpdate};

use support::{add, drain, int_table, record, values};

fn counting(table: &tickertable::Table) -> (tickertable::ListenerHandle, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handle = table
        .listen(move |_: &TableUpdate| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .expect("listen");
    (handle, count)
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let (h, seen) = record(&table);
    assert!(h.is_active());
    assert!(h.failure().is_none());
    add(&publisher, 0..2);
    let step = engine.run_cycle();
    let seen = seen.lock();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].step, step);
    assert_eq!(seen[0].values, vec![0, 1]);
}

#[test]
fn listeners_run_in_registration_order_with_distinct_ids() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let o = order.clone();
            table
                .listen(move |_: &TableUpdate| o.lock().push(i))
                .unwrap()
        })
        .collect();
    let ids: std::collections::HashSet<_> = handles
        .iter()
        .map(tickertable::ListenerHandle::id)
        .collect();
    assert_eq!(ids.len(), 4);
    add(&publisher, 0..1);
    engine.run_cycle();
    add(&publisher, 0..1);
    engine.run_cycle();
    assert_eq!(*order.lock(), vec![0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn panicking_listener_is_removed_and_reported_and_others_go_on() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let (before, before_count) = counting(&table);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let bad = table
        .listen(move |u: &TableUpdate| {
            c.fetch_add(1, Ordering::SeqCst);
            assert!(u.num_added() < 2, "listener saw too many rows");
        })
        .unwrap();
    let (after, after_count) = counting(&table);

    add(&publisher, 0..1);
    engine.run_cycle();
    assert!(bad.is_active());
    add(&publisher, 0..5);
    engine.run_cycle();
    assert!(!bad.is_active());
    let message = bad.failure().expect("failure recorded");
    assert!(message.contains("listener saw too many rows"), "{message}");

    let errors = engine.recent_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    match &*errors[0] {
        Error::ListenerPanicked {
            table,
            listener,
            message,
        } => {
            assert_eq!(table, "t");
            assert_eq!(*listener, bad.id().as_u64());
            assert!(message.contains("listener saw too many rows"));
        }
        other => panic!("expected ListenerPanicked, got {other:?}"),
    }

    // The engine and the other listeners go on; the bad one is not called again.
    add(&publisher, 0..1);
    engine.run_cycle();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(before_count.load(Ordering::SeqCst), 3);
    assert_eq!(after_count.load(Ordering::SeqCst), 3);
    assert!(before.is_active() && after.is_active());
    assert_eq!(values(&table), vec![0]);
    assert!(!table.is_closed());
}

#[test]
fn panicking_listener_does_not_disturb_subscriptions_of_its_table() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let _bad = table.listen(|_: &TableUpdate| panic!("boom")).unwrap();
    let sub = table.subscribe().unwrap();
    add(&publisher, 0..2);
    engine.run_cycle();
    add(&publisher, 2..3);
    engine.run_cycle();
    let events = drain(&sub);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(values(&table), vec![0, 1, 2]);
}

#[test]
fn dropping_a_listener_handle_removes_the_listener() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let (handle, count) = counting(&table);
    add(&publisher, 0..1);
    engine.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    drop(handle);
    add(&publisher, 0..1);
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn detached_listener_keeps_running_after_its_handle_is_gone() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let (handle, count) = counting(&table);
    handle.detach();
    for _ in 0..3 {
        add(&publisher, 0..1);
        engine.run_cycle();
    }
    engine.run_cycle(); // empties the blink table: one more update
    engine.run_cycle(); // nothing
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[test]
fn listener_handle_dropped_from_inside_another_listener_stops_that_listener() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let slot: Arc<Mutex<Option<tickertable::ListenerHandle>>> = Arc::default();
    let s = slot.clone();
    let _dropper = table
        .listen(move |u: &TableUpdate| {
            if u.added().start >= 1 {
                s.lock().take();
            }
        })
        .unwrap();
    let (victim, count) = counting(&table);
    *slot.lock() = Some(victim);
    add(&publisher, 0..1);
    engine.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    add(&publisher, 1..2);
    engine.run_cycle(); // the dropper drops the victim's handle here
    add(&publisher, 2..3);
    engine.run_cycle();
    add(&publisher, 3..4);
    engine.run_cycle();
    assert!(
        count.load(Ordering::SeqCst) <= 2,
        "the dropped listener kept running"
    );
    assert!(engine.recent_errors().is_empty());
}

#[test]
fn run_cycle_from_inside_a_listener_is_refused_and_the_listener_removed() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let handle = engine.handle();
    let bad = table
        .listen(move |_: &TableUpdate| {
            handle.run_cycle();
        })
        .unwrap();
    add(&publisher, 0..1);
    let step = engine.run_cycle();
    assert!(!bad.is_active());
    let message = bad.failure().unwrap();
    assert!(
        message.contains("run_cycle called from inside a cycle"),
        "{message}"
    );
    // The engine is not wedged.
    add(&publisher, 1..2);
    assert_eq!(engine.run_cycle(), step.next());
    assert_eq!(values(&table), vec![0, 1]);
}

#[derive(Clone, Default)]
struct FailureSink {
    failures: Arc<Mutex<Vec<String>>>,
}

impl Listener for FailureSink {
    fn on_update(&mut self, _: &TableUpdate) {}

    fn on_failure(&mut self, error: &Error) {
        self.failures.lock().push(error.to_string());
    }
}

#[test]
fn panicking_on_flush_fails_only_its_table_and_the_engine_goes_on() {
    let engine = manual_engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (bad, bad_publisher) = engine
        .table_publisher(
            "bad",
            int_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Append)
                .with_on_flush(move |p| {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    p.add(int_batch([10])).unwrap();
                    assert!(n < 1, "flush exploded");
                }),
        )
        .unwrap();
    let (good, good_publisher) = int_table(&engine, "good", TableKind::Append);
    let sink = FailureSink::default();
    let _h = bad.listen(sink.clone()).unwrap();
    let sub = bad.subscribe().unwrap();

    engine.run_cycle();
    assert_eq!(values(&bad), vec![10]);
    add(&good_publisher, 0..1);
    engine.run_cycle(); // on_flush panics here

    match bad.failure().as_deref() {
        Some(Error::CallbackPanicked {
            table,
            callback,
            message,
        }) => {
            assert_eq!(table, "bad");
            assert_eq!(*callback, "on_flush");
            assert!(message.contains("flush exploded"), "{message}");
        }
        other => panic!("expected CallbackPanicked, got {other:?}"),
    }
    assert!(engine.recent_errors().iter().any(|e| matches!(
        &**e,
        Error::CallbackPanicked { table, callback: "on_flush", .. } if table == "bad"
    )));
    assert_eq!(sink.failures.lock().len(), 1);
    let events = drain(&sub);
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
    assert!(!bad_publisher.is_alive());
    assert!(matches!(
        bad_publisher.add(int_batch([1])),
        Err(Error::TableClosed { .. })
    ));

    // The other table and the engine go on; the failed on_flush is not run again.
    add(&good_publisher, 1..2);
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(values(&good), vec![0, 1]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!good.is_closed());
}

#[test]
fn panicking_on_shutdown_is_reported_not_propagated() {
    let engine = manual_engine();
    let (_t, publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_shutdown(|| panic!("shutdown exploded")),
        )
        .unwrap();
    let handle = engine.handle();
    publisher.publish_failure(std::io::Error::other("bye"));
    engine.run_cycle();
    assert!(handle.recent_errors().iter().any(|e| matches!(
        &**e,
        Error::CallbackPanicked { callback: "on_shutdown", message, .. } if message.contains("shutdown exploded")
    )));
    drop(engine);
}

#[test]
fn recent_errors_keep_the_last_64() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let handles: Vec<_> = (0..70)
        .map(|i| {
            table
                .listen(move |_: &TableUpdate| panic!("listener {i}"))
                .unwrap()
        })
        .collect();
    add(&publisher, 0..1);
    engine.run_cycle();
    assert!(handles.iter().all(|h| !h.is_active()));
    let errors = engine.recent_errors();
    assert_eq!(errors.len(), 64);
    // Oldest first: the first six were dropped.
    assert!(
        errors[0].to_string().contains("listener 6"),
        "{}",
        errors[0]
    );
    assert!(
        errors[63].to_string().contains("listener 69"),
        "{}",
        errors[63]
    );
}

#[test]
fn listener_on_failure_gets_the_publishers_error_once() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sink = FailureSink::default();
    let _h = table.listen(sink.clone()).unwrap();
    publisher.publish_failure(std::io::Error::other("disk on fire"));
    engine.run_cycle();
    engine.run_cycle();
    let failures = sink.failures.lock().clone();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("disk on fire"), "{failures:?}");
}

struct PanicsOnFailure;

impl Listener for PanicsOnFailure {
    fn on_update(&mut self, _: &TableUpdate) {}

    fn on_failure(&mut self, _: &Error) {
        panic!("on_failure exploded");
    }
}

#[test]
fn listener_panicking_in_on_failure_is_reported_through_its_handle() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let handle = table.listen(PanicsOnFailure).unwrap();
    publisher.publish_failure(std::io::Error::other("gone"));
    engine.run_cycle();
    assert!(engine.recent_errors().iter().any(|e| matches!(
        &**e,
        Error::ListenerPanicked { listener, message, .. }
            if *listener == handle.id().as_u64() && message.contains("on_failure exploded")
    )));
    assert!(
        !handle.is_active(),
        "a listener that panicked is not active"
    );
    let failure = handle.failure();
    assert!(
        failure
            .as_deref()
            .is_some_and(|m| m.contains("on_failure exploded")),
        "the panic is not reported through ListenerHandle::failure: {failure:?}"
    );
}
