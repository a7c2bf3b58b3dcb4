//! Publishing rows: `RowWriter::write_row` one row at a time (`spsc`, `mpsc-2`) and
//! `TablePublisher::add` of a 10k-row batch.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1.
//! Defaults: criterion with 10 samples, 0.5 s warm-up, 2 s measurement per benchmark; throughput
//! is reported in rows (elements).
//!
//! Every writer bench uses a manual engine and counts the cycles that drain the writers
//! (one per 65,536 rows per writer, plus one at the end of each sample) as part of the cost, so
//! a row's time is "staged and made visible". The tables are blink tables so memory stays flat
//! however many iterations criterion picks; retention is O(chunks), so an append table costs
//! the same per row.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::StringBuilder;
use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tickertable::test_util::{manual_engine, sym, trade_batch, trade_schema};
use tickertable::{
    DynamicWriterOptions, EngineHandle, PublisherOptions, RowWriter, TableKind, Value,
};

/// Rows a writer stages between two drains.
const DRAIN_EVERY: u64 = 1 << 16;
/// Rows in a published batch.
const BATCH: usize = 10_000;

fn symbols() -> Vec<String> {
    (0..100).map(sym).collect()
}

#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
fn write_rows(engine: &EngineHandle, writer: &mut RowWriter, syms: &[String], rows: u64) {
    for i in 0..rows {
        #[allow(clippy::cast_possible_truncation)]
        let s = syms[(i % 100) as usize].as_str();
        let row = [
            Value::Int(i as i64),
            Value::Str(s),
            Value::Float(i as f64 / 100.0),
            Value::Int((i % 1000) as i64),
        ];
        writer.write_row(black_box(&row)).expect("row fits");
        if (i + 1) % DRAIN_EVERY == 0 {
            engine.run_cycle();
        }
    }
}

fn row_writer(c: &mut Criterion) {
    let syms = symbols();
    let mut group = c.benchmark_group("write_row");
    group.throughput(Throughput::Elements(1));

    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "spsc",
            trade_schema(),
            DynamicWriterOptions::default().with_kind(TableKind::Blink),
        )
        .expect("table");
    let mut writer = dtw.row_writer().expect("writer");
    group.bench_function(BenchmarkId::new("spsc", "4cols"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            write_rows(&engine, &mut writer, &syms, iters);
            engine.run_cycle();
            start.elapsed()
        });
    });

    let dtw = engine
        .dynamic_table_writer(
            "mpsc-2",
            trade_schema(),
            DynamicWriterOptions::default().with_kind(TableKind::Blink),
        )
        .expect("table");
    let mut writers: Vec<RowWriter> = (0..2).map(|_| dtw.row_writer().expect("writer")).collect();
    let handle = engine.handle();
    group.bench_function(BenchmarkId::new("mpsc-2", "4cols"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for w in &mut writers {
                    let (handle, syms) = (&handle, &syms);
                    s.spawn(move || write_rows(handle, w, syms, iters / 2));
                }
            });
            handle.run_cycle();
            start.elapsed()
        });
    });
    group.finish();
}

/// A batch built fresh from plain values, as the W3 producer does.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
fn fresh_batch(schema: &SchemaRef, syms: &[String], start: u64) -> RecordBatch {
    let mut ts = Vec::with_capacity(BATCH);
    let mut sym = StringBuilder::with_capacity(BATCH, BATCH * 3);
    let mut price = Vec::with_capacity(BATCH);
    let mut size = Vec::with_capacity(BATCH);
    for i in start..start + BATCH as u64 {
        ts.push(i as i64);
        #[allow(clippy::cast_possible_truncation)]
        sym.append_value(&syms[(i % 100) as usize]);
        price.push(i as f64 / 100.0);
        size.push((i % 1000) as i64);
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
    .expect("batch fits")
}

fn publisher(c: &mut Criterion) {
    let syms = symbols();
    let mut group = c.benchmark_group("publish_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    let engine = manual_engine();
    let (table, publisher) = engine
        .table_publisher("batches", trade_schema(), PublisherOptions::default())
        .expect("table");
    let schema = table.schema().clone();

    // add + the cycle that makes it visible; the batch is prebuilt (clone = Arc bumps).
    let prebuilt = trade_batch(0, BATCH);
    group.bench_function(BenchmarkId::new("add+cycle", "4cols x 10k rows"), |b| {
        b.iter(|| {
            publisher.add(black_box(prebuilt.clone())).expect("add");
            black_box(engine.run_cycle());
        });
    });

    // What W3 does per batch: fill four vectors, build the batch, add it, run a cycle.
    let mut at = 0;
    group.bench_function(
        BenchmarkId::new("build+add+cycle", "4cols x 10k rows"),
        |b| {
            b.iter(|| {
                let batch = fresh_batch(&schema, &syms, at);
                at += BATCH as u64;
                publisher.add(batch).expect("add");
                black_box(engine.run_cycle());
            });
        },
    );
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = row_writer, publisher
}
criterion_main!(benches);
