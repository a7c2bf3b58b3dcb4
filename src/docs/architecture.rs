//! # Architecture and vocabulary
//!
//! ```text
//!  writer threads                 cycle thread (one global lock)             readers
//!  ─────────────                  ──────────────────────────────             ───────
//!  TablePublisher::add ─┐         1. on_flush callbacks                      Table::snapshot()
//!  RowWriter::write_row ─┼─► staging ─► 2. drain ─► 3. apply retention ─►    (ArcSwap load,
//!                        │              4. publish snapshots (ArcSwap)        lock-free)
//!                        │              5. listeners, subscription queues ─► Subscription
//! ```
//!
//! Words used everywhere in the code and docs, always with this meaning:
//!
//! - **cycle**: one run of the update graph, under the global lock.
//! - **step**: a cycle's number, [`Step`](crate::Step).
//! - **chunk**: one stored Arrow `RecordBatch` of a table.
//! - **position**: a row's index in its table's log, counting every row ever appended.
//! - **window**: the positions `[start, end)` a table shows.
//! - **snapshot**: a consistent, immutable read of one table at one step.
//! - **update**: what one cycle changed in one table: removed and added positions, added rows.
//! - **publisher**: a table-scoped handle that stages batches.
//! - **writer**: a per-thread row stager.
//! - **listener** / **subscription**: a push / pull consumer of updates.
//! - **operator**: the incremental state of a derived table that computes (`last_by`,
//!   `filter`, `agg_by`, `bars`), run by the cycle on its source's update.
//! - **group**: the rows of one value of an operator's key columns.
//!
//! Modules: `engine` (owner, handle, builder, cycle thread), `graph` (global lock, cycle,
//! steps, stats), `table` (handle, kinds, chunk storage, snapshots), `publish` (publisher,
//! row writer, staging), `subscribe` (listeners, subscriptions, updates), `schema` (values and
//! validation), `expr` (predicates), `derive` (computing derived tables), `error`.
