//! `--metrics HOST:PORT`: the engine's and the Flight server's statistics in the Prometheus
//! text format (version 0.0.4) at `GET /metrics`, served by one plain thread.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `tickertable_cycle_duration_seconds` | histogram | time each cycle held the global lock |
//! | `tickertable_cycles_total` | counter | cycles run |
//! | `tickertable_step` | gauge | the engine's step |
//! | `tickertable_period_seconds` | gauge | the target cycle period |
//! | `tickertable_table_rows{table}` | gauge | rows visible |
//! | `tickertable_table_rows_in_total{table}` | counter | rows added or upserted |
//! | `tickertable_table_rows_out_total{table}` | counter | rows removed (retention, deletes, blink) |
//! | `tickertable_table_rows_dropped_total{table}` | counter | rows an append limit refused |
//! | `tickertable_table_staged_rows{table}` | gauge | rows staged for the next cycle |
//! | `tickertable_table_subscribers{table}` | gauge | subscriptions (Flight live streams included) |
//! | `tickertable_lagged_resyncs_total` | counter | live streams resynchronised after falling behind |
//! | `tickertable_refused_writes_total{reason}` | counter | `DoPut`s refused, by error code |
//! | `tickertable_puts_total`, `tickertable_rows_put_total` | counter | `DoPut`s and their rows staged |
//! | `tickertable_live_streams` | gauge | live streams open |
//! | `tickertable_bytes_sent_total`, `tickertable_bytes_put_total` | counter | Flight message bytes sent by `DoGet` streams (compressed if asked) and received by `DoPut`s |
//! | `tickertable_log_bytes_total` | counter | bytes written to durable tables' logs |
//! | `tickertable_log_fsyncs_total`, `tickertable_log_fsync_seconds_total` | counter | fsyncs of log segments and their time |
//! | `tickertable_log_replay_seconds`, `tickertable_log_replayed_rows` | gauge | replaying durable tables at their creation (at start) |
//! | `tickertable_table_log_bytes_total{table}` | counter | a durable table's log bytes |
//! | `tickertable_table_log_fsyncs_total{table}`, `tickertable_table_log_fsync_seconds_total{table}` | counter | its fsyncs and their time |
//! | `tickertable_table_log_replay_seconds{table}`, `tickertable_table_log_replayed_rows{table}` | gauge | its replay when it was created |
//!
//! The log metrics are zero without `--data-dir`; the per-table ones list durable tables
//! only.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tickertable::flight::FlightStats;
use tickertable::{EngineHandle, TableLogStats, TableStats, CYCLE_BUCKETS};

/// `value` as a label value: backslash, quote and line feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One per-table metric: name, type, help, and its value in a table's statistics.
type TableMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TableStats) -> u64,
);

/// One per-table log metric: name, type, help, and its value in a durable table's log
/// statistics.
type TableLogMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TableLogStats) -> f64,
);

/// The metrics text for `engine` and its Flight server's `flight` counters.
pub(crate) fn render(engine: &EngineHandle, flight: &FlightStats) -> String {
    let mut out = String::new();
    render_engine(&mut out, engine);
    render_tables(&mut out, engine);
    render_log(&mut out, engine);
    render_flight(&mut out, flight);
    out
}

fn render_engine(out: &mut String, engine: &EngineHandle) {
    let stats = engine.stats();
    let name = "tickertable_cycle_duration_seconds";
    head(
        out,
        name,
        "histogram",
        "Time each cycle held the global lock.",
    );
    let mut cumulative = 0;
    for (bound, n) in CYCLE_BUCKETS.iter().zip(&stats.cycle_histogram) {
        cumulative += n;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            bound.as_secs_f64()
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", stats.cycles);
    let _ = writeln!(out, "{name}_sum {}", stats.total_cycle_time.as_secs_f64());
    let _ = writeln!(out, "{name}_count {}", stats.cycles);
    head(out, "tickertable_cycles_total", "counter", "Cycles run.");
    let _ = writeln!(out, "tickertable_cycles_total {}", stats.cycles);
    head(out, "tickertable_step", "gauge", "The engine's step.");
    let _ = writeln!(out, "tickertable_step {}", engine.step().as_u64());
    head(
        out,
        "tickertable_period_seconds",
        "gauge",
        "The target cycle period.",
    );
    let _ = writeln!(
        out,
        "tickertable_period_seconds {}",
        engine.period().as_secs_f64()
    );
}

// Counters past 2^53 lose precision as f64: Prometheus values are f64 anyway.
#[allow(clippy::cast_precision_loss)]
fn render_log(out: &mut String, engine: &EngineHandle) {
    let log = engine.stats().log;
    let totals: [(&str, &str, &str, f64); 5] = [
        (
            "tickertable_log_bytes_total",
            "counter",
            "Bytes written to durable tables' logs.",
            log.bytes as f64,
        ),
        (
            "tickertable_log_fsyncs_total",
            "counter",
            "Fsyncs of durable tables' log segments.",
            log.fsyncs as f64,
        ),
        (
            "tickertable_log_fsync_seconds_total",
            "counter",
            "Time spent in fsyncs of log segments.",
            log.fsync_time.as_secs_f64(),
        ),
        (
            "tickertable_log_replay_seconds",
            "gauge",
            "Time spent replaying durable tables when they were created.",
            log.replay_time.as_secs_f64(),
        ),
        (
            "tickertable_log_replayed_rows",
            "gauge",
            "Rows durable tables replayed when they were created.",
            log.replayed_rows as f64,
        ),
    ];
    for (name, kind, help, value) in totals {
        head(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    let tables: Vec<_> = engine
        .tables()
        .into_iter()
        .filter_map(|t| Some((label(t.name()), engine.table_stats(&t).log?)))
        .collect();
    let per_table: [TableLogMetric; 5] = [
        (
            "tickertable_table_log_bytes_total",
            "counter",
            "Bytes written to the table's log.",
            |l| l.bytes as f64,
        ),
        (
            "tickertable_table_log_fsyncs_total",
            "counter",
            "Fsyncs of the table's log segments.",
            |l| l.fsyncs as f64,
        ),
        (
            "tickertable_table_log_fsync_seconds_total",
            "counter",
            "Time spent in fsyncs of the table's log.",
            |l| l.fsync_time.as_secs_f64(),
        ),
        (
            "tickertable_table_log_replay_seconds",
            "gauge",
            "Time the table's replay took when it was created.",
            |l| l.replay_time.as_secs_f64(),
        ),
        (
            "tickertable_table_log_replayed_rows",
            "gauge",
            "Rows the table replayed when it was created.",
            |l| l.replayed_rows as f64,
        ),
    ];
    for (name, kind, help, value) in per_table {
        head(out, name, kind, help);
        for (table, l) in &tables {
            let _ = writeln!(out, "{name}{{table=\"{table}\"}} {}", value(l));
        }
    }
}

fn render_tables(out: &mut String, engine: &EngineHandle) {
    let tables: Vec<_> = engine
        .tables()
        .into_iter()
        .map(|t| {
            let s = engine.table_stats(&t);
            (label(t.name()), s)
        })
        .collect();
    let per_table: [TableMetric; 6] = [
        ("tickertable_table_rows", "gauge", "Rows visible.", |s| {
            s.rows as u64
        }),
        (
            "tickertable_table_rows_in_total",
            "counter",
            "Rows added or upserted.",
            |s| s.rows_added + s.rows_modified,
        ),
        (
            "tickertable_table_rows_out_total",
            "counter",
            "Rows removed by retention, deletes or a blink table emptying.",
            |s| s.rows_removed,
        ),
        (
            "tickertable_table_rows_dropped_total",
            "counter",
            "Rows an append table's limit refused.",
            |s| s.rows_dropped,
        ),
        (
            "tickertable_table_staged_rows",
            "gauge",
            "Rows staged for the next cycle.",
            |s| s.staged_rows as u64,
        ),
        (
            "tickertable_table_subscribers",
            "gauge",
            "Subscriptions, Flight live streams included.",
            |s| s.subscriptions as u64,
        ),
    ];
    for (name, kind, help, value) in per_table {
        head(out, name, kind, help);
        for (table, s) in &tables {
            let _ = writeln!(out, "{name}{{table=\"{table}\"}} {}", value(s));
        }
    }
}

fn render_flight(out: &mut String, flight: &FlightStats) {
    stat(
        out,
        "tickertable_lagged_resyncs_total",
        "counter",
        "Live streams resynchronised with a fresh snapshot after falling behind.",
        flight.lagged_resyncs,
    );
    head(
        out,
        "tickertable_refused_writes_total",
        "counter",
        "DoPut calls refused, by error code.",
    );
    for (code, n) in &flight.refused_puts {
        let _ = writeln!(
            out,
            "tickertable_refused_writes_total{{reason=\"{}\"}} {n}",
            code.as_str()
        );
    }
    for (name, kind, help, value) in [
        (
            "tickertable_puts_total",
            "counter",
            "DoPut calls staged.",
            flight.puts,
        ),
        (
            "tickertable_rows_put_total",
            "counter",
            "Rows staged by DoPut calls.",
            flight.rows_put,
        ),
        (
            "tickertable_live_streams",
            "gauge",
            "Live streams open.",
            flight.live_streams,
        ),
        (
            "tickertable_bytes_sent_total",
            "counter",
            "Bytes of Flight messages DoGet streams sent (compressed if asked).",
            flight.bytes_sent,
        ),
        (
            "tickertable_bytes_put_total",
            "counter",
            "Bytes of Flight messages DoPut calls received.",
            flight.bytes_put,
        ),
    ] {
        stat(out, name, kind, help, value);
    }
}

/// One unlabelled metric: its header and its value.
fn stat(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Answers one connection: `GET /metrics` (or `/`) with `body()`, anything else 404.
fn answer(stream: TcpStream, body: &dyn Fn() -> String) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers, up to the blank line; nothing in them matters here.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = reader.into_inner();
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, content_type, text) =
        if request.starts_with("GET ") && matches!(path, "/metrics" | "/") {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body())
        } else {
            (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "metrics are at GET /metrics\n".to_owned(),
            )
        };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

/// Serves `body()` on `listener` until the process exits, one connection at a time.
pub(crate) fn serve(listener: &TcpListener, body: impl Fn() -> String) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                if let Err(error) = answer(stream, &body) {
                    tracing::debug!(%error, "metrics: a request failed");
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: accept failed"),
        }
    }
}
