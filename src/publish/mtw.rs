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
//! write, stops taking rows, and reports the error in [`status`](MultithreadedTableWriter::status).
//! [`unwritten_data`](MultithreadedTableWriter::unwritten_data) hands every row not yet
//! written back as batches, and
//! [`insert_unwritten`](MultithreadedTableWriter::insert_unwritten) on a new writer re-sends
//! them. Nothing is ever dropped silently.
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

pub(crate) mod sink;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;

pub use sink::WriteTarget;

use crate::error::{Error, Result};
use crate::publish::columns::ColumnBuilder;
use crate::schema::{check_value, hash_value, row_bytes, value_at, Value};
use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering};
use crate::table::keyed::Masks;
use sink::{backoff, is_transient, Connection};

/// When a [`MultithreadedTableWriter`] sends buffered rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushMode {
    /// `insert` returns once the row's batch is published (staged for the next cycle, or
    /// accepted by the remote server), or failed.
    Sync,
    /// `insert` returns at once; batches go out by size and throttle (the default).
    #[default]
    Background,
    /// Only [`flush`](MultithreadedTableWriter::flush) sends; a full buffer blocks `insert`.
    Manual,
}

/// Options of a [`MultithreadedTableWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultithreadedWriterOptions {
    batch_size: usize,
    throttle: Duration,
    thread_count: usize,
    partition_column: Option<String>,
    flush_mode: FlushMode,
    max_buffered_rows: usize,
    max_buffered_bytes: usize,
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for MultithreadedWriterOptions {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            throttle: Duration::from_millis(10),
            thread_count: 1,
            partition_column: None,
            flush_mode: FlushMode::Background,
            max_buffered_rows: 1 << 20,
            max_buffered_bytes: 256 << 20,
            max_retries: 8,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $setter:ident => $name:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $setter(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl MultithreadedWriterOptions {
    setter!(
        /// Rows per batch a writer thread sends (default 10,000).
        with_batch_size => batch_size: usize
    );
    setter!(
        /// The longest a row waits in a partial batch (default 10 ms).
        with_throttle => throttle: Duration
    );
    setter!(
        /// Writer threads (default 1).
        with_thread_count => thread_count: usize
    );
    setter!(
        /// How `insert` and sending relate (default [`FlushMode::Background`]).
        with_flush_mode => flush_mode: FlushMode
    );
    setter!(
        /// Rows buffered per writer thread before `insert` waits (default 1Mi).
        with_max_buffered_rows => max_buffered_rows: usize
    );
    setter!(
        /// Estimated bytes buffered per writer thread before `insert` waits (default 256 MiB).
        with_max_buffered_bytes => max_buffered_bytes: usize
    );
    setter!(
        /// Retries of a transient failure before a thread gives up (default 8).
        with_max_retries => max_retries: u32
    );
    setter!(
        /// The first retry's delay (default 20 ms); it doubles per retry, with jitter.
        with_base_delay => base_delay: Duration
    );
    setter!(
        /// The longest delay between retries (default 2 s).
        with_max_delay => max_delay: Duration
    );

    /// Route rows by this column: rows with equal values go to the same writer thread, so
    /// their order is kept. Without it, each inserting thread's rows keep their order.
    #[must_use]
    pub fn with_partition_column(mut self, column: impl Into<String>) -> Self {
        self.partition_column = Some(column.into());
        self
    }
}

/// One writer thread's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadStatus {
    /// Rows published.
    pub sent_rows: u64,
    /// Rows buffered or being sent.
    pub unsent_rows: u64,
    /// Rows the thread failed to send and keeps.
    pub failed_rows: u64,
    /// The thread gave up and takes no more rows.
    pub is_exiting: bool,
}

/// The last error of a writer, with a code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// A short stable code: `staging_full`, `remote_unavailable`, `schema`, `table_closed`, ...
    pub code: &'static str,
    /// The error's message.
    pub message: String,
}

/// What a [`MultithreadedTableWriter`] has done, in total and per thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultithreadedWriterStatus {
    /// Rows published.
    pub sent_rows: u64,
    /// Rows buffered or being sent.
    pub unsent_rows: u64,
    /// Rows that failed and are kept for [`MultithreadedTableWriter::unwritten_data`].
    pub failed_rows: u64,
    /// Some thread gave up.
    pub is_exiting: bool,
    /// The last error, if any.
    pub last_error: Option<ErrorRecord>,
    /// Per writer thread.
    pub threads: Vec<ThreadStatus>,
}

impl MultithreadedWriterStatus {
    /// Whether any error happened.
    pub fn has_error(&self) -> bool {
        self.last_error.is_some()
    }
}

/// Why [`MultithreadedTableWriter::try_insert`] did not take a row.
#[derive(Debug)]
#[non_exhaustive]
pub enum TryInsertError {
    /// The writer thread's buffer is full; the row was not taken (the caller still has it).
    Full,
    /// The row was refused (bad row, closed writer, failed thread).
    Refused(Error),
}

impl fmt::Display for TryInsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the writer's buffer is full"),
            Self::Refused(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TryInsertError {}

fn error_code(e: &Error) -> &'static str {
    match e {
        Error::StagingFull { .. } => "staging_full",
        Error::Remote { kind, .. } if kind.is_transient() => "remote_unavailable",
        Error::Remote {
            kind: crate::RemoteErrorKind::Unauthenticated,
            ..
        } => "unauthenticated",
        Error::Remote {
            kind: crate::RemoteErrorKind::NotFound,
            ..
        }
        | Error::NoSuchTable { .. } => "table_missing",
        Error::Remote {
            kind: crate::RemoteErrorKind::InvalidArgument,
            ..
        }
        | Error::SchemaMismatch { .. }
        | Error::ColumnCount { .. }
        | Error::ColumnName { .. }
        | Error::NullInNonNullable { .. } => "schema",
        Error::TableClosed { .. }
        | Error::TableFailed { .. }
        | Error::Remote {
            kind: crate::RemoteErrorKind::FailedPrecondition,
            ..
        } => "table_closed",
        Error::EngineShutDown => "engine_shut_down",
        _ => "other",
    }
}

/// One writer thread's buffer. Guarded by `Lane::state`.
struct LaneState {
    columns: Vec<ColumnBuilder>,
    /// Rows in `columns`.
    len: usize,
    /// Finished batches waiting to be sent, oldest first (before `columns`' rows).
    queue: VecDeque<RecordBatch>,
    queued_rows: usize,
    bytes: usize,
    oldest: Option<Instant>,
    /// Rows taken by the thread and being sent.
    in_flight: usize,
    /// Rows inserted (a sequence number per row) and rows done (sent or failed).
    inserted: u64,
    done: u64,
    /// Rows up to this sequence number were published.
    sent_upto: u64,
    flush_to: u64,
    sent: u64,
    failed: Vec<RecordBatch>,
    failed_rows: u64,
    exiting: bool,
    closing: bool,
    last_error: Option<ErrorRecord>,
}

impl LaneState {
    /// The error for a caller whose rows this lane could not write.
    fn failed_error(&self) -> Error {
        let why = self
            .last_error
            .as_ref()
            .map_or_else(String::new, |e| e.message.clone());
        Error::MultithreadedWriterClosed { reason: why }
    }

    fn buffered(&self) -> usize {
        self.len + self.queued_rows
    }

    /// Moves the builders' rows into the queue.
    fn seal(&mut self, staged: &SchemaRef) {
        if self.len == 0 {
            return;
        }
        let columns = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = RecordBatch::try_new(staged.clone(), columns)
            .expect("invariant: builders were made from the schema and checked every value");
        self.queued_rows += self.len;
        self.len = 0;
        self.queue.push_back(batch);
    }
}

struct Lane {
    state: Mutex<LaneState>,
    /// Inserters wait here for room, sync inserters and flushes for `done`.
    progress: Condvar,
    /// The writer thread waits here for work.
    work: Condvar,
}

impl Lane {
    fn new(staged: &SchemaRef, batch_size: usize) -> Result<Self> {
        let columns = staged
            .fields()
            .iter()
            .map(|f| ColumnBuilder::try_new(f, batch_size.min(1 << 16)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Lane {
            state: Mutex::new(LaneState {
                columns,
                len: 0,
                queue: VecDeque::new(),
                queued_rows: 0,
                bytes: 0,
                oldest: None,
                in_flight: 0,
                inserted: 0,
                done: 0,
                sent_upto: 0,
                flush_to: 0,
                sent: 0,
                failed: Vec::new(),
                failed_rows: 0,
                exiting: false,
                closing: false,
                last_error: None,
            }),
            progress: Condvar::new(),
            work: Condvar::new(),
        })
    }
}

struct Shared {
    sink: WriteTarget,
    schema: SchemaRef,
    /// What the lanes build: `schema`, or a keyed table's staged shape.
    staged: SchemaRef,
    /// A keyed table's key columns (empty otherwise).
    key: Vec<usize>,
    /// A keyed table's operation masks (whole-row upsert, delete).
    masks: Option<Masks>,
    name: String,
    options: MultithreadedWriterOptions,
    partition: Option<usize>,
    lanes: Vec<Lane>,
}

/// A pool of writer threads in front of a table, fed by `insert(row)` from any thread.
///
/// See the [module docs](self) for routing, batching and failures. Dropping the writer flushes
/// and joins its threads, like [`wait_for_completion`](Self::wait_for_completion).
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::{Engine, MultithreadedWriterOptions, MultithreadedTableWriter, WriteTarget, Value, DynamicWriterOptions};
///
/// let engine = Engine::builder().manual().build()?;
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("Sym", DataType::Utf8, false),
///     Field::new("Px", DataType::Float64, false),
/// ]));
/// let table = engine.dynamic_table_writer("px", schema, DynamicWriterOptions::default())?.table().clone();
/// let mut mtw = MultithreadedTableWriter::new(
///     WriteTarget::Local(table.clone()),
///     MultithreadedWriterOptions::default().with_thread_count(2).with_partition_column("Sym"),
/// )?;
/// mtw.insert(&["AAPL".into(), 187.5.into()])?;
/// assert!(mtw.insert(&["AAPL".into(), "n/a".into()]).is_err()); // refused at once
/// let status = mtw.wait_for_completion();
/// assert_eq!((status.sent_rows, status.failed_rows), (1, 0));
/// engine.run_cycle();
/// assert_eq!(table.num_rows(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MultithreadedTableWriter {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl MultithreadedTableWriter {
    /// Starts the writer threads in front of `sink`.
    ///
    /// For a remote sink this connects to the server first to learn the table's schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] (zero threads or batch size, unknown partition column),
    /// [`Error::UnsupportedType`], a derived local table ([`Error::InvalidOption`]),
    /// [`Error::Remote`] if a remote server cannot be reached, [`Error::Io`].
    pub fn new(sink: WriteTarget, options: MultithreadedWriterOptions) -> Result<Self> {
        if options.thread_count == 0 || options.batch_size == 0 || options.max_buffered_rows == 0 {
            return Err(Error::InvalidOption {
                option: "thread_count, batch_size and max_buffered_rows",
                reason: "must be at least 1".into(),
            });
        }
        let (schema, name, key) = match &sink {
            WriteTarget::Local(t) => {
                if t.shared.derived {
                    return Err(Error::InvalidOption {
                        option: "sink",
                        reason: format!("table {:?} is derived and takes no rows", t.name()),
                    });
                }
                (
                    t.schema().clone(),
                    t.name().to_owned(),
                    t.key_columns().to_vec(),
                )
            }
            #[cfg(feature = "flight")]
            WriteTarget::Remote { url, table, token } => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let remote = rt.block_on(async {
                    // A short limit: a server that never answers fails `new` quickly.
                    let mut c = crate::flight::Client::connect(url)
                        .await?
                        .with_timeout(crate::flight::CONNECT_TIMEOUT);
                    if let Some(t) = token {
                        c = c.with_token(t)?;
                    }
                    c.table(table).await
                })?;
                let key = remote
                    .key
                    .iter()
                    .map(|k| {
                        remote.schema.index_of(k).map_err(|_| Error::Protocol {
                            message: format!("table {table:?}: key column {k:?} not in its schema"),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                (remote.schema, table.clone(), key)
            }
        };
        let partition = match &options.partition_column {
            Some(col) => Some(schema.index_of(col).map_err(|_| Error::InvalidOption {
                option: "partition_column",
                reason: format!("table {name:?} has no column {col:?}"),
            })?),
            None => None,
        };
        let (staged, masks) = keyed_shape(&name, &schema, &key, partition)?;
        let lanes = (0..options.thread_count)
            .map(|_| Lane::new(&staged, options.batch_size))
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            sink,
            schema,
            staged,
            key,
            masks,
            name,
            options,
            partition,
            lanes,
        });
        // Every connection first, so a failure leaves no thread behind.
        let connections = (0..shared.lanes.len())
            .map(|_| Connection::open(&shared.sink))
            .collect::<Result<Vec<_>>>()?;
        let mut threads = Vec::with_capacity(shared.lanes.len());
        for (i, connection) in connections.into_iter().enumerate() {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("tickertable-mtw-{i}"))
                    .spawn(move || run_lane(&s, i, connection))?,
            );
        }
        Ok(Self { shared, threads })
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

    fn lane_for(&self, row: &[Value<'_>]) -> usize {
        self.lane_of(|c| row.get(c).copied().unwrap_or(Value::Null))
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

    /// Inserts one row: checked now, sent by a writer thread.
    ///
    /// Waits while the thread's buffer is full; in [`FlushMode::Sync`] also waits until the
    /// row's batch is published.
    ///
    /// # Errors
    ///
    /// A schema error naming the column ([`Error::ColumnCount`], [`Error::SchemaMismatch`],
    /// [`Error::ValueOutOfRange`], [`Error::NullInNonNullable`]); [`Error::MultithreadedWriterClosed`]
    /// after `wait_for_completion` or when the row's thread gave up; in sync mode, the error
    /// that made the row's batch fail. A refused row is not buffered.
    pub fn insert(&self, row: &[Value<'_>]) -> Result<()> {
        self.check(row)?;
        self.insert_checked(self.lane_for(row), row_bytes(row), |columns| {
            self.write_row(columns, row);
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
        let (columns, Some(masks)) = (&self.shared.key, &self.shared.masks) else {
            return Err(Error::InvalidOp {
                table: self.shared.name.clone(),
                reason: "delete needs a keyed table".into(),
            });
        };
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
        let ncols = self.shared.schema.fields().len();
        self.insert_checked(self.lane_of(value), row_bytes(key), |builders| {
            for (c, builder) in builders.iter_mut().take(ncols).enumerate() {
                builder.append(&value(c));
            }
            builders[ncols].append(&Value::Bytes(&masks.delete));
        })
    }

    /// Buffers one checked row, written into the lane's builders by `write`.
    fn insert_checked(
        &self,
        lane_ix: usize,
        bytes: usize,
        write: impl FnOnce(&mut [ColumnBuilder]),
    ) -> Result<()> {
        let lane = &self.shared.lanes[lane_ix];
        let mut st = lane.state.lock();
        loop {
            Self::refuse_if_closed(&st, lane_ix)?;
            if self.has_room(&st) {
                break;
            }
            lane.work.notify_one();
            lane.progress.wait_for(&mut st, Duration::from_millis(50));
        }
        write(&mut st.columns);
        let seq = self.appended(&mut st, lane, bytes);
        if self.shared.options.flush_mode == FlushMode::Sync {
            st.flush_to = st.flush_to.max(seq);
            lane.work.notify_one();
            while st.done < seq {
                lane.progress.wait_for(&mut st, Duration::from_millis(50));
            }
            // Batches go out in order, so the row was published iff `sent_upto` reached it.
            if st.sent_upto < seq {
                return Err(st.failed_error());
            }
        }
        Ok(())
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
        let lane_ix = self.lane_for(row);
        let lane = &self.shared.lanes[lane_ix];
        let mut st = lane.state.lock();
        Self::refuse_if_closed(&st, lane_ix).map_err(TryInsertError::Refused)?;
        if !self.has_room(&st) {
            lane.work.notify_one();
            return Err(TryInsertError::Full);
        }
        self.write_row(&mut st.columns, row);
        let seq = self.appended(&mut st, lane, row_bytes(row));
        if self.shared.options.flush_mode == FlushMode::Sync {
            st.flush_to = st.flush_to.max(seq);
            lane.work.notify_one();
        }
        Ok(())
    }

    fn refuse_if_closed(st: &LaneState, lane: usize) -> Result<()> {
        if st.closing {
            return Err(Error::MultithreadedWriterClosed {
                reason: "wait_for_completion was called".into(),
            });
        }
        if st.exiting {
            let why = st
                .last_error
                .as_ref()
                .map_or_else(String::new, |e| e.message.clone());
            return Err(Error::MultithreadedWriterClosed {
                reason: format!("writer thread {lane} gave up: {why}"),
            });
        }
        Ok(())
    }

    fn has_room(&self, st: &LaneState) -> bool {
        let o = &self.shared.options;
        st.buffered() == 0
            || (st.buffered() < o.max_buffered_rows && st.bytes < o.max_buffered_bytes)
    }

    /// Writes a checked row into a lane's builders: a whole-row upsert in a keyed table.
    fn write_row(&self, columns: &mut [ColumnBuilder], row: &[Value<'_>]) {
        for (builder, v) in columns.iter_mut().zip(row) {
            builder.append(v);
        }
        if let Some(masks) = &self.shared.masks {
            columns[row.len()].append(&Value::Bytes(&masks.upsert));
        }
    }

    /// Records one row written into the lane's builders; returns its sequence number.
    fn appended(&self, st: &mut MutexGuard<'_, LaneState>, lane: &Lane, bytes: usize) -> u64 {
        st.len += 1;
        st.bytes += bytes;
        st.inserted += 1;
        if st.oldest.is_none() {
            st.oldest = Some(Instant::now());
            lane.work.notify_one();
        } else if st.len >= self.shared.options.batch_size {
            lane.work.notify_one();
        }
        st.inserted
    }

    /// Inserts rows handed back by [`unwritten_data`](Self::unwritten_data) (usually of another
    /// writer), keeping their order per partition.
    ///
    /// # Errors
    ///
    /// A schema error if a batch does not fit; [`Error::MultithreadedWriterClosed`]. Nothing of a refused
    /// batch is taken.
    ///
    /// # Panics
    ///
    /// Never: lane indices are reduced modulo the lane count.
    pub fn insert_unwritten(&self, batches: Vec<RecordBatch>) -> Result<()> {
        let n = self.shared.lanes.len();
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
                _ => vec![(self.lane_for(&[]), batch)],
            };
            for (lane_ix, part) in parts {
                let lane = &self.shared.lanes[lane_ix];
                let mut st = lane.state.lock();
                Self::refuse_if_closed(&st, lane_ix)?;
                st.seal(&self.shared.staged);
                let rows = part.num_rows();
                st.bytes += part.get_array_memory_size();
                st.queued_rows += rows;
                st.inserted += rows as u64;
                st.queue.push_back(part);
                st.oldest.get_or_insert_with(Instant::now);
                lane.work.notify_one();
            }
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
            && !batch
                .schema_ref()
                .metadata()
                .contains_key(crate::table::keyed::OP_METADATA);
        if !in_order {
            return Err(Error::InvalidOption {
                option: "batch",
                reason: "unwritten rows have every column, in order".into(),
            });
        }
        Ok(batch)
    }

    /// Sends everything buffered now and waits until it is published or failed.
    ///
    /// # Errors
    ///
    /// [`Error::MultithreadedWriterClosed`] with the last error if a thread gave up.
    pub fn flush(&self) -> Result<()> {
        for lane in &self.shared.lanes {
            let mut st = lane.state.lock();
            st.flush_to = st.inserted;
            lane.work.notify_one();
        }
        for lane in &self.shared.lanes {
            let mut st = lane.state.lock();
            while st.done < st.flush_to && !st.exiting {
                lane.progress.wait_for(&mut st, Duration::from_millis(50));
            }
            if st.exiting {
                return Err(st.failed_error());
            }
        }
        Ok(())
    }

    /// The writer's counters and last error, in total and per thread.
    pub fn status(&self) -> MultithreadedWriterStatus {
        let mut status = MultithreadedWriterStatus::default();
        for lane in &self.shared.lanes {
            let st = lane.state.lock();
            let t = ThreadStatus {
                sent_rows: st.sent,
                unsent_rows: (st.buffered() + st.in_flight) as u64,
                failed_rows: st.failed_rows,
                is_exiting: st.exiting,
            };
            status.sent_rows += t.sent_rows;
            status.unsent_rows += t.unsent_rows;
            status.failed_rows += t.failed_rows;
            status.is_exiting |= t.is_exiting;
            if st.last_error.is_some() {
                status.last_error.clone_from(&st.last_error);
            }
            status.threads.push(t);
        }
        status
    }

    /// Takes every row not yet written (failed, and still buffered in threads that gave up)
    /// out of the writer, as batches in order per thread. Hand them to
    /// [`insert_unwritten`](Self::insert_unwritten) of a new writer.
    pub fn unwritten_data(&self) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        for lane in &self.shared.lanes {
            let mut st = lane.state.lock();
            out.append(&mut st.failed);
            st.failed_rows = 0;
            if st.exiting || st.closing {
                st.seal(&self.shared.staged);
                out.extend(st.queue.drain(..));
                st.queued_rows = 0;
                st.bytes = 0;
            }
        }
        out
    }

    /// Sends everything, stops taking rows, joins the threads and returns the final status.
    /// Rows that could not be written stay available through
    /// [`unwritten_data`](Self::unwritten_data).
    pub fn wait_for_completion(&mut self) -> MultithreadedWriterStatus {
        self.close();
        self.status()
    }

    fn close(&mut self) {
        for lane in &self.shared.lanes {
            let mut st = lane.state.lock();
            st.closing = true;
            st.flush_to = st.inserted;
            lane.work.notify_one();
            lane.progress.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for MultithreadedTableWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for MultithreadedTableWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultithreadedTableWriter")
            .field("sink", &self.shared.sink)
            .field("threads", &self.shared.lanes.len())
            .finish_non_exhaustive()
    }
}

/// A number per inserting thread, given out in order on first use, so inserting threads
/// spread over lanes evenly (a hash of thread ids can put two busy threads on one lane).
/// What the lanes of a writer into a keyed table build (the staged shape and the mask of a
/// whole-row upsert); the schema itself and no mask for other tables. A keyed table's
/// partition column must be a key column, so every write to one key takes one lane.
fn keyed_shape(
    name: &str,
    schema: &SchemaRef,
    key: &[usize],
    partition: Option<usize>,
) -> Result<(SchemaRef, Option<Masks>)> {
    if let Some(p) = partition.filter(|p| !key.is_empty() && !key.contains(p)) {
        return Err(Error::InvalidOption {
            option: "partition_column",
            reason: format!(
                "table {name:?} is keyed: the partition column must be a key column, not {:?}",
                schema.field(p).name()
            ),
        });
    }
    Ok(if key.is_empty() {
        (schema.clone(), None)
    } else {
        (
            crate::table::keyed::staged_schema(schema),
            Some(Masks::new(schema.fields().len())),
        )
    })
}

fn thread_seq() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        // Relaxed: a unique number is all that is needed; nothing is published with it.
        static SEQ: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SEQ.with(|s| *s)
}

/// A writer thread: waits for a batch to be due, takes it, publishes it with retries.
fn run_lane(shared: &Shared, ix: usize, mut conn: Connection) {
    let o = &shared.options;
    let lane = &shared.lanes[ix];
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (ix as u64 + 1);
    loop {
        let (batches, rows, upto) = {
            let mut st = lane.state.lock();
            loop {
                let buffered = st.buffered();
                let due_by_size = o.flush_mode != FlushMode::Manual && buffered >= o.batch_size;
                let due_by_age = o.flush_mode != FlushMode::Manual
                    && st.oldest.is_some_and(|t| t.elapsed() >= o.throttle);
                let due_by_flush = st.flush_to > st.done && buffered > 0;
                if buffered > 0 && (due_by_size || due_by_age || due_by_flush || st.closing) {
                    break;
                }
                if st.closing && buffered == 0 {
                    st.done = st.inserted;
                    lane.progress.notify_all();
                    return;
                }
                if st.flush_to > st.done && buffered == 0 {
                    st.done = st.done.max(st.flush_to.min(st.inserted));
                    lane.progress.notify_all();
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
            st.seal(&shared.staged);
            let batches: Vec<RecordBatch> = st.queue.drain(..).collect();
            let rows = st.queued_rows;
            st.queued_rows = 0;
            st.bytes = 0;
            st.oldest = None;
            st.in_flight = rows;
            let upto = st.inserted;
            lane.progress.notify_all();
            (batches, rows, upto)
        };
        let mut attempt = 0;
        let result = loop {
            match conn.publish(&batches) {
                Ok(()) => break Ok(()),
                Err(e) if is_transient(&e) && attempt < o.max_retries => {
                    let closing = lane.state.lock().closing;
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
        let mut st = lane.state.lock();
        st.in_flight = 0;
        st.done = upto;
        match result {
            Ok(()) => {
                st.sent += rows as u64;
                st.sent_upto = upto;
            }
            Err(e) => {
                tracing::warn!(error = %e, lane = ix, rows, "multithreaded writer thread gave up");
                st.failed_rows += rows as u64;
                st.failed.extend(batches);
                st.last_error = Some(ErrorRecord {
                    code: error_code(&e),
                    message: e.to_string(),
                });
                st.exiting = true;
                // Rows still buffered stay for `unwritten_data`.
                st.done = st.inserted;
                lane.progress.notify_all();
                return;
            }
        }
        lane.progress.notify_all();
    }
}
