//! The cycle: steps, statistics, consistent reads, the cycle thread, refresh and shutdown.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tickertable::test_util::{int_batch, int_schema, manual_engine};
use tickertable::{
    DynamicWriterOptions, Engine, Error, Event, PublisherOptions, RecvTimeoutError, Step,
    TableKind, TryRecvError, Value,
};

use support::{add, drain, int_table, snapshot_values, values, HANG_GUARD};

const HOUR: Duration = Duration::from_secs(3600);

/// Waits (hang-guarded) for the next update of a subscription, skipping the snapshot.
fn next_update(sub: &tickertable::Subscription) -> Arc<tickertable::TableUpdate> {
    loop {
        match sub.recv_timeout(HANG_GUARD) {
            Ok(Event::Update(u)) => return u,
            Ok(Event::Snapshot(_)) => {}
            other => panic!("expected an update, got {other:?}"),
        }
    }
}

#[test]
fn smoke() {
    let engine = manual_engine();
    assert!(engine.is_manual());
    assert_eq!(engine.step(), Step::new(0));
    assert_eq!(engine.run_cycle(), Step::new(1));
    assert_eq!(engine.step(), Step::new(1));
}

#[test]
fn run_cycle_returns_consecutive_steps_whether_or_not_anything_changed() {
    let engine = manual_engine();
    let (_t, publisher) = int_table(&engine, "t", TableKind::Append);
    let mut last = engine.step();
    for i in 0..10 {
        if i % 2 == 0 {
            add(&publisher, 0..1);
        }
        let step = engine.run_cycle();
        assert_eq!(step, last.next());
        assert_eq!(engine.step(), step);
        last = step;
    }
    assert_eq!(last, Step::new(10));
}

#[test]
fn cycle_stats_count_rows_and_changed_tables() {
    let engine = manual_engine();
    let (_blink, bp) = int_table(&engine, "blink", TableKind::Blink);
    let (_ring, rp) = int_table(&engine, "ring", TableKind::Ring { capacity: 4 });
    let (_app, ap) = int_table(&engine, "app", TableKind::Append);
    assert!(engine.last_cycle().is_none());

    add(&bp, 0..3);
    add(&rp, 0..3);
    add(&ap, 0..2);
    let s1 = engine.run_cycle();
    let c = engine.last_cycle().unwrap();
    assert_eq!(c.step, s1);
    assert_eq!(c.rows_appended, 8);
    assert_eq!(c.rows_removed, 0);
    assert_eq!(c.rows_dropped, 0);
    assert_eq!(c.tables_changed, 3);

    add(&bp, 3..4);
    add(&rp, 3..6); // 6 rows into a ring of 4: 2 evicted
    let s2 = engine.run_cycle();
    let c = engine.last_cycle().unwrap();
    assert_eq!(c.step, s2);
    assert_eq!(c.rows_appended, 4);
    assert_eq!(c.rows_removed, 3 + 2);
    assert_eq!(c.tables_changed, 2);

    let s3 = engine.run_cycle(); // the blink table empties
    let c = engine.last_cycle().unwrap();
    assert_eq!(c.step, s3);
    assert_eq!(
        (c.rows_appended, c.rows_removed, c.tables_changed),
        (0, 1, 1)
    );

    engine.run_cycle(); // nothing at all
    let c = engine.last_cycle().unwrap();
    assert_eq!(
        (c.rows_appended, c.rows_removed, c.tables_changed),
        (0, 0, 0)
    );

    let recent = engine.recent_cycles();
    assert_eq!(recent.len(), 4);
    assert_eq!(
        recent.iter().map(|c| c.step.as_u64()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let totals = engine.stats();
    assert_eq!(totals.cycles, 4);
    assert_eq!(totals.rows_appended, 12);
    assert_eq!(totals.rows_removed, 6);
    assert!(totals.max_cycle_time >= recent[0].duration);
}

#[test]
fn read_sees_every_table_at_one_step() {
    let engine = manual_engine();
    let (a, pa) = int_table(&engine, "a", TableKind::Append);
    let (b, pb) = int_table(&engine, "b", TableKind::Blink);
    add(&pa, 0..2);
    engine.run_cycle();
    add(&pb, 5..6);
    let step = engine.run_cycle();
    engine.read(|view| {
        assert_eq!(view.step(), step);
        let names: Vec<_> = view.tables().iter().map(|t| t.name().to_owned()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(snapshot_values(&view.snapshot(&a)), vec![0, 1]);
        assert_eq!(snapshot_values(&view.snapshot(&b)), vec![5]);
        assert!(view.snapshot(&a).step() <= view.step());
        assert_eq!(view.snapshot(&b).step(), view.step());
        assert_eq!(view.table("b").unwrap().id(), b.id());
        assert!(view.table("zzz").is_none());
    });
}

#[test]
fn read_is_consistent_while_a_threaded_engine_cycles() {
    let engine = Engine::builder()
        .period(Duration::from_millis(1))
        .build()
        .unwrap();
    let (source, publisher) = int_table(&engine, "src", TableKind::Append);
    let ring = engine.ring_table("ring", &source, 3).unwrap();
    let all = engine.blink_to_append_only("all", &source, None).unwrap();
    let producer = std::thread::spawn(move || {
        for i in 0..2_000 {
            publisher.add(int_batch([i])).unwrap();
            if i % 10 == 0 {
                std::thread::yield_now();
            }
        }
    });
    let mut reads = 0;
    let mut last_step = Step::new(0);
    while !producer.is_finished() || reads < 50 {
        engine.read(|view| {
            let src = snapshot_values(&view.snapshot(&source));
            let r = snapshot_values(&view.snapshot(&ring));
            let a = snapshot_values(&view.snapshot(&all));
            assert_eq!(r, src[src.len().saturating_sub(3)..].to_vec());
            assert_eq!(a, src);
            for t in [&source, &ring, &all] {
                assert!(view.snapshot(t).step() <= view.step());
            }
            assert!(view.step() >= last_step);
            last_step = view.step();
        });
        reads += 1;
        std::thread::yield_now();
    }
    producer.join().unwrap();
}

#[test]
fn table_and_tables_list_tables_in_creation_order() {
    let engine = manual_engine();
    let (a, _pa) = int_table(&engine, "a", TableKind::Blink);
    let dtw = engine
        .dynamic_table_writer("w", int_schema(), DynamicWriterOptions::default())
        .unwrap();
    let r = engine.ring_table("r", &a, 2).unwrap();
    let names: Vec<_> = engine
        .tables()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    assert_eq!(names, vec!["a", "w", "r"]);
    assert!(a.id() < dtw.table().id() && dtw.table().id() < r.id());
    assert_eq!(engine.table("w").unwrap().id(), dtw.table().id());
    assert_eq!(
        engine.table("r").unwrap().kind(),
        TableKind::Ring { capacity: 2 }
    );
    assert!(engine.table("nope").is_none());
}

#[test]
fn duplicate_table_name_is_refused_with_table_exists() {
    let engine = manual_engine();
    let (a, _pa) = int_table(&engine, "a", TableKind::Blink);
    let err = engine
        .table_publisher("a", int_schema(), PublisherOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::TableExists { ref table } if table == "a"),
        "{err:?}"
    );
    assert!(matches!(
        engine.dynamic_table_writer("a", int_schema(), DynamicWriterOptions::default()),
        Err(Error::TableExists { .. })
    ));
    assert!(matches!(
        engine.ring_table("a", &a, 3),
        Err(Error::TableExists { .. })
    ));
    assert!(matches!(
        engine.blink_to_append_only("a", &a, None),
        Err(Error::TableExists { .. })
    ));
    assert_eq!(engine.tables().len(), 1);
}

#[test]
fn empty_table_name_is_refused() {
    let engine = manual_engine();
    assert!(matches!(
        engine.table_publisher("", int_schema(), PublisherOptions::default()),
        Err(Error::InvalidOption { .. })
    ));
    assert!(engine.tables().is_empty());
}

#[test]
fn threaded_engine_delivers_rows_without_run_cycle() {
    let engine = Engine::builder()
        .period(Duration::from_millis(5))
        .build()
        .unwrap();
    assert!(!engine.is_manual());
    assert_eq!(engine.period(), Duration::from_millis(5));
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    add(&publisher, 0..3);
    let u = next_update(&sub);
    assert_eq!(u.added(), 0..3);
    assert_eq!(values(&table), vec![0, 1, 2]);
}

#[test]
fn engine_step_has_reached_the_step_of_an_update_when_it_is_delivered() {
    // A subscriber on another thread that gets the update of step n and then asks
    // `engine.step()` must not see n - 1. A listener runs exactly where subscriptions are fed,
    // so it shows the same thing deterministically.
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let handle = engine.handle();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let _h = table
        .listen(move |u: &tickertable::TableUpdate| sink.lock().push((u.step(), handle.step())))
        .unwrap();
    add(&publisher, 0..1);
    let step = engine.run_cycle();
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, step);
    assert_eq!(
        seen[0].1, step,
        "engine.step() lags behind the update being delivered"
    );
}

#[test]
fn request_refresh_delivers_promptly_with_a_long_period() {
    let engine = Engine::builder().period(HOUR).build().unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    add(&publisher, 0..2);
    engine.request_refresh();
    let u = next_update(&sub);
    assert_eq!(u.added(), 0..2);
    // A second refresh runs another cycle.
    add(&publisher, 2..3);
    engine.handle().request_refresh();
    let u = next_update(&sub);
    assert_eq!(u.added(), 2..3);
}

#[test]
fn request_refresh_does_nothing_in_manual_mode() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..2);
    engine.request_refresh();
    std::thread::yield_now();
    assert_eq!(engine.step(), Step::new(0));
    assert_eq!(table.num_rows(), 0);
}

#[test]
fn low_latency_engine_delivers_without_waiting_for_the_period() {
    let engine = Engine::builder()
        .period(HOUR)
        .low_latency(Duration::from_millis(1))
        .build()
        .unwrap();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let sub = table.subscribe().unwrap();
    for i in 0..3 {
        add(&publisher, i * 10..i * 10 + 2);
        let u = next_update(&sub);
        assert_eq!(support::update_values(&u), vec![i * 10, i * 10 + 1]);
    }
}

#[test]
fn low_latency_engine_delivers_row_writer_rows_without_waiting_for_the_period() {
    let engine = Engine::builder()
        .period(HOUR)
        .low_latency(Duration::from_millis(1))
        .build()
        .unwrap();
    let dtw = engine
        .dynamic_table_writer("t", int_schema(), DynamicWriterOptions::default())
        .unwrap();
    let sub = dtw.table().subscribe().unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(7)]).unwrap();
    let u = next_update(&sub);
    assert_eq!(support::update_values(&u), vec![7]);
    w.write_row(&[Value::Int(8)]).unwrap();
    let u = next_update(&sub);
    assert_eq!(support::update_values(&u), vec![8]);
}

#[test]
fn threaded_cycles_and_run_cycle_calls_get_distinct_consecutive_steps() {
    let engine = Engine::builder()
        .period(Duration::from_millis(1))
        .build()
        .unwrap();
    let mut mine = Vec::new();
    for _ in 0..50 {
        mine.push(engine.run_cycle());
    }
    assert!(mine.windows(2).all(|w| w[0] < w[1]));
    let steps: Vec<u64> = engine
        .recent_cycles()
        .iter()
        .map(|c| c.step.as_u64())
        .collect();
    assert!(
        steps.windows(2).all(|w| w[1] == w[0] + 1),
        "cycles must never skip or repeat a step: {steps:?}"
    );
}

#[test]
fn dropping_the_engine_runs_a_final_cycle_ends_subscriptions_and_runs_on_shutdown() {
    let engine = Engine::builder().period(HOUR).build().unwrap();
    let shutdowns = Arc::new(AtomicUsize::new(0));
    let s = shutdowns.clone();
    let (table, publisher) = engine
        .table_publisher(
            "t",
            int_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Append)
                .with_on_shutdown(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                }),
        )
        .unwrap();
    let sub = table.subscribe().unwrap();
    add(&publisher, 0..4);
    let handle = engine.handle();
    drop(engine);
    assert!(handle.is_shut_down());
    assert_eq!(values(&table), vec![0, 1, 2, 3]);
    assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
    let events = drain(&sub);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[1], Event::Update(u) if u.added() == (0..4)));
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Ended);
    assert_eq!(
        sub.recv_timeout(HANG_GUARD).unwrap_err(),
        RecvTimeoutError::Ended
    );
}

#[test]
fn shutdown_of_a_manual_engine_runs_the_final_cycle() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Blink);
    add(&publisher, 0..2);
    let handle = engine.handle();
    engine.shutdown();
    assert_eq!(handle.step(), Step::new(1));
    assert_eq!(values(&table), vec![0, 1]);
}

#[test]
fn writes_and_new_tables_after_shutdown_are_refused_with_engine_shut_down() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let dtw = engine
        .dynamic_table_writer("w", int_schema(), DynamicWriterOptions::default())
        .unwrap();
    let handle = engine.handle();
    drop(engine);
    let last = handle.step();
    assert_eq!(
        handle.run_cycle(),
        last,
        "run_cycle after shutdown does nothing"
    );
    assert!(matches!(
        publisher.add(int_batch([1])),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        dtw.write_row(&[Value::Int(1)]),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        handle.table_publisher("x", int_schema(), PublisherOptions::default()),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        handle.dynamic_table_writer("y", int_schema(), DynamicWriterOptions::default()),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        handle.ring_table("z", &table, 2),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(
        table.listen(|_: &tickertable::TableUpdate| {}),
        Err(Error::EngineShutDown)
    ));
    // Tables stay readable, and a late subscription gets the snapshot and ends.
    assert_eq!(table.num_rows(), 0);
    let sub = table.subscribe().unwrap();
    assert!(matches!(sub.try_recv(), Ok(Event::Snapshot(_))));
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Ended);
}

#[test]
fn engine_handle_runs_cycles_from_another_thread() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..2);
    let handle = engine.handle();
    let step = std::thread::spawn(move || handle.run_cycle())
        .join()
        .unwrap();
    assert_eq!(step, Step::new(1));
    assert_eq!(values(&table), vec![0, 1]);
}

#[test]
fn every_add_that_returned_ok_is_applied_when_the_engine_shuts_down() {
    // Writers racing the shutdown: an add either fails with EngineShutDown or its rows are in
    // the table after the final cycle. An Ok add that is never applied is lost data.
    for _ in 0..5 {
        let engine = Engine::builder()
            .period(Duration::from_millis(1))
            .build()
            .unwrap();
        let (table, publisher) = int_table(&engine, "t", TableKind::Append);
        let dtw = engine
            .dynamic_table_writer("w", int_schema(), DynamicWriterOptions::default())
            .unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let batch_writer = {
            let started = started.clone();
            std::thread::spawn(move || {
                let mut ok = 0_usize;
                started.fetch_add(1, Ordering::SeqCst);
                loop {
                    match publisher.add(int_batch([0])) {
                        Ok(()) => ok += 1,
                        Err(Error::EngineShutDown) => return ok,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        };
        let row_writer = {
            let started = started.clone();
            let mut w = dtw.row_writer().unwrap();
            std::thread::spawn(move || {
                let mut ok = 0_usize;
                started.fetch_add(1, Ordering::SeqCst);
                loop {
                    match w.write_row(&[Value::Int(0)]) {
                        Ok(()) => ok += 1,
                        Err(Error::EngineShutDown) => return ok,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        };
        while started.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        drop(engine);
        let added = batch_writer.join().unwrap();
        let written = row_writer.join().unwrap();
        assert_eq!(table.num_rows(), added, "publisher rows lost at shutdown");
        assert_eq!(
            dtw.table().num_rows(),
            written,
            "row writer rows lost at shutdown"
        );
    }
}

#[test]
fn recent_cycles_keep_the_last_512_oldest_first() {
    let engine = manual_engine();
    for _ in 0..600 {
        engine.run_cycle();
    }
    let recent = engine.recent_cycles();
    assert_eq!(recent.len(), 512);
    assert_eq!(recent[0].step, Step::new(89));
    assert_eq!(recent[511].step, Step::new(600));
    assert_eq!(engine.last_cycle().unwrap().step, Step::new(600));
    assert_eq!(engine.stats().cycles, 600);
}
