//! Keyed tables (W11): the cost of one cycle that writes 10,000 random keys into a keyed table
//! of 100k or 1M keys, which should not grow with the table.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1.
//! Defaults: criterion with 10 samples, 0.5 s warm-up, 3 s measurement per benchmark; a
//! manual engine, so a sample is "stage the batch, run one cycle" on the bench thread (the
//! cycle publishes the new snapshot and drops the previous one).
//!
//! The table has the trades schema (`Ts` i64, `Sym` utf8, `Price` f64, `Size` i64); key `k`
//! has `Sym = "K{k:07}"`, `Size = k`. Workloads (the input is made before each timed cycle):
//!
//! - `upsert/sym`, `upsert/i64`: 10,000 whole-row upserts of random existing keys, keyed by
//!   `Sym` or by `Size`;
//! - `partial/sym`: 10,000 upserts of `Sym` and `Price` only (the other columns are kept);
//! - `churn/sym`: 5,000 random keys deleted and 5,000 new keys upserted in one cycle (the new
//!   keys fill the deleted keys' slots), the next cycle the other way round;
//! - `shrink_grow/sym`: 5,000 random keys deleted (the last rows move into their slots), the
//!   next cycle upserted again (appended at the end); 5,000 keys a cycle, not 10,000.
//!
//! The upserts use 16 batches of 10,000 distinct random keys in turn.
//!
//! Before the runs the bench prints the table's Arrow bytes per key and the process's
//! resident memory per key after loading 1M keys, for the memory side of the layout.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema, SchemaRef};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tickertable::test_util::{manual_engine, trade_schema};
use tickertable::{Engine, PublisherOptions, Table, TablePublisher};

/// Keys written per cycle.
const CHANGED: usize = 10_000;
/// Prepared batches per workload, used in turn.
const ROUNDS: usize = 16;

/// The trades schema with every column but `Sym` nullable, so a partial upsert may leave
/// them out.
fn nullable_trades() -> SchemaRef {
    let fields = trade_schema()
        .fields()
        .iter()
        .map(|f| Field::clone(f).with_nullable(f.name() != "Sym"))
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// Whole rows of the trades schema for keys `keys`, with `Ts = ts`.
fn rows(keys: &[usize], ts: i64) -> RecordBatch {
    rows_of(&trade_schema(), keys, ts)
}

/// Whole rows of `schema` (the trades schema, maybe nullable) for keys `keys`.
#[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
fn rows_of(schema: &SchemaRef, keys: &[usize], ts: i64) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|_| ts))),
            Arc::new(StringArray::from_iter_values(
                keys.iter().map(|k| format!("K{k:07}")),
            )),
            Arc::new(Float64Array::from_iter_values(
                keys.iter().map(|&k| k as f64 + ts as f64),
            )),
            Arc::new(Int64Array::from_iter_values(keys.iter().map(|&k| k as i64))),
        ],
    )
    .expect("batch")
}

/// `Sym` and `Price` only, for a partial upsert.
#[allow(clippy::cast_precision_loss)]
fn sym_price(keys: &[usize], round: usize) -> RecordBatch {
    let schema = nullable_trades();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::clone(schema.field(1)),
            Field::clone(schema.field(2)),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(
                keys.iter().map(|k| format!("K{k:07}")),
            )),
            Arc::new(Float64Array::from_iter_values(
                keys.iter().map(|&k| (k + round) as f64),
            )),
        ],
    )
    .expect("batch")
}

/// `n` random numbers below `below` (xorshift, fixed seed), distinct.
fn random_keys(seed: &mut u64, n: usize, below: usize) -> Vec<usize> {
    let mut taken = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let k = usize::try_from(*seed % below as u64).expect("below size");
        if taken.insert(k) {
            out.push(k);
        }
    }
    out
}

/// A keyed table of `size` keys `0..size`, keyed by `key`.
fn table(engine: &Engine, name: &str, key: &str, size: usize) -> (Table, TablePublisher) {
    table_of(engine, &trade_schema(), name, key, size)
}

/// A keyed table of `schema` with `size` keys `0..size`, keyed by `key`.
fn table_of(
    engine: &Engine,
    schema: &SchemaRef,
    name: &str,
    key: &str,
    size: usize,
) -> (Table, TablePublisher) {
    let (table, publisher) = engine
        .table_publisher(
            name,
            schema.clone(),
            PublisherOptions::default().with_key([key]),
        )
        .expect("table");
    for start in (0..size).step_by(100_000) {
        let keys: Vec<usize> = (start..(start + 100_000).min(size)).collect();
        publisher.upsert(rows_of(schema, &keys, 0)).expect("load");
    }
    engine.run_cycle();
    assert_eq!(table.num_rows(), size);
    (table, publisher)
}

/// The resident set size of this process, in bytes (0 where `/proc` is missing).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Prints the Arrow bytes and the resident bytes per key of a 1M-key table: the growth of the
/// resident set while a second table is loaded (the first one warms the allocator, so the
/// second reuses what loading the first freed).
#[allow(clippy::cast_precision_loss)]
fn memory() {
    const SIZE: usize = 1_000_000;
    let engine = manual_engine();
    let _warm = table(&engine, "warm", "Sym", SIZE);
    let before = rss();
    let (t, _p) = table(&engine, "memory", "Sym", SIZE);
    let after = rss();
    let arrow: usize = t
        .snapshot()
        .batches()
        .map(RecordBatch::get_array_memory_size)
        .sum();
    println!(
        "keyed memory, 1M keys: arrow {:.1} B/key in {} chunks, rss +{:.1} B/key",
        arrow as f64 / SIZE as f64,
        t.snapshot().num_chunks(),
        after.saturating_sub(before) as f64 / SIZE as f64,
    );
}

/// Times one cycle after `stage` staged the input `prepare(round)` made (untimed).
fn run<I>(
    c: &mut Criterion,
    name: &str,
    size: usize,
    engine: &Engine,
    mut prepare: impl FnMut(usize) -> I,
    mut stage: impl FnMut(I),
) {
    let mut group = c.benchmark_group("keyed_cycle");
    group.throughput(Throughput::Elements(CHANGED as u64));
    let mut round = 0;
    group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
        b.iter_batched(
            || {
                round += 1;
                prepare(round - 1)
            },
            |input| {
                stage(input);
                black_box(engine.run_cycle())
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// The key names of `keys`, as a one-column delete batch.
fn syms(keys: &[usize]) -> RecordBatch {
    let schema = trade_schema();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::clone(schema.field(1))])),
        vec![Arc::new(StringArray::from_iter_values(
            keys.iter().map(|k| format!("K{k:07}")),
        ))],
    )
    .expect("batch")
}

#[allow(clippy::cast_possible_wrap)]
fn keyed_cycle(c: &mut Criterion) {
    memory();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for size in [100_000usize, 1_000_000] {
        for (label, key) in [("upsert/sym", "Sym"), ("upsert/i64", "Size")] {
            let engine = manual_engine();
            let (_t, p) = table(&engine, "k", key, size);
            let batches: Vec<RecordBatch> = (0..ROUNDS)
                .map(|r| rows(&random_keys(&mut seed, CHANGED, size), r as i64 + 1))
                .collect();
            let prepare = |r: usize| batches[r % ROUNDS].clone();
            run(c, label, size, &engine, prepare, |b| {
                p.upsert(b).expect("upsert");
            });
        }
    }
    let size = 1_000_000;
    let engine = manual_engine();
    let (_t, p) = table_of(&engine, &nullable_trades(), "k", "Sym", size);
    let batches: Vec<RecordBatch> = (0..ROUNDS)
        .map(|r| sym_price(&random_keys(&mut seed, CHANGED, size), r))
        .collect();
    let prepare = |r: usize| batches[r % ROUNDS].clone();
    run(c, "partial/sym", size, &engine, prepare, |b| {
        p.upsert(b).expect("upsert");
    });

    // Even rounds delete `a` and add `b`, odd rounds the reverse.
    let engine = manual_engine();
    let (_t, p) = table(&engine, "k", "Sym", size);
    let a = random_keys(&mut seed, CHANGED / 2, size);
    let b: Vec<usize> = (size..size + CHANGED / 2).collect();
    let (rows_ab, syms_ab) = ([rows(&a, 1), rows(&b, 1)], [syms(&a), syms(&b)]);
    let prepare = |r: usize| (syms_ab[r % 2].clone(), rows_ab[(r + 1) % 2].clone());
    run(c, "churn/sym", size, &engine, prepare, |(gone, new)| {
        p.delete(gone).expect("delete");
        p.upsert(new).expect("upsert");
    });

    // Even rounds delete 5,000 random keys (the last rows move into their slots), odd rounds
    // upsert them again (at the end).
    let engine = manual_engine();
    let (_t, p) = table(&engine, "k", "Sym", size);
    let mut keys = Vec::new();
    let prepare = |r: usize| {
        if r % 2 == 0 {
            keys = random_keys(&mut seed, CHANGED / 2, size);
            (true, syms(&keys))
        } else {
            (false, rows(&keys, 1))
        }
    };
    run(
        c,
        "shrink_grow/sym",
        size,
        &engine,
        prepare,
        |(delete, batch)| {
            if delete {
                p.delete(batch).expect("delete");
            } else {
                p.upsert(batch).expect("upsert");
            }
        },
    );
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
    targets = keyed_cycle
}
criterion_main!(benches);
