//! The cost of durability: one cycle of W3 with the log off, `Never` and `EveryCycle`, and
//! replay speed.
//!
//! Machine: 2 cores (shared with other builds), Linux, ext4 on a virtual disk,
//! `[profile.bench]` lto = true, codegen-units = 1. Defaults: criterion with 10 samples,
//! 0.5 s warm-up, 3 s measurement per benchmark. Logs go under `target/tmp` (a real disk,
//! not a tmpfs, so an fsync costs what it costs).
//!
//! - `cycle_w3/<policy>`: a manual engine, one blink table fed by a publisher (W3 of DESIGN
//!   section 7), one counting listener. Each iteration builds a fresh 10,000-row trade batch
//!   and stages it outside the timed region, then times `run_cycle()` alone: drain, apply,
//!   hand the records to the log writer, (with `EveryCycle`) wait for the write and fsync,
//!   publish, deliver. `off` has no data directory. After each policy the bench prints the
//!   mean exclusive-lock time of a cycle (`CycleStats::duration`) and the mean wait for the
//!   log (`CycleStats::log_wait`, under the upgradable side: readers go on), and MB logged.
//! - `replay/append_1M`: creating a durable append table whose log holds 1M trade rows
//!   (100 records of 10,000): reading, checking and decoding the whole log.
//! - `replay/ring_1M_cap_100k`: the same log replayed as a ring of 100,000 rows (only the
//!   records the capacity keeps are decoded).
//!
//! Measured 2026-12-02 at 14:47 UTC (load average 4.6 from other builds; read as rough):
//!
//! | bench | time per iteration | exclusive lock per cycle | log wait per cycle |
//! |---|---|---|---|
//! | `cycle_w3/off` | 3.9 µs | 3.9 µs | 0 |
//! | `cycle_w3/never` | 294 µs | 30 µs | 1.7 µs |
//! | `cycle_w3/every_cycle` | 2.1 ms | 18 µs | 1.6 ms (the fsync) |
//! | `replay/append_1M` | 21 ms (47M rows/s) | | |
//! | `replay/ring_1M_cap_100k` | 8.7 ms (115M log rows/s) | | |
//!
//! A W3 record is about 310 KB (31 bytes a row). `never`'s time past its exclusive lock is
//! spent after the lock is released, while the woken log writer encodes and writes the
//! record on the two busy cores. Before the cycle woke the writer only once it had left the
//! exclusive side, `never` held the lock exclusively for 1.5-1.8 ms a cycle and
//! `every_cycle` for 0.4-0.8 ms (under a load average of 12-20).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tickertable::test_util::{trade_batch, trade_schema};
use tickertable::{Engine, PublisherOptions, SyncPolicy, TableKind, TableUpdate};

const BATCH: usize = 10_000;

fn bench_dir(tag: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tmp")
        .join(format!("durable-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn engine(dir: Option<&Path>, sync: SyncPolicy) -> Engine {
    let mut b = Engine::builder().manual().sync_policy(sync);
    if let Some(dir) = dir {
        b = b.data_dir(dir);
    }
    b.build().expect("engine")
}

fn cycle_w3(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle_w3");
    group.throughput(Throughput::Elements(BATCH as u64));
    let policies = [
        ("off", None),
        ("never", Some(SyncPolicy::Never)),
        ("every_cycle", Some(SyncPolicy::EveryCycle)),
    ];
    for (label, policy) in policies {
        let dir = bench_dir(label);
        let engine = engine(
            policy.map(|_| dir.as_path()),
            policy.unwrap_or(SyncPolicy::Never),
        );
        let mut options = PublisherOptions::default();
        if policy.is_some() {
            options = options.durable();
        }
        let (table, publisher) = engine
            .table_publisher("w3", trade_schema(), options)
            .expect("table");
        let _listener = table
            .listen(|u: &TableUpdate| {
                black_box(u.num_added());
            })
            .expect("listen");
        let mut at = 0u64;
        let before = engine.stats();
        let mut cycles = 0u64;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // W3 builds every batch fresh from plain values, outside the timing.
                    publisher.add(trade_batch(at, BATCH)).expect("add");
                    at += BATCH as u64;
                    let t = Instant::now();
                    black_box(engine.run_cycle());
                    total += t.elapsed();
                    cycles += 1;
                }
                total
            });
        });
        let after = engine.stats();
        let n = u32::try_from(after.cycles - before.cycles)
            .expect("cycles fit")
            .max(1);
        #[allow(clippy::cast_precision_loss)] // a report
        let mb = (after.log.bytes - before.log.bytes) as f64 / 1e6;
        eprintln!(
            "cycle_w3/{label}: {cycles} cycles; per cycle: exclusive lock {:?}, log wait {:?}; \
             {mb:.1} MB logged, {} fsyncs",
            after
                .total_cycle_time
                .saturating_sub(before.total_cycle_time)
                / n,
            after.total_log_wait.saturating_sub(before.total_log_wait) / n,
            after.log.fsyncs - before.log.fsyncs,
        );
        drop(engine);
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(REPLAY_ROWS));
    let kinds = [
        ("append_1M", TableKind::Append),
        ("ring_1M_cap_100k", TableKind::Ring { capacity: 100_000 }),
    ];
    for (label, kind) in kinds {
        let dir = bench_dir(label);
        write_log(&dir, kind);
        let table_dir = dir.join("w3");
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let engine = engine(Some(&dir), SyncPolicy::Never);
                    let t = Instant::now();
                    let (table, _) = engine
                        .table_publisher("w3", trade_schema(), options(kind))
                        .expect("replay");
                    total += t.elapsed();
                    black_box(table.num_rows());
                    drop(engine);
                    // Opening starts a new (empty) segment: remove it so every replay reads
                    // the same files.
                    keep_first_segment(&table_dir);
                }
                total
            });
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

const REPLAY_ROWS: u64 = 1_000_000;

fn options(kind: TableKind) -> PublisherOptions {
    PublisherOptions::default().with_kind(kind).durable()
}

/// A log of `REPLAY_ROWS` trade rows in 10,000-row records, in one segment.
fn write_log(dir: &Path, kind: TableKind) {
    let engine = engine(Some(dir), SyncPolicy::Never);
    let (_, publisher) = engine
        .table_publisher("w3", trade_schema(), options(kind))
        .expect("table");
    let mut at = 0;
    while at < REPLAY_ROWS {
        publisher.add(trade_batch(at, BATCH)).expect("add");
        engine.run_cycle();
        at += BATCH as u64;
    }
}

/// Removes every segment of a table directory but the oldest.
fn keep_first_segment(dir: &Path) {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ttlog"))
        .collect();
    segments.sort();
    for p in segments.into_iter().skip(1) {
        std::fs::remove_file(p).expect("remove");
    }
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
    targets = cycle_w3, replay
}
criterion_main!(benches);
