//! Where parsed batches go: a [`TablePublisher`] of an embedded engine, or a served table
//! through Flight `DoPut`s.
//!
//! Batches arrive in file order and are published in that order: an embedded load `add`s
//! each batch (one batch lands whole in one cycle; into a keyed table it upserts, so the last
//! line of a key wins); a served load groups batches into `DoPut`s of about `--put-bytes`
//! (16 MiB: far below the server's 64 MiB limit per message, which applies to each batch;
//! at most [`PUT_BATCHES`] batches), one at a time, on its own thread, so parsing goes on
//! while a `DoPut` is on the wire.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use tickertable::flight::{Client, RemoteTable};
use tickertable::{Error, TablePublisher};

/// At most this many batches per `DoPut`.
const PUT_BATCHES: usize = 64;
/// Ranges parsed and queued for the `DoPut` thread, at most.
const PUT_QUEUE: usize = 8;
/// Transient failures (`ResourceExhausted`, `Unavailable`) retried before giving up, with
/// exponential backoff from [`RETRY_BASE`] up to [`RETRY_MAX`] between tries.
const RETRIES: u32 = 30;
const RETRY_BASE: Duration = Duration::from_millis(20);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// What a sink did.
#[derive(Debug, Default)]
pub(crate) struct SinkReport {
    /// Rows accepted.
    pub(crate) written: u64,
    /// Rows handed to the sink but not accepted.
    pub(crate) not_written: u64,
    /// Why the sink stopped, if it did.
    pub(crate) error: Option<String>,
    /// Time spent publishing (in `add`, or in `DoPut` calls and their retries).
    pub(crate) publish_time: Duration,
    /// `DoPut` calls made, and transient failures retried.
    pub(crate) puts: u64,
    pub(crate) retries: u64,
}

/// A destination for batches, in order.
#[derive(Debug)]
pub(crate) enum Sink {
    Embedded {
        publisher: TablePublisher,
        report: SinkReport,
    },
    Served {
        tx: Option<SyncSender<Vec<RecordBatch>>>,
        sender: Option<JoinHandle<SinkReport>>,
        /// Rows refused here once the sender stopped.
        refused: u64,
    },
}

impl Sink {
    /// A sink into an embedded table.
    pub(crate) fn embedded(publisher: TablePublisher) -> Self {
        Sink::Embedded {
            publisher,
            report: SinkReport::default(),
        }
    }

    /// A sink into the served table `table`, with a connected `client` and its runtime; the
    /// `DoPut`s run on a thread of their own.
    ///
    /// # Errors
    ///
    /// If the thread cannot start.
    pub(crate) fn served(
        runtime: tokio::runtime::Runtime,
        client: Client,
        table: RemoteTable,
        put_bytes: usize,
    ) -> Result<Self> {
        // A few ranges' batches ahead of the `DoPut` being filled: enough to keep the wire
        // busy, few enough that a slow server holds the parsers back soon (see `load.rs`).
        let (tx, rx) = mpsc::sync_channel(PUT_QUEUE);
        let sender = std::thread::Builder::new()
            .name("ticker-load-put".into())
            .spawn(move || send_loop(&runtime, client, &table.name, &rx, put_bytes))
            .context("starting the DoPut thread")?;
        Ok(Sink::Served {
            tx: Some(tx),
            sender: Some(sender),
            refused: 0,
        })
    }

    /// Publishes `batches` after every batch before them. `false` once the sink has stopped
    /// (an error it will report): then it takes nothing more and counts what it is given as
    /// not written.
    pub(crate) fn publish(&mut self, batches: Vec<RecordBatch>) -> bool {
        match self {
            Sink::Embedded { publisher, report } => {
                if report.error.is_some() {
                    report.not_written += rows(&batches);
                    return false;
                }
                let started = Instant::now();
                let mut batches = batches.into_iter();
                while let Some(batch) = batches.next() {
                    let n = batch.num_rows() as u64;
                    if let Err(e) = publisher.add(batch) {
                        report.error = Some(e.to_string());
                        report.not_written += n + batches.map(|b| b.num_rows() as u64).sum::<u64>();
                        break;
                    }
                    report.written += n;
                }
                report.publish_time += started.elapsed();
                report.error.is_none()
            }
            Sink::Served { tx, refused, .. } => {
                let n = rows(&batches);
                if let Some(Ok(())) = tx.as_ref().map(|tx| tx.send(batches)) {
                    true
                } else {
                    // The sender has stopped: it says why when joined.
                    *tx = None;
                    *refused += n;
                    false
                }
            }
        }
    }

    /// Waits for every batch to be published and says how it went.
    pub(crate) fn finish(self) -> SinkReport {
        match self {
            Sink::Embedded { report, .. } => report,
            Sink::Served {
                tx,
                sender,
                refused,
            } => {
                drop(tx);
                let mut report = match sender.map(JoinHandle::join) {
                    Some(Ok(report)) => report,
                    Some(Err(_)) => SinkReport {
                        error: Some("the DoPut thread panicked".into()),
                        ..SinkReport::default()
                    },
                    None => SinkReport::default(),
                };
                report.not_written += refused;
                report
            }
        }
    }
}

fn rows(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// The `DoPut` thread: groups batches into puts and sends them in order until the channel
/// closes or a put fails for good (then it stops taking batches: the channel closes).
fn send_loop(
    runtime: &tokio::runtime::Runtime,
    mut client: Client,
    table: &str,
    rx: &Receiver<Vec<RecordBatch>>,
    put_bytes: usize,
) -> SinkReport {
    let mut report = SinkReport::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut bytes = 0;
    loop {
        let next = rx.recv();
        let done = next.is_err();
        for batch in next.into_iter().flatten() {
            bytes += batch.get_array_memory_size();
            group.push(batch);
        }
        if group.is_empty() || (!done && bytes < put_bytes && group.len() < PUT_BATCHES) {
            if done {
                return report;
            }
            continue;
        }
        let put = std::mem::take(&mut group);
        bytes = 0;
        let n = rows(&put);
        let started = Instant::now();
        let sent = runtime.block_on(put_with_retry(
            &mut client,
            table,
            put,
            &mut report,
            &mut seed,
        ));
        report.publish_time += started.elapsed();
        match sent {
            Ok(()) => report.written += n,
            Err(e) => {
                report.not_written += n;
                report.error = Some(e.to_string());
                return report;
            }
        }
        if done {
            return report;
        }
    }
}

/// One `DoPut`, retried with backoff and jitter while the server is full or unreachable.
async fn put_with_retry(
    client: &mut Client,
    table: &str,
    put: Vec<RecordBatch>,
    report: &mut SinkReport,
    seed: &mut u64,
) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        report.puts += 1;
        match client.publish(table, put.clone()).await {
            Ok(_) => return Ok(()),
            Err(Error::Remote { kind, .. }) if kind.is_transient() && attempt < RETRIES => {
                report.retries += 1;
                tokio::time::sleep(backoff(attempt, seed)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The delay before retry `attempt`: exponential, capped, with jitter in `[d / 2, d]` so
/// several loaders do not retry in step.
fn backoff(attempt: u32, seed: &mut u64) -> Duration {
    let delay = RETRY_BASE
        .saturating_mul(1 << attempt.min(16))
        .min(RETRY_MAX);
    // xorshift64
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let frac = f64::from(u32::try_from(*seed >> 40).unwrap_or(0)) / f64::from(1u32 << 24);
    delay.mul_f64(0.5 + frac / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut seed = 1;
        let first = backoff(0, &mut seed);
        assert!(first >= RETRY_BASE / 2 && first <= RETRY_BASE);
        for attempt in 0..40 {
            assert!(backoff(attempt, &mut seed) <= RETRY_MAX);
        }
        assert!(backoff(30, &mut seed) >= RETRY_MAX / 2);
    }
}
