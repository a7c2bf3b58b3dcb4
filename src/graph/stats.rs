//! Cycle statistics.

use std::collections::VecDeque;
use std::time::Duration;

use crate::durable::{LogStats, TableLogStats};
use crate::step::Step;
use crate::table::shared::TableId;

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
    /// Cycles by duration: `cycle_histogram[i]` counts the cycles no longer than
    /// [`CYCLE_BUCKETS`]`[i]` and longer than the bucket before; the last entry counts the
    /// cycles longer than every bucket. Not cumulative (a Prometheus histogram adds them up).
    pub cycle_histogram: [u64; CYCLE_BUCKETS.len() + 1],
    /// Total time cycles waited for their log records to be synced (see
    /// [`CycleStats::log_wait`]).
    pub total_log_wait: Duration,
    /// The durable log writer's totals (zero without a data directory).
    pub log: LogStats,
}

/// The upper bounds of [`EngineStats::cycle_histogram`]'s buckets, from 50 µs to 1 s.
pub const CYCLE_BUCKETS: [Duration; 14] = [
    Duration::from_micros(50),
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
    Duration::from_micros(2500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// One table's statistics, from [`EngineHandle::table_stats`](crate::EngineHandle::table_stats).
///
/// The row counts are totals over the table's life, counted by the cycles that applied them:
/// `rows_added` are new rows (for a keyed table: new keys), `rows_modified` rows rewritten in
/// place (keyed tables: upserts of keys it held), `rows_removed` rows gone (retention,
/// deletes, a blink table emptying), `rows_dropped` rows an append table's limit refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableStats {
    /// Rows visible now.
    pub rows: usize,
    /// Rows added, over the table's life.
    pub rows_added: u64,
    /// Rows modified in place (keyed tables).
    pub rows_modified: u64,
    /// Rows removed.
    pub rows_removed: u64,
    /// Rows refused by an append table's limit.
    pub rows_dropped: u64,
    /// Rows staged for the next cycle (publishers' batches and row writers' rows).
    pub staged_rows: usize,
    /// A durable table's log: bytes written, fsyncs and their time, replay at creation
    /// (`None` for a table that is not durable).
    pub log: Option<TableLogStats>,
    /// Listeners registered now.
    pub listeners: usize,
    /// Subscriptions open now (Flight live streams included).
    pub subscriptions: usize,
    /// The step of the table's last change.
    pub step: Step,
}

/// One table's totals, kept with the cycle statistics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TableTotals {
    pub(crate) added: u64,
    pub(crate) modified: u64,
    pub(crate) removed: u64,
    pub(crate) dropped: u64,
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
    /// Per table, by [`TableId`] index; grown as tables change.
    pub(crate) tables: Vec<TableTotals>,
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
        let bucket = CYCLE_BUCKETS.partition_point(|b| *b < c.duration);
        t.cycle_histogram[bucket] += 1;
        t.total_log_wait += c.log_wait;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(c);
    }

    /// Adds one cycle's changes of table `id`.
    pub(crate) fn record_table(&mut self, id: TableId, change: TableTotals) {
        let i = id.index();
        if self.tables.len() <= i {
            self.tables.resize(i + 1, TableTotals::default());
        }
        let t = &mut self.tables[i];
        t.added += change.added;
        t.modified += change.modified;
        t.removed += change.removed;
        t.dropped += change.dropped;
    }

    /// Table `id`'s totals (zero for a table no cycle changed).
    pub(crate) fn table(&self, id: TableId) -> TableTotals {
        self.tables.get(id.index()).copied().unwrap_or_default()
    }
}
