//! The update graph: the tables, their dependencies and the global lock.
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
//! `parking_lot`'s `RwLock` is task-fair: once the cycle waits for the exclusive side, new readers
//! queue behind it, so a stream of readers cannot starve the cycle (its wait is reported as
//! [`CycleStats::lock_wait`]).
//!
//! Lock order, always taken in this order and never the other way round:
//!
//! 1. the global lock;
//! 2. a table's staging state (`publish/staging.rs`), then a row writer's cell;
//! 3. the engine's dirty list and wake state;
//! 4. a table's listener registry, then a subscription's queue.
//!
//! Writers take only (2) and (3), never the global lock: staging is the only handoff between
//! writer threads and the cycle. Snapshot readers take no lock at all: they load an `Arc`.

pub(crate) mod cycle;
pub(crate) mod stats;
pub(crate) mod step;

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow_schema::SchemaRef;

pub use stats::{CycleStats, EngineStats};
pub use step::Step;

use crate::engine::Core;
use crate::error::{Error, Result};
use crate::publish::publisher::{Flusher, ShutdownFn};
use crate::publish::staging::Closing;
use crate::subscribe::TableUpdate;
use crate::sync::{Mutex, RwLockReadGuard};
use crate::table::snapshot::TableSnapshot;
use crate::table::{Retention, Table, TableId, TableShared, TableState};

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
}

/// One table in the graph.
pub(crate) struct TableNode {
    pub(crate) shared: Arc<TableShared>,
    pub(crate) state: TableState,
    pub(crate) source: Option<TableId>,
    pub(crate) children: Vec<TableId>,
    /// This cycle's update, for children to read; cleared at the end of the cycle.
    pub(crate) update: Option<Arc<TableUpdate>>,
    /// Set when the table closed; with the step it closed at.
    pub(crate) closed: Option<(Step, Closing)>,
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
        }
    }

    pub(crate) fn node(&self, id: TableId) -> &TableNode {
        &self.nodes[id.index()]
    }

    pub(crate) fn node_mut(&mut self, id: TableId) -> &mut TableNode {
        &mut self.nodes[id.index()]
    }

    /// Adds a table. A derived table starts with its source's current rows (retention applied)
    /// at the current step, the way Deephaven's `ring_table(initialize=True)` does.
    pub(crate) fn add_table(
        &mut self,
        core: &Arc<Core>,
        name: &str,
        schema: SchemaRef,
        retention: Retention,
        key: Arc<[usize]>,
        source: Option<TableId>,
    ) -> Result<Table> {
        if name.is_empty() {
            return Err(Error::InvalidOption {
                option: "table name",
                reason: "must not be empty".to_owned(),
            });
        }
        if schema.fields().is_empty() {
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
        let shared = Arc::new(TableShared::new(
            id,
            name,
            schema,
            key,
            retention,
            source.is_some(),
            core.config.staging_limit,
            Arc::downgrade(core),
            self.step,
        ));
        let mut state = TableState::new(retention, &shared.schema, &shared.key);
        if let Some(src) = source {
            let src_node = self.node(src);
            let batches: Vec<_> = src_node
                .state
                .log
                .chunks()
                .iter()
                .map(|c| c.batch.clone())
                .collect();
            state.apply(self.step, &batches);
            shared
                .snapshot
                .store(Arc::new(state.snapshot(self.step, &shared.schema)));
            if retention.is_blink() && !state.log.rows().is_empty() {
                self.nonempty_blinks.push(id);
            }
            self.node_mut(src).children.push(id);
        }
        self.by_name.insert(shared.name.clone(), id);
        self.nodes.push(TableNode {
            shared: shared.clone(),
            state,
            source,
            children: Vec::new(),
            update: None,
            closed: None,
        });
        Ok(Table { shared })
    }

    pub(crate) fn table(&self, name: &str) -> Option<Table> {
        self.by_name.get(name).map(|id| Table {
            shared: self.node(*id).shared.clone(),
        })
    }

    pub(crate) fn tables(&self) -> Vec<Table> {
        self.nodes
            .iter()
            .map(|n| Table {
                shared: n.shared.clone(),
            })
            .collect()
    }
}

/// A read of the whole engine at one step, under the shared side of the global lock.
///
/// Made by [`EngineHandle::read`](crate::EngineHandle::read). No cycle runs while a `View`
/// exists, so every snapshot taken through it is at the same step. Keep it short: the cycle
/// waits for it. It is `!Send`: it cannot cross threads or be held across `.await`.
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
    _not_send: PhantomData<*const ()>,
}

impl<'a> View<'a> {
    pub(crate) fn new(graph: RwLockReadGuard<'a, Graph>) -> Self {
        Self {
            graph,
            _not_send: PhantomData,
        }
    }

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
        self.graph.tables()
    }

    /// The table with this name.
    pub fn table(&self, name: &str) -> Option<Table> {
        self.graph.table(name)
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("step", &self.graph.step)
            .finish_non_exhaustive()
    }
}
