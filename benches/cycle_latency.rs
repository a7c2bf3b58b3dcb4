//! The cost of one cycle: many small tables, and one append table of growing size.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1.
//! Defaults: criterion with 10 samples, 0.5 s warm-up, 2 s measurement per benchmark.
//!
//! A manual engine; each iteration stages input outside the timed region, then times
//! `run_cycle()` alone (drain, apply, publish snapshots, deliver to one listener per table).
//!
//! - `tables/<k>`: `k` blink tables fed by a publisher, 4 rows each per cycle (each cycle also
//!   empties the previous cycle's rows). `idle/1000`: 1000 tables, nothing staged.
//! - `append_10_rows/<existing>`: one append table already holding 1k or 10M rows (in 10k-row
//!   chunks) takes 10 more rows: the time must not grow with the table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{
    Engine, ListenerHandle, PublisherOptions, TableKind, TablePublisher, TableUpdate,
};

/// `k` blink tables with a counting listener each.
fn tables(engine: &Engine, k: usize) -> (Vec<TablePublisher>, Vec<ListenerHandle>) {
    let mut pubs = Vec::with_capacity(k);
    let mut listeners = Vec::with_capacity(k);
    for i in 0..k {
        let (table, publisher) = engine
            .table_publisher(
                &format!("t{k}_{i}"),
                trade_schema(),
                PublisherOptions::default(),
            )
            .expect("table");
        listeners.push(
            table
                .listen(|u: &TableUpdate| {
                    black_box(u.num_added());
                })
                .expect("listen"),
        );
        pubs.push(publisher);
    }
    (pubs, listeners)
}

fn many_tables(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle");
    let batch = trade_batch(0, 4);
    for k in [1usize, 100, 1000] {
        let engine = manual_engine();
        let (pubs, _listeners) = tables(&engine, k);
        group.bench_function(BenchmarkId::new("tables", k), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for p in &pubs {
                        p.add(batch.clone()).expect("add");
                    }
                    let t = Instant::now();
                    black_box(engine.run_cycle());
                    total += t.elapsed();
                }
                total
            });
        });
    }
    let engine = manual_engine();
    let (_pubs, _listeners) = tables(&engine, 1000);
    engine.run_cycle();
    group.bench_function(BenchmarkId::new("idle", 1000), |b| {
        b.iter(|| black_box(engine.run_cycle()));
    });
    group.finish();
}

fn append_size(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle");
    let small = trade_batch(0, 10);
    for existing in [1_000u64, 10_000_000] {
        let engine = manual_engine();
        let (table, publisher) = engine
            .table_publisher(
                "big",
                trade_schema(),
                PublisherOptions::default().with_kind(TableKind::Append),
            )
            .expect("table");
        let mut at = 0;
        while at < existing {
            let len = (existing - at).min(10_000);
            publisher
                .add(trade_batch(at, usize::try_from(len).expect("fits")))
                .expect("add");
            at += len;
        }
        engine.run_cycle();
        assert_eq!(table.num_rows() as u64, existing);
        let _listener = table
            .listen(|u: &TableUpdate| {
                black_box(u.num_added());
            })
            .expect("listen");
        let label = if existing >= 1_000_000 {
            format!("{}M rows", existing / 1_000_000)
        } else {
            format!("{}k rows", existing / 1_000)
        };
        group.bench_function(BenchmarkId::new("append_10_rows", label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    publisher.add(small.clone()).expect("add");
                    let t = Instant::now();
                    black_box(engine.run_cycle());
                    total += t.elapsed();
                }
                total
            });
        });
    }
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
    targets = many_tables, append_size
}
criterion_main!(benches);
