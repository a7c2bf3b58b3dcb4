//! `ticker-load`: loads CSV files into a tickertable table, embedded or served, as Arrow
//! batches parsed in parallel, with a progress bar and a final summary.
//!
//! ```text
//! ticker-load trades.csv --table trades --kind ring:1000000 --threads 2
//! ticker-load a.csv b.csv --table trades --server grpc://127.0.0.1:8815
//! ticker-load trades.csv --table trades --server grpc://127.0.0.1:8815 --create
//! ticker-load quotes.csv --table book --kind keyed:Sym
//! ticker-load --generate trades.csv --lines 10000000
//! ```
//!
//! # Columnar work
//!
//! CSV loading is columnar: each file is split into ranges of whole records (`--range-bytes`,
//! cut at line breaks; see `split.rs` for quoted line breaks), `--threads` threads parse
//! ranges with arrow-csv into Arrow batches of up to `--batch` rows, and the batches are
//! published in file order, whole: through a `TablePublisher` into an embedded table, or
//! with Flight `DoPut`s (several batches each, retried with backoff while the server is full
//! or unreachable) into a served one. No row is built one value at a time. The
//! multithreaded writer stays the path for row sources (rows that arrive one by one from
//! many threads); a CSV file is not one.
//!
//! Into a keyed table each batch upserts its keys, and files load one after another in the
//! order given, so the table ends with the last line of every key.
//!
//! # Schema
//!
//! `--schema Name:type,...`, or inferred by arrow-csv from the first `--infer-lines` data
//! lines of the first file (the summary says which lines: an inferred type is a common
//! surprise, say a column of codes that happen to be digits). Fields map to columns by
//! position. Every column of a schema made here is nullable. A served load uses the served
//! table's schema (and `--schema`, if given, must agree with it); a null in a column that
//! schema says is not nullable makes a bad line. With `--create` a served load first creates
//! the table (`DoAction create_table`) with the schema it would use embedded and `--kind`; an
//! identical table is used as it is, a different one is refused.
//!
//! # Nulls
//!
//! A field equal to a null marker, after unquoting, is a null: by default the empty field,
//! `NA`, `N/A`, `NULL`, `null` and `NaN` (as pandas and `DuckDB` readers treat them), in every
//! column but float ones, where `NaN` is the float NaN. `--null-values a,b,c` replaces the
//! list (an empty item is the empty field; a float literal among them stays a value in float
//! columns). An empty field of a utf8 column is a null too, unless the list leaves it out.
//! Booleans are `true`/`false` in any case; dates and timestamps are ISO text or integers in
//! the column's unit (see `decode.rs`).
//!
//! # Bad lines
//!
//! A line with the wrong field count or a value that does not parse or does not fit its
//! column is reported with its file and line number, counted, and not loaded; the good
//! lines around it load. The summary prints the first `--show-errors` of them. The exit
//! code is 0 when every line loaded, 1 when some failed, 2 on a fatal error.

mod args;
mod decode;
mod generate;
mod load;
mod schema;
mod sink;
mod split;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow_schema::{Schema, SchemaRef};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tickertable::{Engine, EngineHandle, PublisherOptions, Table, TableKind};

use args::Args;
use decode::Plan;
use load::{LineError, Outcome, Progress};
use schema::{Dialect, NullMarkers, Origin};
use sink::{Sink, SinkReport};

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.generate {
        Some(path) => generate(path, args.lines).map(|()| true),
        None => run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ticker-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `--generate`: writes the trades CSV and says how big it is.
fn generate(path: &Path, lines: u64) -> Result<()> {
    let started = Instant::now();
    let bytes = generate::trades(path, lines)?;
    #[allow(clippy::cast_precision_loss)]
    let mb = bytes as f64 / 1e6;
    println!(
        "ticker-load: wrote {lines} lines ({mb:.1} MB) to {} in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The table kind and key columns of `--kind`: `append`, `blink`, `ring:N`,
/// `keyed:COL[,COL...][:N]`.
fn kind(spec: &str) -> Result<(TableKind, Vec<String>)> {
    const USE: &str = "use append, blink, ring:N or keyed:COLUMN[,COLUMN...][:N]";
    match spec.split_once(':') {
        None if spec == "append" => Ok((TableKind::Append, Vec::new())),
        None if spec == "blink" => Ok((TableKind::Blink, Vec::new())),
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

/// Where batches go, and what is needed afterwards to report on it.
struct Target {
    schema: SchemaRef,
    origin: Origin,
    sink: Sink,
    /// What the summary calls the table: "embedded append table", "served keyed table".
    kind: String,
    /// An embedded load's engine and table, kept until the summary.
    embedded: Option<(Engine, Table)>,
}

/// Creates the embedded table, or finds the served one.
fn open(args: &Args, table: &str, dialect: &Dialect) -> Result<Target> {
    if let Some(url) = &args.server {
        return open_served(args, url, table, dialect);
    }
    let chosen = schema::choose(&args.schema, &args.files[0], dialect, args.infer_lines)?;
    let (kind, key) = kind(&args.kind)?;
    let engine = Engine::builder().build().context("starting the engine")?;
    let mut options = PublisherOptions::default().with_kind(kind);
    if !key.is_empty() {
        options = options.with_key(key);
    }
    let (table, publisher) = engine
        .table_publisher(table, chosen.schema.clone(), options)
        .context("creating the table")?;
    Ok(Target {
        schema: chosen.schema,
        origin: chosen.origin,
        sink: Sink::embedded(publisher),
        kind: format!("embedded {} table", table.kind()),
        embedded: Some((engine, table)),
    })
}

/// Connects to the server and looks the table up; its schema is the one used.
fn open_served(args: &Args, url: &str, table: &str, dialect: &Dialect) -> Result<Target> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // `--create`: the schema this load would use embedded, sent in a `DoAction create_table`
    // before the lookup.
    let create = if args.create {
        let chosen = schema::choose(&args.schema, &args.files[0], dialect, args.infer_lines)?;
        let (kind, key) = kind(&args.kind)?;
        let create = tickertable::flight::CreateTable::new(table, chosen.schema.clone())
            .with_kind(kind)
            .with_key(key);
        Some((create, chosen.origin))
    } else {
        None
    };
    let (client, remote, created) = runtime.block_on(async {
        let mut client = tickertable::flight::Client::connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        if let Some(token) = &args.token {
            client = client.with_token(token)?;
        }
        let created = match &create {
            Some((c, _)) => Some(
                client
                    .create_table(c)
                    .await
                    .with_context(|| format!("creating table {table:?} on {url}"))?,
            ),
            None => None,
        };
        let remote = client
            .table(table)
            .await
            .with_context(|| format!("looking up table {table:?} on {url}"))?;
        anyhow::Ok((client, remote, created))
    })?;
    if create.is_none() && args.schema != "infer" {
        let given = schema::parse(&args.schema)?;
        if !same_columns(&given, &remote.schema) {
            bail!(
                "--schema {} does not match the served table's schema {}",
                schema::spec(&given),
                schema::spec(&remote.schema)
            );
        }
    }
    let schema = remote.schema.clone();
    let kind = match created {
        Some(true) => format!("served {} table (created)", remote.kind),
        Some(false) => format!("served {} table (existed, the same)", remote.kind),
        None => format!("served {} table", remote.kind),
    };
    let origin = create.map_or(Origin::Server, |(_, origin)| origin);
    let put_bytes = usize::try_from(args.put_bytes).context("--put-bytes is too large")?;
    Ok(Target {
        schema,
        origin,
        sink: Sink::served(runtime, client, remote, put_bytes)?,
        kind,
        embedded: None,
    })
}

/// Whether two schemas have the same column names and types, in order.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let Some(table) = args.table.as_deref() else {
        bail!("--table is required");
    };
    let mut total = 0;
    for f in &args.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot open {}", f.display()))?;
        total += meta.len();
    }
    let dialect = Dialect {
        header: !args.no_header,
        delimiter: u8::try_from(args.delimiter).context("the delimiter must be one byte")?,
        quote: b'"',
        newlines_in_values: args.newlines_in_values,
        nulls: NullMarkers::parse(args.null_values.as_deref()),
    };
    let mut target = open(args, table, &dialect)?;
    let integers = schema::integer_temporals(&args.files[0], &dialect, &target.schema)?;
    let batch = usize::try_from(args.batch).context("--batch is too large")?;
    let plan = Plan::new(target.schema.clone(), &integers, &dialect, batch)?;
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let job = load::Job {
        files: &args.files,
        header: dialect.header,
        quote: dialect.newlines_in_values.then_some(dialect.quote),
        range_bytes: usize::try_from(args.range_bytes).context("--range-bytes is too large")?,
        threads,
        keep_errors: args.show_errors,
        plan: &plan,
    };
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .context("progress style")?,
    );
    let progress = Progress::default();
    let mut tick = || {
        let lines = progress.lines.load(Ordering::Relaxed);
        bar.set_position(progress.bytes.load(Ordering::Relaxed));
        bar.set_message(format!("{lines} lines, {:.0} rows/s", rate(lines, started)));
    };
    let outcome = load::run(&job, &mut target.sink, &progress, &mut tick)?;
    bar.finish_and_clear();
    let report = target.sink.finish();
    let (visible, cycles) = match target.embedded {
        Some((engine, table)) => {
            let handle: EngineHandle = engine.handle();
            drop(engine); // the final cycle applies every staged batch
            (Some(table.num_rows()), Some(handle.stats()))
        }
        None => (None, None),
    };
    let summary = Summary {
        table,
        kind: &target.kind,
        schema: &target.schema,
        origin: &target.origin,
        nulls: &dialect.nulls,
        outcome: &outcome,
        report: &report,
        visible,
        cycles,
        threads,
        elapsed: started.elapsed(),
        timings: args.timings,
    };
    summary.print();
    Ok(outcome.bad_lines + report.not_written == 0 && report.error.is_none())
}

#[allow(clippy::cast_precision_loss)]
fn rate(n: u64, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64().max(1e-9)
}

/// The final summary.
struct Summary<'a> {
    table: &'a str,
    kind: &'a str,
    schema: &'a Schema,
    origin: &'a Origin,
    nulls: &'a NullMarkers,
    outcome: &'a Outcome,
    report: &'a SinkReport,
    visible: Option<usize>,
    cycles: Option<tickertable::EngineStats>,
    threads: usize,
    elapsed: Duration,
    timings: bool,
}

impl Summary<'_> {
    #[allow(clippy::cast_precision_loss)]
    fn print(&self) {
        let (o, r) = (self.outcome, self.report);
        let failed = o.bad_lines + r.not_written;
        let done = if failed == 0 && r.error.is_none() {
            "done"
        } else {
            "done with failures"
        };
        println!("ticker-load: {done} into {:?} ({})", self.table, self.kind);
        println!("  schema    {}", schema::spec(self.schema));
        println!("            {}", self.schema_origin());
        println!("  nulls     {}", self.nulls);
        println!("  lines     {}", o.lines);
        println!("  written   {}", r.written);
        println!(
            "  failed    {failed} ({} bad lines, {} not written)",
            o.bad_lines, r.not_written
        );
        if let Some(v) = self.visible {
            println!("  visible   {v} rows in the table");
        }
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!("  duration  {secs:.3} s");
        println!(
            "  rate      {:.0} rows/s, {:.1} MB/s",
            r.written as f64 / secs,
            o.bytes as f64 / 1e6 / secs
        );
        if let Some(e) = &r.error {
            println!("  writer error: {e}");
        }
        if self.timings {
            self.print_timings();
        }
        if !o.first.is_empty() {
            println!("  first bad lines:");
            for LineError {
                file,
                line,
                message,
            } in &o.first
            {
                println!("    {}:{line}: {message}", file.display());
            }
        }
    }

    fn schema_origin(&self) -> String {
        let nullable = {
            let not: Vec<&str> = self
                .schema
                .fields()
                .iter()
                .filter(|f| !f.is_nullable())
                .map(|f| f.name().as_str())
                .collect();
            if not.is_empty() {
                "every column is nullable".to_owned()
            } else {
                format!("not nullable: {}", not.join(", "))
            }
        };
        match self.origin {
            Origin::Given => format!("(from --schema; {nullable})"),
            Origin::Server => format!("(the served table's; {nullable})"),
            Origin::Inferred {
                file,
                lines,
                records,
            } => {
                let lines = match lines {
                    Some(l) => format!("lines {}-{}", l.start(), l.end()),
                    None => "no line".to_owned(),
                };
                format!(
                    "(inferred by arrow-csv from {lines} of {} ({records} records); {nullable}; \
                     pass --schema to pin it)",
                    file.display()
                )
            }
        }
    }

    fn print_timings(&self) {
        let (o, r) = (self.outcome, self.report);
        let s = |d: Duration| d.as_secs_f64();
        println!(
            "  stages    read {:.3} s, split {:.3} s (reader thread); parse {:.3} s over {} \
             threads; publish {:.3} s",
            s(o.read_time),
            s(o.split_time),
            s(o.parse_time),
            self.threads,
            s(r.publish_time)
        );
        if r.puts > 0 {
            println!("            {} DoPuts, {} retried", r.puts, r.retries);
        }
        if let Some(c) = &self.cycles {
            println!(
                "  cycles    {} cycles, {:.3} s under the lock (longest {:.3} s)",
                c.cycles,
                s(c.total_cycle_time),
                s(c.max_cycle_time)
            );
        }
    }
}
