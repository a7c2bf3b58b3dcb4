//! The workloads, and running producer threads together.

mod batches;
mod durable;
mod flight;
mod flight_server;
mod latency;
mod row_memory;
mod rows;

pub(crate) use row_memory::CHILD as W12_CHILD;

use std::sync::Barrier;
use std::time::Instant;

use anyhow::{anyhow, Result};

use crate::args::{Run, Workload};
use crate::report::Report;

/// Runs one workload and reports it (W10: one report per part).
pub(crate) fn run(run: &Run) -> Result<Vec<Report>> {
    match run.workload {
        Workload::W1 | Workload::W2 => rows::run(run).map(|r| vec![r]),
        Workload::W3 | Workload::W4 | Workload::W6 | Workload::W7 | Workload::W8 => {
            batches::run(run).map(|r| vec![r])
        }
        Workload::W5 => latency::run(run).map(|r| vec![r]),
        Workload::W9 => durable::run(run),
        Workload::W10 => flight::run(run),
        Workload::W12 => row_memory::run(run).map(|r| vec![r]),
    }
}

/// Rows `[k * n / parts, (k + 1) * n / parts)` of part `k`.
pub(crate) fn share(n: u64, parts: usize, k: usize) -> std::ops::Range<u64> {
    let parts = parts as u64;
    let k = k as u64;
    k * n / parts..(k + 1) * n / parts
}

/// Runs `work` on one thread per item, all released at once; returns when they were released
/// and when the last one finished.
///
/// # Errors
///
/// The first producer error, or a panic turned into an error.
pub(crate) fn produce<T, F>(items: Vec<T>, work: F) -> Result<(Instant, Instant)>
where
    T: Send,
    F: Fn(T) -> Result<()> + Sync,
{
    let barrier = Barrier::new(items.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || {
                    barrier.wait();
                    work(item)?;
                    Ok::<_, anyhow::Error>(Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut end = start;
        for h in handles {
            let done = h
                .join()
                .map_err(|_| anyhow!("a producer thread panicked"))??;
            end = end.max(done);
        }
        Ok((start, end))
    })
}

/// Wall-clock nanoseconds since the Unix epoch, the base of throughput runs' `Ts` values.
pub(crate) fn epoch_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
