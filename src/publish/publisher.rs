//! `TablePublisher`: publishes whole Arrow batches into a table.

use std::fmt;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::durable::Durability;
use crate::error::{Error, Result, TryPublishError};
use crate::graph::stage::{self, Rejected};
use crate::graph::Core;
use crate::publish::staging::Refused;
use crate::table::lifecycle::Closing;
use crate::table::{Table, TableKind};

/// Options of [`EngineHandle::table_publisher`](crate::EngineHandle::table_publisher).
pub struct PublisherOptions {
    pub(crate) kind: TableKind,
    pub(crate) key: Vec<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) durability: Durability,
    pub(crate) on_flush: Option<OnFlush>,
    pub(crate) on_shutdown: Option<crate::graph::ShutdownFn>,
}

/// A publisher's `on_flush` callback, as the user gives it.
pub(crate) type OnFlush = Box<dyn FnMut(&TablePublisher) + Send>;

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            kind: TableKind::Blink,
            key: Vec::new(),
            limit: None,
            durability: Durability::None,
            on_flush: None,
            on_shutdown: None,
        }
    }
}

impl PublisherOptions {
    /// The table's kind (default [`TableKind::Blink`], as Deephaven's `table_publisher`).
    #[must_use]
    pub fn with_kind(mut self, kind: TableKind) -> Self {
        self.kind = kind;
        self
    }

    /// Makes the table keyed by these columns ([`TableKind::Keyed`], keeping a capacity given
    /// with [`with_kind`](Self::with_kind)): [`add`](TablePublisher::add) and
    /// [`upsert`](TablePublisher::upsert) then insert or replace rows by key, and
    /// [`delete`](TablePublisher::delete) removes keys.
    #[must_use]
    pub fn with_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.key = columns.into_iter().map(Into::into).collect();
        self.kind = self.kind.keyed();
        self
    }

    /// An append table that stops taking rows once it holds `rows` rows: the rows past it are
    /// counted in [`CycleStats::rows_dropped`](crate::CycleStats::rows_dropped) and
    /// [`TableStats::rows_dropped`](crate::TableStats::rows_dropped), as a
    /// [`blink_to_append_only`](crate::EngineHandle::blink_to_append_only) limit is. Only for
    /// [`TableKind::Append`]; creating a table of another kind with a limit is refused.
    #[must_use]
    pub fn with_limit(mut self, rows: usize) -> Self {
        self.limit = Some(rows);
        self
    }

    /// Whether the table is logged to the engine's data directory and replayed when it is
    /// created again (default [`Durability::None`]); see [`crate::durable`]. A durable table
    /// on an engine without a data directory is refused with [`Error::InvalidOption`].
    ///
    /// [`Error::InvalidOption`]: crate::Error::InvalidOption
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Shorthand for [`with_durability(Durability::Log)`](Self::with_durability).
    #[must_use]
    pub fn durable(self) -> Self {
        self.with_durability(Durability::Log)
    }

    /// A callback run on the cycle thread at the start of every cycle, before staging is
    /// drained: batches it [`add`](TablePublisher::add)s land in that same cycle. It runs under
    /// the global lock: keep it short. If it panics, the table fails with
    /// [`Error::CallbackPanicked`] and the engine goes on.
    #[must_use]
    pub fn with_on_flush(mut self, f: impl FnMut(&TablePublisher) + Send + 'static) -> Self {
        self.on_flush = Some(Box::new(f));
        self
    }

    /// A callback run once, outside the lock, when the table closes or fails or the engine
    /// shuts down, whichever comes first.
    #[must_use]
    pub fn with_on_shutdown(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_shutdown = Some(Box::new(f));
        self
    }
}

impl fmt::Debug for PublisherOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublisherOptions")
            .field("kind", &self.kind)
            .field("key", &self.key)
            .field("limit", &self.limit)
            .field("durability", &self.durability)
            .field("on_flush", &self.on_flush.is_some())
            .field("on_shutdown", &self.on_shutdown.is_some())
            .finish()
    }
}

/// Publishes Arrow batches into one table; cheap to clone and share between threads.
///
/// Each [`add`](Self::add) checks the batch against the schema and stages it whole: it becomes
/// visible at the next cycle, all of it, never split across cycles and never interleaved with
/// another `add`. The batch is not copied: it becomes one of the table's chunks as it is.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{Int64Array, RecordBatch};
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::{Engine, PublisherOptions};
///
/// let engine = Engine::builder().manual().build()?;
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
/// let (table, publisher) = engine.table_publisher("xs", schema.clone(), PublisherOptions::default())?;
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))])?;
/// publisher.add(batch)?;
/// assert_eq!(table.num_rows(), 0); // staged, not visible yet
/// engine.run_cycle();
/// assert_eq!(table.num_rows(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TablePublisher {
    table: Table,
    core: Arc<Core>,
}

impl TablePublisher {
    pub(crate) fn new(table: Table, core: Arc<Core>) -> Self {
        Self { table, core }
    }

    /// The table published into.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Stages a batch for the next cycle.
    ///
    /// When staging is full, waits for the cycle to drain it if the engine runs a cycle
    /// thread and this is not it (say, a call from `on_flush`); otherwise fails at once. An
    /// empty batch is accepted and does nothing.
    ///
    /// # Errors
    ///
    /// A schema error ([`Error::ColumnCount`], [`Error::ColumnName`],
    /// [`Error::SchemaMismatch`], [`Error::NullInNonNullable`]), [`Error::TableClosed`],
    /// [`Error::EngineShutDown`], [`Error::StagingFull`] or [`Error::BatchTooLarge`] (a batch
    /// with more rows than the staging limit). Nothing of the batch is applied.
    #[allow(clippy::needless_pass_by_value)] // by value: the batch becomes a chunk as it is
    pub fn add(&self, batch: RecordBatch) -> Result<()> {
        stage::batches(
            &self.core,
            &self.table.shared,
            std::slice::from_ref(&batch),
            true,
        )
        .map(drop)
        .map_err(|e| e.into_error(&self.core, &self.table.shared))
    }

    /// Stages `batches` together with a feed's source cursor (see `durable::format`), without
    /// waiting: `Ok(false)` when staging has no room now (nothing staged; retry next cycle).
    /// No rows stage nothing, the cursor included.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add), but for [`Error::StagingFull`].
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn add_with_cursor(
        &self,
        batches: &[RecordBatch],
        cursor: arrow_buffer::Buffer,
    ) -> Result<bool> {
        let shared = &self.table.shared;
        match stage::batches_with_cursor(&self.core, shared, batches, false, Some(cursor)) {
            Ok(_) => Ok(true),
            Err(Rejected::Refused(Refused::Full(_))) => Ok(false),
            Err(e) => Err(e.into_error(&self.core, shared)),
        }
    }

    /// Upserts a batch into a keyed table: each row inserts its key or replaces the key's row.
    /// A batch with only some of the columns (by name, the key among them) is a partial
    /// upsert: the columns left out keep their values, or are null for a new key, so they
    /// must be nullable. Within a cycle the last write to a key wins. Stages like
    /// [`add`](Self::add), which does the same on a keyed table.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOp`] if the table is not keyed, [`Error::MissingKeyColumn`],
    /// [`Error::NoColumnNamed`], [`Error::UnsetColumn`], and the errors of
    /// [`add`](Self::add). Nothing of the batch is applied.
    pub fn upsert(&self, batch: RecordBatch) -> Result<()> {
        self.require_keyed("upsert")?;
        self.add(batch)
    }

    /// Deletes the keys of a batch's rows from a keyed table; a key that is not there is
    /// ignored. The batch needs the key columns (by name); other columns are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOp`] if the table is not keyed, [`Error::MissingKeyColumn`], and the
    /// errors of [`add`](Self::add). Nothing of the batch is applied.
    #[allow(clippy::needless_pass_by_value)] // by value, as `add` and `upsert` take batches
    pub fn delete(&self, keys: RecordBatch) -> Result<()> {
        self.require_keyed("delete")?;
        self.add(delete_batch(&keys)?)
    }

    fn require_keyed(&self, operation: &str) -> Result<()> {
        if self.table.key_columns().is_empty() {
            return Err(Error::InvalidOp {
                table: self.table.name().to_owned(),
                reason: format!(
                    "{operation} needs a keyed table; this one is {}",
                    self.table.kind()
                ),
            });
        }
        Ok(())
    }

    /// Stages a batch if there is room now; the batch comes back otherwise.
    ///
    /// # Errors
    ///
    /// [`TryPublishError::Full`], [`TryPublishError::Closed`] or
    /// [`TryPublishError::Invalid`] with the schema error (or [`Error::BatchTooLarge`]);
    /// nothing is applied.
    pub fn try_add(&self, batch: RecordBatch) -> Result<(), TryPublishError<RecordBatch>> {
        let shared = &self.table.shared;
        match stage::batches(&self.core, shared, std::slice::from_ref(&batch), false) {
            Ok(_) => Ok(()),
            Err(Rejected::Refused(Refused::Full(_))) => Err(TryPublishError::Full(batch)),
            Err(Rejected::Refused(Refused::Closed)) => Err(TryPublishError::Closed(batch)),
            Err(e) => {
                let e = e.into_error(&self.core, shared);
                Err(TryPublishError::Invalid(batch, Box::new(e)))
            }
        }
    }

    /// Fails the table with `error`: rows staged before this call are still applied, then
    /// listeners get `on_failure`, subscriptions get [`Event::Failed`](crate::Event::Failed)
    /// and end, derived tables fail too, and every later `add` returns
    /// [`Error::TableClosed`]. A second call does nothing. Any error type will do; for a
    /// message alone use [`publish_failure_message`](Self::publish_failure_message).
    pub fn publish_failure(&self, error: impl std::error::Error + Send + Sync + 'static) {
        let err = Error::TableFailed {
            table: self.table.name().to_owned(),
            source: Arc::new(error),
        };
        stage::request_close(
            &self.core,
            &self.table.shared,
            Closing::Failed(Arc::new(err)),
        );
    }

    /// Fails the table with a message, as [`publish_failure`](Self::publish_failure) does
    /// with an error (Deephaven's `publish_failure(RuntimeError("..."))`).
    pub fn publish_failure_message(&self, message: impl Into<String>) {
        self.publish_failure(Failure(message.into()));
    }

    /// Whether the table still takes rows (it has not failed or closed, and the engine runs).
    pub fn is_alive(&self) -> bool {
        self.table.shared.lifecycle.is_open() && !self.core.is_shut_down()
    }
}

/// A failure given as a message.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl fmt::Debug for TablePublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TablePublisher")
            .field("table", &self.table.name())
            .field("alive", &self.is_alive())
            .finish_non_exhaustive()
    }
}

/// `keys` tagged as a batch of deletes (schema metadata `tickertable.op = delete`). O(columns).
///
/// # Errors
///
/// [`Error::Arrow`] only if Arrow refuses the same columns under the tagged schema.
pub(crate) fn delete_batch(keys: &RecordBatch) -> Result<RecordBatch> {
    let schema = keys.schema();
    let mut metadata = schema.metadata().clone();
    metadata.insert(
        crate::table::keyed::OP_METADATA.to_owned(),
        "delete".to_owned(),
    );
    let tagged = arrow_schema::Schema::new_with_metadata(schema.fields().clone(), metadata);
    Ok(RecordBatch::try_new_with_options(
        Arc::new(tagged),
        keys.columns().to_vec(),
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(keys.num_rows())),
    )?)
}
