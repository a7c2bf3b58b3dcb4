//! Writing: publishers and row writers stage rows; the cycle makes them visible.
//!
//! - [`TablePublisher`] stages whole Arrow batches (zero-copy) into one table.
//! - [`MultithreadedTableWriter`] takes `insert(row)` from any thread and batches rows on a
//!   pool of writer threads, into a local table or a remote engine.
//! - [`DynamicTableWriter`] hands out per-thread [`RowWriter`]s that build rows in Arrow
//!   builders, with transactions.
//!
//! Neither ever touches table state: both stage (`publish/staging.rs`) and the next cycle
//! drains. Rows staged between two cycles become visible together at the next one.

pub(crate) mod columns;
pub mod mtw;
pub(crate) mod publisher;
pub(crate) mod rows;
pub(crate) mod staging;
pub(crate) mod writer;

pub use mtw::{
    ErrorRecord, FlushMode, MultithreadedTableWriter, MultithreadedWriterOptions,
    MultithreadedWriterStatus, ThreadStatus, TryInsertError, WriteTarget,
};
pub use publisher::{PublisherOptions, TablePublisher};
pub use writer::{DynamicTableWriter, DynamicWriterOptions, RowWriter};
