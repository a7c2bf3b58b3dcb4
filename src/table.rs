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
pub(crate) mod kind;
pub(crate) mod lifecycle;
pub(crate) mod read;
pub(crate) mod ring;
pub(crate) mod shared;
pub(crate) mod snapshot;
pub(crate) mod state;

use std::fmt;
use std::sync::{Arc, Weak};

use arrow_schema::SchemaRef;

pub use kind::TableKind;
pub use read::{Column, RowRef};
pub use shared::TableId;

use crate::error::{Error, Result};
use crate::graph::Core;
use crate::schema::{value_at, OwnedValue};
use crate::subscribe::listener::{Listener, ListenerHandle};
use crate::subscribe::queue::SubscriptionOptions;
use crate::subscribe::subscription::{self, Subscription};
use shared::TableShared;
use snapshot::TableSnapshot;

/// A live table: a cheap, cloneable handle (`Arc` inside) to read, listen to and subscribe to.
///
/// Reading never takes the engine's lock: [`snapshot`](Self::snapshot) loads the table's last
/// published [`TableSnapshot`], consistent at one step by construction. To read several tables
/// at the same step, use [`EngineHandle::read`](crate::EngineHandle::read).
#[derive(Clone)]
pub struct Table {
    pub(crate) shared: Arc<TableShared>,
    core: Weak<Core>,
}

impl Table {
    pub(crate) fn new(shared: Arc<TableShared>, core: &Arc<Core>) -> Self {
        Self {
            shared,
            core: Arc::downgrade(core),
        }
    }

    pub(crate) fn core(&self) -> Result<Arc<Core>> {
        self.core.upgrade().ok_or(Error::EngineShutDown)
    }

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

    /// The most rows the table holds: a ring's capacity, an append table's limit, a keyed
    /// table's capacity.
    pub fn capacity(&self) -> Option<usize> {
        self.shared.retention.capacity()
    }

    /// A keyed table's key columns, by index (empty for other kinds).
    pub fn key_columns(&self) -> &[usize] {
        &self.shared.key
    }

    /// Whether the table is derived from another table (and so takes no rows from writers).
    pub fn is_derived(&self) -> bool {
        self.shared.is_derived()
    }

    /// Whether the table is durable: logged to its engine's data directory and replayed
    /// when created again (see [`crate::durable`]).
    pub fn is_durable(&self) -> bool {
        self.shared.durable
    }

    /// The table's rows at the last cycle that changed it. Lock-free, O(1).
    pub fn snapshot(&self) -> TableSnapshot {
        TableSnapshot::from_inner(self.shared.snapshot.load_full())
    }

    /// How many rows the table shows now. Lock-free, O(1).
    pub fn num_rows(&self) -> usize {
        chunk::range_len(&self.shared.snapshot.load().rows)
    }

    /// Whether the table was closed or failed (or a close was requested): a closed table
    /// takes no more rows.
    pub fn is_closed(&self) -> bool {
        !self.shared.lifecycle.is_open()
    }

    /// The failure the table closed with, once a cycle has applied it.
    pub fn failure(&self) -> Option<Arc<Error>> {
        self.shared.lifecycle.failure()
    }

    /// A keyed table's current row for `key` (the key columns' values, in
    /// [`key_columns`](Self::key_columns) order), or `None` if the key is not in the table.
    ///
    /// It reads the table as of the last cycle, under the shared side of the engine's lock:
    /// it waits while a cycle runs, never for long. Never call it from a listener, which runs
    /// under the exclusive side (that deadlocks); a listener reads its update. Expected O(key width + columns): one key
    /// encoded, one hash probe, one row read. To read many keys at one step, or rows in key
    /// order, use a [`snapshot`](Self::snapshot) and
    /// [`TableSnapshot::rows_in_key_order`](crate::TableSnapshot::rows_in_key_order).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Float64Array, RecordBatch, StringArray};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{OwnedValue, PublisherOptions};
    /// # let engine = tickertable::Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("Sym", DataType::Utf8, false),
    ///     Field::new("Bid", DataType::Float64, false),
    /// ]));
    /// let (quotes, publisher) = engine.table_publisher(
    ///     "quotes", schema.clone(), PublisherOptions::default().with_key(["Sym"]))?;
    /// publisher.upsert(RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(StringArray::from(vec!["AAPL", "MSFT"])),
    ///     Arc::new(Float64Array::from(vec![187.5, 411.0])),
    /// ])?)?;
    /// engine.run_cycle();
    /// publisher.upsert(RecordBatch::try_new(schema, vec![
    ///     Arc::new(StringArray::from(vec!["AAPL"])),
    ///     Arc::new(Float64Array::from(vec![187.25])),
    /// ])?)?;
    /// engine.run_cycle();
    ///
    /// let row = quotes.get(&["AAPL".into()])?;
    /// assert_eq!(row, Some(vec![OwnedValue::from("AAPL"), OwnedValue::from(187.25)]));
    /// assert_eq!(quotes.get(&["NVDA".into()])?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOp`] if the table is not keyed, or `key` has not one value per key
    /// column; [`Error::SchemaMismatch`], [`Error::NullInNonNullable`] or
    /// [`Error::ValueOutOfRange`] if a value does not fit its key column;
    /// [`Error::EngineShutDown`] if the engine is gone.
    ///
    /// # Panics
    ///
    /// Only on a broken invariant: a keyed table without its key index.
    pub fn get(&self, key: &[OwnedValue]) -> Result<Option<Vec<OwnedValue>>> {
        let shared = &self.shared;
        if !shared.is_keyed() || key.len() != shared.key.len() {
            return Err(Error::InvalidOp {
                table: shared.name.to_string(),
                reason: if shared.is_keyed() {
                    format!(
                        "a key has {} values, one per key column; {} given",
                        shared.key.len(),
                        key.len()
                    )
                } else {
                    format!("get needs a keyed table; this one is {}", self.kind())
                },
            });
        }
        let columns = keyed::key_arrays(&shared.name, &shared.schema, &shared.key, key)?;
        let core = self.core()?;
        let graph = core.graph.read();
        let state = &graph.node(shared.id).state;
        let keyed = state
            .keyed
            .as_ref()
            .expect("invariant: a keyed table has a keyed state");
        let Some(slot) = keyed.slot_of(&columns, 0) else {
            return Ok(None);
        };
        let chunks = state.log.chunks();
        let chunk = &chunks[chunk::chunk_index(chunks, slot as u64)];
        let index = usize::try_from(slot as u64 - chunk.start)
            .expect("invariant: a row's index in its chunk fits usize");
        Ok(Some(
            chunk
                .batch
                .columns()
                .iter()
                .map(|c| value_at(c.as_ref(), index).map_or(OwnedValue::Null, OwnedValue::from))
                .collect(),
        ))
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
        let core = self.core()?;
        if core.is_shut_down() {
            return Err(Error::EngineShutDown);
        }
        let shared = &self.shared;
        let mut consumers = shared.consumers.lock();
        if shared.lifecycle.has_ended() {
            // Nothing will ever be delivered: say so now rather than register a silent one.
            return Err(match shared.lifecycle.failure() {
                Some(failure) => Error::TableFailed {
                    table: shared.name.to_string(),
                    source: failure,
                },
                None if core.is_shut_down() => Error::EngineShutDown,
                None => Error::TableClosed {
                    table: shared.name.to_string(),
                },
            });
        }
        Ok(ListenerHandle::new(
            consumers.add_listener(Box::new(listener)),
        ))
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
        let core = self.core()?;
        Ok(subscription::register(&core, &self.shared, options))
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("kind", &self.kind())
            .field("rows", &self.num_rows())
            .finish_non_exhaustive()
    }
}
