//! `ticker-serve`: a tickertable engine as a service, over Arrow Flight.
//!
//! ```text
//! ticker-serve --listen 127.0.0.1:8815 [--config tables.toml] [--token-file F]
//!              [--tls-cert cert.pem --tls-key key.pem [--tls-client-ca ca.pem]]
//!              [--period-ms N] [--metrics 127.0.0.1:9100] [--log-level info]
//! ```
//!
//! The token can also come from the `TICKERTABLE_TOKEN` environment variable (`--token`
//! works but shows in `ps`).
//!
//! Tables come from the config file (see `config.rs` for its format) and from clients:
//! `DoAction` `create_table`, `drop_table` and `stats` (see `tickertable::flight`), `DoPut`
//! into them, `DoGet` snapshots and live streams. The first line on stdout says where it
//! listens: `ticker-serve: listening on grpc://HOST:PORT` (with `--listen HOST:0`, the port it
//! got), then `ticker-serve: metrics on http://HOST:PORT/metrics` with `--metrics`. Logs go to
//! stderr.
//!
//! # Stopping
//!
//! On SIGINT or SIGTERM it stops accepting connections and calls, waits for the `DoPut`s in
//! progress to stage their rows, runs a last cycle that applies every staged row and delivers
//! it, ends each live stream after that cycle's updates with `UNAVAILABLE` and code
//! `server_stopping` (not a failure: reconnect later), and exits 0. A second signal exits at
//! once with status 130.
//!
//! # Durability
//!
//! `--data-dir` and the config's `durability` keys are refused with "not yet supported": durable
//! tables are being built separately, and are wired here once they land.

mod config;
mod kafka;
mod metrics;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tickertable::flight::FlightOptions;
use tickertable::Engine;
use tickertable_tools::flight_args::ServeArgs;

/// Serve a tickertable engine over Arrow Flight: tables from a config and from clients.
#[derive(Debug, Parser)]
#[command(name = "ticker-serve", version, about)]
struct Cli {
    /// The Flight address (port 0: any free port; the first line on stdout says which).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8815")]
    listen: String,
    /// The tables to create at start (TOML; see the README).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where durable tables keep their logs (not yet supported).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The token clients need, and TLS.
    #[command(flatten)]
    security: ServeArgs,
    /// The cycle period in milliseconds (default: the config's `period_ms`, else 100).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    period_ms: Option<u64>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    metrics: Option<String>,
    /// Log filter: a level (error, warn, info, debug, trace) or `tracing` directives such as
    /// `info,tickertable=debug`.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
    /// How long a stop waits for `DoPut`s in progress, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    drain_timeout: f64,
}

fn init_logs(filter: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log-level {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    Ok(())
}

/// Which signal asked the server to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
}

/// Waits for SIGINT or SIGTERM on its own thread: the first is sent on the returned channel,
/// a second exits the process at once.
fn watch_signals() -> Result<std::sync::mpsc::Receiver<Stop>> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    // Registered before the thread starts, so a signal right after start is not missed.
    let (mut int, mut term) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut first = true;
                loop {
                    let stop = tokio::select! {
                        _ = int.recv() => Stop::Interrupt,
                        _ = term.recv() => Stop::Terminate,
                    };
                    if first {
                        first = false;
                        let _ = tx.send(stop);
                    } else {
                        tracing::warn!(signal = ?stop, "second signal: exiting now");
                        std::process::exit(130);
                    }
                }
            });
        })
        .context("spawning the signal thread")?;
    Ok(rx)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(&cli.log_level)?;
    if let Some(dir) = &cli.data_dir {
        bail!(
            "--data-dir {}: durable tables are not yet supported by this ticker-serve (they are \
             still being built); run without --data-dir",
            dir.display()
        );
    }
    let config = match &cli.config {
        Some(path) => Some(config::Config::load(path)?),
        None => None,
    };
    let period_ms = cli
        .period_ms
        .or(config.as_ref().and_then(|c| c.period_ms))
        .unwrap_or(100);
    let stops = watch_signals()?;
    let engine = Engine::builder()
        .period(Duration::from_millis(period_ms))
        .build()
        .context("starting the engine")?;
    if let Some(config) = &config {
        config.apply(&engine)?;
    }
    let kafka = kafka::start(cli.config.as_deref(), &engine)?;
    let options = cli
        .security
        .apply(FlightOptions::default().with_table_management(true))?;
    let server = engine
        .serve_flight_with(cli.listen.as_str(), options)
        .with_context(|| format!("listening on {}", cli.listen))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ticker-serve: listening on {}", server.url())?;
    if let Some(addr) = &cli.metrics {
        let listener = std::net::TcpListener::bind(addr.as_str())
            .with_context(|| format!("--metrics {addr}"))?;
        let local = listener.local_addr()?;
        let handle = engine.handle();
        let flight = server.stats_handle();
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                metrics::serve(&listener, move || metrics::render(&handle, &flight.stats()));
            })
            .context("spawning the metrics thread")?;
        writeln!(stdout, "ticker-serve: metrics on http://{local}/metrics")?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(
        url = %server.url(),
        period_ms,
        tables = engine.tables().len(),
        config_tables = config.as_ref().map_or(0, config::Config::len),
        kafka = kafka.len(),
        auth = cli.security.wants_token(),
        tls = cli.security.is_tls(),
        "serving"
    );

    let signal = stops.recv().context("the signal thread ended")?;
    tracing::info!(
        ?signal,
        "stopping: draining staged rows through a last cycle"
    );
    let timeout = Duration::from_secs_f64(cli.drain_timeout.max(0.0));
    if !server.drain(timeout) {
        tracing::warn!(?timeout, "DoPut calls still in progress were cut off");
    }
    kafka.stop();
    let handle = engine.handle();
    engine.shutdown();
    server.shutdown();
    tracing::info!(step = handle.step().as_u64(), "stopped");
    Ok(())
}
