//! `TablePublisher`: staging whole batches, failures, `on_flush`, `on_shutdown`, staging limits.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::Array;
use parking_lot::Mutex;
use tickertable::test_util::{int_batch, int_schema, manual_engine};
use tickertable::{
    Engine, Error, Event, Listener, PublisherOptions, TableKind, TableUpdate, TryPublishError,
    TryRecvError,
};

use support::{add, batch_values, drain, int_table, record, values, HANG_GUARD};

#[derive(Debug, thiserror::Error)]
#[error("upstream feed disconnected")]
struct Disconnected;

#[derive(Clone, Default)]
struct FailureWatch {
    updates: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Listener for FailureWatch {
    fn on_update(&mut self, _update: &TableUpdate) {
        self.updates.fetch_add(1, Ordering::SeqCst);
    }

    fn on_failure(&mut self, error: &Error) {
        self.failures.lock().push(error.to_string());
    }
}

fn counter() -> (Arc<AtomicUsize>, impl FnOnce() + Send + 'static) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    (count, move || {
        c.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    assert_eq!(publisher.table().name(), "t");
    assert!(publisher.is_alive());
    publisher.add(int_batch([1, 2, 3])).unwrap();
    assert_eq!(table.num_rows(), 0);
    engine.run_cycle();
    assert_eq!(values(&table), vec![1, 2, 3]);
}

#[test]
fn try_add_stages_a_batch_when_there_is_room() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    publisher.try_add(int_batch([4, 5])).unwrap();
    engine.run_cycle();
    assert_eq!(values(&table), vec![4, 5]);
}

#[test]
fn empty_batch_is_accepted_and_changes_nothing() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let (_h, seen) = record(&table);
    publisher.add(int_batch([])).unwrap();
    publisher.try_add(int_batch([])).unwrap();
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
    assert!(seen.lock().is_empty());
}

#[test]
fn added_batch_becomes_a_chunk_without_a_copy() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let batch = int_batch(0..1000);
    let ptr = batch.column(0).to_data().buffers()[0].as_ptr();
    publisher.add(batch).unwrap();
    engine.run_cycle();
    let snap = table.snapshot();
    let stored = snap.batches().next().unwrap();
    assert_eq!(stored.column(0).to_data().buffers()[0].as_ptr(), ptr);
    assert_eq!(stored.schema(), *table.schema());
}

#[test]
fn publish_failure_applies_rows_added_before_it_then_fails_the_table() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let watch = FailureWatch::default();
    let _h = table.listen(watch.clone()).unwrap();
    let sub = table.subscribe().unwrap();

    add(&publisher, 0..3);
    publisher.publish_failure(Disconnected);
    assert!(!publisher.is_alive());
    assert!(table.is_closed());

    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2]);
    assert_eq!(watch.updates.load(Ordering::SeqCst), 1);
    let failures = watch.failures.lock().clone();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].contains("upstream feed disconnected"),
        "{failures:?}"
    );

    let events = drain(&sub);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(events[0], Event::Snapshot(_)));
    assert!(matches!(&events[1], Event::Update(u) if u.added() == (0..3)));
    match &events[2] {
        Event::Failed(e) => {
            assert!(
                matches!(&**e, Error::TableFailed { table, source } if table == "t"
                    && source.to_string() == "upstream feed disconnected"),
                "{e:?}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Ended);
    assert!(sub.recv().is_none());
    assert!(matches!(
        table.failure().as_deref(),
        Some(Error::TableFailed { .. })
    ));
}

#[test]
fn add_after_publish_failure_is_refused_with_table_closed() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    publisher.publish_failure(Disconnected);
    let err = publisher.add(int_batch([1])).unwrap_err();
    assert!(
        matches!(err, Error::TableClosed { ref table } if table == "t"),
        "{err:?}"
    );
    engine.run_cycle();
    let err = publisher.add(int_batch([2])).unwrap_err();
    assert!(matches!(err, Error::TableClosed { .. }), "{err:?}");
    match publisher.try_add(int_batch([3, 4])) {
        Err(TryPublishError::Closed(b)) => assert_eq!(batch_values(&[b]), vec![3, 4]),
        other => panic!("expected Closed, got {other:?}"),
    }
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
    assert!(!publisher.is_alive());
}

#[test]
fn second_publish_failure_does_nothing() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let watch = FailureWatch::default();
    let _h = table.listen(watch.clone()).unwrap();
    publisher.publish_failure(Disconnected);
    engine.run_cycle();
    publisher.publish_failure(std::io::Error::other("second"));
    engine.run_cycle();
    assert_eq!(watch.failures.lock().len(), 1);
    let failure = table.failure().unwrap().to_string();
    assert!(failure.contains("upstream feed disconnected"), "{failure}");
}

#[test]
fn subscribing_to_a_failed_table_yields_its_snapshot_then_failed() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..2);
    publisher.publish_failure(Disconnected);
    engine.run_cycle();
    let sub = table.subscribe().unwrap();
    let events = drain(&sub);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Event::Snapshot(s) if s.num_rows() == 2));
    assert!(matches!(events[1], Event::Failed(_)));
}

#[test]
fn on_shutdown_runs_once_when_the_table_fails() {
    let engine = manual_engine();
    let (count, hook) = counter();
    let (_table, publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_shutdown(hook),
        )
        .unwrap();
    publisher.publish_failure(Disconnected);
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "runs at the cycle, not before"
    );
    engine.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    engine.run_cycle();
    drop(engine);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn on_shutdown_runs_once_when_the_engine_drops() {
    let engine = manual_engine();
    let (count, hook) = counter();
    let (_table, _publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_shutdown(hook),
        )
        .unwrap();
    engine.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 0);
    let handle = engine.handle();
    drop(engine);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(handle.is_shut_down());
    handle.run_cycle();
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn on_shutdown_runs_once_when_a_threaded_engine_shuts_down() {
    let engine = Engine::builder()
        .period(Duration::from_millis(5))
        .build()
        .unwrap();
    let (count, hook) = counter();
    let (table, publisher) = engine
        .table_publisher(
            "t",
            int_schema().clone(),
            PublisherOptions::default()
                .with_kind(TableKind::Append)
                .with_on_shutdown(hook),
        )
        .unwrap();
    add(&publisher, 0..3);
    engine.shutdown();
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(
        values(&table),
        vec![0, 1, 2],
        "the final cycle applies staged rows"
    );
    assert!(!publisher.is_alive());
}

#[test]
fn on_flush_batch_lands_in_the_same_cycle() {
    let engine = manual_engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (table, _publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_flush(move |p| {
                let n = c.fetch_add(1, Ordering::SeqCst);
                p.add(int_batch([i64::try_from(n).unwrap() * 100])).unwrap();
            }),
        )
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    engine.run_cycle();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(values(&table), vec![0]);
    engine.run_cycle();
    assert_eq!(values(&table), vec![100]);
    engine.run_cycle();
    assert_eq!(values(&table), vec![200]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn on_flush_rows_follow_rows_added_before_the_cycle() {
    let engine = manual_engine();
    let (table, publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_flush(|p| p.add(int_batch([-1])).unwrap()),
        )
        .unwrap();
    add(&publisher, 0..2);
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, -1]);
}

#[test]
fn on_flush_stops_running_once_its_table_failed() {
    let engine = manual_engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let (_table, publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default().with_on_flush(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    engine.run_cycle();
    publisher.publish_failure(Disconnected);
    engine.run_cycle();
    let after_failure = calls.load(Ordering::SeqCst);
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(calls.load(Ordering::SeqCst), after_failure);
}

fn limited_engine(limit: usize) -> Engine {
    Engine::builder()
        .manual()
        .staging_limit(limit)
        .build()
        .expect("valid options")
}

#[test]
fn try_add_past_the_staging_limit_gives_the_batch_back() {
    let engine = limited_engine(10);
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..8);
    match publisher.try_add(int_batch(100..105)) {
        Err(TryPublishError::Full(b)) => {
            assert_eq!(batch_values(&[b]), vec![100, 101, 102, 103, 104]);
        }
        other => panic!("expected Full, got {other:?}"),
    }
    engine.run_cycle();
    assert_eq!(values(&table), (0..8).collect::<Vec<_>>());
    // Drained: room again.
    publisher.try_add(int_batch(100..105)).unwrap();
    engine.run_cycle();
    assert_eq!(table.num_rows(), 13);
}

#[test]
fn add_past_the_staging_limit_in_manual_mode_fails_with_staging_full() {
    let engine = limited_engine(10);
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..8);
    let err = publisher.add(int_batch(100..105)).unwrap_err();
    match err {
        Error::StagingFull {
            table,
            staged,
            limit,
        } => {
            assert_eq!(table, "t");
            assert_eq!(staged, 8);
            assert_eq!(limit, 10);
        }
        other => panic!("expected StagingFull, got {other:?}"),
    }
    engine.run_cycle();
    assert_eq!(values(&table), (0..8).collect::<Vec<_>>());
}

#[test]
fn staging_limit_takes_a_batch_that_fills_it_exactly() {
    let engine = limited_engine(10);
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..8);
    add(&publisher, 8..10);
    assert!(matches!(
        publisher.try_add(int_batch([10])),
        Err(TryPublishError::Full(_))
    ));
    engine.run_cycle();
    assert_eq!(table.num_rows(), 10);
}

#[test]
fn a_batch_larger_than_the_whole_staging_limit_is_refused_as_too_large() {
    let engine = limited_engine(10);
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let err = publisher.add(int_batch(0..25)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchTooLarge {
                rows: 25,
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("split it"), "{err}");
    match publisher.try_add(int_batch(0..11)) {
        Err(TryPublishError::Invalid(b, e)) => {
            assert_eq!(b.num_rows(), 11, "the batch comes back");
            assert_eq!(e.code(), tickertable::ErrorCode::BatchTooLarge);
        }
        other => panic!("{other:?}"),
    }
    add(&publisher, 0..10);
    engine.run_cycle();
    assert_eq!(table.num_rows(), 10, "only the batch that fits was applied");
}

#[test]
fn add_past_the_staging_limit_on_a_threaded_engine_waits_for_the_cycle() {
    let engine = Engine::builder()
        .period(Duration::from_millis(2))
        .staging_limit(10)
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..20 {
            publisher.add(int_batch(i * 8..i * 8 + 8)).unwrap();
        }
    });
    let mut rows = 0;
    while rows < 160 {
        match sub.recv_timeout(HANG_GUARD) {
            Ok(Event::Update(u)) => rows += u.num_added(),
            Ok(_) => {}
            Err(e) => panic!("no progress: {e:?}"),
        }
    }
    writer.join().unwrap();
    assert_eq!(values(&table), (0..160).collect::<Vec<_>>());
}

#[test]
fn zero_staging_limit_or_period_is_refused() {
    assert!(matches!(
        Engine::builder().manual().staging_limit(0).build(),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        Engine::builder().period(Duration::ZERO).build(),
        Err(Error::InvalidOption { .. })
    ));
}

#[test]
fn concurrent_adds_each_land_whole_and_never_interleave() {
    const THREADS: i64 = 4;
    const BATCHES: i64 = 50;
    const ROWS: i64 = 40;
    let engine = Engine::builder()
        .period(Duration::from_millis(1))
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    let seen: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
    let sink = seen.clone();
    let _h = table
        .listen(move |u: &TableUpdate| sink.lock().push(support::update_values(u)))
        .unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = publisher.clone();
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let base = (t * BATCHES + b) * ROWS;
                    p.add(int_batch(base..base + ROWS)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(engine); // the final cycle applies the rest
    let seen = seen.lock();
    let mut total = 0;
    for update in seen.iter() {
        // Every update is a sequence of whole batches.
        assert_eq!(update.len() % usize::try_from(ROWS).unwrap(), 0);
        for chunk in update.chunks(usize::try_from(ROWS).unwrap()) {
            assert_eq!(chunk[0] % ROWS, 0, "a batch was split");
            let want: Vec<i64> = (chunk[0]..chunk[0] + ROWS).collect();
            assert_eq!(chunk, &want[..], "batches interleaved");
        }
        total += update.len();
    }
    assert_eq!(total, usize::try_from(THREADS * BATCHES * ROWS).unwrap());
}

#[test]
fn add_after_engine_shutdown_is_refused() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    drop(engine);
    assert!(!publisher.is_alive());
    assert!(matches!(
        publisher.add(int_batch([1])),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        publisher.try_add(int_batch([1])),
        Err(TryPublishError::Closed(_))
    ));
    assert_eq!(table.num_rows(), 0);
}

#[test]
fn add_blocked_on_full_staging_is_released_by_publish_failure() {
    let engine = Engine::builder()
        .period(Duration::from_secs(3600))
        .staging_limit(1)
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..1);
    let (tx, rx) = std::sync::mpsc::channel();
    let blocked = {
        let publisher = publisher.clone();
        std::thread::spawn(move || tx.send(publisher.add(int_batch([1]))).unwrap())
    };
    // Whether or not it is blocked yet, a failure must release it with TableClosed.
    publisher.publish_failure(Disconnected);
    let result = rx.recv_timeout(HANG_GUARD).expect("add stayed blocked");
    assert!(
        matches!(result, Err(Error::TableClosed { .. })),
        "{result:?}"
    );
    blocked.join().unwrap();
    engine.request_refresh();
    drop(engine);
    assert_eq!(values(&table), vec![0]);
}

#[test]
fn add_blocked_on_full_staging_is_released_by_engine_shutdown() {
    let engine = Engine::builder()
        .period(Duration::from_secs(3600))
        .staging_limit(1)
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..1);
    let (tx, rx) = std::sync::mpsc::channel();
    let blocked = {
        let publisher = publisher.clone();
        std::thread::spawn(move || tx.send(publisher.add(int_batch([1]))).unwrap())
    };
    drop(engine);
    let result = rx.recv_timeout(HANG_GUARD).expect("add stayed blocked");
    blocked.join().unwrap();
    match result {
        // Either it got in before the final cycle and was applied, or it was refused.
        Ok(()) => assert_eq!(values(&table), vec![0, 1]),
        Err(Error::EngineShutDown) => assert_eq!(values(&table), vec![0]),
        Err(other) => panic!("unexpected {other:?}"),
    }
}
