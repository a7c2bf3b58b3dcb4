//! Per-table activity: rows and updates per second, and the recent history a sparkline shows.
//!
//! Rates are measured over the last second of data ticks, from counters the App feeds: the
//! source's end position ("in": rows the engine took) and the rows the viewer applied
//! ("shown"). Time comes in with each tick, so tests drive it deterministically.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back rates look.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How many bars of history the sparkline keeps.
pub(crate) const SPARK_LEN: usize = 120;
/// Ticks per sparkline bar (smooths the beat between the data tick and the cycle period).
const SPARK_TICKS: u32 = 5;

/// One tick's counters.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    rows_in: u64,
    rows_shown: u64,
    updates: u64,
}

/// Counters and rates of one table (or of everything, for the status line).
#[derive(Debug, Clone, Default)]
pub(crate) struct Activity {
    samples: VecDeque<Sample>,
    /// Rows added per bar of [`SPARK_TICKS`] ticks, newest last.
    pub(crate) spark: VecDeque<u64>,
    spark_acc: u64,
    spark_ticks: u32,
    /// Rows the engine took per second.
    pub(crate) rows_in: f64,
    /// Rows the viewer applied per second.
    pub(crate) rows_shown: f64,
    /// Updates per second.
    pub(crate) updates: f64,
}

impl Activity {
    /// Records the counters at `at` and recomputes the rates.
    pub(crate) fn sample(&mut self, at: Instant, rows_in: u64, rows_shown: u64, updates: u64) {
        if let Some(last) = self.samples.back() {
            if at <= last.at {
                return;
            }
            self.spark_acc += rows_in.saturating_sub(last.rows_in);
            self.spark_ticks += 1;
            if self.spark_ticks == SPARK_TICKS {
                if self.spark.len() == SPARK_LEN {
                    self.spark.pop_front();
                }
                self.spark.push_back(self.spark_acc);
                self.spark_acc = 0;
                self.spark_ticks = 0;
            }
        }
        self.samples.push_back(Sample {
            at,
            rows_in,
            rows_shown,
            updates,
        });
        while self.samples.len() > 2 && at - self.samples[1].at >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let first = self.samples[0];
        let secs = (at - first.at).as_secs_f64();
        if secs > 0.0 {
            self.rows_in = rows_in.saturating_sub(first.rows_in) as f64 / secs;
            self.rows_shown = rows_shown.saturating_sub(first.rows_shown) as f64 / secs;
            self.updates = updates.saturating_sub(first.updates) as f64 / secs;
        }
    }
}

/// A rate as a short string: `850`, `12.5k`, `1.00M`.
pub(crate) fn fmt_rate(r: f64) -> String {
    if r < 1_000.0 {
        format!("{r:.0}")
    } else if r < 100_000.0 {
        format!("{:.1}k", r / 1e3)
    } else if r < 999_500.0 {
        format!("{:.0}k", r / 1e3)
    } else {
        format!("{:.2}M", r / 1e6)
    }
}

/// A sparkline of `values` as `width` block characters, newest on the right, scaled to the
/// largest value shown.
pub(crate) fn spark_text(values: &VecDeque<u64>, width: usize, out: &mut String) {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    out.clear();
    let skip = values.len().saturating_sub(width);
    let shown = values.iter().skip(skip);
    let max = shown.clone().copied().max().unwrap_or(0);
    for _ in values.len().min(width)..width {
        out.push(' ');
    }
    for &v in shown {
        let level = if v == 0 {
            0
        } else {
            // 1..=8 for any non-zero value.
            1 + (v.saturating_mul(7) / max) as usize
        };
        out.push(BARS[level.min(8)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let t0 = Instant::now();
        let mut a = Activity::default();
        for i in 0..=20u64 {
            a.sample(t0 + Duration::from_millis(100 * i), i * 100, i * 50, i);
        }
        assert!((a.rows_in - 1000.0).abs() < 1e-6, "{}", a.rows_in);
        assert!((a.rows_shown - 500.0).abs() < 1e-6);
        assert!((a.updates - 10.0).abs() < 1e-6);
        assert_eq!(a.spark.len(), 4);
    }

    #[test]
    fn rates_read_well() {
        assert_eq!(fmt_rate(850.0), "850");
        assert_eq!(fmt_rate(12_500.0), "12.5k");
        assert_eq!(fmt_rate(250_000.0), "250k");
        assert_eq!(fmt_rate(1_000_000.0), "1.00M");
        assert_eq!(fmt_rate(999_700.0), "1.00M");
    }

    #[test]
    fn sparklines_scale_to_the_largest_value() {
        let mut s = String::new();
        spark_text(&VecDeque::from(vec![0, 1, 2, 4]), 6, &mut s);
        assert_eq!(s, "   ▂▄█");
    }
}
