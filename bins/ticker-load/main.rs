//! `ticker-load`: loads CSV files into a tickertable table, embedded or served, through the
//! multithreaded writer, with a progress bar and a final summary.
//!
//! ```text
//! ticker-load trades.csv --table trades --kind ring:1000000 --threads 2
//! ticker-load a.csv b.csv --table trades --server grpc://127.0.0.1:8815
//! ticker-load quotes.csv --table book --kind keyed:Sym
//! ```
//!
//! Into a keyed table each line upserts its key, so the table ends with the last line of
//! every key (of each file: files load in parallel, so when two files hold the same key,
//! which one wins is not defined).
//!
//! Bad lines (wrong field count, a value that does not parse or does not fit its column) are
//! reported with their file and line number and not loaded; the good lines load. The exit
//! code is 0 when every line loaded, 1 when some failed, 2 on a fatal error.

mod args;
mod load;
mod schema;

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tickertable::{
    DynamicWriterOptions, Engine, MultithreadedTableWriter, MultithreadedWriterOptions,
    MultithreadedWriterStatus, Table, TableKind, WriteTarget,
};

use args::Args;
use load::{Errors, LineError, Progress};

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ticker-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The table kind and key columns of `--kind`: `append`, `ring:N`, `keyed:COL[,COL...][:N]`.
fn kind(spec: &str) -> Result<(TableKind, Vec<String>)> {
    const USE: &str = "use append, ring:N or keyed:COLUMN[,COLUMN...][:N]";
    match spec.split_once(':') {
        None if spec == "append" => Ok((TableKind::Append, Vec::new())),
        Some(("ring", n)) => Ok((
            TableKind::Ring {
                capacity: n.parse().with_context(|| format!("ring capacity {n:?}"))?,
            },
            Vec::new(),
        )),
        Some(("keyed", rest)) => {
            let (columns, capacity) = match rest.split_once(':') {
                Some((c, n)) => (
                    c,
                    Some(n.parse().with_context(|| format!("keyed capacity {n:?}"))?),
                ),
                None => (rest, None),
            };
            let key: Vec<String> = columns
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            if key.is_empty() {
                bail!("keyed needs its key columns: {USE}");
            }
            Ok((TableKind::Keyed { capacity }, key))
        }
        _ => bail!("unknown kind {spec:?}: {USE}"),
    }
}

/// The schema from `--schema`, or inferred from the first lines of the first file.
fn schema_of(args: &Args, delimiter: u8) -> Result<arrow_schema::SchemaRef> {
    if args.schema != "infer" {
        return schema::parse(&args.schema);
    }
    let mut reader = load::csv_reader(&args.files[0], false, delimiter)?;
    let mut rows = reader.records();
    let first: Vec<String> = match rows.next() {
        Some(r) => r?.iter().map(str::to_owned).collect(),
        None => bail!(
            "{} is empty: cannot infer a schema",
            args.files[0].display()
        ),
    };
    let (header, mut samples) = if args.no_header {
        (
            (0..first.len()).map(|i| format!("c{i}")).collect(),
            vec![first],
        )
    } else {
        (first, Vec::new())
    };
    for r in rows.take(1000) {
        samples.push(r?.iter().map(str::to_owned).collect());
    }
    Ok(schema::infer(&header, &samples))
}

/// Where rows go: a served engine's table, or a table of an embedded engine (returned so it
/// lives until the summary).
fn open_sink(args: &Args, delimiter: u8) -> Result<(WriteTarget, Option<(Engine, Table)>)> {
    if let Some(url) = &args.server {
        let sink = WriteTarget::Remote {
            url: url.clone(),
            table: args.table.clone(),
            token: args.token.clone(),
        };
        return Ok((sink, None));
    }
    let engine = Engine::builder().build().context("starting the engine")?;
    let schema = schema_of(args, delimiter)?;
    let (kind, key) = kind(&args.kind)?;
    let mut options = DynamicWriterOptions::default().with_kind(kind);
    if !key.is_empty() {
        options = options.with_key(key);
    }
    let table = engine
        .dynamic_table_writer(&args.table, schema, options)
        .context("creating the table")?
        .table()
        .clone();
    Ok((WriteTarget::Local(table.clone()), Some((engine, table))))
}

/// Reads every file on its own thread while a progress bar runs.
#[allow(clippy::cast_precision_loss)]
fn read_files(
    args: &Args,
    delimiter: u8,
    mtw: &MultithreadedTableWriter,
    progress: &Progress,
    errors: &Errors,
    started: Instant,
) -> Result<()> {
    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .context("progress style")?,
    );
    let schema = mtw.schema();
    std::thread::scope(|scope| -> Result<()> {
        let readers: Vec<_> = args
            .files
            .iter()
            .map(|f| {
                scope.spawn(move || {
                    load::load_file(f, !args.no_header, delimiter, schema, mtw, progress, errors)
                })
            })
            .collect();
        while readers.iter().any(|r| !r.is_finished()) {
            let lines = progress.lines.load(Ordering::Relaxed);
            let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(progress.bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{lines} lines, {rate:.0} rows/s"));
            std::thread::sleep(Duration::from_millis(100));
        }
        for r in readers {
            r.join()
                .map_err(|_| anyhow::anyhow!("a reader thread panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(())
}

struct Summary<'a> {
    table: &'a str,
    lines: u64,
    bad_lines: u64,
    unwritten: u64,
    status: MultithreadedWriterStatus,
    visible: Option<usize>,
    elapsed: Duration,
    first: Vec<LineError>,
}

impl Summary<'_> {
    #[allow(clippy::cast_precision_loss)]
    fn print(&self) {
        let failed = self.bad_lines + self.unwritten;
        let done = if failed == 0 {
            "done"
        } else {
            "done with failures"
        };
        println!("ticker-load: {done} into {:?}", self.table);
        println!("  lines     {}", self.lines);
        println!("  written   {}", self.status.sent_rows);
        println!(
            "  failed    {failed} ({} bad lines, {} not written)",
            self.bad_lines, self.unwritten
        );
        if let Some(v) = self.visible {
            println!("  visible   {v} rows in the table");
        }
        let secs = self.elapsed.as_secs_f64();
        println!("  duration  {secs:.3} s");
        println!(
            "  rate      {:.0} rows/s",
            self.status.sent_rows as f64 / secs.max(1e-9)
        );
        if let Some(e) = self.status.last_error() {
            println!("  writer error [{}]: {}", e.code, e.message);
        }
        if !self.first.is_empty() {
            println!("  first bad lines:");
            for e in &self.first {
                println!("    {}:{}: {}", e.file.display(), e.line, e.message);
            }
        }
    }
}

fn run(args: &Args) -> Result<bool> {
    let delimiter = u8::try_from(args.delimiter).context("the delimiter must be one byte")?;
    let started = Instant::now();
    let (sink, embedded) = open_sink(args, delimiter)?;
    let options = MultithreadedWriterOptions::default()
        .with_thread_count(args.threads.max(1))
        .with_batch_size(args.batch.max(1));
    let mtw = MultithreadedTableWriter::new(sink, options).context("starting the writer")?;
    let progress = Progress::default();
    let errors = Errors::new(args.show_errors);
    read_files(args, delimiter, &mtw, &progress, &errors, started)?;
    let status = mtw.wait_for_completion();
    let unwritten: u64 = mtw
        .unwritten_data()
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum();
    let elapsed = started.elapsed();
    let visible = embedded.map(|(engine, table)| {
        drop(engine); // the final cycle applies every staged row
        table.num_rows()
    });
    let summary = Summary {
        table: &args.table,
        lines: progress.lines.load(Ordering::Relaxed),
        bad_lines: progress.failed.load(Ordering::Relaxed),
        unwritten,
        status,
        visible,
        elapsed,
        first: errors.into_first(),
    };
    summary.print();
    Ok(summary.bad_lines + summary.unwritten == 0)
}
