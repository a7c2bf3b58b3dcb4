//! The engine's log writer: one thread that encodes, writes and syncs every durable table's
//! records, and the handoff the cycle uses to give it a cycle's records.
//!
//! # Locking
//!
//! The writer thread takes no engine lock: the cycle hands it a cycle's records (`Arc`'d
//! batches, O(batches)) through the writer's queue, a leaf lock, and with
//! [`SyncPolicy::EveryCycle`] waits on that cycle's [`Ack`] (a leaf lock too) while holding
//! only the upgradable side of the global lock (see `graph/cycle.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;

use crate::durable::checkpoint::{self, CheckpointRows};
use crate::durable::files::{self, SegmentWriter};
use crate::durable::format::{CloseRecord, Encoded, RowsRecord, SegmentHeader, Shape};
use crate::durable::lock::DirLock;
use crate::durable::{LogStats, ReplayReport, SyncPolicy, TableLogStats};
use crate::error::{Error, Result};
use crate::step::Step;
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, Ordering};
use crate::table::kind::Retention;
use crate::table::shared::TableId;

/// Where dropped tables' directories are moved before they are deleted (a table's
/// directory never starts with `.`).
pub(crate) const DROPPED_DIR: &str = ".dropped";

/// How long a cycle waits on its [`Ack`] before it looks whether the writer died.
const ACK_SLICE: Duration = Duration::from_millis(100);

/// With [`SyncPolicy::Never`] and [`SyncPolicy::Interval`] cycles do not wait for the log,
/// but at most this many cycles' records are handed over and not yet written: past it, a
/// cycle waits for the oldest (as `EveryCycle` waits for its own), so a disk slower than
/// the producers slows the cycle instead of growing memory without bound.
pub(crate) const MAX_UNWRITTEN_CYCLES: usize = 16;

/// The durability settings of an engine.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) dir: PathBuf,
    pub(crate) sync: SyncPolicy,
    pub(crate) segment_bytes: u64,
}

/// One durable table's log, shared by the cycle (which hands its records over) and the
/// writer thread (which owns its files).
#[derive(Debug)]
pub(crate) struct TableLog {
    pub(crate) table: TableId,
    pub(crate) name: Arc<str>,
    pub(crate) dir: PathBuf,
    pub(crate) schema: SchemaRef,
    pub(crate) shape: Shape,
    /// Set by the writer when it asks for a checkpoint, cleared when the checkpoint is done
    /// (or failed). `AcqRel` swaps: one checkpoint at a time.
    checkpointing: AtomicBool,
    /// The size of the last checkpoint, so the next comes after twice as many log bytes.
    /// `Relaxed`: a heuristic.
    checkpoint_bytes: AtomicU64,
}

impl TableLog {
    /// Whether the table is checkpointed: a ring or a keyed table.
    fn checkpoints(&self) -> bool {
        matches!(
            self.shape.retention,
            Retention::Ring { .. } | Retention::Keyed { .. }
        )
    }
}

/// What one cycle logs for one table.
pub(crate) enum Body {
    Rows(RowsRecord),
    Close(CloseRecord),
    /// The table's rows after this cycle, to checkpoint.
    Checkpoint(CheckpointRows),
}

struct Record {
    log: Arc<TableLog>,
    body: Body,
}

enum Msg {
    /// A table opened by replay, with its new segment, end position and source cursor.
    Open(Arc<TableLog>, SegmentWriter, u64, Option<Buffer>),
    /// A dropped table: finish what was handed over for it, close its files, wait for its
    /// checkpoint, then acknowledge (its directory is deleted by [`Durable::forget`]).
    Forget(TableId, Arc<Ack>),
    /// Hand everything before it to the OS (not synced), then acknowledge: a reader of the
    /// files then finds every record handed over before.
    Flush(Arc<Ack>),
    Cycle {
        step: Step,
        records: Vec<Record>,
        ack: Arc<Ack>,
        /// Fsync the tables written before acknowledging (`EveryCycle`).
        sync: bool,
    },
}

/// What waiting for a cycle's records tells the cycle.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Acked {
    pub(crate) bytes: u64,
}

/// The writer's answer for one cycle.
pub(crate) struct Ack {
    done: Mutex<Option<Acked>>,
    cv: Condvar,
}

impl Ack {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            done: Mutex::new(None),
            cv: Condvar::new(),
        })
    }

    fn is_set(&self) -> bool {
        self.done.lock().is_some()
    }

    fn set(&self, acked: Acked) {
        *self.done.lock() = Some(acked);
        self.cv.notify_all();
    }
}

#[derive(Default)]
struct Queue {
    msgs: VecDeque<Msg>,
    shutdown: bool,
}

/// What the writer thread and the engine share.
struct Shared {
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    /// Set if the writer thread died; waiters stop waiting. `Release`/`Acquire`.
    dead: AtomicBool,
    /// A cycle queued messages without waking the writer ([`Durable::wake`] does, once the
    /// cycle no longer holds the exclusive side of the global lock). Set and cleared with
    /// the queue lock held, so `Relaxed`.
    needs_wake: AtomicBool,
    stats: Mutex<LogStats>,
    /// Each durable table's share of `stats`.
    tables: Mutex<HashMap<TableId, TableLogStats>>,
    /// Tables whose log failed, for the next cycle to close (with their error).
    failed: Mutex<Vec<(TableId, Arc<Error>)>>,
    /// Errors met off the cycle (checkpoints), for the engine to report.
    errors: Mutex<Vec<Error>>,
    /// Tables the writer wants checkpointed at the next cycle.
    checkpoints: Mutex<Vec<Arc<TableLog>>>,
    checkpoint_threads: Mutex<Vec<(TableId, JoinHandle<()>)>>,
}

impl Shared {
    /// Adds to table `id`'s statistics.
    fn count(&self, id: TableId, f: impl FnOnce(&mut TableLogStats)) {
        f(self.tables.lock().entry(id).or_default());
    }
}

/// An engine's durability: its data directory and its log writer.
pub(crate) struct Durable {
    pub(crate) options: Options,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Tables opened (replayed) in this engine, by name: opening one twice is refused.
    pub(crate) open_names: Mutex<HashSet<Arc<str>>>,
    pub(crate) reports: Mutex<HashMap<Arc<str>, ReplayReport>>,
    /// `Never` and `Interval`: the acknowledgements of cycles handed over and maybe not yet
    /// written, oldest first (at most [`MAX_UNWRITTEN_CYCLES`] after a cycle submits).
    unwritten: Mutex<VecDeque<Arc<Ack>>>,
    /// The data directory's lock file, released by [`shutdown`](Self::shutdown) once the
    /// writer and checkpoint threads stopped (handles may keep this struct alive longer).
    lock: Mutex<Option<DirLock>>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Durable {
    /// Creates the data directory and starts the log writer.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be made or the thread cannot start,
    /// [`Error::DataDirLocked`] if another engine holds the directory.
    pub(crate) fn start(options: Options) -> Result<Self> {
        fs::create_dir_all(&options.dir)?;
        let lock = DirLock::acquire(&options.dir)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            dead: AtomicBool::new(false),
            needs_wake: AtomicBool::new(false),
            stats: Mutex::new(LogStats::default()),
            tables: Mutex::new(HashMap::new()),
            failed: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            checkpoints: Mutex::new(Vec::new()),
            checkpoint_threads: Mutex::new(Vec::new()),
        });
        let thread = {
            let shared = shared.clone();
            let options = options.clone();
            std::thread::Builder::new()
                .name("tickertable-log".into())
                .spawn(move || {
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Writer::new(shared.clone(), options).run();
                    }));
                    if run.is_err() {
                        shared.dead.store(true, Ordering::Release);
                        let _queue = shared.queue.lock();
                        shared.queue_cv.notify_all();
                    }
                })?
        };
        Ok(Self {
            options,
            shared,
            thread: Mutex::new(Some(thread)),
            open_names: Mutex::new(HashSet::new()),
            reports: Mutex::new(HashMap::new()),
            unwritten: Mutex::new(VecDeque::new()),
            lock: Mutex::new(Some(lock)),
        })
    }

    /// A table's directory.
    pub(crate) fn table_dir(&self, name: &str) -> PathBuf {
        self.options.dir.join(files::dir_name(name))
    }

    /// Makes a [`TableLog`] for a table opened by replay and hands its new segment to the
    /// writer; `end` is the table's end position, `cursor` its replayed source cursor.
    #[allow(clippy::too_many_arguments)] // one call site, each argument a different thing
    pub(crate) fn register(
        &self,
        table: TableId,
        name: Arc<str>,
        schema: SchemaRef,
        shape: Shape,
        segment: SegmentWriter,
        end: u64,
        cursor: Option<Buffer>,
    ) -> Arc<TableLog> {
        let log = Arc::new(TableLog {
            table,
            dir: self.table_dir(&name),
            name,
            schema,
            shape,
            checkpointing: AtomicBool::new(false),
            checkpoint_bytes: AtomicU64::new(0),
        });
        self.push(Msg::Open(log.clone(), segment, end, cursor));
        log
    }

    fn push(&self, msg: Msg) {
        let mut q = self.shared.queue.lock();
        q.msgs.push_back(msg);
        self.shared.queue_cv.notify_one();
    }

    /// Queues a cycle's records without waking the writer: woken under the exclusive side
    /// of the global lock, on two busy cores it would take the cycle's CPU (the scheduler
    /// favours a thread that slept) and stretch the time the lock is held exclusively.
    fn push_quiet(&self, msg: Msg) {
        let mut q = self.shared.queue.lock();
        q.msgs.push_back(msg);
        self.shared.needs_wake.store(true, Ordering::Relaxed);
    }

    /// Wakes the writer if a cycle queued records for it. The cycle calls it once it holds
    /// at most the upgradable side of the global lock (before it waits for an [`Ack`]) or
    /// none (after it released the lock).
    pub(crate) fn wake(&self) {
        let _q = self.shared.queue.lock();
        if self.shared.needs_wake.swap(false, Ordering::Relaxed) {
            self.shared.queue_cv.notify_one();
        }
    }

    /// Starts collecting a cycle's records.
    pub(crate) fn cycle(&self, step: Step) -> CycleLog<'_> {
        CycleLog {
            durable: self,
            step,
            records: Vec::new(),
        }
    }

    /// The tables the writer wants checkpointed: the cycle adds their rows to its records.
    pub(crate) fn take_checkpoint_requests(&self) -> Vec<Arc<TableLog>> {
        std::mem::take(&mut *self.shared.checkpoints.lock())
    }

    /// Tables whose log failed since the last call: the cycle withholds their update and
    /// closes them with the error.
    pub(crate) fn take_failed(&self) -> Vec<(TableId, Arc<Error>)> {
        std::mem::take(&mut *self.shared.failed.lock())
    }

    /// Fails every table of `logs`: the writer died, so nothing more reaches their logs.
    pub(crate) fn fail_all(&self, logs: impl Iterator<Item = Arc<TableLog>>) {
        let mut failed = self.shared.failed.lock();
        for log in logs {
            let source = Arc::new(std::io::Error::other("the log writer thread stopped"));
            let err = Error::LogWrite {
                table: log.name.to_string(),
                source,
            };
            failed.push((log.table, Arc::new(err)));
        }
    }

    /// Errors met off the cycle since the last call, for the engine to report.
    pub(crate) fn take_errors(&self) -> Vec<Error> {
        std::mem::take(&mut *self.shared.errors.lock())
    }

    /// Counts a replay in the totals [`stats`](Self::stats) gives, and keeps its report.
    pub(crate) fn record_replay(&self, id: TableId, report: &ReplayReport) {
        self.shared.count(id, |t| {
            t.replay_time = report.duration;
            t.replayed_rows = report.rows + report.checkpoint_rows;
        });
        {
            let mut s = self.shared.stats.lock();
            s.replayed_tables += 1;
            s.replayed_rows += report.rows + report.checkpoint_rows;
            s.replay_time += report.duration;
        }
        self.reports
            .lock()
            .insert(Arc::from(report.table.as_str()), report.clone());
    }

    /// Bytes logged, fsyncs and their time, checkpoints, replays.
    pub(crate) fn stats(&self) -> LogStats {
        *self.shared.stats.lock()
    }

    /// Table `id`'s share of the writer's work, if it is a durable table of this engine.
    pub(crate) fn table_stats(&self, id: TableId) -> Option<TableLogStats> {
        self.shared.tables.lock().get(&id).copied()
    }

    /// Deletes dropped table `log`'s files (see the module docs of [`crate::durable`],
    /// "Dropping a durable table") and frees its name. Call it once the table is dropped
    /// from the graph, without the global lock: it waits for the writer.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the table's directory cannot be moved aside: then its files stay
    /// where they are, and its name stays taken for durable tables of this engine (so they
    /// are not replayed into a new table). A failure to delete what was moved aside is
    /// returned the same way, but the name is free.
    pub(crate) fn forget(&self, log: &TableLog) -> Result<()> {
        let ack = Ack::new();
        // After a shutdown the writer takes no more messages (it may have exited): it writes
        // nothing more for the table either, so there is nothing to wait for.
        if self.push_unless_shut_down(Msg::Forget(log.table, ack.clone())) {
            // `None`: the writer died, and writes nothing more.
            let _ = self.wait(&ack);
        }
        self.shared.tables.lock().remove(&log.table);
        let trash = self.options.dir.join(DROPPED_DIR);
        fs::create_dir_all(&trash)?;
        let aside = trash.join(format!(
            "{}-{}",
            log.dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("table"),
            log.table.as_u64()
        ));
        match fs::rename(&log.dir, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "table {:?} was dropped but its log {} could not be moved aside: {e}",
                        log.name,
                        log.dir.display()
                    ),
                )))
            }
        }
        self.reports.lock().remove(&log.name);
        self.open_names.lock().remove(&log.name);
        if self.options.sync != SyncPolicy::Never {
            // The rename is durable before the name is reused.
            files::sync_dir(&self.options.dir)?;
        }
        match fs::remove_dir_all(&aside) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "table {:?} was dropped, but deleting its log {} failed: {e}",
                    log.name,
                    aside.display()
                ),
            ))),
        }
    }

    /// Waits until every record handed over so far is in its file (written to the OS, not
    /// necessarily synced), so that reading the files finds it.
    ///
    /// # Errors
    ///
    /// [`Error::EngineShutDown`] if the writer takes no more messages or died.
    pub(crate) fn flush(&self) -> Result<()> {
        let ack = Ack::new();
        if !self.push_unless_shut_down(Msg::Flush(ack.clone())) {
            return Err(Error::EngineShutDown);
        }
        self.wait(&ack).map(|_| ()).ok_or(Error::EngineShutDown)
    }

    /// Queues `msg` and wakes the writer, unless it was told to shut down (it may have
    /// exited and takes no more messages); whether `msg` was queued.
    fn push_unless_shut_down(&self, msg: Msg) -> bool {
        let mut q = self.shared.queue.lock();
        if q.shutdown {
            return false;
        }
        q.msgs.push_back(msg);
        self.shared.queue_cv.notify_one();
        true
    }

    /// Waits for `ack`; `None` if the writer died first.
    pub(crate) fn wait(&self, ack: &Ack) -> Option<Acked> {
        let mut done = ack.done.lock();
        loop {
            if let Some(a) = *done {
                return Some(a);
            }
            if self.shared.dead.load(Ordering::Acquire) {
                return None;
            }
            ack.cv.wait_for(&mut done, ACK_SLICE);
        }
    }

    /// Writes and syncs everything handed over, then stops the writer. Idempotent.
    pub(crate) fn shutdown(&self) {
        {
            let mut q = self.shared.queue.lock();
            q.shutdown = true;
            self.shared.queue_cv.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *self.shared.checkpoint_threads.lock());
        for (_, t) in threads {
            let _ = t.join();
        }
        // Nothing writes in the directory any more: another engine may have it.
        drop(self.lock.lock().take());
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One cycle's records, collected under the global lock and handed over at once.
pub(crate) struct CycleLog<'a> {
    durable: &'a Durable,
    step: Step,
    records: Vec<Record>,
}

impl CycleLog<'_> {
    /// Logs what table `log` staged this cycle: `batches` appended at `first` (a keyed
    /// table's input in its shapes, `first` 0). O(batches); nothing is copied.
    /// `cursor` is the source cursor staged with them, if any (see `durable::format`).
    pub(crate) fn rows(
        &mut self,
        log: &Arc<TableLog>,
        first: u64,
        batches: &[RecordBatch],
        cursor: Option<Buffer>,
    ) {
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.records.push(Record {
            log: log.clone(),
            body: Body::Rows(RowsRecord {
                first,
                rows,
                batches: batches.to_vec(),
                cursor,
            }),
        });
    }

    /// Logs that the table's writer closed it, cleanly or with a failure.
    pub(crate) fn close(&mut self, log: &Arc<TableLog>, failure: Option<&Arc<Error>>) {
        self.records.push(Record {
            log: log.clone(),
            body: Body::Close(CloseRecord {
                failure: failure.map(ToString::to_string),
            }),
        });
    }

    /// Hands the table's rows after this cycle to be checkpointed (O(1): the chunks are
    /// shared; a keyed table with a capacity adds its recency order, O(keys)).
    pub(crate) fn checkpoint(&mut self, log: &Arc<TableLog>, rows: CheckpointRows) {
        self.records.push(Record {
            log: log.clone(),
            body: Body::Checkpoint(rows),
        });
    }

    /// Hands the records to the writer (without waking it: see [`Durable::wake`]) and
    /// returns the [`Ack`] the cycle must wait for
    /// before it delivers, if any: with [`SyncPolicy::EveryCycle`] and records to write,
    /// this cycle's (written and fsynced); with the other policies, the oldest cycle's
    /// handed over and not yet written once more than [`MAX_UNWRITTEN_CYCLES`] are.
    /// O(records); one allocation per cycle, none per row.
    pub(crate) fn submit(self) -> Option<Arc<Ack>> {
        if self.records.is_empty() {
            return None;
        }
        let every_cycle = self.durable.options.sync == SyncPolicy::EveryCycle;
        let rows = self
            .records
            .iter()
            .any(|r| !matches!(r.body, Body::Checkpoint(_)));
        let ack = Ack::new();
        self.durable.push_quiet(Msg::Cycle {
            step: self.step,
            records: self.records,
            ack: ack.clone(),
            sync: every_cycle && rows,
        });
        if every_cycle {
            return rows.then_some(ack);
        }
        let mut unwritten = self.durable.unwritten.lock();
        while unwritten.front().is_some_and(|a| a.is_set()) {
            unwritten.pop_front();
        }
        unwritten.push_back(ack);
        if unwritten.len() > MAX_UNWRITTEN_CYCLES {
            unwritten.pop_front()
        } else {
            None
        }
    }
}

/// A table's files, owned by the writer thread.
struct Open {
    log: Arc<TableLog>,
    segment: SegmentWriter,
    /// The table's end position (append, blink, ring).
    end: u64,
    /// Log bytes since the last checkpoint.
    since_checkpoint: u64,
    /// Written since the last sync.
    unsynced: bool,
    /// The last source cursor written, carried into every new segment's header.
    cursor: Option<Buffer>,
}

/// The writer thread's state.
struct Writer {
    shared: Arc<Shared>,
    options: Options,
    open: HashMap<TableId, Open>,
    last_sync: Instant,
}

impl Writer {
    fn new(shared: Arc<Shared>, options: Options) -> Self {
        Self {
            shared,
            options,
            open: HashMap::new(),
            last_sync: Instant::now(),
        }
    }

    fn unsynced(&self) -> bool {
        self.open.values().any(|o| o.unsynced)
    }

    fn run(mut self) {
        loop {
            let (msgs, shutdown) = {
                let mut q = self.shared.queue.lock();
                loop {
                    if !q.msgs.is_empty() || q.shutdown {
                        break;
                    }
                    match self.options.sync {
                        SyncPolicy::Interval(d) if self.unsynced() => {
                            let due = self.last_sync + d;
                            if Instant::now() >= due {
                                break;
                            }
                            self.shared.queue_cv.wait_until(&mut q, due);
                        }
                        _ => self.shared.queue_cv.wait(&mut q),
                    }
                }
                (std::mem::take(&mut q.msgs), q.shutdown)
            };
            for msg in msgs {
                match msg {
                    Msg::Open(log, segment, end, cursor) => {
                        self.open.insert(
                            log.table,
                            Open {
                                log,
                                segment,
                                end,
                                since_checkpoint: 0,
                                unsynced: false,
                                cursor,
                            },
                        );
                    }
                    Msg::Forget(id, ack) => {
                        self.forget(id);
                        ack.set(Acked::default());
                    }
                    Msg::Flush(ack) => {
                        self.flush_all();
                        ack.set(Acked::default());
                    }
                    Msg::Cycle {
                        step,
                        records,
                        ack,
                        sync,
                    } => self.cycle(step, records, &ack, sync),
                }
            }
            // What was written reaches the OS after every batch of messages: a crash of the
            // process (not of the machine) loses nothing handed over before.
            self.flush_all();
            if let SyncPolicy::Interval(d) = self.options.sync {
                if self.last_sync.elapsed() >= d {
                    self.sync_all(false);
                }
            }
            if shutdown {
                // A clean shutdown leaves everything on disk, whatever the policy.
                self.sync_all(true);
                return;
            }
        }
    }

    /// Closes dropped table `id`'s files (what was handed over for it is written: messages
    /// come in order) and waits for a checkpoint being written for it.
    fn forget(&mut self, id: TableId) {
        if let Some(mut o) = self.open.remove(&id) {
            let _ = o.segment.flush();
        }
        let mine: Vec<JoinHandle<()>> = {
            let mut threads = self.shared.checkpoint_threads.lock();
            let (mine, others) = std::mem::take(&mut *threads)
                .into_iter()
                .partition(|(t, _)| *t == id);
            *threads = others;
            mine.into_iter().map(|(_, t)| t).collect()
        };
        for t in mine {
            let _ = t.join();
        }
        self.shared.checkpoints.lock().retain(|l| l.table != id);
    }

    fn cycle(&mut self, step: Step, records: Vec<Record>, ack: &Ack, sync: bool) {
        let mut bytes = 0;
        let mut written: Vec<TableId> = Vec::new();
        for r in records {
            let id = r.log.table;
            if !self.open.contains_key(&id) {
                continue; // failed earlier
            }
            match r.body {
                Body::Checkpoint(rows) => self.checkpoint(id, step, rows),
                body => match self.write(id, step, &body) {
                    Ok(n) => {
                        bytes += n;
                        if !written.contains(&id) {
                            written.push(id);
                        }
                    }
                    Err(e) => self.fail(id, e),
                },
            }
        }
        for id in written {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            if !sync {
                // Written, not synced: handed to the OS before it is acknowledged.
                if let Err(e) = o.segment.flush() {
                    self.fail(id, Error::Io(e));
                }
                continue;
            }
            #[cfg(any(test, feature = "test-util"))]
            sync_gate::pass();
            let t = Instant::now();
            let r = o.segment.sync();
            let took = t.elapsed();
            o.unsynced = false;
            self.record_sync(id, took);
            if let Err(e) = r {
                self.fail(id, Error::Io(e));
            }
        }
        self.shared.stats.lock().bytes += bytes;
        ack.set(Acked { bytes });
    }

    fn record_sync(&self, id: TableId, took: Duration) {
        {
            let mut s = self.shared.stats.lock();
            s.fsyncs += 1;
            s.fsync_time += took;
            s.max_fsync_time = s.max_fsync_time.max(took);
        }
        self.shared.count(id, |t| {
            t.fsyncs += 1;
            t.fsync_time += took;
        });
    }

    /// Encodes and writes one record; rotates the segment past its size.
    fn write(&mut self, id: TableId, step: Step, body: &Body) -> Result<u64> {
        let o = self
            .open
            .get_mut(&id)
            .expect("invariant: checked by the caller");
        let encoded: Encoded = match body {
            Body::Rows(r) => r.encode(step)?,
            Body::Close(c) => c.encode(step),
            Body::Checkpoint(_) => unreachable!("checkpoints are not written as records"),
        };
        let n = o.segment.write(&encoded)?;
        o.unsynced = true;
        o.since_checkpoint += n;
        let rows = matches!(body, Body::Rows(_));
        if let Body::Rows(r) = body {
            if o.log.shape.key.is_empty() {
                o.end = r.first + r.rows;
            }
            if r.cursor.is_some() {
                o.cursor.clone_from(&r.cursor);
            }
            self.shared.stats.lock().records += 1;
        }
        self.shared.count(id, |t| {
            t.bytes += n;
            t.records += u64::from(rows);
        });
        if o.segment.bytes >= self.options.segment_bytes {
            self.rotate(id, step)?;
        }
        let o = self.open.get_mut(&id).expect("invariant: still open");
        let due = o.since_checkpoint
            >= self
                .options
                .segment_bytes
                .max(2 * o.log.checkpoint_bytes.load(Ordering::Relaxed));
        // AcqRel: one checkpoint at a time; the clear is in `run_checkpoint`.
        if o.log.checkpoints() && due && !o.log.checkpointing.swap(true, Ordering::AcqRel) {
            self.shared.checkpoints.lock().push(o.log.clone());
        }
        Ok(n)
    }

    /// Closes the table's segment and starts the next one.
    fn rotate(&mut self, id: TableId, step: Step) -> Result<()> {
        let o = self
            .open
            .get_mut(&id)
            .expect("invariant: checked by the caller");
        if self.options.sync == SyncPolicy::Never {
            o.segment.flush()?;
        } else {
            o.segment.sync()?;
        }
        let header = SegmentHeader {
            shape: o.log.shape.clone(),
            first_position: o.end,
            schema: o.log.schema.clone(),
            cursor: o.cursor.clone(),
        }
        .encode(step)?;
        let next = SegmentWriter::create(&o.log.dir, o.segment.index + 1, &header)?;
        if self.options.sync != SyncPolicy::Never {
            files::sync_dir(&o.log.dir)?;
        }
        o.segment = next;
        o.unsynced = true;
        self.shared.stats.lock().bytes += header.len();
        self.shared.count(id, |t| t.bytes += header.len());
        Ok(())
    }

    /// Starts a new segment and writes the checkpoint of `rows` (at `step`) on its own
    /// thread, which then deletes the segments before the new one.
    fn checkpoint(&mut self, id: TableId, step: Step, rows: CheckpointRows) {
        if let Err(e) = self.rotate(id, step) {
            self.fail(id, e);
            return;
        }
        let o = self.open.get_mut(&id).expect("invariant: rotated");
        o.since_checkpoint = 0;
        let log = o.log.clone();
        let segment = o.segment.index;
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tickertable-checkpoint".into())
            .spawn(move || run_checkpoint(&shared, &log, step, segment, &rows));
        match spawned {
            Ok(t) => self.shared.checkpoint_threads.lock().push((id, t)),
            Err(e) => {
                o.log.checkpointing.store(false, Ordering::Release);
                self.shared.errors.lock().push(Error::Io(e));
            }
        }
    }

    fn fail(&mut self, id: TableId, e: Error) {
        let Some(o) = self.open.remove(&id) else {
            return;
        };
        let source = match e {
            Error::Io(io) => Arc::new(io),
            other => Arc::new(std::io::Error::other(other.to_string())),
        };
        let err = Arc::new(Error::LogWrite {
            table: o.log.name.to_string(),
            source,
        });
        tracing::warn!(error = %err, "tickertable: durable table failed");
        self.shared.failed.lock().push((id, err));
    }

    fn flush_all(&mut self) {
        let mut failed = Vec::new();
        for (id, o) in &mut self.open {
            if o.unsynced {
                if let Err(e) = o.segment.flush() {
                    failed.push((*id, e));
                }
                if self.options.sync == SyncPolicy::Never {
                    o.unsynced = false;
                }
            }
        }
        for (id, e) in failed {
            self.fail(id, Error::Io(e));
        }
    }

    /// Syncs the tables written since their last sync (every table with `all`).
    fn sync_all(&mut self, all: bool) {
        let mut failed = Vec::new();
        let mut took = Vec::new();
        for (id, o) in &mut self.open {
            if o.unsynced || all {
                let t = Instant::now();
                if let Err(e) = o.segment.sync() {
                    failed.push((*id, e));
                }
                took.push((*id, t.elapsed()));
                o.unsynced = false;
            }
        }
        for (id, t) in took {
            self.record_sync(id, t);
        }
        self.last_sync = Instant::now();
        for (id, e) in failed {
            self.fail(id, Error::Io(e));
        }
    }
}

/// Writes a checkpoint, then deletes the segments and checkpoints it replaces. Runs on its
/// own thread; the writer goes on appending to the segment it started for it.
fn run_checkpoint(
    shared: &Shared,
    log: &TableLog,
    step: Step,
    segment: u64,
    rows: &CheckpointRows,
) {
    let t = Instant::now();
    let result = checkpoint::write(&log.dir, &log.schema, step.0, segment, rows);
    match result {
        Ok((path, bytes)) => {
            log.checkpoint_bytes.store(bytes, Ordering::Relaxed);
            let mut removed = Ok(());
            if let Ok(segments) = files::segments(&log.dir) {
                for (index, p) in segments {
                    if index < segment {
                        removed = removed.and(fs::remove_file(&p));
                    }
                }
            }
            if let Ok(checkpoints) = files::checkpoints(&log.dir) {
                for (_, p) in checkpoints {
                    if p != path {
                        removed = removed.and(fs::remove_file(&p));
                    }
                }
            }
            if let Err(e) = removed {
                shared.errors.lock().push(Error::Io(e));
            }
            let mut s = shared.stats.lock();
            s.checkpoints += 1;
            s.checkpoint_bytes += bytes;
            s.checkpoint_time += t.elapsed();
        }
        Err(e) => {
            tracing::warn!(table = %log.name, error = %e, "tickertable: checkpoint failed");
            shared.errors.lock().push(Error::Arrow(e));
        }
    }
    // Release: the next request sees the new checkpoint's size.
    log.checkpointing.store(false, Ordering::Release);
}

/// A gate in front of every log writer's fsync, for tests that need an fsync to last:
/// [`crate::test_util::hold_log_syncs`]. Process-wide; compiled only for tests.
#[cfg(any(test, feature = "test-util"))]
pub(crate) mod sync_gate {
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Statics, so parking_lot's const constructors rather than `crate::sync` (whose loom
    // types are not const); the gate is never part of a loom model.
    static HELD: parking_lot::Mutex<bool> = parking_lot::Mutex::new(false);
    static OPENED: parking_lot::Condvar = parking_lot::Condvar::new();
    static WAITING: AtomicUsize = AtomicUsize::new(0);

    /// Closes (`true`) or opens the gate.
    pub(crate) fn set(held: bool) {
        *HELD.lock() = held;
        OPENED.notify_all();
    }

    /// How many writers wait at the gate now.
    pub(crate) fn waiting() -> usize {
        WAITING.load(Ordering::SeqCst)
    }

    /// Waits while the gate is closed.
    pub(crate) fn pass() {
        let mut held = HELD.lock();
        if !*held {
            return;
        }
        WAITING.fetch_add(1, Ordering::SeqCst);
        while *held {
            OPENED.wait(&mut held);
        }
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}
