//! The multithreaded table writer: rows per second through `insert` from 1, 2 and 8 threads
//! into a local table (`mtw_insert`) and into a keyed table of 100,000 keys
//! (`mtw_insert_keyed`: every row upserts one of 100k symbols); and the cost of one keyed
//! cycle upserting 10,000 random keys into tables of 100k and 1M keys (`keyed_cycle`), which
//! should not grow with the table.
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
/// Keys upserted per cycle by `keyed_cycle`.
const CHANGED: usize = 10_000;

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

/// One cycle upserting 10,000 random keys (whole rows) into a keyed table of `size` keys.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
fn keyed_cycle(c: &mut Criterion) {
    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    let mut group = c.benchmark_group("keyed_cycle");
    group.throughput(Throughput::Elements(CHANGED as u64));
    for size in [100_000usize, 1_000_000] {
        let engine = manual_engine();
        let (table, publisher) = engine
            .table_publisher(
                "k",
                trade_schema(),
                PublisherOptions::default().with_key(["Sym"]),
            )
            .expect("table");
        let batch = |keys: &mut dyn Iterator<Item = usize>, ts: i64| {
            let keys: Vec<usize> = keys.collect();
            RecordBatch::try_new(
                trade_schema(),
                vec![
                    Arc::new(Int64Array::from_iter_values(keys.iter().map(|_| ts))),
                    Arc::new(StringArray::from_iter_values(
                        keys.iter().map(|k| format!("K{k:07}")),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        keys.iter().map(|&k| k as f64),
                    )),
                    Arc::new(Int64Array::from_iter_values(keys.iter().map(|&k| k as i64))),
                ],
            )
            .expect("batch")
        };
        for start in (0..size).step_by(100_000) {
            publisher
                .upsert(batch(&mut (start..start + 100_000), 0))
                .expect("load");
        }
        engine.run_cycle();
        assert_eq!(table.num_rows(), size);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let updates: Vec<RecordBatch> = (0..16)
            .map(|round| {
                let mut keys = std::iter::repeat_with(|| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    usize::try_from(seed % size as u64).expect("below size")
                })
                .take(CHANGED);
                batch(&mut keys, round)
            })
            .collect();
        let mut round = 0;
        group.bench_with_input(BenchmarkId::new("upsert_10k_of", size), &size, |b, _| {
            b.iter(|| {
                publisher
                    .upsert(updates[round % updates.len()].clone())
                    .expect("upsert");
                round += 1;
                engine.run_cycle()
            });
        });
    }
    group.finish();
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
    targets = insert, keyed_cycle
}
criterion_main!(benches);
