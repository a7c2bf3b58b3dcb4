//! Durable tables: a write-ahead log per table in Arrow IPC, replayed on restart, with
//! checkpoints.
//!
//! An engine built with [`Builder::data_dir`](crate::Builder::data_dir) can have durable
//! tables: a table created with [`PublisherOptions::durable`](crate::PublisherOptions::durable)
//! or [`DynamicWriterOptions::durable`](crate::DynamicWriterOptions::durable) writes what each
//! cycle staged into it to its own log, before that cycle's updates are delivered. Creating the
//! table again (same name, schema and kind) on an engine with the same data directory replays
//! the log: the table comes back with the same rows at the same positions (a keyed table with
//! the same slots), its positions continue, and the engine's step jumps to at least the largest
//! step logged. Derived tables are never logged: they are rebuilt from their sources when they
//! are created, as always.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow_array::{Int64Array, RecordBatch};
//! # use arrow_schema::{DataType, Field, Schema};
//! use tickertable::{Engine, PublisherOptions, TableKind};
//!
//! let dir = std::env::temp_dir().join(format!("tickertable-doc-{}", std::process::id()));
//! let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
//! let options = || PublisherOptions::default().with_kind(TableKind::Append).durable();
//! {
//!     let engine = Engine::builder().manual().data_dir(&dir).build()?;
//!     let (_, publisher) = engine.table_publisher("xs", schema.clone(), options())?;
//!     let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])?;
//!     publisher.add(batch)?;
//!     engine.run_cycle(); // logged and synced, then visible
//! }
//! let engine = Engine::builder().manual().data_dir(&dir).build()?;
//! let (xs, _) = engine.table_publisher("xs", schema, options())?;
//! assert_eq!(xs.num_rows(), 2);
//! assert!(engine.step().as_u64() >= 1);
//! # drop(engine);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # File layout
//!
//! ```text
//! <data_dir>/
//!   <table>/                             the table's name, bytes outside [A-Za-z0-9_.-] as %XX
//!     log-000000000000.ttlog             segments, oldest first; a new one at every open,
//!     log-000000000001.ttlog             past the segment size and at every checkpoint
//!     checkpoint-00000000000000000042.arrow    ring and keyed tables: the rows at step 42
//! ```
//!
//! # Record format
//!
//! A segment is a sequence of records. Each record is a 32-byte frame header (magic `TTLR`, a
//! CRC-32 of the rest of the header and the payload, the payload's length, the step the record
//! became visible at, the record's kind) and a payload padded to 8 bytes:
//!
//! - a **segment header** opens every segment: the format version, the table's kind, capacity,
//!   key columns and its end position, and its schema as an Arrow IPC stream with no batch;
//! - a **rows** record holds what one cycle staged into the table: for append, blink and ring
//!   tables the rows it appended, with the position of the first (the others follow); for a
//!   keyed table its staged input in the shapes it was staged in (upserts, partial upserts,
//!   deletes, mixed), so replay through the same apply gives the same slots. Its batches are
//!   Arrow IPC streams, one per run of batches with the same schema;
//! - a rows record (and a segment header, carrying the last one's) may end with the table's
//!   **source cursor**: opaque bytes a feed staged with the rows, such as a Kafka source's
//!   next offset per partition, so the rows and the feed's position are in one checksummed
//!   frame and replay gives the last one back ([`ReplayReport::source_cursor`]; the
//!   format is in `durable/format.rs`). Logs without cursors read as before;
//! - a **close** record says the table's writer closed it (cleanly or with a failure); replay
//!   reports it ([`ReplayReport::closed_at`]) and the table created again is open.
//!
//! Each record is a complete Arrow IPC *stream* (schema message, batches, end-of-stream),
//! rather than one Arrow IPC *file* per segment: the file format ends with a footer indexing
//! every batch, written when the file is finished, so a crash leaves a file without one and
//! appending means rewriting it; stream messages are self-delimiting and can be appended one
//! at a time. Neither format has a checksum, hence the frame around each record. A
//! self-contained record (its own schema message, a few hundred bytes per table per cycle)
//! can be decoded, skipped or cut off alone: a torn tail never takes a dictionary or schema
//! that later records need with it. Batches are not copied to be written: a big record goes
//! to the OS with one `writev` of its batches' own buffers. Replay of an append table maps
//! its segments into memory and decodes each record in place, so the table's arrays point
//! at the page cache's pages (clean, evictable, no second copy; see `durable/mapped.rs` for
//! why that is sound); other kinds read each record into one buffer and decode it without
//! copying.
//!
//! # Sync policies and what "acknowledged" means
//!
//! The policy is per engine ([`Builder::sync_policy`](crate::Builder::sync_policy)), not per
//! table: a cycle makes all its tables visible at one step, so a cycle that waits for one
//! table's fsync delays them all anyway, and one policy gives "acknowledged" one meaning for
//! every table of the engine.
//!
//! | [`SyncPolicy`] | before a cycle's updates are delivered | a row a listener saw survives |
//! |---|---|---|
//! | [`EveryCycle`](SyncPolicy::EveryCycle) (default) | its records are written and fsynced | a crash of the process or the machine |
//! | [`Interval(d)`](SyncPolicy::Interval) | its records are handed to the writer; it fsyncs at most every `d` | a crash of the process once written (at once, in practice); of the machine after the next sync |
//! | [`Never`](SyncPolicy::Never) | as `Interval`; the OS decides when to write back | a crash of the process once written; of the machine, if the OS wrote it |
//!
//! With `Never` and `Interval` a cycle does not wait for the log, except when the writer is
//! 16 cycles behind: then it waits for the oldest of them to be written (back-pressure, so a
//! disk slower than the producers slows the cycle instead of filling memory).
//!
//! So with `EveryCycle`, a [`TablePublisher::add`](crate::TablePublisher::add), a
//! `write_row` followed by a cycle, or a Flight `DoPut`, whose rows a listener or subscription
//! has seen, is on disk. A clean shutdown syncs everything whatever the policy. If writing or
//! syncing a table's log fails, the table fails with [`Error::LogWrite`] (its listeners get it
//! in `on_failure`); with `EveryCycle` the update of the cycle that could not be logged is not
//! delivered.
//!
//! # Locking
//!
//! The log is written by one writer thread per engine, never under the global lock. The cycle
//! drains and applies as always, then hands the writer the cycle's records (the staged
//! `RecordBatch`es, shared, O(batches)) and, with `EveryCycle`, waits for the fsync holding
//! only the *upgradable* side of the global lock: readers ([`EngineHandle::read`], subscribing,
//! listing tables) go on meanwhile and see the previous step, [`Table::snapshot`] takes no lock
//! at all, writers keep staging for the next cycle, and only what needs the exclusive side
//! (creating a table, another cycle) waits. Then the cycle takes the exclusive side back,
//! publishes and delivers. The time it waited is [`CycleStats::log_wait`], outside
//! [`CycleStats::duration`].
//!
//!
//! `benches/durable_log.rs` measures it: a W3 cycle (10,000 rows) with the log off, `Never`
//! and `EveryCycle`, printing the exclusive-lock time of a cycle next to its wait for the log.
//!
//! [`EngineHandle::read`]: crate::EngineHandle::read
//! [`Table::snapshot`]: crate::Table::snapshot
//! [`CycleStats::log_wait`]: crate::CycleStats::log_wait
//! [`CycleStats::duration`]: crate::CycleStats::duration
//!
//! # Replay
//!
//! Creating a durable table replays it before it is added (without the global lock): the
//! newest intact checkpoint, then every record after the checkpoint's step, in order.
//! Append and keyed tables decode every record; a ring decodes only the records its capacity
//! keeps; a blink table decodes none (it comes back empty, its positions continuing). A
//! frame that is cut off, has a bad checksum, or does not follow the record before it (its
//! position or step) ends the log there: it is reported ([`Error::LogCorrupt`] in
//! [`EngineHandle::recent_errors`](crate::EngineHandle::recent_errors), in
//! [`ReplayReport::corruption`] and as a `tracing` warning), the segment is truncated before
//! it and later segments are renamed `*.corrupt`; everything before it is replayed, nothing
//! after it. A schema or kind other than the logged one is refused with
//! [`Error::SchemaChanged`] / [`Error::KindChanged`], naming both. What replay did is
//! [`EngineHandle::replay_report`](crate::EngineHandle::replay_report); the engine's totals
//! (tables, rows, time) are in [`LogStats`], part of
//! [`EngineStats::log`](crate::EngineStats::log), with the bytes logged and the fsyncs.
//! Replay costs O(log bytes after the checkpoint) for append and keyed tables, O(log
//! records) plus O(capacity) for a ring, O(log records) for a blink table.
//!
//! # Checkpoints
//!
//! A ring table and a keyed table are checkpointed once their log since the last checkpoint
//! exceeds both the segment size and twice the last checkpoint: the writer asks, the next
//! cycle hands it the table's chunks (an immutable, shared view, O(1); a keyed table with a
//! capacity adds its keys' recency order, O(keys), which is O(1) per row logged since a
//! checkpoint follows at least twice the table's size of log), the
//! writer starts a new segment, and a checkpoint thread writes the rows as an Arrow IPC file
//! (see `durable/checkpoint.rs`), syncs and renames it, then deletes the older segments and
//! checkpoints. Nothing of this runs on the cycle thread.
//!
//! # Limits
//!
//! How big the log grows, with `S` the segment size ([`Builder::log_segment_bytes`],
//! default 64 MiB) and `T` the bytes of the table's rows:
//!
//! - ring, keyed: at most about `T` (the checkpoint) plus `max(S, 2T)` plus one
//!   segment: bounded by the table's size, not its history;
//! - append: everything ever appended, `T` (an append table holds all its rows in memory
//!   anyway);
//! - blink: its whole history, without bound (it is the table's only record of its rows, so
//!   that a derived append or ring table can be rebuilt from it); delete old segments by hand;
//!
//! A derived append or ring table over a durable blink table made with
//! [`ring_table`](crate::EngineHandle::ring_table) or
//! [`blink_to_append_only`](crate::EngineHandle::blink_to_append_only) starts, as over any
//! blink table, with the blink's current rows; one made with
//! [`history_table`](crate::EngineHandle::history_table) starts with the blink's logged
//! history (every row its log holds, across restarts; a ring the newest of them), read
//! without the global lock (`durable/history.rs`).
//!
//! # One engine per directory
//!
//! An engine holds its data directory with a lock file, `<data_dir>/.lock`, made with
//! `create_new` (`O_EXCL`) and holding the engine's process id (and, on Linux, the process's
//! start time, so a reused pid is not mistaken for the holder). A second engine on the same
//! directory, in this process or another, is refused with [`Error::DataDirLocked`] naming the
//! directory and the holding pid. A lock file left by a process that is gone (killed, or the
//! machine crashed) is stale: the next engine takes it over, and says so in a `tracing`
//! warning. Where liveness cannot be checked (no `/proc`), a lock file is taken as held;
//! delete it by hand once no engine runs. The file is removed when the engine is dropped.
//! Names are never `.`-prefixed on disk (a table's directory escapes a leading `.`), so the
//! file cannot clash with a table.
//!
//! The segments an append table was replayed from, and those of a durable blink table a
//! history table ([`EngineHandle::history_table`](crate::EngineHandle::history_table)) was
//! read from, are mapped for as long as those rows live (deleting such a segment frees its
//! space only then); if the disk fails to read a mapped page back after the kernel dropped
//! it, touching the row raises `SIGBUS` rather than an error, so keep data directories on
//! local disks. Truncating or rewriting segments by hand under a running engine is not
//! supported (reading a row of a truncated page raises `SIGBUS`). Copying them, or deleting
//! them, is safe.
//!
//! # Dropping a durable table
//!
//! [`EngineHandle::drop_table`](crate::EngineHandle::drop_table) deletes a durable table's
//! log and checkpoints, like SQL's `DROP TABLE`: creating the name again starts from nothing
//! rather than replaying the dropped rows. The writer first finishes what it was handed for
//! the table and closes its files (and a checkpoint being written for it ends); then the
//! table's directory is renamed into `<data_dir>/.dropped/` (one atomic step: from then on
//! the name is free and nothing replays the old rows) and deleted. If deleting fails, what is
//! left in `.dropped/` is reported ([`EngineHandle::recent_errors`]) and is never replayed;
//! delete it by hand. The files are deleted rather than archived because a dropped table's
//! log would otherwise grow the directory without bound and with no owner; copy the table's
//! directory first to keep it.
//!
//! [`EngineHandle::recent_errors`]: crate::EngineHandle::recent_errors
//!
//! [`Builder::log_segment_bytes`]: crate::Builder::log_segment_bytes

pub(crate) mod catalog;
pub(crate) mod checkpoint;
pub(crate) mod files;
pub(crate) mod format;
pub(crate) mod history;
pub(crate) mod lock;
// The crate's one module with `unsafe` (mapping segments for replay); its docs say why it
// is sound.
#[allow(unsafe_code)]
pub(crate) mod mapped;
pub(crate) mod replay;
pub(crate) mod writer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::step::Step;

/// The default size past which a log segment is closed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Whether a table is logged; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// In memory only (the default).
    #[default]
    None,
    /// Every cycle's input is logged to the engine's data directory and replayed when the
    /// table is created again.
    Log,
}

/// When a durable table's log is fsynced, and so what "acknowledged" means; see the
/// [module docs](self#sync-policies-and-what-acknowledged-means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Never fsync (the OS writes back when it will); a clean shutdown still syncs.
    Never,
    /// Write and fsync each cycle's records before the cycle delivers its updates.
    #[default]
    EveryCycle,
    /// Fsync at most this often, off the cycle.
    Interval(Duration),
}

/// What replaying a durable table found; see
/// [`EngineHandle::replay_report`](crate::EngineHandle::replay_report).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayReport {
    /// The table.
    pub table: String,
    /// How long reading the checkpoint and the log took.
    pub duration: Duration,
    /// The step of the checkpoint replay started from.
    pub checkpoint: Option<Step>,
    /// The rows of that checkpoint.
    pub checkpoint_rows: u64,
    /// Rows records replayed after the checkpoint.
    pub records: u64,
    /// Rows in those records (staged rows for a keyed table).
    pub rows: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    /// Segments read.
    pub segments: usize,
    /// Bytes cut off or set aside as corrupt.
    pub truncated_bytes: u64,
    /// The corruption that ended the log early, if any ([`Error::LogCorrupt`]).
    pub corruption: Option<Arc<Error>>,
    /// The largest step in the table's files.
    pub last_step: Step,
    /// The step a close record was logged at: the table's writer closed it.
    pub closed_at: Option<Step>,
    /// The failure it closed with, if it failed.
    pub failure: Option<String>,
    /// The last source cursor logged: what the table's feed staged with its rows (a Kafka
    /// source's next offset per partition), so the feed resumes exactly where the table's
    /// state ends. `None` for a table no feed staged a cursor into.
    pub source_cursor: Option<Vec<u8>>,
}

impl ReplayReport {
    fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            duration: Duration::ZERO,
            checkpoint: None,
            checkpoint_rows: 0,
            records: 0,
            rows: 0,
            bytes: 0,
            segments: 0,
            truncated_bytes: 0,
            corruption: None,
            last_step: Step(0),
            closed_at: None,
            failure: None,
            source_cursor: None,
        }
    }

    /// Keeps the first corruption found.
    fn note(&mut self, e: Error) {
        if self.corruption.is_none() {
            self.corruption = Some(Arc::new(e));
        }
    }

    /// Rows replayed per second (checkpoint rows and logged rows), 0 for an empty replay.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            #[allow(clippy::cast_precision_loss)] // a rate
            let rows = (self.rows + self.checkpoint_rows) as f64;
            rows / secs
        }
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} records, {} rows, {} bytes in {:?}",
            self.table, self.records, self.rows, self.bytes, self.duration
        )?;
        if let Some(c) = self.checkpoint {
            write!(
                f,
                " after a checkpoint at step {c} ({} rows)",
                self.checkpoint_rows
            )?;
        }
        if self.truncated_bytes > 0 {
            write!(f, ", {} bytes truncated", self.truncated_bytes)?;
        }
        Ok(())
    }
}

/// The log writer's totals, part of [`EngineStats`](crate::EngineStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Bytes written to logs (records and segment headers).
    pub bytes: u64,
    /// Rows records written.
    pub records: u64,
    /// Fsyncs of log segments.
    pub fsyncs: u64,
    /// Time spent in them.
    pub fsync_time: Duration,
    /// The longest one.
    pub max_fsync_time: Duration,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Their bytes.
    pub checkpoint_bytes: u64,
    /// Time spent writing them (off the cycle and the log writer).
    pub checkpoint_time: Duration,
    /// Durable tables replayed since the engine started.
    pub replayed_tables: u64,
    /// Rows they replayed (checkpoint rows and logged rows).
    pub replayed_rows: u64,
    /// Time spent replaying them (reading checkpoints and logs, when the tables were
    /// created); per table in [`ReplayReport::duration`].
    pub replay_time: Duration,
}

/// A durable table found in a data directory by
/// [`EngineHandle::logged_tables`](crate::EngineHandle::logged_tables): what creating it again
/// needs (its name, schema, kind, key and limit, as it was logged).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoggedTable {
    /// The table's name.
    pub name: String,
    /// The schema it was logged with.
    pub schema: arrow_schema::SchemaRef,
    /// Its kind.
    pub kind: crate::table::TableKind,
    /// A keyed table's key columns, by name.
    pub key: Vec<String>,
    /// An append table's row limit.
    pub limit: Option<usize>,
}

/// One durable table's share of the log writer's work, part of
/// [`TableStats::log`](crate::TableStats::log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableLogStats {
    /// Bytes written to the table's log (records and segment headers) by this engine.
    pub bytes: u64,
    /// Rows records written.
    pub records: u64,
    /// Fsyncs of the table's segments.
    pub fsyncs: u64,
    /// Time spent in them.
    pub fsync_time: Duration,
    /// How long replaying the table took when it was created ([`ReplayReport::duration`]).
    pub replay_time: Duration,
    /// Rows it replayed (checkpoint rows and logged rows).
    pub replayed_rows: u64,
}
