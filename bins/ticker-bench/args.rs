//! Command-line flags and the list of runs they select.

use std::fmt;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Runs the tickertable benchmark workloads (DESIGN §7) and prints one JSON line per run.
#[derive(Debug, Parser)]
#[command(name = "ticker-bench", version)]
pub(crate) struct Args {
    /// Which workload to run.
    #[arg(long, value_enum, ignore_case = true, default_value = "all")]
    workload: Choice,
    /// Rows per run [default: W1/W2 20M, W3/W4/W7/W8 50M, W6 20M, W9 20M per run, W10 20M per part, a quarter of
    /// it for the fan-out]; W5 ignores it (it writes duration / period rows).
    #[arg(long)]
    n: Option<u64>,
    /// Rows per published batch (W3, W4, W6).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// The ring table's capacity (W4).
    #[arg(long, default_value_t = 100_000)]
    ring: usize,
    /// Cycle period in ms [default: 100; under `all`, W5 runs at both 10 and 100].
    #[arg(long)]
    cycle_ms: Option<u64>,
    /// How long W5 writes [default: 10000; 2500 per W5 run under `all`].
    #[arg(long)]
    duration_ms: Option<u64>,
    /// W5: one row every this many microseconds.
    #[arg(long, default_value_t = 1_000)]
    period_us: u64,
    /// W5: also start a cycle as soon as a row is staged (`Builder::low_latency`) [under
    /// `all`, W5 runs both with and without].
    #[arg(long)]
    low_latency: bool,
    /// The low-latency option's minimum gap between cycle starts, in microseconds.
    #[arg(long, default_value_t = 100)]
    min_gap_us: u64,
    /// Producer threads [default: 2 for W2, 1 otherwise].
    #[arg(long)]
    threads: Option<usize>,
    /// W10: which parts to run [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',')]
    part: Vec<Part>,
}

/// One part of W10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Part {
    /// One live subscriber.
    Live,
    /// `DoPut` from 1 and 4 clients.
    Put,
    /// 32 live subscribers.
    Fanout,
    /// pyarrow reading the live stream.
    Pyarrow,
    /// A snapshot `DoGet` of an `--n`-row append table (this crate's client and pyarrow).
    Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Choice {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    W7,
    W8,
    W9,
    W10,
    W12,
    All,
}

/// One workload of DESIGN §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    W1,
    W2,
    W3,
    W4,
    W5,
    W6,
    W7,
    W8,
    W9,
    W10,
    W12,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One run with every parameter resolved.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) workload: Workload,
    /// Rows to write.
    pub(crate) n: u64,
    /// Rows per batch (1 for row-at-a-time workloads).
    pub(crate) batch: usize,
    pub(crate) ring: usize,
    pub(crate) cycle: Duration,
    pub(crate) threads: usize,
    /// W5: time between two rows.
    pub(crate) period: Duration,
    /// W5: the low-latency option's minimum gap, if on.
    pub(crate) low_latency: Option<Duration>,
    /// W10: the parts to run.
    pub(crate) parts: Vec<Part>,
}

impl Args {
    /// The runs the flags select, in order.
    pub(crate) fn plan(&self) -> Vec<Run> {
        let all = self.workload == Choice::All;
        let list: Vec<Workload> = match self.workload {
            // W6 first: its RSS baseline must not contain memory kept from other runs.
            Choice::All => vec![
                Workload::W12,
                Workload::W6,
                Workload::W1,
                Workload::W2,
                Workload::W3,
                Workload::W4,
                Workload::W5,
                Workload::W7,
                Workload::W8,
                Workload::W9,
                Workload::W10,
            ],
            Choice::W1 => vec![Workload::W1],
            Choice::W2 => vec![Workload::W2],
            Choice::W3 => vec![Workload::W3],
            Choice::W4 => vec![Workload::W4],
            Choice::W5 => vec![Workload::W5],
            Choice::W6 => vec![Workload::W6],
            Choice::W7 => vec![Workload::W7],
            Choice::W8 => vec![Workload::W8],
            Choice::W9 => vec![Workload::W9],
            Choice::W10 => vec![Workload::W10],
            Choice::W12 => vec![Workload::W12],
        };
        let mut runs = Vec::new();
        for w in list {
            if w == Workload::W5 {
                runs.extend(self.latency_runs(all));
            } else if w == Workload::W12 {
                runs.extend(self.row_memory_runs());
            } else {
                runs.push(self.throughput_run(w));
            }
        }
        runs
    }

    fn throughput_run(&self, workload: Workload) -> Run {
        let (n, threads) = match workload {
            Workload::W2 => (20_000_000, 2),
            Workload::W3 | Workload::W4 | Workload::W7 | Workload::W8 => (50_000_000, 1),
            _ => (20_000_000, 1),
        };
        let batch = match workload {
            Workload::W1 | Workload::W2 => 1,
            _ => self.batch.max(1),
        };
        Run {
            workload,
            n: self.n.unwrap_or(n),
            batch,
            ring: self.ring,
            cycle: Duration::from_millis(self.cycle_ms.unwrap_or(100).max(1)),
            threads: self.threads.unwrap_or(threads).max(1),
            period: Duration::ZERO,
            low_latency: None,
            parts: self.parts(),
        }
    }

    fn parts(&self) -> Vec<Part> {
        if self.part.is_empty() {
            Part::value_variants().to_vec()
        } else {
            self.part.clone()
        }
    }

    /// W12 at 1, 100 and 10,000 rows per cycle (or `--batch` rows per cycle if given), 1M
    /// rows each unless `--n` says.
    fn row_memory_runs(&self) -> Vec<Run> {
        let child = std::env::var_os(crate::workload::W12_CHILD).is_some();
        let shapes: Vec<(usize, u64)> = if self.batch == 10_000 && !child {
            vec![(1, 1_000_000), (100, 1_000_000), (10_000, 1_000_000)]
        } else {
            vec![(self.batch.max(1), 1_000_000)]
        };
        shapes
            .into_iter()
            .map(|(batch, n)| Run {
                workload: Workload::W12,
                n: self.n.unwrap_or(n),
                batch,
                ring: self.ring,
                cycle: Duration::ZERO,
                threads: 1,
                period: Duration::ZERO,
                low_latency: None,
                parts: Vec::new(),
            })
            .collect()
    }

    fn latency_runs(&self, all: bool) -> Vec<Run> {
        let cycles = match (self.cycle_ms, all) {
            (Some(ms), _) => vec![ms.max(1)],
            (None, true) => vec![10, 100],
            (None, false) => vec![100],
        };
        let gap = Duration::from_micros(self.min_gap_us);
        let lows = if all && !self.low_latency {
            vec![None, Some(gap)]
        } else if self.low_latency {
            vec![Some(gap)]
        } else {
            vec![None]
        };
        let default_ms = if all { 2_500 } else { 10_000 };
        let duration = Duration::from_millis(self.duration_ms.unwrap_or(default_ms));
        let period = Duration::from_micros(self.period_us.max(1));
        let rows = duration.as_micros() / period.as_micros();
        let n = u64::try_from(rows).unwrap_or(u64::MAX).max(1);
        let mut runs = Vec::new();
        for &ms in &cycles {
            for &low_latency in &lows {
                runs.push(Run {
                    workload: Workload::W5,
                    n,
                    batch: 1,
                    ring: self.ring,
                    cycle: Duration::from_millis(ms),
                    threads: 1,
                    period,
                    low_latency,
                    parts: Vec::new(),
                });
            }
        }
        runs
    }
}
