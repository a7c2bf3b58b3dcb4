//! Shared helpers for the behaviour tests: int tables, recording listeners, draining
//! subscriptions and a position-exact mirror of a table.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use parking_lot::Mutex;
use tickertable::test_util::{i64_column, int_batch, int_schema};
use tickertable::{
    EngineHandle, Event, ListenerHandle, PublisherOptions, Step, Table, TableKind, TablePublisher,
    TableSnapshot, TableUpdate, TryRecvError,
};

/// A fresh directory under the system temp dir, named for the test (`tag`), the process and
/// a counter, removed when dropped.
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("tickertable-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("a temp dir can be made");
        Self(p)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A manual engine on data directory `dir` with sync policy `policy`.
pub(crate) fn durable_engine(
    dir: &std::path::Path,
    policy: tickertable::SyncPolicy,
) -> tickertable::Engine {
    tickertable::Engine::builder()
        .manual()
        .data_dir(dir)
        .sync_policy(policy)
        .build()
        .expect("a durable engine")
}

/// The hang guard for anything that waits on another thread. Never asserted on.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(10);

/// A publisher-fed table of `int_schema()` (one non-null int64 column `v`).
pub(crate) fn int_table(
    engine: &EngineHandle,
    name: &str,
    kind: TableKind,
) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            name,
            int_schema(),
            PublisherOptions::default().with_kind(kind),
        )
        .expect("create table")
}

/// Stages `values` as one batch.
pub(crate) fn add(publisher: &TablePublisher, values: Range<i64>) {
    publisher.add(int_batch(values)).expect("add batch");
}

/// The `v` column of a table's current snapshot.
pub(crate) fn values(table: &Table) -> Vec<i64> {
    snapshot_values(&table.snapshot())
}

/// The `v` column of a snapshot.
pub(crate) fn snapshot_values(snapshot: &TableSnapshot) -> Vec<i64> {
    i64_column(snapshot.batches(), 0)
}

/// The `v` column of some batches.
pub(crate) fn batch_values(batches: &[RecordBatch]) -> Vec<i64> {
    i64_column(batches, 0)
}

/// The added rows' `v` column of an update.
pub(crate) fn update_values(update: &TableUpdate) -> Vec<i64> {
    i64_column(update.batches(), 0)
}

/// One update as a listener or subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) step: Step,
    pub(crate) removed: Range<u64>,
    pub(crate) added: Range<u64>,
    pub(crate) values: Vec<i64>,
}

impl Seen {
    pub(crate) fn of(update: &TableUpdate) -> Self {
        Self {
            step: update.step(),
            removed: update.removed(),
            added: update.added(),
            values: update_values(update),
        }
    }
}

/// A listener that records every update it gets.
pub(crate) fn record(table: &Table) -> (ListenerHandle, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let handle = table
        .listen(move |u: &TableUpdate| sink.lock().push(Seen::of(u)))
        .expect("listen");
    (handle, seen)
}

/// Takes every event queued now.
pub(crate) fn drain(sub: &tickertable::Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(e) => out.push(e),
            Err(TryRecvError::Empty | TryRecvError::Ended) => return out,
        }
    }
}

/// The updates among `events`, as `Seen`; panics on any other event.
pub(crate) fn updates(events: &[Event]) -> Vec<Seen> {
    events
        .iter()
        .map(|e| match e {
            Event::Update(u) => Seen::of(u),
            other => panic!("expected an update, got {other:?}"),
        })
        .collect()
}

/// A copy of a table kept exact by applying a subscription's events, row by row with the
/// position of each row, so a wrong range shows up as a wrong position.
#[derive(Debug, Default)]
pub(crate) struct Mirror {
    pub(crate) rows: VecDeque<(u64, i64)>,
    pub(crate) end: u64,
}

impl Mirror {
    pub(crate) fn reset(&mut self, snapshot: &TableSnapshot) {
        self.rows.clear();
        let range = snapshot.rows();
        let vals = snapshot_values(snapshot);
        assert_eq!(
            vals.len() as u64,
            range.end - range.start,
            "snapshot rows() and its batches disagree"
        );
        self.rows.extend(range.clone().zip(vals));
        self.end = range.end;
    }

    pub(crate) fn apply(&mut self, update: &TableUpdate) {
        for pos in update.removed() {
            let front = self
                .rows
                .pop_front()
                .expect("removed a row the mirror lacks");
            assert_eq!(front.0, pos, "removed range is not a prefix of the window");
        }
        let added = update.added();
        assert!(added.start >= self.end, "added range goes backwards");
        let vals = update_values(update);
        assert_eq!(vals.len() as u64, added.end - added.start);
        self.rows.extend(added.clone().zip(vals));
        self.end = added.end;
    }

    /// Applies one event; returns false for `Failed`.
    pub(crate) fn on_event(&mut self, event: &Event) -> bool {
        match event {
            Event::Snapshot(s) | Event::Lagged { snapshot: s, .. } => self.reset(s),
            Event::Update(u) => self.apply(u),
            Event::Failed(_) => return false,
            other => panic!("unknown event {other:?}"),
        }
        true
    }

    pub(crate) fn positions(&self) -> Range<u64> {
        match (self.rows.front(), self.rows.back()) {
            (Some(f), Some(b)) => f.0..b.0 + 1,
            _ => self.end..self.end,
        }
    }

    pub(crate) fn values(&self) -> Vec<i64> {
        self.rows.iter().map(|r| r.1).collect()
    }

    /// Asserts the mirror equals the table's snapshot, positions included.
    pub(crate) fn assert_matches(&self, snapshot: &TableSnapshot) {
        assert_eq!(self.values(), snapshot_values(snapshot));
        if !snapshot.is_empty() {
            assert_eq!(self.positions(), snapshot.rows());
        }
    }
}

/// Runs cycles of a manual engine on another thread until dropped, so writers into tables
/// with a small staging limit drain.
pub(crate) struct Cycler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cycler {
    pub(crate) fn start(engine: EngineHandle) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                engine.run_cycle();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Cycler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the cycle thread ran");
        }
    }
}
