//! `ticker-demo`: the demo producers, headless.
//!
//! Runs an engine with the demo tables (a `trades` blink table fed by threads publishing Arrow
//! batches, a `quotes` append table written row by row, a ring of recent trades and an
//! append-only trade history; see `producers.rs`), prints a one-line summary every
//! `--stats-every` seconds, and on Ctrl-C (or after `--duration`) stops the producers and
//! prints the rows published per table and the cycle times.
//!
//! ```text
//! cargo run --release --bin ticker-demo
//! cargo run --release --bin ticker-demo -- --rate 1000000 --duration 10
//! ```
//!
//! To watch the same producers live, run `ticker-view --demo`.

mod producers;

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tickertable::Engine;

use producers::{Demo, DemoArgs};

/// Runs the demo producers headless and prints their statistics.
#[derive(Debug, Parser)]
#[command(name = "ticker-demo", version, about)]
struct Cli {
    #[command(flatten)]
    demo: DemoArgs,
    /// Seconds between two stats lines (0: none).
    #[arg(long, default_value_t = 1.0)]
    stats_every: f64,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long)]
    duration: Option<f64>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let engine = Engine::builder()
        .period(cli.demo.period())
        .build()
        .context("starting the engine")?;
    let mut demo = Demo::start(&engine.handle(), &cli.demo)?;
    let tables: Vec<String> = demo
        .tables()
        .iter()
        .map(|t| format!("{} ({})", t.name(), t.kind()))
        .collect();
    println!(
        "ticker-demo: {} trades/s, {} quotes/s into {}; Ctrl-C stops",
        producers::fmt_count(cli.demo.rate),
        producers::fmt_count(cli.demo.quote_rate),
        tables.join(", ")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let waited = runtime.block_on(wait(&cli, &demo, &engine));
    let stopped = demo.stop();
    let handle = engine.handle();
    engine.shutdown(); // a final cycle delivers what was staged
    println!("{}", demo.summary(&handle.stats()));
    waited?;
    stopped
}

/// Prints a stats line every `--stats-every` until Ctrl-C or `--duration`.
async fn wait(cli: &Cli, demo: &Demo, engine: &Engine) -> Result<()> {
    let every = if cli.stats_every > 0.0 {
        Duration::try_from_secs_f64(cli.stats_every).context("--stats-every")?
    } else {
        Duration::from_secs(3600 * 24 * 365)
    };
    let end = match cli.duration {
        Some(d) => Some(Duration::try_from_secs_f64(d).context("--duration")?),
        None => None,
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let deadline = tokio::time::sleep(end.unwrap_or(Duration::from_secs(3600 * 24 * 365)));
    tokio::pin!(deadline);
    let mut last = demo.summary(&engine.stats());
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl-C")?;
                eprintln!();
                return Ok(());
            }
            () = &mut deadline => return Ok(()),
            _ = ticker.tick() => {
                let now = demo.summary(&engine.stats());
                println!("step {} | {}", engine.step(), now.one_line(&last));
                last = now;
            }
        }
    }
}
