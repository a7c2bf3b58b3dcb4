//! One run's results, printed as one JSON line.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tickertable::EngineHandle;

use crate::args::Run;

/// One run's results: the fields every run has, then workload-specific ones.
#[derive(Debug)]
pub(crate) struct Report {
    fields: Map<String, Value>,
}

/// When a throughput run started, finished writing and saw its last row delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) start: Instant,
    pub(crate) write_end: Instant,
    pub(crate) visible: Instant,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[allow(clippy::cast_precision_loss)]
fn rate(rows: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        (rows as f64 / d.as_secs_f64()).round()
    }
}

/// Rounds to 3 decimals, enough for milliseconds and microseconds.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    /// The common fields: workload, sizes, cycle period, rates and durations, cycle stats.
    ///
    /// `duration_s` runs from the producers' start to the last row's delivery;
    /// `rows_per_s_visible = n / duration_s` and `rows_per_s_write = n / write_s`.
    pub(crate) fn new(run: &Run, kind: &str, timing: Timing, engine: &EngineHandle) -> Self {
        let write = timing.write_end - timing.start;
        let visible = timing.visible - timing.start;
        let lag = timing.visible.saturating_duration_since(timing.write_end);
        let stats = engine.stats();
        let mut fields = Map::new();
        let mut put = |k: &str, v: Value| {
            fields.insert(k.to_owned(), v);
        };
        put("workload", run.workload.to_string().into());
        put("table", kind.into());
        put("n", run.n.into());
        put("batch", run.batch.into());
        put("threads", run.threads.into());
        put("cycle_ms", round3(secs(run.cycle) * 1e3).into());
        put("rows_per_s_write", rate(run.n, write).into());
        put("rows_per_s_visible", rate(run.n, visible).into());
        put("duration_s", round3(secs(visible)).into());
        put("write_s", round3(secs(write)).into());
        put("last_row_lag_ms", round3(secs(lag) * 1e3).into());
        put("cycles", stats.cycles.into());
        put(
            "mean_cycle_us",
            round3(secs(stats.mean_cycle_time()) * 1e6).into(),
        );
        put(
            "max_cycle_ms",
            round3(secs(stats.max_cycle_time) * 1e3).into(),
        );
        Self { fields }
    }

    /// A report with only the run's parameters, for runs measured elsewhere (W10's parts).
    pub(crate) fn bare(run: &Run, kind: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("workload".into(), run.workload.to_string().into());
        fields.insert("table".into(), kind.into());
        fields.insert("n".into(), run.n.into());
        fields.insert("batch".into(), run.batch.into());
        fields.insert("cycle_ms".into(), round3(secs(run.cycle) * 1e3).into());
        Self { fields }
    }

    /// Adds a workload-specific field.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.insert(key.to_owned(), value.into());
    }

    /// A report printed by [`to_json`](Self::to_json) (another process's).
    pub(crate) fn from_json(line: &str) -> anyhow::Result<Self> {
        match serde_json::from_str(line)? {
            Value::Object(fields) => Ok(Self { fields }),
            other => anyhow::bail!("not a report: {other}"),
        }
    }

    /// The report as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }
}
