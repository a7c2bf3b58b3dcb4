//! # Concurrency
//!
//! - **Writers never touch table state.** They stage: a publisher into its table's staging
//!   queue, a row writer into its own builders behind a mutex that only it and the cycle take.
//!   That is the only handoff between threads and is model-checked with loom
//!   (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).
//! - **One global lock.** The cycle holds the exclusive side of a `parking_lot::RwLock` while it
//!   drains, applies and delivers. `EngineHandle::read` and subscribing take the shared side;
//!   creating a table takes the exclusive side briefly. The lock order is in
//!   [`graph`](crate::graph#locking).
//! - **Readers never block the cycle.** `Table::snapshot` loads an `Arc` (arc-swap). A
//!   subscription is a bounded queue: a subscriber that falls behind gets `Lagged` and a fresh
//!   snapshot instead of making the cycle wait or memory grow.
//! - **Visibility.** Rows staged between two cycles become visible together at the next cycle,
//!   never before and never split across cycles; a transaction's rows land in one cycle.
//! - **Back-pressure.** Staging is bounded (rows per table for publishers, per writer for row
//!   writers). A full buffer blocks a writer until the next cycle when the engine has a cycle
//!   thread, and returns `StagingFull` otherwise (manual mode, or on the cycle thread).
//! - **Failures are contained.** A panicking listener is removed; a panicking `on_flush` fails
//!   its table; the engine and every other table go on.
