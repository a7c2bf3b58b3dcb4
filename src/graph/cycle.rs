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
//!    derived table reads its source's update of this same cycle (a computing derived
//!    table's operator turns it into the table's input first, reading only the changed
//!    rows; an operator that fails fails its table, after this cycle's deliveries);
//! 4. the new snapshots are published, then each update goes to the table's listeners and
//!    subscriptions;
//! 5. a table whose close was requested closes (with its derived tables), after its last
//!    rows, those staged before the request, were applied and delivered;
//! 6. the lock is released and the `on_shutdown` hooks of tables that closed run.
//!
//! Only tables with staged input, non-empty blink tables and the derived tables of changed
//! tables are visited: a cycle costs O(tables changed + rows changed), not O(table size).

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::derive::op::{OpInput, OpOutput};
use crate::error::{panic_message, Error};
use crate::graph::stats::CycleStats;
use crate::graph::{AfterClose, Core, Graph, ShutdownFn};
use crate::step::Step;
use crate::sync::Ordering;
use crate::table::lifecycle::Closing;
use crate::table::shared::TableId;
use crate::table::snapshot::TableSnapshot;

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
pub(crate) fn run(core: &Arc<Core>) -> Step {
    run_inner(core, false)
}

/// The last cycle of a shutting-down engine: no `on_flush`, and every table with staged
/// input is drained, not only the tables on the dirty list. A writer that passed the shutdown
/// check just before the flag was set may not have put its table on the dirty list yet; its
/// rows are staged all the same, so this applies them. Tables without input keep their rows
/// (a blink table is not emptied by this extra cycle), and when no table has input the cycle
/// does not run at all. Costs O(tables), once.
pub(crate) fn run_final(core: &Arc<Core>) -> Step {
    let pending = core.graph.read().tables().any(has_input);
    if pending {
        run_inner(core, true)
    } else {
        core.step()
    }
}

fn has_input(t: &Arc<crate::table::shared::TableShared>) -> bool {
    !t.is_derived() && t.staging.has_input(&t.lifecycle)
}

fn run_inner(core: &Arc<Core>, last: bool) -> Step {
    let began = Instant::now();
    let mut graph = core.graph.write();
    let locked = Instant::now();
    let in_cycle = InCycle::enter();
    let step = graph.step.next();
    // SeqCst, before anything is drained: see `graph/wait.rs`.
    core.begun.store(step.as_u64(), Ordering::SeqCst);
    let mut after = AfterClose::default();

    if !last {
        run_flushers(core, &mut graph, &mut after.errors);
    }

    let mut dirty: BTreeSet<TableId> = core.take_dirty().into_iter().collect();
    if last {
        dirty.extend(graph.tables().filter(|t| has_input(t)).map(|t| t.id));
    } else {
        dirty.extend(graph.nonempty_blinks.drain(..));
    }
    let mut stats = CycleStats {
        step,
        duration: Duration::ZERO,
        lock_wait: locked - began,
        rows_appended: 0,
        rows_removed: 0,
        rows_dropped: 0,
        tables_changed: 0,
    };
    let mut changed = Vec::new();
    let mut closing = Vec::new();
    let mut input = Vec::new();
    let mut sided = Vec::new();
    while let Some(id) = dirty.pop_first() {
        input.clear();
        let node = graph.node(id);
        if node.shared.lifecycle.has_ended() {
            continue;
        }
        let (requested, applied) = if node.op.is_some() {
            match run_op(&mut graph, id, step) {
                Ok((applied, side)) => {
                    if side {
                        sided.push(id);
                    }
                    (None, applied)
                }
                Err(e) => {
                    // The operator failed on this cycle's rows: the table fails (after this
                    // cycle's deliveries), and its derived tables with it.
                    closing.push((id, Closing::Failed(Arc::new(e))));
                    continue;
                }
            }
        } else {
            let requested = match node.shared.source {
                None => node
                    .shared
                    .staging
                    .drain(&node.shared.lifecycle, &mut input),
                Some(src) => {
                    if let Some(u) = &graph.node(src).update {
                        input.extend(u.batches.iter().cloned());
                    }
                    None
                }
            };
            (requested, graph.node_mut(id).state.apply(step, &input))
        };
        let node = graph.node_mut(id);
        if !node.side.is_empty() {
            dirty.extend(node.children.iter().copied());
        }
        stats.rows_dropped += applied.dropped;
        if let Some(update) = applied.update {
            stats.rows_appended += update.num_added() as u64;
            stats.rows_removed += update.num_removed() as u64;
            node.update = Some(Arc::new(update));
            changed.push(id);
            dirty.extend(node.children.iter().copied());
        }
        let blink_rows = node.state.retention.is_blink() && !node.state.log.rows().is_empty();
        match requested {
            Some(c) => closing.push((id, c)),
            None if blink_rows => graph.nonempty_blinks.push(id),
            None => {}
        }
    }
    stats.tables_changed = changed.len();
    for id in sided {
        graph.node_mut(id).side.clear();
    }

    publish_and_deliver(core, &mut graph, step, &changed, &mut after.errors);
    // After delivery: a closing table's last rows reach its consumers before it ends.
    for (id, c) in closing {
        graph.close(id, step, &c, &mut after);
    }

    stats.duration = locked.elapsed();
    // Recorded under the global lock so cycles run from several threads (`run_cycle` next to
    // the cycle thread) are recorded in step order.
    core.stats.lock().record(stats);
    drop(graph);
    drop(in_cycle);
    finish(core, after);
    step
}

/// Runs computing derived table `id`'s operator over its source's update of this cycle and
/// applies what it made. Returns the result and whether it left side output for its derived
/// tables.
fn run_op(
    graph: &mut Graph,
    id: TableId,
    step: Step,
) -> crate::error::Result<(crate::table::state::Applied, bool)> {
    let src = graph
        .node(id)
        .shared
        .source
        .expect("invariant: an operator table has a source");
    // A source always has a smaller id than its derived tables.
    let (before, rest) = graph.nodes.split_at_mut(id.index());
    let source = &before[src.index()];
    let node = &mut rest[0];
    let input = OpInput {
        update: source.update.as_deref(),
        source: &source.state.log,
        side: &source.side,
    };
    let mut out = OpOutput::default();
    node.op
        .as_mut()
        .expect("invariant: checked by the caller")
        .run(&input, &mut out)?;
    let applied = node.state.apply_output(step, &out);
    node.side = out.side;
    Ok((applied, !node.side.is_empty()))
}

/// Reports what closing tables left behind and runs their `on_shutdown` hooks, outside the
/// lock.
pub(crate) fn finish(core: &Core, after: AfterClose) {
    for e in after.errors {
        core.report(e);
    }
    for (table, hook) in after.hooks {
        run_hook(core, &table, hook);
    }
}

/// Publishes the changed tables' snapshots, sets the step and delivers the updates.
fn publish_and_deliver(
    core: &Core,
    graph: &mut Graph,
    step: Step,
    changed: &[TableId],
    errors: &mut Vec<Error>,
) {
    for &id in changed {
        let node = graph.node(id);
        let snap = Arc::new(
            node.state
                .snapshot(step, &node.shared.schema, &node.shared.key),
        );
        node.shared.snapshot.store(snap);
    }
    // The step is this cycle's once its snapshots are published and before anything is
    // delivered: a reader that sees step n sees its snapshots, and a consumer that gets an
    // update of step n and asks `EngineHandle::step` never gets n - 1.
    graph.publish_step(core, step);
    for &id in changed {
        let node = graph.node_mut(id);
        let update = node
            .update
            .take()
            .expect("invariant: changed tables have an update");
        let shared = &node.shared;
        let snapshot = TableSnapshot::from_inner(shared.snapshot.load_full());
        shared
            .consumers
            .lock()
            .deliver(&shared.name, &update, &snapshot, errors);
    }
}

/// Runs every publisher's `on_flush`; a panic fails that publisher's table.
fn run_flushers(core: &Arc<Core>, graph: &mut Graph, errors: &mut Vec<Error>) {
    let flushers = graph.flushers.get_mut();
    for flusher in flushers.iter_mut() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (flusher.callback)(core))) {
            let message = panic_message(payload.as_ref());
            let err = |message: String| Error::CallbackPanicked {
                table: flusher.table.name.to_string(),
                callback: "on_flush",
                message,
            };
            crate::graph::stage::request_close(
                core,
                &flusher.table,
                Closing::Failed(Arc::new(err(message.clone()))),
            );
            errors.push(err(message));
        }
    }
    flushers.retain(|f| f.table.lifecycle.is_open());
}

/// Runs table `table`'s `on_shutdown` hook outside the lock; a panic is reported, never
/// propagated.
pub(crate) fn run_hook(core: &Core, table: &str, hook: ShutdownFn) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(hook)) {
        core.report(Error::CallbackPanicked {
            table: table.to_owned(),
            callback: "on_shutdown",
            message: panic_message(payload.as_ref()),
        });
    }
}
