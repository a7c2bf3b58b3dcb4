//! Cycle statistics.

use std::collections::VecDeque;
use std::time::Duration;

use crate::step::Step;

/// What one cycle did and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CycleStats {
    /// The cycle's step.
    pub step: Step,
    /// From taking the global lock to releasing it.
    pub duration: Duration,
    /// How long the cycle waited for the global lock (readers holding its shared side).
    pub lock_wait: Duration,
    /// Rows added to tables (derived tables included).
    pub rows_appended: u64,
    /// Rows removed from tables by retention.
    pub rows_removed: u64,
    /// Rows refused by an append table's limit.
    pub rows_dropped: u64,
    /// Tables that changed.
    pub tables_changed: usize,
}

/// Totals over the engine's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Cycles run.
    pub cycles: u64,
    /// Rows added to tables.
    pub rows_appended: u64,
    /// Rows removed by retention.
    pub rows_removed: u64,
    /// Rows refused by append tables' limits.
    pub rows_dropped: u64,
    /// Total time under the lock.
    pub total_cycle_time: Duration,
    /// The longest cycle.
    pub max_cycle_time: Duration,
}

impl EngineStats {
    /// The mean cycle time, zero before the first cycle.
    pub fn mean_cycle_time(&self) -> Duration {
        if self.cycles == 0 {
            Duration::ZERO
        } else {
            self.total_cycle_time / u32::try_from(self.cycles).unwrap_or(u32::MAX)
        }
    }
}

/// How many recent cycles the engine remembers.
pub(crate) const RECENT: usize = 512;

#[derive(Debug, Default)]
pub(crate) struct StatsLog {
    pub(crate) totals: EngineStats,
    pub(crate) recent: VecDeque<CycleStats>,
}

impl StatsLog {
    pub(crate) fn record(&mut self, c: CycleStats) {
        let t = &mut self.totals;
        t.cycles += 1;
        t.rows_appended += c.rows_appended;
        t.rows_removed += c.rows_removed;
        t.rows_dropped += c.rows_dropped;
        t.total_cycle_time += c.duration;
        t.max_cycle_time = t.max_cycle_time.max(c.duration);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(c);
    }
}
