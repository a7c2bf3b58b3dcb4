//! W9: W3 (blink) and W6 (append) with the table logged, under each sync policy, and the
//! replay of what they logged.
//!
//! One report per run: the log off, `SyncPolicy::Never` and `SyncPolicy::EveryCycle`, for a
//! blink and an append table fed `--n` rows in `--batch`-row batches (rows/s visible, bytes
//! logged and MB/s to disk, fsyncs and their time). Then two replay reports: the append
//! table's `EveryCycle` log read back by a new engine on the same directory (rows/s), and a
//! keyed table of 1M keys (`Ts`, unique per row) upserted twice, so a checkpoint holds it,
//! read back from its checkpoint and the log after it. After the blink `EveryCycle` run, its
//! log read into an append table of its history (`EngineHandle::history_table`). Logs go under the system's temporary
//! directory and are deleted after each run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use tickertable::{Engine, PublisherOptions, SyncPolicy, TableKind, TablePublisher};

use crate::args::Run;
use crate::data::{self, Symbols};
use crate::probe::Delivery;
use crate::report::{round3, Report, Timing};
use crate::workload::{epoch_ns, produce};

/// Keys of the keyed replay run.
const KEYS: u64 = 1_000_000;

/// A data directory deleted when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("ticker-bench-w9-{}-{what}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs every W9 run and its replays.
pub(crate) fn run(run: &Run) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for (kind, label) in [(TableKind::Blink, "blink"), (TableKind::Append, "append")] {
        for policy in [None, Some(SyncPolicy::Never), Some(SyncPolicy::EveryCycle)] {
            let dir = Dir::new(label)?;
            let (report, replay) = logged(run, kind, label, policy, &dir)?;
            reports.push(report);
            reports.extend(replay);
        }
    }
    reports.push(keyed_replay(run)?);
    Ok(reports)
}

fn engine(run: &Run, dir: &Dir, policy: Option<SyncPolicy>) -> Result<Engine> {
    let mut builder = Engine::builder().period(run.cycle);
    if let Some(p) = policy {
        builder = builder.data_dir(&dir.0).sync_policy(p);
    }
    builder.build().context("building the engine")
}

fn options(kind: TableKind, durable: bool) -> PublisherOptions {
    let o = PublisherOptions::default().with_kind(kind);
    if durable {
        o.durable()
    } else {
        o
    }
}

/// Publishes rows `0..n` into `publisher` from one thread, fresh batches.
fn feed(run: &Run, publisher: &TablePublisher) -> Result<(Instant, Instant)> {
    let symbols = Symbols::new();
    let schema = data::schema();
    let ts0 = epoch_ns();
    produce(vec![publisher.clone()], |publisher| {
        let mut at = 0;
        while at < run.n {
            let len = usize::try_from((run.batch as u64).min(run.n - at))?;
            publisher.add(data::batch(&schema, &symbols, ts0, at, len)?)?;
            at += len as u64;
        }
        Ok(())
    })
}

/// One logged (or not) run; with `EveryCycle` on an append table, also its replay.
#[allow(clippy::cast_precision_loss)]
fn logged(
    run: &Run,
    kind: TableKind,
    label: &str,
    policy: Option<SyncPolicy>,
    dir: &Dir,
) -> Result<(Report, Option<Report>)> {
    let engine = engine(run, dir, policy)?;
    let (table, publisher) = engine
        .table_publisher("trades", data::schema(), options(kind, policy.is_some()))
        .context("creating the table")?;
    let delivery = Delivery::watch(&table, run.n)?;
    let (start, write_end) = feed(run, &publisher)?;
    let visible = delivery.wait()?;
    let timing = Timing {
        start,
        write_end,
        visible,
    };
    let sync = match policy {
        None => "log off".to_owned(),
        Some(p) => format!("{p:?}"),
    };
    let mut report = Report::new(run, &format!("{label}, {sync}"), timing, &engine);
    let stats = engine.stats();
    report.set("sync", sync);
    report.set("fsyncs", stats.log.fsyncs);
    report.set("fsync_ms", round3(stats.log.fsync_time.as_secs_f64() * 1e3));
    report.set(
        "mean_log_wait_us",
        round3(stats.total_log_wait.as_secs_f64() * 1e6 / stats.cycles.max(1) as f64),
    );
    drop(delivery);
    drop(publisher);
    let history = if kind == TableKind::Blink && policy == Some(SyncPolicy::EveryCycle) {
        Some(history(run, &engine, &table)?)
    } else {
        None
    };
    // Shutdown writes and syncs what the log writer still holds (`Never` writes behind the
    // cycles): the bytes on disk and the time until they are there.
    engine.shutdown();
    let flushed = start.elapsed().as_secs_f64();
    let bytes = dir_bytes(&dir.0)?;
    report.set("log_bytes", bytes);
    report.set("flushed_s", round3(flushed));
    report.set("mb_per_s_disk", round3(bytes as f64 / flushed / 1e6));
    let replay = if kind == TableKind::Append && policy == Some(SyncPolicy::EveryCycle) {
        Some(replay(run, dir, kind, "append log")?)
    } else {
        history
    };
    Ok((report, replay))
}

/// The blink table's logged rows read back into an append table of its history
/// (`EngineHandle::history_table`), on the engine that wrote them.
#[allow(clippy::cast_precision_loss)]
fn history(run: &Run, engine: &Engine, blink: &tickertable::Table) -> Result<Report> {
    let start = Instant::now();
    let table = engine
        .history_table("history", blink, TableKind::Append)
        .context("creating the history table")?;
    let took = start.elapsed();
    let timing = Timing {
        start,
        write_end: start + took,
        visible: start + took,
    };
    let mut report = Report::new(
        run,
        "history: blink log into an append table",
        timing,
        engine,
    );
    report.set("held_rows", table.num_rows());
    report.set("history_ms", round3(took.as_secs_f64() * 1e3));
    report.set(
        "history_rows_per_s",
        (table.num_rows() as f64 / took.as_secs_f64().max(1e-9)).round(),
    );
    Ok(report)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// A new engine on `dir` creates the table again: the replay's report.
#[allow(clippy::cast_precision_loss)]
fn replay(run: &Run, dir: &Dir, kind: TableKind, what: &str) -> Result<Report> {
    let engine = engine(run, dir, Some(SyncPolicy::Never))?;
    let key = if matches!(kind, TableKind::Keyed { .. }) {
        options(kind, true).with_key(["Ts"])
    } else {
        options(kind, true)
    };
    let start = Instant::now();
    let (table, _publisher) = engine
        .table_publisher("trades", data::schema(), key)
        .context("creating the table again")?;
    let took = start.elapsed();
    let r = engine
        .replay_report("trades")
        .ok_or_else(|| anyhow!("no replay report"))?;
    let rows = r.checkpoint_rows + r.rows;
    let timing = Timing {
        start,
        write_end: start + took,
        visible: start + took,
    };
    let mut report = Report::new(run, &format!("replay: {what}"), timing, &engine);
    report.set("held_rows", table.num_rows());
    report.set("checkpoint_rows", r.checkpoint_rows);
    report.set("logged_rows", r.rows);
    report.set("replay_ms", round3(r.duration.as_secs_f64() * 1e3));
    report.set("create_ms", round3(took.as_secs_f64() * 1e3));
    report.set(
        "replay_rows_per_s",
        (rows as f64 / r.duration.as_secs_f64().max(1e-9)).round(),
    );
    report.set("log_mb", round3(r.bytes as f64 / 1e6));
    engine.shutdown();
    Ok(report)
}

/// 1M keys upserted twice into a durable keyed table with small segments (so checkpoints
/// follow), then replayed.
fn keyed_replay(run: &Run) -> Result<Report> {
    let dir = Dir::new("keyed")?;
    let kind = TableKind::Keyed { capacity: None };
    let engine = Engine::builder()
        .manual()
        .data_dir(&dir.0)
        .sync_policy(SyncPolicy::Never)
        .log_segment_bytes(4 << 20)
        .build()
        .context("building the engine")?;
    let (table, publisher) = engine
        .table_publisher(
            "trades",
            data::schema(),
            options(kind, true).with_key(["Ts"]),
        )
        .context("creating the keyed table")?;
    let symbols = Symbols::new();
    let schema = data::schema();
    for _pass in 0..2 {
        let mut at = 0;
        while at < KEYS {
            let len = usize::try_from((run.batch as u64).min(KEYS - at))?;
            publisher.add(data::batch(&schema, &symbols, 0, at, len)?)?;
            engine.run_cycle();
            at += len as u64;
        }
    }
    // Let the checkpoint thread finish what the writes started.
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.stats().log.checkpoints == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    ensure!(
        table.num_rows() as u64 == KEYS,
        "the keyed table holds {} rows",
        table.num_rows()
    );
    drop(publisher);
    engine.shutdown();
    replay(run, &dir, kind, "1M-key keyed table")
}
