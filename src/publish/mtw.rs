//! `MultithreadedTableWriter`: `insert(row)` from any thread; a pool of writer threads batches
//! and publishes.
//!
//! Each writer thread owns a **lane**: Arrow builders behind a mutex plus a queue of finished
//! batches. `insert` checks the row against the schema at once (a bad row is refused with the
//! column, the expected and the found type, and never blocks the good rows after it), picks a
//! lane (by the hash of the partition column, so rows with the same value keep their order, or
//! by the inserting thread) and appends the row straight to that lane's builders: no
//! allocation and no conversion thread per row. The lane's thread sends a batch when it has
//! `batch_size` rows, when its oldest row is `throttle` old, or on `flush`.
//!
//! # Failures
//!
//! A transient failure (the table's staging is full, the remote server is unreachable or out
//! of room) is retried with exponential backoff and jitter (`max_retries`, `base_delay`,
//! `max_delay`). A permanent one (the schema refused, the table missing or closed, a bad
//! token), or running out of retries, makes that lane give up: it keeps every row it could not
//! write, stops taking rows, and reports the error in [`status`](MultithreadedTableWriter::status)
//! (every error met, retried or not, is kept there with its [`ErrorCode`](crate::ErrorCode),
//! up to [`MAX_ERRORS`]; the codes are listed once, on [`ErrorCode`](crate::ErrorCode)).
//! [`unwritten_data`](MultithreadedTableWriter::unwritten_data) hands every row not yet
//! written back as batches, and
//! [`insert_unwritten`](MultithreadedTableWriter::insert_unwritten) on a new writer re-sends
//! them ([`unwritten_rows`](MultithreadedTableWriter::unwritten_rows) gives them as rows to
//! fix a field and [`insert_rows`](MultithreadedTableWriter::insert_rows) them). Nothing is
//! ever dropped silently.
//!
//! # Waiting
//!
//! [`flush`](MultithreadedTableWriter::flush) waits until every thread has published or
//! failed what was inserted before it. [`wait_for_completion`](MultithreadedTableWriter::wait_for_completion)
//! (callable from any thread sharing the writer, e.g. through an `Arc`) sends everything,
//! stops the threads and, into a local table of an engine with a cycle thread, also waits for
//! the cycle that makes the rows visible: `DolphinDB`'s "wait for completion, then count the
//! rows" works as written. On a manual engine, run a cycle after it.
//!
//! # Keyed tables
//!
//! Into a [keyed table](crate::TableKind::Keyed), [`insert`](MultithreadedTableWriter::insert)
//! upserts a whole row and [`delete`](MultithreadedTableWriter::delete) deletes a key. Rows
//! are routed by the hash of the key (or by `partition_column`, which must then be a key
//! column), so every write to one key goes through one thread and the last one wins, as the
//! caller wrote them. Lanes stage the keyed shape with an operation column (see
//! [`OP_COLUMN`](crate::OP_COLUMN)), which is also what
//! [`unwritten_data`](MultithreadedTableWriter::unwritten_data) hands back.

pub(crate) mod lane;
pub(crate) mod options;
pub(crate) mod status;
pub(crate) mod target;

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;

pub use options::{FlushMode, MultithreadedWriterOptions};
pub use status::{
    ErrorRecord, MultithreadedWriterStatus, ThreadStatus, TryInsertError, MAX_ERRORS,
};
pub use target::WriteTarget;

use crate::error::{Error, Result};
use crate::schema::{check_value, hash_value, row_bytes, value_at, OwnedValue, Value};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};
use crate::table::keyed::{mask_width, OP_METADATA};
use lane::{Lane, LaneState};
use status::ErrorLog;
use target::Connection;

/// What the writer's handle and its threads share.
struct Shared {
    target: WriteTarget,
    schema: SchemaRef,
    /// A keyed table's key columns (empty otherwise).
    key: Vec<usize>,
    name: String,
    options: MultithreadedWriterOptions,
    partition: Option<usize>,
    lanes: Vec<Lane>,
    errors: Mutex<ErrorLog>,
}

impl Shared {
    fn is_keyed(&self) -> bool {
        !self.key.is_empty()
    }
}

/// A pool of writer threads in front of a table, fed by `insert(row)` from any thread.
///
/// See the [module docs](self) for routing, batching, failures and waiting. `Send + Sync`:
/// share it between inserting threads with an `Arc`. Dropping the writer sends what is
/// buffered and joins its threads, like [`wait_for_completion`](Self::wait_for_completion).
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::{Engine, MultithreadedTableWriter, MultithreadedWriterOptions, WriteTarget};
///
/// let engine = Engine::builder().manual().build()?;
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("Sym", DataType::Utf8, false),
///     Field::new("Px", DataType::Float64, false),
/// ]));
/// let (table, _) = engine.append_table("px", schema)?;
/// let mtw = MultithreadedTableWriter::new(
///     WriteTarget::Local(table.clone()),
///     MultithreadedWriterOptions::default()
///         .with_thread_count(2)
///         .with_partition_column("Sym"),
/// )?;
/// mtw.insert(&["AAPL".into(), 187.5.into()])?;
/// assert!(mtw.insert(&["AAPL".into(), "n/a".into()]).is_err()); // refused at once
/// let status = mtw.wait_for_completion();
/// assert_eq!((status.sent_rows, status.failed_rows), (1, 0));
/// engine.run_cycle(); // a manual engine: the rows are visible after its next cycle
/// assert_eq!(table.num_rows(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MultithreadedTableWriter {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl MultithreadedTableWriter {
    /// Starts the writer threads in front of `target`.
    ///
    /// For a remote target this connects to the server first to learn the table's schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (zero threads or batch size, unknown partition column, a
    /// partition column that is not a key column of a keyed table), [`Error::UnsupportedType`],
    /// [`Error::DerivedTable`] for a derived local table, [`Error::Remote`] if a remote server
    /// cannot be reached, [`Error::Io`].
    pub fn new(target: WriteTarget, options: MultithreadedWriterOptions) -> Result<Self> {
        if options.thread_count == 0 || options.batch_size == 0 || options.max_buffered_rows == 0 {
            return Err(Error::InvalidOption {
                option: "thread_count, batch_size and max_buffered_rows",
                reason: "must be at least 1".into(),
            });
        }
        let (schema, name, key) = target.describe()?;
        let partition = match &options.partition_column {
            Some(col) => Some(schema.index_of(col).map_err(|_| Error::InvalidOption {
                option: "partition_column",
                reason: format!("table {name:?} has no column {col:?}"),
            })?),
            None => None,
        };
        if let Some(p) = partition.filter(|p| !key.is_empty() && !key.contains(p)) {
            return Err(Error::InvalidOption {
                option: "partition_column",
                reason: format!(
                    "table {name:?} is keyed: the partition column must be a key column, not {:?}",
                    schema.field(p).name()
                ),
            });
        }
        let staged = if key.is_empty() {
            schema.clone()
        } else {
            crate::table::keyed::staged_schema(&schema)
        };
        let lanes = (0..options.thread_count)
            .map(|_| Lane::new(&staged, !key.is_empty(), options.batch_size))
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            target,
            schema,
            key,
            name,
            options,
            partition,
            lanes,
            errors: Mutex::new(ErrorLog::default()),
        });
        // Every connection first, so a failure leaves no thread behind.
        let connections = (0..shared.lanes.len())
            .map(|_| Connection::open(&shared.target))
            .collect::<Result<Vec<_>>>()?;
        let mut threads = Vec::with_capacity(shared.lanes.len());
        for (i, connection) in connections.into_iter().enumerate() {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tickertable-mtw-{i}"))
                    .spawn(move || {
                        lane::run(&s.lanes[i], i, &s.options, &s.errors, connection);
                    })?,
            );
        }
        Ok(Self {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// The schema rows must fit.
    pub fn schema(&self) -> &SchemaRef {
        &self.shared.schema
    }

    /// The lane of a row: `value(c)` gives the row's value of column `c` (only the partition
    /// or key columns are asked for).
    fn lane_of<'v>(&self, value: impl Fn(usize) -> Value<'v>) -> usize {
        let n = self.shared.lanes.len();
        if n == 1 {
            return 0;
        }
        let h = match (self.shared.partition, self.shared.key.as_slice()) {
            (Some(col), _) => hash_value(&value(col)),
            (None, []) => thread_seq(),
            (None, key) => key.iter().fold(0u64, |h, &c| {
                h.rotate_left(5) ^ hash_value(&value(c)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            }),
        };
        usize::try_from(h % n as u64).expect("invariant: below the lane count")
    }

    fn check(&self, row: &[Value<'_>]) -> Result<()> {
        let n = self.shared.schema.fields().len();
        if row.len() != n {
            return Err(Error::ColumnCount {
                table: self.shared.name.clone(),
                expected: n,
                found: row.len(),
            });
        }
        for (i, v) in row.iter().enumerate() {
            check_value(&self.shared.name, &self.shared.schema, i, v)?;
        }
        Ok(())
    }

    /// Inserts one row, one value per column in schema order: checked now, sent by a writer
    /// thread. Into a keyed table, an upsert of the whole row.
    ///
    /// Waits while the thread's buffer is full; in [`FlushMode::Sync`] also waits until the
    /// row's batch is published.
    ///
    /// # Errors
    ///
    /// A schema error naming the column ([`Error::ColumnCount`], [`Error::SchemaMismatch`],
    /// [`Error::ValueOutOfRange`], [`Error::NullInNonNullable`]);
    /// [`Error::MultithreadedWriterClosed`] after `wait_for_completion` or when the row's
    /// thread gave up; in sync mode, the error that made the row's batch fail. A refused row
    /// is not buffered.
    pub fn insert(&self, row: &[Value<'_>]) -> Result<()> {
        self.check(row)?;
        let lane = self.lane_of(|c| row.get(c).copied().unwrap_or(Value::Null));
        self.insert_checked(lane, row_bytes(row), |st| st.rows.append_row(row))
    }

    /// Inserts one row given by column name: the columns left out are null (they must be
    /// nullable). Into a keyed table it is a partial upsert: the columns left out keep the
    /// key's values (or are null for a new key), and every key column must be given.
    ///
    /// Cost O(columns × given) name comparisons; no allocation for tables of up to 256
    /// columns.
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`], [`Error::InvalidOp`] for a column given twice,
    /// [`Error::MissingKeyColumn`], [`Error::UnsetColumn`], [`Error::NullInNonNullable`], and
    /// the errors of [`insert`](Self::insert).
    pub fn insert_named(&self, cells: &[(&str, Value<'_>)]) -> Result<()> {
        let sh = &self.shared;
        let schema = &sh.schema;
        for (i, (name, _)) in cells.iter().enumerate() {
            if schema.index_of(name).is_err() {
                return Err(Error::NoColumnNamed {
                    table: sh.name.clone(),
                    column: (*name).to_owned(),
                });
            }
            if cells[..i].iter().any(|(n, _)| n == name) {
                return Err(Error::InvalidOp {
                    table: sh.name.clone(),
                    reason: format!("column {name:?} given twice"),
                });
            }
        }
        let given = |c: usize| {
            let field = schema.field(c).name();
            cells
                .iter()
                .find(|(n, _)| *n == field.as_str())
                .map(|(_, v)| *v)
        };
        let ncols = schema.fields().len();
        let mut small = [0u8; 32];
        let mut large = Vec::new();
        let mask: &mut [u8] = if mask_width(ncols) <= small.len() {
            &mut small[..mask_width(ncols)]
        } else {
            large.resize(mask_width(ncols), 0);
            &mut large
        };
        for (c, field) in schema.fields().iter().enumerate() {
            match given(c) {
                Some(v) => {
                    check_value(&sh.name, schema, c, &v)?;
                    mask[c / 8] |= 1 << (c % 8);
                }
                None if sh.is_keyed() && sh.key.contains(&c) => {
                    return Err(Error::MissingKeyColumn {
                        table: sh.name.clone(),
                        column: field.name().clone(),
                    });
                }
                None if sh.is_keyed() && !field.is_nullable() => {
                    return Err(Error::UnsetColumn {
                        table: sh.name.clone(),
                        column: field.name().clone(),
                    });
                }
                None => check_value(&sh.name, schema, c, &Value::Null)?,
            }
        }
        let value = |c: usize| given(c).unwrap_or(Value::Null);
        let bytes: usize = cells
            .iter()
            .map(|(_, v)| row_bytes(std::slice::from_ref(v)))
            .sum();
        let mask: &[u8] = mask;
        self.insert_checked(self.lane_of(value), bytes, |st| {
            st.rows.append_with(value, mask);
        })
    }

    /// Deletes a key from a keyed table: `key` holds the key columns' values, in the order
    /// of the table's key. A key that is not there is ignored. Routed, buffered, sent and
    /// waited for like [`insert`](Self::insert), in order with the inserts of the same key.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOp`] if the table is not keyed, [`Error::ColumnCount`] if `key` does
    /// not have one value per key column, a value error naming the column, and the errors of
    /// [`insert`](Self::insert).
    pub fn delete(&self, key: &[Value<'_>]) -> Result<()> {
        let columns = &self.shared.key;
        if columns.is_empty() {
            return Err(Error::InvalidOp {
                table: self.shared.name.clone(),
                reason: "delete needs a keyed table".into(),
            });
        }
        if key.len() != columns.len() {
            return Err(Error::ColumnCount {
                table: self.shared.name.clone(),
                expected: columns.len(),
                found: key.len(),
            });
        }
        for (&c, v) in columns.iter().zip(key) {
            check_value(&self.shared.name, &self.shared.schema, c, v)?;
        }
        let value = |c: usize| {
            columns
                .iter()
                .position(|&k| k == c)
                .map_or(Value::Null, |i| key[i])
        };
        self.insert_checked(self.lane_of(value), row_bytes(key), |st| {
            st.rows.append_delete(columns, key);
        })
    }

    /// Buffers one checked row, written into the lane's buffer by `write`.
    fn insert_checked(
        &self,
        lane_ix: usize,
        bytes: usize,
        write: impl FnOnce(&mut LaneState),
    ) -> Result<()> {
        let lane = &self.shared.lanes[lane_ix];
        let o = &self.shared.options;
        let mut st = lane.state.lock();
        loop {
            st.check_open(lane_ix)?;
            if st.has_room(o) {
                break;
            }
            lane.work.notify_one();
            lane.progress.wait_for(&mut st, Duration::from_millis(50));
        }
        write(&mut st);
        let seq = self.appended(&mut st, lane, bytes);
        if o.flush_mode == FlushMode::Sync {
            lane.work.notify_one();
            while !st.is_done(seq) {
                lane.progress.wait_for(&mut st, Duration::from_millis(50));
            }
            if !st.was_sent(seq) {
                return Err(st.failure(lane_ix));
            }
        }
        Ok(())
    }

    fn appended(&self, st: &mut MutexGuard<'_, LaneState>, lane: &Lane, bytes: usize) -> u64 {
        let (seq, wake) = st.appended(bytes, self.shared.options.batch_size);
        if self.shared.options.flush_mode == FlushMode::Sync {
            st.request_flush();
            lane.work.notify_one();
        } else if wake {
            lane.work.notify_one();
        }
        seq
    }

    /// Inserts one row if its thread's buffer has room now. Never waits: in
    /// [`FlushMode::Sync`] it asks for the row's batch to be sent now but returns before it is
    /// published (use [`flush`](Self::flush) to wait).
    ///
    /// # Errors
    ///
    /// [`TryInsertError::Full`] (nothing was taken), or [`TryInsertError::Refused`] with the
    /// errors of [`insert`](Self::insert).
    pub fn try_insert(&self, row: &[Value<'_>]) -> Result<(), TryInsertError> {
        self.check(row).map_err(TryInsertError::Refused)?;
        let lane_ix = self.lane_of(|c| row.get(c).copied().unwrap_or(Value::Null));
        let lane = &self.shared.lanes[lane_ix];
        let mut st = lane.state.lock();
        st.check_open(lane_ix).map_err(TryInsertError::Refused)?;
        if !st.has_room(&self.shared.options) {
            lane.work.notify_one();
            return Err(TryInsertError::Full);
        }
        st.rows.append_row(row);
        self.appended(&mut st, lane, row_bytes(row));
        Ok(())
    }

    /// Inserts rows handed back by [`unwritten_data`](Self::unwritten_data) (usually of another
    /// writer), keeping their order per partition.
    ///
    /// # Errors
    ///
    /// A schema error if a batch does not fit; [`Error::MultithreadedWriterClosed`]. Nothing
    /// of a refused batch is taken.
    ///
    /// # Panics
    ///
    /// Never: lane indices are reduced modulo the lane count.
    pub fn insert_unwritten(&self, batches: Vec<RecordBatch>) -> Result<()> {
        let n = self.shared.lanes.len();
        let batch_size = self.shared.options.batch_size;
        for batch in batches {
            let batch = self.check_batch(&batch)?;
            let parts: Vec<(usize, RecordBatch)> = match (self.shared.partition, n) {
                (Some(col), n) if n > 1 => {
                    let mut idx: Vec<Vec<u32>> = vec![Vec::new(); n];
                    let array = batch.column(col);
                    for row in 0..batch.num_rows() {
                        let v = value_at(array.as_ref(), row).unwrap_or(Value::Null);
                        let lane = usize::try_from(hash_value(&v) % n as u64)
                            .expect("invariant: below the lane count");
                        idx[lane].push(u32::try_from(row).map_err(|_| Error::InvalidOption {
                            option: "batch",
                            reason: "more than 4Gi rows".into(),
                        })?);
                    }
                    let mut parts = Vec::new();
                    for (lane, rows) in idx.into_iter().enumerate() {
                        if !rows.is_empty() {
                            let take = UInt32Array::from(rows);
                            parts.push((
                                lane,
                                arrow_select::take::take_record_batch(&batch, &take)?,
                            ));
                        }
                    }
                    parts
                }
                _ => vec![(self.lane_of(|_| Value::Null), batch)],
            };
            for (lane_ix, part) in parts {
                let lane = &self.shared.lanes[lane_ix];
                let mut st = lane.state.lock();
                st.check_open(lane_ix)?;
                st.push_unwritten(&part, batch_size);
                lane.work.notify_one();
            }
        }
        Ok(())
    }

    /// Inserts rows given as owned values (what [`unwritten_rows`](Self::unwritten_rows)
    /// returns), in order, each as [`insert`](Self::insert) does.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), for the first row refused; the rows before it were
    /// inserted.
    pub fn insert_rows(&self, rows: &[Vec<OwnedValue>]) -> Result<()> {
        let mut cells: Vec<Value<'_>> = Vec::new();
        for row in rows {
            cells.clear();
            cells.extend(row.iter().map(OwnedValue::as_value));
            self.insert(&cells)?;
        }
        Ok(())
    }

    /// Checks a batch handed to [`insert_unwritten`](Self::insert_unwritten): the table's
    /// columns in order, or for a keyed table also its staged shape (with the operation
    /// column).
    fn check_batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let sh = &self.shared;
        if sh.key.is_empty() {
            return crate::schema::check_batch(&sh.name, &sh.schema, batch);
        }
        let batch = crate::table::keyed::check_batch(&sh.name, &sh.schema, &sh.key, batch)?;
        let in_order = batch
            .schema_ref()
            .fields()
            .iter()
            .zip(sh.schema.fields())
            .all(|(a, b)| a.name() == b.name())
            && batch.num_columns() >= sh.schema.fields().len()
            && !batch.schema_ref().metadata().contains_key(OP_METADATA);
        if !in_order {
            return Err(Error::InvalidOption {
                option: "batch",
                reason: "unwritten rows have every column, in order".into(),
            });
        }
        Ok(batch)
    }

    /// Sends everything buffered now and waits until every thread has published or failed
    /// it: when this returns, no row inserted before the call is still in flight.
    ///
    /// # Errors
    ///
    /// [`Error::MultithreadedWriterClosed`] with the first failed thread's error if any
    /// thread gave up (after waiting for all of them).
    pub fn flush(&self) -> Result<()> {
        let targets: Vec<u64> = self
            .shared
            .lanes
            .iter()
            .map(|lane| {
                let seq = lane.state.lock().request_flush();
                lane.work.notify_one();
                seq
            })
            .collect();
        let mut failed = None;
        for (ix, (lane, seq)) in self.shared.lanes.iter().zip(targets).enumerate() {
            let mut st = lane.state.lock();
            while !st.is_done(seq) {
                lane.progress.wait_for(&mut st, Duration::from_millis(50));
            }
            if st.is_exiting() && failed.is_none() {
                failed = Some(st.failure(ix));
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// The writer's counters and errors, in total and per thread.
    pub fn status(&self) -> MultithreadedWriterStatus {
        let mut status = MultithreadedWriterStatus::default();
        for lane in &self.shared.lanes {
            let t = lane.state.lock().status();
            status.sent_rows += t.sent_rows;
            status.unsent_rows += t.unsent_rows;
            status.failed_rows += t.failed_rows;
            status.retries += t.retries;
            status.is_exiting |= t.is_exiting;
            status.threads.push(t);
        }
        self.shared.errors.lock().fill(&mut status);
        status
    }

    /// Takes every row not yet written (failed, and still buffered in threads that gave up or
    /// after [`wait_for_completion`](Self::wait_for_completion)) out of the writer, as
    /// batches in order per thread. Hand them to [`insert_unwritten`](Self::insert_unwritten)
    /// of a new writer. For a keyed table they have the staged shape (with the operation
    /// column), so deletes stay deletes.
    pub fn unwritten_data(&self) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for lane in &self.shared.lanes {
            lane.state.lock().take_unwritten(&mut out);
        }
        out
    }

    /// As [`unwritten_data`](Self::unwritten_data), as rows of owned values in schema order,
    /// to fix a field and [`insert_rows`](Self::insert_rows) them again (`DolphinDB`'s
    /// `getUnwrittenData`). For a keyed table a delete comes back as a row holding its key
    /// and nulls: use `unwritten_data` where deletes matter. O(rows × columns).
    pub fn unwritten_rows(&self) -> Vec<Vec<OwnedValue>> {
        let ncols = self.shared.schema.fields().len();
        let mut rows = Vec::new();
        for batch in self.unwritten_data() {
            for r in 0..batch.num_rows() {
                rows.push(
                    (0..ncols)
                        .map(|c| {
                            value_at(batch.column(c).as_ref(), r)
                                .map_or(OwnedValue::Null, OwnedValue::from)
                        })
                        .collect(),
                );
            }
        }
        rows
    }

    /// Sends everything, stops taking rows, joins the threads and returns the final status.
    /// Into a local table of an engine with a cycle thread it also waits for the cycle that
    /// makes the sent rows visible. Rows that could not be written stay available through
    /// [`unwritten_data`](Self::unwritten_data). Callable from any thread, any number of
    /// times (later calls return the status again).
    pub fn wait_for_completion(&self) -> MultithreadedWriterStatus {
        for lane in &self.shared.lanes {
            lane.state.lock().close();
            lane.work.notify_one();
            lane.progress.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        self.shared.target.sync();
        self.status()
    }
}

impl Drop for MultithreadedTableWriter {
    fn drop(&mut self) {
        let status = self.wait_for_completion();
        if status.failed_rows > 0 || status.unsent_rows > 0 {
            tracing::warn!(
                failed = status.failed_rows,
                unsent = status.unsent_rows,
                last_error = status.last_error().map(ToString::to_string),
                "multithreaded writer dropped with rows not written"
            );
        }
    }
}

impl fmt::Debug for MultithreadedTableWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultithreadedTableWriter")
            .field("target", &self.shared.target)
            .field("threads", &self.shared.lanes.len())
            .finish_non_exhaustive()
    }
}

/// A number per inserting thread, given out in order on first use, so inserting threads
/// spread over lanes evenly (a hash of thread ids can put two busy threads on one lane).
fn thread_seq() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        // Relaxed: a unique number is all that is needed; nothing is published with it.
        static SEQ: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SEQ.with(|s| *s)
}
