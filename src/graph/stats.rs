//! Cycle statistics.

use std::collections::VecDeque;
use std::time::Duration;

use crate::durable::LogStats;
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
    /// How long the cycle waited for its durable tables' records to be written and synced
    /// ([`SyncPolicy::EveryCycle`](crate::SyncPolicy::EveryCycle)), or with the other
    /// policies for a log writer that fell 16 cycles behind to catch up, holding only the
    /// upgradable side of the global lock; not part of `duration`.
    pub log_wait: Duration,
    /// Bytes of this cycle's log records, when the cycle waited for them (otherwise 0: the
    /// writer counts them in [`LogStats::bytes`]).
    pub log_bytes: u64,
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
    /// Total time cycles waited for their log records to be synced (see
    /// [`CycleStats::log_wait`]).
    pub total_log_wait: Duration,
    /// The durable log writer's totals (zero without a data directory).
    pub log: LogStats,
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
        t.total_log_wait += c.log_wait;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(c);
    }
}
