//! A Flight server's own counters: puts, rows put, refused calls by reason, live streams
//! resynchronised, and the rate samples behind `stats`' rows per second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::ErrorCode;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// A Flight server's counters since it started, from
/// [`FlightServer::stats`](crate::flight::FlightServer::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlightStats {
    /// `DoPut` calls whose batches were staged.
    pub puts: u64,
    /// Rows those calls staged.
    pub rows_put: u64,
    /// `DoPut` calls refused, by the [`ErrorCode`] they were refused with (codes never seen
    /// are left out).
    pub refused_puts: Vec<(ErrorCode, u64)>,
    /// Times a live stream's client fell behind and was resynchronised with a fresh snapshot.
    pub lagged_resyncs: u64,
    /// Live streams open now.
    pub live_streams: u64,
    /// Bytes of Flight messages sent by `DoGet` streams (snapshots and live updates), as
    /// encoded: compressed when the client asked for compression.
    pub bytes_sent: u64,
    /// Bytes of Flight messages received by `DoPut` calls, as they came over the wire.
    pub bytes_put: u64,
}

/// A cheap, cloneable handle to a Flight server's counters that outlives the server, for a
/// metrics endpoint on another thread ([`FlightServer::stats_handle`](crate::flight::FlightServer::stats_handle)).
#[derive(Debug, Clone)]
pub struct FlightStatsHandle(pub(crate) std::sync::Arc<Counters>);

impl FlightStatsHandle {
    /// The counters now.
    pub fn stats(&self) -> FlightStats {
        self.0.snapshot()
    }
}

/// The counters, shared by the service's calls. Relaxed atomics throughout: they are
/// statistics, nothing is published through them.
#[derive(Debug)]
pub(crate) struct Counters {
    puts: AtomicU64,
    rows_put: AtomicU64,
    refused: [AtomicU64; ErrorCode::ALL.len()],
    lagged: AtomicU64,
    live: AtomicU64,
    sent: AtomicU64,
    put_bytes: AtomicU64,
    /// Rate samples for `stats`. A leaf lock.
    rates: Mutex<Rates>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            puts: AtomicU64::new(0),
            rows_put: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
            lagged: AtomicU64::new(0),
            live: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            put_bytes: AtomicU64::new(0),
            rates: Mutex::new(Rates::new(Instant::now())),
        }
    }
}

impl Counters {
    pub(crate) fn put(&self, rows: u64) {
        self.puts.fetch_add(1, Ordering::Relaxed);
        self.rows_put.fetch_add(rows, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A message of `bytes` sent by a `DoGet`.
    pub(crate) fn sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `bytes` received by a `DoPut`.
    pub(crate) fn put_bytes(&self, bytes: u64) {
        self.put_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn live_opened(&self) {
        self.live.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn live_closed(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> FlightStats {
        FlightStats {
            puts: self.puts.load(Ordering::Relaxed),
            rows_put: self.rows_put.load(Ordering::Relaxed),
            refused_puts: ErrorCode::ALL
                .iter()
                .zip(&self.refused)
                .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            lagged_resyncs: self.lagged.load(Ordering::Relaxed),
            live_streams: self.live.load(Ordering::Relaxed),
            bytes_sent: self.sent.load(Ordering::Relaxed),
            bytes_put: self.put_bytes.load(Ordering::Relaxed),
        }
    }

    /// Rows per second of the counter `key` (a table's id, or `u64::MAX` for the engine)
    /// whose total is now `total`.
    pub(crate) fn rate(&self, key: u64, now: Instant, total: u64) -> f64 {
        self.rates.lock().rate(key, now, total)
    }
}

/// How long a rate sample stays the newest before it becomes the one rates are measured from.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Two samples per counter: rates are measured from the older one, which is at least
/// [`RATE_WINDOW`] old once the counter has been sampled that long. A counter's first
/// older sample is a zero at `started` (when the server started), so the first `stats`
/// reports the rate since then rather than nothing.
#[derive(Debug)]
struct Rates {
    started: Instant,
    samples: HashMap<u64, [Option<(Instant, u64)>; 2]>,
}

impl Rates {
    fn new(started: Instant) -> Self {
        Self {
            started,
            samples: HashMap::new(),
        }
    }

    fn rate(&mut self, key: u64, now: Instant, total: u64) -> f64 {
        let started = self.started;
        let s = self
            .samples
            .entry(key)
            .or_insert([Some((started, 0)), None]);
        match s[1] {
            None => s[1] = Some((now, total)),
            Some((at, _)) if now.duration_since(at) >= RATE_WINDOW => {
                s[0] = s[1];
                s[1] = Some((now, total));
            }
            Some(_) => {}
        }
        let Some((at, then)) = s[0] else { return 0.0 };
        let secs = now.duration_since(at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // a rate, not an exact count
        let rows = total.saturating_sub(then) as f64;
        rows / secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let c = Counters::default();
        c.put(10);
        c.refused(ErrorCode::Schema);
        c.refused(ErrorCode::Schema);
        let s = c.snapshot();
        assert_eq!((s.puts, s.rows_put), (1, 10));
        assert_eq!(s.refused_puts, vec![(ErrorCode::Schema, 2)]);
    }

    #[test]
    fn a_rate_is_measured_over_at_least_the_window() {
        let t0 = Instant::now();
        let mut r = Rates::new(t0);
        assert!(r.rate(1, t0, 0).abs() < f64::EPSILON, "no time has passed");
        let t1 = t0 + Duration::from_secs(2);
        assert!((r.rate(1, t1, 200) - 100.0).abs() < 1e-9);
        let t2 = t1 + Duration::from_millis(500);
        // Still measured from t0's sample, not the newer t1's.
        assert!((r.rate(1, t2, 250) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn regression_the_first_rate_is_measured_since_the_start_not_zero() {
        let t0 = Instant::now();
        let mut r = Rates::new(t0);
        let t1 = t0 + Duration::from_secs(4);
        assert!(
            (r.rate(7, t1, 400) - 100.0).abs() < 1e-9,
            "100 rows/s since t0"
        );
        // Later calls move on to samples of their own.
        let t2 = t1 + Duration::from_secs(2);
        assert!((r.rate(7, t2, 600) - 100.0).abs() < 1e-9);
        let t3 = t2 + Duration::from_secs(1);
        assert!(
            (r.rate(7, t3, 1600) - 1000.0).abs() < 1e-9,
            "from t2's sample"
        );
    }
}
