//! Subscriptions: gapless snapshot + updates, lagging, the Stream and Iterator impls, drop.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_core::Stream;
use tickertable::test_util::{int_batch, manual_engine};
use tickertable::{
    Engine, Event, RecvTimeoutError, Step, Subscription, SubscriptionOptions, TableKind,
    TryRecvError,
};

use support::{add, drain, int_table, snapshot_values, updates, values, Mirror, HANG_GUARD};

/// The next item of a stream, as a future.
fn next(sub: &mut Subscription) -> impl Future<Output = Option<Event>> + '_ {
    std::future::poll_fn(move |cx| Pin::new(&mut *sub).poll_next(cx))
}

#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    assert_eq!(sub.table_name(), "t");
    add(&publisher, 0..2);
    engine.run_cycle();
    assert_eq!(sub.len(), 2);
    assert!(matches!(sub.try_recv(), Ok(Event::Snapshot(s)) if s.is_empty()));
    assert!(matches!(sub.try_recv(), Ok(Event::Update(u)) if u.added() == (0..2)));
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
    assert!(sub.is_empty());
}

#[test]
fn subscription_starts_with_the_current_snapshot_then_every_later_update() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Ring { capacity: 5 });
    add(&publisher, 0..4);
    let s1 = engine.run_cycle();
    engine.run_cycle();
    let sub = table.subscribe().unwrap();
    let mut steps = Vec::new();
    for i in 0..6 {
        add(&publisher, 10 * i..10 * i + 2);
        steps.push(engine.run_cycle());
        engine.run_cycle(); // no change: no update
    }
    let events = drain(&sub);
    match &events[0] {
        Event::Snapshot(s) => {
            assert_eq!(s.step(), s1);
            assert_eq!(snapshot_values(s), vec![0, 1, 2, 3]);
        }
        other => panic!("expected the snapshot first, got {other:?}"),
    }
    let got = updates(&events[1..]);
    assert_eq!(got.iter().map(|u| u.step).collect::<Vec<_>>(), steps);
    let mut mirror = Mirror::default();
    for e in &events {
        assert!(mirror.on_event(e));
    }
    mirror.assert_matches(&table.snapshot());
}

#[test]
fn subscription_taken_while_a_threaded_engine_cycles_is_gapless() {
    let engine = Engine::builder()
        .period(Duration::from_millis(1))
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Ring { capacity: 50 });
    let producer = std::thread::spawn(move || {
        for i in 0..3_000 {
            publisher.add(int_batch([i])).unwrap();
            if i % 7 == 0 {
                std::thread::yield_now();
            }
        }
    });
    // Subscribe mid-stream, several times.
    let mut subs = Vec::new();
    while !producer.is_finished() || subs.len() < 3 {
        if subs.len() < 20 {
            subs.push(table.subscribe().unwrap());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.join().unwrap();
    drop(engine); // final cycle, then every subscription ends
    let final_snapshot = table.snapshot();
    assert_eq!(
        snapshot_values(&final_snapshot),
        (2_950..3_000).collect::<Vec<_>>()
    );
    for sub in &subs {
        let mut mirror = Mirror::default();
        let mut last = Step::new(0);
        while let Some(e) = sub.recv() {
            if let Event::Update(u) = &e {
                assert!(u.step() > last, "updates out of step order");
                last = u.step();
            }
            if let Event::Snapshot(s) = &e {
                last = s.step();
            }
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&final_snapshot);
    }
}

#[test]
fn subscription_that_is_not_read_lags_with_the_missed_count_and_a_snapshot() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Ring { capacity: 4 });
    let sub = table
        .subscribe_with(SubscriptionOptions::default().with_capacity(3))
        .unwrap();
    let mut at_step: HashMap<Step, Vec<i64>> = HashMap::new();
    for i in 0..10 {
        add(&publisher, i * 3..i * 3 + 3);
        let step = engine.run_cycle();
        at_step.insert(step, values(&table));
        assert!(
            sub.len() <= 3,
            "queue grew past its capacity: {}",
            sub.len()
        );
    }
    assert!(sub.lagged_count() >= 1);
    let events = drain(&sub);
    let mut missed_total = 0;
    let mut delivered = 0;
    let mut mirror = Mirror::default();
    for e in &events {
        match e {
            Event::Lagged { missed, snapshot } => {
                missed_total += missed;
                delivered = 0;
                // The snapshot is the table at that step.
                assert_eq!(
                    snapshot_values(snapshot),
                    at_step[&snapshot.step()],
                    "lagged snapshot at {:?}",
                    snapshot.step()
                );
                // It covers exactly the updates it says were missed.
                assert_eq!(missed_total, snapshot.step().as_u64());
            }
            Event::Update(_) => delivered += 1,
            other => panic!("unexpected {other:?}"),
        }
        assert!(mirror.on_event(e));
    }
    assert!(matches!(events[0], Event::Lagged { .. }), "{events:?}");
    assert_eq!(
        missed_total + delivered,
        10,
        "every update is missed or delivered"
    );
    mirror.assert_matches(&table.snapshot());
}

#[test]
fn lagged_missed_count_follows_the_queue_capacity() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table
        .subscribe_with(SubscriptionOptions::default().with_capacity(3))
        .unwrap();
    for i in 0..10 {
        add(&publisher, i..i + 1);
        engine.run_cycle();
    }
    // Queue: [Snapshot, U1, U2] is full at cycle 3 -> Lagged(3); [Lagged, U4, U5] full at
    // cycle 6 -> Lagged(6); at cycle 9 -> Lagged(9); then U10.
    let events = drain(&sub);
    assert_eq!(events.len(), 2, "{events:?}");
    match &events[0] {
        Event::Lagged { missed, snapshot } => {
            assert_eq!(*missed, 9);
            assert_eq!(snapshot.step(), Step::new(9));
            assert_eq!(snapshot_values(snapshot), (0..9).collect::<Vec<_>>());
        }
        other => panic!("expected Lagged, got {other:?}"),
    }
    assert!(matches!(&events[1], Event::Update(u) if u.step() == Step::new(10)));
    assert_eq!(sub.lagged_count(), 3);
}

#[test]
fn subscription_lags_when_queued_rows_pass_the_row_bound() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table
        .subscribe_with(SubscriptionOptions::default().with_max_queued_rows(5))
        .unwrap();
    add(&publisher, 0..3);
    engine.run_cycle();
    add(&publisher, 3..6);
    engine.run_cycle(); // 3 + 3 > 5: lag
    let events = drain(&sub);
    assert_eq!(events.len(), 1, "{events:?}");
    match &events[0] {
        Event::Lagged { missed, snapshot } => {
            assert_eq!(*missed, 2);
            assert_eq!(snapshot_values(snapshot), (0..6).collect::<Vec<_>>());
        }
        other => panic!("expected Lagged, got {other:?}"),
    }
    // An update arriving at an empty queue is always taken, however big.
    add(&publisher, 6..100);
    engine.run_cycle();
    let events = drain(&sub);
    assert!(
        matches!(&events[..], [Event::Update(u)] if u.num_added() == 94),
        "{events:?}"
    );
}

#[test]
fn subscriber_that_keeps_up_never_lags() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let sub = table
        .subscribe_with(SubscriptionOptions::default().with_capacity(2))
        .unwrap();
    let mut mirror = Mirror::default();
    for i in 0..50 {
        add(&publisher, i..i + 2);
        engine.run_cycle();
        for e in drain(&sub) {
            assert!(!matches!(e, Event::Lagged { .. }));
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&table.snapshot());
    }
    assert_eq!(sub.lagged_count(), 0);
}

#[test]
fn lagged_blink_subscription_resynchronises_exactly() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let sub = table
        .subscribe_with(SubscriptionOptions::default().with_capacity(4))
        .unwrap();
    let mut mirror = Mirror::default();
    for round in 0..5 {
        for i in 0..9 {
            if i % 4 != 0 {
                add(&publisher, i * 10..i * 10 + 3);
            }
            engine.run_cycle();
            assert!(sub.len() <= 4);
        }
        for e in drain(&sub) {
            assert!(mirror.on_event(&e));
        }
        mirror.assert_matches(&table.snapshot());
        assert!(sub.lagged_count() > round);
    }
}

#[test]
fn stream_yields_events_and_wakes_the_task_on_a_new_update() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let mut sub = table.subscribe().unwrap();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(matches!(
        Pin::new(&mut sub).poll_next(&mut cx),
        Poll::Ready(Some(Event::Snapshot(_)))
    ));
    assert!(Pin::new(&mut sub).poll_next(&mut cx).is_pending());
    assert_eq!(counter.0.load(Ordering::SeqCst), 0);
    add(&publisher, 0..2);
    engine.run_cycle();
    assert!(
        counter.0.load(Ordering::SeqCst) >= 1,
        "the task was not woken"
    );
    match Pin::new(&mut sub).poll_next(&mut cx) {
        Poll::Ready(Some(Event::Update(u))) => assert_eq!(u.added(), 0..2),
        other => panic!("expected an update, got {other:?}"),
    }
    assert!(Pin::new(&mut sub).poll_next(&mut cx).is_pending());
    let woken = counter.0.load(Ordering::SeqCst);
    drop(engine);
    assert!(
        counter.0.load(Ordering::SeqCst) > woken,
        "the end did not wake the task"
    );
    assert!(matches!(
        Pin::new(&mut sub).poll_next(&mut cx),
        Poll::Ready(None)
    ));
}

#[test]
fn stream_driven_by_an_executor_receives_updates_from_another_thread() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let mut sub = table.subscribe().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        futures_executor::block_on(async {
            while let Some(e) = next(&mut sub).await {
                tx.send(e).unwrap();
            }
        });
    });
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD),
        Ok(Event::Snapshot(_))
    ));
    for i in 0..3 {
        add(&publisher, i * 2..i * 2 + 2);
        engine.run_cycle();
        match rx.recv_timeout(HANG_GUARD) {
            Ok(Event::Update(u)) => assert_eq!(support::update_values(&u), vec![i * 2, i * 2 + 1]),
            other => panic!("expected an update, got {other:?}"),
        }
    }
    drop(engine); // ends the stream
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
    reader.join().unwrap();
}

#[test]
fn iterator_blocks_for_updates_and_ends_with_the_engine() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for e in sub {
            tx.send(e).unwrap();
        }
    });
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD),
        Ok(Event::Snapshot(_))
    ));
    add(&publisher, 0..1);
    engine.run_cycle();
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Ok(Event::Update(_))));
    drop(engine);
    assert!(matches!(
        rx.recv_timeout(HANG_GUARD),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
    reader.join().unwrap();
}

#[test]
fn recv_timeout_times_out_when_nothing_arrives() {
    let engine = manual_engine();
    let (table, _publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    assert!(matches!(
        sub.recv_timeout(HANG_GUARD),
        Ok(Event::Snapshot(_))
    ));
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(5)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
}

#[test]
fn dropping_a_subscription_unsubscribes() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let batch = int_batch(0..10);
    let column = batch.column(0).clone();
    let kept = table.subscribe().unwrap();
    let dropped = table.subscribe().unwrap();
    publisher.add(batch).unwrap();
    engine.run_cycle();
    drop(dropped);
    engine.run_cycle(); // the blink table empties
                        // Only the live subscription still holds the rows (in its queued update).
    let with_one_sub = Arc::strong_count(&column);
    drop(drain(&kept));
    engine.run_cycle();
    assert_eq!(
        Arc::strong_count(&column),
        1,
        "a dropped subscription still holds rows ({with_one_sub} refs with one live subscriber)"
    );
    assert!(
        with_one_sub > 1,
        "the live subscription should hold the rows"
    );
    // The live one still works.
    add(&publisher, 0..1);
    engine.run_cycle();
    assert_eq!(drain(&kept).len(), 1);
}

#[test]
fn dropped_subscription_no_longer_holds_queued_rows() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let batch = int_batch(0..10);
    let column = batch.column(0).clone();
    let sub = table.subscribe().unwrap();
    publisher.add(batch).unwrap();
    engine.run_cycle();
    assert!(Arc::strong_count(&column) > 1);
    drop(sub);
    engine.run_cycle(); // the blink table empties
    assert_eq!(Arc::strong_count(&column), 1);
}
