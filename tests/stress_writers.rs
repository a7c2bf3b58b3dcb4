//! Stress: eight writer threads racing the cycle with every kind of write at once.
//!
//! Each writer thread mixes single rows through its own `RowWriter`, batches of 1 to 5,000
//! rows through a `TablePublisher` into one of two sibling tables, and transactions that
//! commit or roll back, while cycles run at random moments: from a dedicated thread calling
//! `run_cycle` on a manual engine between random tiny yields, or from a threaded engine with a
//! 1 ms period. Every row carries (thread, sequence number, group), where a group is a
//! transaction or a batch (0 for a single row). After a final cycle, what the listeners saw
//! must hold every committed row exactly once, each thread's rows in its own order, no
//! rolled-back row, and each group whole in one update.
//!
//! Two subscribers ride along: one joins while the writers run and must see every row from
//! its snapshot on exactly once, and one never reads and must lag with its queue bounded.
//!
//! Sizes are consts, shrunk under Miri. Timeouts are hang guards only; nothing asserts on
//! wall-clock time.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::test_util::{i64_column, manual_engine};
use tickertable::{
    DynamicTableWriter, DynamicWriterOptions, Engine, Event, ListenerHandle, PublisherOptions,
    Step, Subscription, SubscriptionOptions, Table, TableKind, TablePublisher, TableUpdate,
    TryRecvError, Value,
};

/// Writer threads.
const THREADS: usize = 8;
/// Operations (a row, a batch, a transaction or a yield) per writer thread.
const OPS_PER_THREAD: usize = if cfg!(miri) { 8 } else { 300 };
/// The largest batch a writer publishes.
const MAX_BATCH: u64 = if cfg!(miri) { 20 } else { 5_000 };
/// The largest transaction, in rows.
const MAX_TXN: u64 = 12;
/// The queue capacity of the subscriber that never reads.
const LAG_CAPACITY: usize = 4;
/// Hang guard for every wait; never an assertion on speed.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Tables: rows written by `RowWriter`s, and two sibling tables fed by publishers.
const ROWS: usize = 0;
const BATCHES_A: usize = 1;
const BATCHES_B: usize = 2;
const TABLES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Row {
    thread: i64,
    seq: i64,
    group: i64,
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("thread", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("group", DataType::Int64, false),
    ]))
}

fn batch(thread: i64, seqs: std::ops::Range<i64>, group: i64) -> RecordBatch {
    let n = usize::try_from(seqs.end - seqs.start).unwrap();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(vec![thread; n])),
            Arc::new(Int64Array::from_iter_values(seqs)),
            Arc::new(Int64Array::from(vec![group; n])),
        ],
    )
    .unwrap()
}

fn decode<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Vec<Row> {
    let batches: Vec<&RecordBatch> = batches.into_iter().collect();
    let threads = i64_column(batches.iter().copied(), 0);
    let seqs = i64_column(batches.iter().copied(), 1);
    let groups = i64_column(batches.iter().copied(), 2);
    threads
        .into_iter()
        .zip(seqs)
        .zip(groups)
        .map(|((thread, seq), group)| Row { thread, seq, group })
        .collect()
}

/// A small deterministic PRNG (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A thread whose result (or panic) comes back through a channel, so waiting for it can have
/// a hang guard.
struct Guarded<T> {
    name: String,
    rx: mpsc::Receiver<thread::Result<T>>,
    handle: JoinHandle<()>,
}

fn spawn_guarded<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Guarded<T> {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .unwrap();
    Guarded {
        name: name.to_owned(),
        rx,
        handle,
    }
}

impl<T> Guarded<T> {
    fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    fn join(self, deadline: Instant) -> T {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(Ok(value)) => {
                self.handle.join().unwrap();
                value
            }
            Ok(Err(panic)) => resume_unwind(panic),
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                panic!("hang guard: thread {} did not finish", self.name)
            }
        }
    }
}

/// Holds every writer halfway until the mid-run subscriber has joined.
#[derive(Debug, Default)]
struct Gate {
    arrived: AtomicUsize,
    open: AtomicBool,
}

impl Gate {
    fn arrive_and_wait(&self, deadline: Instant) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        // Acquire pairs with `open`'s Release: the subscription exists once this is seen.
        while !self.open.load(Ordering::Acquire) {
            assert!(
                Instant::now() < deadline,
                "hang guard: the gate never opened"
            );
            thread::sleep(Duration::from_micros(200));
        }
    }
}

/// What one writer thread committed, per table, and what it rolled back.
#[derive(Debug, Default)]
struct Written {
    thread: i64,
    /// Sequence numbers of committed rows, per table, in write order.
    committed: [Vec<i64>; TABLES],
    /// (table, group, rows) of every committed transaction and published batch.
    groups: Vec<(usize, i64, usize)>,
    /// Groups of rolled-back transactions.
    rolled_back: Vec<i64>,
}

/// One writer thread's work: `ops` random operations.
fn write(
    thread: i64,
    ops: usize,
    max_batch: u64,
    dtw: &DynamicTableWriter,
    publishers: &[TablePublisher; 2],
    gate: &Gate,
    deadline: Instant,
) -> Written {
    let mut rng = Rng::new(u64::try_from(thread).unwrap() + 1);
    let mut w = dtw.row_writer().unwrap();
    let mut out = Written {
        thread,
        ..Written::default()
    };
    let mut seq = 0i64;
    let mut group = 0i64;
    let row = |w: &mut tickertable::RowWriter, seq: &mut i64, group: i64| {
        w.write_row(&[Value::Int(thread), Value::Int(*seq), Value::Int(group)])
            .unwrap();
        *seq += 1;
        *seq - 1
    };
    for op in 0..ops {
        if op == ops / 2 {
            gate.arrive_and_wait(deadline);
        }
        match rng.below(10) {
            0..=3 => {
                let s = row(&mut w, &mut seq, 0);
                out.committed[ROWS].push(s);
            }
            4 | 5 => {
                let n = i64::try_from(1 + rng.below(max_batch)).unwrap();
                let table = 1 + usize::try_from(rng.below(2)).unwrap();
                group += 1;
                publishers[table - 1]
                    .add(batch(thread, seq..seq + n, group))
                    .unwrap();
                out.committed[table].extend(seq..seq + n);
                out.groups.push((table, group, usize::try_from(n).unwrap()));
                seq += n;
            }
            6..=8 => {
                let n = 1 + rng.below(MAX_TXN);
                let commit = rng.below(3) != 0;
                group += 1;
                w.begin().unwrap();
                let seqs: Vec<i64> = (0..n).map(|_| row(&mut w, &mut seq, group)).collect();
                if rng.below(2) == 0 {
                    thread::yield_now();
                }
                if commit {
                    w.commit().unwrap();
                    out.groups.push((ROWS, group, seqs.len()));
                    out.committed[ROWS].extend(seqs);
                } else {
                    w.rollback().unwrap();
                    out.rolled_back.push(group);
                }
            }
            _ => thread::yield_now(),
        }
    }
    out
}

/// A table's updates as the listener saw them: (step, batches).
type Seen = mpsc::Receiver<(Step, Vec<RecordBatch>)>;

fn listen(table: &Table) -> (ListenerHandle, Seen) {
    let (tx, rx) = mpsc::channel();
    let handle = table
        .listen(move |u: &TableUpdate| {
            tx.send((u.step(), u.batches().to_vec())).unwrap();
        })
        .unwrap();
    (handle, rx)
}

/// Compares two sequences, reporting the first difference rather than both in full.
fn assert_same(got: &[i64], want: &[i64], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!(
            "{what}: first difference at {i}: got {} want {} (lengths {} and {})",
            got[i],
            want[i],
            got.len(),
            want.len()
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
}

/// Checks every table's listener record against what the writers did.
fn check_seen(seen: &[Vec<(Step, Vec<Row>)>; TABLES], written: &[Written]) {
    for (t, updates) in seen.iter().enumerate() {
        let steps: Vec<Step> = updates.iter().map(|(s, _)| *s).collect();
        assert!(
            steps.windows(2).all(|w| w[0] < w[1]),
            "table {t}: one update per step, in step order"
        );
        let mut per_thread: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut groups: HashMap<(i64, i64), (HashSet<Step>, usize)> = HashMap::new();
        for (step, rows) in updates {
            for r in rows {
                per_thread.entry(r.thread).or_default().push(r.seq);
                if r.group != 0 {
                    let g = groups.entry((r.thread, r.group)).or_default();
                    g.0.insert(*step);
                    g.1 += 1;
                }
            }
        }
        for w in written {
            let got = per_thread.remove(&w.thread).unwrap_or_default();
            assert_same(
                &got,
                &w.committed[t],
                &format!("table {t}, thread {}: rows", w.thread),
            );
            for &(table, group, rows) in w.groups.iter().filter(|g| g.0 == t) {
                let (steps, count) = groups
                    .remove(&(w.thread, group))
                    .unwrap_or_else(|| panic!("table {table}: group {group} never appeared"));
                assert_eq!(
                    steps.len(),
                    1,
                    "table {t}, thread {} group {group} split over steps {steps:?}",
                    w.thread
                );
                assert_eq!(count, rows, "table {t}, thread {} group {group}", w.thread);
            }
            for g in &w.rolled_back {
                assert!(
                    !groups.contains_key(&(w.thread, *g)),
                    "table {t}: rolled-back group {g} of thread {} appeared",
                    w.thread
                );
            }
        }
        assert!(per_thread.is_empty(), "table {t}: rows of unknown threads");
        assert!(groups.is_empty(), "table {t}: unknown groups {groups:?}");
    }
}

/// What the subscriber that joined mid-run rebuilt.
struct Joined {
    snapshot_rows: std::ops::Range<u64>,
    rows: Vec<Row>,
    updates: usize,
}

/// Reads a subscription to the end: a snapshot, then contiguous append-only updates.
fn follow(sub: &Subscription) -> Joined {
    let snapshot = match sub.recv() {
        Some(Event::Snapshot(s)) => s,
        other => panic!("the first event must be the snapshot, got {other:?}"),
    };
    let mut rows = decode(snapshot.batches());
    let mut end = snapshot.rows().end;
    let mut updates = 0;
    while let Some(event) = sub.recv() {
        match event {
            Event::Update(u) => {
                assert!(
                    u.removed().is_empty(),
                    "append table removed {:?}",
                    u.removed()
                );
                assert_eq!(u.added().start, end, "a gap or an overlap before {u:?}");
                rows.extend(decode(u.batches()));
                end = u.added().end;
                assert_eq!(rows.len() as u64, end, "batches do not hold the added rows");
                updates += 1;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    Joined {
        snapshot_rows: snapshot.rows(),
        rows,
        updates,
    }
}

/// Reads what the never-reading subscriber queued; returns its mirror and how many lags.
fn resync(sub: &Subscription) -> (Vec<Row>, usize) {
    let mut rows: Option<Vec<Row>> = None;
    let mut end = 0;
    let mut lags = 0;
    loop {
        match sub.try_recv() {
            Ok(Event::Lagged { missed, snapshot }) => {
                assert!(missed > 0);
                lags += 1;
                rows = Some(decode(snapshot.batches()));
                end = snapshot.rows().end;
            }
            Ok(Event::Snapshot(snapshot)) => {
                assert!(rows.is_none(), "a snapshot after other events");
                rows = Some(decode(snapshot.batches()));
                end = snapshot.rows().end;
            }
            Ok(Event::Update(u)) => {
                let rows = rows.as_mut().expect("an update before any snapshot");
                assert_eq!(u.added().start, end, "a gap after a resync");
                rows.extend(decode(u.batches()));
                end = u.added().end;
            }
            Err(TryRecvError::Ended) => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    (rows.expect("at least one snapshot"), lags)
}

/// Sizes of one stress run.
#[derive(Debug, Clone, Copy)]
struct Size {
    threads: usize,
    ops: usize,
    max_batch: u64,
}

const FULL: Size = Size {
    threads: THREADS,
    ops: OPS_PER_THREAD,
    max_batch: MAX_BATCH,
};

/// What a run observed beyond its own assertions.
struct Report {
    joined: Joined,
    final_rows: usize,
    lag_max_len: usize,
    lag_samples: usize,
    lagged_count: u64,
    lag_resyncs: usize,
}

/// Runs one stress: writers, cycles (from a thread of ours when `engine` is manual), a
/// subscriber joining mid-run and one that never reads. Checks everything at the end.
/// The lagging subscriber and what sampling its queue length found.
struct LagProbe {
    sub: Subscription,
    max_len: usize,
    samples: usize,
}

impl LagProbe {
    fn sample(&mut self) {
        let len = self.sub.len();
        assert!(len <= LAG_CAPACITY, "the lagging queue grew to {len}");
        self.max_len = self.max_len.max(len);
        self.samples += 1;
    }
}

/// On a manual engine, a thread that runs cycles at random moments until `stop`.
fn start_cycler(engine: &Engine, stop: &Arc<AtomicBool>) -> Option<Guarded<u64>> {
    engine.is_manual().then(|| {
        let (handle, stop) = (engine.handle(), stop.clone());
        spawn_guarded("cycle", move || {
            let mut rng = Rng::new(99);
            let mut cycles = 0u64;
            // Acquire pairs with the Release after the writers are joined.
            while !stop.load(Ordering::Acquire) {
                handle.run_cycle();
                cycles += 1;
                for _ in 0..rng.below(4) {
                    thread::yield_now();
                }
            }
            cycles
        })
    })
}

/// More changing cycles than the lagging queue holds, so it must lag whatever the timing;
/// then a last cycle. Returns what was written, as thread `thread`.
fn write_final_rows(
    engine: &Engine,
    dtw: &DynamicTableWriter,
    thread: i64,
    lag: &mut LagProbe,
) -> Written {
    let mut w = dtw.row_writer().unwrap();
    let mut mine = Written {
        thread,
        ..Written::default()
    };
    for seq in 0..i64::try_from(2 * LAG_CAPACITY + 1).unwrap() {
        w.write_row(&[Value::Int(thread), Value::Int(seq), Value::Int(0)])
            .unwrap();
        mine.committed[ROWS].push(seq);
        engine.run_cycle();
        lag.sample();
    }
    drop(w);
    engine.run_cycle();
    mine
}

/// Every listener's record, decoded; checks the tables' final snapshots against it.
fn collect_seen(
    tables: &[Table; TABLES],
    listeners: &[(ListenerHandle, Seen)],
) -> [Vec<(Step, Vec<Row>)>; TABLES] {
    let mut seen: [Vec<(Step, Vec<Row>)>; TABLES] = Default::default();
    for (t, (handle, rx)) in listeners.iter().enumerate() {
        assert!(
            handle.is_active(),
            "listener {t} failed: {:?}",
            handle.failure()
        );
        seen[t] = rx
            .try_iter()
            .map(|(step, batches)| (step, decode(&batches)))
            .collect();
    }
    // The append tables hold exactly what their listeners saw.
    for t in [ROWS, BATCHES_A] {
        let snap = tables[t].snapshot();
        let all: Vec<Row> = seen[t]
            .iter()
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        assert_eq!(snap.rows(), 0..all.len() as u64, "table {t}");
        assert!(
            decode(snap.batches()) == all,
            "table {t}: snapshot != updates"
        );
    }
    assert!(
        tables[BATCHES_B].snapshot().is_empty(),
        "the blink sibling empties after a cycle without rows"
    );
    seen
}

/// Runs one stress: writers, cycles (from a thread of ours when `engine` is manual), a
/// subscriber joining mid-run and one that never reads. Checks everything at the end.
fn run_stress(engine: Engine, size: Size) -> Report {
    let deadline = Instant::now() + HANG_GUARD;
    let dtw = engine
        .dynamic_table_writer("rows", schema(), DynamicWriterOptions::default())
        .unwrap();
    let (table_a, pub_a) = engine
        .table_publisher(
            "batches_a",
            schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let (table_b, pub_b) = engine
        .table_publisher("batches_b", schema(), PublisherOptions::default())
        .unwrap();
    let tables = [dtw.table().clone(), table_a, table_b];
    let listeners: Vec<(ListenerHandle, Seen)> = tables.iter().map(listen).collect();
    let mut lag = LagProbe {
        sub: dtw
            .table()
            .subscribe_with(SubscriptionOptions::default().with_capacity(LAG_CAPACITY))
            .unwrap(),
        max_len: 0,
        samples: 0,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let cycler = start_cycler(&engine, &stop);
    let gate = Arc::new(Gate::default());
    let writers: Vec<Guarded<Written>> = (0..size.threads)
        .map(|t| {
            let (dtw, gate) = (dtw.clone(), gate.clone());
            let publishers = [pub_a.clone(), pub_b.clone()];
            spawn_guarded(&format!("writer{t}"), move || {
                let thread = i64::try_from(t).unwrap();
                write(
                    thread,
                    size.ops,
                    size.max_batch,
                    &dtw,
                    &publishers,
                    &gate,
                    deadline,
                )
            })
        })
        .collect();

    // Join once every writer is halfway and rows are visible; the writers go on after.
    while gate.arrived.load(Ordering::Acquire) < size.threads || dtw.table().num_rows() == 0 {
        assert!(
            Instant::now() < deadline,
            "hang guard: writers never got halfway"
        );
        if let Some(i) = writers.iter().position(Guarded::is_finished) {
            // Only a panic ends a writer before the gate opens: propagate it.
            writers.into_iter().nth(i).unwrap().join(deadline);
            unreachable!("writer {i} finished before the gate opened");
        }
        lag.sample();
        thread::sleep(Duration::from_micros(200));
    }
    let joined = dtw.table().subscribe().unwrap();
    // Release pairs with the writers' Acquire.
    gate.open.store(true, Ordering::Release);
    let follower = spawn_guarded("follower", move || follow(&joined));

    while !writers.iter().all(Guarded::is_finished) {
        assert!(
            Instant::now() < deadline,
            "hang guard: writers still running"
        );
        lag.sample();
        thread::sleep(Duration::from_millis(1));
    }
    let mut written: Vec<Written> = writers.into_iter().map(|w| w.join(deadline)).collect();
    stop.store(true, Ordering::Release);
    if let Some(thread) = cycler {
        assert!(thread.join(deadline) > 0);
    }
    let main_thread = i64::try_from(size.threads).unwrap();
    written.push(write_final_rows(&engine, &dtw, main_thread, &mut lag));

    let seen = collect_seen(&tables, &listeners);
    check_seen(&seen, &written);
    let final_rows = decode(tables[ROWS].snapshot().batches());

    // Shutting down ends the subscriptions; the follower returns.
    drop(engine);
    let joined = follower.join(deadline);
    assert!(
        joined.rows == final_rows,
        "the mid-run subscriber's rows differ from the table's ({} vs {})",
        joined.rows.len(),
        final_rows.len()
    );
    let lagged_count = lag.sub.lagged_count();
    let (resynced, lag_resyncs) = resync(&lag.sub);
    assert!(
        resynced == final_rows,
        "the lagging subscriber did not resynchronise"
    );
    Report {
        joined,
        final_rows: final_rows.len(),
        lag_max_len: lag.max_len,
        lag_samples: lag.samples,
        lagged_count,
        lag_resyncs,
    }
}

#[test]
fn smoke() {
    let report = run_stress(
        manual_engine(),
        Size {
            threads: 2,
            ops: 20,
            max_batch: 10,
        },
    );
    assert!(report.final_rows > 0);
}

#[test]
fn eight_writers_racing_a_manual_cycle_thread_lose_duplicate_split_and_reorder_nothing() {
    run_stress(manual_engine(), FULL);
}

#[test]
fn eight_writers_on_a_threaded_engine_with_a_1ms_period_lose_duplicate_split_and_reorder_nothing() {
    let engine = Engine::builder()
        .period(Duration::from_millis(1))
        .build()
        .unwrap();
    run_stress(engine, FULL);
}

#[test]
fn a_subscriber_joining_while_writers_run_sees_every_later_row_exactly_once() {
    let report = run_stress(
        manual_engine(),
        Size {
            threads: THREADS,
            ops: OPS_PER_THREAD / 3,
            max_batch: MAX_BATCH / 10,
        },
    );
    let joined = &report.joined;
    // `run_stress` checked snapshot + updates == the table; here: it joined mid-stream, with
    // rows before it (in its snapshot) and after it (in its updates).
    assert!(joined.snapshot_rows.end > 0, "joined before any row");
    assert!(
        joined.snapshot_rows.end < report.final_rows as u64,
        "joined after the last row"
    );
    assert!(joined.updates > 0);
}

#[test]
fn a_subscriber_that_stops_reading_lags_with_a_bounded_queue_while_cycles_go_on() {
    let report = run_stress(
        manual_engine(),
        Size {
            threads: THREADS,
            ops: OPS_PER_THREAD / 3,
            max_batch: MAX_BATCH / 10,
        },
    );
    assert!(report.lag_samples > 0);
    assert!(report.lag_max_len <= LAG_CAPACITY);
    assert!(report.lagged_count > 0, "it never lagged");
    assert_eq!(
        report.lag_resyncs, 1,
        "one Lagged replaces everything queued"
    );
}
