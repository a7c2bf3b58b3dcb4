//! `ticker-view`: a terminal UI over live tickertable tables.
//!
//! ```text
//! cargo run --release --bin ticker-view -- --demo
//! cargo run --release --bin ticker-view -- --demo --rate 1000000
//! cargo run --release --bin ticker-demo -- --listen 127.0.0.1:8815   # in another terminal
//! cargo run --release --bin ticker-view -- grpc://127.0.0.1:8815
//! ```
//!
//! `--demo` runs an engine in this process fed by the demo producers of `ticker-demo` (trades,
//! quotes, a ring of recent trades and a trade history). `ticker-view grpc://host:port` shows
//! a served engine over Arrow Flight (`--token-file` or `TICKERTABLE_TOKEN` if it wants a
//! token; `grpc+tls://host:port --tls-ca ca.pem` over TLS): the same screens, a status line
//! that says when the connection is lost, and reconnection with backoff. Both
//! are a `source::DataSource`; the network runs on the tokio runtime's worker threads and the
//! UI only reads what it left behind.
//!
//! The loop (`run`) is Elm-ish: `event.rs` merges the terminal, the tables' streams and two
//! timers into [`event::Event`]s, keys map to [`action::Action`]s in `App::map_key`,
//! `App::update` changes the state, and `view::render` draws it on the frame tick when
//! something changed. The UI never takes the engine's lock: it reads subscription updates and
//! lock-free statistics.

// Rates, positions and chart coordinates are f64 arithmetic on counts far below 2^52.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]

mod action;
mod app;
mod cells;
mod event;
mod filter;
mod source;
mod stats;
mod table_state;
#[cfg(test)]
mod testing;
mod theme;
mod tui;
mod view;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tickertable::Engine;

use action::Action;
use app::App;
use event::{Event, Events};
use source::{DataSource, Embedded};
use tickertable_tools::demo::{Demo, DemoArgs};
use tickertable_tools::flight_args::ClientArgs;

/// A terminal UI over live tickertable tables.
#[derive(Debug, Parser)]
#[command(name = "ticker-view", version, about)]
struct Cli {
    /// Run an embedded engine fed by the demo producers (what `ticker-demo` runs).
    #[arg(long)]
    demo: bool,
    /// A served engine to connect to: `grpc://host:port`, or `grpc+tls://host:port` with
    /// --tls-ca (see `ticker-demo --listen`).
    url: Option<String>,
    /// The token and TLS the served engine wants.
    #[command(flatten)]
    security: ClientArgs,
    /// Frames per second at most (a frame is drawn only when something changed).
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Data ticks per second: status polls, rates, sparklines.
    #[arg(long, default_value_t = 10.0)]
    tick_rate: f64,
    #[command(flatten)]
    demo_args: DemoArgs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let tick = period("--tick-rate", cli.tick_rate)?;
    let frame = period("--fps", cli.fps)?;
    match (&cli.url, cli.demo) {
        (Some(_), true) => bail!("give either --demo or a URL, not both"),
        (Some(url), false) => remote(url, &cli.security, tick, frame),
        (None, true) => demo(&cli, tick, frame),
        (None, false) => bail!(
            "nothing to view: run `ticker-view grpc://host:port` for a served engine, or \
             `ticker-view --demo` for an embedded engine with demo producers"
        ),
    }
}

/// Views a served engine.
fn remote(url: &str, security: &ClientArgs, tick: Duration, frame: Duration) -> Result<()> {
    let tls = security.tls()?;
    let secure = url.starts_with("grpc+tls://") || url.starts_with("https://");
    if secure && tls.is_none() {
        bail!("{url} is TLS: give the CA that signed the server's certificate with --tls-ca");
    }
    // The network on two worker threads; the UI loop on this one (`block_on`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ticker-view-net")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let options = source::remote::RemoteOptions {
        token: security.token()?,
        tls,
        ..source::remote::RemoteOptions::default()
    };
    let source = {
        let _entered = runtime.enter();
        source::remote::Remote::start(url, options)?
    };
    let ran = runtime.block_on(run(source, tick, frame));
    runtime.shutdown_background();
    ran
}

/// Runs the demo producers into an engine in this process and views it.
fn demo(cli: &Cli, tick: Duration, frame: Duration) -> Result<()> {
    let engine = Engine::builder()
        .period(cli.demo_args.period())
        .build()
        .context("starting the engine")?;
    let mut demo = Demo::start(&engine.handle(), &cli.demo_args)?;
    let source = Embedded::new(engine.handle(), "embedded demo engine");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let ran = runtime.block_on(run(source, tick, frame));
    let stopped = demo.stop();
    let handle = engine.handle();
    engine.shutdown();
    ran?;
    println!("{}", demo.summary(&handle.stats()));
    stopped
}

fn period(flag: &str, per_second: f64) -> Result<Duration> {
    if !(per_second > 0.0 && per_second <= 1000.0) {
        bail!("{flag} must be in (0, 1000], got {per_second}");
    }
    Ok(Duration::from_secs_f64(1.0 / per_second))
}

/// The event loop: until the App quits.
async fn run(mut source: impl DataSource, tick: Duration, frame: Duration) -> Result<()> {
    // A remote source may list nothing yet: tables join on the data tick (`adopt_tables`).
    let infos = source.tables();
    let streams = (0..infos.len())
        .map(|i| source.subscribe(i))
        .collect::<Result<Vec<_>>>()?;
    let mut tui = tui::Tui::new()?;
    let size = tui.terminal.size().context("reading the terminal size")?;
    let mut app = App::new(
        source.describe(),
        infos,
        (size.width, size.height),
        Instant::now(),
    );
    let mut events = Events::new(streams, tick, frame);
    while !app.quit {
        let action = match events.next().await? {
            Event::Key(k) => app.map_key(k),
            Event::Resize(w, h) => {
                tui.terminal.autoresize().context("resizing")?;
                Some(Action::Resize(w, h))
            }
            Event::Tick => {
                adopt_tables(&source, &mut app, &mut events)?;
                Some(Action::Tick {
                    at: Instant::now(),
                    status: source.status(),
                })
            }
            Event::Update(table, Some(event)) => Some(Action::Data {
                table,
                event,
                at: Instant::now(),
            }),
            Event::Update(table, None) => Some(Action::Ended { table }),
            Event::Quit => Some(Action::Quit),
            Event::Render => {
                if app.needs_redraw() {
                    app.prepare(Instant::now());
                    tui.terminal
                        .draw(|f| view::render(&app, f))
                        .context("drawing")?;
                    app.drawn();
                }
                None
            }
        };
        if let Some(a) = action {
            app.update(a);
        }
    }
    Ok(())
}

/// Adds the tables the source listed since the App last looked, and their streams.
fn adopt_tables(source: &impl DataSource, app: &mut App, events: &mut Events) -> Result<()> {
    let known = app.tables.len();
    let tables = source.tables();
    for (index, info) in tables.into_iter().enumerate().skip(known) {
        events.add(index, source.subscribe(index)?);
        app.update(Action::AddTable(info));
    }
    Ok(())
}
