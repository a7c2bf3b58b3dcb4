//! `DynamicTableWriter` and `RowWriter`: row-at-a-time writing from many threads.

use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;

use crate::durable::Durability;
use crate::error::{Error, Result, TransactionError};
use crate::graph::stage;
use crate::graph::Core;
use crate::publish::staging::WriterCell;
use crate::schema::{check_value, Value};
use crate::sync::Mutex;
use crate::table::keyed::mask_width;
use crate::table::lifecycle::Closing;
use crate::table::shared::TableShared;
use crate::table::{Table, TableKind};

/// Options of [`EngineHandle::dynamic_table_writer`](crate::EngineHandle::dynamic_table_writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicWriterOptions {
    pub(crate) kind: TableKind,
    pub(crate) key: Vec<String>,
    pub(crate) durability: Durability,
}

impl Default for DynamicWriterOptions {
    fn default() -> Self {
        Self {
            kind: TableKind::Append,
            key: Vec::new(),
            durability: Durability::None,
        }
    }
}

impl DynamicWriterOptions {
    /// The table's kind (default [`TableKind::Append`], as Deephaven's `DynamicTableWriter`).
    #[must_use]
    pub fn with_kind(mut self, kind: TableKind) -> Self {
        self.kind = kind;
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

    /// Makes the table keyed by these columns ([`TableKind::Keyed`], keeping a capacity given
    /// with [`with_kind`](Self::with_kind)): [`RowWriter::write_row`] then upserts by key,
    /// [`RowWriter::delete_row`] deletes a key, and a row built with [`RowWriter::set`] that
    /// leaves columns out is a partial upsert.
    #[must_use]
    pub fn with_key<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.key = columns.into_iter().map(Into::into).collect();
        self.kind = self.kind.keyed();
        self
    }
}

/// A table written row by row from any number of threads, each through its own [`RowWriter`].
///
/// Cheap to clone. [`write_row`](Self::write_row) on the writer itself is a convenience that
/// shares one internal `RowWriter` behind a mutex; for throughput give each thread its own
/// [`row_writer`](Self::row_writer).
#[derive(Clone)]
pub struct DynamicTableWriter {
    inner: Arc<DtwInner>,
}

struct DtwInner {
    table: Table,
    core: Arc<Core>,
    shared_writer: Mutex<Option<RowWriter>>,
}

impl DynamicTableWriter {
    pub(crate) fn new(table: Table, core: Arc<Core>) -> Self {
        Self {
            inner: Arc::new(DtwInner {
                table,
                core,
                shared_writer: Mutex::new(None),
            }),
        }
    }

    /// The table written to.
    pub fn table(&self) -> &Table {
        &self.inner.table
    }

    /// A new row writer for the calling thread (or any one thread at a time).
    ///
    /// # Errors
    ///
    /// [`Error::TableClosed`] or [`Error::EngineShutDown`].
    pub fn row_writer(&self) -> Result<RowWriter> {
        RowWriter::new(self.inner.table.shared.clone(), self.inner.core.clone())
    }

    /// Writes one row through the writer's shared `RowWriter`; see [`RowWriter::write_row`].
    ///
    /// # Errors
    ///
    /// As [`RowWriter::write_row`].
    pub fn write_row(&self, row: &[Value<'_>]) -> Result<()> {
        let mut guard = self.inner.shared_writer.lock();
        let writer = match guard.as_mut() {
            Some(w) => w,
            None => guard.insert(self.row_writer()?),
        };
        writer.write_row(row)
    }

    /// Closes the table: rows written before are applied at the next cycle, then the table
    /// takes no more rows and its subscriptions end. A second call does nothing.
    pub fn close(&self) {
        stage::request_close(&self.inner.core, &self.inner.table.shared, Closing::Clean);
    }
}

impl fmt::Debug for DynamicTableWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicTableWriter")
            .field("table", &self.inner.table.name())
            .finish()
    }
}

/// One kind of value held by a [`RowWriter`]'s pending row (setter API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Unset,
    Null,
    Bool,
    Int,
    UInt,
    Float,
    Str,
    Bytes,
}

/// A pending cell: owned storage reused from row to row, so the setters never allocate once
/// their buffers have grown.
#[derive(Debug)]
struct Slot {
    kind: SlotKind,
    int: i64,
    uint: u64,
    float: f64,
    boolean: bool,
    text: String,
    bytes: Vec<u8>,
}

impl Slot {
    fn new() -> Self {
        Self {
            kind: SlotKind::Unset,
            int: 0,
            uint: 0,
            float: 0.0,
            boolean: false,
            text: String::new(),
            bytes: Vec::new(),
        }
    }

    fn value(&self) -> Value<'_> {
        match self.kind {
            SlotKind::Unset | SlotKind::Null => Value::Null,
            SlotKind::Bool => Value::Bool(self.boolean),
            SlotKind::Int => Value::Int(self.int),
            SlotKind::UInt => Value::UInt(self.uint),
            SlotKind::Float => Value::Float(self.float),
            SlotKind::Str => Value::Str(&self.text),
            SlotKind::Bytes => Value::Bytes(&self.bytes),
        }
    }

    fn store(&mut self, v: &Value<'_>) {
        self.kind = match *v {
            Value::Null => SlotKind::Null,
            Value::Bool(b) => {
                self.boolean = b;
                SlotKind::Bool
            }
            Value::Int(i) => {
                self.int = i;
                SlotKind::Int
            }
            Value::UInt(u) => {
                self.uint = u;
                SlotKind::UInt
            }
            Value::Float(f) => {
                self.float = f;
                SlotKind::Float
            }
            Value::Str(s) => {
                self.text.clear();
                self.text.push_str(s);
                SlotKind::Str
            }
            Value::Bytes(b) => {
                self.bytes.clear();
                self.bytes.extend_from_slice(b);
                SlotKind::Bytes
            }
        };
    }
}

/// A per-thread row stager: a struct of Arrow builders that the cycle turns into a chunk.
///
/// Rows are checked against the schema as they are written and refused whole with an error
/// naming the column, the expected and the found type. A row written becomes visible at the
/// next cycle; rows written between [`begin`](Self::begin) and [`commit`](Self::commit) become
/// visible together in one cycle, or never after [`rollback`](Self::rollback).
///
/// The builders sit behind a mutex that only this writer and the cycle take, once per row
/// and once per cycle: uncontended, no allocation per row (builders grow geometrically and
/// keep the last cycle's size). Dropping a writer keeps its committed rows (the next cycle
/// applies them) and rolls back an open transaction.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::{Engine, Value, DynamicWriterOptions};
///
/// let engine = Engine::builder().manual().build()?;
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("Sym", DataType::Utf8, false),
///     Field::new("Price", DataType::Float64, false),
/// ]));
/// let dtw = engine.dynamic_table_writer("quotes", schema, DynamicWriterOptions::default())?;
/// let mut w = dtw.row_writer()?;
/// w.write_row(&["AAPL".into(), 187.5.into()])?;
/// w.set(0, "MSFT")?.set(1, 411.0)?.end_row()?;
/// assert!(w.write_row(&["AAPL".into(), "oops".into()]).is_err()); // refused, nothing applied
/// engine.run_cycle();
/// assert_eq!(dtw.table().num_rows(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RowWriter {
    table: Arc<TableShared>,
    core: Arc<Core>,
    cell: Arc<WriterCell>,
    slots: Vec<Slot>,
    /// Per column, the value kind that always fits it (see [`exact_kind`]): such a value
    /// skips the full check, the common case on the hot path.
    exact: Vec<SlotKind>,
    /// Scratch for the mask of a partial row.
    mask: Vec<u8>,
}

/// The one `Value` kind that always fits a column of type `dt` whatever the value (no range,
/// no null to refuse), or `Unset` if none does.
fn exact_kind(dt: &arrow_schema::DataType) -> SlotKind {
    use arrow_schema::DataType as D;
    match dt {
        D::Int64 | D::Timestamp(..) | D::Date64 | D::Time64(_) | D::Duration(_) => SlotKind::Int,
        D::UInt64 => SlotKind::UInt,
        D::Float64 | D::Float32 => SlotKind::Float,
        D::Utf8 | D::LargeUtf8 => SlotKind::Str,
        D::Binary | D::LargeBinary => SlotKind::Bytes,
        D::Boolean => SlotKind::Bool,
        _ => SlotKind::Unset,
    }
}

/// The kind of a value, in the terms of [`exact_kind`].
fn kind_of(v: &Value<'_>) -> SlotKind {
    match v {
        Value::Null => SlotKind::Null,
        Value::Bool(_) => SlotKind::Bool,
        Value::Int(_) => SlotKind::Int,
        Value::UInt(_) => SlotKind::UInt,
        Value::Float(_) => SlotKind::Float,
        Value::Str(_) => SlotKind::Str,
        Value::Bytes(_) => SlotKind::Bytes,
    }
}

impl RowWriter {
    fn new(table: Arc<TableShared>, core: Arc<Core>) -> Result<Self> {
        if core.is_shut_down() {
            return Err(Error::EngineShutDown);
        }
        if !table.lifecycle.is_open() {
            return Err(Error::TableClosed {
                table: table.name.to_string(),
            });
        }
        let cell = Arc::new(WriterCell::new(&table.staged_schema, table.is_keyed())?);
        table.staging.add_writer(cell.clone());
        let slots = (0..table.schema.fields().len())
            .map(|_| Slot::new())
            .collect();
        let exact = table
            .schema
            .fields()
            .iter()
            .map(|f| exact_kind(f.data_type()))
            .collect();
        Ok(Self {
            table,
            core,
            cell,
            slots,
            exact,
            mask: Vec::new(),
        })
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.table.schema
    }

    /// The index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.table.schema.index_of(name).ok()
    }

    /// Writes one row: one value per column, in schema order. In a keyed table, upserts it:
    /// inserts its key or replaces the key's row.
    ///
    /// No allocation: the values are borrowed and appended straight to the builders.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnCount`], [`Error::SchemaMismatch`], [`Error::ValueOutOfRange`],
    /// [`Error::NullInNonNullable`], [`Error::TableClosed`], [`Error::EngineShutDown`], or
    /// [`Error::StagingFull`] (see the staging limit). The row is not applied.
    pub fn write_row(&mut self, row: &[Value<'_>]) -> Result<()> {
        self.check_row(row)?;
        let mut st = stage::lock_rows(&self.core, &self.table, &self.cell, 1)?;
        st.rows.append_row(row);
        stage::rows_appended(&self.core, &self.table, &mut st);
        Ok(())
    }

    /// Deletes a key from a keyed table: `key` holds the key columns' values, in the order
    /// the table's key was given. A key that is not there is ignored. Like a written row, the
    /// delete applies at the next cycle (in a transaction, at its commit), in order with this
    /// writer's other rows: the last write to a key in a cycle wins.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOp`] if the table is not keyed, [`Error::ColumnCount`] if `key` does
    /// not have one value per key column, a value error naming the column, and the errors of
    /// [`write_row`](Self::write_row). Nothing is applied.
    pub fn delete_row(&mut self, key: &[Value<'_>]) -> Result<()> {
        let columns = &self.table.key;
        if columns.is_empty() {
            return Err(Error::InvalidOp {
                table: self.table.name.to_string(),
                reason: format!(
                    "delete needs a keyed table; this one is {}",
                    self.table.retention.kind()
                ),
            });
        }
        if key.len() != columns.len() {
            return Err(Error::ColumnCount {
                table: self.table.name.to_string(),
                expected: columns.len(),
                found: key.len(),
            });
        }
        for (&c, v) in columns.iter().zip(key) {
            check_value(&self.table.name, &self.table.schema, c, v)?;
        }
        let mut st = stage::lock_rows(&self.core, &self.table, &self.cell, 1)?;
        st.rows.append_delete(columns, key);
        stage::rows_appended(&self.core, &self.table, &mut st);
        Ok(())
    }

    /// Writes several rows under one lock of the writer's buffer: all of them, or none if any
    /// does not fit the schema. They become visible in the same cycle. Cheaper per row than
    /// [`write_row`](Self::write_row) when rows come in groups.
    ///
    /// # Errors
    ///
    /// As [`write_row`](Self::write_row), for the first row that does not fit; nothing of the
    /// call is applied.
    pub fn write_rows(&mut self, rows: &[&[Value<'_>]]) -> Result<()> {
        for row in rows {
            self.check_row(row)?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut st = stage::lock_rows(&self.core, &self.table, &self.cell, rows.len())?;
        for row in rows {
            st.rows.append_row(row);
        }
        stage::rows_appended(&self.core, &self.table, &mut st);
        Ok(())
    }

    /// Checks a whole row against the schema; a value of the column's exact kind skips the
    /// full check (the common case on the hot path).
    fn check_row(&self, row: &[Value<'_>]) -> Result<()> {
        let ncols = self.slots.len();
        if row.len() != ncols {
            return Err(Error::ColumnCount {
                table: self.table.name.to_string(),
                expected: ncols,
                found: row.len(),
            });
        }
        for (i, v) in row.iter().enumerate() {
            if kind_of(v) != self.exact[i] {
                check_value(&self.table.name, &self.table.schema, i, v)?;
            }
        }
        Ok(())
    }

    /// Sets column `index` of the pending row; [`end_row`](Self::end_row) writes it.
    ///
    /// The value is checked now, so a wrong type is refused here, naming the column. Strings
    /// and bytes are copied into buffers the writer reuses from row to row.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchColumn`], [`Error::SchemaMismatch`], [`Error::ValueOutOfRange`] or
    /// [`Error::NullInNonNullable`]; the pending row keeps its other values.
    pub fn set<'v>(&mut self, index: usize, value: impl Into<Value<'v>>) -> Result<&mut Self> {
        let value = value.into();
        if index >= self.slots.len() {
            return Err(Error::NoSuchColumn {
                table: self.table.name.to_string(),
                index,
                count: self.slots.len(),
            });
        }
        check_value(&self.table.name, &self.table.schema, index, &value)?;
        self.slots[index].store(&value);
        Ok(self)
    }

    /// Sets the column named `name` of the pending row; see [`set`](Self::set).
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`], and the errors of [`set`](Self::set).
    pub fn set_named<'v>(&mut self, name: &str, value: impl Into<Value<'v>>) -> Result<&mut Self> {
        let Some(index) = self.column_index(name) else {
            return Err(Error::NoColumnNamed {
                table: self.table.name.to_string(),
                column: name.to_owned(),
            });
        };
        self.set(index, value)
    }

    /// Writes the pending row built with [`set`](Self::set); unset columns are null.
    ///
    /// In a keyed table the row is an upsert, and a partial one if columns are unset: those
    /// keep their values (or are null for a new key, so they must be nullable). Every key
    /// column must be set.
    ///
    /// # Errors
    ///
    /// [`Error::NullInNonNullable`] for an unset non-nullable column (in a keyed table
    /// [`Error::UnsetColumn`], or [`Error::MissingKeyColumn`] for an unset key column), or the
    /// errors of
    /// [`write_row`](Self::write_row). Either way the pending row is cleared and nothing of it
    /// is applied.
    pub fn end_row(&mut self) -> Result<()> {
        let result = self.write_pending();
        for slot in &mut self.slots {
            slot.kind = SlotKind::Unset;
        }
        result
    }

    fn write_pending(&mut self) -> Result<()> {
        let keyed = self.table.is_keyed();
        if keyed {
            self.mask.clear();
            self.mask.resize(mask_width(self.slots.len()), 0);
        }
        for (i, slot) in self.slots.iter().enumerate() {
            let field = self.table.schema.field(i);
            if slot.kind != SlotKind::Unset {
                if keyed {
                    self.mask[i / 8] |= 1 << (i % 8);
                }
            } else if keyed && self.table.key.contains(&i) {
                return Err(Error::MissingKeyColumn {
                    table: self.table.name.to_string(),
                    column: field.name().clone(),
                });
            } else if keyed && !field.is_nullable() {
                return Err(Error::UnsetColumn {
                    table: self.table.name.to_string(),
                    column: field.name().clone(),
                });
            } else {
                check_value(&self.table.name, &self.table.schema, i, &Value::Null)?;
            }
        }
        let mut st = stage::lock_rows(&self.core, &self.table, &self.cell, 1)?;
        let slots = &self.slots;
        st.rows.append_with(|c| slots[c].value(), &self.mask);
        stage::rows_appended(&self.core, &self.table, &mut st);
        Ok(())
    }

    /// Opens a transaction: rows written until [`commit`](Self::commit) become visible in one
    /// cycle together, and none of them if [`rollback`](Self::rollback) comes instead.
    ///
    /// A transaction must fit in the staging limit; a row that would go past it is refused
    /// with [`Error::StagingFull`] (the transaction stays open).
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] if one is already open.
    pub fn begin(&mut self) -> Result<()> {
        self.cell.state.lock().begin().map_err(Error::Transaction)
    }

    /// Commits the open transaction: its rows become visible at the next cycle.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] if none is open; [`Error::TableClosed`] or
    /// [`Error::EngineShutDown`] if the rows can no longer be applied (the transaction is then
    /// rolled back).
    pub fn commit(&mut self) -> Result<()> {
        let mut st = self.cell.state.lock();
        if !st.in_txn {
            return Err(Error::Transaction(TransactionError::NotOpen));
        }
        // Rows committed now could never be applied: refuse, and roll back.
        let refused = if self.core.is_shut_down() {
            Some(Error::EngineShutDown)
        } else if !self.table.lifecycle.is_open() {
            Some(Error::TableClosed {
                table: self.table.name.to_string(),
            })
        } else {
            None
        };
        if let Some(err) = refused {
            st.rollback().map_err(Error::Transaction)?;
            return Err(err);
        }
        if st.commit().map_err(Error::Transaction)? {
            self.core.mark_dirty(self.table.id);
        }
        Ok(())
    }

    /// Throws away the rows of the open transaction.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] if none is open.
    pub fn rollback(&mut self) -> Result<()> {
        self.cell
            .state
            .lock()
            .rollback()
            .map_err(Error::Transaction)
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.cell.state.lock().in_txn
    }

    /// Rows written and not yet taken by a cycle.
    pub fn staged_rows(&self) -> usize {
        self.cell.state.lock().staged()
    }
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        let mut st = self.cell.state.lock();
        if st.in_txn {
            let _ = st.rollback();
        }
        st.dropped = true;
    }
}

impl fmt::Debug for RowWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowWriter")
            .field("table", &self.table.name)
            .finish_non_exhaustive()
    }
}
