//! Subscriptions and their events.

use arrow_schema::SchemaRef;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tickertable::{Event, RecvTimeoutError, Subscription, TableSnapshot, TryRecvError};

use crate::callback::{check_not_in_callback, SLICE};
use crate::convert::helpers;
use crate::table::PyUpdate;

/// A subscription to a table: an iterator (``for event in sub``) and an async iterator
/// (``async for event in sub``) of its events.
///
/// The first event is a ``Snapshot`` of the table when the subscription started; then every
/// ``Update``, in step order, without gaps. A subscriber that falls behind gets one ``Lagged``
/// event, with a fresh snapshot to reset to, instead of the updates it missed. ``Failed``
/// comes last if the table fails; iteration ends when the table closes or the engine shuts
/// down. Waiting releases the GIL; Ctrl-C interrupts it. ``close()`` (or leaving a ``with``
/// block) unsubscribes.
#[pyclass(name = "Subscription", module = "tickertable", frozen)]
pub(crate) struct PySubscription {
    sub: parking_lot::Mutex<Option<Subscription>>,
    schema: SchemaRef,
}

/// The outcome of one wait.
enum Polled {
    Event(Event),
    Timeout,
    Ended,
}

impl PySubscription {
    pub(crate) fn new(sub: Subscription, schema: SchemaRef) -> Self {
        Self {
            sub: parking_lot::Mutex::new(Some(sub)),
            schema,
        }
    }

    /// Waits up to `timeout` without the GIL.
    fn poll(&self, py: Python<'_>, timeout: std::time::Duration) -> Polled {
        py.detach(|| {
            let guard = self.sub.lock();
            let Some(sub) = guard.as_ref() else {
                return Polled::Ended;
            };
            match sub.recv_timeout(timeout) {
                Ok(e) => Polled::Event(e),
                Err(RecvTimeoutError::Timeout) => Polled::Timeout,
                Err(RecvTimeoutError::Ended) => Polled::Ended,
            }
        })
    }

    fn event(&self, py: Python<'_>, e: Event) -> PyResult<Py<PyAny>> {
        Ok(match e {
            Event::Snapshot(s) => Py::new(py, PySnapshot::new(&s))?.into_any(),
            Event::Update(u) => {
                Py::new(py, PyUpdate::new(&u, None, self.schema.clone()))?.into_any()
            }
            Event::Lagged { missed, snapshot } => Py::new(
                py,
                PyLagged {
                    missed: Some(missed),
                    snapshot: Py::new(py, PySnapshot::new(&snapshot))?,
                },
            )?
            .into_any(),
            Event::Failed(err) => {
                let error = crate::errors::to_py(py, &err)
                    .value(py)
                    .clone()
                    .into_any()
                    .unbind();
                Py::new(py, PyFailed { error })?.into_any()
            }
            _ => py.None(),
        })
    }
}

#[pymethods]
impl PySubscription {
    /// Returns the subscription.
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next event, waiting for it (GIL released, Ctrl-C checked every 50 ms).
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        check_not_in_callback(py, "Subscription.__next__")?;
        loop {
            match self.poll(py, SLICE) {
                Polled::Event(e) => return self.event(py, e),
                Polled::Timeout => py.check_signals()?,
                Polled::Ended => return Err(PyStopIteration::new_err(())),
            }
        }
    }

    /// The next event, waiting at most ``timeout`` seconds (forever with ``None``); ``None``
    /// on timeout. Raises ``StopIteration`` once the subscription has ended.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let Some(t) = timeout else {
            return self.__next__(py).map(Some);
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0));
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.poll(py, left.min(SLICE)) {
                Polled::Event(e) => return self.event(py, e).map(Some),
                Polled::Ended => return Err(PyStopIteration::new_err(())),
                Polled::Timeout if left.is_zero() => return Ok(None),
                Polled::Timeout => py.check_signals()?,
            }
        }
    }

    /// The next event if one is queued now, else ``None``; raises ``StopIteration`` once the
    /// subscription has ended.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let got = py.detach(|| self.sub.lock().as_ref().map(Subscription::try_recv));
        match got {
            Some(Ok(e)) => self.event(py, e).map(Some),
            Some(Err(TryRecvError::Empty)) => Ok(None),
            _ => Err(PyStopIteration::new_err(())),
        }
    }

    /// One wait for ``async for``: ``(ended, event_or_None)``.
    fn _poll(&self, py: Python<'_>, timeout: f64) -> PyResult<(bool, Option<Py<PyAny>>)> {
        match self.poll(py, std::time::Duration::from_secs_f64(timeout.max(0.0))) {
            Polled::Event(e) => Ok((false, Some(self.event(py, e)?))),
            Polled::Timeout => Ok((false, None)),
            Polled::Ended => Ok((true, None)),
        }
    }

    /// Returns the subscription.
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// An awaitable of the next event: waits in the event loop's default executor, in short
    /// slices, so cancelling the task stops it.
    fn __anext__(slf: Py<Self>, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(helpers(py)?.getattr("anext_event")?.call1((slf,))?.unbind())
    }

    /// How many events are queued now.
    fn __len__(&self, py: Python<'_>) -> usize {
        py.detach(|| self.sub.lock().as_ref().map_or(0, Subscription::len))
    }

    /// How many times this subscription has lagged.
    #[getter]
    fn lagged_count(&self, py: Python<'_>) -> u64 {
        py.detach(|| {
            self.sub
                .lock()
                .as_ref()
                .map_or(0, Subscription::lagged_count)
        })
    }

    /// Unsubscribes; iteration ends.
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(self.sub.lock().take()));
    }

    /// Returns the subscription.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Unsubscribes.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }
}

/// A table's rows at one step: a subscription's first event.
#[pyclass(name = "Snapshot", module = "tickertable", frozen)]
pub(crate) struct PySnapshot {
    step: u64,
    rows: std::ops::Range<u64>,
    batches: Vec<arrow_array::RecordBatch>,
    schema: SchemaRef,
    table: pyo3::sync::PyOnceLock<Py<PyAny>>,
}

impl PySnapshot {
    pub(crate) fn new(snapshot: &TableSnapshot) -> Self {
        Self::from_parts(
            snapshot.step().as_u64(),
            snapshot.rows(),
            crate::table::snapshot_batches(snapshot),
            snapshot.schema().clone(),
        )
    }

    pub(crate) fn from_parts(
        step: u64,
        rows: std::ops::Range<u64>,
        batches: Vec<arrow_array::RecordBatch>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            step,
            rows,
            batches,
            schema,
            table: pyo3::sync::PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl PySnapshot {
    /// ``"snapshot"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "snapshot"
    }

    /// The step of the table's last change.
    #[getter]
    fn step(&self) -> u64 {
        self.step
    }

    /// The rows, a ``pyarrow.Table`` (no copy).
    #[getter]
    fn table(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.table
            .get_or_try_init(py, || {
                crate::convert::to_pyarrow_table(py, &self.schema, self.batches.clone())
            })
            .map(|t| t.clone_ref(py))
    }

    /// How many rows the snapshot holds.
    #[getter]
    fn num_rows(&self) -> usize {
        usize::try_from(self.rows.end - self.rows.start).unwrap_or(usize::MAX)
    }

    /// The positions of the rows, a ``range``.
    #[getter]
    fn rows<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyRange>> {
        crate::table::range(py, &self.rows)
    }

    fn __repr__(&self) -> String {
        format!("Snapshot(step={}, rows={:?})", self.step, self.rows)
    }
}

/// The subscriber fell behind: ``missed`` updates were dropped; reset to ``snapshot``.
#[pyclass(name = "Lagged", module = "tickertable", frozen)]
pub(crate) struct PyLagged {
    pub(crate) missed: Option<u64>,
    pub(crate) snapshot: Py<PySnapshot>,
}

#[pymethods]
impl PyLagged {
    /// ``"lagged"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "lagged"
    }

    /// How many updates were dropped (``None`` for a remote subscription, whose server
    /// does not say).
    #[getter]
    fn missed(&self) -> Option<u64> {
        self.missed
    }

    /// The table now: the updates that follow apply to it.
    #[getter]
    fn snapshot(&self, py: Python<'_>) -> Py<PySnapshot> {
        self.snapshot.clone_ref(py)
    }

    /// The snapshot's step.
    #[getter]
    fn step(&self) -> u64 {
        self.snapshot.get().step
    }

    fn __repr__(&self) -> String {
        format!("Lagged(missed={:?}, step={})", self.missed, self.step())
    }
}

/// The table failed; the subscription ends after this event.
#[pyclass(name = "Failed", module = "tickertable", frozen)]
pub(crate) struct PyFailed {
    error: Py<PyAny>,
}

#[pymethods]
impl PyFailed {
    /// ``"failed"``.
    #[getter]
    fn kind(&self) -> &'static str {
        "failed"
    }

    /// The failure, a ``tickertable.TableFailedError``.
    #[getter]
    fn error(&self, py: Python<'_>) -> Py<PyAny> {
        self.error.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Failed({})", self.error.bind(py))
    }
}
