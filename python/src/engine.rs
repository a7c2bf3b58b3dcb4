//! `tickertable.Engine` and its Flight server.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tickertable::engine::DEFAULT_STAGING_LIMIT;
use tickertable::flight::{FlightOptions, FlightServer};
use tickertable::{
    DynamicWriterOptions, Engine, EngineHandle, PublisherOptions, SyncPolicy, Table, TableKind,
};

use crate::callback::{call_python, check_not_in_callback, fail_callback};
use crate::convert::{key_names, kind_of, schema_of};
use crate::derive::aggs_of;
use crate::errors::{simple, IntoPyResult};
use crate::publish::{PyDynamicTableWriter, PyTablePublisher};

/// How long a wait without the GIL lasts before checking for Ctrl-C.
const SIGNAL_SLICE: Duration = Duration::from_millis(50);
use crate::table::PyTable;

/// A sync policy from its Python spelling: `"every_cycle"`, `"never"`, or seconds (a number or
/// a `timedelta`) between fsyncs.
fn sync_policy(v: &Bound<'_, PyAny>) -> PyResult<SyncPolicy> {
    let py = v.py();
    let bad = |reason: String| {
        crate::errors::new_error(
            py,
            "InvalidOptionError",
            &format!("invalid sync: {reason}"),
            &[
                ("option", crate::errors::obj(py, "sync")),
                ("reason", crate::errors::obj(py, reason.as_str())),
            ],
        )
    };
    if let Ok(s) = v.extract::<String>() {
        return match s.as_str() {
            "every_cycle" => Ok(SyncPolicy::EveryCycle),
            "never" => Ok(SyncPolicy::Never),
            other => Err(bad(format!(
                "{other:?} is not \"every_cycle\", \"never\" or a number of seconds"
            ))),
        };
    }
    let every = crate::convert::duration_of(v, "sync")?;
    if every.is_zero() {
        return Err(bad("an interval must be > 0 (use \"every_cycle\")".into()));
    }
    Ok(SyncPolicy::Interval(every))
}

/// What writers need to know about their engine.
#[derive(Debug, Clone)]
pub(crate) struct EngineInfo {
    pub(crate) handle: EngineHandle,
    /// Rows a row writer or a table's publishers may stage before writes wait.
    pub(crate) staging_limit: usize,
}

/// A live ticking-table engine: tables, the cycle that updates them, and their writers.
///
/// ``Engine(period=0.1)`` runs a cycle every ``period`` seconds on its own thread;
/// ``Engine(manual=True)`` runs none, and ``run_cycle()`` runs one on the calling thread
/// (deterministic steps for tests). Rows written between two cycles become visible together at
/// the next one. Use it as a context manager (``with tt.Engine() as e:``) or call
/// ``shutdown()``: shutting down runs a last cycle, ends subscriptions and runs
/// ``on_shutdown`` callbacks; tables stay readable, writes are refused.
///
/// ``data_dir`` (a path) is where durable tables (``durable=True`` on ``table_publisher`` and
/// ``dynamic_table_writer``) log every cycle's rows, and where they are replayed from when an
/// engine on the same directory creates them again (same name, schema and kind): the rows
/// come back. One engine per directory at a time (``DataDirLockedError``); a table created
/// again with another schema raises ``SchemaChangedError`` naming both. ``sync`` says when
/// the log is fsynced: ``"every_cycle"`` (the default: a row any listener has seen is on
/// disk), ``"never"`` (the OS decides; a clean shutdown still syncs) or a number of seconds
/// (or a ``timedelta``): at most that often, off the cycle. ``low_latency`` (seconds) also starts a cycle as soon as
/// rows are staged, at most one per that gap. ``staging_limit`` bounds the rows staged per
/// table and per row writer (default 16Mi); past it writers wait for the next cycle (or raise
/// ``StagingFullError`` in a manual engine).
#[pyclass(name = "Engine", module = "tickertable", frozen, weakref, subclass)]
pub(crate) struct PyEngine {
    /// The owner; `None` once shut down.
    engine: Mutex<Option<Engine>>,
    pub(crate) info: EngineInfo,
    /// Flight servers started by `serve`, stopped at shutdown.
    servers: Mutex<Vec<Py<PyFlightServer>>>,
}

impl PyEngine {
    pub(crate) fn handle(&self) -> &EngineHandle {
        &self.info.handle
    }

    fn table_obj(&self, table: Table) -> PyTable {
        PyTable::new(table, self.info.clone())
    }

    /// A name for a derived table of `source` that is not taken yet.
    fn derived_name(&self, source: &PyTable, what: &str) -> String {
        let base = format!("{}.{what}", source.table.name());
        let mut name = base.clone();
        let mut n = 2;
        while self.handle().table(&name).is_some() {
            name = format!("{base}#{n}");
            n += 1;
        }
        name
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (period = 0.1, *, manual = false, data_dir = None, sync = None, low_latency = None, staging_limit = None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        period: f64,
        manual: bool,
        data_dir: Option<PathBuf>,
        sync: Option<&Bound<'_, PyAny>>,
        low_latency: Option<f64>,
        staging_limit: Option<usize>,
    ) -> PyResult<Self> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v).map_err(|_| {
                simple(
                    py,
                    "InvalidOptionError",
                    format!("invalid {name}: {v} is not a number of seconds"),
                )
            })
        };
        let mut builder = Engine::builder().period(secs("period", period)?);
        if manual {
            builder = builder.manual();
        }
        if let Some(gap) = low_latency {
            builder = builder.low_latency(secs("low_latency", gap)?);
        }
        let staging_limit = staging_limit.unwrap_or(DEFAULT_STAGING_LIMIT);
        builder = builder.staging_limit(staging_limit);
        if let Some(policy) = sync {
            builder = builder.sync_policy(sync_policy(policy)?);
        }
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir);
        }
        let engine = py.detach(|| builder.build()).py(py)?;
        Ok(Self {
            info: EngineInfo {
                handle: engine.handle(),
                staging_limit,
            },
            engine: Mutex::new(Some(engine)),
            servers: Mutex::new(Vec::new()),
        })
    }

    /// Runs one cycle now on the calling thread (with the GIL released) and returns its step.
    ///
    /// This is how a manual engine advances; on a threaded engine it runs an extra cycle.
    /// Listeners run during it, on this thread. On a shut-down engine it does nothing and
    /// returns the last step.
    fn run_cycle(&self, py: Python<'_>) -> PyResult<u64> {
        check_not_in_callback(py, "run_cycle")?;
        let handle = self.handle().clone();
        Ok(py.detach(move || handle.run_cycle()).as_u64())
    }

    /// Makes everything written before this call visible and returns the step it is visible
    /// at: rows staged by any writer before the call are in the tables when it returns
    /// (`DolphinDB`'s "wait for the writer, then count the rows":
    /// ``writer.wait_for_thread_completion(); engine.sync(); len(table.snapshot())``).
    ///
    /// A manual engine runs a cycle; a threaded one asks for a cycle now and waits for it
    /// (with the GIL released). From a listener it cannot wait and returns the current step.
    fn sync(&self, py: Python<'_>) -> u64 {
        let handle = self.handle().clone();
        py.detach(move || handle.sync()).as_u64()
    }

    /// Waits until step ``step`` is published (its snapshots readable, its updates
    /// delivered), at most ``timeout`` seconds (``None``: no limit). Returns whether it was;
    /// ``False`` also when the engine shut down first. Releases the GIL; Ctrl-C interrupts.
    #[pyo3(signature = (step, timeout=None))]
    fn wait_for_step(&self, py: Python<'_>, step: u64, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = match timeout {
            Some(t) if !(t >= 0.0 && t.is_finite()) => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "timeout must be a finite number of seconds >= 0, or None",
                ))
            }
            Some(t) => Some(Instant::now() + Duration::from_secs_f64(t)),
            None => None,
        };
        let target = tickertable::Step::new(step);
        loop {
            let slice = deadline.map_or(SIGNAL_SLICE, |d| {
                d.saturating_duration_since(Instant::now())
                    .min(SIGNAL_SLICE)
            });
            let handle = self.handle().clone();
            if py.detach(move || handle.wait_for_step(target, slice)) {
                return Ok(true);
            }
            if self.handle().is_shut_down() || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
        }
    }

    /// Asks the cycle thread to run the next cycle now (requests coalesce). Does nothing in
    /// manual mode.
    fn request_refresh(&self) {
        self.handle().request_refresh();
    }

    /// The last finished step (0 before the first cycle).
    #[getter]
    fn step(&self) -> u64 {
        self.handle().step().as_u64()
    }

    /// The data directory durable tables log to, as a string; ``None`` without one.
    #[getter]
    fn data_dir(&self) -> Option<String> {
        self.handle()
            .data_dir()
            .map(|d| d.to_string_lossy().into_owned())
    }

    /// The target cycle period, in seconds.
    #[getter]
    fn period(&self) -> f64 {
        self.handle().period().as_secs_f64()
    }

    /// Whether cycles run only on ``run_cycle()``.
    #[getter]
    fn is_manual(&self) -> bool {
        self.handle().is_manual()
    }

    /// Whether the engine has shut down.
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.handle().is_shut_down()
    }

    /// Every table, in creation order.
    fn tables(&self, py: Python<'_>) -> PyResult<Vec<PyTable>> {
        check_not_in_callback(py, "tables")?;
        let handle = self.handle().clone();
        let tables = py.detach(move || handle.tables());
        Ok(tables.into_iter().map(|t| self.table_obj(t)).collect())
    }

    /// The table named ``name``; raises ``NoSuchTableError`` if there is none.
    fn table(&self, py: Python<'_>, name: &str) -> PyResult<PyTable> {
        check_not_in_callback(py, "table")?;
        let handle = self.handle().clone();
        let found = py.detach(|| handle.table(name));
        match found {
            Some(t) => Ok(self.table_obj(t)),
            None => Err(crate::errors::to_py(
                py,
                &tickertable::Error::NoSuchTable {
                    table: name.to_owned(),
                },
            )),
        }
    }

    /// Totals over the engine's life and the last cycle's figures, as a dict: ``cycles``,
    /// ``rows_appended``, ``rows_removed``, ``rows_dropped``, ``total_cycle_time``,
    /// ``max_cycle_time``, ``mean_cycle_time`` (seconds), ``step``, and ``last_cycle`` (a dict
    /// with ``step``, ``duration``, ``lock_wait``, ``rows_appended``, ``rows_removed``,
    /// ``rows_dropped``, ``tables_changed``; ``None`` before the first cycle).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.handle().stats();
        let d = PyDict::new(py);
        d.set_item("cycles", s.cycles)?;
        d.set_item("rows_appended", s.rows_appended)?;
        d.set_item("rows_removed", s.rows_removed)?;
        d.set_item("rows_dropped", s.rows_dropped)?;
        d.set_item("total_cycle_time", s.total_cycle_time.as_secs_f64())?;
        d.set_item("max_cycle_time", s.max_cycle_time.as_secs_f64())?;
        d.set_item("mean_cycle_time", s.mean_cycle_time().as_secs_f64())?;
        d.set_item("step", self.handle().step().as_u64())?;
        match self.handle().last_cycle() {
            Some(c) => {
                let l = PyDict::new(py);
                l.set_item("step", c.step.as_u64())?;
                l.set_item("duration", c.duration.as_secs_f64())?;
                l.set_item("lock_wait", c.lock_wait.as_secs_f64())?;
                l.set_item("rows_appended", c.rows_appended)?;
                l.set_item("rows_removed", c.rows_removed)?;
                l.set_item("rows_dropped", c.rows_dropped)?;
                l.set_item("tables_changed", c.tables_changed)?;
                d.set_item("last_cycle", l)?;
            }
            None => d.set_item("last_cycle", py.None())?,
        }
        Ok(d)
    }

    /// The last errors the engine reported on its own (callbacks that raised or panicked),
    /// oldest first, as messages.
    fn recent_errors(&self) -> Vec<String> {
        self.handle()
            .recent_errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Creates a table fed by whole batches and its publisher: ``(table, publisher)``.
    ///
    /// ``col_defs`` is a ``pyarrow.Schema`` or a dict of column names to pyarrow types. The
    /// table is a blink table (only the last cycle's rows) unless ``kind`` says otherwise:
    /// ``"append"``, ``"ring"`` (with ``capacity``) or ``"keyed"`` (with ``key``, the key
    /// columns, and an optional ``capacity``). ``on_flush(publisher)`` runs on the cycle thread
    /// at the start of every cycle (what it adds lands in that cycle); if it raises, the table
    /// fails. ``on_shutdown()`` runs once when the table closes or fails or the engine shuts
    /// down.
    ///
    /// ``durable=True`` (on an engine with a ``data_dir``) logs every cycle's rows, upserts and
    /// deletes, and creating the table again on an engine with the same directory replays
    /// them: the table comes back with its rows (``SchemaChangedError`` or
    /// ``KindChangedError`` if the schema or kind differs from the logged one).
    #[pyo3(signature = (name, col_defs, *, on_flush = None, on_shutdown = None, kind = None, capacity = None, key = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn table_publisher(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        name: &str,
        col_defs: &Bound<'_, PyAny>,
        on_flush: Option<Py<PyAny>>,
        on_shutdown: Option<Py<PyAny>>,
        kind: Option<&str>,
        capacity: Option<usize>,
        key: Option<&Bound<'_, PyAny>>,
        durable: bool,
    ) -> PyResult<(PyTable, Py<PyTablePublisher>)> {
        check_not_in_callback(py, "table_publisher")?;
        let this = slf.get();
        let schema = schema_of(col_defs)?;
        let key = key_names(key)?;
        let kind = kind_of(py, kind, capacity, &key, TableKind::Blink)?;
        let mut options = PublisherOptions::default().with_kind(kind);
        if !key.is_empty() {
            options = options.with_key(key.iter().cloned());
        }
        if durable {
            options = options.durable();
        }
        // The Python publisher handed to `on_flush`, set once the publisher exists.
        let slot: Arc<OnceLock<Py<PyTablePublisher>>> = Arc::new(OnceLock::new());
        if let Some(f) = on_flush {
            let slot = slot.clone();
            options = options.with_on_flush(move |_| {
                let Some(publisher) = slot.get() else { return };
                fail_callback(
                    call_python("on_flush", |py| f.call1(py, (publisher,)).map(|_| ()))
                        .map(|r| r.0),
                );
            });
        }
        if let Some(f) = on_shutdown {
            options = options.with_on_shutdown(move || {
                let _ = call_python("on_shutdown", |py| f.call0(py).map(|_| ()));
            });
        }
        let handle = this.handle().clone();
        let (table, publisher) = py
            .detach(|| handle.table_publisher(name, schema, options))
            .py(py)?;
        let py_publisher = Py::new(
            py,
            PyTablePublisher::new(publisher, table.clone(), this.info.clone()),
        )?;
        let _ = slot.set(py_publisher.clone_ref(py));
        let table = this.table_obj(table);
        Ok((table, py_publisher))
    }

    /// Creates a table written row by row from any thread: a ``DynamicTableWriter``.
    ///
    /// An append table unless ``kind`` says otherwise (see ``table_publisher``); with ``key``
    /// a keyed table where ``write_row`` upserts. ``durable=True`` logs the table and replays
    /// it when it is created again (see ``table_publisher``).
    #[pyo3(signature = (name, col_defs, *, kind = None, capacity = None, key = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn dynamic_table_writer(
        &self,
        py: Python<'_>,
        name: &str,
        col_defs: &Bound<'_, PyAny>,
        kind: Option<&str>,
        capacity: Option<usize>,
        key: Option<&Bound<'_, PyAny>>,
        durable: bool,
    ) -> PyResult<PyDynamicTableWriter> {
        check_not_in_callback(py, "dynamic_table_writer")?;
        let schema = schema_of(col_defs)?;
        let key = key_names(key)?;
        let kind = kind_of(py, kind, capacity, &key, TableKind::Append)?;
        let mut options = DynamicWriterOptions::default().with_kind(kind);
        if !key.is_empty() {
            options = options.with_key(key.iter().cloned());
        }
        if durable {
            options = options.durable();
        }
        let handle = self.handle().clone();
        let dtw = py
            .detach(|| handle.dynamic_table_writer(name, schema, options))
            .py(py)?;
        Ok(PyDynamicTableWriter::new(dtw, self.info.clone()))
    }

    /// A ring table of the newest ``capacity`` rows of ``source``, updated in the same cycle
    /// (Deephaven's ``ring_table``). ``name`` defaults to ``"<source>.ring(<capacity>)"``.
    #[pyo3(signature = (source, capacity, *, name = None))]
    fn ring_table(
        &self,
        py: Python<'_>,
        source: &PyTable,
        capacity: usize,
        name: Option<String>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "ring_table")?;
        let name = name.unwrap_or_else(|| self.derived_name(source, &format!("ring({capacity})")));
        let handle = self.handle().clone();
        let t = py
            .detach(|| handle.ring_table(&name, &source.table, capacity))
            .py(py)?;
        Ok(self.table_obj(t))
    }

    /// An append table of every row ``source`` ever shows (Deephaven's
    /// ``blink_to_append_only``), optionally stopping at ``limit`` rows. ``name`` defaults to
    /// ``"<source>.append"``.
    #[pyo3(signature = (source, *, name = None, limit = None))]
    fn blink_to_append_only(
        &self,
        py: Python<'_>,
        source: &PyTable,
        name: Option<String>,
        limit: Option<usize>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "blink_to_append_only")?;
        let name = name.unwrap_or_else(|| self.derived_name(source, "append"));
        let handle = self.handle().clone();
        let t = py
            .detach(|| handle.blink_to_append_only(&name, &source.table, limit))
            .py(py)?;
        Ok(self.table_obj(t))
    }

    /// A table of a durable blink table's logged history, across restarts: every row its log
    /// holds (an append table), or with ``capacity`` the newest ``capacity`` of them (a ring),
    /// then each cycle's rows. ``name`` defaults to ``"<source>.history"``. Raises
    /// ``InvalidOptionError`` for a source that is not a durable blink table.
    #[pyo3(signature = (source, *, capacity = None, name = None))]
    fn history_table(
        &self,
        py: Python<'_>,
        source: &PyTable,
        capacity: Option<usize>,
        name: Option<String>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "history_table")?;
        let name = name.unwrap_or_else(|| self.derived_name(source, "history"));
        let kind = capacity.map_or(TableKind::Append, |capacity| TableKind::Ring { capacity });
        let handle = self.handle().clone();
        let t = py
            .detach(|| handle.history_table(&name, &source.table, kind))
            .py(py)?;
        Ok(self.table_obj(t))
    }

    /// The last ``n`` rows of ``source``: of each cycle for a blink source, otherwise a ring
    /// of ``n``. ``name`` defaults to ``"<source>.tail(<n>)"``.
    #[pyo3(signature = (source, n, *, name = None))]
    fn tail(
        &self,
        py: Python<'_>,
        source: &PyTable,
        n: usize,
        name: Option<String>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "tail")?;
        let name = name.unwrap_or_else(|| self.derived_name(source, &format!("tail({n})")));
        let handle = self.handle().clone();
        let t = py.detach(|| handle.tail(&name, &source.table, n)).py(py)?;
        Ok(self.table_obj(t))
    }

    /// A keyed table of the latest row of ``source`` per value of the ``keys`` columns (a
    /// name or a list of names), updated in the same cycle as ``source`` (Deephaven's
    /// ``last_by``). A ring's eviction of a key's last rows, or a keyed source's delete, removes
    /// the key. Costs O(rows changed) per cycle.
    fn last_by(
        &self,
        py: Python<'_>,
        name: &str,
        source: &PyTable,
        keys: &Bound<'_, PyAny>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "last_by")?;
        let keys = key_names(Some(keys))?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let handle = self.handle().clone();
        let t = py
            .detach(|| handle.last_by(name, &source.table, &keys))
            .py(py)?;
        Ok(self.table_obj(t))
    }

    /// The rows of ``source`` that match ``predicate``, updated in the same cycle as
    /// ``source`` (Deephaven's ``where``; ``filter`` is the same call).
    ///
    /// ``predicate`` is an expression over the columns: comparisons (``Price > 100``,
    /// ``Sym == "AAPL"``), ``&&``, ``||``, ``!``, arithmetic, ``Sym in ("AAPL", "MSFT")``,
    /// functions such as ``abs`` and ``starts_with``. A null result does not match. The table
    /// has the source's schema and kind (a keyed source gives a keyed table that rows enter
    /// and leave as their values change). A predicate that does not parse, names an unknown
    /// column or is not boolean raises ``ExpressionError`` with its ``position`` (a byte
    /// offset in the text).
    #[pyo3(name = "where")]
    fn where_(
        &self,
        py: Python<'_>,
        name: &str,
        source: &PyTable,
        predicate: &str,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "where")?;
        let handle = self.handle().clone();
        let t = py.detach(|| handle.filter(name, &source.table, predicate));
        match t {
            Ok(t) => Ok(self.table_obj(t)),
            Err(tickertable::Error::Expr(e)) => {
                Err(crate::errors::expr_error(py, &e, Some(predicate)))
            }
            Err(e) => Err(crate::errors::to_py(py, &e)),
        }
    }

    /// The rows of ``source`` that match ``predicate``: the same as ``where``.
    fn filter(
        &self,
        py: Python<'_>,
        name: &str,
        source: &PyTable,
        predicate: &str,
    ) -> PyResult<PyTable> {
        self.where_(py, name, source, predicate)
    }

    /// A keyed table of ``aggs`` over the rows of ``source`` per value of the ``keys``
    /// columns: the key columns, then one column per aggregate, updated in the same cycle as
    /// ``source`` at O(rows changed).
    ///
    /// ``aggs`` is a list of ``tickertable.agg`` aggregates: ``[tt.agg.count(),
    /// tt.agg.sum("Size", name="volume"), tt.agg.wmean("Price", "Size", name="vwap")]``, or
    /// their text, as ticker-serve's config writes them: ``["count", "sum(Size) as volume",
    /// "wmean(Price, Size) as vwap"]`` (a bad one raises ``ValueError`` saying where). Over a
    /// blink source the aggregates accumulate every row the source ever showed; over a ring
    /// or keyed source rows that leave are taken out again. With no keys (``[]``) the result
    /// is one row over the whole source (a ring of capacity 1; no row while the source has
    /// none).
    fn agg_by(
        &self,
        py: Python<'_>,
        name: &str,
        source: &PyTable,
        keys: &Bound<'_, PyAny>,
        aggs: &Bound<'_, PyAny>,
    ) -> PyResult<PyTable> {
        check_not_in_callback(py, "agg_by")?;
        let keys = key_names(Some(keys))?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let aggs = aggs_of(aggs)?;
        let handle = self.handle().clone();
        let t = py
            .detach(|| handle.agg_by(name, &source.table, &keys, &aggs))
            .py(py)?;
        Ok(self.table_obj(t))
    }

    /// Tumbling time bars of ``source`` per value of the ``keys`` columns:
    /// ``(closed, open)``.
    ///
    /// A row falls in the bar ``[k * interval, (k + 1) * interval)`` of its ``time_col``
    /// (``int64`` nanoseconds or a ``timestamp`` of any unit); ``interval`` is seconds (an
    /// ``int`` or a ``float``) or a ``timedelta``, a whole number of the column's unit. Both
    /// tables have the key columns, then ``BarStart`` (the bar's start, of the time column's
    /// type), then one column per aggregate (OHLC is ``first``, ``max``, ``min``, ``last`` of
    /// the price). ``open`` (a keyed table named ``"<name>_open"``) holds each key's open bar as
    /// it ticks; a key's bar closes when a row of that key in a later bar arrives, and is then
    /// appended to ``closed`` (an append table named ``name``). Rows earlier than their key's
    /// open bar are dropped.
    #[pyo3(signature = (name, source, time_col, interval, keys, aggs))]
    #[allow(clippy::too_many_arguments)] // Python arguments
    fn bars(
        &self,
        py: Python<'_>,
        name: &str,
        source: &PyTable,
        time_col: &str,
        interval: &Bound<'_, PyAny>,
        keys: &Bound<'_, PyAny>,
        aggs: &Bound<'_, PyAny>,
    ) -> PyResult<(PyTable, PyTable)> {
        check_not_in_callback(py, "bars")?;
        let interval = crate::convert::duration_of(interval, "bar interval")?;
        let keys = key_names(Some(keys))?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let aggs = aggs_of(aggs)?;
        let handle = self.handle().clone();
        let bars = py
            .detach(|| handle.bars(name, &source.table, time_col, interval, &keys, &aggs))
            .py(py)?;
        Ok((
            self.table_obj(bars.closed().clone()),
            self.table_obj(bars.open().clone()),
        ))
    }

    /// Drops the table ``name`` and the tables derived from it; returns their names, ``name``
    /// first. Their handles read as closed, their subscriptions end, and a durable table's log
    /// is deleted (creating the name again starts afresh).
    fn drop_table(&self, py: Python<'_>, name: &str) -> PyResult<Vec<String>> {
        check_not_in_callback(py, "drop_table")?;
        let handle = self.handle().clone();
        py.detach(|| handle.drop_table(name)).py(py)
    }

    /// Serves every table over Arrow Flight at ``address`` (``"127.0.0.1:0"`` picks a free
    /// port): any Flight client, ``tickertable.connect`` and pyarrow's included, can list,
    /// read, follow and publish. With ``token`` every call needs ``authorization: Bearer
    /// <token>``. With ``table_management=True`` clients may also create and drop tables
    /// (``Client.create_table``, ``Client.drop_table``). The server stops at ``shutdown()`` of
    /// the server or of the engine.
    #[pyo3(signature = (address = "127.0.0.1:0", *, token = None, max_streams = None, table_management = false))]
    fn serve(
        &self,
        py: Python<'_>,
        address: &str,
        token: Option<String>,
        max_streams: Option<usize>,
        table_management: bool,
    ) -> PyResult<Py<PyFlightServer>> {
        let mut options = FlightOptions::default().with_table_management(table_management);
        if let Some(t) = token {
            options = options.with_token(t);
        }
        if let Some(n) = max_streams {
            options = options.with_max_streams(n);
        }
        let handle = self.handle().clone();
        let server = py
            .detach(|| handle.serve_flight_with(address, options))
            .py(py)?;
        let server = Py::new(
            py,
            PyFlightServer {
                url: server.url(),
                port: server.local_addr().port(),
                server: Mutex::new(Some(server)),
            },
        )?;
        self.servers.lock().push(server.clone_ref(py));
        Ok(server)
    }

    /// Shuts the engine down (see the class docs); a second call does nothing. The GIL is
    /// released meanwhile, so listeners can run the last cycle.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        check_not_in_callback(py, "shutdown")?;
        let servers: Vec<_> = std::mem::take(&mut *self.servers.lock());
        for s in servers {
            s.get().stop(py);
        }
        let engine = self.engine.lock().take();
        py.detach(move || drop(engine));
        Ok(())
    }

    /// Returns the engine.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Shuts the engine down.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.shutdown(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let h = self.handle();
        let dir = h.data_dir().map_or_else(String::new, |d| {
            format!(", data_dir={:?}", d.to_string_lossy())
        });
        if h.is_manual() {
            format!("Engine(manual=True{dir}, step={})", h.step())
        } else {
            format!(
                "Engine(period={}{dir}, step={})",
                h.period().as_secs_f64(),
                h.step()
            )
        }
    }
}

impl Drop for PyEngine {
    fn drop(&mut self) {
        // Dropping an engine runs its last cycle, whose listeners need the GIL: release it.
        if let Some(engine) = self.engine.get_mut().take() {
            Python::attach(|py| py.detach(move || drop(engine)));
        }
    }
}

/// A running Flight server of an engine (``Engine.serve``).
#[pyclass(name = "FlightServer", module = "tickertable", frozen)]
pub(crate) struct PyFlightServer {
    server: Mutex<Option<FlightServer>>,
    url: String,
    port: u16,
}

impl PyFlightServer {
    fn stop(&self, py: Python<'_>) {
        let server = self.server.lock().take();
        py.detach(move || drop(server));
    }
}

#[pymethods]
impl PyFlightServer {
    /// The ``grpc://host:port`` URL clients connect to.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The port the server listens on.
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (open streams end) and waits for its thread.
    fn shutdown(&self, py: Python<'_>) {
        self.stop(py);
    }

    /// Returns the server.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Stops the server.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        format!("FlightServer({:?})", self.url)
    }
}

impl Drop for PyFlightServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.get_mut().take() {
            Python::attach(|py| py.detach(move || drop(server)));
        }
    }
}
