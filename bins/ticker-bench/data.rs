//! The benchmark schema and producers' plain values: rows and freshly built batches.

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_buffer::OffsetBuffer;
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

/// The 100 symbols `S00`..`S99` (as `tickertable::test_util::sym`), built once so producers
/// never allocate a `String` per row.
#[derive(Debug)]
pub(crate) struct Symbols {
    names: Vec<String>,
    /// Each name's bytes, zero-padded to 8, for `push_bytes`.
    padded: Vec<[u8; 8]>,
}

impl Symbols {
    pub(crate) fn new() -> Self {
        let names: Vec<String> = (0..SYMBOLS).map(|i| format!("S{i:02}")).collect();
        let padded = names
            .iter()
            .map(|n| {
                let mut p = [0u8; 8];
                p[..n.len()].copy_from_slice(n.as_bytes());
                p
            })
            .collect();
        Self { names, padded }
    }

    fn index(i: u64) -> usize {
        // `i % 100` always fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let k = (i % SYMBOLS as u64) as usize;
        k
    }

    /// The symbol of row `i`.
    pub(crate) fn of(&self, i: u64) -> &str {
        &self.names[Self::index(i)]
    }

    /// Appends the symbol of row `i` to `bytes` with one fixed 8-byte copy, then trims the
    /// padding: cheaper than a `memcpy` call for a 3-byte string.
    pub(crate) fn push_bytes(&self, i: u64, bytes: &mut Vec<u8>) {
        let k = Self::index(i);
        bytes.extend_from_slice(&self.padded[k]);
        bytes.truncate(bytes.len() - 8 + self.names[k].len());
    }

    /// The longest symbol's length in bytes.
    pub(crate) fn max_len(&self) -> usize {
        self.names.iter().map(String::len).max().unwrap_or(0)
    }
}

/// Row `i`'s price: `100 + (i % 1000) / 100`.
#[allow(clippy::cast_possible_truncation)]
#[inline]
pub(crate) fn price_of(i: u64) -> f64 {
    // `i % 1000` fits a u32, whose conversion to f64 is one instruction.
    100.0 + f64::from((i % 1000) as u32) * 0.01
}

/// Row `i`'s plain values: `Ts = ts`, `Sym = sym(i)`, `Price = price_of(i)`,
/// `Size = 1 + i % 500`.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
#[inline]
pub(crate) fn row(symbols: &Symbols, i: u64, ts: i64) -> [Value<'_>; 4] {
    [
        Value::Int(ts),
        Value::Str(symbols.of(i)),
        Value::Float(price_of(i)),
        Value::Int((1 + i % 500) as i64),
    ]
}

/// Builds rows `start..start + len` fresh from plain values: fills four vectors (`Sym` as
/// UTF-8 bytes plus offsets), then wraps them in a `RecordBatch` without copying. `Ts` is
/// `ts0 + i`.
///
/// The numeric columns are collected from exact-size iterators (no capacity check per row);
/// the symbol bytes go in with one fixed-size copy each ([`Symbols::push_bytes`]).
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
    let rows = start..start + len as u64;
    let ts: Vec<i64> = rows.clone().map(|i| ts0 + i as i64).collect();
    let price: Vec<f64> = rows.clone().map(price_of).collect();
    let size: Vec<i64> = rows.clone().map(|i| (1 + i % 500) as i64).collect();
    let max_bytes = len * symbols.max_len();
    ensure!(
        i32::try_from(max_bytes).is_ok(),
        "a {len}-row batch may hold {max_bytes} bytes of symbols, over i32 offsets"
    );
    let mut offsets: Vec<i32> = Vec::with_capacity(len + 1);
    let mut bytes: Vec<u8> = Vec::with_capacity(max_bytes + 8);
    offsets.push(0);
    for i in rows {
        symbols.push_bytes(i, &mut bytes);
        // Fits: checked against `max_bytes` above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
        offsets.push(bytes.len() as i32);
    }
    let sym = StringArray::try_new(OffsetBuffer::new(offsets.into()), bytes.into(), None)
        .context("building the Sym column")?;
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ts)),
            Arc::new(sym),
            Arc::new(Float64Array::from(price)),
            Arc::new(Int64Array::from(size)),
        ],
    )
    .context("building a benchmark batch")
}
