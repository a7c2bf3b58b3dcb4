//! One cycle of each computing derived table: 10k source rows into 1k and 100k groups.
//!
//! Machine: 2 cores (shared with other builds), Linux, `[profile.bench]` lto = true,
//! codegen-units = 1. Defaults: criterion with 10 samples, 0.5 s warm-up, 2 s measurement.
//!
//! Each iteration publishes one fresh 10,000-row batch of the trades schema (`Ts` int64 ns,
//! advancing 10 µs a row; `Sym` utf8 drawn from 1k or 100k symbols; `Price` f64; `Size` i64)
//! into the source and runs one manual cycle (`run_cycle`), which applies the source and
//! the one derived table under test. Building the batch is outside the timing. Throughput is
//! in source rows (elements/s).
//!
//! - `baseline`: the source alone, to subtract.
//! - `last_by`, `filter` (`Size >= 500`, keeps half), `agg_by` (count, sum(Size),
//!   min(Price), max(Price), VWAP: the W8 set), `bars` (1 s OHLC, volume and count per Sym).
//! - Sources: `blink` (add-only: running aggregates) and `ring` (capacity 100k, full: each
//!   cycle also retracts the 10k rows it evicts). Groups are warmed up before timing.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tickertable::derive::Agg;
use tickertable::test_util::trade_schema;
use tickertable::{Engine, PublisherOptions, TableKind, TablePublisher};

const ROWS: usize = 10_000;

/// Batch `k` of the stream: rows `k * ROWS..`, symbols from a mixing hash of the row.
fn batch(k: u64, groups: u64) -> RecordBatch {
    let start = k * ROWS as u64;
    let rows = start..start + ROWS as u64;
    let mix = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    #[allow(clippy::cast_possible_wrap, clippy::cast_precision_loss)]
    RecordBatch::try_new(
        trade_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                rows.clone().map(|i| (i * 10_000) as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.clone().map(|i| format!("S{}", mix(i) % groups)),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows.clone().map(|i| 100.0 + (mix(i) % 1000) as f64 / 100.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.map(|i| (mix(i) >> 8) as i64 % 1000),
            )),
        ],
    )
    .expect("invariant: arrays match the trade schema")
}

#[derive(Clone, Copy)]
enum Op {
    Baseline,
    LastBy,
    Filter,
    AggBy,
    Bars,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Baseline => "baseline",
            Op::LastBy => "last_by",
            Op::Filter => "filter",
            Op::AggBy => "agg_by",
            Op::Bars => "bars",
        }
    }
}

fn setup(op: Op, kind: TableKind) -> (Engine, TablePublisher) {
    let engine = Engine::builder().manual().build().expect("engine");
    let (source, publisher) = engine
        .table_publisher(
            "trades",
            trade_schema(),
            PublisherOptions::default().with_kind(kind),
        )
        .expect("source");
    match op {
        Op::Baseline => {}
        Op::LastBy => {
            engine.last_by("out", &source, &["Sym"]).expect("last_by");
        }
        Op::Filter => {
            engine
                .filter("out", &source, "Size >= 500")
                .expect("filter");
        }
        Op::AggBy => {
            let aggs = [
                Agg::count(),
                Agg::sum("Size"),
                Agg::min("Price"),
                Agg::max("Price"),
                Agg::weighted_mean("Price", "Size").with_name("VWAP"),
            ];
            engine
                .agg_by("out", &source, &["Sym"], &aggs)
                .expect("agg_by");
        }
        Op::Bars => {
            let aggs = [
                Agg::first("Price").with_name("Open"),
                Agg::max("Price").with_name("High"),
                Agg::min("Price").with_name("Low"),
                Agg::last("Price").with_name("Close"),
                Agg::sum("Size").with_name("Volume"),
                Agg::count(),
            ];
            engine
                .bars(
                    "out",
                    &source,
                    "Ts",
                    Duration::from_secs(1),
                    &["Sym"],
                    &aggs,
                )
                .expect("bars");
        }
    }
    (engine, publisher)
}

fn cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("derived_cycle");
    group.throughput(Throughput::Elements(ROWS as u64));
    let ops = [Op::Baseline, Op::LastBy, Op::Filter, Op::AggBy, Op::Bars];
    for (kind_name, kind) in [
        ("blink", TableKind::Blink),
        ("ring", TableKind::Ring { capacity: 100_000 }),
    ] {
        for groups in [1_000u64, 100_000] {
            for op in ops {
                if matches!(op, Op::Bars) && kind_name == "ring" {
                    continue; // bars read added rows only: the same work as blink
                }
                let (engine, publisher) = setup(op, kind);
                let next = Cell::new(0u64);
                // Warm up: every group seen, the ring full.
                for _ in 0..30 {
                    publisher.add(batch(next.get(), groups)).expect("add");
                    next.set(next.get() + 1);
                    engine.run_cycle();
                }
                let id = BenchmarkId::new(
                    op.name(),
                    format!("{kind_name} 10k rows into {}k groups", groups / 1000),
                );
                group.bench_function(id, |b| {
                    b.iter_batched(
                        || {
                            let k = next.get();
                            next.set(k + 1);
                            batch(k, groups)
                        },
                        |batch| {
                            publisher.add(batch).expect("add");
                            black_box(engine.run_cycle())
                        },
                        BatchSize::SmallInput,
                    );
                });
            }
        }
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
    targets = cycle
}
criterion_main!(benches);
