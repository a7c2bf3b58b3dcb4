//! A writer thread's lane: its row buffer, its queue of batches, its counters, and the thread
//! that sends them.
//!
//! Every counter of a lane changes in the methods of [`LaneState`], under the lane's mutex (a
//! leaf lock). Rows get a sequence number per lane when they are inserted; `taken`, `done`
//! and `sent_upto` say how far sending went, so a flush or a sync insert waits for `done` to
//! pass its row and then knows from `sent_upto` whether the row was published.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::publish::mtw::options::{FlushMode, MultithreadedWriterOptions};
use crate::publish::mtw::status::{ErrorLog, ErrorRecord, ThreadStatus};
use crate::publish::mtw::target::{backoff, Connection};
use crate::publish::rows::RowBuffer;
use crate::sync::{Condvar, Mutex};

/// A finished batch waiting to be sent, with its estimated size.
#[derive(Debug)]
struct Queued {
    batch: RecordBatch,
    bytes: usize,
}

/// One writer thread's buffer and counters. Guarded by [`Lane::state`].
#[derive(Debug)]
pub(crate) struct LaneState {
    /// Rows not yet sealed into a batch: never more than the batch size.
    pub(crate) rows: RowBuffer,
    /// Estimated bytes of `rows`.
    rows_bytes: usize,
    /// Sealed batches waiting to be sent, oldest first (before `rows`' rows).
    queue: VecDeque<Queued>,
    queued_rows: usize,
    queued_bytes: usize,
    oldest: Option<Instant>,
    /// Rows taken by the thread and being sent.
    in_flight: usize,
    /// Sequence numbers: rows inserted, taken for sending, done (sent or failed), sent.
    inserted: u64,
    taken: u64,
    done: u64,
    sent_upto: u64,
    /// A flush asked for every row up to this one.
    flush_to: u64,
    sent: u64,
    retries: u64,
    failed: Vec<RecordBatch>,
    failed_rows: u64,
    exiting: bool,
    closing: bool,
    error: Option<ErrorRecord>,
}

impl LaneState {
    fn buffered(&self) -> usize {
        self.rows.len() + self.queued_rows
    }

    /// Whether the lane takes one more row now.
    pub(crate) fn has_room(&self, o: &MultithreadedWriterOptions) -> bool {
        self.buffered() == 0
            || (self.buffered() < o.max_buffered_rows
                && self.rows_bytes + self.queued_bytes < o.max_buffered_bytes)
    }

    /// Refuses rows once the writer is completing or this thread gave up.
    pub(crate) fn check_open(&self, lane: usize) -> Result<()> {
        if self.closing {
            return Err(Error::MultithreadedWriterClosed {
                reason: "wait_for_completion was called".into(),
            });
        }
        if self.exiting {
            return Err(self.gave_up(lane));
        }
        Ok(())
    }

    fn gave_up(&self, lane: usize) -> Error {
        let why = self
            .error
            .as_ref()
            .map_or_else(String::new, |e| e.message.clone());
        Error::MultithreadedWriterClosed {
            reason: format!("writer thread {lane} gave up: {why}"),
        }
    }

    /// Records one row appended to `rows` (`bytes` its estimated size); seals a batch when it
    /// has `batch_size` rows. Returns the row's sequence number and whether the thread should
    /// be woken.
    pub(crate) fn appended(&mut self, bytes: usize, batch_size: usize) -> (u64, bool) {
        self.inserted += 1;
        self.rows_bytes += bytes;
        let mut wake = false;
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
            wake = true;
        }
        if self.rows.len() >= batch_size {
            self.seal();
            wake = true;
        }
        (self.inserted, wake)
    }

    /// Moves the buffer's rows into the queue as one batch.
    fn seal(&mut self) {
        let bytes = std::mem::take(&mut self.rows_bytes);
        if let Some(batch) = self.rows.finish() {
            self.queued_rows += batch.num_rows();
            self.queued_bytes += bytes;
            self.queue.push_back(Queued { batch, bytes });
        }
    }

    /// Queues rows handed back by another writer, in slices of at most `batch_size` rows,
    /// after the rows already buffered.
    pub(crate) fn push_unwritten(&mut self, batch: &RecordBatch, batch_size: usize) {
        self.seal();
        let total_bytes = batch.get_array_memory_size();
        let n = batch.num_rows();
        let mut offset = 0;
        while offset < n {
            let len = (n - offset).min(batch_size);
            let bytes = total_bytes * len / n.max(1);
            self.queue.push_back(Queued {
                batch: batch.slice(offset, len),
                bytes,
            });
            self.queued_rows += len;
            self.queued_bytes += bytes;
            offset += len;
        }
        self.inserted += n as u64;
        self.oldest.get_or_insert_with(Instant::now);
    }

    /// Asks for every row inserted so far to be sent; returns the last one's number.
    pub(crate) fn request_flush(&mut self) -> u64 {
        self.flush_to = self.inserted;
        self.flush_to
    }

    /// Stops taking rows; the thread sends what is buffered, then ends.
    pub(crate) fn close(&mut self) {
        self.closing = true;
        self.flush_to = self.inserted;
    }

    /// Whether every row up to `seq` is done (sent or failed), or the thread gave up.
    pub(crate) fn is_done(&self, seq: u64) -> bool {
        self.done >= seq || self.exiting
    }

    /// Whether row `seq` was published (batches go out in order).
    pub(crate) fn was_sent(&self, seq: u64) -> bool {
        self.sent_upto >= seq
    }

    pub(crate) fn is_exiting(&self) -> bool {
        self.exiting
    }

    /// The error a caller whose rows this lane could not write gets.
    pub(crate) fn failure(&self, lane: usize) -> Error {
        self.gave_up(lane)
    }

    /// Whether the thread has something to send now.
    fn is_due(&self, o: &MultithreadedWriterOptions) -> bool {
        let manual = o.flush_mode == FlushMode::Manual;
        let by_size = !manual && !self.queue.is_empty();
        let by_age = !manual && self.oldest.is_some_and(|t| t.elapsed() >= o.throttle);
        self.buffered() > 0 && (by_size || by_age || self.flush_to > self.done || self.closing)
    }

    /// Takes what to send next into `out`: the queued batches, oldest first, as many as fit
    /// `max_rows` together (always at least one), or the buffer's rows when none is queued.
    /// Returns the sequence number of the last row taken, or `None` when nothing is buffered.
    fn take(&mut self, max_rows: usize, out: &mut Vec<RecordBatch>) -> Option<u64> {
        if self.queue.is_empty() {
            self.seal();
        }
        let mut rows = 0;
        while let Some(q) = self.queue.front() {
            let n = q.batch.num_rows();
            if rows > 0 && rows + n > max_rows {
                break;
            }
            let Queued { batch, bytes } = self.queue.pop_front().expect("invariant: a front");
            self.queued_rows -= n;
            self.queued_bytes -= bytes;
            rows += n;
            out.push(batch);
        }
        if rows == 0 {
            return None;
        }
        if self.buffered() == 0 {
            self.oldest = None;
        }
        self.in_flight = rows;
        self.taken += rows as u64;
        Some(self.taken)
    }

    /// Marks every row still buffered or queued as failed, after the batch that failed: a
    /// thread that gave up sends nothing more, so its rows are unwritten, not unsent.
    fn fail_buffered(&mut self) {
        self.seal();
        for q in self.queue.drain(..) {
            self.failed_rows += q.batch.num_rows() as u64;
            self.failed.push(q.batch);
        }
        self.queued_rows = 0;
        self.queued_bytes = 0;
        self.oldest = None;
    }

    /// Every row not yet written, in order: failed batches, then (once the writer completes
    /// or the thread gave up) everything still buffered. Takes them out of the lane.
    pub(crate) fn take_unwritten(&mut self, out: &mut Vec<RecordBatch>) {
        out.append(&mut self.failed);
        self.failed_rows = 0;
        if self.exiting || self.closing {
            self.seal();
            out.extend(self.queue.drain(..).map(|q| q.batch));
            self.queued_rows = 0;
            self.queued_bytes = 0;
        }
    }

    pub(crate) fn status(&self) -> ThreadStatus {
        ThreadStatus {
            routed_rows: self.inserted,
            sent_rows: self.sent,
            unsent_rows: (self.buffered() + self.in_flight) as u64,
            failed_rows: self.failed_rows,
            retries: self.retries,
            is_exiting: self.exiting,
            error: self.error.clone(),
        }
    }
}

/// One writer thread's lane.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) state: Mutex<LaneState>,
    /// Inserters wait here for room, sync inserters and flushes for `done`.
    pub(crate) progress: Condvar,
    /// The writer thread waits here for work.
    pub(crate) work: Condvar,
}

impl Lane {
    pub(crate) fn new(staged: &SchemaRef, keyed: bool, batch_size: usize) -> Result<Self> {
        Ok(Lane {
            state: Mutex::new(LaneState {
                rows: RowBuffer::new(staged, keyed, batch_size.min(1 << 16))?,
                rows_bytes: 0,
                queue: VecDeque::new(),
                queued_rows: 0,
                queued_bytes: 0,
                oldest: None,
                in_flight: 0,
                inserted: 0,
                taken: 0,
                done: 0,
                sent_upto: 0,
                flush_to: 0,
                sent: 0,
                retries: 0,
                failed: Vec::new(),
                failed_rows: 0,
                exiting: false,
                closing: false,
                error: None,
            }),
            progress: Condvar::new(),
            work: Condvar::new(),
        })
    }
}

/// A writer thread: waits for a batch to be due, takes it, publishes it with retries.
pub(crate) fn run(
    lane: &Lane,
    ix: usize,
    o: &MultithreadedWriterOptions,
    errors: &Mutex<ErrorLog>,
    mut conn: Connection,
) {
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (ix as u64 + 1);
    let max_rows = conn.max_rows_per_publish();
    let mut batches = Vec::new();
    loop {
        let upto = {
            let mut st = lane.state.lock();
            loop {
                if st.is_due(o) {
                    break;
                }
                if st.buffered() == 0 {
                    // Nothing buffered, nothing in flight: every inserted row is done.
                    st.done = st.inserted;
                    lane.progress.notify_all();
                    if st.closing {
                        return;
                    }
                }
                let wait = match st.oldest {
                    Some(t) if o.flush_mode != FlushMode::Manual => o
                        .throttle
                        .saturating_sub(t.elapsed())
                        .max(Duration::from_micros(100)),
                    _ => Duration::from_millis(100),
                };
                lane.work.wait_for(&mut st, wait);
            }
            batches.clear();
            let upto = st
                .take(max_rows, &mut batches)
                .expect("invariant: a due lane has rows");
            lane.progress.notify_all();
            upto
        };
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let mut attempt = 0;
        let result = loop {
            match conn.publish(&batches) {
                Ok(()) => break Ok(()),
                Err(e) if e.is_transient() && attempt < o.max_retries => {
                    let record = ErrorRecord::new(&e, ix, rows, true);
                    let closing = {
                        let mut st = lane.state.lock();
                        st.retries += 1;
                        st.error = Some(record.clone());
                        st.closing
                    };
                    errors.lock().push(record);
                    let delay = backoff(attempt, o.base_delay, o.max_delay, &mut seed);
                    // When closing, still retry (rows must not be lost) but never wait long.
                    std::thread::sleep(if closing {
                        delay.min(o.base_delay)
                    } else {
                        delay
                    });
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        let record = result.as_ref().err().map(|e| {
            tracing::warn!(error = %e, lane = ix, rows, "multithreaded writer thread gave up");
            let record = ErrorRecord::new(e, ix, rows, false);
            // In the log before the lane says it is exiting: whoever sees the thread gone
            // finds its error.
            errors.lock().push(record.clone());
            record
        });
        let mut st = lane.state.lock();
        st.in_flight = 0;
        st.done = upto;
        if let Some(record) = record {
            st.failed_rows += rows;
            st.failed.append(&mut batches);
            st.fail_buffered();
            st.error = Some(record);
            st.exiting = true;
            st.done = st.inserted;
            lane.progress.notify_all();
            return;
        }
        st.sent += rows;
        st.sent_upto = upto;
        lane.progress.notify_all();
    }
}
