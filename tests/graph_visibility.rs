//! Visibility waits: on an engine whose periodic cycle never comes in time, a writer's
//! `wait_for_completion`, `EngineHandle::sync` after row writers and publishers, and
//! `wait_for_step` make rows visible (or say a step was not reached) without `run_cycle`.

mod support;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tickertable::test_util::{int_batch, int_schema, manual_engine, trade_schema};
use tickertable::{
    DynamicWriterOptions, Engine, MultithreadedTableWriter, MultithreadedWriterOptions, Step,
    TableKind, Value, WriteTarget,
};

use support::{int_table, values, HANG_GUARD};

/// An engine with a cycle thread whose periodic cycle is an hour away: rows become visible
/// only through the waits under test.
fn long_period_engine() -> Engine {
    Engine::builder()
        .period(Duration::from_secs(3600))
        .build()
        .expect("build the engine")
}

#[test]
fn smoke() {
    let engine = long_period_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    publisher.add(int_batch(0..3)).unwrap();
    assert_eq!(table.num_rows(), 0, "no cycle has run");
    let step = engine.sync();
    assert_eq!(values(&table), vec![0, 1, 2]);
    assert!(step >= Step::new(1));
}

#[test]
fn after_wait_for_completion_every_row_is_visible_without_a_cycle_call() {
    const N: i64 = 1_000;
    let engine = long_period_engine();
    let (table, _p) = engine.append_table("t", trade_schema()).unwrap();
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default()
            .with_thread_count(3)
            .with_partition_column("Sym"),
    )
    .unwrap();
    for i in 0..N {
        let sym = format!("S{}", i % 7);
        mtw.insert(&[i.into(), sym.as_str().into(), 1.5.into(), 1i64.into()])
            .unwrap();
    }
    let status = mtw.wait_for_completion();
    assert_eq!(status.sent_rows, u64::try_from(N).unwrap());
    assert_eq!(table.num_rows(), usize::try_from(N).unwrap());
}

#[test]
fn sync_after_write_row_makes_the_row_visible() {
    let engine = long_period_engine();
    let dtw = engine
        .dynamic_table_writer("t", int_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::from(7)]).unwrap();
    assert_eq!(dtw.table().num_rows(), 0, "no cycle has run");
    let step = engine.sync();
    assert_eq!(values(dtw.table()), vec![7]);
    w.write_row(&[Value::from(8)]).unwrap();
    let next = engine.sync();
    assert!(next > step);
    assert_eq!(values(dtw.table()), vec![7, 8]);
}

#[test]
fn sync_after_a_publisher_add_makes_the_batch_visible() {
    let engine = long_period_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    for round in 0..3 {
        publisher
            .add(int_batch(round * 10..round * 10 + 2))
            .unwrap();
        engine.sync();
        assert_eq!(table.num_rows(), usize::try_from(2 * (round + 1)).unwrap());
    }
    assert_eq!(values(&table), vec![0, 1, 10, 11, 20, 21]);
}

#[test]
fn sync_on_a_manual_engine_runs_a_cycle() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    publisher.add(int_batch(0..2)).unwrap();
    assert_eq!(engine.sync(), Step::new(1));
    assert_eq!(values(&table), vec![0, 1]);
}

#[test]
fn wait_for_step_is_true_once_the_step_is_published() {
    let engine = manual_engine();
    let step = engine.run_cycle();
    assert!(engine.wait_for_step(step, HANG_GUARD), "already reached");
    let next = step.next();
    let (tx, rx) = mpsc::channel();
    let handle = engine.handle();
    let waiter = thread::spawn(move || tx.send(handle.wait_for_step(next, HANG_GUARD)).unwrap());
    assert_eq!(engine.run_cycle(), next);
    assert_eq!(rx.recv_timeout(HANG_GUARD), Ok(true));
    waiter.join().unwrap();
}

#[test]
fn wait_for_step_is_false_for_a_step_a_manual_engine_never_reaches() {
    let engine = manual_engine();
    engine.run_cycle();
    assert!(!engine.wait_for_step(Step::new(100), Duration::from_millis(20)));
    assert_eq!(engine.step(), Step::new(1));
}

#[test]
fn wait_for_step_is_false_once_the_engine_shuts_down_before_the_step() {
    let engine = long_period_engine();
    let handle = engine.handle();
    let far = Step::new(1_000);
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let handle = handle.clone();
        // No timeout of its own: only the shutdown ends the wait.
        thread::spawn(move || tx.send(handle.wait_for_step(far, Duration::MAX)).unwrap())
    };
    drop(engine);
    assert_eq!(rx.recv_timeout(HANG_GUARD), Ok(false));
    waiter.join().unwrap();
    assert!(handle.step() < far);
}
