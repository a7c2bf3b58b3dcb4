//! One cycle of the update graph: flush → drain → apply → publish → deliver.
//!
//! # Cycle semantics
//!
//! A cycle moves the engine from `Step(n)` to `Step(n + 1)` under the exclusive global lock:
//!
//! 1. every publisher's `on_flush` runs (a panic fails that publisher's table);
//! 2. every table with staged input drains it: staged batches (publishers, multithreaded
//!    writers, Flight `DoPut`) in the order they were added, then each row writer's committed
//!    rows, writers in creation order. Each writer's rows keep their order; rows that
//!    different writers staged between the same two cycles were written concurrently, and
//!    their relative order in the table is this drain order, not wall-clock commit order
//!    (DESIGN's "in the order they were committed" holds per writer);
//! 3. each changed table applies its retention, in id order, which is dependency order: a
//!    derived table reads its source's update of this same cycle;
//! 4. the new snapshots are published, then each update goes to the table's listeners and
//!    subscriptions, and closed tables end their subscriptions;
//! 5. the lock is released and `on_shutdown` hooks of tables that closed run.
//!
//! Only tables with staged input, non-empty blink tables and the derived tables of changed
//! tables are visited: a cycle costs O(tables changed + rows changed), not O(table size).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crate::engine::Core;
use crate::error::{panic_message, Error};
use crate::graph::{CycleStats, Graph, Step};
use crate::publish::publisher::ShutdownFn;
use crate::publish::staging::Closing;
use crate::subscribe;
use crate::table::snapshot::TableSnapshot;
use crate::table::TableId;

thread_local! {
    static IN_CYCLE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is running a cycle (so it must never wait for one).
pub(crate) fn on_cycle_thread() -> bool {
    IN_CYCLE.with(Cell::get)
}

struct InCycle;

impl InCycle {
    fn enter() -> Self {
        IN_CYCLE.with(|c| c.set(true));
        InCycle
    }
}

impl Drop for InCycle {
    fn drop(&mut self) {
        IN_CYCLE.with(|c| c.set(false));
    }
}

/// Runs one cycle and returns its step.
pub(crate) fn run(core: &Core) -> Step {
    run_inner(core, false)
}

/// The last cycle of a shutting-down engine: no `on_flush`, and every table with staged
/// input is drained, not only the tables on the dirty list. A writer that passed the shutdown
/// check just before the flag was set may not have put its table on the dirty list yet; its
/// rows are staged all the same, so this applies them. Tables without input keep their rows
/// (a blink table is not emptied by this extra cycle), and when no table has input the cycle
/// does not run at all. Costs O(tables), once.
pub(crate) fn run_final(core: &Core) -> Step {
    let pending = {
        let graph = core.graph.read();
        graph
            .nodes
            .iter()
            .any(|n| n.source.is_none() && n.shared.staging.has_input())
    };
    if pending {
        run_inner(core, true)
    } else {
        core.step()
    }
}

fn run_inner(core: &Core, last: bool) -> Step {
    let began = Instant::now();
    let mut graph = core.graph.write();
    let locked = Instant::now();
    let lock_wait = locked - began;
    let in_cycle = InCycle::enter();
    let step = graph.step.next();
    let mut errors = Vec::new();

    if !last {
        run_flushers(&mut graph, &mut errors);
    }

    let mut dirty: BTreeSet<TableId> = core.take_dirty().into_iter().collect();
    if last {
        dirty.extend(
            graph
                .nodes
                .iter()
                .filter(|n| n.source.is_none() && n.shared.staging.has_input())
                .map(|n| n.shared.id),
        );
    } else {
        dirty.extend(graph.nonempty_blinks.drain(..));
    }
    let mut changed = Vec::new();
    let mut closed = Vec::new();
    let mut input = Vec::new();
    let mut stats = CycleStats {
        step,
        duration: std::time::Duration::ZERO,
        lock_wait,
        rows_appended: 0,
        rows_removed: 0,
        rows_dropped: 0,
        tables_changed: 0,
    };

    while let Some(id) = dirty.pop_first() {
        input.clear();
        let node = graph.node(id);
        if node.closed.is_some() {
            continue;
        }
        let closing = match node.source {
            None => node
                .shared
                .staging
                .drain(&node.shared.staged_schema, &mut input),
            Some(src) => {
                let src = graph.node(src);
                if let Some(u) = &src.update {
                    input.extend(u.batches.iter().cloned());
                }
                match &src.closed {
                    Some((s, c)) if *s == step => Some(propagate(c, &node.shared.name)),
                    _ => None,
                }
            }
        };
        let node = graph.node_mut(id);
        let applied = node.state.apply(step, &input);
        stats.rows_dropped += applied.dropped;
        if let Some(update) = applied.update {
            stats.rows_appended += update.num_added() as u64;
            stats.rows_removed += update.num_removed() as u64;
            node.update = Some(Arc::new(update));
            changed.push(id);
            dirty.extend(node.children.iter().copied());
        }
        let blink_rows = node.state.retention.is_blink() && !node.state.log.rows().is_empty();
        if let Some(c) = closing {
            // A derived table closes here; make its handle report it like a publisher's table.
            let _ = node.shared.staging.close(c.clone());
            node.closed = Some((step, c.clone()));
            closed.push((id, c));
            dirty.extend(node.children.iter().copied());
        } else if blink_rows {
            graph.nonempty_blinks.push(id);
        }
    }
    stats.tables_changed = changed.len();

    let hooks = publish_and_deliver(core, &mut graph, step, &changed, closed, &mut errors);

    stats.duration = locked.elapsed();
    // Recorded under the global lock so cycles run from several threads (`run_cycle` next to
    // the cycle thread) are recorded in step order.
    core.finish_cycle(stats, errors);
    drop(graph);
    drop(in_cycle);
    for hook in hooks {
        run_hook(core, hook);
    }
    step
}

/// Publishes the changed tables' snapshots, sets the step, delivers the updates and ends the
/// tables that closed. Returns the `on_shutdown` hooks of those tables, to run after the lock.
fn publish_and_deliver(
    core: &Core,
    graph: &mut Graph,
    step: Step,
    changed: &[TableId],
    closed: Vec<(TableId, Closing)>,
    errors: &mut Vec<Error>,
) -> Vec<ShutdownFn> {
    for &id in changed {
        let node = graph.node(id);
        let snap = Arc::new(node.state.snapshot(step, &node.shared.schema));
        node.shared.snapshot.store(snap);
    }
    // The step is this cycle's once its snapshots are published and before anything is
    // delivered: a reader that sees step n sees its snapshots, and a consumer that gets an
    // update of step n and asks `EngineHandle::step` never gets n - 1.
    graph.step = step;
    core.set_step(step);
    for &id in changed {
        let node = graph.node_mut(id);
        let update = node
            .update
            .take()
            .expect("invariant: changed tables have an update");
        let snapshot = TableSnapshot::from_inner(node.shared.snapshot.load_full());
        subscribe::deliver(&node.shared, &update, &snapshot, errors);
    }
    let mut hooks = Vec::new();
    for (id, closing) in closed {
        let shared = graph.node(id).shared.clone();
        subscribe::end(&shared, closing.failure(), errors);
        graph.flushers.get_mut().retain(|f| f.table_id() != id);
        let all = std::mem::take(graph.shutdown_hooks.get_mut());
        let (mine, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(t, _)| *t == id);
        *graph.shutdown_hooks.get_mut() = rest;
        hooks.extend(mine.into_iter().map(|(_, h)| h));
    }

    hooks
}

/// A closed source closes its derived tables: cleanly, or failed with the source's error.
pub(crate) fn propagate(closing: &Closing, table: &str) -> Closing {
    match closing {
        Closing::Clean => Closing::Clean,
        Closing::Failed(e) => Closing::Failed(Arc::new(Error::TableFailed {
            table: table.to_owned(),
            source: e.clone(),
        })),
    }
}

/// Runs every publisher's `on_flush`; a panic fails that publisher's table.
fn run_flushers(graph: &mut Graph, errors: &mut Vec<Error>) {
    let flushers = graph.flushers.get_mut();
    for flusher in flushers.iter_mut() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| flusher.call())) {
            let message = panic_message(payload.as_ref());
            let err = |message: String| Error::CallbackPanicked {
                table: flusher.table_name().to_owned(),
                callback: "on_flush",
                message,
            };
            flusher.fail(err(message.clone()));
            errors.push(err(message));
        }
    }
    flushers.retain(|f| !f.is_closed());
}

/// Runs an `on_shutdown` hook outside the lock; a panic is reported, never propagated.
pub(crate) fn run_hook(core: &Core, hook: Box<dyn FnOnce() + Send>) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(hook)) {
        core.report(Error::CallbackPanicked {
            table: String::new(),
            callback: "on_shutdown",
            message: panic_message(payload.as_ref()),
        });
    }
}
