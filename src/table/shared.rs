//! What every part shares about one table: its identity and schema, its published snapshot,
//! its staging, its consumers and its lifecycle.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::publish::staging::Staging;
use crate::step::Step;
use crate::subscribe::registry::Registry;
use crate::sync::Mutex;
use crate::table::keyed;
use crate::table::kind::Retention;
use crate::table::lifecycle::Lifecycle;
use crate::table::snapshot::SnapshotInner;

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

/// What a new table is: its name, schema, retention, key columns and source.
#[derive(Debug, Clone)]
pub(crate) struct TableSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: SchemaRef,
    pub(crate) retention: Retention,
    /// A keyed table's key columns (empty for other kinds).
    pub(crate) key: Arc<[usize]>,
    /// The table a derived table is fed by.
    pub(crate) source: Option<TableId>,
    /// Whether the table is logged (`durable/`).
    pub(crate) durable: bool,
    /// A copying derived table's first rows before its source's current ones: a durable
    /// blink source's logged history (`EngineHandle::history_table`); empty otherwise.
    pub(crate) history: Vec<arrow_array::RecordBatch>,
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
    /// The table this one is derived from; a derived table takes no rows from writers.
    pub(crate) source: Option<TableId>,
    /// Whether the table is logged to the engine's data directory.
    pub(crate) durable: bool,
    /// The last published snapshot; stored by the cycle (under the global lock), loaded by
    /// anyone without a lock.
    pub(crate) snapshot: ArcSwap<SnapshotInner>,
    pub(crate) staging: Staging,
    /// Listeners and subscription queues (see the lock order in `graph`).
    pub(crate) consumers: Mutex<Registry>,
    pub(crate) lifecycle: Lifecycle,
}

impl TableShared {
    pub(crate) fn new(id: TableId, spec: TableSpec<'_>, staging_limit: usize, step: Step) -> Self {
        let TableSpec {
            name,
            schema,
            retention,
            key,
            source,
            durable,
            history: _,
        } = spec;
        let snapshot = SnapshotInner {
            step,
            rows: 0..0,
            chunks: imbl::Vector::new(),
            schema: schema.clone(),
            key: key.clone(),
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
            source,
            durable,
            snapshot: ArcSwap::from_pointee(snapshot),
            staging: Staging::new(staging_limit),
            consumers: Mutex::new(Registry::default()),
            lifecycle: Lifecycle::default(),
        }
    }

    /// Whether the table is fed by another table rather than by writers.
    pub(crate) fn is_derived(&self) -> bool {
        self.source.is_some()
    }

    pub(crate) fn is_keyed(&self) -> bool {
        !self.key.is_empty()
    }

    /// Checks a batch written into this table and returns what to stage (see
    /// [`crate::schema::check_batch`], and for a keyed table [`keyed::check_batch`]).
    ///
    /// # Errors
    ///
    /// A schema error naming the column, or [`Error::InvalidOp`] for a keyed operation on a
    /// table that is not keyed; nothing is staged.
    pub(crate) fn check_input(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.is_keyed() {
            return keyed::check_batch(&self.name, &self.schema, &self.key, batch);
        }
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
    }
}
