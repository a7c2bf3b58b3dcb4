//! The update graph: the global lock, the tables it guards and the one way a table closes.
//!
//! `Core` is what the engine's handles, tables and writers share: the global lock around
//! the `Graph` (the table nodes, their storage and dependencies), the list of tables with
//! staged input, the cycle thread's wake state, the published step and the statistics. The
//! cycle (`graph/cycle.rs`) runs under the lock; every writer stages through
//! `graph/stage.rs`.
//!
//! # Locking
//!
//! One global lock (a `parking_lot::RwLock` around the graph) is the consistency point:
//!
//! - the cycle takes its exclusive side for the whole of a cycle: drain, apply, deliver,
//!   publish snapshots;
//! - [`EngineHandle::read`](crate::EngineHandle::read) and subscribing take its shared side, so
//!   what they read is at one step;
//! - creating a table takes its exclusive side briefly.
//!
//! `parking_lot`'s `RwLock` is task-fair: once the cycle waits for the exclusive side, new
//! readers queue behind it, so a stream of readers cannot starve the cycle (its wait is
//! reported as [`CycleStats::lock_wait`]).
//!
//! This is the crate's one statement of the lock order. Locks are always taken in this order
//! and never the other way round:
//!
//! 1. the global lock;
//! 2. a table's staging state (`publish/staging.rs`), then a row writer's cell;
//! 3. the engine's dirty list, then its wake state;
//! 4. a table's consumer registry (`subscribe/registry.rs`), then a listener's callback, then
//!    a subscription's queue;
//! 5. leaf locks, under which nothing else is taken: a table's lifecycle
//!    (`table/lifecycle.rs`), a listener's failure message, the statistics and error logs, a
//!    multithreaded writer's lane, a Flight server's counters (`flight/server_stats.rs`), a
//!    durable log writer's queue and a cycle's log acknowledgement (`durable/writer.rs`).
//!
//! With [`SyncPolicy::EveryCycle`](crate::durable::SyncPolicy::EveryCycle) a cycle that
//! logged records does not hold the exclusive side while the log is fsynced: it downgrades
//! to the *upgradable* side (readers come in, no other writer does), waits for the log
//! writer's acknowledgement, and upgrades back to publish and deliver. The log writer takes
//! no engine lock, so this wait cannot deadlock.
//!
//! Writers take only (2), (3) and (5), never the global lock: staging is the only handoff
//! between writer threads and the cycle. Snapshot readers take no lock at all: they load an
//! `Arc`.

pub(crate) mod cycle;
pub(crate) mod stage;
pub(crate) mod stats;
pub(crate) mod wait;

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use stats::{CycleStats, EngineStats, TableStats, CYCLE_BUCKETS};

use crate::derive::op::{OpInput, OpOutput, Operator};
use crate::durable::writer::{Durable, TableLog};
use crate::error::{Error, Result};
use crate::step::Step;
use crate::subscribe::update::TableUpdate;
use crate::sync::{AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock};
use crate::table::lifecycle::Closing;
use crate::table::shared::{TableId, TableShared, TableSpec};
use crate::table::state::TableState;

thread_local! {
    static IN_CYCLE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a cycle (so it must never wait for one).
pub(crate) fn on_cycle_thread() -> bool {
    IN_CYCLE.with(Cell::get)
}

/// Marks the calling thread as running a cycle while it lives.
pub(crate) struct InCycle;

impl InCycle {
    pub(crate) fn enter() -> Self {
        IN_CYCLE.with(|c| c.set(true));
        InCycle
    }
}

impl Drop for InCycle {
    fn drop(&mut self) {
        IN_CYCLE.with(|c| c.set(false));
    }
}
use stats::StatsLog;

/// How many recent errors the engine keeps for `EngineHandle::recent_errors`.
const RECENT_ERRORS: usize = 64;

/// An engine's settings, fixed when it is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) period: Duration,
    pub(crate) threaded: bool,
    pub(crate) low_latency: Option<Duration>,
    pub(crate) staging_limit: usize,
}

/// Why the cycle thread should wake.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    pub(crate) refresh: bool,
    pub(crate) staged: bool,
    pub(crate) shutdown: bool,
}

/// What the engine's handles, tables and writers share.
pub(crate) struct Core {
    /// The global lock.
    pub(crate) graph: RwLock<Graph>,
    pub(crate) config: Config,
    /// Tables with staged input since the last cycle took the list.
    dirty: Mutex<Vec<TableId>>,
    pub(crate) wake: Mutex<Wake>,
    pub(crate) wake_cv: Condvar,
    /// The last finished step, readable without the lock. Written by the cycle under the
    /// global lock; `Release`/`Acquire` so a reader that sees step n also sees its snapshots.
    step: AtomicU64,
    /// Set once at shutdown; every later write is refused. `Release`/`Acquire` pairs the
    /// final cycle's effects with the refusals that follow.
    shut_down: AtomicBool,
    /// Set once when shutdown starts, so it runs once.
    pub(crate) shutting_down: AtomicBool,
    /// Set once shutdown has run its last cycle and closed every table.
    pub(crate) closed_all: AtomicBool,
    /// The step of the latest cycle that has taken the global lock (see `graph/wait.rs`).
    pub(crate) begun: AtomicU64,
    /// Waiters for a step; notified when a step is published. A leaf lock.
    pub(crate) visible: Mutex<()>,
    pub(crate) visible_cv: Condvar,
    /// How many threads wait on `visible_cv`: a cycle takes `visible` to notify only when
    /// some do (see `graph/wait.rs`).
    pub(crate) visible_waiters: AtomicU64,
    pub(crate) stats: Mutex<StatsLog>,
    errors: Mutex<VecDeque<Arc<Error>>>,
    /// The data directory's log writer, if the engine has one.
    pub(crate) durable: Option<Durable>,
}

impl Core {
    pub(crate) fn new(config: Config, durable: Option<Durable>) -> Self {
        Self {
            durable,
            graph: RwLock::new(Graph::new()),
            config,
            dirty: Mutex::new(Vec::new()),
            wake: Mutex::new(Wake::default()),
            wake_cv: Condvar::new(),
            step: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            closed_all: AtomicBool::new(false),
            begun: AtomicU64::new(0),
            visible: Mutex::new(()),
            visible_cv: Condvar::new(),
            visible_waiters: AtomicU64::new(0),
            stats: Mutex::new(StatsLog::default()),
            errors: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    pub(crate) fn shut_down_flag(&self) -> &AtomicBool {
        &self.shut_down
    }

    /// Refuses every later write.
    pub(crate) fn set_shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    pub(crate) fn step(&self) -> Step {
        Step(self.step.load(Ordering::Acquire))
    }

    /// Whether shutdown has started but its last cycles may still publish steps.
    pub(crate) fn shutting_down_cycles(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire) && !self.closed_all.load(Ordering::Acquire)
    }

    fn set_step(&self, step: Step) {
        // SeqCst, with the waiter count read after it: see `graph/wait.rs`.
        self.step.store(step.0, Ordering::SeqCst);
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

    /// Moves the tables marked dirty since the last cycle into `into`, which is empty.
    pub(crate) fn take_dirty(&self, into: &mut Vec<TableId>) {
        debug_assert!(into.is_empty());
        // A swap, not a take: both lists keep their capacity, so marking a table dirty
        // allocates only while the lists grow.
        std::mem::swap(&mut *self.dirty.lock(), into);
    }

    /// Wakes the durable log writer if a cycle handed it records (see `durable/writer.rs`).
    pub(crate) fn wake_log_writer(&self) {
        if let Some(durable) = &self.durable {
            durable.wake();
        }
    }

    /// Logs an error the engine met on its own and keeps it for `recent_errors`.
    pub(crate) fn report(&self, error: Error) {
        self.report_shared(Arc::new(error));
    }

    /// As [`report`](Self::report), for an error kept elsewhere too.
    pub(crate) fn report_shared(&self, error: Arc<Error>) {
        tracing::warn!(%error, "tickertable");
        let mut errors = self.errors.lock();
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back(error);
    }

    pub(crate) fn recent_errors(&self) -> Vec<Arc<Error>> {
        self.errors.lock().iter().cloned().collect()
    }
}

/// A publisher's `on_flush`, run by the cycle with the engine's core.
pub(crate) type FlushFn = Box<dyn FnMut(&Arc<Core>) + Send>;
/// An `on_shutdown` callback.
pub(crate) type ShutdownFn = Box<dyn FnOnce() + Send>;

/// A publisher's `on_flush`, kept in the graph and run at the start of every cycle.
pub(crate) struct Flusher {
    pub(crate) table: Arc<TableShared>,
    pub(crate) callback: FlushFn,
}

/// Everything guarded by the global lock.
pub(crate) struct Graph {
    pub(crate) step: Step,
    pub(crate) nodes: Vec<TableNode>,
    pub(crate) by_name: HashMap<Arc<str>, TableId>,
    /// Blink-retention tables that hold rows: the next cycle must empty them.
    pub(crate) nonempty_blinks: Vec<TableId>,
    /// Publishers' `on_flush` callbacks. Behind a mutex only so `Graph` is `Sync` without
    /// asking callbacks to be; it is only taken under the exclusive global lock.
    pub(crate) flushers: Mutex<Vec<Flusher>>,
    /// `on_shutdown` callbacks by table; same locking as `flushers`.
    pub(crate) shutdown_hooks: Mutex<Vec<(TableId, ShutdownFn)>>,
    /// The cycle's working collections, kept between cycles (`None` only while a cycle
    /// runs; boxed so taking them out moves a pointer).
    pub(crate) scratch: Option<Box<CycleScratch>>,
}

/// The collections a cycle works with, kept on the graph between cycles and cleared, not
/// dropped: once they have grown to the engine's size a cycle allocates nothing for them.
/// Each is empty between cycles; the cycle takes them out of the graph while it runs and
/// puts them back.
#[derive(Default)]
pub(crate) struct CycleScratch {
    /// The tables marked dirty since the last cycle, swapped with the engine's list.
    pub(crate) marked: Vec<TableId>,
    /// The tables to visit this cycle, smallest id (dependency order) first.
    pub(crate) queue: std::collections::BinaryHeap<std::cmp::Reverse<TableId>>,
    pub(crate) changed: Vec<TableId>,
    pub(crate) per_table: Vec<(TableId, stats::TableTotals)>,
    pub(crate) closing: Vec<(TableId, Closing)>,
    pub(crate) input: Vec<arrow_array::RecordBatch>,
    pub(crate) sided: Vec<TableId>,
    pub(crate) snapshots: Vec<Arc<crate::table::snapshot::SnapshotInner>>,
}

/// One table in the graph.
pub(crate) struct TableNode {
    pub(crate) shared: Arc<TableShared>,
    pub(crate) state: TableState,
    pub(crate) children: Vec<TableId>,
    /// This cycle's update, for children to read; cleared at the end of the cycle.
    pub(crate) update: Option<Arc<TableUpdate>>,
    /// A durable table's log (`durable/`): the cycle hands it what it staged.
    pub(crate) log: Option<Arc<TableLog>>,
    /// A computing derived table's operator (`last_by`, `filter`, `agg_by`, `bars`); `None`
    /// for source tables and for the copying derived tables (ring, append, tail).
    pub(crate) op: Option<Box<dyn Operator>>,
    /// What this table's operator hands its derived tables this cycle (a bars table's open
    /// bars); cleared at the end of the cycle.
    pub(crate) side: Vec<arrow_array::RecordBatch>,
}

/// What closing tables leaves to do once the global lock is released, and errors to report.
#[derive(Default)]
pub(crate) struct AfterClose {
    /// `on_shutdown` hooks, with their table's name.
    pub(crate) hooks: Vec<(Arc<str>, ShutdownFn)>,
    pub(crate) errors: Vec<Error>,
    /// Dropped durable tables' logs, whose files the dropping call deletes
    /// ([`Durable::forget`]).
    pub(crate) dropped_logs: Vec<Arc<TableLog>>,
}

impl Graph {
    pub(crate) fn new() -> Self {
        Self {
            step: Step(0),
            nodes: Vec::new(),
            by_name: HashMap::new(),
            nonempty_blinks: Vec::new(),
            flushers: Mutex::new(Vec::new()),
            shutdown_hooks: Mutex::new(Vec::new()),
            scratch: Some(Box::default()),
        }
    }

    pub(crate) fn node(&self, id: TableId) -> &TableNode {
        &self.nodes[id.index()]
    }

    pub(crate) fn node_mut(&mut self, id: TableId) -> &mut TableNode {
        &mut self.nodes[id.index()]
    }

    /// Adds a table. A derived table starts with its source's current rows (retention applied)
    /// at the current step, the way Deephaven's `ring_table(initialize=True)` does, and closed
    /// if its source is.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for an empty name or schema, [`Error::TableExists`].
    pub(crate) fn add_table(
        &mut self,
        spec: TableSpec<'_>,
        staging_limit: usize,
        after: &mut AfterClose,
    ) -> Result<Arc<TableShared>> {
        self.add_table_with(spec, staging_limit, None, after)
    }

    /// Adds a table as [`add_table`](Self::add_table) does; with an operator, the table is a
    /// computing derived table that starts with the operator run over its source's current
    /// rows (every one of them taken as added).
    ///
    /// # Errors
    ///
    /// As [`add_table`](Self::add_table), and the operator's error on the current rows.
    pub(crate) fn add_table_with(
        &mut self,
        mut spec: TableSpec<'_>,
        staging_limit: usize,
        mut op: Option<Box<dyn Operator>>,
        after: &mut AfterClose,
    ) -> Result<Arc<TableShared>> {
        let (name, source, retention) = (spec.name, spec.source, spec.retention);
        let history = std::mem::take(&mut spec.history);
        if name.is_empty() {
            return Err(Error::InvalidOption {
                option: "table name",
                reason: "must not be empty".to_owned(),
            });
        }
        if spec.schema.fields().is_empty() {
            return Err(Error::InvalidOption {
                option: "schema",
                reason: format!("table {name:?} needs at least one column"),
            });
        }
        if self.by_name.contains_key(name) {
            return Err(Error::TableExists {
                table: name.to_owned(),
            });
        }
        let id = TableId(self.nodes.len() as u64);
        let shared = Arc::new(TableShared::new(id, spec, staging_limit, self.step));
        let mut state = TableState::new(retention, &shared.schema, &shared.key);
        let mut side = Vec::new();
        if let (Some(src), Some(op)) = (source, op.as_mut()) {
            let node = self.node(src);
            let log = &node.state.log;
            let initial = TableUpdate {
                step: self.step,
                removed: 0..0,
                added: log.rows(),
                batches: log.chunks().iter().map(|c| c.batch.clone()).collect(),
                modified: crate::subscribe::update::Modified::default(),
            };
            let input = OpInput {
                update: Some(&initial),
                source: log,
                side: &node.side,
            };
            let mut out = OpOutput::default();
            op.run(&input, &mut out)?;
            state.apply_output(self.step, &mut out);
            side = out.side;
            shared.snapshot.store(Arc::new(state.snapshot(
                self.step,
                &shared.schema,
                &shared.key,
            )));
            if retention.is_blink() && !state.log.rows().is_empty() {
                self.nonempty_blinks.push(id);
            }
            self.node_mut(src).children.push(id);
        } else if let Some(src) = source {
            let mut batches = history;
            batches.extend(
                self.node(src)
                    .state
                    .log
                    .chunks()
                    .iter()
                    .map(|c| c.batch.clone()),
            );
            state.apply_owned(self.step, &mut batches);
            shared.snapshot.store(Arc::new(state.snapshot(
                self.step,
                &shared.schema,
                &shared.key,
            )));
            if retention.is_blink() && !state.log.rows().is_empty() {
                self.nonempty_blinks.push(id);
            }
            self.node_mut(src).children.push(id);
        }
        self.by_name.insert(shared.name.clone(), id);
        self.nodes.push(TableNode {
            shared: shared.clone(),
            state,
            children: Vec::new(),
            update: None,
            log: None,
            op,
            side,
        });
        if let Some(src) = source {
            if let Some((_, closing)) = self.node(src).shared.lifecycle.closed() {
                let step = self.step;
                self.close(id, step, &closing.for_derived(name), after);
            }
        }
        Ok(shared)
    }

    /// Closes table `id` at `step`, and its derived tables with it: the one way a table
    /// ends. For each table: marks its lifecycle closed, ends its consumers (on a failure
    /// listeners get `on_failure` and subscriptions `Event::Failed`; then subscriptions end),
    /// drops its `on_flush` and hands its `on_shutdown` to `after` (to run outside the lock).
    /// A derived table closes cleanly with a clean source, or failed with the source's
    /// failure under its own name. Tables already closed are left as they are.
    ///
    /// In a cycle this runs after the cycle's updates were delivered, so a closing table's
    /// last rows (and its derived tables' share of them) reach every consumer first.
    pub(crate) fn close(
        &mut self,
        id: TableId,
        step: Step,
        closing: &Closing,
        after: &mut AfterClose,
    ) {
        let mut todo = vec![(id, closing.clone())];
        while let Some((id, closing)) = todo.pop() {
            let shared = self.node(id).shared.clone();
            if !shared.lifecycle.close(step, closing.clone()) {
                continue;
            }
            shared
                .consumers
                .lock()
                .end(&shared.name, closing.failure(), &mut after.errors);
            self.flushers.get_mut().retain(|f| f.table.id != id);
            let hooks = self.shutdown_hooks.get_mut();
            let mut i = 0;
            while i < hooks.len() {
                if hooks[i].0 == id {
                    after.hooks.push((shared.name.clone(), hooks.remove(i).1));
                } else {
                    i += 1;
                }
            }
            for &child in self.node(id).children.iter().rev() {
                let name = &self.node(child).shared.name;
                todo.push((child, closing.for_derived(name)));
            }
        }
    }

    /// Drops table `id` and every table derived from it, at `step`: each is closed as
    /// [`close`](Self::close) does, failed with [`Error::TableDropped`] under its own name (so
    /// listeners get `on_failure` and subscriptions `Event::Failed` saying so), its name leaves
    /// the index (it can be reused), its staged input is discarded, and its storage is
    /// released: its published snapshot becomes an empty one at `step`. The node stays as a
    /// tombstone, so table ids stay indices. Returns the names dropped, `id`'s first.
    ///
    /// Cost O(dropped tables + their staged input + their chunks).
    pub(crate) fn drop_table(
        &mut self,
        id: TableId,
        step: Step,
        after: &mut AfterClose,
    ) -> Vec<Arc<str>> {
        let mut ids = vec![id];
        let mut i = 0;
        while i < ids.len() {
            ids.extend(self.node(ids[i]).children.iter().copied());
            i += 1;
        }
        // Derived tables first, each with its own reason, so none closes as its source's.
        for &t in ids.iter().rev() {
            let name = self.node(t).shared.name.to_string();
            let closing = Closing::Failed(Arc::new(Error::TableDropped { table: name }));
            self.close(t, step, &closing, after);
        }
        if let Some(src) = self.node(id).shared.source {
            self.node_mut(src).children.retain(|c| *c != id);
        }
        self.nonempty_blinks.retain(|t| !ids.contains(t));
        let mut names = Vec::with_capacity(ids.len());
        let mut discarded = Vec::new();
        for &t in &ids {
            let node = self.node_mut(t);
            let shared = node.shared.clone();
            discarded.clear();
            let _ = shared
                .staging
                .drain(&shared.lifecycle, &mut discarded, &mut None);
            node.state = TableState::new(shared.retention, &shared.schema, &shared.key);
            node.children.clear();
            after.dropped_logs.extend(node.log.take());
            node.update = None;
            shared.snapshot.store(Arc::new(node.state.snapshot(
                step,
                &shared.schema,
                &shared.key,
            )));
            self.by_name.remove(&shared.name);
            names.push(shared.name.clone());
        }
        names
    }

    /// Whether table `id` is in the graph, not dropped.
    pub(crate) fn is_listed(&self, id: TableId) -> bool {
        let name = &self.node(id).shared.name;
        self.by_name.get(name) == Some(&id)
    }

    /// Gives a new durable table the storage replay rebuilt and its log, and moves the
    /// engine's step up to the largest step logged (so steps never go back across a
    /// restart). Publishes the table's snapshot at the engine's step.
    pub(crate) fn install_replayed(
        &mut self,
        core: &Core,
        id: TableId,
        state: TableState,
        last_step: Step,
        log: Arc<TableLog>,
    ) {
        if last_step > self.step {
            // SeqCst as in the cycle: `graph/wait.rs` reads it to know the next step.
            core.begun.fetch_max(last_step.as_u64(), Ordering::SeqCst);
            self.publish_step(core, last_step);
        }
        let step = self.step;
        let node = self.node_mut(id);
        node.state = state;
        node.log = Some(log);
        let snapshot = node
            .state
            .snapshot(step, &node.shared.schema, &node.shared.key);
        node.shared.snapshot.store(Arc::new(snapshot));
        if node.state.retention.is_blink() && !node.state.log.rows().is_empty() {
            self.nonempty_blinks.push(id);
        }
    }

    /// Publishes step `step` to readers that do not take the lock.
    pub(crate) fn publish_step(&mut self, core: &Core, step: Step) {
        self.step = step;
        core.set_step(step);
        if core.visible_waiters.load(Ordering::SeqCst) > 0 {
            let _waiters = core.visible.lock();
            core.visible_cv.notify_all();
        }
    }

    pub(crate) fn table(&self, name: &str) -> Option<Arc<TableShared>> {
        self.by_name
            .get(name)
            .map(|id| self.node(*id).shared.clone())
    }

    /// Every table not dropped, in creation order.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &Arc<TableShared>> + '_ {
        self.nodes
            .iter()
            .filter(|n| self.by_name.get(&n.shared.name) == Some(&n.shared.id))
            .map(|n| &n.shared)
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("step", &self.step)
            .field("tables", &self.nodes.len())
            .finish_non_exhaustive()
    }
}
