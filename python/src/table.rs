//! `tickertable.Table`, its updates and listeners.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_schema::SchemaRef;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyRange, PyTuple};
use tickertable::{
    Error, Listener, ListenerHandle, OwnedValue, SubscriptionOptions, Table, TableSnapshot,
    TableUpdate,
};

use crate::callback::{call_python, check_not_in_callback, fail_callback};
use crate::convert::{kind_name, to_pyarrow_table, value_to_py, Objects, RowConverter};
use crate::engine::EngineInfo;
use crate::errors::IntoPyResult;
use crate::subscribe::PySubscription;

/// A live table of an engine: read it, listen to it, subscribe to it.
///
/// Reading never waits for the engine: ``snapshot()`` returns the table as of its last change,
/// consistent at one step, as a ``pyarrow.Table`` that shares the engine's memory (no copy).
#[pyclass(name = "Table", module = "tickertable", frozen)]
pub(crate) struct PyTable {
    pub(crate) table: Table,
    pub(crate) info: EngineInfo,
}

impl PyTable {
    pub(crate) fn new(table: Table, info: EngineInfo) -> Self {
        Self { table, info }
    }

    /// The key columns' names (empty for tables that are not keyed).
    pub(crate) fn key_names(&self) -> Vec<String> {
        let schema = self.table.schema();
        self.table
            .key_columns()
            .iter()
            .map(|&c| schema.field(c).name().clone())
            .collect()
    }
}

/// A snapshot's rows as batches (slices of the stored chunks, no copy).
pub(crate) fn snapshot_batches(s: &TableSnapshot) -> Vec<RecordBatch> {
    s.slice(s.rows())
}

/// A snapshot as a `pyarrow.Table`.
pub(crate) fn snapshot_to_py(py: Python<'_>, s: &TableSnapshot) -> PyResult<Py<PyAny>> {
    to_pyarrow_table(py, s.schema(), snapshot_batches(s))
}

#[pymethods]
impl PyTable {
    /// The table's name, unique in its engine.
    #[getter]
    fn name(&self) -> &str {
        self.table.name()
    }

    /// The table's schema, a ``pyarrow.Schema``.
    #[getter]
    fn schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.table.schema().as_ref().to_pyarrow(py)?.unbind())
    }

    /// ``"append"``, ``"blink"``, ``"ring"`` or ``"keyed"``.
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.table.kind())
    }

    /// A ring's capacity, a limited append table's limit, a keyed table's capacity; or None.
    #[getter]
    fn capacity(&self) -> Option<usize> {
        self.table.capacity()
    }

    /// A keyed table's key columns (empty for other kinds).
    #[getter]
    fn key(&self) -> Vec<String> {
        self.key_names()
    }

    /// How many rows the table shows now.
    #[getter]
    fn num_rows(&self) -> usize {
        self.table.num_rows()
    }

    /// How many rows the table shows now.
    fn __len__(&self) -> usize {
        self.table.num_rows()
    }

    /// The step of the table's last change.
    #[getter]
    fn step(&self) -> u64 {
        self.table.snapshot().step().as_u64()
    }

    /// Whether the table was closed or failed (it takes no more rows).
    #[getter]
    fn is_closed(&self) -> bool {
        self.table.is_closed()
    }

    /// The failure its publisher reported, as a message, if the table failed.
    #[getter]
    fn failure(&self, py: Python<'_>) -> Option<String> {
        let table = self.table.clone();
        py.detach(move || table.failure().map(|e| e.to_string()))
    }

    /// The table's rows now, as a ``pyarrow.Table`` (zero-copy, consistent at one step).
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        snapshot_to_py(py, &self.table.snapshot())
    }

    /// The table's rows now, as a pandas ``DataFrame`` (this copies, as pandas does).
    fn to_pandas(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let t = self.snapshot(py)?;
        t.call_method0(py, "to_pandas")
    }

    /// The row of a keyed table with key ``key``, as a dict of column names to values, or
    /// ``None`` if no row has that key.
    ///
    /// ``key`` is the key column's value, or a tuple (or list) of one value per key column in
    /// the table's key order. It reads the table's state now (its last step) and waits for a
    /// cycle that is running (without the GIL). A table that is not keyed, or a key of the
    /// wrong length, raises ``InvalidOperationError``; a value of the wrong type
    /// ``SchemaError``.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        check_not_in_callback(py, "get")?;
        let objects: Objects<'py> =
            if key.is_instance_of::<PyTuple>() || key.is_instance_of::<PyList>() {
                RowConverter::objects_of(key)?
            } else {
                std::iter::once(key.clone()).collect()
            };
        let columns = self.table.key_columns();
        let converter = RowConverter::new(self.table.name(), self.table.schema().clone());
        let mut values = Vec::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            // Past the key's end: the engine reports the count.
            let col = columns.get(i).copied().unwrap_or(usize::MAX);
            values.push(OwnedValue::from(converter.value(col, o)?));
        }
        let table = self.table.clone();
        let Some(row) = py.detach(move || table.get(&values)).py(py)? else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        for (field, v) in self.table.schema().fields().iter().zip(row) {
            d.set_item(field.name(), value_to_py(py, field.data_type(), v)?)?;
        }
        Ok(Some(d))
    }

    /// Calls ``fn(update)`` with every update of this table, on the thread that runs the cycle.
    ///
    /// ``update`` is an ``Update``: its ``added``, ``removed`` and ``modified`` rows as
    /// pyarrow tables, their positions, and the step. The listener runs while the engine holds
    /// its lock: keep it short, and do not call ``run_cycle``, create tables, ``listen`` or
    /// ``subscribe`` from it (those raise ``tickertable.Error``). ``on_failure(message)`` is
    /// called once if the table fails. A listener that raises is reported through
    /// ``sys.unraisablehook`` and removed; the engine and other listeners go on.
    ///
    /// The listener stays registered until ``handle.remove()`` (or the table ends), whether
    /// or not the handle is kept. It sees every update after the table's current state, with
    /// no gap.
    #[pyo3(signature = (fn_, on_failure = None))]
    fn listen(
        &self,
        py: Python<'_>,
        fn_: Py<PyAny>,
        on_failure: Option<Py<PyAny>>,
    ) -> PyResult<PyListenerHandle> {
        check_not_in_callback(py, "listen")?;
        let state = Arc::new(ListenState::default());
        let table = self.table.clone();
        let engine = self.info.handle.clone();
        let st = state.clone();
        let schema = table.schema().clone();
        // Under the engine's shared lock no cycle runs: the listener's first "previous"
        // snapshot is exactly the state its first update starts from.
        let handle = py.detach(move || {
            engine.read(|_| {
                let listener = PyListener {
                    table: table.clone(),
                    schema,
                    prev: table.snapshot(),
                    callback: fn_,
                    on_failure,
                    state: st,
                };
                table.listen(listener)
            })
        });
        let handle = handle.py(py)?;
        *state.handle.lock() = Some(handle);
        Ok(PyListenerHandle { state })
    }

    /// Subscribes: an iterator (and async iterator) of events, starting with a ``Snapshot``
    /// of the table now, then every ``Update`` without gaps. A subscriber that falls behind
    /// more than ``capacity`` updates (or ``max_queued_rows`` rows) gets one ``Lagged`` event
    /// with a fresh snapshot instead, and never slows the engine down.
    #[pyo3(signature = (*, capacity = None, max_queued_rows = None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        capacity: Option<usize>,
        max_queued_rows: Option<usize>,
    ) -> PyResult<PySubscription> {
        check_not_in_callback(py, "subscribe")?;
        let mut options = SubscriptionOptions::default();
        if let Some(c) = capacity {
            options = options.with_capacity(c);
        }
        if let Some(r) = max_queued_rows {
            options = options.with_max_queued_rows(r);
        }
        let table = self.table.clone();
        let sub = py.detach(move || table.subscribe_with(options)).py(py)?;
        Ok(PySubscription::new(sub, self.table.schema().clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Table({:?}, kind={}, rows={})",
            self.table.name(),
            self.table.kind(),
            self.table.num_rows()
        )
    }
}

/// What a listener's handle and the listener share.
#[derive(Default)]
struct ListenState {
    /// The registration; dropping it removes the listener. Kept here (not by the Python
    /// handle) so a listener lives until removed, as in Deephaven.
    handle: Mutex<Option<ListenerHandle>>,
    /// The exception the listener raised, if it did.
    exception: Mutex<Option<Py<PyAny>>>,
}

/// A Python callable as an engine listener.
struct PyListener {
    table: Table,
    schema: SchemaRef,
    /// The table before the update being delivered (for the removed and replaced rows).
    prev: TableSnapshot,
    callback: Py<PyAny>,
    on_failure: Option<Py<PyAny>>,
    state: Arc<ListenState>,
}

impl Listener for PyListener {
    fn on_update(&mut self, update: &TableUpdate) {
        // Snapshots are published before updates are delivered: this is the table after it.
        let prev = std::mem::replace(&mut self.prev, self.table.snapshot());
        let raised = call_python("listener", |py| {
            let u = PyUpdate::new(update, Some(prev), self.schema.clone());
            self.callback.call1(py, (u,)).map(|_| ())
        });
        if let Some((message, exception)) = raised {
            *self.state.exception.lock() = Some(exception);
            fail_callback(Some(message));
        }
    }

    fn on_failure(&mut self, error: &Error) {
        if let Some(f) = &self.on_failure {
            let message = error.to_string();
            let _ = call_python("listener on_failure", |py| {
                f.call1(py, (message,)).map(|_| ())
            });
        }
    }
}

/// A registered listener (``Table.listen``).
///
/// The listener stays registered until ``remove()`` (``stop()`` in Deephaven's words) or
/// until its table ends; it is also a context manager that removes it on exit.
#[pyclass(name = "ListenerHandle", module = "tickertable", frozen)]
pub(crate) struct PyListenerHandle {
    state: Arc<ListenState>,
}

#[pymethods]
impl PyListenerHandle {
    /// Removes the listener; it gets no more updates. A second call does nothing.
    fn remove(&self, py: Python<'_>) {
        let handle = self.state.handle.lock().take();
        py.detach(move || drop(handle));
    }

    /// Removes the listener (Deephaven's name for ``remove``).
    fn stop(&self, py: Python<'_>) {
        self.remove(py);
    }

    /// Whether the listener is still registered (not removed, it has not raised).
    #[getter]
    fn is_active(&self) -> bool {
        self.state
            .handle
            .lock()
            .as_ref()
            .is_some_and(ListenerHandle::is_active)
    }

    /// Why the listener was removed by the engine (its exception's description), if it was.
    #[getter]
    fn failure(&self) -> Option<String> {
        self.state
            .handle
            .lock()
            .as_ref()
            .and_then(ListenerHandle::failure)
    }

    /// The exception the listener raised, if it did.
    #[getter]
    fn exception(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .exception
            .lock()
            .as_ref()
            .map(|e| e.clone_ref(py))
    }

    /// Returns the handle.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Removes the listener.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.remove(py);
        false
    }
}

/// What one cycle changed in one table.
///
/// Positions count every row ever appended to the table; ``removed_rows`` and
/// ``added_rows`` are ranges of them. ``added`` holds the new rows, ``removed`` the rows that
/// left (for listeners; ``None`` in a subscription's updates, which carry positions only), and
/// for a keyed table ``modified`` the new values of the rows at ``modified_rows`` (and
/// ``modified_before`` their old values, for listeners). Row data is converted to pyarrow on
/// first access, without copying.
#[pyclass(name = "Update", module = "tickertable", frozen)]
pub(crate) struct PyUpdate {
    step: u64,
    removed_rows: Range<u64>,
    added_rows: Range<u64>,
    modified_rows: Vec<u64>,
    batches: Vec<RecordBatch>,
    modified: Option<RecordBatch>,
    /// The table before the update (listeners only), for the removed and replaced rows.
    prev: Option<TableSnapshot>,
    schema: SchemaRef,
    added: PyOnceLock<Py<PyAny>>,
}

impl PyUpdate {
    /// An update of a local table; `prev` is the table before it, when known.
    pub(crate) fn new(
        update: &TableUpdate,
        prev: Option<TableSnapshot>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            step: update.step().as_u64(),
            removed_rows: update.removed(),
            added_rows: update.added(),
            modified_rows: update.modified().to_vec(),
            batches: update.batches().to_vec(),
            modified: update.modified_batch().cloned(),
            prev,
            schema,
            added: PyOnceLock::new(),
        }
    }

    /// One message of a remote live stream.
    pub(crate) fn remote(
        meta: &tickertable::flight::MessageMeta,
        batch: Option<RecordBatch>,
        schema: SchemaRef,
    ) -> Self {
        let modified = !meta.modified.is_empty();
        Self {
            step: meta.step.as_u64(),
            removed_rows: meta.removed.clone(),
            added_rows: meta.added.clone(),
            modified_rows: meta.modified.clone(),
            batches: if modified {
                Vec::new()
            } else {
                batch.iter().cloned().collect()
            },
            modified: if modified { batch } else { None },
            prev: None,
            schema,
            added: PyOnceLock::new(),
        }
    }
}

fn range_len(r: &Range<u64>) -> usize {
    usize::try_from(r.end - r.start).unwrap_or(usize::MAX)
}

pub(crate) fn range<'py>(py: Python<'py>, r: &Range<u64>) -> PyResult<Bound<'py, PyRange>> {
    let start = isize::try_from(r.start).unwrap_or(isize::MAX);
    let end = isize::try_from(r.end).unwrap_or(isize::MAX);
    PyRange::new(py, start, end)
}

#[pymethods]
impl PyUpdate {
    /// The step of the cycle that made this update.
    #[getter]
    fn step(&self) -> u64 {
        self.step
    }

    /// ``"update"``, for code that handles a subscription's events by kind.
    #[getter]
    fn kind(&self) -> &'static str {
        "update"
    }

    /// The rows added, a ``pyarrow.Table``.
    #[getter]
    fn added(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.added
            .get_or_try_init(py, || {
                to_pyarrow_table(py, &self.schema, self.batches.clone())
            })
            .map(|t| t.clone_ref(py))
    }

    /// The rows removed, a ``pyarrow.Table`` (for a listener's updates; ``None`` in a
    /// subscription's).
    #[getter]
    fn removed(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(prev) = &self.prev else {
            return Ok(None);
        };
        let rows = prev.slice(self.removed_rows.clone());
        to_pyarrow_table(py, &self.schema, rows).map(Some)
    }

    /// The new values of the rows modified in place (keyed tables), a ``pyarrow.Table``, or
    /// ``None`` when no row was modified.
    #[getter]
    fn modified(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.modified {
            Some(b) => to_pyarrow_table(py, &self.schema, vec![b.clone()]).map(Some),
            None => Ok(None),
        }
    }

    /// The old values of the rows modified in place (for a listener's updates; ``None`` in a
    /// subscription's or when no row was modified).
    #[getter]
    fn modified_before(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let (Some(prev), false) = (&self.prev, self.modified_rows.is_empty()) else {
            return Ok(None);
        };
        let mut rows = Vec::with_capacity(self.modified_rows.len());
        for &p in &self.modified_rows {
            rows.extend(prev.slice(p..p + 1));
        }
        to_pyarrow_table(py, &self.schema, rows).map(Some)
    }

    /// The positions removed, a ``range``.
    #[getter]
    fn removed_rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyRange>> {
        range(py, &self.removed_rows)
    }

    /// The positions added, a ``range``.
    #[getter]
    fn added_rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyRange>> {
        range(py, &self.added_rows)
    }

    /// The positions modified in place, ascending (keyed tables).
    #[getter]
    fn modified_rows(&self) -> Vec<u64> {
        self.modified_rows.clone()
    }

    /// How many rows were added.
    #[getter]
    fn num_added(&self) -> usize {
        range_len(&self.added_rows)
    }

    /// How many rows were removed.
    #[getter]
    fn num_removed(&self) -> usize {
        range_len(&self.removed_rows)
    }

    /// How many rows were modified in place.
    #[getter]
    fn num_modified(&self) -> usize {
        self.modified_rows.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Update(step={}, added={:?}, removed={:?}, modified={})",
            self.step,
            self.added_rows,
            self.removed_rows,
            self.modified_rows.len()
        )
    }
}
