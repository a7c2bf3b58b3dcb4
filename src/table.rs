//! Tables: the [`Table`] handle, the table kinds and their storage.
//!
//! # Retention
//!
//! Every table is a window `[start, end)` over a log of row positions (a `u64` counting every
//! row ever appended to the table, from 0, never reused). The kinds differ only in how `start`
//! moves after a cycle that appended `[e0, e1)`:
//!
//! | kind | `start` after the cycle |
//! |---|---|
//! | [`TableKind::Append`] | never moves (with a limit, rows past it are refused) |
//! | [`TableKind::Blink`] | `e0`: only this cycle's rows; a cycle with no rows empties it |
//! | [`TableKind::Ring`] | `max(start, e1 - capacity)`: the newest `capacity` rows |
//!
//! A [`TableKind::Keyed`] table is the one kind that is not a window over a log: its rows are
//! its live keys at positions `0..n`, upserted and deleted in place (`table/keyed.rs`).
//!
//! Storage is a persistent deque of Arrow chunks (`table/chunk.rs`); a cycle costs O(rows
//! changed) whatever the table's size, and publishing a snapshot is O(1).

pub(crate) mod append;
pub(crate) mod blink;
pub(crate) mod chunk;
pub(crate) mod keyed;
pub(crate) mod ring;
pub(crate) mod snapshot;

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::engine::Core;
use crate::error::{Error, Result};
use crate::graph::Step;
use crate::publish::staging::Staging;
use crate::subscribe::{
    Listener, ListenerHandle, Registry, Subscription, SubscriptionOptions, TableUpdate,
};
use crate::sync::{Mutex, Weak};
use chunk::ChunkLog;
use snapshot::{SnapshotInner, TableSnapshot};

/// A table's identity within its engine: its creation order, which is also a dependency order
/// (a derived table always has a larger id than its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub(crate) u64);

impl TableId {
    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn index(self) -> usize {
        usize::try_from(self.0).expect("invariant: table ids are indices")
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a table retains rows; see the [module docs](self#retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableKind {
    /// Every row ever appended stays visible.
    Append,
    /// Only the rows of the latest cycle are visible.
    Blink,
    /// The newest `capacity` rows are visible.
    Ring {
        /// How many rows the ring keeps; at least 1.
        capacity: usize,
    },
    /// One row per key: writes upsert (insert or replace by key; a partial row keeps the
    /// other columns' values) and delete by key. Give the key columns with
    /// [`PublisherOptions::with_key`](crate::PublisherOptions::with_key) or
    /// [`DynamicWriterOptions::with_key`](crate::DynamicWriterOptions::with_key).
    ///
    /// Rows sit at positions `0..n` in slot order, not key order: a new key takes a deleted
    /// key's slot or the end, and deleting a key moves the last row into its slot, so the
    /// table shrinks at the end. Updates carry added, removed and modified rows; within one
    /// cycle the last write to a key wins. A cycle costs O(keys written), whatever the table's
    /// size, and deleted slots are reused at once, so churn does not grow memory.
    Keyed {
        /// Keep only the `capacity` most recently written keys (a ring and a key together);
        /// `None` keeps every key. At least 1.
        capacity: Option<usize>,
    },
}

impl TableKind {
    /// This kind if it is keyed (keeping its capacity), otherwise a keyed kind without one:
    /// what giving key columns makes of a table.
    pub(crate) fn keyed(self) -> Self {
        match self {
            TableKind::Keyed { .. } => self,
            _ => TableKind::Keyed { capacity: None },
        }
    }
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableKind::Append => f.write_str("append"),
            TableKind::Blink => f.write_str("blink"),
            TableKind::Ring { capacity } => write!(f, "ring({capacity})"),
            TableKind::Keyed { capacity: None } => f.write_str("keyed"),
            TableKind::Keyed {
                capacity: Some(capacity),
            } => write!(f, "keyed({capacity})"),
        }
    }
}

/// The retention a table applies each cycle: its kind plus what derived tables add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retention {
    Append { limit: Option<u64> },
    Blink { cap: Option<u64> },
    Ring { capacity: u64 },
    Keyed { capacity: Option<u64> },
}

impl Retention {
    pub(crate) fn for_kind(kind: TableKind) -> Result<Self> {
        Ok(match kind {
            TableKind::Append => Retention::Append { limit: None },
            TableKind::Blink => Retention::Blink { cap: None },
            TableKind::Ring { capacity } => {
                if capacity == 0 {
                    return Err(Error::InvalidOption {
                        option: "ring capacity",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                Retention::Ring {
                    capacity: capacity as u64,
                }
            }
            TableKind::Keyed { capacity } => {
                if capacity == Some(0) {
                    return Err(Error::InvalidOption {
                        option: "keyed table capacity",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                Retention::Keyed {
                    capacity: capacity.map(|c| c as u64),
                }
            }
        })
    }

    pub(crate) fn kind(self) -> TableKind {
        match self {
            Retention::Append { .. } => TableKind::Append,
            Retention::Blink { .. } => TableKind::Blink,
            Retention::Ring { capacity } => TableKind::Ring {
                capacity: usize::try_from(capacity).expect("invariant: capacity came from usize"),
            },
            Retention::Keyed { capacity } => TableKind::Keyed {
                capacity: capacity
                    .map(|c| usize::try_from(c).expect("invariant: capacity came from usize")),
            },
        }
    }

    pub(crate) fn is_blink(self) -> bool {
        matches!(self, Retention::Blink { .. })
    }
}

/// What handles, writers and the cycle share about one table.
pub(crate) struct TableShared {
    pub(crate) id: TableId,
    pub(crate) name: Arc<str>,
    pub(crate) schema: SchemaRef,
    /// The schema row writers stage: `schema`, or for a keyed table
    /// [`keyed::staged_schema`].
    pub(crate) staged_schema: SchemaRef,
    /// A keyed table's key columns (empty for other kinds).
    pub(crate) key: Arc<[usize]>,
    pub(crate) retention: Retention,
    /// Fed by another table (not by staging): takes no rows from writers.
    pub(crate) derived: bool,
    /// The last published snapshot; stored by the cycle (under the global lock), loaded by
    /// anyone without a lock.
    pub(crate) snapshot: ArcSwap<SnapshotInner>,
    pub(crate) staging: Staging,
    /// Listeners and subscriptions. Lock order: global lock → this.
    pub(crate) registry: Mutex<Registry>,
    pub(crate) core: Weak<Core>,
}

impl TableShared {
    #[allow(clippy::too_many_arguments)] // one call site, in `Graph::add_table`
    pub(crate) fn new(
        id: TableId,
        name: &str,
        schema: SchemaRef,
        key: Arc<[usize]>,
        retention: Retention,
        derived: bool,
        staging_limit: usize,
        core: Weak<Core>,
        step: Step,
    ) -> Self {
        let snapshot = SnapshotInner {
            step,
            rows: 0..0,
            chunks: imbl::Vector::new(),
            schema: schema.clone(),
        };
        let staged_schema = if key.is_empty() {
            schema.clone()
        } else {
            keyed::staged_schema(&schema)
        };
        Self {
            id,
            name: Arc::from(name),
            schema,
            staged_schema,
            key,
            retention,
            derived,
            snapshot: ArcSwap::from_pointee(snapshot),
            staging: Staging::new(staging_limit),
            registry: Mutex::new(Registry::default()),
            core,
        }
    }

    /// Checks a batch written into this table and returns what to stage (see
    /// [`crate::schema::check_batch`], and for a keyed table [`keyed::check_batch`]).
    ///
    /// # Errors
    ///
    /// A schema error naming the column; nothing is staged.
    pub(crate) fn check_input(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.key.is_empty() {
            let given = batch.schema_ref();
            if given.metadata().contains_key(keyed::OP_METADATA)
                || given.fields().iter().any(|f| f.name() == keyed::OP_COLUMN)
            {
                return Err(Error::InvalidOp {
                    table: self.name.to_string(),
                    reason: format!(
                        "upsert and delete need a keyed table; this one is {}",
                        self.retention.kind()
                    ),
                });
            }
            crate::schema::check_batch(&self.name, &self.schema, batch)
        } else {
            keyed::check_batch(&self.name, &self.schema, &self.key, batch)
        }
    }

    pub(crate) fn core(&self) -> Result<Arc<Core>> {
        self.core.upgrade().ok_or(Error::EngineShutDown)
    }
}

/// A live table: a cheap, cloneable handle (`Arc` inside) to read, listen to and subscribe to.
///
/// Reading never takes the engine's lock: [`snapshot`](Self::snapshot) loads the table's last
/// published [`TableSnapshot`], consistent at one step by construction. To read several tables
/// at the same step, use [`EngineHandle::read`](crate::EngineHandle::read).
#[derive(Clone)]
pub struct Table {
    pub(crate) shared: Arc<TableShared>,
}

impl Table {
    /// The table's id in its engine.
    pub fn id(&self) -> TableId {
        self.shared.id
    }

    /// The table's name, unique in its engine.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.shared.schema
    }

    /// The table's kind.
    pub fn kind(&self) -> TableKind {
        self.shared.retention.kind()
    }

    /// The most rows the table holds: a ring's capacity or an append table's limit.
    pub fn capacity(&self) -> Option<usize> {
        match self.shared.retention {
            Retention::Append { limit } => limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
            Retention::Ring { capacity } => usize::try_from(capacity).ok(),
            Retention::Blink { cap } => cap.map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
            Retention::Keyed { capacity } => {
                capacity.map(|c| usize::try_from(c).unwrap_or(usize::MAX))
            }
        }
    }

    /// A keyed table's key columns, by index (empty for other kinds).
    pub fn key_columns(&self) -> &[usize] {
        &self.shared.key
    }

    /// The table's rows at the last cycle that changed it. Lock-free, O(1).
    pub fn snapshot(&self) -> TableSnapshot {
        TableSnapshot::from_inner(self.shared.snapshot.load_full())
    }

    /// How many rows the table shows now. Lock-free, O(1).
    pub fn num_rows(&self) -> usize {
        range_len(&self.shared.snapshot.load().rows)
    }

    /// Whether the table was closed or failed; a closed table takes no more rows.
    pub fn is_closed(&self) -> bool {
        self.shared.staging.is_closed()
    }

    /// The failure the table's publisher reported, if it failed.
    pub fn failure(&self) -> Option<Arc<Error>> {
        self.shared.registry.lock().failure.clone()
    }

    /// Registers a listener: a callback on the cycle thread with each update of this table.
    ///
    /// The listener runs under the engine's lock: keep it short, never block in it, and never
    /// call back into the engine from it (that deadlocks). A listener that panics is removed,
    /// the panic is reported through [`ListenerHandle::failure`] and
    /// [`EngineHandle::recent_errors`](crate::EngineHandle::recent_errors), and the engine goes
    /// on. Dropping the handle removes the listener.
    ///
    /// # Errors
    ///
    /// [`Error::EngineShutDown`] if the engine is gone; [`Error::TableFailed`] or
    /// [`Error::TableClosed`] if the table already ended (a subscription would yield
    /// [`Event::Failed`](crate::Event::Failed) at once instead).
    pub fn listen(&self, listener: impl Listener) -> Result<ListenerHandle> {
        crate::subscribe::listener::register(&self.shared, Box::new(listener))
    }

    /// Subscribes with default options: a snapshot, then every update, through a bounded queue.
    ///
    /// # Errors
    ///
    /// [`Error::EngineShutDown`] if the engine is gone.
    pub fn subscribe(&self) -> Result<Subscription> {
        self.subscribe_with(SubscriptionOptions::default())
    }

    /// Subscribes with the given queue bounds; see [`Subscription`] for the guarantees.
    ///
    /// # Errors
    ///
    /// [`Error::EngineShutDown`] if the engine is gone.
    pub fn subscribe_with(&self, options: SubscriptionOptions) -> Result<Subscription> {
        crate::subscribe::subscription::register(&self.shared, options)
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("kind", &self.kind())
            .field("rows", &self.num_rows())
            .finish()
    }
}

/// The number of positions in `r`. Rows in memory always fit `usize` on the 64-bit targets
/// the crate runs on, so the cast cannot truncate there.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn range_len(r: &std::ops::Range<u64>) -> usize {
    (r.end - r.start) as usize
}

/// A table's storage and retention, guarded by the global lock.
pub(crate) struct TableState {
    pub(crate) log: ChunkLog,
    pub(crate) retention: Retention,
    /// A keyed table's key index.
    pub(crate) keyed: Option<Box<keyed::KeyedState>>,
}

/// The result of applying one cycle's input to a table.
pub(crate) struct Applied {
    pub(crate) update: Option<TableUpdate>,
    pub(crate) dropped: u64,
}

impl TableState {
    pub(crate) fn new(retention: Retention, schema: &SchemaRef, key: &Arc<[usize]>) -> Self {
        let keyed = match retention {
            Retention::Keyed { capacity } => Some(Box::new(keyed::KeyedState::new(
                schema,
                key.clone(),
                capacity.map(|c| usize::try_from(c).expect("invariant: capacity came from usize")),
            ))),
            _ => None,
        };
        Self {
            log: ChunkLog::default(),
            retention,
            keyed,
        }
    }

    /// Applies one cycle's input: appends, applies retention and builds the update.
    ///
    /// Cost O(input chunks + evicted chunks); rows are never copied (batches are sliced).
    /// Returns no update when the window did not change.
    pub(crate) fn apply(&mut self, step: Step, input: &[RecordBatch]) -> Applied {
        if let Some(keyed) = &mut self.keyed {
            return Applied {
                update: keyed.apply(step, &mut self.log, input),
                dropped: 0,
            };
        }
        let old = self.log.rows();
        let incoming: u64 = input.iter().map(|b| b.num_rows() as u64).sum();
        let accepted = match self.retention {
            Retention::Append { limit } => append::accepted(old.end - old.start, incoming, limit),
            _ => incoming,
        };
        let e0 = old.end;
        let e1 = e0 + accepted;
        let new_start = match self.retention {
            Retention::Append { .. } => old.start,
            Retention::Blink { cap } => blink::new_start(e0, e1, cap),
            Retention::Ring { capacity } => ring::new_start(old.start, e1, capacity),
            Retention::Keyed { .. } => unreachable!("keyed tables apply in keyed.rs"),
        };
        self.log.evict_to(new_start.min(e0));
        let mut batches = Vec::new();
        let mut pos = e0;
        for batch in input {
            if pos >= e1 {
                break;
            }
            let len = batch.num_rows() as u64;
            let from = pos.max(new_start);
            let to = (pos + len).min(e1);
            if from < to {
                let offset = usize::try_from(from - pos).expect("invariant: within a batch");
                let n = usize::try_from(to - from).expect("invariant: within a batch");
                let slice = if n == batch.num_rows() {
                    batch.clone()
                } else {
                    batch.slice(offset, n)
                };
                batches.push(slice);
            }
            pos += len;
        }
        if new_start >= e0 {
            // Every old row goes; rows before new_start of this cycle were never stored.
            self.log.skip_to(new_start);
        }
        for b in &batches {
            self.log.push(b.clone());
        }
        self.log.evict_to(new_start);
        debug_assert_eq!(self.log.rows(), new_start..e1);
        let removed = old.start..new_start.min(old.end).max(old.start);
        let added = old.end.max(new_start)..e1;
        let update = if removed.is_empty() && added.is_empty() {
            None
        } else {
            Some(TableUpdate {
                step,
                removed,
                added,
                batches,
                modified: crate::subscribe::update::Modified::default(),
            })
        };
        Applied {
            update,
            dropped: incoming - accepted,
        }
    }

    pub(crate) fn snapshot(&self, step: Step, schema: &SchemaRef) -> SnapshotInner {
        SnapshotInner {
            step,
            rows: self.log.rows(),
            chunks: self.log.chunks().clone(),
            schema: schema.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn schema1() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    fn no_key() -> Arc<[usize]> {
        Arc::from(Vec::new())
    }

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = schema1();
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    fn rows(state: &TableState) -> Vec<i64> {
        state
            .log
            .chunks()
            .iter()
            .flat_map(|c| {
                c.batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn smoke() {
        let mut t = TableState::new(Retention::Append { limit: None }, &schema1(), &no_key());
        let a = t.apply(Step(1), &[batch(0..3)]);
        let u = a.update.unwrap();
        assert_eq!((u.removed, u.added), (0..0, 0..3));
        assert_eq!(rows(&t), vec![0, 1, 2]);
    }

    #[test]
    fn ring_batch_larger_than_capacity_keeps_its_tail_and_reports_clamped_ranges() {
        let mut t = TableState::new(Retention::Ring { capacity: 4 }, &schema1(), &no_key());
        t.apply(Step(1), &[batch(0..2)]);
        let u = t
            .apply(Step(2), &[batch(2..5), batch(5..12)])
            .update
            .unwrap();
        assert_eq!(rows(&t), vec![8, 9, 10, 11]);
        assert_eq!(u.removed, 0..2);
        assert_eq!(u.added, 8..12);
        assert_eq!(
            u.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            4
        );
    }

    #[test]
    fn blink_with_no_rows_empties_and_then_reports_nothing() {
        let mut t = TableState::new(Retention::Blink { cap: None }, &schema1(), &no_key());
        t.apply(Step(1), &[batch(0..3)]);
        let u = t.apply(Step(2), &[]).update.unwrap();
        assert_eq!((u.removed, u.added), (0..3, 3..3));
        assert!(t.apply(Step(3), &[]).update.is_none());
    }

    #[test]
    fn append_limit_drops_rows_past_it() {
        let mut t = TableState::new(Retention::Append { limit: Some(5) }, &schema1(), &no_key());
        let a = t.apply(Step(1), &[batch(0..3), batch(3..7)]);
        assert_eq!(a.dropped, 2);
        assert_eq!(rows(&t), vec![0, 1, 2, 3, 4]);
        let a = t.apply(Step(2), &[batch(7..9)]);
        assert!(a.update.is_none());
        assert_eq!(a.dropped, 2);
    }
}
