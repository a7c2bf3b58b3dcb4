//! Measuring instruments: a listener that notes when the last row is delivered, and RSS.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use tickertable::{ListenerHandle, Table, TableUpdate};

/// How long a run may wait for its last row before it is declared stuck.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// A listener on a table that reports when position `end - 1` has been delivered.
///
/// Positions count every row ever appended to the table, including rows a ring evicts in the
/// cycle that brings them, so the condition `update.added().end >= end` also holds on a ring.
#[derive(Debug)]
pub(crate) struct Delivery {
    rx: mpsc::Receiver<Instant>,
    _listener: ListenerHandle,
}

impl Delivery {
    /// Listens on `table` for the update that delivers position `end - 1`.
    pub(crate) fn watch(table: &Table, end: u64) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let mut done = false;
        let listener = table
            .listen(move |update: &TableUpdate| {
                if !done && update.added().end >= end {
                    done = true;
                    // The receiver only goes away when the run is over.
                    let _ = tx.send(Instant::now());
                }
            })
            .context("listening on the output table")?;
        Ok(Self {
            rx,
            _listener: listener,
        })
    }

    /// Waits for the last row and returns when the listener saw it.
    pub(crate) fn wait(&self) -> Result<Instant> {
        self.rx
            .recv_timeout(DELIVERY_TIMEOUT)
            .map_err(|e| anyhow!("the last row was not delivered: {e}"))
    }
}

/// The resident set size in bytes: `/proc/self/statm`'s second field times the page size.
pub(crate) fn rss_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("/proc/self/statm has no resident field: {statm:?}"))?
        .parse()
        .context("parsing /proc/self/statm")?;
    Ok(pages * page_size())
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), or 4096 if it cannot be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
    auxv.chunks_exact(16)
        .find(|pair| word(&pair[..8]) == AT_PAGESZ)
        .map_or(4096, |pair| word(&pair[8..]))
}
