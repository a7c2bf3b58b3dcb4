//! The multithreaded table writer: rows per second through `insert` from 1, 2 and 8 threads
//! into a local table (`mtw_insert`) and into a keyed table of 100,000 keys
//! (`mtw_insert_keyed`: every row upserts one of 100k symbols). The cost of one keyed cycle
//! (W11) is in `table_keyed.rs`.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1. The
//! writer has 2 writer threads, batches of 10,000 rows, a 10 ms throttle; a manual engine's
//! cycle runs on its own thread every millisecond. Each sample inserts `ROWS` rows split over
//! the inserting threads (`mpsc-1`, `mpsc-2`, `mpsc-8`) and ends when `flush` returns, so a
//! row's time is "checked, buffered, batched and staged". The table is a blink table so memory
//! stays flat over many samples; an append table's retention costs the same per cycle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tickertable::test_util::{manual_engine, sym, trade_schema};
use tickertable::{
    MultithreadedTableWriter, MultithreadedWriterOptions, PublisherOptions, Value, WriteTarget,
};

const ROWS: u64 = 200_000;
const KEYS: usize = 100_000;

#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]
fn insert(c: &mut Criterion) {
    let syms: Arc<Vec<String>> = Arc::new((0..100).map(sym).collect());
    run(c, "mtw_insert", PublisherOptions::default(), &syms);
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|k| format!("K{k:06}")).collect());
    run(
        c,
        "mtw_insert_keyed",
        PublisherOptions::default().with_key(["Sym"]),
        &keys,
    );
}

/// Inserts `ROWS` rows from 1, 2 and 8 threads; row `i` has symbol `syms[i % syms.len()]`.
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]
fn run(c: &mut Criterion, name: &str, options: PublisherOptions, syms: &Arc<Vec<String>>) {
    let engine = manual_engine();
    let (table, _publisher) = engine
        .table_publisher("t", trade_schema(), options)
        .expect("table");
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = {
        let (engine, stop) = (engine.handle(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                engine.run_cycle();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mtw = Arc::new(
        MultithreadedTableWriter::new(
            WriteTarget::Local(table),
            MultithreadedWriterOptions::default()
                .with_thread_count(2)
                .with_max_retries(u32::MAX),
        )
        .expect("writer"),
    );
    let n = syms.len() as u64;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(ROWS));
    for threads in [1u64, 2, 8] {
        group.bench_with_input(
            BenchmarkId::new("mpsc", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let handles: Vec<_> = (0..threads)
                            .map(|t| {
                                let (mtw, syms) = (mtw.clone(), syms.clone());
                                std::thread::spawn(move || {
                                    for i in (t..ROWS).step_by(threads as usize) {
                                        let row = [
                                            Value::Int(i as i64),
                                            Value::Str(&syms[(i % n) as usize]),
                                            Value::Float(i as f64 / 100.0),
                                            Value::Int((i % 1000) as i64),
                                        ];
                                        mtw.insert(&row).expect("row fits");
                                    }
                                })
                            })
                            .collect();
                        for h in handles {
                            h.join().expect("inserter");
                        }
                        mtw.flush().expect("flush");
                        total += start.elapsed();
                    }
                    total
                });
            },
        );
    }
    group.finish();
    stop.store(true, Ordering::Relaxed);
    cycles.join().expect("cycle thread");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = insert
}
criterion_main!(benches);
