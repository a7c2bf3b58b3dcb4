//! Durable tables: restart restores every kind exactly; torn and corrupt logs are truncated;
//! changed schemas and kinds are refused; checkpoints bound the log.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use support::{durable_engine, values, TempDir};

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::test_util::{i64_column, int_batch, int_schema};
use tickertable::{
    DynamicWriterOptions, Engine, Error, PublisherOptions, Step, SyncPolicy, Table, TableKind,
    TablePublisher, TableSnapshot, Value,
};

fn engine(dir: &Path) -> Engine {
    Engine::builder().manual().data_dir(dir).build().unwrap()
}

fn engine_with(dir: &Path, segment: u64) -> Engine {
    Engine::builder()
        .manual()
        .data_dir(dir)
        .log_segment_bytes(segment)
        .build()
        .unwrap()
}

fn durable_table(engine: &Engine, name: &str, kind: TableKind) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            name,
            int_schema(),
            PublisherOptions::default().with_kind(kind).durable(),
        )
        .unwrap()
}

/// Rows, positions and values of a snapshot.
fn state(s: &TableSnapshot) -> (std::ops::Range<u64>, Vec<i64>) {
    (s.rows(), i64_column(s.batches(), 0))
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ttlog"))
        .collect();
    v.sort();
    v
}

#[test]
fn smoke() {
    let dir = TempDir::new("smoke");
    let before = {
        let e = engine(dir.path());
        let (t, p) = durable_table(&e, "xs", TableKind::Append);
        p.add(int_batch(0..3)).unwrap();
        e.run_cycle();
        p.add(int_batch(3..5)).unwrap();
        e.run_cycle();
        (state(&t.snapshot()), e.step())
    };
    let e = engine(dir.path());
    let (t, p) = durable_table(&e, "xs", TableKind::Append);
    assert_eq!(state(&t.snapshot()), before.0);
    assert!(e.step() >= before.1);
    p.add(int_batch(5..6)).unwrap();
    e.run_cycle();
    assert_eq!(state(&t.snapshot()), (0..6, (0..6).collect()));
    let r = e.replay_report("xs").unwrap();
    assert_eq!((r.records, r.rows, r.truncated_bytes), (2, 5, 0));
    assert!(r.corruption.is_none());
}

#[test]
fn restart_restores_append_blink_and_ring_rows_and_positions() {
    let dir = TempDir::new("kinds");
    let kinds = [
        ("append", TableKind::Append),
        ("blink", TableKind::Blink),
        ("ring", TableKind::Ring { capacity: 7 }),
    ];
    let mut before = Vec::new();
    {
        let e = engine(dir.path());
        let tables: Vec<_> = kinds
            .iter()
            .map(|(n, k)| durable_table(&e, n, *k))
            .collect();
        let mut v = 0;
        for cycle in 0..6 {
            for (_, p) in &tables {
                for _ in 0..=cycle % 3 {
                    p.add(int_batch(v..v + 2)).unwrap();
                    v += 2;
                }
            }
            e.run_cycle();
        }
        for (t, _) in &tables {
            before.push(state(&t.snapshot()));
        }
    }
    let e = engine(dir.path());
    for ((name, kind), (rows, values)) in kinds.iter().zip(before) {
        let (t, p) = durable_table(&e, name, *kind);
        let (rows2, values2) = state(&t.snapshot());
        if *kind == TableKind::Blink {
            // The last cycle is over: the blink table comes back empty, its positions going on.
            assert_eq!(rows2, rows.end..rows.end, "{name}");
            assert!(values2.is_empty());
        } else {
            assert_eq!((rows2, values2), (rows.clone(), values), "{name}");
        }
        p.add(int_batch(1000..1001)).unwrap();
        e.run_cycle();
        assert_eq!(
            t.snapshot().rows().end,
            rows.end + 1,
            "{name}: positions continue"
        );
    }
}

fn keyed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]))
}

fn kv(keys: &[i64], values: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        keyed_schema(),
        vec![
            Arc::new(Int64Array::from(keys.to_vec())),
            Arc::new(Int64Array::from(values.to_vec())),
        ],
    )
    .unwrap()
}

fn keyed(e: &Engine, durable: bool, capacity: Option<usize>) -> (Table, TablePublisher) {
    let mut o = PublisherOptions::default()
        .with_kind(TableKind::Keyed { capacity })
        .with_key(["k"]);
    if durable {
        o = o.durable();
    }
    e.table_publisher("book", keyed_schema(), o).unwrap()
}

fn kv_state(t: &Table) -> (std::ops::Range<u64>, Vec<i64>, Vec<Option<i64>>) {
    let s = t.snapshot();
    let b = s.to_batch().unwrap();
    let col = |i: usize| {
        b.column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone()
    };
    let v = col(1);
    (
        s.rows(),
        col(0).values().to_vec(),
        (0..v.len())
            .map(|i| v.is_valid(i).then(|| v.value(i)))
            .collect(),
    )
}

/// The same keyed operations on a durable table and an in-memory reference, cycle by cycle.
fn keyed_ops(p: &TablePublisher, round: i64) {
    p.add(kv(&[1, 2, 3, 4, 5], &[round, 2, 3, 4, 5])).unwrap();
    p.delete(kv(&[2], &[0])).unwrap();
    p.add(kv(&[6, 1], &[6, round * 10])).unwrap();
}

#[test]
fn restart_restores_keyed_slots_and_values_and_later_writes_agree() {
    for capacity in [None, Some(4)] {
        let dir = TempDir::new("keyed");
        let reference = Engine::builder().manual().build().unwrap();
        let (rt, rp) = keyed(&reference, false, capacity);
        {
            let e = engine(dir.path());
            let (_, p) = keyed(&e, true, capacity);
            for round in 0..3 {
                keyed_ops(&p, round);
                rp.add(kv(&[1, 2, 3, 4, 5], &[round, 2, 3, 4, 5])).unwrap();
                rp.delete(kv(&[2], &[0])).unwrap();
                rp.add(kv(&[6, 1], &[6, round * 10])).unwrap();
                p.delete(kv(&[3 + round], &[0])).unwrap();
                rp.delete(kv(&[3 + round], &[0])).unwrap();
                e.run_cycle();
                reference.run_cycle();
            }
        }
        let e = engine(dir.path());
        let (t, p) = keyed(&e, true, capacity);
        assert_eq!(kv_state(&t), kv_state(&rt), "capacity {capacity:?}");
        // Same slots: the next writes land in the same places in both.
        p.add(kv(&[7, 8, 1], &[7, 8, 100])).unwrap();
        p.delete(kv(&[6], &[0])).unwrap();
        rp.add(kv(&[7, 8, 1], &[7, 8, 100])).unwrap();
        rp.delete(kv(&[6], &[0])).unwrap();
        e.run_cycle();
        reference.run_cycle();
        assert_eq!(kv_state(&t), kv_state(&rt), "capacity {capacity:?}");
    }
}

#[test]
fn row_writer_tables_are_durable_too() {
    let dir = TempDir::new("dtw");
    let opts = || DynamicWriterOptions::default().durable();
    {
        let e = engine(dir.path());
        let dtw = e
            .dynamic_table_writer("rows", int_schema(), opts())
            .unwrap();
        for i in 0..5 {
            dtw.write_row(&[Value::from(i)]).unwrap();
        }
        e.run_cycle();
    }
    let e = engine(dir.path());
    let dtw = e
        .dynamic_table_writer("rows", int_schema(), opts())
        .unwrap();
    assert_eq!(state(&dtw.table().snapshot()), (0..5, (0..5).collect()));
}

#[test]
fn a_durable_table_without_a_data_dir_is_an_invalid_option() {
    let e = Engine::builder().manual().build().unwrap();
    let err = e
        .table_publisher("xs", int_schema(), PublisherOptions::default().durable())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "durability",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_changed_schema_or_kind_is_refused_naming_both() {
    let dir = TempDir::new("schema");
    {
        let e = engine(dir.path());
        let (_, p) = durable_table(&e, "xs", TableKind::Append);
        p.add(int_batch(0..2)).unwrap();
        e.run_cycle();
    }
    let e = engine(dir.path());
    let other = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, false)]));
    let err = e
        .table_publisher("xs", other, PublisherOptions::default().durable())
        .unwrap_err();
    match &err {
        Error::SchemaChanged { logged, given, .. } => {
            assert!(logged.contains("Int64") && given.contains("Utf8"), "{err}");
        }
        other => panic!("{other}"),
    }
    let err = e
        .table_publisher(
            "xs",
            int_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Ring { capacity: 3 })
                .durable(),
        )
        .unwrap_err();
    match &err {
        Error::KindChanged { logged, given, .. } => {
            assert_eq!((logged.as_str(), given.as_str()), ("append", "ring(3)"));
        }
        other => panic!("{other}"),
    }
    // Refusals leave the log as it was.
    let (t, _) = durable_table(&e, "xs", TableKind::Append);
    assert_eq!(t.num_rows(), 2);
}

/// Writes `cycles` one-batch cycles into an append table and returns the segment and the
/// byte offsets each record started at.
fn write_cycles(dir: &Path, cycles: i64) -> (PathBuf, Vec<u64>) {
    let e = engine(dir);
    let (_, p) = durable_table(&e, "xs", TableKind::Append);
    let seg = segments(&dir.join("xs")).pop().unwrap();
    let mut offsets = Vec::new();
    for c in 0..cycles {
        offsets.push(fs::metadata(&seg).unwrap().len());
        p.add(int_batch(c * 10..c * 10 + 3)).unwrap();
        e.run_cycle(); // EveryCycle: on disk before it returns
    }
    offsets.push(fs::metadata(&seg).unwrap().len());
    (seg, offsets)
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            copy_dir(&p, &to.join(p.file_name().unwrap()));
        } else {
            fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

fn expected_values(cycles: i64) -> Vec<i64> {
    (0..cycles).flat_map(|c| c * 10..c * 10 + 3).collect()
}

#[test]
fn a_torn_last_record_is_truncated_at_every_byte_offset_and_the_rest_replays() {
    let src = TempDir::new("torn-src");
    let (seg, offsets) = write_cycles(src.path(), 4);
    let (start, end) = (offsets[3], offsets[4]);
    let name = seg.file_name().unwrap().to_owned();
    for cut in start..end {
        let dir = TempDir::new("torn");
        copy_dir(src.path(), dir.path());
        let seg = dir.path().join("xs").join(&name);
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let e = engine(dir.path());
        let (t, _) = durable_table(&e, "xs", TableKind::Append);
        assert_eq!(
            state(&t.snapshot()),
            (0..9, expected_values(3)),
            "cut at {cut}"
        );
        let r = e.replay_report("xs").unwrap();
        if cut == start {
            assert!(r.corruption.is_none());
        } else {
            assert_eq!(r.truncated_bytes, cut - start, "cut at {cut}");
            match r.corruption.as_deref() {
                Some(Error::LogCorrupt { offset, .. }) => assert_eq!(*offset, start),
                other => panic!("cut at {cut}: {other:?}"),
            }
            assert!(e
                .recent_errors()
                .iter()
                .any(|e| matches!(**e, Error::LogCorrupt { .. })));
        }
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            start,
            "truncated at {cut}"
        );
    }
}

#[test]
fn a_flipped_byte_is_detected_and_everything_before_it_replays() {
    let src = TempDir::new("flip-src");
    let (seg, offsets) = write_cycles(src.path(), 5);
    let name = seg.file_name().unwrap().to_owned();
    // A byte in the middle of each record's payload, and in one header.
    let mut spots: Vec<(usize, u64)> = (0..5)
        .map(|i| (i, u64::midpoint(offsets[i], offsets[i + 1])))
        .collect();
    spots.push((2, offsets[2] + 20));
    for (record, at) in spots {
        let dir = TempDir::new("flip");
        copy_dir(src.path(), dir.path());
        let seg = dir.path().join("xs").join(&name);
        let mut bytes = fs::read(&seg).unwrap();
        bytes[usize::try_from(at).unwrap()] ^= 0x40;
        fs::write(&seg, bytes).unwrap();
        let e = engine(dir.path());
        let (t, p) = durable_table(&e, "xs", TableKind::Append);
        let n = u64::try_from(record).unwrap() * 3;
        let expected = expected_values(i64::try_from(record).unwrap());
        assert_eq!(state(&t.snapshot()), (0..n, expected), "flip at {at}");
        assert!(e.replay_report("xs").unwrap().corruption.is_some());
        // The table goes on from there, and a second restart agrees.
        p.add(int_batch(500..501)).unwrap();
        e.run_cycle();
        drop(e);
        let e = engine(dir.path());
        let (t, _) = durable_table(&e, "xs", TableKind::Append);
        assert_eq!(t.snapshot().rows(), 0..n + 1);
        assert!(e.replay_report("xs").unwrap().corruption.is_none());
    }
}

#[test]
fn corruption_in_an_early_segment_sets_the_later_ones_aside() {
    let dir = TempDir::new("early");
    {
        let e = engine_with(dir.path(), 1);
        let (_, p) = durable_table(&e, "xs", TableKind::Append);
        for c in 0..4 {
            p.add(int_batch(c * 10..c * 10 + 3)).unwrap();
            e.run_cycle();
        }
    }
    let segs = segments(&dir.path().join("xs"));
    assert!(segs.len() >= 4, "{segs:?}");
    // Segment 0 is the open's header; segment 1 holds the first record.
    let mut bytes = fs::read(&segs[2]).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 1;
    fs::write(&segs[2], bytes).unwrap();
    let e = engine(dir.path());
    let (t, _) = durable_table(&e, "xs", TableKind::Append);
    assert!(t.num_rows() < 12);
    let r = e.replay_report("xs").unwrap();
    assert!(r.corruption.is_some() && r.truncated_bytes > 0);
    let set_aside = fs::read_dir(dir.path().join("xs"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "corrupt")
        })
        .count();
    assert!(set_aside >= 1);
}

#[test]
fn ring_and_keyed_checkpoints_bound_the_log_and_replay_from_the_checkpoint() {
    let dir = TempDir::new("ckpt");
    let (ring_before, keyed_before);
    {
        let e = engine_with(dir.path(), 4096);
        let (ring, rp) = durable_table(&e, "ring", TableKind::Ring { capacity: 10 });
        let (book, bp) = keyed(&e, true, None);
        for c in 0..200 {
            rp.add(int_batch(c * 4..c * 4 + 4)).unwrap();
            bp.add(kv(&[c % 13, (c * 7) % 13], &[c, -c])).unwrap();
            if c % 5 == 0 {
                bp.delete(kv(&[(c * 3) % 13], &[0])).unwrap();
            }
            e.run_cycle();
        }
        ring_before = state(&ring.snapshot());
        keyed_before = kv_state(&book);
        assert!(e.stats().log.checkpoints >= 2, "{:?}", e.stats().log);
    }
    for table in ["ring", "book"] {
        let files: Vec<_> = fs::read_dir(dir.path().join(table))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let ckpts = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "arrow"))
            .count();
        assert_eq!(ckpts, 1, "{table}: {files:?}");
        assert!(
            segments(&dir.path().join(table)).len() <= 4,
            "{table}: {files:?}"
        );
    }
    let e = engine_with(dir.path(), 4096);
    let (ring, _) = durable_table(&e, "ring", TableKind::Ring { capacity: 10 });
    let (book, _) = keyed(&e, true, None);
    assert_eq!(state(&ring.snapshot()), ring_before);
    assert_eq!(kv_state(&book), keyed_before);
    for t in ["ring", "book"] {
        let r = e.replay_report(t).unwrap();
        assert!(r.checkpoint.is_some(), "{t}: {r}");
        assert!(r.corruption.is_none(), "{t}: {r}");
    }
}

/// A keyed table with a capacity is checkpointed with its recency order: after a restart
/// from the checkpoint it holds the same rows at the same positions, and later writes evict
/// the same keys as in a table that never restarted.
#[test]
fn a_keyed_table_with_a_capacity_is_checkpointed_and_evicts_the_same_keys_after() {
    const CAPACITY: usize = 20;
    let dir = TempDir::new("ckpt-cap");
    let reference = Engine::builder().manual().build().unwrap();
    let (rt, rp) = keyed(&reference, false, Some(CAPACITY));
    // Keys from 0..60, touched in an order that keeps the recency order far from the
    // position order; some deleted.
    let round = |c: i64, p: &TablePublisher| {
        p.add(kv(
            &[(c * 7) % 60, (c * 11 + 3) % 60, c % 60],
            &[c, -c, c * 2],
        ))
        .unwrap();
        if c % 4 == 0 {
            p.delete(kv(&[(c * 13) % 60], &[0])).unwrap();
        }
    };
    {
        let e = engine_with(dir.path(), 2048);
        let (t, p) = keyed(&e, true, Some(CAPACITY));
        for c in 0..300 {
            round(c, &p);
            round(c, &rp);
            e.run_cycle();
            reference.run_cycle();
        }
        // Checkpoints are written off the cycle: let the last one finish.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while e.stats().log.checkpoints < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(e.stats().log.checkpoints >= 2, "{:?}", e.stats().log);
        assert_eq!(kv_state(&t), kv_state(&rt));
    }
    assert!(
        segments(&dir.path().join("book")).len() <= 4,
        "the log is bounded: {:?}",
        segments(&dir.path().join("book"))
    );
    let e = engine_with(dir.path(), 2048);
    let (t, p) = keyed(&e, true, Some(CAPACITY));
    let r = e.replay_report("book").unwrap();
    assert!(r.checkpoint.is_some() && r.corruption.is_none(), "{r}");
    assert_eq!(kv_state(&t), kv_state(&rt));
    // New keys evict the least recently written ones: the same in both.
    for c in 300..340 {
        p.add(kv(&[1000 + c], &[c])).unwrap();
        rp.add(kv(&[1000 + c], &[c])).unwrap();
        if c % 3 == 0 {
            // An old key written again moves to the newest end.
            p.add(kv(&[(c * 7) % 60], &[c])).unwrap();
            rp.add(kv(&[(c * 7) % 60], &[c])).unwrap();
        }
        e.run_cycle();
        reference.run_cycle();
        assert_eq!(kv_state(&t), kv_state(&rt), "after cycle {c}");
    }
    // Another capacity is another kind, even where the checkpoint is read first.
    drop((t, p, e));
    let e = engine_with(dir.path(), 2048);
    for capacity in [Some(CAPACITY / 2), None] {
        let options = PublisherOptions::default()
            .with_kind(TableKind::Keyed { capacity })
            .with_key(["k"])
            .durable();
        let err = e
            .table_publisher("book", keyed_schema(), options)
            .unwrap_err();
        assert!(
            matches!(err, Error::KindChanged { .. }),
            "{capacity:?}: {err}"
        );
    }
}

#[test]
fn the_engine_step_continues_past_the_largest_logged_step() {
    let dir = TempDir::new("step");
    let last = {
        let e = engine(dir.path());
        let (_, p) = durable_table(&e, "xs", TableKind::Blink);
        for _ in 0..7 {
            e.run_cycle();
        }
        p.add(int_batch(0..1)).unwrap();
        e.run_cycle()
    };
    let e = engine(dir.path());
    assert_eq!(e.step(), Step::new(0));
    let _ = durable_table(&e, "xs", TableKind::Blink);
    assert!(e.step() >= last);
    assert!(e.run_cycle() > last);
}

#[test]
fn stats_report_bytes_logged_fsyncs_and_the_cycle_wait() {
    let dir = TempDir::new("stats");
    let e = durable_engine(dir.path(), SyncPolicy::EveryCycle);
    let (_, p) = durable_table(&e, "xs", TableKind::Append);
    p.add(int_batch(0..100)).unwrap();
    e.run_cycle();
    let c = e.last_cycle().unwrap();
    assert!(c.log_bytes > 800, "{c:?}");
    let s = e.stats();
    assert!(
        s.log.bytes >= c.log_bytes && s.log.fsyncs >= 1 && s.log.records == 1,
        "{s:?}"
    );
    // A cycle with nothing to log does not wait.
    e.run_cycle();
    assert_eq!(e.last_cycle().unwrap().log_bytes, 0);
    assert_eq!((s.log.replayed_tables, s.log.replayed_rows), (1, 0));
    drop(e);
    // The next engine counts the replay at start: the table's 100 rows.
    let e = engine(dir.path());
    let _table = durable_table(&e, "xs", TableKind::Append);
    let s = e.stats();
    assert_eq!((s.log.replayed_tables, s.log.replayed_rows), (1, 100));
    assert_eq!(s.log.replay_time, e.replay_report("xs").unwrap().duration);
}

#[test]
fn a_failed_table_is_reported_by_replay_and_comes_back_open() {
    let dir = TempDir::new("close");
    {
        let e = engine(dir.path());
        let (_, p) = durable_table(&e, "xs", TableKind::Append);
        p.add(int_batch(0..2)).unwrap();
        p.publish_failure(Error::InvalidOption {
            option: "feed",
            reason: "gone".into(),
        });
        e.run_cycle();
    }
    let e = engine(dir.path());
    let (t, p) = durable_table(&e, "xs", TableKind::Append);
    let r = e.replay_report("xs").unwrap();
    assert!(r.closed_at.is_some());
    assert!(
        r.failure.as_deref().is_some_and(|f| f.contains("gone")),
        "{r:?}"
    );
    assert_eq!(t.num_rows(), 2);
    assert!(p.is_alive());
}

#[test]
fn never_and_interval_policies_replay_after_a_clean_shutdown() {
    for policy in [
        SyncPolicy::Never,
        SyncPolicy::Interval(std::time::Duration::from_millis(5)),
    ] {
        let dir = TempDir::new("policy");
        let build = || {
            Engine::builder()
                .manual()
                .data_dir(dir.path())
                .sync_policy(policy)
                .build()
                .unwrap()
        };
        {
            let e = build();
            let (_, p) = durable_table(&e, "xs", TableKind::Append);
            for c in 0..5 {
                p.add(int_batch(c..=c)).unwrap();
                e.run_cycle();
                assert_eq!(e.last_cycle().unwrap().log_wait, std::time::Duration::ZERO);
            }
        }
        let e = build();
        let (t, _) = durable_table(&e, "xs", TableKind::Append);
        assert_eq!(state(&t.snapshot()), (0..5, (0..5).collect()), "{policy:?}");
    }
}

/// A durable blink table's history, across a restart, in an append and a ring table that
/// then follow the blink's new rows.
#[test]
fn a_history_table_holds_a_durable_blinks_logged_rows_then_follows_it() {
    let dir = TempDir::new("history");
    {
        let e = engine(dir.path());
        let (_, p) = durable_table(&e, "ticks", TableKind::Blink);
        p.add(int_batch(0..3)).unwrap();
        e.run_cycle();
        p.add(int_batch(3..5)).unwrap();
        e.run_cycle();
        e.run_cycle();
    }
    let e = engine(dir.path());
    let (blink, p) = durable_table(&e, "ticks", TableKind::Blink);
    assert_eq!(blink.num_rows(), 0, "a blink table comes back empty");
    p.add(int_batch(5..8)).unwrap();
    e.run_cycle();
    let all = e.history_table("all", &blink, TableKind::Append).unwrap();
    let last = e
        .history_table("last", &blink, TableKind::Ring { capacity: 4 })
        .unwrap();
    assert_eq!(values(&all), (0..8).collect::<Vec<_>>());
    assert_eq!(all.snapshot().rows(), 0..8);
    assert_eq!(values(&last), vec![4, 5, 6, 7]);
    p.add(int_batch(8..10)).unwrap();
    e.run_cycle();
    assert_eq!(values(&all), (0..10).collect::<Vec<_>>());
    assert_eq!(values(&last), vec![6, 7, 8, 9]);
    // After a cycle without rows the blink is empty; its history is all there.
    e.run_cycle();
    let later = e.history_table("later", &blink, TableKind::Append).unwrap();
    assert_eq!(values(&later), (0..10).collect::<Vec<_>>());
}

/// With `SyncPolicy::Never` the writer runs behind the cycles: the history still holds every
/// row a cycle made visible.
#[test]
fn a_history_table_reads_what_the_writer_still_held() {
    let dir = TempDir::new("history-never");
    let e = durable_engine(dir.path(), SyncPolicy::Never);
    let (blink, p) = durable_table(&e, "ticks", TableKind::Blink);
    for c in 0..20 {
        p.add(int_batch(c * 10..c * 10 + 10)).unwrap();
        e.run_cycle();
    }
    let all = e.history_table("all", &blink, TableKind::Append).unwrap();
    assert_eq!(values(&all), (0..200).collect::<Vec<_>>());
}

/// Cycles running while the history is read (a threaded engine, a producer writing all the
/// while): the history table still holds every row once, in order.
#[test]
fn a_history_table_made_while_cycles_run_misses_and_repeats_nothing() {
    const ROWS: i64 = 3000;
    let dir = TempDir::new("history-live");
    let e = Engine::builder()
        .period(std::time::Duration::from_millis(1))
        .data_dir(dir.path())
        .sync_policy(SyncPolicy::Never)
        .build()
        .unwrap();
    let (blink, p) = durable_table(&e, "ticks", TableKind::Blink);
    let producer = std::thread::spawn(move || {
        for n in (0..ROWS).step_by(10) {
            p.add(int_batch(n..n + 10)).unwrap();
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    });
    let mut tables = Vec::new();
    for i in 0..5 {
        while blink.snapshot().rows().end < 500 * (i + 1) {
            std::thread::yield_now();
        }
        tables.push(
            e.history_table(&format!("h{i}"), &blink, TableKind::Append)
                .unwrap(),
        );
    }
    producer.join().unwrap();
    e.sync();
    for t in &tables {
        assert_eq!(values(t), (0..ROWS).collect::<Vec<_>>(), "{}", t.name());
    }
}

#[test]
fn a_history_table_needs_a_durable_blink_source_and_an_append_or_ring_kind() {
    let dir = TempDir::new("history-bad");
    let e = engine(dir.path());
    let (blink, _) = durable_table(&e, "ticks", TableKind::Blink);
    let (append, _) = durable_table(&e, "xs", TableKind::Append);
    let (plain, _) = e
        .table_publisher(
            "plain",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Blink),
        )
        .unwrap();
    for (source, kind) in [
        (&append, TableKind::Append),
        (&plain, TableKind::Append),
        (&blink, TableKind::Blink),
        (&blink, TableKind::Ring { capacity: 0 }),
    ] {
        let err = e.history_table("h", source, kind).unwrap_err();
        assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
    }
    let memory = Engine::builder().manual().build().unwrap();
    let (b, _) = memory
        .table_publisher(
            "ticks",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Blink),
        )
        .unwrap();
    let err = memory
        .history_table("h", &b, TableKind::Append)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
}
