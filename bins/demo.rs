//! Demo producers shared by `ticker-demo` and `ticker-view --demo`.
//!
//! [`Demo::start`] creates five tables on an engine and starts the producer threads:
//!
//! | table | kind | fed by |
//! |---|---|---|
//! | `trades` | blink | `--trade-threads` threads publishing Arrow batches ([`TablePublisher`]) |
//! | `quotes` | append | `--quote-threads` threads, each with its own [`RowWriter`] |
//! | `trades_recent` | ring (`--ring`) | `ring_table(trades)` |
//! | `trades_history` | append (`--history-limit`) | `blink_to_append_only(trades)` |
//! | `book` | keyed by `Sym` | the quote threads upsert each quote: the latest quote per symbol |
//!
//! and four computing derived tables, listed after those (not counted in the summary):
//!
//! | table | kind | derived as |
//! |---|---|---|
//! | `quotes_latest` | keyed by `Sym` | `last_by(quotes, Sym)`: the latest quote per symbol |
//! | `trades_by_sym` | keyed by `Sym` | `agg_by(trades, Sym)`: count, volume, low, high, VWAP |
//! | `trades_bars` | append | `bars(trades, Time, 1 s, Sym)`: closed one-second OHLC bars |
//! | `trades_bars_open` | keyed by `Sym` | the open bar of each symbol |
//!
//! Trades: `Time` (ns), `Sym` from a fixed universe, `Price` as a random walk per symbol
//! (rounded to cents), `Size` (mostly round lots), `Side`. Quotes: `Time`, `Sym`, `Bid`, `Ask`,
//! `BidSize`, `AskSize` around the symbol's last trade price. Each symbol belongs to one trade
//! thread, so its walk is a single sequence; quote threads read the walk's latest prices.
//!
//! # Pacing
//!
//! Each thread wakes every `--batch-ms` and publishes what its share of the rate owes since it
//! started (at most one second's worth at once), so the long-run rate is exact whatever the
//! batch size, from a few rows per second to millions.
//!
//! [`TablePublisher`]: tickertable::TablePublisher
//! [`RowWriter`]: tickertable::RowWriter

// Rates, prices and pacing are f64 arithmetic on counts far below 2^52 rows.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use arrow_array::builder::{
    Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tickertable::{
    Agg, DynamicWriterOptions, EngineHandle, EngineStats, ListenerHandle, PublisherOptions,
    RowWriter, Table, TableKind, TablePublisher, TableUpdate, Value,
};

/// The symbol universe; `--symbols` past its size adds synthetic names.
const UNIVERSE: [&str; 60] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "JPM", "LLY", "V", "UNH",
    "XOM", "MA", "JNJ", "PG", "HD", "COST", "MRK", "ABBV", "CVX", "CRM", "AMD", "PEP", "KO",
    "NFLX", "WMT", "BAC", "ADBE", "TMO", "ACN", "MCD", "CSCO", "ABT", "LIN", "ORCL", "INTC", "DIS",
    "WFC", "QCOM", "TXN", "DHR", "PM", "VZ", "AMGN", "IBM", "CAT", "GE", "NOW", "INTU", "UBER",
    "SPGI", "GS", "ISRG", "BKNG", "PLTR", "MU", "SBUX", "SHOP", "COIN",
];

/// Options of the demo producers (shared by both binaries through `#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Trades per second, over all trade threads (0: none). Goes to millions.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Quotes per second, over all quote threads (0: none).
    #[arg(long, default_value_t = 1_000)]
    pub quote_rate: u64,
    /// How many symbols trade.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub symbols: u32,
    /// Threads publishing trade batches.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub trade_threads: u32,
    /// Threads writing quotes row by row, each through its own row writer.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub quote_threads: u32,
    /// Rows kept by the `trades_recent` ring.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ring: u64,
    /// Most rows kept by `trades_history` (0: unlimited); later trades are dropped.
    #[arg(long, default_value_t = 10_000_000)]
    pub history_limit: u64,
    /// The engine's cycle period, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub period_ms: u64,
    /// How often each producer thread publishes, in milliseconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_ms: u64,
}

impl DemoArgs {
    /// The engine's cycle period.
    pub fn period(&self) -> Duration {
        Duration::from_millis(self.period_ms)
    }
}

/// Rows counted per table: published by the producers or delivered by the engine.
#[derive(Debug, Default)]
struct Counters {
    trades_published: AtomicU64,
    quotes_written: AtomicU64,
    /// Rows delivered to a listener on each table, in [`Demo::tables`] order.
    delivered: [AtomicU64; 5],
}

/// The running demo: its tables, threads and counters. [`stop`](Self::stop) ends it.
#[derive(Debug)]
pub struct Demo {
    tables: Vec<Table>,
    derived: Vec<Table>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
    counters: Arc<Counters>,
    _listeners: Vec<ListenerHandle>,
    started: Instant,
}

/// Symbol names and the latest trade price of each (`f64` bits), shared by all threads.
#[derive(Debug)]
struct Market {
    symbols: Vec<String>,
    prices: Vec<AtomicU64>,
}

impl Market {
    fn new(n: usize) -> Self {
        let mut rng = Rng::new(0x5eed);
        let symbols: Vec<String> = (0..n)
            .map(|i| match UNIVERSE.get(i) {
                Some(s) => (*s).to_owned(),
                None => format!("S{i:04}"),
            })
            .collect();
        let prices = (0..n)
            .map(|_| AtomicU64::new(cents(10.0 + rng.unit() * 890.0).to_bits()))
            .collect();
        Self { symbols, prices }
    }

    fn price(&self, i: usize) -> f64 {
        f64::from_bits(self.prices[i].load(Ordering::Relaxed))
    }
}

impl Demo {
    /// Creates the demo tables on `engine` and starts the producer threads.
    ///
    /// # Errors
    ///
    /// If a table cannot be created (say, one of that name exists) or a thread cannot start.
    // The tables one after another, then the threads one after another: splitting it would
    // only move the list elsewhere.
    #[allow(clippy::too_many_lines)]
    pub fn start(engine: &EngineHandle, args: &DemoArgs) -> Result<Self> {
        let market = Arc::new(Market::new(args.symbols as usize));
        let (trades, publisher) = engine
            .table_publisher("trades", trade_schema(), PublisherOptions::default())
            .context("creating the trades table")?;
        let quotes = engine
            .dynamic_table_writer(
                "quotes",
                quote_schema(),
                DynamicWriterOptions::default().with_kind(TableKind::Append),
            )
            .context("creating the quotes table")?;
        let ring = usize::try_from(args.ring).context("--ring is too large")?;
        let recent = engine
            .ring_table("trades_recent", &trades, ring)
            .context("creating the trades_recent ring")?;
        let limit = (args.history_limit > 0)
            .then(|| usize::try_from(args.history_limit))
            .transpose()
            .context("--history-limit is too large")?;
        let history = engine
            .blink_to_append_only("trades_history", &trades, limit)
            .context("creating the trades_history table")?;
        let book = engine
            .dynamic_table_writer(
                "book",
                quote_schema(),
                DynamicWriterOptions::default().with_key(["Sym"]),
            )
            .context("creating the book table")?;
        let tables = vec![
            trades,
            quotes.table().clone(),
            recent,
            history,
            book.table().clone(),
        ];

        let counters = Arc::new(Counters::default());
        let mut listeners = Vec::new();
        for (i, t) in tables.iter().enumerate() {
            let c = counters.clone();
            let handle = t
                .listen(move |u: &TableUpdate| {
                    let rows = u.num_added() + u.num_modified();
                    c.delivered[i].fetch_add(rows as u64, Ordering::Relaxed);
                })
                .with_context(|| format!("listening to {}", t.name()))?;
            listeners.push(handle);
        }

        let stop = Arc::new(AtomicBool::new(false));
        let batch = Duration::from_millis(args.batch_ms);
        let mut threads = Vec::new();
        let n = args.trade_threads;
        for t in 0..n {
            let rate = share(args.rate, n, t);
            if rate == 0 {
                continue;
            }
            let ctx = Ctx {
                market: market.clone(),
                stop: stop.clone(),
                counters: counters.clone(),
                thread: t as usize,
                threads: n as usize,
                rate,
                batch,
            };
            let publisher = publisher.clone();
            threads.push(spawn(&format!("demo-trades-{t}"), move || {
                trade_loop(&ctx, &publisher)
            })?);
        }
        let n = args.quote_threads;
        for t in 0..n {
            let rate = share(args.quote_rate, n, t);
            if rate == 0 {
                continue;
            }
            let ctx = Ctx {
                market: market.clone(),
                stop: stop.clone(),
                counters: counters.clone(),
                thread: t as usize,
                threads: n as usize,
                rate,
                batch,
            };
            let writer = quotes.row_writer().context("creating a quote row writer")?;
            let book = book.row_writer().context("creating a book row writer")?;
            threads.push(spawn(&format!("demo-quotes-{t}"), move || {
                quote_loop(&ctx, writer, book)
            })?);
        }
        Ok(Self {
            derived: derived_tables(engine, &tables[0], &tables[1])?,
            tables,
            stop,
            threads,
            counters,
            _listeners: listeners,
            started: Instant::now(),
        })
    }

    /// The demo's tables: trades, quotes, the ring, the history and the book.
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The computing derived tables: the latest quotes, the per-symbol aggregates, the
    /// closed and the open bars.
    pub fn derived(&self) -> &[Table] {
        &self.derived
    }

    /// Stops and joins the producer threads; the engine keeps running.
    ///
    /// # Errors
    ///
    /// The first error a producer thread stopped with (a thread that panicked included).
    pub fn stop(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = Ok(());
        for t in self.threads.drain(..) {
            let r = match t.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("a demo producer thread panicked")),
            };
            if first.is_ok() {
                first = r;
            }
        }
        first
    }

    /// What the demo did so far, with the engine's cycle statistics.
    pub fn summary(&self, stats: &EngineStats) -> Summary {
        let c = &self.counters;
        let rows = self
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let published = match i {
                    0 => Some(c.trades_published.load(Ordering::Relaxed)),
                    1 => Some(c.quotes_written.load(Ordering::Relaxed)),
                    _ => None,
                };
                TableSummary {
                    name: t.name().to_owned(),
                    kind: t.kind(),
                    published,
                    delivered: c.delivered[i].load(Ordering::Relaxed),
                    rows_now: t.num_rows() as u64,
                }
            })
            .collect();
        Summary {
            elapsed: self.started.elapsed(),
            tables: rows,
            cycles: stats.cycles,
            mean_cycle: stats.mean_cycle_time(),
            worst_cycle: stats.max_cycle_time,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // Errors were reported by an explicit `stop`; here only make sure the threads end.
        let _ = self.stop();
    }
}

/// What one table saw, for the summary.
#[derive(Debug, Clone)]
pub struct TableSummary {
    name: String,
    kind: TableKind,
    published: Option<u64>,
    delivered: u64,
    rows_now: u64,
}

/// The demo's summary: rows per table, cycles, mean and worst cycle time.
#[derive(Debug, Clone)]
pub struct Summary {
    elapsed: Duration,
    tables: Vec<TableSummary>,
    cycles: u64,
    mean_cycle: Duration,
    worst_cycle: Duration,
}

impl Summary {
    /// One line: rows per second delivered per table and the cycle times.
    pub fn one_line(&self, since: &Summary) -> String {
        let dt = self
            .elapsed
            .saturating_sub(since.elapsed)
            .as_secs_f64()
            .max(1e-9);
        let mut out = String::new();
        for (now, before) in self.tables.iter().zip(&since.tables) {
            let rate = (now.delivered - before.delivered) as f64 / dt;
            let _ = write!(
                out,
                "{} {}/s ({} rows) | ",
                now.name,
                fmt_count(rate.round() as u64),
                fmt_count(now.rows_now)
            );
        }
        let _ = write!(
            out,
            "cycles {} mean {:.2} ms worst {:.2} ms",
            self.cycles,
            ms(self.mean_cycle),
            ms(self.worst_cycle)
        );
        out
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "tickertable demo: {secs:.1} s")?;
        writeln!(
            f,
            "  {:<16} {:<14} {:>14} {:>14} {:>12} {:>12}",
            "table", "kind", "published", "delivered", "rows/s", "rows now"
        )?;
        for t in &self.tables {
            let published = t.published.map_or_else(|| "-".to_owned(), fmt_count);
            writeln!(
                f,
                "  {:<16} {:<14} {:>14} {:>14} {:>12} {:>12}",
                t.name,
                t.kind.to_string(),
                published,
                fmt_count(t.delivered),
                fmt_count((t.delivered as f64 / secs).round() as u64),
                fmt_count(t.rows_now),
            )?;
        }
        write!(
            f,
            "  cycles {}, mean cycle {:.3} ms, worst cycle {:.3} ms",
            fmt_count(self.cycles),
            ms(self.mean_cycle),
            ms(self.worst_cycle)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `1234567` as `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Thread `t`'s share of `total` over `n` threads (the remainder goes to the first ones).
fn share(total: u64, n: u32, t: u32) -> u64 {
    let n = u64::from(n);
    let t = u64::from(t);
    total / n + u64::from(t < total % n)
}

fn spawn(
    name: &str,
    f: impl FnOnce() -> Result<()> + Send + 'static,
) -> Result<JoinHandle<Result<()>>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .with_context(|| format!("spawning {name}"))
}

/// The demo's computing derived tables; see the module docs.
fn derived_tables(engine: &EngineHandle, trades: &Table, quotes: &Table) -> Result<Vec<Table>> {
    let latest = engine
        .last_by("quotes_latest", quotes, &["Sym"])
        .context("creating quotes_latest")?;
    let by_sym = engine
        .agg_by(
            "trades_by_sym",
            trades,
            &["Sym"],
            &[
                Agg::count().with_name("Trades"),
                Agg::sum("Size").with_name("Volume"),
                Agg::min("Price").with_name("Low"),
                Agg::max("Price").with_name("High"),
                Agg::weighted_mean("Price", "Size").with_name("VWAP"),
            ],
        )
        .context("creating trades_by_sym")?;
    let bars = engine
        .bars(
            "trades_bars",
            trades,
            "Time",
            Duration::from_secs(1),
            &["Sym"],
            &[
                Agg::first("Price").with_name("Open"),
                Agg::max("Price").with_name("High"),
                Agg::min("Price").with_name("Low"),
                Agg::last("Price").with_name("Close"),
                Agg::sum("Size").with_name("Volume"),
                Agg::count().with_name("Trades"),
            ],
        )
        .context("creating trades_bars")?;
    Ok(vec![
        latest,
        by_sym,
        bars.closed().clone(),
        bars.open().clone(),
    ])
}

/// The trades schema.
pub fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "Time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, false),
        Field::new("Size", DataType::Int64, false),
        Field::new("Side", DataType::Utf8, false),
    ]))
}

/// The quotes schema.
pub fn quote_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "Time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Bid", DataType::Float64, false),
        Field::new("Ask", DataType::Float64, false),
        Field::new("BidSize", DataType::Int64, false),
        Field::new("AskSize", DataType::Int64, false),
    ]))
}

/// What a producer thread needs.
struct Ctx {
    market: Arc<Market>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: usize,
    threads: usize,
    rate: u64,
    batch: Duration,
}

impl Ctx {
    /// Sleeps until the next batch and returns how many rows are owed, or `None` to stop.
    fn next_batch(&self, started: Instant, sent: u64, next: &mut Instant) -> Option<u64> {
        let now = Instant::now();
        if *next > now {
            std::thread::sleep(*next - now);
        }
        *next += self.batch;
        let now = Instant::now();
        if *next < now {
            // Fell behind (a slow machine or a stall): do not try to catch up in a burst.
            *next = now + self.batch;
        }
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let due = (now - started).as_secs_f64() * self.rate as f64;
        // At most one second's worth at once.
        Some((due as u64).saturating_sub(sent).min(self.rate))
    }

    /// This thread's symbols (indices into the market).
    fn symbols(&self) -> Vec<usize> {
        let n = self.market.symbols.len();
        let mine: Vec<usize> = (self.thread..n).step_by(self.threads).collect();
        if mine.is_empty() {
            // More threads than symbols: share them all.
            (0..n).collect()
        } else {
            mine
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Spreads `n` timestamps evenly over `(from, to]`.
fn spread(from: i64, to: i64, i: u64, n: u64) -> i64 {
    let span = i128::from(to.saturating_sub(from).max(0));
    let step = span * i128::from(i + 1) / i128::from(n.max(1));
    from + i64::try_from(step).unwrap_or(0)
}

fn trade_loop(ctx: &Ctx, publisher: &TablePublisher) -> Result<()> {
    let mut rng = Rng::new(0x7ade_0000 + ctx.thread as u64);
    let mine = ctx.symbols();
    let mut prices: Vec<f64> = mine.iter().map(|&s| ctx.market.price(s)).collect();
    let schema = trade_schema();
    let started = Instant::now();
    let mut next = started;
    let mut sent = 0u64;
    let mut last_ts = now_ns();
    while let Some(n) = ctx.next_batch(started, sent, &mut next) {
        if n == 0 {
            continue;
        }
        let rows = usize::try_from(n).context("batch too large")?;
        let ts_now = now_ns();
        let mut time_col = TimestampNanosecondBuilder::with_capacity(rows);
        let mut sym_col = StringBuilder::with_capacity(rows, rows * 4);
        let mut price_col = Float64Builder::with_capacity(rows);
        let mut qty_col = Int64Builder::with_capacity(rows);
        let mut side_col = StringBuilder::with_capacity(rows, rows * 4);
        for i in 0..n {
            let k = rng.below(mine.len());
            let s = mine[k];
            let p = &mut prices[k];
            // A random walk: up to ±0.1% a trade, rounded to cents, never below a dollar.
            *p = cents((*p * (1.0 + (rng.unit() - 0.5) * 0.002)).max(1.0));
            time_col.append_value(spread(last_ts, ts_now, i, n));
            sym_col.append_value(&ctx.market.symbols[s]);
            price_col.append_value(*p);
            qty_col.append_value(trade_size(&mut rng));
            side_col.append_value(if rng.unit() < 0.5 { "Buy" } else { "Sell" });
        }
        for (k, &s) in mine.iter().enumerate() {
            ctx.market.prices[s].store(prices[k].to_bits(), Ordering::Relaxed);
        }
        last_ts = ts_now;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(time_col.finish()),
            Arc::new(sym_col.finish()),
            Arc::new(price_col.finish()),
            Arc::new(qty_col.finish()),
            Arc::new(side_col.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).context("building trades")?;
        if let Err(e) = publisher.add(batch) {
            if ctx.stop.load(Ordering::Relaxed) || !publisher.is_alive() {
                return Ok(()); // shutting down
            }
            return Err(e).context("publishing trades");
        }
        sent += n;
        ctx.counters
            .trades_published
            .fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

fn quote_loop(ctx: &Ctx, mut writer: RowWriter, mut book: RowWriter) -> Result<()> {
    let mut rng = Rng::new(0x9007_0000 + ctx.thread as u64);
    let mine = ctx.symbols();
    let started = Instant::now();
    let mut next = started;
    let mut sent = 0u64;
    let mut last_ts = now_ns();
    while let Some(n) = ctx.next_batch(started, sent, &mut next) {
        let ts_now = now_ns();
        for i in 0..n {
            let s = mine[rng.below(mine.len())];
            let mid = ctx.market.price(s);
            let half = cents((mid * 0.0002 * (1.0 + rng.unit() * 4.0)).max(0.01));
            let bid = cents(mid - half);
            let ask = cents(mid + half);
            let row = [
                Value::Int(spread(last_ts, ts_now, i, n)),
                Value::Str(&ctx.market.symbols[s]),
                Value::Float(bid),
                Value::Float(ask),
                Value::Int(100 * (1 + rng.below(20) as i64)),
                Value::Int(100 * (1 + rng.below(20) as i64)),
            ];
            if let Err(e) = writer.write_row(&row).and_then(|()| book.write_row(&row)) {
                if ctx.stop.load(Ordering::Relaxed)
                    || matches!(e, tickertable::Error::EngineShutDown)
                {
                    return Ok(());
                }
                return Err(e).context("writing a quote");
            }
        }
        last_ts = ts_now;
        sent += n;
        ctx.counters.quotes_written.fetch_add(n, Ordering::Relaxed);
    }
    Ok(())
}

/// Mostly round lots of 100 to 1,000, sometimes an odd lot, rarely a block.
fn trade_size(rng: &mut Rng) -> i64 {
    let u = rng.unit();
    if u < 0.15 {
        1 + rng.below(99) as i64
    } else if u < 0.98 {
        100 * (1 + rng.below(10) as i64)
    } else {
        1_000 * (5 + rng.below(46) as i64)
    }
}

/// Rounds to cents.
fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A small xorshift64* generator: fast, seeded, good enough for demo data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        // Truncation is the point: a multiply-shift range reduction.
        #[allow(clippy::cast_possible_truncation)]
        let r = ((u128::from(self.next_u64()) * n as u128) >> 64) as usize;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let engine = tickertable::Engine::builder().manual().build().unwrap();
        let args = DemoArgs {
            rate: 0,
            quote_rate: 0,
            symbols: 3,
            trade_threads: 1,
            quote_threads: 1,
            ring: 10,
            history_limit: 0,
            period_ms: 100,
            batch_ms: 10,
        };
        let mut demo = Demo::start(&engine.handle(), &args).unwrap();
        let names: Vec<&str> = demo.tables().iter().map(Table::name).collect();
        assert_eq!(
            names,
            [
                "trades",
                "quotes",
                "trades_recent",
                "trades_history",
                "book"
            ]
        );
        let derived: Vec<&str> = demo.derived().iter().map(Table::name).collect();
        assert_eq!(
            derived,
            [
                "quotes_latest",
                "trades_by_sym",
                "trades_bars",
                "trades_bars_open"
            ]
        );
        demo.stop().unwrap();
    }

    #[test]
    fn producers_publish_at_their_rate_and_stop_cleanly() {
        let engine = tickertable::Engine::builder()
            .period(Duration::from_millis(10))
            .build()
            .unwrap();
        let args = DemoArgs {
            rate: 5_000,
            quote_rate: 1_000,
            symbols: 5,
            trade_threads: 2,
            quote_threads: 2,
            ring: 100,
            history_limit: 0,
            period_ms: 10,
            batch_ms: 5,
        };
        let mut demo = Demo::start(&engine.handle(), &args).unwrap();
        // A hang guard, not a timing assertion: wait until some rows arrived.
        let deadline = Instant::now() + Duration::from_secs(10);
        while demo.tables()[3].num_rows() < 100 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        demo.stop().unwrap();
        let handle = engine.handle();
        engine.shutdown();
        let summary = demo.summary(&handle.stats());
        let text = summary.to_string();
        assert!(text.contains("trades_history"), "{text}");
        let t = &summary.tables;
        assert_eq!(
            t[0].published,
            Some(t[0].delivered),
            "every trade delivered"
        );
        assert_eq!(
            t[1].published,
            Some(t[1].delivered),
            "every quote delivered"
        );
        assert_eq!(t[3].delivered, t[0].delivered, "history saw every trade");
        assert!(t[2].rows_now <= 100);
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1_000), "1,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
    }

    #[test]
    fn shares_add_up_to_the_total() {
        let total: u64 = (0..3).map(|t| share(1_000_000, 3, t)).sum();
        assert_eq!(total, 1_000_000);
    }
}
