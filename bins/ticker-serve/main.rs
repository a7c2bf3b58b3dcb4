//! `ticker-serve`: a tickertable engine as a service, over Arrow Flight.
//!
//! ```text
//! ticker-serve --listen 127.0.0.1:8815 [--config tables.toml] [--data-dir DIR [--sync S]]
//!              [--token-file F]
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
//! `server_stopping` (not a failure: reconnect later), then flushes and fsyncs every durable
//! table's log (whatever `--sync` says) and releases the data directory, and exits 0; it
//! exits 1 if a log could not be written or synced. A second signal exits at once with
//! status 130 (rows the last cycle had not yet logged are lost; with `--sync every-cycle`
//! every row a client saw is on disk already).
//!
//! # Durability
//!
//! With `--data-dir DIR`, tables declared `durable = true` in the config, and tables created
//! over Flight with `"options": {"durable": true}`, log every cycle's rows under `DIR` (see
//! `tickertable::durable`). At start, before the server listens, each config table replays
//! its log, and every other durable table found in `DIR` (one a client created) is created
//! again from its log's header (name, kind, key, limit, schema) and replays too; a client's
//! `create_table` of it is then a no-op. Derived tables are not logged: config ones are
//! rebuilt, clients create theirs again. Dropping a durable table deletes its log. One server per data directory: a second one is refused,
//! naming the process that holds it. `stats` and the metrics report bytes logged, fsyncs and
//! their time, and the replay at start, per table and in total.

mod config;
mod kafka;
mod metrics;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tickertable::flight::{CreateTable, FlightOptions};
use tickertable::{Engine, EngineHandle, Error, SyncPolicy};
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
    /// Where durable tables keep their logs (created if missing; one server per directory).
    /// Needed for tables declared `durable = true` and for durable `create_table`s.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When durable tables' logs are fsynced: `every-cycle`, `never`, or an interval such
    /// as `200ms` [default: the config's `sync`, else every-cycle].
    ///
    /// `every-cycle` (the default) fsyncs each cycle's rows before the cycle makes them
    /// visible: a row any client has seen survives a crash of the server or of the machine,
    /// which is what a shared service's users assume. It costs at most one fsync per table
    /// written per cycle (so a few per period, off the global lock; see `fsync_us` in `stats`).
    /// `never` leaves write-back to the OS: a row survives a crash of the server once it is
    /// visible, but not one of the machine. An interval fsyncs at most that often, off the
    /// cycle: a machine crash loses at most that much. A clean stop syncs whatever the policy.
    #[arg(long, value_name = "POLICY", value_parser = config::parse_sync)]
    sync: Option<SyncPolicy>,
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

/// Creates again, from their logs, the durable tables of the data directory that the config
/// did not declare: those clients created. One that cannot be created is skipped with a
/// warning (its files are left as they are).
fn restore_logged(engine: &EngineHandle) -> Result<()> {
    for t in engine
        .logged_tables()
        .context("listing the data directory")?
    {
        if engine.table(&t.name).is_some() {
            continue;
        }
        let mut create = CreateTable::new(&t.name, t.schema.clone())
            .with_kind(t.kind)
            .with_key(t.key.iter().cloned())
            .durable();
        if let Some(limit) = t.limit {
            create = create.with_limit(limit);
        }
        match create.apply(engine) {
            Ok(_) => tracing::info!(table = %t.name, kind = %t.kind, "restored a durable table"),
            Err(error) => {
                tracing::warn!(table = %t.name, %error, "a durable table could not be restored");
            }
        }
    }
    Ok(())
}

/// Logs what replaying each durable table found.
fn log_replays(engine: &EngineHandle) {
    for table in engine.tables() {
        if let Some(r) = engine.replay_report(table.name()) {
            tracing::info!(
                table = table.name(),
                rows = table.num_rows(),
                records = r.records,
                bytes = r.bytes,
                duration = ?r.duration,
                truncated_bytes = r.truncated_bytes,
                "replayed a durable table"
            );
        }
    }
}

/// After the engine's shutdown: fails if a durable table's log could not be written or
/// synced at the end, else logs what was written.
fn check_logs(handle: &EngineHandle) -> Result<()> {
    if handle.data_dir().is_none() {
        return Ok(());
    }
    let failed: Vec<String> = handle
        .recent_errors()
        .iter()
        .filter(|e| matches!(***e, Error::LogWrite { .. }))
        .map(ToString::to_string)
        .collect();
    if !failed.is_empty() {
        bail!("stopping: durable logs failed: {}", failed.join("; "));
    }
    let log = handle.stats().log;
    tracing::info!(
        bytes = log.bytes,
        fsyncs = log.fsyncs,
        fsync_time = ?log.fsync_time,
        "logs flushed and synced"
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logs(&cli.log_level)?;
    let config = match &cli.config {
        Some(path) => Some(config::Config::load(path)?),
        None => None,
    };
    if let Some(config) = &config {
        config.check_data_dir(cli.data_dir.as_deref())?;
    }
    let period_ms = cli
        .period_ms
        .or(config.as_ref().and_then(|c| c.period_ms))
        .unwrap_or(100);
    let sync = cli
        .sync
        .or(config.as_ref().and_then(|c| c.sync))
        .unwrap_or_default();
    if cli.data_dir.is_none()
        && (cli.sync.is_some() || config.as_ref().is_some_and(|c| c.sync.is_some()))
    {
        tracing::warn!("a sync policy without --data-dir has no effect: no table is durable");
    }
    let stops = watch_signals()?;
    let mut builder = Engine::builder().period(Duration::from_millis(period_ms));
    if let Some(dir) = &cli.data_dir {
        builder = builder.data_dir(dir).sync_policy(sync);
    }
    let engine = builder.build().map_err(|e| match &e {
        Error::DataDirLocked { .. } => anyhow::anyhow!("--data-dir: {e}"),
        _ => anyhow::Error::new(e).context("starting the engine"),
    })?;
    if let Some(config) = &config {
        config.apply_tables(&engine)?;
    }
    restore_logged(&engine)?;
    log_replays(&engine);
    let kafka = kafka::start(cli.config.as_deref(), &engine, || match &config {
        Some(config) => Ok(config.apply_derived(&engine)?),
        None => Ok(()),
    })?;
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
        data_dir = cli.data_dir.as_ref().map(|d| d.display().to_string()),
        sync = ?cli.data_dir.as_ref().map(|_| sync),
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
    // The last cycle applies and logs every staged row, then the engine's shutdown flushes
    // and fsyncs every durable table's log and joins the log writer before it returns.
    engine.shutdown();
    server.shutdown();
    check_logs(&handle)?;
    tracing::info!(step = handle.step().as_u64(), "stopped");
    Ok(())
}
