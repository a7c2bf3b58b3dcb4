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
//! - **operator**: the incremental state of a derived table that computes (`last_by`,
//!   `filter`, `agg_by`, `bars`), run by the cycle on its source's update.
//! - **group**: the rows of one value of an operator's key columns.
//! - **publisher** ([`TablePublisher`](crate::TablePublisher)): a table-scoped handle that
//!   stages whole batches.
//! - **row writer** ([`RowWriter`](crate::RowWriter), made by a
//!   [`DynamicTableWriter`](crate::DynamicTableWriter)): a per-thread row stager.
//! - **multithreaded writer** ([`MultithreadedTableWriter`](crate::MultithreadedTableWriter)):
//!   writer threads that batch rows for a local or remote table, with retries and a status.
//! - **listener** / **subscription**: a push / pull consumer of updates.
//! - **mirror** ([`Mirror`](crate::Mirror)): a consumer's local copy of a table, kept exact
//!   from its snapshot and updates (local or over Flight).
//!
//! # Layers
//!
//! Every file of `src/` imports only files of its own layer or a lower one, and no two files
//! import each other, directly or through others. `.ci/layers.py` checks both (CI runs it)
//! and holds the same table, file by file. From the bottom:
//!
//! | layer | files | what lives there |
//! |---|---|---|
//! | foundation | `error`, `sync`, `step`, `schema`, `expr` | the error type and its one classifier ([`Error::code`](crate::Error::code)), the lock types (`loom` swaps them), steps, values, the expression language |
//! | rows | `table/{chunk, snapshot, read, kind, lifecycle}`, `subscribe/update`, `publish/columns`, `flight/wire` | chunk logs, snapshots and their readers, table kinds, the one lifecycle type (open, closing, closed), the update type, column builders, the Flight message metadata |
//! | table state | `table/{append, blink, ring, keyed, state, shared}`, `publish/{rows, staging}`, `subscribe/{listener, queue, registry}`, `mirror`, `durable/*`, `derive/*` | each kind's state and its apply step, the one row buffer (row writers and writer lanes), the staging area and its one admission rule, listener cells, subscription queues, the registry, mirrors, the write-ahead log (format, segments, writer thread, replay, checkpoints, the data directory's lock file and catalog), the operators of computing derived tables (`last_by`, `filter`, `agg_by`, `bars`: what the cycle runs over a source's changed rows) |
//! | graph | `graph`, `graph/{cycle, stage, wait, stats}` | the global lock and everything under it: table nodes, the cycle, the one staging entry point (`graph::stage`), waiting for visibility, cycle statistics, the one close function (`Graph::close`) |
//! | handles | `table`, `subscribe/subscription`, `publish/{publisher, writer}`, `engine`, `derive` | the public handles ([`Table`](crate::Table), [`Subscription`](crate::Subscription), publishers, writers) and the engine facade ([`Engine`](crate::Engine), [`EngineHandle`](crate::EngineHandle), the cycle thread) |
//! | on the public API | `publish/mtw/*`, `flight/*`, `kafka/*` | the multithreaded writer, Arrow Flight (server, client, table management actions, server counters, auth, limits, TLS, status mapping) and Kafka sources and sinks (the `kafka` feature), built on the handles |
//! | root | `lib`, `test_util` | re-exports, test helpers |
//!
//! A handle holds an `Arc` of the graph's core; nothing below the handles holds a handle, so no
//! `Arc` cycle needs breaking at shutdown. The lock order is stated once, in the `graph`
//! module's docs ("Locking").
//!
//! # Where each rule lives
//!
//! - Staging a batch and mapping a refusal: `graph::stage` (publishers, row writers, the
//!   multithreaded writer's local target and Flight `DoPut` all call it).
//! - Whether a batch fits: `publish::staging`'s admission rule ([`Error::BatchTooLarge`](crate::Error::BatchTooLarge),
//!   [`Error::StagingFull`](crate::Error::StagingFull)).
//! - Closing a table and its derived tables: `Graph::close`, after the cycle's delivery.
//! - An error's code, transience and gRPC status: [`Error::code`](crate::Error::code),
//!   [`Error::is_transient`](crate::Error::is_transient), `flight::status`.
//! - Appending a row (keyed or not) and finishing builders tight: `publish::rows`.
//! - Applying updates to a copy of a table: `table::chunk` (the chunk log), used by table
//!   state and [`Mirror`](crate::Mirror).
