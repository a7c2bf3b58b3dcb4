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

use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::graph::stats::StatsLog;
use crate::graph::{cycle, CycleStats, EngineStats, Graph, Step, View};
use crate::publish::publisher::Flusher;
use crate::publish::staging::WriterCell;
use crate::publish::{DynamicTableWriter, DynamicWriterOptions, PublisherOptions, TablePublisher};
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock};
use crate::table::{Retention, Table, TableId};

/// The default cycle period.
pub const DEFAULT_PERIOD: Duration = Duration::from_millis(100);
/// The default staging limit, in rows per table (publishers) and per row writer.
pub const DEFAULT_STAGING_LIMIT: usize = 1 << 24;
/// How many recent errors the engine keeps for [`EngineHandle::recent_errors`].
const RECENT_ERRORS: usize = 64;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) period: Duration,
    pub(crate) threaded: bool,
    pub(crate) low_latency: Option<Duration>,
    pub(crate) staging_limit: usize,
}

#[derive(Debug, Default)]
struct Wake {
    refresh: bool,
    staged: bool,
    shutdown: bool,
}

/// What the engine's handles, tables and writers share.
pub(crate) struct Core {
    /// The global lock.
    pub(crate) graph: RwLock<Graph>,
    pub(crate) config: Config,
    /// Tables with staged input since the last cycle took the list.
    dirty: Mutex<Vec<TableId>>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
    /// The last finished step, readable without the lock. Written by the cycle under the
    /// global lock; `Release`/`Acquire` so a reader that sees step n also sees its snapshots.
    step: AtomicU64,
    /// Set once at shutdown; every later write is refused. `Release`/`Acquire` pairs the
    /// final cycle's effects with the refusals that follow.
    shut_down: AtomicBool,
    /// Set once when shutdown starts, so it runs once.
    shutting_down: AtomicBool,
    stats: Mutex<StatsLog>,
    errors: Mutex<VecDeque<Arc<Error>>>,
}

impl Core {
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn shut_down_flag(&self) -> &AtomicBool {
        &self.shut_down
    }

    pub(crate) fn step(&self) -> Step {
        Step(self.step.load(Ordering::Acquire))
    }

    pub(crate) fn set_step(&self, step: Step) {
        self.step.store(step.0, Ordering::Release);
    }

    /// Puts a table on the next cycle's list; in low-latency mode, wakes the cycle thread.
    pub(crate) fn mark_dirty(&self, id: TableId) {
        self.dirty.lock().push(id);
        if self.config.low_latency.is_some() {
            let mut w = self.wake.lock();
            if !w.staged {
                w.staged = true;
                self.wake_cv.notify_one();
            }
        }
    }

    pub(crate) fn take_dirty(&self) -> Vec<TableId> {
        std::mem::take(&mut *self.dirty.lock())
    }

    pub(crate) fn report(&self, error: Error) {
        tracing::warn!(%error, "tickertable");
        let mut errors = self.errors.lock();
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(Arc::new(error));
    }

    pub(crate) fn finish_cycle(&self, stats: CycleStats, errors: Vec<Error>) {
        self.stats.lock().record(stats);
        for e in errors {
            self.report(e);
        }
    }

    /// The cycle thread's loop.
    fn run_thread(&self) {
        let period = self.config.period;
        let mut last_start = Instant::now();
        loop {
            // The start this cycle was scheduled for, when it starts on schedule.
            let mut on_time = None;
            {
                let mut w = self.wake.lock();
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
                    if let (Some(gap), true) = (self.config.low_latency, w.staged) {
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
                            self.wake_cv.wait_until(&mut w, d);
                        }
                        None => self.wake_cv.wait(&mut w),
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
            cycle::run(self);
        }
    }

    /// Runs the final cycle, refuses further writes, ends subscriptions, runs `on_shutdown`.
    fn shutdown(&self) {
        if self.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // One last ordinary cycle, so `on_flush` callbacks can still hand over what they hold.
        cycle::run(self);
        // Then refuse writes, then drain every table: a write that got in before the flag
        // was set is staged before the final drain takes the staging locks, so it is applied;
        // one that comes after sees the flag (through those same locks) and is refused.
        self.shut_down.store(true, Ordering::Release);
        cycle::run_final(self);
        let (hooks, tables) = {
            let mut graph = self.graph.write();
            // Flushers hold publishers, which hold the core: drop them to break the cycle.
            graph.flushers.get_mut().clear();
            let hooks: Vec<_> = std::mem::take(graph.shutdown_hooks.get_mut());
            (hooks, graph.tables())
        };
        let mut errors = Vec::new();
        for t in &tables {
            crate::subscribe::end(&t.shared, None, &mut errors);
        }
        for e in errors {
            self.report(e);
        }
        for (_, hook) in hooks {
            cycle::run_hook(self, hook);
        }
    }
}

/// Configures and builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
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

    /// Builds the engine and starts its cycle thread (unless manual).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for a zero period or staging limit, [`Error::Io`] if the thread
    /// cannot be spawned.
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
        let core = Arc::new(Core {
            graph: RwLock::new(Graph::new()),
            config: self.config,
            dirty: Mutex::new(Vec::new()),
            wake: Mutex::new(Wake::default()),
            wake_cv: Condvar::new(),
            step: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            stats: Mutex::new(StatsLog::default()),
            errors: Mutex::new(VecDeque::new()),
        });
        let thread = if self.config.threaded {
            let c = core.clone();
            Some(
                std::thread::Builder::new()
                    .name("tickertable-cycle".into())
                    .spawn(move || c.run_thread())?,
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
            if thread.join().is_err() {
                self.handle.core.report(Error::CallbackPanicked {
                    table: String::new(),
                    callback: "cycle thread",
                    message: "the cycle thread panicked".into(),
                });
            }
        }
        self.handle.core.shutdown();
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
        let retention = Retention::for_kind(options.kind)?;
        let key = resolve_key(name, &schema, options.kind, &options.key)?;
        let mut graph = self.core.graph.write();
        self.check_alive()?;
        let table = graph.add_table(&self.core, name, schema, retention, key, None)?;
        let publisher = TablePublisher::new(table.clone(), self.core.clone());
        if let Some(f) = options.on_flush {
            graph
                .flushers
                .get_mut()
                .push(Flusher::new(publisher.clone(), f));
        }
        if let Some(f) = options.on_shutdown {
            graph.shutdown_hooks.get_mut().push((table.id(), f));
        }
        Ok((table, publisher))
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
        let DynamicWriterOptions { kind, key } = options;
        // Refuse unsupported column types before the table exists.
        WriterCell::new(&schema)?;
        let retention = Retention::for_kind(kind)?;
        let key = resolve_key(name, &schema, kind, &key)?;
        let mut graph = self.core.graph.write();
        self.check_alive()?;
        let table = graph.add_table(&self.core, name, schema, retention, key, None)?;
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
        let retention = Retention::for_kind(crate::TableKind::Ring { capacity })?;
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
        if !source.key_columns().is_empty() {
            return Err(Error::InvalidOption {
                option: "source",
                reason: format!(
                    "{:?} is keyed: ring, append and tail tables derive from append, blink and ring tables",
                    source.name()
                ),
            });
        }
        let schema = source.schema().clone();
        let table = graph.add_table(
            &self.core,
            name,
            schema,
            retention,
            Arc::from(Vec::new()),
            Some(src),
        )?;
        if let Some((_, closing)) = graph.node(src).closed.clone() {
            // A derived table of a closed source is closed from the start, failed with the
            // source's failure (wrapped with its own name, as in a cycle).
            let closing = cycle::propagate(&closing, name);
            let _ = table.shared.staging.close(closing.clone());
            let step = graph.step;
            graph.node_mut(table.id()).closed = Some((step, closing.clone()));
            let mut errors = Vec::new();
            crate::subscribe::end(&table.shared, closing.failure(), &mut errors);
            for e in errors {
                self.core.report(e);
            }
        }
        Ok(table)
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
        self.core.graph.read_recursive().table(name)
    }

    /// Every table, in creation order.
    pub fn tables(&self) -> Vec<Table> {
        self.core.graph.read_recursive().tables()
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
            !cycle::on_cycle_thread(),
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
        let mut w = self.core.wake.lock();
        if !w.refresh {
            w.refresh = true;
            self.core.wake_cv.notify_one();
        }
    }

    /// The last finished step. Lock-free.
    pub fn step(&self) -> Step {
        Step(self.core.step.load(Ordering::Acquire))
    }

    /// Runs `f` with a [`View`] of every table at one step, under the shared side of the global
    /// lock (no cycle runs meanwhile). Keep `f` short.
    pub fn read<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let view = View::new(self.core.graph.read());
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
        self.core.stats.lock().totals
    }

    /// The last errors the engine reported on its own (panicking listeners and callbacks),
    /// oldest first, up to 64.
    pub fn recent_errors(&self) -> Vec<Arc<Error>> {
        self.core.errors.lock().iter().cloned().collect()
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

/// A keyed table's key columns by index; empty for other kinds.
fn resolve_key(
    name: &str,
    schema: &SchemaRef,
    kind: crate::TableKind,
    key: &[String],
) -> Result<Arc<[usize]>> {
    let keyed = matches!(kind, crate::TableKind::Keyed { .. });
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
