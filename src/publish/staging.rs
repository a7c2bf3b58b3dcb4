//! Staging: the one cross-thread handoff between writers and the cycle.
//!
//! Writers never touch table state. Batches (from a [`TablePublisher`](crate::TablePublisher),
//! a multithreaded writer, a Flight `DoPut`) go into their table's [`Staging`]; a
//! [`RowWriter`](crate::RowWriter) appends rows to its own [`WriterCell`] (a row buffer behind
//! a mutex only its thread and the cycle take). At the start of each cycle, [`Staging::drain`]
//! takes, under these mutexes, every staged batch in the order it was added, then every
//! writer's committed rows, then a pending close request, so rows staged between two cycles
//! become visible together at the next one, never split. Every writer reaches this file
//! through `graph/stage.rs`, which checks the input and maps a refusal to an error.
//!
//! # Back-pressure
//!
//! Staging holds at most `limit` rows per table for batches, and per writer for row writers;
//! [`admit`] is the one rule for both. A full buffer blocks the caller until a cycle drains it
//! when that can happen (the engine has a cycle thread and the caller is not that thread);
//! otherwise the call is refused, with nothing applied. A single batch larger than the whole
//! limit can never fit and is refused as too large at once.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;

use crate::error::TransactionError;
use crate::publish::rows::RowBuffer;
use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard, Ordering};
use crate::table::lifecycle::{Closing, Lifecycle};

/// How often a blocked writer wakes to check for engine shutdown.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(50);

/// What staging does with `n` more rows while it holds `staged` of at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    Take,
    /// No room now; a cycle will make some.
    Full,
    /// `n` is more than the whole limit: it can never fit.
    TooLarge,
}

/// The admission rule for batches and rows alike.
pub(crate) fn admit(staged: usize, n: usize, limit: usize) -> Admit {
    if n > limit {
        Admit::TooLarge
    } else if staged + n <= limit {
        Admit::Take
    } else {
        Admit::Full
    }
}

/// Why staging refused input (the caller still holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Staging holds this many rows and has no room.
    Full(usize),
    /// The input has more rows than the limit.
    TooLarge(usize),
    /// The table is closing or closed, or the engine shut down.
    Closed,
}

/// A table's staged input.
#[derive(Debug)]
pub(crate) struct Staging {
    state: Mutex<StagingState>,
    space: Condvar,
    limit: usize,
}

#[derive(Debug, Default)]
struct StagingState {
    batches: Vec<RecordBatch>,
    rows: usize,
    /// The table is in the engine's dirty list (or will be: the pusher is about to add it).
    scheduled: bool,
    writers: Vec<Arc<WriterCell>>,
    waiters: usize,
    /// The source cursor staged with the newest batches (see `durable::format`), taken by
    /// the drain that takes them.
    cursor: Option<Buffer>,
}

impl Staging {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(StagingState::default()),
            space: Condvar::new(),
            limit: limit.max(1),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Stages batches (of `rows` rows in all) together, in one cycle, or none of them.
    /// Returns whether the table must be added to the dirty list.
    ///
    /// With `wait`, waits for room while the table is open and `shut_down` stays false.
    ///
    /// A `cursor` replaces the one staged before (a feed's cursor says where it is, not what
    /// it added), in the same critical section as the batches: a drain takes both or neither.
    pub(crate) fn push(
        &self,
        batches: Vec<RecordBatch>,
        rows: usize,
        wait: bool,
        lifecycle: &Lifecycle,
        shut_down: &AtomicBool,
        cursor: Option<Buffer>,
    ) -> Result<bool, Refused> {
        let mut st = self.state.lock();
        loop {
            if !lifecycle.is_open() || shut_down.load(Ordering::Acquire) {
                return Err(Refused::Closed);
            }
            match admit(st.rows, rows, self.limit) {
                Admit::Take => break,
                Admit::TooLarge => return Err(Refused::TooLarge(rows)),
                Admit::Full if !wait => return Err(Refused::Full(st.rows)),
                Admit::Full => {}
            }
            st.waiters += 1;
            self.wait(&mut st);
            st.waiters -= 1;
        }
        st.rows += rows;
        st.batches
            .extend(batches.into_iter().filter(|b| b.num_rows() > 0));
        if cursor.is_some() {
            st.cursor = cursor;
        }
        Ok(!std::mem::replace(&mut st.scheduled, true))
    }

    #[cfg(not(loom))]
    fn wait(&self, st: &mut MutexGuard<'_, StagingState>) {
        self.space.wait_for(st, WAIT_SLICE);
    }

    #[cfg(loom)]
    fn wait(&self, st: &mut MutexGuard<'_, StagingState>) {
        self.space.wait(st);
    }

    /// Requests a close, applied by the next cycle after the rows staged before it. Returns
    /// whether the table must be added to the dirty list (a second request does nothing).
    pub(crate) fn close(&self, lifecycle: &Lifecycle, closing: Closing) -> bool {
        let mut st = self.state.lock();
        if !lifecycle.request(closing) {
            return false;
        }
        self.space.notify_all();
        for cell in &st.writers {
            cell.space.notify_all();
        }
        !std::mem::replace(&mut st.scheduled, true)
    }

    /// Whether a drain would take anything: batches, a close, or a writer's committed rows.
    pub(crate) fn has_input(&self, lifecycle: &Lifecycle) -> bool {
        let st = self.state.lock();
        !st.batches.is_empty()
            || lifecycle.has_request()
            || st
                .writers
                .iter()
                .any(|c| c.state.lock().committed_rows() > 0)
    }

    /// Rows staged and not yet drained: staged batches' and every row writer's (committed or
    /// not). O(writers + batches).
    pub(crate) fn staged_rows(&self) -> usize {
        let st = self.state.lock();
        st.rows
            + st.writers
                .iter()
                .map(|c| c.state.lock().staged())
                .sum::<usize>()
    }

    /// Registers a row writer's cell so the cycle drains it.
    pub(crate) fn add_writer(&self, cell: Arc<WriterCell>) {
        self.state.lock().writers.push(cell);
    }

    /// Takes every staged batch, then every writer's committed rows, into `out`, in order,
    /// the source cursor staged with them into `cursor`, and then the close requested since
    /// the last drain, if any (it applies after these rows).
    ///
    /// Cost O(batches + writers); no row is copied except what Arrow's `finish` does to turn
    /// a writer's builders into arrays.
    pub(crate) fn drain(
        &self,
        lifecycle: &Lifecycle,
        out: &mut Vec<RecordBatch>,
        cursor: &mut Option<Buffer>,
    ) -> Option<Closing> {
        let mut st = self.state.lock();
        out.append(&mut st.batches);
        *cursor = st.cursor.take();
        st.rows = 0;
        st.scheduled = false;
        st.writers.retain(|cell| {
            let mut w = cell.state.lock();
            w.drain(out);
            if w.waiters > 0 {
                cell.space.notify_all();
            }
            !(w.dropped && w.staged() == 0)
        });
        if st.waiters > 0 {
            self.space.notify_all();
        }
        lifecycle.take_request()
    }
}

/// One row writer's staged rows: a row buffer, plus finished batches.
#[derive(Debug)]
pub(crate) struct WriterCell {
    pub(crate) state: Mutex<WriterState>,
    pub(crate) space: Condvar,
}

/// Guarded by the cell's mutex.
///
/// The writer's rows, oldest first: `ready` (committed, finished), the buffer's first
/// `committed` rows (committed), `pending` (uncommitted rows of the open transaction that a
/// cycle finished out of the buffer mid-transaction), then the rest of the buffer's rows
/// (uncommitted, in the open transaction). `pending` only exists when `committed` is 0.
/// A transaction costs no extra chunk or allocation: `begin` and `commit` only move the
/// `committed` mark; `rollback` finishes the buffer once.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub(crate) rows: RowBuffer,
    /// Of the buffer's rows, the committed prefix (all of them outside a transaction).
    pub(crate) committed: usize,
    /// Committed rows already finished (kept by a rollback, or a transaction's `pending`).
    pub(crate) ready: Vec<RecordBatch>,
    /// Uncommitted rows of the open transaction finished by a mid-transaction drain.
    pub(crate) pending: Option<RecordBatch>,
    /// A transaction is open.
    pub(crate) in_txn: bool,
    /// The table is in the engine's dirty list for this writer's rows.
    pub(crate) notified: bool,
    /// The `RowWriter` was dropped; the cell goes once drained.
    pub(crate) dropped: bool,
    pub(crate) waiters: usize,
}

/// The least and most rows of capacity a writer's buffer starts a cycle with: the last
/// cycle's row count, within these bounds (the finished chunk is tight whatever it was).
const MIN_HINT: usize = 64;
const MAX_HINT: usize = 1 << 16;

impl WriterCell {
    pub(crate) fn new(staged: &SchemaRef, keyed: bool) -> crate::error::Result<Self> {
        Ok(Self {
            state: Mutex::new(WriterState {
                rows: RowBuffer::new(staged, keyed, MIN_HINT)?,
                committed: 0,
                ready: Vec::new(),
                pending: None,
                in_txn: false,
                notified: false,
                dropped: false,
                waiters: 0,
            }),
            space: Condvar::new(),
        })
    }
}

impl WriterState {
    /// Rows staged and not yet drained.
    pub(crate) fn staged(&self) -> usize {
        self.rows.len()
            + self.ready.iter().map(RecordBatch::num_rows).sum::<usize>()
            + self.pending.as_ref().map_or(0, RecordBatch::num_rows)
    }

    /// Rows a drain would take now.
    fn committed_rows(&self) -> usize {
        self.ready.iter().map(RecordBatch::num_rows).sum::<usize>()
            + if self.in_txn {
                self.committed
            } else {
                self.rows.len()
            }
    }

    /// Records rows appended to the buffer. Returns whether the table must be put on the
    /// dirty list (the first committed row since the last drain).
    pub(crate) fn rows_appended(&mut self) -> bool {
        if self.in_txn {
            return false;
        }
        self.committed = self.rows.len();
        !std::mem::replace(&mut self.notified, true)
    }

    pub(crate) fn begin(&mut self) -> Result<(), TransactionError> {
        if self.in_txn {
            return Err(TransactionError::AlreadyOpen);
        }
        self.in_txn = true;
        Ok(())
    }

    /// Commits; returns whether the table must be put on the dirty list.
    pub(crate) fn commit(&mut self) -> Result<bool, TransactionError> {
        if !self.in_txn {
            return Err(TransactionError::NotOpen);
        }
        self.in_txn = false;
        self.ready.extend(self.pending.take());
        self.committed = self.rows.len();
        Ok(self.staged() > 0 && !std::mem::replace(&mut self.notified, true))
    }

    /// Throws away the open transaction's rows; the committed rows before it stay.
    pub(crate) fn rollback(&mut self) -> Result<(), TransactionError> {
        if !self.in_txn {
            return Err(TransactionError::NotOpen);
        }
        self.in_txn = false;
        self.pending = None;
        if self.committed < self.rows.len() {
            let committed = self.committed;
            if let Some(b) = self.finish() {
                if committed > 0 {
                    self.ready.push(b.slice(0, committed));
                }
            }
        }
        self.committed = self.rows.len();
        Ok(())
    }

    /// Finishes the buffer into a batch, sizing the next buffer from this one.
    fn finish(&mut self) -> Option<RecordBatch> {
        let n = self.rows.len();
        self.rows.set_capacity(n.clamp(MIN_HINT, MAX_HINT));
        let batch = self.rows.finish();
        self.committed = 0;
        batch
    }

    /// Moves the committed rows into `out`, in order: one chunk per writer per cycle, plus
    /// one per rollback or transaction that spanned a drain.
    fn drain(&mut self, out: &mut Vec<RecordBatch>) {
        out.append(&mut self.ready);
        if !self.in_txn {
            out.extend(self.finish());
        } else if self.committed > 0 {
            let committed = self.committed;
            let batch = self.finish().expect("invariant: committed rows exist");
            out.push(batch.slice(0, committed));
            let rest = batch.num_rows() - committed;
            self.pending = (rest > 0).then(|| batch.slice(committed, rest));
        }
        // Rows left in an open transaction re-notify at commit.
        self.notified = false;
    }
}

// The loom build runs only the models below.
#[cfg(test)]
#[cfg(not(loom))]
mod tests {
    use super::*;
    use crate::schema::Value;
    use crate::test_util::{i64_column, int_schema};

    fn write(st: &mut WriterState, v: i64) {
        st.rows.append_row(&[Value::Int(v)]);
        st.rows_appended();
    }

    fn drain(st: &mut WriterState) -> Vec<i64> {
        let mut out = Vec::new();
        st.drain(&mut out);
        i64_column(&out, 0)
    }

    fn state() -> WriterState {
        WriterCell::new(&int_schema(), false)
            .expect("int64 is writable")
            .state
            .into_inner()
    }

    #[test]
    fn smoke() {
        let mut st = state();
        write(&mut st, 1);
        write(&mut st, 2);
        assert_eq!(drain(&mut st), vec![1, 2]);
        assert_eq!(drain(&mut st), Vec::<i64>::new());
    }

    #[test]
    fn a_drain_mid_transaction_takes_the_committed_rows_and_keeps_the_rest_pending() {
        let mut st = state();
        write(&mut st, 1);
        st.begin().unwrap();
        write(&mut st, 2);
        assert_eq!(drain(&mut st), vec![1]);
        write(&mut st, 3);
        assert_eq!(drain(&mut st), Vec::<i64>::new());
        assert_eq!(st.staged(), 2);
        assert!(
            st.commit().unwrap(),
            "a commit of staged rows asks for a cycle"
        );
        write(&mut st, 4);
        assert_eq!(drain(&mut st), vec![2, 3, 4]);
    }

    #[test]
    fn a_rollback_after_a_mid_transaction_drain_drops_the_pending_rows() {
        let mut st = state();
        st.begin().unwrap();
        write(&mut st, 1);
        assert_eq!(drain(&mut st), Vec::<i64>::new());
        write(&mut st, 2);
        st.rollback().unwrap();
        assert_eq!(st.staged(), 0);
        write(&mut st, 3);
        assert_eq!(drain(&mut st), vec![3]);
    }

    #[test]
    fn committed_rows_kept_by_a_rollback_survive_a_second_transaction() {
        let mut st = state();
        write(&mut st, 1);
        st.begin().unwrap();
        write(&mut st, 2);
        st.rollback().unwrap();
        st.begin().unwrap();
        write(&mut st, 3);
        assert_eq!(
            drain(&mut st),
            vec![1],
            "committed before the first transaction"
        );
        st.rollback().unwrap();
        assert_eq!(drain(&mut st), Vec::<i64>::new());
        st.begin().unwrap();
        write(&mut st, 4);
        st.commit().unwrap();
        assert_eq!(drain(&mut st), vec![4]);
    }

    #[test]
    fn many_small_transactions_in_one_cycle_make_one_chunk() {
        let mut st = state();
        for v in 0..1000 {
            st.begin().unwrap();
            write(&mut st, v);
            st.commit().unwrap();
        }
        let mut out = Vec::new();
        st.drain(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].num_rows(), 1000);
    }
}

#[cfg(all(test, loom))]
mod loom {
    //! Model-checks the staging handoff: publishers and row writers racing the cycle's drain.
    //!
    //! Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`. Each model is kept to
    //! two or three threads and a handful of lock operations so the exhaustive search stays
    //! fast. Timed condvar waits are modelled as untimed ones (`src/sync.rs`), so a lost
    //! wake-up fails as a deadlock.
    use std::sync::Arc as StdArc;

    use super::*;
    use crate::schema::Value;
    use crate::test_util::{i64_column, int_batch, int_schema};

    fn batch(v: i64) -> RecordBatch {
        int_batch([v])
    }

    fn values(out: &[RecordBatch]) -> Vec<i64> {
        i64_column(out, 0)
    }

    /// What `RowWriter::write_row` does under the cell's lock.
    fn write_row(cell: &WriterCell, v: i64) {
        let mut st = cell.state.lock();
        st.rows.append_row(&[Value::Int(v)]);
        st.rows_appended();
    }

    /// What `RowWriter::begin` does.
    fn begin(cell: &WriterCell, _schema: &SchemaRef) {
        cell.state.lock().begin().expect("no transaction open");
    }

    fn commit(cell: &WriterCell) {
        cell.state.lock().commit().expect("a transaction is open");
    }

    fn rollback(cell: &WriterCell, _schema: &SchemaRef) {
        cell.state.lock().rollback().expect("a transaction is open");
    }

    /// A staging with one registered writer cell, and its table's lifecycle.
    fn staging_with_writer() -> (SchemaRef, StdArc<Staging>, StdArc<WriterCell>, Lifecycle) {
        let schema = int_schema();
        let staging = StdArc::new(Staging::new(1 << 20));
        let cell = StdArc::new(WriterCell::new(&schema, false).expect("int64 is writable"));
        staging.add_writer(cell.clone());
        (schema, staging, cell, Lifecycle::default())
    }

    #[test]
    fn loom_every_staged_batch_is_drained_once_in_order_per_writer() {
        ::loom::model(|| {
            let schema = int_schema();
            let staging = StdArc::new(Staging::new(1 << 20));
            let shut = StdArc::new(AtomicBool::new(false));
            let life = StdArc::new(Lifecycle::default());
            let writers: Vec<_> = (0..2)
                .map(|w| {
                    let staging = staging.clone();
                    let shut = shut.clone();
                    let life = life.clone();
                    ::loom::thread::spawn(move || {
                        for i in 0..2 {
                            staging
                                .push(vec![batch(w * 10 + i)], 1, false, &life, &shut, None)
                                .expect("room");
                        }
                    })
                })
                .collect();
            let mut out = Vec::new();
            staging.drain(&life, &mut out, &mut None);
            for w in writers {
                w.join().expect("writer");
            }
            staging.drain(&life, &mut out, &mut None);
            let got = values(&out);
            assert_eq!(got.len(), 4);
            for w in 0..2 {
                let mine: Vec<i64> = got.iter().copied().filter(|v| v / 10 == w).collect();
                assert_eq!(mine, vec![w * 10, w * 10 + 1]);
            }
        });
    }

    #[test]
    fn loom_a_publisher_blocked_on_a_full_staging_is_woken_by_the_drain() {
        ::loom::model(|| {
            let schema = int_schema();
            let staging = StdArc::new(Staging::new(1));
            let shut = StdArc::new(AtomicBool::new(false));
            let life = StdArc::new(Lifecycle::default());
            let pusher = {
                let staging = staging.clone();
                let shut = shut.clone();
                let life = life.clone();
                ::loom::thread::spawn(move || {
                    staging
                        .push(vec![batch(1)], 1, true, &life, &shut, None)
                        .expect("room");
                    // Full now: waits until the cycle drains.
                    staging
                        .push(vec![batch(2)], 1, true, &life, &shut, None)
                        .expect("room after a drain");
                })
            };
            let mut out = Vec::new();
            while values(&out).len() < 2 {
                staging.drain(&life, &mut out, &mut None);
                ::loom::thread::yield_now();
            }
            pusher.join().expect("pusher");
            assert_eq!(values(&out), vec![1, 2]);
        });
    }

    #[test]
    fn loom_a_row_writers_rows_are_drained_once_in_order_and_a_transaction_whole() {
        ::loom::model(|| {
            let (schema, staging, cell, life) = staging_with_writer();
            let writer = {
                let (schema, cell) = (schema.clone(), cell.clone());
                ::loom::thread::spawn(move || {
                    write_row(&cell, 0);
                    begin(&cell, &schema);
                    write_row(&cell, 1);
                    write_row(&cell, 2);
                    commit(&cell);
                })
            };
            let mut first = Vec::new();
            staging.drain(&life, &mut first, &mut None);
            writer.join().expect("writer");
            let mut second = Vec::new();
            staging.drain(&life, &mut second, &mut None);
            let (first, second) = (i64_column(&first, 0), i64_column(&second, 0));
            let all: Vec<i64> = first.iter().chain(&second).copied().collect();
            assert_eq!(all, vec![0, 1, 2], "drains {first:?} then {second:?}");
            assert!(
                first.contains(&1) == first.contains(&2),
                "the transaction was split: {first:?} then {second:?}"
            );
            assert_eq!(cell.state.lock().staged(), 0);
        });
    }

    #[test]
    fn loom_a_rolled_back_transaction_is_never_drained() {
        ::loom::model(|| {
            let (schema, staging, cell, life) = staging_with_writer();
            let writer = {
                let (schema, cell) = (schema.clone(), cell.clone());
                ::loom::thread::spawn(move || {
                    begin(&cell, &schema);
                    write_row(&cell, 9);
                    rollback(&cell, &schema);
                    write_row(&cell, 1);
                })
            };
            let mut out = Vec::new();
            staging.drain(&life, &mut out, &mut None);
            writer.join().expect("writer");
            staging.drain(&life, &mut out, &mut None);
            assert_eq!(i64_column(&out, 0), vec![1]);
        });
    }

    #[test]
    fn loom_a_real_row_writer_and_the_engine_cycle_agree() {
        use std::sync::mpsc;

        use crate::test_util::manual_engine;
        use crate::{DynamicWriterOptions, TableUpdate};

        let mut builder = ::loom::model::Builder::new();
        // The whole cycle takes many locks: bound preemptions to keep the search small.
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let engine = manual_engine();
            let dtw = engine
                .dynamic_table_writer("t", int_schema(), DynamicWriterOptions::default())
                .expect("table");
            let (tx, rx) = mpsc::channel();
            dtw.table()
                .listen(move |u: &TableUpdate| {
                    tx.send((u.step(), i64_column(u.batches(), 0)))
                        .expect("receiver lives");
                })
                .expect("listener")
                .detach();
            let mut w = dtw.row_writer().expect("writer");
            let writer = ::loom::thread::spawn(move || {
                w.write_row(&[Value::Int(0)]).expect("row");
                w.begin().expect("begin");
                w.write_row(&[Value::Int(1)]).expect("row");
                w.write_row(&[Value::Int(2)]).expect("row");
                w.commit().expect("commit");
            });
            engine.run_cycle();
            writer.join().expect("writer");
            engine.run_cycle();
            let updates: Vec<_> = rx.try_iter().collect();
            let all: Vec<i64> = updates.iter().flat_map(|(_, v)| v.clone()).collect();
            assert_eq!(all, vec![0, 1, 2], "updates {updates:?}");
            let txn_steps: Vec<_> = updates
                .iter()
                .filter(|(_, v)| v.contains(&1) || v.contains(&2))
                .collect();
            assert_eq!(txn_steps.len(), 1, "the transaction was split: {updates:?}");
            assert_eq!(dtw.table().num_rows(), 3);
        });
    }
}
