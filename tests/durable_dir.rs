//! The data directory: one engine at a time (a lock file, stale ones taken over), dropping a
//! durable table deletes its log, a clean shutdown syncs every log whatever the policy, and
//! each durable table's share of the log in its statistics.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

mod support;

use std::fs;
use std::path::Path;

use support::{durable_engine, values, TempDir};

use tickertable::test_util::{int_batch, int_schema};
use tickertable::{
    Engine, Error, ErrorCode, PublisherOptions, SyncPolicy, Table, TableKind, TablePublisher,
};

use arrow_schema::{DataType, Field, Schema};
use std::sync::Arc;

fn engine(dir: &Path) -> Engine {
    Engine::builder().manual().data_dir(dir).build().unwrap()
}

fn durable(engine: &Engine, name: &str, kind: TableKind) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            name,
            int_schema(),
            PublisherOptions::default().with_kind(kind).durable(),
        )
        .unwrap()
}

#[test]
fn smoke() {
    let dir = TempDir::new("smoke");
    let e = engine(dir.path());
    assert!(dir.path().join(".lock").exists(), "the engine holds a lock");
    let (t, p) = durable(&e, "xs", TableKind::Append);
    assert!(t.is_durable());
    p.add(int_batch(0..3)).unwrap();
    e.run_cycle();
    drop(e);
    assert!(!dir.path().join(".lock").exists(), "released on drop");
}

#[test]
fn a_second_engine_on_one_data_dir_is_refused_naming_the_dir_and_the_pid() {
    let dir = TempDir::new("locked");
    let first = engine(dir.path());
    let err = Engine::builder()
        .manual()
        .data_dir(dir.path())
        .build()
        .unwrap_err();
    match &err {
        Error::DataDirLocked { dir: d, pid, .. } => {
            assert_eq!(*pid, std::process::id());
            assert_eq!(Path::new(d), dir.path());
        }
        other => panic!("wanted DataDirLocked, got {other:?}"),
    }
    assert_eq!(err.code(), ErrorCode::Io);
    let text = err.to_string();
    assert!(
        text.contains(&dir.path().display().to_string())
            && text.contains(&std::process::id().to_string()),
        "{text}"
    );
    // The refused engine left the holder's lock alone.
    drop(first);
    let _again = engine(dir.path());
}

#[test]
fn a_stale_lock_of_a_process_that_is_gone_is_taken_over() {
    let dir = TempDir::new("stale");
    // A process that ran and exited (and was reaped): its pid is free.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    fs::write(dir.path().join(".lock"), format!("pid {gone}\n")).unwrap();
    let e = engine(dir.path());
    let text = fs::read_to_string(dir.path().join(".lock")).unwrap();
    assert!(
        text.starts_with(&format!("pid {}\n", std::process::id())),
        "{text}"
    );
    drop(e);
    // This process with another start time: a pid reused since the lock was written.
    fs::write(
        dir.path().join(".lock"),
        format!("pid {}\nstart 1\n", std::process::id()),
    )
    .unwrap();
    if Path::new("/proc/self/stat").exists() {
        let _e = engine(dir.path());
    }
}

#[test]
fn dropping_a_durable_table_deletes_its_log_so_the_name_starts_fresh() {
    let dir = TempDir::new("drop");
    let e = engine(dir.path());
    let (t, p) = durable(&e, "xs", TableKind::Append);
    let (keep, kp) = durable(&e, "kept", TableKind::Append);
    p.add(int_batch(0..5)).unwrap();
    kp.add(int_batch(0..2)).unwrap();
    e.run_cycle();
    e.ring_table("recent", &t, 3).unwrap();
    assert!(dir.path().join("xs").exists());
    assert_eq!(e.drop_table("xs").unwrap(), ["xs", "recent"]);
    assert!(!dir.path().join("xs").exists(), "the log is gone");
    let trash = dir.path().join(".dropped");
    assert!(
        !trash.exists() || fs::read_dir(&trash).unwrap().next().is_none(),
        "nothing left aside"
    );
    assert!(e.replay_report("xs").is_none());
    // The same name again, in the same engine: empty, positions from 0.
    let (t, p) = durable(&e, "xs", TableKind::Append);
    assert_eq!(t.snapshot().rows(), 0..0);
    p.add(int_batch(100..102)).unwrap();
    e.run_cycle();
    drop((t, p, keep, kp));
    drop(e);
    // And after a restart: only what the new table logged; the other table untouched.
    let e = engine(dir.path());
    let (t, _) = durable(&e, "xs", TableKind::Append);
    assert_eq!((t.snapshot().rows(), values(&t)), (0..2, vec![100, 101]));
    let (kept, _) = durable(&e, "kept", TableKind::Append);
    assert_eq!(values(&kept), [0, 1]);
}

#[test]
fn dropping_a_checkpointed_table_waits_for_its_checkpoint() {
    let dir = TempDir::new("drop-ckpt");
    // Tiny segments: a ring checkpoints almost every cycle.
    let e = Engine::builder()
        .manual()
        .data_dir(dir.path())
        .log_segment_bytes(256)
        .build()
        .unwrap();
    for round in 0..3 {
        let (_, p) = durable(&e, "ring", TableKind::Ring { capacity: 4 });
        for c in 0..20 {
            p.add(int_batch(c * 10..c * 10 + 10)).unwrap();
            e.run_cycle();
        }
        e.drop_table("ring").unwrap();
        assert!(!dir.path().join("ring").exists(), "round {round}");
    }
    let (t, _) = durable(&e, "ring", TableKind::Ring { capacity: 4 });
    assert_eq!(t.snapshot().rows(), 0..0);
    assert!(e.recent_errors().is_empty(), "{:?}", e.recent_errors());
}

#[test]
fn a_clean_shutdown_fsyncs_every_log_whatever_the_policy() {
    let dir = TempDir::new("shutdown");
    let e = durable_engine(dir.path(), SyncPolicy::Never);
    let handle = e.handle();
    let (_, a) = durable(&e, "a", TableKind::Append);
    let (_, b) = durable(&e, "b", TableKind::Blink);
    a.add(int_batch(0..10)).unwrap();
    b.add(int_batch(0..10)).unwrap();
    e.run_cycle();
    // Rows staged but not yet applied: the shutdown's last cycle logs them too.
    a.add(int_batch(10..12)).unwrap();
    assert_eq!(
        handle.stats().log.fsyncs,
        0,
        "Never: no fsync while running"
    );
    e.shutdown();
    let log = handle.stats().log;
    assert!(log.fsyncs >= 2, "one per table at least: {log:?}");
    let e = engine(dir.path());
    let (a, _) = durable(&e, "a", TableKind::Append);
    assert_eq!(values(&a), (0..12).collect::<Vec<_>>());
}

#[test]
fn table_stats_carry_each_durable_tables_share_of_the_log() {
    let dir = TempDir::new("stats");
    let e = engine(dir.path());
    let (a, pa) = durable(&e, "a", TableKind::Append);
    let (b, pb) = durable(&e, "b", TableKind::Append);
    let (plain, _) = e.append_table("plain", int_schema()).unwrap();
    pa.add(int_batch(0..1000)).unwrap();
    pb.add(int_batch(0..10)).unwrap();
    e.run_cycle();
    let (sa, sb) = (
        e.table_stats(&a).log.unwrap(),
        e.table_stats(&b).log.unwrap(),
    );
    assert!(e.table_stats(&plain).log.is_none() && !plain.is_durable());
    assert_eq!((sa.records, sb.records), (1, 1));
    assert!(sa.bytes > sb.bytes && sb.bytes > 0, "{sa:?} {sb:?}");
    assert!(sa.fsyncs >= 1 && sb.fsyncs >= 1, "EveryCycle: {sa:?}");
    // The tables' shares add up to the engine's total, past the segment headers.
    let total = e.stats().log;
    assert!(sa.bytes + sb.bytes <= total.bytes, "{total:?}");
    assert_eq!(sa.fsyncs + sb.fsyncs, total.fsyncs);
    drop((a, b, pa, pb));
    drop(e);
    let e = engine(dir.path());
    let (a, _) = durable(&e, "a", TableKind::Append);
    let s = e.table_stats(&a).log.unwrap();
    assert_eq!((s.replayed_rows, s.bytes), (1000, 0));
    assert_eq!(s.replay_time, e.replay_report("a").unwrap().duration);
}

#[test]
fn logged_tables_lists_what_creating_each_again_needs() {
    let dir = TempDir::new("logged");
    let kv = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, true),
    ]));
    {
        let e = engine(dir.path());
        assert!(e.logged_tables().unwrap().is_empty());
        let limited = PublisherOptions::default()
            .with_kind(TableKind::Append)
            .with_limit(9)
            .durable();
        e.table_publisher("odd/name", int_schema(), limited)
            .unwrap();
        durable(&e, "ring", TableKind::Ring { capacity: 4 });
        let keyed = PublisherOptions::default()
            .with_kind(TableKind::Keyed { capacity: None })
            .with_key(["k"])
            .durable();
        e.table_publisher("book", kv.clone(), keyed).unwrap();
        e.append_table("plain", int_schema()).unwrap();
        let (_, p) = durable(&e, "gone", TableKind::Append);
        p.add(int_batch(0..1)).unwrap();
        e.run_cycle();
        e.drop_table("gone").unwrap();
    }
    let e = engine(dir.path());
    let logged = e.logged_tables().unwrap();
    let got: Vec<(&str, TableKind, Vec<String>, Option<usize>)> = logged
        .iter()
        .map(|t| (t.name.as_str(), t.kind, t.key.clone(), t.limit))
        .collect();
    assert_eq!(
        got,
        [
            (
                "book",
                TableKind::Keyed { capacity: None },
                vec!["k".to_owned()],
                None
            ),
            ("odd/name", TableKind::Append, vec![], Some(9)),
            ("ring", TableKind::Ring { capacity: 4 }, vec![], None),
        ]
    );
    assert_eq!(logged[0].schema.fields(), kv.fields());
    assert!(Engine::builder()
        .manual()
        .build()
        .unwrap()
        .logged_tables()
        .unwrap()
        .is_empty());
}
