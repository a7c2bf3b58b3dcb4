//! Reading a large table: `snapshot()` and a 50-row `slice` at its end.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1.
//! Defaults: criterion with 10 samples, 0.5 s warm-up, 2 s measurement per benchmark.
//!
//! Append tables of 10M rows stored as 1,000 chunks of 10k rows (W3 batches) or as 10,000
//! chunks of 1k rows, and a 1k-row table for comparison. `snapshot` loads the last published
//! `Arc` (lock-free, O(1)); `slice` finds the first chunk by binary search (O(log chunks)) and
//! slices the chunks it needs, copying no row.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{Engine, PublisherOptions, Table, TableKind};

/// An append table of `rows` rows in chunks of `chunk` rows.
fn table(engine: &Engine, name: &str, rows: u64, chunk: u64) -> Table {
    let (table, publisher) = engine
        .table_publisher(
            name,
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .expect("table");
    let mut at = 0;
    while at < rows {
        let len = (rows - at).min(chunk);
        publisher
            .add(trade_batch(at, usize::try_from(len).expect("fits")))
            .expect("add");
        at += len;
    }
    engine.run_cycle();
    assert_eq!(table.num_rows() as u64, rows);
    table
}

fn snapshot(c: &mut Criterion) {
    let engine = manual_engine();
    let shapes = [
        ("1k rows x 1 chunk", table(&engine, "small", 1_000, 10_000)),
        (
            "10M rows x 1k chunks",
            table(&engine, "big", 10_000_000, 10_000),
        ),
        (
            "10M rows x 10k chunks",
            table(&engine, "big_fine", 10_000_000, 1_000),
        ),
    ];
    let mut group = c.benchmark_group("snapshot");
    for (label, table) in &shapes {
        group.bench_function(BenchmarkId::new("snapshot", label), |b| {
            b.iter(|| black_box(table.snapshot()));
        });
    }
    for (label, table) in &shapes {
        let snap = table.snapshot();
        let end = snap.rows().end;
        group.bench_function(BenchmarkId::new("slice_last_50", label), |b| {
            b.iter(|| black_box(snap.slice(black_box(end - 50..end))));
        });
    }
    let (label, table) = &shapes[1];
    let snap = table.snapshot();
    group.bench_function(BenchmarkId::new("slice_first_50", label), |b| {
        b.iter(|| black_box(snap.slice(black_box(0..50))));
    });
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
    targets = snapshot
}
criterion_main!(benches);
