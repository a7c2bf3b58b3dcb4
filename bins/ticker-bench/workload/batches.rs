//! W3, W4, W6, W7 and W8: fresh `RecordBatch`es through a `TablePublisher`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use tickertable::{Agg, Engine, PublisherOptions, TableKind};

use crate::args::{Run, Workload};
use crate::data::{self, Symbols};
use crate::probe::{rss_bytes, Delivery};
use crate::report::{Report, Timing};
use crate::workload::{epoch_ns, produce, share};

/// W3 (blink table), W4 (blink table feeding a ring, measured on the ring) or W6 (append
/// table, measured in RSS bytes per row).
///
/// Each producer thread fills four vectors per batch, wraps them in a `RecordBatch` and
/// publishes it; nothing is reused between batches.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn run(run: &Run) -> Result<Report> {
    let engine = Engine::builder()
        .period(run.cycle)
        .build()
        .context("building the engine")?;
    let kind = if run.workload == Workload::W6 {
        TableKind::Append
    } else {
        TableKind::Blink
    };
    let (table, publisher) = engine
        .table_publisher(
            "trades",
            data::schema(),
            PublisherOptions::default().with_kind(kind),
        )
        .context("creating the table")?;
    let (output, label) = match run.workload {
        Workload::W4 => (
            engine
                .ring_table("trades_ring", &table, run.ring)
                .context("creating the ring table")?,
            format!("blink -> ring({})", run.ring),
        ),
        Workload::W7 => {
            let latest = engine
                .last_by("trades_latest", &table, &["Sym"])
                .context("creating the last_by table")?;
            // Derived tables run in their source's cycle: the cycle that delivers the last
            // source row has updated this one, and its listeners run in that delivery.
            (
                table.clone(),
                format!("blink -> last_by(Sym) ({})", latest.name()),
            )
        }
        Workload::W8 => {
            let aggs = [
                Agg::count(),
                Agg::sum("Size"),
                Agg::min("Price"),
                Agg::max("Price"),
                Agg::weighted_mean("Price", "Size").with_name("VWAP"),
            ];
            let by_sym = engine
                .agg_by("trades_by_sym", &table, &["Sym"], &aggs)
                .context("creating the agg_by table")?;
            (
                table.clone(),
                format!(
                    "blink -> agg_by(Sym: count, sum Size, min/max Price, VWAP) ({})",
                    by_sym.name()
                ),
            )
        }
        _ => (table.clone(), kind.to_string()),
    };
    let delivery = Delivery::watch(&output, run.n)?;
    let symbols = Symbols::new();
    let schema = table.schema().clone();
    let ts0 = epoch_ns();
    let batch = run.batch as u64;
    let items: Vec<_> = (0..run.threads)
        .map(|k| (publisher.clone(), share(run.n, run.threads, k)))
        .collect();
    let rss_baseline = rss_bytes()?;
    let (start, write_end) = produce(items, |(publisher, rows)| {
        let mut at = rows.start;
        while at < rows.end {
            let len = usize::try_from(batch.min(rows.end - at)).context("batch length")?;
            let b = data::batch(&schema, &symbols, ts0, at, len)?;
            publisher.add(b).context("publishing a batch")?;
            at += len as u64;
        }
        Ok(())
    })?;
    let visible = delivery.wait()?;
    let timing = Timing {
        start,
        write_end,
        visible,
    };
    let mut report = Report::new(run, &label, timing, &engine);
    if run.workload == Workload::W6 {
        // Let two more cycles pass with no input, so nothing is staged or in flight.
        std::thread::sleep(2 * run.cycle + Duration::from_millis(10));
        ensure!(
            u64::try_from(table.num_rows())? == run.n,
            "the append table holds {} rows, not {}",
            table.num_rows(),
            run.n
        );
        let steady = rss_bytes()?;
        let grown = steady.saturating_sub(rss_baseline);
        report.set("rss_baseline_bytes", rss_baseline);
        report.set("rss_steady_bytes", steady);
        report.set(
            "bytes_per_row",
            crate::report::round3(grown as f64 / run.n as f64),
        );
        report.set("chunks", table.snapshot().num_chunks());
    }
    Ok(report)
}
