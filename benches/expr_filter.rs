//! Filtering trade batches with a bound predicate: `BoundExpr::filter` and `filter_mask`.
//!
//! Machine: 2 cores (shared), Linux, `[profile.bench]` lto = true, codegen-units = 1.
//! Defaults: criterion with 10 samples, 0.5 s warm-up, 2 s measurement per benchmark.
//!
//! Batches of the trades schema (`Ts` int64, `Sym` utf8 of 100 symbols, `Price` f64, `Size`
//! i64; see `test_util::trade_batch`) of 10k and 1M rows. Throughput is in rows (elements/s).
//!
//! - `filter`: the whole filter (mask, then `filter_record_batch`) for two predicates,
//!   `Price > 100 && Sym in ("S01","S02","S03")` (keeps 3%) and `Size >= 1000 || Price < 10`
//!   (keeps the first 1,000 rows).
//! - `in_list`: the mask of `x in (n values)` against the same test written as an `||` of
//!   `==`, for a string and an integer column, to place the switch from `==` kernels to a
//!   hash set (`SHORT_IN_LIST` in `src/expr/bind.rs`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tickertable::test_util::{trade_batch, trade_schema};
use tickertable::Expr;

fn filter(c: &mut Criterion) {
    let schema = trade_schema();
    let predicates = [
        (
            "price_and_sym_in",
            r#"Price > 100 && Sym in ("S01","S02","S03")"#,
        ),
        ("size_or_price", "Size >= 1000 || Price < 10"),
    ];
    let mut group = c.benchmark_group("filter");
    for rows in [10_000, 1_000_000] {
        let batch = trade_batch(0, rows);
        group.throughput(Throughput::Elements(rows as u64));
        for (name, text) in predicates {
            let bound = Expr::parse(text)
                .and_then(|e| e.bind_predicate(&schema))
                .expect("predicate");
            let label = format!("{}k rows", rows / 1000);
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| black_box(bound.filter(black_box(&batch)).expect("filter")));
            });
        }
    }
    group.finish();
}

fn in_list(c: &mut Criterion) {
    let schema = trade_schema();
    let rows = 1_000_000;
    let batch = trade_batch(0, rows);
    let mut group = c.benchmark_group("in_list");
    group.throughput(Throughput::Elements(rows as u64));
    for n in [1, 2, 3, 4, 6, 8, 16] {
        let syms: Vec<String> = (1..=n).map(|i| format!("\"S{i:02}\"")).collect();
        let sizes: Vec<String> = (1..=n).map(|i| (i * 7).to_string()).collect();
        let forms = [
            ("sym_in", format!("Sym in ({})", syms.join(", "))),
            ("sym_or_eq", or_of_eq("Sym", &syms)),
            ("size_in", format!("Size in ({})", sizes.join(", "))),
            ("size_or_eq", or_of_eq("Size", &sizes)),
        ];
        for (name, text) in forms {
            let bound = Expr::parse(&text)
                .and_then(|e| e.bind_predicate(&schema))
                .expect("predicate");
            group.bench_function(BenchmarkId::new(name, format!("{n} values")), |b| {
                b.iter(|| black_box(bound.filter_mask(black_box(&batch)).expect("mask")));
            });
        }
    }
    group.finish();
}

/// `column == v1 || column == v2 || ...`.
fn or_of_eq(column: &str, values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{column} == {v}"))
        .collect::<Vec<_>>()
        .join(" || ")
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
    targets = filter, in_list
}
criterion_main!(benches);
