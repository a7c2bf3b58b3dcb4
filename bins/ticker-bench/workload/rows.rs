//! W1 and W2: rows written one at a time through `RowWriter::write_row` into an append table.

use anyhow::{Context, Result};
use tickertable::{DynamicWriterOptions, Engine};

use crate::args::Run;
use crate::data::{self, Symbols};
use crate::probe::Delivery;
use crate::report::{Report, Timing};
use crate::workload::{epoch_ns, produce, share};

/// W1 (1 thread) or W2 (`run.threads` threads), each thread with its own `RowWriter`.
#[allow(clippy::cast_possible_wrap)]
pub(crate) fn run(run: &Run) -> Result<Report> {
    let engine = Engine::builder()
        .period(run.cycle)
        .build()
        .context("building the engine")?;
    let dtw = engine
        .dynamic_table_writer("trades", data::schema(), DynamicWriterOptions::default())
        .context("creating the table")?;
    let delivery = Delivery::watch(dtw.table(), run.n)?;
    let symbols = Symbols::new();
    let ts0 = epoch_ns();
    let items = (0..run.threads)
        .map(|k| Ok((dtw.row_writer()?, share(run.n, run.threads, k))))
        .collect::<Result<Vec<_>>>()
        .context("creating the row writers")?;
    let (start, write_end) = produce(items, |(mut writer, rows)| {
        for i in rows {
            writer
                .write_row(&data::row(&symbols, i, ts0 + i as i64))
                .context("writing a row")?;
        }
        Ok(())
    })?;
    let visible = delivery.wait()?;
    let timing = Timing {
        start,
        write_end,
        visible,
    };
    Ok(Report::new(run, "append", timing, &engine))
}
