//! `tickertable.MultithreadedTableWriter` (DolphinDB's MTW) and its status.

use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_schema::{DataType, Field, Schema};
use parking_lot::RwLock;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use tickertable::{
    Error, FlushMode, MultithreadedTableWriter, MultithreadedWriterOptions,
    MultithreadedWriterStatus, Table, TryInsertError, WriteTarget, OP_COLUMN,
};

use crate::callback::wait_until;
use crate::convert::{helpers, RowConverter};
use crate::errors::{new_error, obj, IntoPyResult};
use crate::remote::PyRemoteTable;
use crate::table::PyTable;

/// A pool of writer threads in front of a table, fed by ``insert(*values)`` from any number
/// of Python threads (DolphinDB's ``MultithreadedTableWriter``).
///
/// ``target`` is a local ``Table`` or a ``RemoteTable`` (``tickertable.connect(url).table(name)``:
/// batches go over Flight). Rows are batched per writer thread and sent when a thread has
/// ``batch_size`` rows or its oldest row is ``throttle`` seconds old; ``partition_col`` routes
/// rows with equal values to the same thread (their order is kept). ``mode="upsert"`` writes
/// into a keyed table by key (``"append"`` into a keyed table upserts too); ``flush_mode`` is
/// ``"background"`` (default), ``"sync"`` (``insert`` returns once the row is published) or
/// ``"manual"`` (only ``flush()`` sends).
///
/// Unlike DolphinDB, ``insert`` checks the row's types at once: a bad row raises
/// ``SchemaError`` naming the column, the expected and the found type, and the rows around it
/// are unaffected. A thread that fails for good keeps its rows for ``get_unwritten_data()``,
/// to hand to ``insert_unwritten_data`` of a new writer. ``insert`` waits (GIL released,
/// Ctrl-C checked) while its thread's buffer is full.
#[pyclass(name = "MultithreadedTableWriter", module = "tickertable", frozen)]
pub(crate) struct PyMtw {
    mtw: RwLock<MultithreadedTableWriter>,
    conv: RowConverter,
    key: Vec<usize>,
    sync: bool,
}

fn invalid(py: Python<'_>, option: &str, reason: &str) -> PyErr {
    new_error(
        py,
        "InvalidOptionError",
        &format!("invalid {option}: {reason}"),
        &[("option", obj(py, option)), ("reason", obj(py, reason))],
    )
}

impl PyMtw {
    /// Inserts one converted row: on the fast path with the GIL held (a lane's lock is never
    /// held by anyone who needs the GIL), waiting without it when the lane is full.
    fn insert_values(&self, py: Python<'_>, row: &[tickertable::Value<'_>]) -> PyResult<()> {
        if self.sync {
            return py.detach(|| self.mtw.read().insert(row)).py(py);
        }
        if let Some(mtw) = self.mtw.try_read() {
            match mtw.try_insert(row) {
                Ok(()) => return Ok(()),
                Err(TryInsertError::Full) => {}
                Err(TryInsertError::Refused(e)) => return Err(crate::errors::to_py(py, &e)),
                Err(e) => return Err(crate::errors::simple(py, "Error", e.to_string())),
            }
        }
        let result = wait_until(py, || match self.mtw.read().try_insert(row) {
            Ok(()) => Some(Ok(())),
            Err(TryInsertError::Full) => None,
            Err(TryInsertError::Refused(e)) => Some(Err(e)),
            Err(e) => Some(Err(Error::Protocol {
                message: e.to_string(),
            })),
        })?;
        result.py(py)
    }
}

#[pymethods]
impl PyMtw {
    #[new]
    #[pyo3(signature = (
        target, *, batch_size = 10_000, throttle = 0.01, thread_count = 1, partition_col = None,
        mode = "append", flush_mode = "background", max_buffered_rows = None,
        max_buffered_bytes = None, max_retries = None, base_delay = None, max_delay = None,
    ))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        batch_size: usize,
        throttle: f64,
        thread_count: usize,
        partition_col: Option<String>,
        mode: &str,
        flush_mode: &str,
        max_buffered_rows: Option<usize>,
        max_buffered_bytes: Option<usize>,
        max_retries: Option<u32>,
        base_delay: Option<f64>,
        max_delay: Option<f64>,
    ) -> PyResult<Self> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .map_err(|_| invalid(py, name, &format!("{v} is not a number of seconds")))
        };
        let (target, schema, name, key) = if let Ok(t) = target.cast::<PyTable>() {
            let t: &Table = &t.get().table;
            (
                WriteTarget::Local(t.clone()),
                t.schema().clone(),
                t.name().to_owned(),
                t.key_columns().to_vec(),
            )
        } else if let Ok(r) = target.cast::<PyRemoteTable>() {
            let r = r.get();
            (
                r.write_target(),
                r.schema.clone(),
                r.name.clone(),
                r.key_indices(),
            )
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "target must be a tickertable.Table or RemoteTable, not {}",
                target.get_type().name()?
            )));
        };
        match mode.to_ascii_lowercase().as_str() {
            "append" => {}
            "upsert" if !key.is_empty() => {}
            "upsert" => {
                return Err(invalid(
                    py,
                    "mode",
                    &format!("\"upsert\" needs a keyed table; {name:?} has no key"),
                ))
            }
            other => {
                return Err(invalid(
                    py,
                    "mode",
                    &format!("{other:?} is not \"append\" or \"upsert\""),
                ))
            }
        }
        let flush = match flush_mode.to_ascii_lowercase().as_str() {
            "background" => FlushMode::Background,
            "sync" => FlushMode::Sync,
            "manual" => FlushMode::Manual,
            other => {
                return Err(invalid(
                    py,
                    "flush_mode",
                    &format!("{other:?} is not \"background\", \"sync\" or \"manual\""),
                ))
            }
        };
        let mut o = MultithreadedWriterOptions::default()
            .with_batch_size(batch_size)
            .with_throttle(secs("throttle", throttle)?)
            .with_thread_count(thread_count)
            .with_flush_mode(flush);
        if let Some(c) = partition_col {
            o = o.with_partition_column(c);
        }
        if let Some(n) = max_buffered_rows {
            o = o.with_max_buffered_rows(n);
        }
        if let Some(n) = max_buffered_bytes {
            o = o.with_max_buffered_bytes(n);
        }
        if let Some(n) = max_retries {
            o = o.with_max_retries(n);
        }
        if let Some(d) = base_delay {
            o = o.with_base_delay(secs("base_delay", d)?);
        }
        if let Some(d) = max_delay {
            o = o.with_max_delay(secs("max_delay", d)?);
        }
        let mtw = py
            .detach(|| MultithreadedTableWriter::new(target, o))
            .py(py)?;
        Ok(Self {
            mtw: RwLock::new(mtw),
            conv: RowConverter::new(&name, schema),
            key,
            sync: flush == FlushMode::Sync,
        })
    }

    /// Inserts one row (one value per column, in schema order); checked now, sent by a writer
    /// thread. Raises ``SchemaError`` for a bad row, ``WriterClosedError`` after
    /// ``wait_for_thread_completion`` or once the row's thread gave up.
    #[pyo3(signature = (*values))]
    fn insert(&self, py: Python<'_>, values: &Bound<'_, PyTuple>) -> PyResult<()> {
        let objects = RowConverter::objects(values);
        let row = self.conv.convert(&objects)?;
        self.insert_values(py, &row)
    }

    /// Inserts many rows (a list of tuples or lists), each as ``insert`` would; stops at the
    /// first bad row (the rows before it are inserted).
    fn insert_rows(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<()> {
        for r in rows.try_iter()? {
            let objects = RowConverter::objects_of(&r?)?;
            let row = self.conv.convert(&objects)?;
            self.insert_values(py, &row)?;
        }
        Ok(())
    }

    /// Upserts one row into a keyed table (what ``insert`` does there).
    #[pyo3(signature = (*values))]
    fn upsert(&self, py: Python<'_>, values: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.insert(py, values)
    }

    /// Deletes one key from a keyed table (the key columns' values, in the key's order),
    /// routed and sent like ``insert``, in order with the inserts of the same key.
    #[pyo3(signature = (*key))]
    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyTuple>) -> PyResult<()> {
        let objects = RowConverter::objects(key);
        let values = self.conv.convert_key(&self.key, &objects)?;
        let values = if values.len() == objects.len() {
            values
        } else {
            self.conv.convert(&objects)?
        };
        py.detach(|| self.mtw.read().delete(&values)).py(py)
    }

    /// Sends everything buffered now and waits until it is published or failed.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.mtw.read().flush()).py(py)
    }

    /// The writer's counters and last error, in total and per thread.
    fn get_status(&self, py: Python<'_>) -> PyMtwStatus {
        PyMtwStatus::from(py.detach(|| self.mtw.read().status()))
    }

    /// Takes every row not yet written out of the writer (rows of failed batches, and rows
    /// still buffered in threads that gave up), as a list of rows (lists, in column order; a
    /// keyed table's rows have one more value, the operation). Hand them, fixed if needed, to
    /// ``insert_unwritten_data`` of a new writer.
    fn get_unwritten_data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let batches = self.get_unwritten_batches(py)?;
        Ok(helpers(py)?
            .getattr("unwritten_rows")?
            .call1((batches,))?
            .unbind())
    }

    /// Like ``get_unwritten_data``, as ``pyarrow.RecordBatch``es (no copy).
    fn get_unwritten_batches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let batches = py.detach(|| self.mtw.read().unwritten_data());
        let list = PyList::empty(py);
        for b in &batches {
            list.append(b.to_pyarrow(py)?)?;
        }
        Ok(list)
    }

    /// Inserts rows handed back by ``get_unwritten_data`` (a list of rows) or
    /// ``get_unwritten_batches`` (a list of ``pyarrow.RecordBatch``), all or none of each
    /// batch; order per partition is kept.
    fn insert_unwritten_data(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let items: Vec<Bound<'_, PyAny>> = data.try_iter()?.collect::<PyResult<_>>()?;
        let mut batches = Vec::new();
        let mut rows = Vec::new();
        for item in items {
            match RecordBatch::from_pyarrow_bound(&item) {
                Ok(b) => batches.push(b),
                Err(_) => rows.push(item),
            }
        }
        if !rows.is_empty() {
            let schema = self.conv.schema.clone();
            let width = rows.first().map_or(Ok(0), pyo3::types::PyAnyMethods::len)?;
            // A keyed table's unwritten rows carry their operation: its staged shape.
            let schema = if !self.key.is_empty() && width == schema.fields().len() + 1 {
                let mut fields: Vec<Field> = schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect();
                fields.push(Field::new(OP_COLUMN, DataType::Binary, false));
                std::sync::Arc::new(Schema::new(fields))
            } else {
                schema
            };
            let rows = PyList::new(py, rows)?;
            let batch = helpers(py)?.getattr("rows_to_batch")?.call1((
                rows,
                &*self.conv.table,
                schema.as_ref().to_pyarrow(py)?,
            ))?;
            batches.push(RecordBatch::from_pyarrow_bound(&batch)?);
        }
        py.detach(|| self.mtw.read().insert_unwritten(batches))
            .py(py)
    }

    /// Sends everything, stops taking rows, joins the writer threads (GIL released) and
    /// returns the final status. Rows that could not be written stay available through
    /// ``get_unwritten_data``.
    fn wait_for_thread_completion(&self, py: Python<'_>) -> PyMtwStatus {
        PyMtwStatus::from(py.detach(|| self.mtw.write().wait_for_completion()))
    }

    /// The writer's schema, a ``pyarrow.Schema``.
    #[getter]
    fn schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.conv.schema.as_ref().to_pyarrow(py)?.unbind())
    }

    /// Returns the writer.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Waits for completion.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.wait_for_thread_completion(py);
        false
    }

    fn __repr__(&self) -> String {
        format!("MultithreadedTableWriter({:?})", &*self.conv.table)
    }
}

impl Drop for PyMtw {
    fn drop(&mut self) {
        // Dropping joins the writer threads, which may need the GIL to free Python-owned
        // batches: complete with the GIL released first.
        let mtw = self.mtw.get_mut();
        Python::attach(|py| py.detach(|| drop(mtw.wait_for_completion())));
    }
}

/// One writer thread's counters (DolphinDB's ``threadStatus`` rows).
#[pyclass(
    name = "ThreadStatus",
    module = "tickertable",
    frozen,
    get_all,
    skip_from_py_object
)]
#[derive(Debug, Clone)]
pub(crate) struct PyThreadStatus {
    /// The writer thread's index, from 0.
    thread_id: usize,
    /// Rows published.
    sent_rows: u64,
    /// Rows buffered or being sent.
    unsent_rows: u64,
    /// Rows the thread failed to send and keeps for ``get_unwritten_data``.
    send_failed_rows: u64,
    /// The thread gave up and takes no more rows.
    is_exiting: bool,
}

#[pymethods]
impl PyThreadStatus {
    fn __repr__(&self) -> String {
        format!(
            "ThreadStatus(thread_id={}, sent_rows={}, unsent_rows={}, send_failed_rows={}, is_exiting={})",
            self.thread_id, self.sent_rows, self.unsent_rows, self.send_failed_rows, self.is_exiting
        )
    }
}

/// What a ``MultithreadedTableWriter`` has done, in total and per thread (DolphinDB's
/// ``MultithreadedTableWriterStatus``, with snake_case names).
///
/// ``error_code`` is ``""`` without an error, else a short stable code (``"schema"``,
/// ``"staging_full"``, ``"remote_unavailable"``, ``"table_closed"``, ...); ``error_info`` is
/// the message (``None`` without an error).
#[pyclass(
    name = "MultithreadedWriterStatus",
    module = "tickertable",
    frozen,
    get_all
)]
pub(crate) struct PyMtwStatus {
    /// Rows published.
    sent_rows: u64,
    /// Rows buffered or being sent.
    unsent_rows: u64,
    /// Rows that failed and are kept for ``get_unwritten_data``.
    send_failed_rows: u64,
    /// Some writer thread gave up.
    is_exiting: bool,
    /// ``""``, or the last error's code.
    error_code: String,
    /// ``None``, or the last error's message.
    error_info: Option<String>,
    /// Per writer thread.
    thread_status: Vec<PyThreadStatus>,
}

impl From<MultithreadedWriterStatus> for PyMtwStatus {
    fn from(s: MultithreadedWriterStatus) -> Self {
        Self {
            sent_rows: s.sent_rows,
            unsent_rows: s.unsent_rows,
            send_failed_rows: s.failed_rows,
            is_exiting: s.is_exiting,
            error_code: s
                .last_error()
                .map_or_else(String::new, |e| e.code.to_string()),
            error_info: s.last_error().map(|e| e.message.clone()),
            thread_status: s
                .threads
                .iter()
                .enumerate()
                .map(|(i, t)| PyThreadStatus {
                    thread_id: i,
                    sent_rows: t.sent_rows,
                    unsent_rows: t.unsent_rows,
                    send_failed_rows: t.failed_rows,
                    is_exiting: t.is_exiting,
                })
                .collect(),
        }
    }
}

#[pymethods]
impl PyMtwStatus {
    /// Whether an error happened.
    fn has_error(&self) -> bool {
        !self.error_code.is_empty()
    }

    /// Whether no error happened.
    fn succeed(&self) -> bool {
        self.error_code.is_empty()
    }

    fn __repr__(&self) -> String {
        use std::fmt::Write as _;
        let mut out =
            format!(
            "errorCode     : {}\n errorInfo     : {}\n isExiting     : {}\n sentRows      : {}\n \
             unsentRows    : {}\n sendFailedRows: {}\n threadStatus  :\n        threadId        \
             sentRows      unsentRows  sendFailedRows\n",
            if self.error_code.is_empty() { "None" } else { &self.error_code },
            self.error_info.as_deref().unwrap_or(""),
            self.is_exiting,
            self.sent_rows,
            self.unsent_rows,
            self.send_failed_rows,
        );
        for t in &self.thread_status {
            let _ = writeln!(
                out,
                "        {:>8} {:>15} {:>15} {:>15}",
                t.thread_id, t.sent_rows, t.unsent_rows, t.send_failed_rows
            );
        }
        out
    }
}
