//! W10's server: an engine serving Flight in a process of its own, driven by the client
//! process through its standard input, one command a line, each answered on standard output.
//!
//! - at start it prints `url grpc://127.0.0.1:PORT`;
//! - `feed N`: a producer thread publishes `N` fresh rows into the blink table `trades` in
//!   `--batch`-row batches as fast as it can; answers `fed` once they are written;
//! - `expect TABLE END`: answers `watching` once a listener is on `TABLE`, then `seen` once a listener on `TABLE` saw position `END - 1`
//!   delivered (the `DoPut` runs' end);
//! - `fill N`: grows the append table `big` by `N` rows and answers `filled` once they are
//!   visible (the snapshot run's table);
//! - end of input: the engine shuts down and the process exits.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::mpsc;

use anyhow::{anyhow, bail, Context, Result};
use tickertable::flight::FlightOptions;
use tickertable::{
    Engine, ListenerHandle, PublisherOptions, SubscriptionOptions, TableKind, TablePublisher,
};

use crate::args::Run;
use crate::data::{self, Symbols};
use crate::workload::epoch_ns;

/// Set in the child process that serves W10.
pub(crate) const CHILD: &str = "TICKER_BENCH_W10_SERVER";

/// Serves until standard input ends.
pub(crate) fn serve(run: &Run) -> Result<()> {
    let engine = Engine::builder()
        .period(run.cycle)
        .build()
        .context("building the engine")?;
    let blink = || PublisherOptions::default().with_kind(TableKind::Blink);
    let (_, trades) = engine.table_publisher("trades", data::schema(), blink())?;
    engine.table_publisher("inbox", data::schema(), blink())?;
    let (_, big) = engine.table_publisher(
        "big",
        data::schema(),
        PublisherOptions::default().with_kind(TableKind::Append),
    )?;
    // Queues deep enough for the whole run: the live parts measure the wire, not how a
    // subscriber slower than the producer is resynchronised (a blink table's snapshot holds
    // one cycle, so a resynchronised subscriber skips rows; the reports count them as `lost`).
    let subscription = SubscriptionOptions::default()
        .with_capacity(1 << 16)
        .with_max_queued_rows(usize::try_from(run.n)?.max(1 << 22));
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default().with_subscription(subscription),
        )
        .context("serving Flight")?;
    let out = std::io::stdout();
    let say = |line: &str| -> Result<()> {
        let mut out = out.lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    };
    say(&format!("url {}", server.url()))?;
    let symbols = Symbols::new();
    let ts0 = epoch_ns();
    let mut fed = 0u64;
    let mut filled = 0u64;
    let mut listeners: HashMap<String, ListenerHandle> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading a command")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["feed", n] => {
                let n: u64 = n.parse().context("feed N")?;
                publish(&trades, &symbols, ts0, fed, n, run.batch)?;
                fed += n;
                say("fed")?;
            }
            ["fill", n] => {
                let n: u64 = n.parse().context("fill N")?;
                let table = engine.table("big").ok_or_else(|| anyhow!("no table big"))?;
                let (tx, rx) = mpsc::channel();
                let end = filled + n;
                let watch = watch(&table, end, tx)?;
                publish(&big, &symbols, ts0, filled, n, run.batch)?;
                rx.recv().context("waiting for the fill")?;
                drop(watch);
                filled = end;
                say("filled")?;
            }
            ["expect", table, end] => {
                let end: u64 = end.parse().context("expect TABLE END")?;
                let t = engine
                    .table(table)
                    .ok_or_else(|| anyhow!("no table {table}"))?;
                let (tx, rx) = mpsc::channel();
                listeners.insert((*table).to_owned(), watch(&t, end, tx)?);
                say("watching")?;
                rx.recv().context("waiting for the rows")?;
                listeners.remove(*table);
                say("seen")?;
            }
            [] => {}
            _ => bail!("unknown command {line:?}"),
        }
    }
    server.shutdown();
    engine.shutdown();
    Ok(())
}

/// Publishes rows `start..start + n` in `batch`-row batches built fresh.
fn publish(
    publisher: &TablePublisher,
    symbols: &Symbols,
    ts0: i64,
    start: u64,
    n: u64,
    batch: usize,
) -> Result<()> {
    let schema = data::schema();
    let mut at = start;
    while at < start + n {
        let len = usize::try_from((batch as u64).min(start + n - at))?;
        publisher.add(data::batch(&schema, symbols, ts0, at, len)?)?;
        at += len as u64;
    }
    Ok(())
}

/// A listener that sends once position `end - 1` of `table` is delivered.
fn watch(table: &tickertable::Table, end: u64, tx: mpsc::Sender<()>) -> Result<ListenerHandle> {
    let mut done = false;
    Ok(table.listen(move |u: &tickertable::TableUpdate| {
        if !done && u.added().end >= end {
            done = true;
            let _ = tx.send(());
        }
    })?)
}
