//! W5: one row every `--period-us`; latency from `write_row` to the table's listener.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use arrow_array::Int64Array;
use tickertable::{DynamicWriterOptions, Engine, TableUpdate};

use crate::args::Run;
use crate::data::{self, Symbols};
use crate::probe::Delivery;
use crate::report::{round3, Report, Timing};

/// Nanoseconds since `base`, the clock `Ts` is written in and latency is read against.
fn since(base: Instant) -> i64 {
    i64::try_from(base.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// W5 at `run.cycle`, with `Builder::low_latency(gap)` when `run.low_latency` is set.
///
/// The writer stamps each row's `Ts` with a monotonic clock just before `write_row`; a
/// listener on the table (registered before the one that ends the run, so it sees every
/// update first) reads the same clock when the update arrives and records `now - Ts` for
/// every row. The writer paces itself on absolute deadlines (`start + i * period`), so sleep
/// overshoot does not accumulate. `max_delivery_gap_us` is the longest time between two
/// consecutive updates reaching the listener, i.e. the longest cycle-to-cycle interval seen.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn run(run: &Run) -> Result<Report> {
    let mut builder = Engine::builder().period(run.cycle);
    if let Some(gap) = run.low_latency {
        builder = builder.low_latency(gap);
    }
    let engine = builder.build().context("building the engine")?;
    let dtw = engine
        .dynamic_table_writer("ticks", data::schema(), DynamicWriterOptions::default())
        .context("creating the table")?;
    let base = Instant::now();
    let (tx, rx) = mpsc::channel::<(i64, Vec<i64>)>();
    let _latencies = dtw
        .table()
        .listen(move |update: &TableUpdate| {
            let now = since(base);
            let mut out = Vec::with_capacity(update.num_added());
            for batch in update.batches() {
                if let Some(ts) = batch.column(0).as_any().downcast_ref::<Int64Array>() {
                    out.extend(ts.values().iter().map(|t| now - t));
                }
            }
            // The receiver lives until the run is over.
            let _ = tx.send((now, out));
        })
        .context("listening on the table")?;
    let delivery = Delivery::watch(dtw.table(), run.n)?;
    let mut writer = dtw.row_writer().context("creating the row writer")?;
    let symbols = Symbols::new();

    let start = Instant::now();
    let mut next = start;
    for i in 0..run.n {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        writer
            .write_row(&data::row(&symbols, i, since(base)))
            .context("writing a row")?;
        next += run.period;
    }
    let write_end = Instant::now();
    let visible = delivery.wait()?;

    let updates: Vec<(i64, Vec<i64>)> = rx.try_iter().collect();
    // The longest time between two deliveries: a latency tail that matches it comes from a
    // late cycle (the cycle thread woke late), not from the write or delivery path.
    let max_gap = updates
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .max()
        .unwrap_or(0);
    let mut lat: Vec<i64> = updates.into_iter().flat_map(|(_, l)| l).collect();
    ensure!(
        u64::try_from(lat.len())? == run.n,
        "measured {} latencies for {} rows",
        lat.len(),
        run.n
    );
    lat.sort_unstable();
    let us = |ns: i64| round3(ns as f64 / 1e3);
    let pct = |per_mille: usize| {
        // Nearest rank: the smallest value with at least that share of samples at or below it.
        let rank = (per_mille * lat.len()).div_ceil(1000);
        us(lat[rank.clamp(1, lat.len()) - 1])
    };
    let mean = lat.iter().map(|&v| v as f64).sum::<f64>() / lat.len() as f64;
    let timing = Timing {
        start,
        write_end,
        visible,
    };
    let mut report = Report::new(run, "append", timing, &engine);
    report.set("period_us", run.period.as_micros() as f64);
    report.set("low_latency", run.low_latency.is_some());
    report.set(
        "min_gap_us",
        run.low_latency
            .map_or(0.0, |g: Duration| g.as_micros() as f64),
    );
    report.set("p50_us", pct(500));
    report.set("p99_us", pct(990));
    report.set("p999_us", pct(999));
    report.set("max_us", us(lat[lat.len() - 1]));
    report.set("mean_us", round3(mean / 1e3));
    report.set("max_delivery_gap_us", us(max_gap));
    Ok(report)
}
