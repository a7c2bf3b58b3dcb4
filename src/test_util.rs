//! Helpers for tests and benches: a manual engine, the benchmark schema and row generators.
//!
//! Enabled by `cfg(test)` or the `test-util` feature.

use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::engine::Engine;

#[cfg(feature = "kafka")]
pub mod kafka;

/// Holds every durable log writer's fsync in this process until the returned guard drops:
/// with [`SyncPolicy::EveryCycle`](crate::durable::SyncPolicy::EveryCycle) a cycle that logged
/// rows then waits, so a test can look at what the engine does meanwhile. Process-wide: use it
/// in a test binary of its own.
#[must_use = "the syncs are held only while the guard lives"]
pub fn hold_log_syncs() -> LogSyncHold {
    crate::durable::writer::sync_gate::set(true);
    LogSyncHold(())
}

/// The guard of [`hold_log_syncs`]: dropping it lets the fsyncs go on.
#[derive(Debug)]
pub struct LogSyncHold(());

impl LogSyncHold {
    /// How many log writers wait at the held fsync now.
    pub fn waiting(&self) -> usize {
        crate::durable::writer::sync_gate::waiting()
    }
}

impl Drop for LogSyncHold {
    fn drop(&mut self) {
        crate::durable::writer::sync_gate::set(false);
    }
}

/// An engine with no cycle thread: call `run_cycle()` to step it.
///
/// # Panics
///
/// Never in practice: a manual engine spawns no thread.
pub fn manual_engine() -> Engine {
    Engine::builder()
        .manual()
        .build()
        .expect("invariant: a manual engine needs no thread")
}

/// The benchmark schema: `Ts` int64 (ns), `Sym` utf8, `Price` float64, `Size` int64.
pub fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Ts", DataType::Int64, false),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, false),
        Field::new("Size", DataType::Int64, false),
    ]))
}

/// The symbol of row `i` (100 distinct symbols).
pub fn sym(i: u64) -> String {
    format!("S{:02}", i % 100)
}

/// Rows `start..start + n` of the benchmark schema: `Ts = i`, `Sym = sym(i)`,
/// `Price = i / 100`, `Size = i % 1000`.
///
/// # Panics
///
/// Never in practice: the arrays match the schema.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]
pub fn trade_batch(start: u64, n: usize) -> RecordBatch {
    let range = start..start + n as u64;
    RecordBatch::try_new(
        trade_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                range.clone().map(|i| i as i64),
            )),
            Arc::new(StringArray::from_iter_values(range.clone().map(sym))),
            Arc::new(Float64Array::from_iter_values(
                range.clone().map(|i| i as f64 / 100.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                range.map(|i| (i % 1000) as i64),
            )),
        ],
    )
    .expect("invariant: arrays match the trade schema")
}

/// A one-column (`v`: int64, non-null) schema.
pub fn int_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
}

/// A batch of `int_schema()` holding `values`.
///
/// # Panics
///
/// Never in practice: the array matches the schema.
pub fn int_batch(values: impl IntoIterator<Item = i64>) -> RecordBatch {
    RecordBatch::try_new(
        int_schema(),
        vec![Arc::new(Int64Array::from_iter_values(values))],
    )
    .expect("invariant: array matches the schema")
}

/// Column `col` (int64) of every batch, concatenated.
///
/// # Panics
///
/// If the column is not int64.
pub fn i64_column<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>, col: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column(col)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("column is int64");
        out.extend((0..a.len()).map(|i| a.value(i)));
    }
    out
}
