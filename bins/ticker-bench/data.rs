//! The benchmark schema and producers' plain values: rows and freshly built batches.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::StringBuilder;
use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::Value;

/// How many distinct symbols the `Sym` column cycles through.
pub(crate) const SYMBOLS: usize = 100;

/// The benchmark schema: `Ts` int64 (ns), `Sym` utf8, `Price` float64, `Size` int64.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Ts", DataType::Int64, false),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, false),
        Field::new("Size", DataType::Int64, false),
    ]))
}

/// The 100 symbols `S00`..`S99` (as `tickertable::test_util::sym`), built once so producers never allocate a `String` per row.
#[derive(Debug)]
pub(crate) struct Symbols {
    names: Vec<String>,
}

impl Symbols {
    pub(crate) fn new() -> Self {
        Self {
            names: (0..SYMBOLS).map(|i| format!("S{i:02}")).collect(),
        }
    }

    /// The symbol of row `i`.
    pub(crate) fn of(&self, i: u64) -> &str {
        // `i % 100` always fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let k = (i % SYMBOLS as u64) as usize;
        &self.names[k]
    }

    /// The longest symbol's length in bytes.
    pub(crate) fn max_len(&self) -> usize {
        self.names.iter().map(String::len).max().unwrap_or(0)
    }
}

/// Row `i`'s plain values: `Ts = ts`, `Sym = sym(i)`, `Price = 100 + (i % 1000) / 100`,
/// `Size = 1 + i % 500`.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
#[inline]
pub(crate) fn row(symbols: &Symbols, i: u64, ts: i64) -> [Value<'_>; 4] {
    [
        Value::Int(ts),
        Value::Str(symbols.of(i)),
        Value::Float(100.0 + (i % 1000) as f64 / 100.0),
        Value::Int((1 + i % 500) as i64),
    ]
}

/// Builds rows `start..start + len` fresh from plain values: fills four vectors (the strings
/// into an Arrow string builder), then wraps them in a `RecordBatch` without copying.
/// `Ts` is `ts0 + i`.
///
/// # Errors
///
/// If Arrow refuses the arrays (it cannot: they match the schema).
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
pub(crate) fn batch(
    schema: &SchemaRef,
    symbols: &Symbols,
    ts0: i64,
    start: u64,
    len: usize,
) -> Result<RecordBatch> {
    let mut ts = Vec::with_capacity(len);
    let mut sym = StringBuilder::with_capacity(len, len * symbols.max_len());
    let mut price = Vec::with_capacity(len);
    let mut size = Vec::with_capacity(len);
    for i in start..start + len as u64 {
        ts.push(ts0 + i as i64);
        sym.append_value(symbols.of(i));
        price.push(100.0 + (i % 1000) as f64 / 100.0);
        size.push((1 + i % 500) as i64);
    }
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ts)),
            Arc::new(sym.finish()),
            Arc::new(Float64Array::from(price)),
            Arc::new(Int64Array::from(size)),
        ],
    )
    .context("building a benchmark batch")
}
