//! `ticker-demo`: the demo producers, headless.
//!
//! Runs an engine with the demo tables (a `trades` blink table fed by threads publishing Arrow
//! batches, a `quotes` append table written row by row, a ring of recent trades, an
//! append-only trade history and a `book` keyed by symbol holding each symbol's latest
//! quote; see `producers.rs`), prints a one-line summary every
//! `--stats-every` seconds, and on Ctrl-C (or after `--duration`) stops the producers and
//! prints the rows published per table and the cycle times.
//!
//! ```text
//! cargo run --release --bin ticker-demo
//! cargo run --release --bin ticker-demo -- --rate 1000000 --duration 10
//! cargo run --release --bin ticker-demo -- --listen 127.0.0.1:8815 [--token-file F]
//!     [--tls-cert cert.pem --tls-key key.pem [--tls-client-ca ca.pem]]
//! ```
//!
//! The token can also come from the `TICKERTABLE_TOKEN` environment variable (`--token`
//! works but shows in `ps`).
//!
//! With `--listen` it also serves the engine over Arrow Flight at that address until it stops
//! (see `tickertable::flight`): watch it with `ticker-view grpc://127.0.0.1:8815`, or read it
//! from any Flight client. To watch the same producers in one process, run
//! `ticker-view --demo`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tickertable::Engine;

use tickertable_tools::demo::{Demo, DemoArgs};
use tickertable_tools::flight_args::ServeArgs;

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
    /// Also serve the engine over Arrow Flight at this address (port 0: any free port).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// With --listen: the token clients need and TLS.
    #[command(flatten)]
    security: ServeArgs,
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
        tickertable_tools::demo::fmt_count(cli.demo.rate),
        tickertable_tools::demo::fmt_count(cli.demo.quote_rate),
        tables.join(", ")
    );
    let server = serve(&cli, &engine)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let waited = runtime.block_on(wait(&cli, &demo, &engine));
    // Stop serving first, so clients see the server go rather than their tables end. The
    // server's thread is joined beside the engine's shutdown, which ends any live stream
    // still open (a graceful shutdown waits for those).
    let stopping = std::thread::Builder::new()
        .name("flight-stop".into())
        .spawn(move || drop(server))
        .context("spawning the server's stopper")?;
    let stopped = demo.stop();
    let handle = engine.handle();
    engine.shutdown(); // a final cycle delivers what was staged
    if stopping.join().is_err() {
        eprintln!("ticker-demo: stopping the Flight server panicked");
    }
    println!("{}", demo.summary(&handle.stats()));
    waited?;
    stopped
}

/// Serves the engine over Flight if `--listen` asks for it, and says where.
fn serve(cli: &Cli, engine: &Engine) -> Result<Option<tickertable::flight::FlightServer>> {
    let Some(addr) = &cli.listen else {
        return Ok(None);
    };
    let options = cli
        .security
        .apply(tickertable::flight::FlightOptions::default())?;
    let server = engine
        .handle()
        .serve_flight_with(addr.as_str(), options)
        .with_context(|| format!("serving Flight at {addr}"))?;
    let auth = match (cli.security.wants_token(), cli.security.is_tls()) {
        (true, true) => " --tls-ca <CA> --token-file <FILE>",
        (true, false) => " --token-file <FILE>",
        (false, true) => " --tls-ca <CA>",
        (false, false) => "",
    };
    println!(
        "ticker-demo: serving Arrow Flight at {} (watch it: ticker-view {}{auth})",
        server.url(),
        server.url()
    );
    Ok(Some(server))
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
