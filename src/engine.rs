//! The engine: owner of the update graph and of the cycle thread.
//!
//! [`Engine`] owns the cycle thread and stops and joins it on drop; [`EngineHandle`] is the
//! cheap, cloneable handle every other part uses (`Engine` derefs to it). [`Builder`] sets the
//! cycle period, manual mode, the low-latency option and the staging limit.
//!
//! # Cycle timing
//!
//! - Periodic (default): a cycle every `period` (100 ms by default), keeping the schedule's
//!   phase (a late wake does not push later cycles back). A cycle that overruns starts the next
//!   one at once and restarts the schedule from then; cycles are never skipped and never bunch
//!   up to catch up.
//! - [`EngineHandle::request_refresh`] runs the next cycle now; requests made before it starts
//!   coalesce into that one cycle.
//! - Low latency ([`Builder::low_latency`]): a cycle also starts as soon as rows are staged,
//!   but no sooner than `min_gap` after the previous one started.
//! - Manual ([`Builder::manual`]): no thread; [`EngineHandle::run_cycle`] runs a cycle on the
//!   calling thread and returns its step. Tests use this for deterministic steps.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::durable::history;
use crate::durable::replay::Opened;
use crate::durable::writer::{Durable, Options as DurableOptions};
use crate::durable::{Durability, LoggedTable, ReplayReport, SyncPolicy, DEFAULT_SEGMENT_BYTES};
use crate::error::{Error, Result};
use crate::graph::{
    cycle, AfterClose, Config, Core, CycleStats, EngineStats, Flusher, Graph, TableStats,
};
use crate::publish::rows::RowBuffer;
use crate::publish::{DynamicTableWriter, DynamicWriterOptions, PublisherOptions, TablePublisher};
use crate::step::Step;
use crate::sync::{Ordering, RwLockReadGuard};
use crate::table::kind::Retention;
use crate::table::lifecycle::Closing;
use crate::table::shared::{TableId, TableSpec};
use crate::table::snapshot::TableSnapshot;
use crate::table::{Table, TableKind};

/// The default cycle period.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(100);
/// The default staging limit, in rows per table (publishers) and per row writer.
pub const DEFAULT_STAGING_LIMIT: usize = 1 << 24;

/// The cycle thread's loop.
fn run_thread(core: &Arc<Core>) {
    let period = core.config.period;
    let mut last_start = Instant::now();
    loop {
        // The start this cycle was scheduled for, when it starts on schedule.
        let mut on_time = None;
        {
            let mut w = core.wake.lock();
            loop {
                if w.shutdown || w.refresh {
                    break;
                }
                let now = Instant::now();
                // A period too long to add to an `Instant` means no periodic cycle.
                let due = last_start.checked_add(period);
                if let Some(d) = due.filter(|d| now >= *d) {
                    on_time = Some(d);
                    break;
                }
                let mut deadline = due;
                if let (Some(gap), true) = (core.config.low_latency, w.staged) {
                    let early = last_start.checked_add(gap);
                    if early.is_some_and(|e| now >= e) {
                        break;
                    }
                    deadline = match (deadline, early) {
                        (Some(d), Some(e)) => Some(d.min(e)),
                        (d, e) => d.or(e),
                    };
                }
                match deadline {
                    Some(d) => {
                        core.wake_cv.wait_until(&mut w, d);
                    }
                    None => core.wake_cv.wait(&mut w),
                }
            }
            if w.shutdown {
                return;
            }
            w.refresh = false;
            w.staged = false;
        }
        // Periodic cycles keep their phase (the next is due a period after this one was
        // due, not after it woke); a cycle that started late by a period or more, or early
        // on request, restarts the schedule from now, so cycles never bunch up.
        let now = Instant::now();
        last_start = match on_time {
            Some(d) if now.duration_since(d) < period => d,
            _ => now,
        };
        cycle::run(core);
    }
}

/// Runs the final cycle, refuses further writes, closes every table (ending its consumers),
/// runs `on_shutdown`.
fn shutdown(core: &Arc<Core>) {
    if core.shutting_down.swap(true, Ordering::AcqRel) {
        return;
    }
    // One last ordinary cycle, so `on_flush` callbacks can still hand over what they hold.
    cycle::run(core);
    // Then refuse writes, then drain every table: a write that got in before the flag was
    // set is staged before the final drain takes the staging locks, so it is applied; one
    // that comes after sees the flag (through those same locks) and is refused.
    core.set_shut_down();
    cycle::run_final(core);
    let mut after = AfterClose::default();
    {
        let mut graph = core.graph.write();
        graph.flushers.get_mut().clear();
        let step = graph.step;
        for i in 0..graph.nodes.len() {
            graph.close(TableId(i as u64), step, &Closing::Clean, &mut after);
        }
    }
    core.closed_all.store(true, Ordering::Release);
    {
        let _waiters = core.visible.lock();
        core.visible_cv.notify_all();
    }
    cycle::finish(core, after);
    if let Some(durable) = &core.durable {
        // Flushes and fsyncs every durable table's log, joins the writer and checkpoint
        // threads, and releases the data directory.
        durable.shutdown();
        for e in durable.take_errors() {
            core.report(e);
        }
        // A log that could not be written or synced at the end: no cycle is left to fail
        // its table, so it is reported ([`EngineHandle::recent_errors`]).
        for (_, e) in durable.take_failed() {
            core.report_shared(e);
        }
    }
}

/// Configures and builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
    data_dir: Option<PathBuf>,
    sync: SyncPolicy,
    segment_bytes: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            config: Config {
                period: DEFAULT_PERIOD,
                threaded: true,
                low_latency: None,
                staging_limit: DEFAULT_STAGING_LIMIT,
            },
            data_dir: None,
            sync: SyncPolicy::default(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

impl Builder {
    /// The target time between cycle starts (default 100 ms).
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.config.period = period;
        self
    }

    /// No cycle thread: cycles run only when [`EngineHandle::run_cycle`] is called.
    #[must_use]
    pub fn manual(mut self) -> Self {
        self.config.threaded = false;
        self
    }

    /// Also start a cycle as soon as rows are staged, at most one per `min_gap`.
    #[must_use]
    pub fn low_latency(mut self, min_gap: Duration) -> Self {
        self.config.low_latency = Some(min_gap);
        self
    }

    /// The most rows staged per table by publishers, and per row writer (default 16Mi).
    #[must_use]
    pub fn staging_limit(mut self, rows: usize) -> Self {
        self.config.staging_limit = rows;
        self
    }

    /// The directory durable tables log to and are replayed from (created if missing); see
    /// [`crate::durable`]. Without one, a durable table is refused. One engine per directory
    /// at a time: the engine holds it with a lock file until it shuts down, and [`build`]
    /// refuses a directory another engine holds.
    ///
    /// [`build`]: Self::build
    #[must_use]
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// When durable tables' logs are fsynced (default [`SyncPolicy::EveryCycle`]), and so
    /// what a delivered update promises; see [`crate::durable`].
    #[must_use]
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// The size past which a log segment is closed and a new one started (default 64 MiB).
    /// It is also the least log a ring or keyed table writes between two checkpoints.
    #[must_use]
    pub fn log_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Builds the engine and starts its cycle thread (unless manual).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for a zero period, staging limit or segment size or a zero
    /// sync interval, [`Error::Io`] if a thread cannot be spawned or the data directory cannot
    /// be made, [`Error::DataDirLocked`] if another engine (in this process or another) holds
    /// the data directory.
    pub fn build(self) -> Result<Engine> {
        if self.config.period.is_zero() {
            return Err(Error::InvalidOption {
                option: "period",
                reason: "must be > 0".into(),
            });
        }
        if self.config.staging_limit == 0 {
            return Err(Error::InvalidOption {
                option: "staging limit",
                reason: "must be at least 1 row".into(),
            });
        }
        if self.segment_bytes == 0 {
            return Err(Error::InvalidOption {
                option: "log segment size",
                reason: "must be at least 1 byte".into(),
            });
        }
        if self.sync == SyncPolicy::Interval(Duration::ZERO) {
            return Err(Error::InvalidOption {
                option: "sync interval",
                reason: "must be > 0 (use SyncPolicy::EveryCycle)".into(),
            });
        }
        let durable = match self.data_dir {
            Some(dir) => Some(Durable::start(DurableOptions {
                dir,
                sync: self.sync,
                segment_bytes: self.segment_bytes,
            })?),
            None => None,
        };
        let core = Arc::new(Core::new(self.config, durable));
        let thread = if self.config.threaded {
            let c = core.clone();
            Some(
                std::thread::Builder::new()
                    .name("tickertable-cycle".into())
                    .spawn(move || run_thread(&c))?,
            )
        } else {
            None
        };
        Ok(Engine {
            handle: EngineHandle { core },
            thread,
        })
    }
}

/// The engine: owns the update graph and its cycle thread.
///
/// Derefs to [`EngineHandle`], where every operation lives. Dropping the engine runs a final
/// cycle (so rows staged before the drop are applied and delivered), stops and joins the cycle
/// thread, ends every subscription and runs every `on_shutdown` callback. Handles, tables and
/// snapshots stay readable afterwards; writes return [`Error::EngineShutDown`].
///
/// # Examples
///
/// ```
/// use tickertable::{Engine, Step};
///
/// let engine = Engine::builder().manual().build()?;
/// assert_eq!(engine.run_cycle(), Step::new(1));
/// # Ok::<(), tickertable::Error>(())
/// ```
pub struct Engine {
    handle: EngineHandle,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// A builder with the defaults: a cycle thread, a 100 ms period.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// An engine with the defaults.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn new() -> Result<Self> {
        Builder::default().build()
    }

    /// A cloneable handle to this engine.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Shuts down now; see the type docs. Dropping does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            {
                let mut w = self.handle.core.wake.lock();
                w.shutdown = true;
                self.handle.core.wake_cv.notify_all();
            }
            if let Err(payload) = thread.join() {
                self.handle.core.report(Error::CyclePanicked {
                    message: crate::error::panic_message(payload.as_ref()),
                });
            }
        }
        shutdown(&self.handle.core);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Deref for Engine {
    type Target = EngineHandle;

    fn deref(&self) -> &EngineHandle {
        &self.handle
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// A cheap, cloneable handle to an engine (`Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct EngineHandle {
    core: Arc<Core>,
}

impl EngineHandle {
    /// The engine's core, for the integrations built on the handles (`kafka`).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.core
    }

    fn table_handle(&self, shared: Arc<crate::table::shared::TableShared>) -> Table {
        Table::new(shared, &self.core)
    }

    /// Adds a table under the global lock; `after` collects what closing it (a derived table
    /// of a closed source) leaves to do outside the lock.
    fn add(&self, graph: &mut Graph, spec: TableSpec<'_>, after: &mut AfterClose) -> Result<Table> {
        self.check_alive()?;
        let shared = graph.add_table(spec, self.core.config.staging_limit, after)?;
        Ok(self.table_handle(shared))
    }

    /// Replays a durable table's files, before the table is added (no lock is held).
    fn open_durable(
        &self,
        name: &str,
        schema: &SchemaRef,
        retention: Retention,
        key: &Arc<[usize]>,
        durability: Durability,
    ) -> Result<Option<Opened<'_>>> {
        if durability == Durability::None {
            return Ok(None);
        }
        let Some(durable) = &self.core.durable else {
            return Err(Error::InvalidOption {
                option: "durability",
                reason: format!(
                    "table {name:?} is durable, but the engine has no data directory \
                     (Builder::data_dir)"
                ),
            });
        };
        self.check_alive()?;
        // The checks `add_table` makes, before any file is touched.
        if name.is_empty() || schema.fields().is_empty() {
            return Ok(None);
        }
        if self.core.graph.read().table(name).is_some() {
            return Err(Error::TableExists {
                table: name.to_owned(),
            });
        }
        durable.open(name, schema, retention, key).map(Some)
    }

    /// Gives a durable table just added its replayed storage and its log.
    fn install(&self, graph: &mut Graph, table: &Table, mut opened: Opened<'_>) {
        let durable = self
            .core
            .durable
            .as_ref()
            .expect("invariant: opened by this engine's log");
        let segment = opened.take_segment();
        let log = durable.register(
            table.id(),
            table.shared.name.clone(),
            table.schema().clone(),
            opened.shape.clone(),
            segment,
            opened.end,
            opened
                .report
                .source_cursor
                .clone()
                .map(arrow_buffer::Buffer::from_vec),
        );
        let state = opened.state.take().expect("invariant: taken once");
        graph.install_replayed(&self.core, table.id(), state, opened.last_step, log);
        if let Some(c) = &opened.report.corruption {
            self.core.report_shared(c.clone());
        }
        durable.record_replay(table.id(), &opened.report);
    }

    /// What replaying durable table `table` found when it was created in this engine:
    /// records, rows, bytes, time, corruption truncated. `None` for a table that is not
    /// durable (or not created yet).
    pub fn replay_report(&self, table: &str) -> Option<ReplayReport> {
        self.core
            .durable
            .as_ref()?
            .reports
            .lock()
            .get(table)
            .cloned()
    }

    /// The durable tables logged in the engine's data directory, by name, whether or not they
    /// were created in this engine: what creating each again (with
    /// [`PublisherOptions::durable`]) needs to replay it. Empty without a data directory. A
    /// table directory whose newest segment has no readable header is left out with a
    /// `tracing` warning (creating the table replays what can be read and reports the rest).
    /// Reads one header per table: O(tables).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be listed.
    pub fn logged_tables(&self) -> Result<Vec<LoggedTable>> {
        let Some(durable) = &self.core.durable else {
            return Ok(Vec::new());
        };
        let (found, skipped) = crate::durable::catalog::list(&durable.options.dir)?;
        for (table, reason) in skipped {
            tracing::warn!(
                table,
                reason,
                "tickertable: a logged table without a header"
            );
        }
        Ok(found
            .into_iter()
            .map(|t| {
                let key = t
                    .shape
                    .key
                    .iter()
                    .filter_map(|&k| usize::try_from(k).ok())
                    .filter_map(|k| t.schema.fields().get(k).map(|f| f.name().clone()))
                    .collect();
                let limit = match t.shape.retention {
                    Retention::Append { limit } => limit.and_then(|l| usize::try_from(l).ok()),
                    _ => None,
                };
                LoggedTable {
                    name: t.name,
                    schema: t.schema,
                    kind: t.shape.retention.kind(),
                    key,
                    limit,
                }
            })
            .collect())
    }

    /// The engine's data directory, if it has one.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.core.durable.as_ref().map(|d| d.options.dir.as_path())
    }

    /// Creates a table fed by a [`TablePublisher`] (a blink table unless the options say so).
    ///
    /// # Errors
    ///
    /// [`Error::TableExists`], [`Error::InvalidOption`] (empty name, ring capacity 0) or
    /// [`Error::EngineShutDown`].
    pub fn table_publisher(
        &self,
        name: &str,
        schema: SchemaRef,
        options: PublisherOptions,
    ) -> Result<(Table, TablePublisher)> {
        let retention = match (Retention::for_kind(options.kind)?, options.limit) {
            (r, None) => r,
            (Retention::Append { .. }, Some(limit)) => Retention::Append {
                limit: Some(limit as u64),
            },
            (_, Some(_)) => {
                return Err(Error::InvalidOption {
                    option: "limit",
                    reason: format!(
                        "table {name:?} is {}: only append tables have a limit",
                        options.kind
                    ),
                })
            }
        };
        let key = resolve_key(name, &schema, options.kind, &options.key)?;
        let opened = self.open_durable(name, &schema, retention, &key, options.durability)?;
        let mut after = AfterClose::default();
        let mut graph = self.core.graph.write();
        let table = self.add(
            &mut graph,
            TableSpec {
                name,
                schema,
                retention,
                key,
                source: None,
                durable: opened.is_some(),
                history: Vec::new(),
            },
            &mut after,
        )?;
        if let Some(opened) = opened {
            self.install(&mut graph, &table, opened);
        }
        let publisher = TablePublisher::new(table.clone(), self.core.clone());
        if let Some(mut f) = options.on_flush {
            let t = table.clone();
            graph.flushers.get_mut().push(Flusher {
                table: table.shared.clone(),
                callback: Box::new(move |core| f(&TablePublisher::new(t.clone(), core.clone()))),
            });
        }
        if let Some(f) = options.on_shutdown {
            graph.shutdown_hooks.get_mut().push((table.id(), f));
        }
        Ok((table, publisher))
    }

    /// Creates a table fed by a [`TablePublisher`] with the defaults of an append table: the
    /// plain "make me a table" call.
    ///
    /// # Errors
    ///
    /// As [`table_publisher`](Self::table_publisher).
    pub fn append_table(&self, name: &str, schema: SchemaRef) -> Result<(Table, TablePublisher)> {
        self.table_publisher(
            name,
            schema,
            PublisherOptions::default().with_kind(TableKind::Append),
        )
    }

    /// Creates a table written row by row (an append table unless the options say so).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedType`] if a column's type cannot be built row by row, and the
    /// errors of [`table_publisher`](Self::table_publisher).
    pub fn dynamic_table_writer(
        &self,
        name: &str,
        schema: SchemaRef,
        options: DynamicWriterOptions,
    ) -> Result<DynamicTableWriter> {
        let DynamicWriterOptions {
            kind,
            key,
            durability,
        } = options;
        // Refuse unsupported column types before the table exists.
        RowBuffer::new(&schema, false, 0)?;
        let retention = Retention::for_kind(kind)?;
        let key = resolve_key(name, &schema, kind, &key)?;
        let opened = self.open_durable(name, &schema, retention, &key, durability)?;
        let mut after = AfterClose::default();
        let mut graph = self.core.graph.write();
        let table = self.add(
            &mut graph,
            TableSpec {
                name,
                schema,
                retention,
                key,
                source: None,
                durable: opened.is_some(),
                history: Vec::new(),
            },
            &mut after,
        )?;
        if let Some(opened) = opened {
            self.install(&mut graph, &table, opened);
        }
        Ok(DynamicTableWriter::new(table, self.core.clone()))
    }

    /// A ring table of the newest `capacity` rows of `source`, updated in the same cycle as
    /// `source` and starting with its current rows.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for capacity 0, [`Error::TableExists`], [`Error::NoSuchTable`]
    /// if `source` belongs to another engine, [`Error::EngineShutDown`].
    pub fn ring_table(&self, name: &str, source: &Table, capacity: usize) -> Result<Table> {
        let retention = Retention::for_kind(TableKind::Ring { capacity })?;
        self.derive(name, source, retention)
    }

    /// An append table of every row `source` ever shows, updated in the same cycle as `source`
    /// and starting with its current rows. With a `limit`, it stops taking rows once it holds
    /// `limit` rows (the rows past it are counted in [`CycleStats::rows_dropped`]).
    ///
    /// # Errors
    ///
    /// As [`ring_table`](Self::ring_table).
    pub fn blink_to_append_only(
        &self,
        name: &str,
        source: &Table,
        limit: Option<usize>,
    ) -> Result<Table> {
        self.derive(
            name,
            source,
            Retention::Append {
                limit: limit.map(|l| l as u64),
            },
        )
    }

    /// An append or ring table of a durable blink table's history: every row `source` ever
    /// showed that its log holds, across restarts (a ring keeps the newest `capacity` of
    /// them), then, like [`blink_to_append_only`](Self::blink_to_append_only) and
    /// [`ring_table`](Self::ring_table), each cycle's rows. `kind` is
    /// [`TableKind::Append`] or [`TableKind::Ring`].
    ///
    /// The log is read without the global lock (cycles go on meanwhile): the log writer
    /// first hands what it holds to the OS, the rows up to the source's newest are read, and
    /// the table is added, under the lock, with them and the source's current rows. If
    /// cycles moved the source past what was read, the new records are read the same way
    /// first; after three tries (cycles faster than reading) the rest is read holding the
    /// exclusive lock, which then stalls cycles and readers while the log writer hands over
    /// what it still holds (with `Never` or `Interval`, up to 16 cycles of every durable
    /// table) and the few cycles' records since the last read are read.
    /// Costs one read of the log's frames (each checked) and O(rows kept) off the lock,
    /// O(records read) under it. The table itself is not logged: create it again after a
    /// restart.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if `source` is not a durable blink table or `kind` is not
    /// append or ring (or a ring of capacity 0), [`Error::Io`] if the log cannot be read or
    /// misses rows, and as [`ring_table`](Self::ring_table).
    pub fn history_table(&self, name: &str, source: &Table, kind: TableKind) -> Result<Table> {
        let retention = match kind {
            TableKind::Append => Retention::Append { limit: None },
            TableKind::Ring { .. } => Retention::for_kind(kind)?,
            _ => {
                return Err(Error::InvalidOption {
                    option: "kind",
                    reason: format!("a history table is an append or ring table, not {kind:?}"),
                })
            }
        };
        let not_logged = || Error::InvalidOption {
            option: "source",
            reason: format!(
                "{:?} is not a durable blink table: only those have a logged history",
                source.name()
            ),
        };
        let durable = self.core.durable.as_ref().ok_or_else(not_logged)?;
        let log = {
            let graph = self.core.graph.read();
            self.check_source(&graph, source)?;
            match (
                &graph.node(source.id()).log,
                source.shared.retention.is_blink(),
            ) {
                (Some(log), true) => log.clone(),
                _ => return Err(not_logged()),
            }
        };
        // The published rows, not the table's state: a cycle waiting for its fsync has
        // applied rows it has not acknowledged yet.
        let mut end = source.snapshot().rows().end;
        let mut from = match retention {
            Retention::Ring { capacity } => end.saturating_sub(capacity),
            _ => 0,
        };
        let mut rows: Vec<RecordBatch> = Vec::new();
        // Every record up to `end` was handed to the writer before the cycle that made it
        // visible published: after the flush, the files hold it.
        let mut cursor = history::Cursor::default();
        let mut first_read = true;
        let mut read_to = |to: u64, rows: &mut Vec<RecordBatch>| -> Result<()> {
            durable.flush()?;
            let read = history::read(&log, from..to, &mut cursor)?;
            let n: u64 = read.iter().map(|b| b.num_rows() as u64).sum();
            // Only the first read may start late (the log's oldest segments deleted by hand).
            if !first_read && n != to - from {
                return Err(Error::Io(std::io::Error::other(format!(
                    "the log of {:?} gave {n} rows for positions {from}..{to}",
                    source.name()
                ))));
            }
            first_read = false;
            rows.extend(read);
            from = to;
            Ok(())
        };
        for attempt in 0.. {
            read_to(end, &mut rows)?;
            let mut after = AfterClose::default();
            let table = {
                let mut graph = self.core.graph.write();
                self.check_source(&graph, source)?;
                let current = graph.node(source.id()).state.log.rows();
                if current.start > end && attempt < HISTORY_TRIES {
                    // Cycles went past what was read: read the rest, then try again.
                    end = current.start;
                    None
                } else {
                    if current.start > end {
                        // Still behind: the rest is read holding the lock, so that cycles
                        // cannot run ahead again.
                        read_to(current.start, &mut rows)?;
                        end = current.start;
                    }
                    // The source's current rows follow: the history stops where they start.
                    let history = drop_last(std::mem::take(&mut rows), end - current.start);
                    Some(self.derive_in(&mut graph, name, source, retention, history, &mut after)?)
                }
            };
            cycle::finish(&self.core, after);
            if let Some(t) = table {
                return Ok(t);
            }
        }
        unreachable!("the last try returns")
    }

    /// The last `n` rows of `source`, updated in the same cycle. For a blink source it is a
    /// blink table of the last `n` rows of each cycle; otherwise a ring of capacity `n`.
    ///
    /// # Errors
    ///
    /// As [`ring_table`](Self::ring_table).
    pub fn tail(&self, name: &str, source: &Table, n: usize) -> Result<Table> {
        if n == 0 {
            return Err(Error::InvalidOption {
                option: "tail size",
                reason: "must be at least 1".into(),
            });
        }
        let retention = if source.shared.retention.is_blink() {
            Retention::Blink {
                cap: Some(n as u64),
            }
        } else {
            Retention::Ring { capacity: n as u64 }
        };
        self.derive(name, source, retention)
    }

    fn derive(&self, name: &str, source: &Table, retention: Retention) -> Result<Table> {
        let mut after = AfterClose::default();
        let table = {
            let mut graph = self.core.graph.write();
            self.derive_in(&mut graph, name, source, retention, Vec::new(), &mut after)?
        };
        cycle::finish(&self.core, after);
        Ok(table)
    }

    /// Checks that `source` is a table of this engine's graph (listed: not dropped).
    fn check_source(&self, graph: &Graph, source: &Table) -> Result<()> {
        self.check_alive()?;
        let src = source.id();
        match graph.nodes.get(src.index()) {
            Some(node) if Arc::ptr_eq(&node.shared, &source.shared) && graph.is_listed(src) => {
                Ok(())
            }
            _ => Err(Error::NoSuchTable {
                table: source.name().to_owned(),
            }),
        }
    }

    /// [`derive`](Self::derive) under the exclusive global lock, its first rows `history`
    /// then `source`'s current rows.
    fn derive_in(
        &self,
        graph: &mut Graph,
        name: &str,
        source: &Table,
        retention: Retention,
        history: Vec<RecordBatch>,
        after: &mut AfterClose,
    ) -> Result<Table> {
        {
            self.check_source(graph, source)?;
            let src = source.id();
            if source.shared.is_keyed() {
                return Err(Error::InvalidOption {
                    option: "source",
                    reason: format!(
                        "{:?} is keyed: ring, append and tail tables derive from append, blink and ring tables",
                        source.name()
                    ),
                });
            }
            let schema = source.schema().clone();
            let key = Arc::from(Vec::new());
            let spec = TableSpec {
                name,
                schema,
                retention,
                key,
                source: Some(src),
                durable: false,
                history,
            };
            self.add(graph, spec, after)
        }
    }

    /// Adds computing derived tables of `source` in one hold of the global lock: each table
    /// derives from `source`, or with [`OpTable::on_previous`] from the table added before it.
    /// Either every table is added or none is.
    pub(crate) fn add_op_tables(&self, source: &Table, specs: Vec<OpTable>) -> Result<Vec<Table>> {
        let mut after = AfterClose::default();
        let tables = {
            let mut graph = self.core.graph.write();
            self.check_alive()?;
            let src = source.id();
            match graph.nodes.get(src.index()) {
                Some(node) if Arc::ptr_eq(&node.shared, &source.shared) => {}
                _ => {
                    return Err(Error::NoSuchTable {
                        table: source.name().to_owned(),
                    })
                }
            }
            for (i, s) in specs.iter().enumerate() {
                if graph.by_name.contains_key(s.name.as_str())
                    || specs[..i].iter().any(|o| o.name == s.name)
                {
                    return Err(Error::TableExists {
                        table: s.name.clone(),
                    });
                }
            }
            let mut tables: Vec<Table> = Vec::with_capacity(specs.len());
            for s in specs {
                let from = match (s.on_previous, tables.last()) {
                    (true, Some(t)) => t.id(),
                    _ => src,
                };
                let spec = TableSpec {
                    name: &s.name,
                    schema: s.schema,
                    retention: s.retention,
                    key: s.key,
                    source: Some(from),
                    durable: false,
                    history: Vec::new(),
                };
                let shared = graph.add_table_with(
                    spec,
                    self.core.config.staging_limit,
                    Some(s.op),
                    &mut after,
                )?;
                tables.push(self.table_handle(shared));
            }
            for t in &tables {
                graph.node_mut(t.id()).side.clear();
            }
            tables
        };
        cycle::finish(&self.core, after);
        Ok(tables)
    }

    fn check_alive(&self) -> Result<()> {
        if self.core.is_shut_down() {
            Err(Error::EngineShutDown)
        } else {
            Ok(())
        }
    }

    /// The table with this name.
    pub fn table(&self, name: &str) -> Option<Table> {
        // Recursive: callable inside `read` without queueing behind a waiting cycle.
        let shared = self.core.graph.read_recursive().table(name)?;
        Some(self.table_handle(shared))
    }

    /// Every table, in creation order.
    pub fn tables(&self) -> Vec<Table> {
        let graph = self.core.graph.read_recursive();
        graph
            .tables()
            .map(|t| self.table_handle(t.clone()))
            .collect()
    }

    /// Runs one cycle now, on the calling thread, and returns its step.
    ///
    /// This is how a manual engine advances. On an engine with a cycle thread it runs an extra
    /// cycle (serialised with the thread's by the global lock). On a shut-down engine it does
    /// nothing and returns the last step.
    ///
    /// # Panics
    ///
    /// If called from a listener or `on_flush` (a re-entrant cycle would deadlock, so it is
    /// refused loudly instead).
    pub fn run_cycle(&self) -> Step {
        assert!(
            !crate::graph::on_cycle_thread(),
            "run_cycle called from inside a cycle"
        );
        if self.core.is_shut_down() {
            return self.step();
        }
        cycle::run(&self.core)
    }

    /// Asks the cycle thread to run the next cycle now instead of at the end of the period.
    /// Requests made before that cycle starts coalesce into it. Does nothing in manual mode.
    pub fn request_refresh(&self) {
        crate::graph::wait::request_refresh(&self.core);
    }

    /// Makes everything written before this call visible, and returns the step it is visible
    /// at: rows staged by any writer (publishers, row writers, multithreaded writers into
    /// this engine, Flight `DoPut`s already answered) before the call are in the tables when
    /// it returns.
    ///
    /// On a manual engine it runs a cycle. With a cycle thread it asks for a cycle now and
    /// waits for the first cycle that drains after the call (not a whole period). From a
    /// listener or `on_flush` it cannot wait for a cycle and returns the current step.
    ///
    /// # Examples
    ///
    /// `DolphinDB`'s "wait for the writer, then count the rows", with a threaded engine:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{Engine, Value};
    ///
    /// let engine = Engine::new()?; // a cycle thread, 100 ms period
    /// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    /// let dtw = engine.dynamic_table_writer("xs", schema, Default::default())?;
    /// dtw.write_row(&[Value::from(1)])?;
    /// engine.sync();
    /// assert_eq!(dtw.table().num_rows(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync(&self) -> Step {
        crate::graph::wait::sync(&self.core)
    }

    /// Waits until step `step` is published (its snapshots readable, its updates delivered),
    /// at most `timeout`. Returns whether it was; `false` also when the engine shut down
    /// before reaching it. On a manual engine another thread must run the cycles.
    pub fn wait_for_step(&self, step: Step, timeout: Duration) -> bool {
        crate::graph::wait::wait_for_step(&self.core, step, timeout)
    }

    /// The last finished step. Lock-free.
    pub fn step(&self) -> Step {
        self.core.step()
    }

    /// Runs `f` with a [`View`] of every table at one step, under the shared side of the global
    /// lock (no cycle runs meanwhile). Keep `f` short.
    pub fn read<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let view = View {
            graph: self.core.graph.read(),
            engine: self,
            _not_send: PhantomData,
        };
        f(&view)
    }

    /// The target cycle period.
    pub fn period(&self) -> Duration {
        self.core.config.period
    }

    /// Whether the engine runs cycles only on [`run_cycle`](Self::run_cycle).
    pub fn is_manual(&self) -> bool {
        !self.core.config.threaded
    }

    /// Whether the engine has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down()
    }

    /// The last cycle's statistics.
    pub fn last_cycle(&self) -> Option<CycleStats> {
        self.core.stats.lock().recent.back().copied()
    }

    /// The statistics of up to the last 512 cycles, oldest first.
    pub fn recent_cycles(&self) -> Vec<CycleStats> {
        self.core.stats.lock().recent.iter().copied().collect()
    }

    /// Totals over the engine's life.
    pub fn stats(&self) -> EngineStats {
        let mut stats = self.core.stats.lock().totals;
        if let Some(durable) = &self.core.durable {
            stats.log = durable.stats();
        }
        stats
    }

    /// Table `table`'s statistics: rows now and over its life, staged rows, consumers. Takes
    /// no global lock (the statistics log's, the table's staging and consumer locks, briefly).
    /// O(row writers + consumers of the table).
    pub fn table_stats(&self, table: &Table) -> TableStats {
        let shared = &table.shared;
        let totals = self.core.stats.lock().table(shared.id);
        let (listeners, subscriptions) = shared.consumers.lock().counts();
        let snapshot = table.snapshot();
        TableStats {
            rows: snapshot.num_rows(),
            rows_added: totals.added,
            rows_modified: totals.modified,
            rows_removed: totals.removed,
            rows_dropped: totals.dropped,
            staged_rows: shared.staging.staged_rows(),
            log: self
                .core
                .durable
                .as_ref()
                .and_then(|d| d.table_stats(shared.id)),
            listeners,
            subscriptions,
            step: snapshot.step(),
        }
    }

    /// Drops the table named `name` and every table derived from it (their names are
    /// returned, `name` first). Each is closed the way a failed table is: its listeners get
    /// `on_failure` and its subscriptions (Flight live streams included) end with
    /// [`Error::TableDropped`]. Rows staged for it are discarded, its storage is released,
    /// and its name can be used again at once.
    ///
    /// Handles still held ([`Table`], [`TablePublisher`], row writers) stay valid but refer
    /// to the dropped table, not to a later one of the same name: a snapshot is empty (at the
    /// step of the drop), writes are refused with [`Error::TableClosed`], and
    /// [`Table::failure`] is the [`Error::TableDropped`]. Snapshots taken before the drop keep
    /// their rows. Table ids are never reused; a dropped table's id stays taken.
    ///
    /// A durable table's log and checkpoints are deleted, so creating the name again starts
    /// empty (see [`crate::durable`], "Dropping a durable table"); this call returns once
    /// they are.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchTable`], [`Error::EngineShutDown`]; [`Error::Io`] if a dropped durable
    /// table's files could not be moved aside or deleted (the tables are dropped all the
    /// same; the message says where the files are).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_schema::{DataType, Field, Schema};
    /// let engine = tickertable::Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    /// let (trades, _) = engine.append_table("trades", schema.clone())?;
    /// engine.ring_table("recent", &trades, 10)?;
    /// assert_eq!(engine.drop_table("trades")?, ["trades", "recent"]);
    /// assert!(engine.table("recent").is_none() && trades.is_closed());
    /// engine.append_table("trades", schema)?; // the name is free again
    /// # Ok::<(), tickertable::Error>(())
    /// ```
    pub fn drop_table(&self, name: &str) -> Result<Vec<String>> {
        let mut after = AfterClose::default();
        let dropped = {
            let mut graph = self.core.graph.write();
            self.check_alive()?;
            let id = *graph.by_name.get(name).ok_or_else(|| Error::NoSuchTable {
                table: name.to_owned(),
            })?;
            let step = graph.step;
            graph.drop_table(id, step, &mut after)
        };
        let logs = std::mem::take(&mut after.dropped_logs);
        cycle::finish(&self.core, after);
        let mut deleted = Ok(());
        if let Some(durable) = &self.core.durable {
            for log in logs {
                deleted = deleted.and(durable.forget(&log));
            }
        }
        deleted.map(|()| dropped.iter().map(ToString::to_string).collect())
    }

    /// The last errors the engine reported on its own (panicking listeners and callbacks),
    /// oldest first, up to 64.
    pub fn recent_errors(&self) -> Vec<Arc<Error>> {
        self.core.recent_errors()
    }
}

/// A read of the whole engine at one step, under the shared side of the global lock.
///
/// Made by [`EngineHandle::read`]. No cycle runs while a `View` exists, so every snapshot
/// taken through it is at the same step. Keep it short: the cycle waits for it. It is
/// `!Send`: it cannot cross threads or be held across `.await`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: &T) {}
/// let engine = tickertable::Engine::builder().manual().build().unwrap();
/// engine.read(|view| assert_send(view));
/// ```
///
/// Taking it from inside a listener deadlocks (the cycle holds the exclusive side there).
pub struct View<'a> {
    graph: RwLockReadGuard<'a, Graph>,
    engine: &'a EngineHandle,
    _not_send: PhantomData<*const ()>,
}

impl View<'_> {
    /// The step every snapshot of this view is at.
    pub fn step(&self) -> Step {
        self.graph.step
    }

    /// The table's snapshot at [`step`](Self::step).
    pub fn snapshot(&self, table: &Table) -> TableSnapshot {
        table.snapshot()
    }

    /// Every table, in creation order.
    pub fn tables(&self) -> Vec<Table> {
        self.graph
            .tables()
            .map(|t| self.engine.table_handle(t.clone()))
            .collect()
    }

    /// The table with this name.
    pub fn table(&self, name: &str) -> Option<Table> {
        Some(self.engine.table_handle(self.graph.table(name)?))
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("step", &self.graph.step)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineHandle")
            .field("step", &self.step())
            .field("manual", &self.is_manual())
            .field("period", &self.core.config.period)
            .finish()
    }
}

/// A computing derived table for [`EngineHandle::add_op_tables`].
pub(crate) struct OpTable {
    pub(crate) name: String,
    pub(crate) schema: SchemaRef,
    pub(crate) retention: Retention,
    pub(crate) key: Arc<[usize]>,
    pub(crate) op: Box<dyn crate::derive::op::Operator>,
    /// Derive from the table added just before this one instead of the source.
    pub(crate) on_previous: bool,
}

/// How often [`EngineHandle::history_table`] reads what cycles added meanwhile without the
/// lock before it reads the rest holding it.
const HISTORY_TRIES: u32 = 3;

/// `batches` without their last `n` rows. O(batches).
fn drop_last(mut batches: Vec<RecordBatch>, mut n: u64) -> Vec<RecordBatch> {
    while n > 0 {
        let Some(last) = batches.pop() else { break };
        let rows = last.num_rows() as u64;
        if rows > n {
            #[allow(clippy::cast_possible_truncation)] // fewer than the batch's rows
            batches.push(last.slice(0, (rows - n) as usize));
        }
        n = n.saturating_sub(rows);
    }
    batches
}

/// A keyed table's key columns by index; empty for other kinds.
pub(crate) fn resolve_key(
    name: &str,
    schema: &SchemaRef,
    kind: TableKind,
    key: &[String],
) -> Result<Arc<[usize]>> {
    let keyed = matches!(kind, TableKind::Keyed { .. });
    if !keyed {
        if key.is_empty() {
            return Ok(Arc::from(Vec::new()));
        }
        return Err(Error::InvalidOption {
            option: "key columns",
            reason: format!("table {name:?} is {kind}: only keyed tables have key columns"),
        });
    }
    if key.is_empty() {
        return Err(Error::InvalidOption {
            option: "key columns",
            reason: format!("keyed table {name:?} needs at least one key column"),
        });
    }
    let mut columns = Vec::with_capacity(key.len());
    for k in key {
        let c = schema.index_of(k).map_err(|_| Error::NoColumnNamed {
            table: name.to_owned(),
            column: k.clone(),
        })?;
        if columns.contains(&c) {
            return Err(Error::InvalidOption {
                option: "key columns",
                reason: format!("{k:?} is given twice"),
            });
        }
        columns.push(c);
    }
    crate::table::keyed::KeyedState::supports(schema, &columns)?;
    Ok(Arc::from(columns))
}
