//! Readers go on while an `EveryCycle` cycle waits for its fsync: the cycle holds only the
//! upgradable side of the global lock then, so `EngineHandle::read`, snapshots and a table
//! that is not durable stay readable (at the previous step), and the cycle's rows appear only
//! once the fsync is done. The fsync is held with `test_util::hold_log_syncs`, which is
//! process-wide: this test has its binary to itself.
#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::sync::mpsc;
use std::time::Duration;

use tickertable::test_util::{hold_log_syncs, int_batch, int_schema};
use tickertable::{Engine, PublisherOptions, Step, SyncPolicy, TableKind};

/// A hang guard only: a read that blocked behind the cycle would stop the test here.
const HANG_GUARD: Duration = Duration::from_secs(30);

#[test]
fn readers_go_on_while_an_every_cycle_fsync_is_held_and_its_rows_follow_it() {
    let dir = std::env::temp_dir().join(format!("tickertable-readers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let engine = Engine::builder()
        .manual()
        .data_dir(&dir)
        .sync_policy(SyncPolicy::EveryCycle)
        .build()
        .unwrap();
    let append = || PublisherOptions::default().with_kind(TableKind::Append);
    let (ledger, publisher) = engine
        .table_publisher("ledger", int_schema(), append().durable())
        .unwrap();
    let (scratch, _) = engine
        .table_publisher("scratch", int_schema(), append())
        .unwrap();
    publisher.add(int_batch(0..10)).unwrap();
    assert_eq!(engine.run_cycle(), Step::new(1));

    let hold = hold_log_syncs();
    publisher.add(int_batch(10..25)).unwrap();
    let handle = engine.handle();
    let (done_tx, done_rx) = mpsc::channel();
    let cycle = std::thread::spawn(move || done_tx.send(handle.run_cycle()).unwrap());
    // The cycle has logged its rows and waits at the held fsync.
    while hold.waiting() == 0 {
        assert!(
            done_rx.try_recv().is_err(),
            "the cycle ended with its fsync held"
        );
        std::thread::yield_now();
    }

    // Readers, meanwhile: a view under the shared lock, snapshots, another table.
    let (tx, rx) = mpsc::channel();
    let handle = engine.handle();
    let (l, s) = (ledger.clone(), scratch.clone());
    std::thread::spawn(move || {
        let seen = handle.read(|v| {
            (
                v.step(),
                v.snapshot(&l).num_rows(),
                v.snapshot(&s).num_rows(),
            )
        });
        tx.send(seen).unwrap();
    });
    let (step, ledger_rows, scratch_rows) = rx.recv_timeout(HANG_GUARD).expect("a read blocked");
    assert_eq!((step, ledger_rows, scratch_rows), (Step::new(1), 10, 0));
    assert_eq!(
        ledger.snapshot().num_rows(),
        10,
        "not visible before its fsync"
    );
    assert_eq!(engine.step(), Step::new(1));
    assert!(done_rx.try_recv().is_err(), "the cycle waits for the fsync");

    drop(hold);
    assert_eq!(done_rx.recv_timeout(HANG_GUARD).unwrap(), Step::new(2));
    cycle.join().unwrap();
    assert_eq!(ledger.snapshot().num_rows(), 25);
    assert!(engine.stats().log.fsyncs >= 2, "{:?}", engine.stats().log);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
