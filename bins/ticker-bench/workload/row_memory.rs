//! W12: an append table written row by row at a fixed number of rows per cycle, measured in
//! bytes of RSS per row and chunks: what a slow writer (a quote every few cycles) costs.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use tickertable::{DynamicWriterOptions, Engine};

use crate::args::Run;
use crate::data::{self, Symbols};
use crate::probe::rss_bytes;
use crate::report::{round3, Report, Timing};
use crate::workload::epoch_ns;

/// Set in the child process that measures one W12 run.
pub(crate) const CHILD: &str = "TICKER_BENCH_W12_CHILD";

/// Runs W12 in a child process of its own (so RSS counts nothing an earlier run left in the
/// allocator), or, in that child, measures it.
pub(crate) fn run(run: &Run) -> Result<Report> {
    if std::env::var_os(CHILD).is_some() {
        return measure(run);
    }
    let exe = std::env::current_exe().context("finding ticker-bench")?;
    let out = std::process::Command::new(exe)
        .args(["--workload", "W12", "--batch", &run.batch.to_string()])
        .args(["--n", &run.n.to_string()])
        .env(CHILD, "1")
        .output()
        .context("running W12 in a child process")?;
    ensure!(
        out.status.success(),
        "the W12 child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).context("the W12 child's output")?;
    Report::from_json(line.trim()).context("the W12 child's report")
}

/// Writes `run.n` rows through one `RowWriter`, `run.batch` rows per cycle, into an append
/// table of a manual engine (so the cycle count is exact), then reads RSS.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]
fn measure(run: &Run) -> Result<Report> {
    let engine = Engine::builder()
        .manual()
        .build()
        .context("building the engine")?;
    let dtw = engine
        .dynamic_table_writer("quotes", data::schema(), DynamicWriterOptions::default())
        .context("creating the table")?;
    let mut writer = dtw.row_writer().context("creating the row writer")?;
    let symbols = Symbols::new();
    let ts0 = epoch_ns();
    let per_cycle = run.batch.max(1) as u64;
    let rss_baseline = rss_bytes()?;
    let start = Instant::now();
    let mut i = 0;
    while i < run.n {
        let end = (i + per_cycle).min(run.n);
        for r in i..end {
            writer
                .write_row(&data::row(&symbols, r, ts0 + r as i64))
                .context("writing a row")?;
        }
        engine.run_cycle();
        i = end;
    }
    let done = Instant::now();
    let table = dtw.table();
    ensure!(
        u64::try_from(table.num_rows())? == run.n,
        "the table holds {} rows, not {}",
        table.num_rows(),
        run.n
    );
    let steady = rss_bytes()?;
    let snap = table.snapshot();
    let arrow: usize = snap
        .batches()
        .map(arrow_array::RecordBatch::get_array_memory_size)
        .sum();
    let timing = Timing {
        start,
        write_end: done,
        visible: done,
    };
    let mut report = Report::new(run, "append, row by row", timing, &engine);
    let grown = steady.saturating_sub(rss_baseline);
    report.set("rows_per_cycle", per_cycle);
    report.set("rss_baseline_bytes", rss_baseline);
    report.set("rss_steady_bytes", steady);
    report.set("bytes_per_row", round3(grown as f64 / run.n as f64));
    report.set("arrow_bytes_per_row", round3(arrow as f64 / run.n as f64));
    report.set("chunks", snap.num_chunks());
    Ok(report)
}
