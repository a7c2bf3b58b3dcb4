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
//! 4. durable tables' input is handed to the log writer (`durable/`); with
//!    `SyncPolicy::EveryCycle` the cycle then waits for the fsync holding only the upgradable
//!    side of the lock (readers go on), and takes the exclusive side back;
//! 5. the new snapshots are published, then each update goes to the table's listeners and
//!    subscriptions;
//! 6. a table whose close was requested closes (with its derived tables), after its last
//!    rows, those staged before the request, were applied and delivered; so does a durable
//!    table whose log could not be written (its update of this cycle is not delivered);
//! 7. the lock is released and the `on_shutdown` hooks of tables that closed run.
//!
//! Only tables with staged input, non-empty blink tables and the derived tables of changed
//! tables are visited: a cycle costs O(tables changed + rows changed), not O(table size).

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::derive::op::{OpInput, OpOutput};
use crate::durable::checkpoint::CheckpointRows;
use crate::durable::writer::CycleLog;
use crate::durable::SyncPolicy;
use crate::error::{panic_message, Error};
use crate::graph::stats::{CycleStats, TableTotals};
use crate::graph::{AfterClose, Core, CycleScratch, Graph, InCycle, ShutdownFn};
use crate::step::Step;
use crate::sync::{downgrade_to_upgradable, upgrade, Ordering, RwLockWriteGuard};
use crate::table::lifecycle::Closing;
use crate::table::shared::TableId;
use crate::table::snapshot::{SnapshotInner, TableSnapshot};

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

// The cycle's phases in the order they run (flush, drain, apply, log, publish, deliver,
// close), each a call; kept in one function so the lock's hold reads top to bottom.
#[allow(clippy::too_many_lines)]
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

    // Missing only after a cycle that panicked (the shutdown cycle after a cycle thread's
    // panic runs all the same): then made anew.
    let mut scratch = graph.scratch.take().unwrap_or_default();
    let CycleScratch {
        marked,
        queue: dirty,
        changed,
        per_table,
        closing,
        input,
        sided,
        snapshots,
    } = &mut *scratch;
    core.take_dirty(marked);
    dirty.extend(marked.drain(..).map(Reverse));
    if last {
        dirty.extend(
            graph
                .tables()
                .filter(|t| has_input(t))
                .map(|t| Reverse(t.id)),
        );
    } else {
        dirty.extend(graph.nonempty_blinks.drain(..).map(Reverse));
    }
    let mut stats = CycleStats {
        step,
        duration: Duration::ZERO,
        lock_wait: locked - began,
        rows_appended: 0,
        rows_removed: 0,
        rows_dropped: 0,
        tables_changed: 0,
        log_wait: Duration::ZERO,
        log_bytes: 0,
    };
    let mut log = core.durable.as_ref().map(|d| d.cycle(step));
    let mut cursor: Option<arrow_buffer::Buffer>;
    // The queue pops the smallest id first and a table only queues its derived tables,
    // whose ids are larger: a table queued twice pops twice in a row.
    let mut visited = None;
    while let Some(Reverse(id)) = dirty.pop() {
        if visited.replace(id) == Some(id) {
            continue;
        }
        input.clear();
        cursor = None;
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
            // A copying derived table takes its source's update of this cycle, shared.
            let mut from_source = None;
            let requested = match node.shared.source {
                None => node
                    .shared
                    .staging
                    .drain(&node.shared.lifecycle, input, &mut cursor),
                Some(src) => {
                    from_source.clone_from(&graph.node(src).update);
                    None
                }
            };
            let node = graph.node_mut(id);
            // Durable tables are source tables: what they took is logged as staged.
            if let (Some(log), Some(table_log)) = (&mut log, &node.log) {
                if !input.is_empty() {
                    let first = node.state.log.rows().end;
                    log.rows(table_log, first, input, cursor.take());
                }
                if let Some(c) = &requested {
                    log.close(table_log, c.failure());
                }
            }
            let applied = match &from_source {
                Some(u) => node.state.apply(step, &u.batches),
                None => node.state.apply_owned(step, input),
            };
            (requested, applied)
        };
        let node = graph.node_mut(id);
        if !node.side.is_empty() {
            dirty.extend(node.children.iter().copied().map(Reverse));
        }
        stats.rows_dropped += applied.dropped;
        let mut change = TableTotals {
            dropped: applied.dropped,
            ..TableTotals::default()
        };
        if let Some(update) = &applied.update {
            change.added = update.num_added() as u64;
            change.modified = update.num_modified() as u64;
            change.removed = update.num_removed() as u64;
        }
        if change.added + change.modified + change.removed + change.dropped > 0 {
            per_table.push((id, change));
        }
        if let Some(update) = applied.update {
            stats.rows_appended += update.num_added() as u64;
            stats.rows_removed += update.num_removed() as u64;
            node.update = Some(Arc::new(update));
            changed.push(id);
            dirty.extend(node.children.iter().copied().map(Reverse));
        }
        let blink_rows = node.state.retention.is_blink() && !node.state.log.rows().is_empty();
        match requested {
            Some(c) => closing.push((id, c)),
            None if blink_rows => graph.nonempty_blinks.push(id),
            None => {}
        }
    }
    input.clear();
    stats.tables_changed = changed.len();
    for id in sided.drain(..) {
        graph.node_mut(id).side.clear();
    }

    // The exclusive hold so far is `relocked.elapsed()`; waiting for the log ends it and
    // starts a second one.
    let mut exclusive = Duration::ZERO;
    let mut relocked = locked;
    if let Some(log) = log {
        let mut timing = (&mut exclusive, &mut relocked);
        graph = wait_for_log(core, graph, log, &mut stats, &mut timing);
    }
    if let Some(durable) = &core.durable {
        for (id, e) in withhold(&mut graph, changed, durable.take_failed()) {
            closing.push((id, Closing::Failed(e)));
        }
        stats.tables_changed = changed.len();
        after.errors.extend(durable.take_errors());
    }

    publish_and_deliver(
        core,
        &mut graph,
        step,
        changed,
        snapshots,
        &mut after.errors,
    );
    changed.clear();
    // After delivery: a closing table's last rows reach its consumers before it ends.
    for (id, c) in closing.drain(..) {
        graph.close(id, step, &c, &mut after);
    }

    stats.duration = exclusive + relocked.elapsed();
    // Recorded under the global lock so cycles run from several threads (`run_cycle` next to
    // the cycle thread) are recorded in step order.
    {
        let mut log = core.stats.lock();
        log.record(stats);
        for (id, change) in per_table.drain(..) {
            log.record_table(id, change);
        }
    }
    graph.scratch = Some(scratch);
    drop(graph);
    // Records handed over without a wait (`Never`, `Interval`, checkpoints): the log writer
    // starts on them once the lock is released.
    core.wake_log_writer();
    drop(in_cycle);
    finish(core, after);
    step
}

/// Hands the cycle's log records to the writer and, with `SyncPolicy::EveryCycle`, waits
/// for them to be synced holding only the upgradable side of the global lock: readers go on
/// meanwhile; another cycle or a table being created waits. With the other policies it
/// waits the same way only when the writer is `MAX_UNWRITTEN_CYCLES` cycles behind.
/// Returns the exclusive side.
fn wait_for_log<'a>(
    core: &'a Core,
    graph: RwLockWriteGuard<'a, Graph>,
    mut log: CycleLog<'_>,
    stats: &mut CycleStats,
    (exclusive, relocked): &mut (&mut Duration, &mut Instant),
) -> RwLockWriteGuard<'a, Graph> {
    let durable = core
        .durable
        .as_ref()
        .expect("invariant: a cycle log has a writer");
    for table_log in durable.take_checkpoint_requests() {
        let node = graph.node(table_log.table);
        if !node.shared.lifecycle.has_ended() {
            // The recency order of a keyed table with a capacity is O(keys), once per
            // checkpoint: a checkpoint follows at least twice the table's size of log.
            let rows = CheckpointRows {
                rows: node.state.log.clone(),
                recency: node.state.keyed.as_ref().and_then(|k| k.recency_ranks()),
            };
            log.checkpoint(&table_log, rows);
        }
    }
    let Some(ack) = log.submit() else {
        return graph;
    };
    **exclusive += relocked.elapsed();
    let shared = downgrade_to_upgradable(graph);
    durable.wake();
    let waited = Instant::now();
    let acked = durable.wait(&ack);
    stats.log_wait = waited.elapsed();
    if durable.options.sync == SyncPolicy::EveryCycle {
        // Otherwise the wait was for an older cycle's records (a backlog), not this one's.
        stats.log_bytes = acked.map_or(0, |a| a.bytes);
    }
    let relock = Instant::now();
    let graph = upgrade(shared);
    **relocked = Instant::now();
    stats.lock_wait += **relocked - relock;
    if acked.is_none() {
        // The writer is gone: nothing of this cycle reached the disk.
        durable.fail_all(graph.nodes.iter().filter_map(|n| n.log.clone()));
    }
    graph
}

/// Takes the failed durable tables, and the tables derived from them, out of this cycle's
/// changed tables: their updates were not logged, so they are not delivered.
/// Returns `failed`, for the cycle to close them.
fn withhold(
    graph: &mut Graph,
    changed: &mut Vec<TableId>,
    failed: Vec<(TableId, Arc<Error>)>,
) -> Vec<(TableId, Arc<Error>)> {
    if failed.is_empty() {
        return failed;
    }
    let mut out: BTreeSet<TableId> = failed.iter().map(|(id, _)| *id).collect();
    changed.retain(|&id| {
        let node = graph.node(id);
        let drop = out.contains(&id) || node.shared.source.is_some_and(|s| out.contains(&s));
        if drop {
            out.insert(id);
        }
        !drop
    });
    for id in out {
        graph.node_mut(id).update = None;
    }
    failed
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
    let applied = node.state.apply_output(step, &mut out);
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
    snapshots: &mut Vec<Arc<SnapshotInner>>,
    errors: &mut Vec<Error>,
) {
    for &id in changed {
        let node = graph.node(id);
        let snap = Arc::new(
            node.state
                .snapshot(step, &node.shared.schema, &node.shared.key),
        );
        snapshots.push(snap.clone());
        node.shared.snapshot.store(snap);
    }
    // The step is this cycle's once its snapshots are published and before anything is
    // delivered: a reader that sees step n sees its snapshots, and a consumer that gets an
    // update of step n and asks `EngineHandle::step` never gets n - 1.
    graph.publish_step(core, step);
    for (&id, snap) in changed.iter().zip(snapshots.drain(..)) {
        let node = graph.node_mut(id);
        let update = node
            .update
            .take()
            .expect("invariant: changed tables have an update");
        let shared = &node.shared;
        let snapshot = TableSnapshot::from_inner(snap);
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
