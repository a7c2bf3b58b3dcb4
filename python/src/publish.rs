//! Publishing: `TablePublisher` (whole batches) and `DynamicTableWriter` (rows from any thread).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_schema::{Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tickertable::{DynamicTableWriter, RowWriter, Table, TablePublisher, TryPublishError};

use crate::callback::{in_callback, wait_until};
use crate::convert::{batch_of, helpers, RowConverter, Values};
use crate::engine::EngineInfo;
use crate::errors::IntoPyResult;
use crate::table::PyTable;

/// A failure reported from Python (`publish_failure`).
#[derive(Debug)]
struct PythonFailure(String);

impl std::fmt::Display for PythonFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PythonFailure {}

/// The key columns of `table` as a schema.
fn key_schema(table: &Table) -> SchemaRef {
    let schema = table.schema();
    Arc::new(Schema::new(
        table
            .key_columns()
            .iter()
            .map(|&c| schema.field(c).clone())
            .collect::<Vec<_>>(),
    ))
}

/// Key values (a list of keys, or key columns) as a batch of the key columns.
fn keys_batch(table: &Table, keys: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    use arrow_pyarrow::FromPyArrow;
    let py = keys.py();
    let batch = helpers(py)?.getattr("keys_to_batch")?.call1((
        keys,
        table.name(),
        key_schema(table).as_ref().to_pyarrow(py)?,
    ))?;
    RecordBatch::from_pyarrow_bound(&batch)
}

/// Publishes whole batches into one table (Deephaven's ``TablePublisher``).
///
/// ``add(data)`` takes a ``pyarrow.RecordBatch`` (staged as is, no copy), a ``pyarrow.Table``,
/// a dict of columns, a pandas ``DataFrame`` or any Arrow C-interface object; one ``add``
/// becomes visible whole at the next cycle. A batch that does not fit the schema raises
/// ``SchemaError`` and nothing of it is applied. When staging is full, ``add`` waits for the
/// next cycle with the GIL released (a manual engine raises ``StagingFullError`` instead).
#[pyclass(name = "TablePublisher", module = "tickertable", frozen)]
pub(crate) struct PyTablePublisher {
    publisher: TablePublisher,
    table: Table,
    info: EngineInfo,
}

impl PyTablePublisher {
    pub(crate) fn new(publisher: TablePublisher, table: Table, info: EngineInfo) -> Self {
        Self {
            publisher,
            table,
            info,
        }
    }

    /// Stages a batch, waiting (without the GIL, Ctrl-C checked) while staging is full.
    fn stage(&self, py: Python<'_>, batch: RecordBatch) -> PyResult<()> {
        let p = &self.publisher;
        let refused = match py.detach(|| p.try_add(batch)) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match refused {
            TryPublishError::Full(b) if !self.info.handle.is_manual() && !in_callback() => {
                let mut pending = Some(b);
                let result = wait_until(py, || {
                    let b = pending.take()?;
                    match p.try_add(b) {
                        Ok(()) => Some(Ok(())),
                        Err(TryPublishError::Full(b)) => {
                            pending = Some(b);
                            None
                        }
                        // Closed meanwhile: `add` says how.
                        Err(e) => Some(p.add(e.into_inner())),
                    }
                })?;
                result.py(py)
            }
            TryPublishError::Invalid(_, e) => Err(crate::errors::to_py(py, &e)),
            // Full where waiting is impossible, or closed: `add` gives the precise error.
            other => py.detach(|| p.add(other.into_inner())).py(py),
        }
    }
}

#[pymethods]
impl PyTablePublisher {
    /// Stages ``data`` for the next cycle; see the class docs.
    fn add(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let batch = batch_of(data, self.table.name(), self.table.schema(), None)?;
        self.stage(py, batch)
    }

    /// Upserts into a keyed table: each row inserts its key or replaces the key's row. A
    /// batch or dict with only some columns (the key among them) is a partial upsert: the
    /// others keep their values. A tuple or a dict of scalars is one row.
    fn upsert(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let key: Vec<String> = PyTable::new(self.table.clone(), self.info.clone()).key_names();
        if key.is_empty() {
            let empty = RecordBatch::new_empty(self.table.schema().clone());
            return py.detach(|| self.publisher.upsert(empty)).py(py);
        }
        let batch = batch_of(data, self.table.name(), self.table.schema(), Some(&key))?;
        self.stage(py, batch)
    }

    /// Deletes keys from a keyed table (a missing key is ignored): ``keys`` is a list of key
    /// values (tuples for a key of several columns), or a batch, table, dict or DataFrame with
    /// the key columns.
    fn delete(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.table.key_columns().is_empty() {
            let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
            return py.detach(|| self.publisher.delete(empty)).py(py);
        }
        let batch = keys_batch(&self.table, keys)?;
        py.detach(|| self.publisher.delete(batch)).py(py)
    }

    /// Fails the table with ``error`` (an exception or a message): rows added before are still
    /// applied, then listeners get ``on_failure``, subscriptions get ``Failed`` and end, and
    /// later ``add`` calls raise ``TableClosedError``.
    fn publish_failure(&self, py: Python<'_>, error: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = if error.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            format!("{}: {}", error.get_type().name()?, error.str()?)
        } else {
            error.str()?.to_string()
        };
        py.detach(|| self.publisher.publish_failure(PythonFailure(message)));
        Ok(())
    }

    /// Whether the table still takes rows (it has not failed or closed, the engine runs).
    fn is_alive(&self) -> bool {
        self.publisher.is_alive()
    }

    /// The table published into.
    #[getter]
    fn table(&self) -> PyTable {
        PyTable::new(self.table.clone(), self.info.clone())
    }

    fn __repr__(&self) -> String {
        format!(
            "TablePublisher({:?}, alive={})",
            self.table.name(),
            self.publisher.is_alive()
        )
    }
}

/// A thread's row writer for one `DynamicTableWriter`.
struct Slot {
    id: u64,
    /// Dead once the Python writer is gone: the slot is then dropped.
    owner: Weak<()>,
    writer: RowWriter,
    /// Rows this thread can write before a write could wait for the cycle (threaded engines
    /// only; see `PyDynamicTableWriter::write_with`).
    budget: usize,
}

thread_local! {
    /// Each Python thread's row writers, one per `DynamicTableWriter` it wrote to.
    static WRITERS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);

/// The outcome of a write on the fast path.
enum Fast {
    Done(tickertable::Result<()>),
    /// This thread has no row writer yet.
    Missing,
    /// The write might wait for a cycle.
    Slow,
}

/// A table written row by row from any number of Python threads (Deephaven's
/// ``DynamicTableWriter``).
///
/// ``write_row(*values)`` writes one row, one value per column in schema order; it is checked
/// at once (a bad row raises ``SchemaError`` naming the column, and nothing is written) and
/// becomes visible at the next cycle. Each Python thread writes through its own row writer
/// behind the scenes, so threads never contend. ``with writer.transaction():`` makes the
/// rows written inside it visible in one cycle, or not at all if the block raises.
#[pyclass(name = "DynamicTableWriter", module = "tickertable", frozen)]
pub(crate) struct PyDynamicTableWriter {
    dtw: DynamicTableWriter,
    id: u64,
    alive: Arc<()>,
    conv: RowConverter,
    info: EngineInfo,
}

impl PyDynamicTableWriter {
    pub(crate) fn new(dtw: DynamicTableWriter, info: EngineInfo) -> Self {
        let conv = RowConverter::new(dtw.table().name(), dtw.table().schema().clone());
        Self {
            dtw,
            // Relaxed: only uniqueness matters.
            id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            conv,
            info,
        }
    }

    fn initial_budget(&self) -> usize {
        if self.info.handle.is_manual() {
            // A manual engine never waits: a full buffer is an error at once.
            usize::MAX
        } else {
            self.info.staging_limit
        }
    }

    fn fast(&self, n: usize, f: impl FnOnce(&mut RowWriter) -> tickertable::Result<()>) -> Fast {
        WRITERS.with_borrow_mut(|ws| {
            let Some(slot) = ws.iter_mut().find(|s| s.id == self.id) else {
                return Fast::Missing;
            };
            if slot.budget < n {
                return Fast::Slow;
            }
            slot.budget -= n;
            Fast::Done(f(&mut slot.writer))
        })
    }

    /// Writes through this thread's row writer: `f` gets it and is never called with Python
    /// code running, so it cannot re-enter.
    ///
    /// A row writer waits for the cycle only when its buffer is past the staging limit. Only
    /// this thread adds to its buffer, and cycles only empty it, so with `budget` rows of room
    /// left, the next `budget` rows cannot wait: those are written with the GIL held (the fast
    /// path). Past that, the room is measured again, and with none left the thread waits
    /// without the GIL until a cycle makes some.
    fn write_with(
        &self,
        py: Python<'_>,
        n: usize,
        f: impl Fn(&mut RowWriter) -> tickertable::Result<()> + Send + Sync,
    ) -> PyResult<()> {
        match self.fast(n, &f) {
            Fast::Done(r) => return r.py(py),
            Fast::Missing => {
                let writer = py.detach(|| self.dtw.row_writer()).py(py)?;
                let budget = self.initial_budget();
                WRITERS.with_borrow_mut(|ws| {
                    ws.retain(|s| s.owner.strong_count() > 0);
                    ws.push(Slot {
                        id: self.id,
                        owner: Arc::downgrade(&self.alive),
                        writer,
                        budget,
                    });
                });
                if let Fast::Done(r) = self.fast(n, &f) {
                    return r.py(py);
                }
            }
            Fast::Slow => {}
        }
        // The slow path: take the writer out of the thread's list while Python code may run
        // (signal handlers), and put it back whatever happens.
        let Some(mut slot) = WRITERS.with_borrow_mut(|ws| {
            ws.iter()
                .position(|s| s.id == self.id)
                .map(|i| ws.swap_remove(i))
        }) else {
            return py.detach(|| f(&mut self.dtw.row_writer()?)).py(py);
        };
        let limit = self.info.staging_limit;
        let room = |w: &RowWriter| {
            let staged = w.staged_rows();
            (staged == 0 || staged + n <= limit || w.in_transaction())
                .then(|| limit.saturating_sub(staged + n))
        };
        let left = if let Some(left) = room(&slot.writer) {
            Ok(left)
        } else {
            let writer = &slot.writer;
            wait_until(py, || room(writer))
        };
        let result = left.and_then(|left| {
            slot.budget = left;
            f(&mut slot.writer).py(py)
        });
        WRITERS.with_borrow_mut(|ws| ws.push(slot));
        result
    }

    fn transaction_op(
        &self,
        py: Python<'_>,
        f: impl Fn(&mut RowWriter) -> tickertable::Result<()> + Send + Sync,
    ) -> PyResult<()> {
        // Budget 0: transactions are rare; they take the measured path.
        self.write_with(py, 0, f)
    }
}

#[pymethods]
impl PyDynamicTableWriter {
    /// Writes one row: one value per column, in schema order (Deephaven's
    /// ``write_row(*values)``). In a keyed table it upserts.
    #[pyo3(signature = (*values))]
    fn write_row(&self, py: Python<'_>, values: &Bound<'_, PyTuple>) -> PyResult<()> {
        let objects = RowConverter::objects(values);
        let row = self.conv.convert(&objects)?;
        self.write_with(py, 1, |w| w.write_row(&row))
    }

    /// Writes many rows (a list of tuples or lists) in one call: all of them in the same
    /// cycle, or none if any does not fit the schema. Faster per row than ``write_row``.
    fn write_rows(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        let objects: Vec<_> = if let Ok(list) = rows.cast::<PyList>() {
            list.iter()
                .map(|r| RowConverter::objects_of(&r))
                .collect::<PyResult<_>>()?
        } else {
            rows.try_iter()?
                .map(|r| RowConverter::objects_of(&r?))
                .collect::<PyResult<_>>()?
        };
        let values: Vec<Values<'_>> = objects
            .iter()
            .map(|o| self.conv.convert(o))
            .collect::<PyResult<_>>()?;
        let slices: Vec<&[tickertable::Value<'_>]> = values.iter().map(|v| &v[..]).collect();
        self.write_with(py, slices.len(), |w| w.write_rows(&slices))
    }

    /// Upserts one row into a keyed table (``write_row`` on a keyed table does the same).
    #[pyo3(signature = (*values))]
    fn upsert(&self, py: Python<'_>, values: &Bound<'_, PyTuple>) -> PyResult<()> {
        let table = self.dtw.table();
        if table.key_columns().is_empty() {
            let err = tickertable::Error::InvalidOp {
                table: table.name().to_owned(),
                reason: format!("upsert needs a keyed table; this one is {}", table.kind()),
            };
            return Err(crate::errors::to_py(py, &err));
        }
        self.write_row(py, values)
    }

    /// Deletes one key from a keyed table: the key columns' values, in the key's order.
    #[pyo3(signature = (*key))]
    fn delete_row(&self, py: Python<'_>, key: &Bound<'_, PyTuple>) -> PyResult<()> {
        let objects = RowConverter::objects(key);
        let values = self
            .conv
            .convert_key(self.dtw.table().key_columns(), &objects)?;
        if values.len() != objects.len() {
            // More values than key columns: the engine reports the count.
            let all = self.conv.convert(&objects)?;
            return self.write_with(py, 1, |w| w.delete_row(&all));
        }
        self.write_with(py, 1, |w| w.delete_row(&values))
    }

    /// Deletes many keys from a keyed table: a list of key values (tuples for a key of several
    /// columns).
    fn delete(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<()> {
        let multi = self.dtw.table().key_columns().len() > 1;
        for k in keys.try_iter()? {
            let k = k?;
            let objects = if multi {
                RowConverter::objects_of(&k)?
            } else {
                std::iter::once(k).collect()
            };
            let values = self
                .conv
                .convert_key(self.dtw.table().key_columns(), &objects)?;
            self.write_with(py, 1, |w| w.delete_row(&values))?;
        }
        Ok(())
    }

    /// A context manager around a transaction on this thread: rows written inside become
    /// visible in one cycle when the block ends, or never if it raises.
    fn transaction(slf: Py<Self>) -> PyTransaction {
        PyTransaction { writer: slf }
    }

    /// Opens a transaction on the calling thread's row writer.
    fn begin(&self, py: Python<'_>) -> PyResult<()> {
        self.transaction_op(py, RowWriter::begin)
    }

    /// Commits the calling thread's transaction: its rows become visible at the next cycle.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.transaction_op(py, RowWriter::commit)
    }

    /// Throws away the rows of the calling thread's transaction.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.transaction_op(py, RowWriter::rollback)
    }

    /// Rows the calling thread wrote that no cycle has taken yet.
    fn staged_rows(&self) -> usize {
        WRITERS.with_borrow(|ws| {
            ws.iter()
                .find(|s| s.id == self.id)
                .map_or(0, |s| s.writer.staged_rows())
        })
    }

    /// The table written to.
    #[getter]
    fn table(&self) -> PyTable {
        PyTable::new(self.dtw.table().clone(), self.info.clone())
    }

    /// Closes the table: rows written before are applied at the next cycle, then it takes no
    /// more rows and its subscriptions end.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.dtw.close());
    }

    fn __repr__(&self) -> String {
        format!("DynamicTableWriter({:?})", self.dtw.table().name())
    }
}

/// A transaction on the calling thread's row writer (``DynamicTableWriter.transaction()``).
#[pyclass(name = "Transaction", module = "tickertable", frozen)]
pub(crate) struct PyTransaction {
    writer: Py<PyDynamicTableWriter>,
}

#[pymethods]
impl PyTransaction {
    /// Opens the transaction.
    fn __enter__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<Self>> {
        slf.get().writer.get().begin(py)?;
        Ok(slf)
    }

    /// Commits, or rolls back if the block raised.
    #[pyo3(signature = (exc_type, _exc = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let w = self.writer.get();
        if exc_type.is_some_and(|t| !t.is_none()) {
            w.rollback(py)?;
        } else {
            w.commit(py)?;
        }
        Ok(false)
    }
}
