//! `tickertable.connect`: a served engine's tables over Arrow Flight.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_schema::SchemaRef;
use parking_lot::Mutex;
use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tickertable::flight::{Client, CreateTable, RemoteSubscription, RemoteTable};
use tickertable::{TableKind, WriteTarget};

use crate::callback::SLICE;
use crate::convert::{
    batch_of, helpers, key_names, kind_name, kind_of, schema_of, to_pyarrow_table,
};
use crate::errors::{simple, IntoPyResult};
use crate::subscribe::{PyLagged, PySnapshot};
use crate::table::PyUpdate;

/// A connection: the Flight client and the runtime its calls run on.
#[derive(Clone)]
struct Conn {
    client: Client,
    runtime: Arc<tokio::runtime::Runtime>,
    url: String,
    token: Option<String>,
}

impl Conn {
    /// Runs a client call to completion without the GIL.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl AsyncFnOnce(&mut Client) -> tickertable::Result<T> + Send,
    ) -> PyResult<T> {
        let mut client = self.client.clone();
        py.detach(|| self.runtime.block_on(f(&mut client))).py(py)
    }
}

/// Connects to a served engine (``Engine.serve``, ``ticker-serve``): ``grpc://host:port``.
///
/// The client has the same reading and publishing methods as a local engine's tables:
/// ``table(name)`` gives a ``RemoteTable`` with ``snapshot()``, ``subscribe()``, ``add()``,
/// ``upsert()`` and ``delete()``, and ``MultithreadedTableWriter(remote_table, ...)`` writes to
/// it over Flight; on a server that allows it (``Engine.serve(table_management=True)``,
/// ``ticker-serve``) ``create_table`` and ``drop_table`` manage its tables. Calls release the
/// GIL while they wait for the server.
#[pyfunction]
#[pyo3(signature = (url, *, token = None, timeout = None))]
pub(crate) fn connect(
    py: Python<'_>,
    url: &str,
    token: Option<String>,
    timeout: Option<f64>,
) -> PyResult<PyClient> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tickertable-python-client")
        .enable_all()
        .build()
        .map_err(|e| simple(py, "IoError", e.to_string()))?;
    let client = py
        .detach(|| {
            runtime.block_on(async {
                let mut c = Client::connect(url).await?;
                if let Some(t) = &token {
                    c = c.with_token(t)?;
                }
                if let Some(s) = timeout {
                    c = c.with_timeout(std::time::Duration::from_secs_f64(s.max(0.0)));
                }
                Ok::<_, tickertable::Error>(c)
            })
        })
        .py(py)?;
    Ok(PyClient {
        conn: Conn {
            client,
            runtime: Arc::new(runtime),
            url: url.to_owned(),
            token,
        },
    })
}

/// A client of a served engine (``tickertable.connect``).
#[pyclass(name = "Client", module = "tickertable", frozen)]
pub(crate) struct PyClient {
    conn: Conn,
}

#[pymethods]
impl PyClient {
    /// Every table of the server.
    fn tables(&self, py: Python<'_>) -> PyResult<Vec<PyRemoteTable>> {
        let tables = self.conn.call(py, async |c| c.list().await)?;
        Ok(tables
            .into_iter()
            .map(|t| PyRemoteTable::new(self.conn.clone(), t))
            .collect())
    }

    /// The table named ``name``; ``RemoteError`` (kind ``"not_found"``) if there is none.
    fn table(&self, py: Python<'_>, name: &str) -> PyResult<PyRemoteTable> {
        let t = self.conn.call(py, async |c| c.table(name).await)?;
        Ok(PyRemoteTable::new(self.conn.clone(), t))
    }

    /// Creates a table on the server (``DoAction`` ``create_table``) and returns it.
    ///
    /// ``col_defs``, ``kind``, ``capacity`` and ``key`` are as for
    /// ``Engine.table_publisher`` (a blink table by default); ``durable=True`` logs it in the
    /// server's data directory. Creating a table that exists with the same kind and schema
    /// leaves it as it is; one of another kind or schema raises ``RemoteError`` with kind
    /// ``"already_exists"``. The server must allow it (``Engine.serve(table_management=True)``,
    /// ``ticker-serve``); otherwise it raises ``RemoteError``.
    #[pyo3(signature = (name, col_defs, *, kind = None, capacity = None, key = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn create_table(
        &self,
        py: Python<'_>,
        name: &str,
        col_defs: &Bound<'_, PyAny>,
        kind: Option<&str>,
        capacity: Option<usize>,
        key: Option<&Bound<'_, PyAny>>,
        durable: bool,
    ) -> PyResult<PyRemoteTable> {
        let schema = schema_of(col_defs)?;
        let key = key_names(key)?;
        let kind = kind_of(py, kind, capacity, &key, TableKind::Blink)?;
        let mut create = CreateTable::new(name, schema).with_kind(kind);
        if !key.is_empty() {
            create = create.with_key(key);
        }
        if durable {
            create = create.durable();
        }
        let t = self.conn.call(py, async move |c| {
            c.create_table(&create).await?;
            c.table(create.name()).await
        })?;
        Ok(PyRemoteTable::new(self.conn.clone(), t))
    }

    /// Drops the table ``name`` on the server and the tables derived from it (``DoAction``
    /// ``drop_table``); returns their names, ``name`` first. Their live streams end. The
    /// server must allow it, as for ``create_table``.
    fn drop_table(&self, py: Python<'_>, name: &str) -> PyResult<Vec<String>> {
        self.conn.call(py, async |c| c.drop_table(name).await)
    }

    /// The server's URL.
    #[getter]
    fn url(&self) -> &str {
        &self.conn.url
    }

    fn __repr__(&self) -> String {
        format!("Client({:?})", self.conn.url)
    }
}

/// A table of a served engine, as listed when it was looked up.
#[pyclass(name = "RemoteTable", module = "tickertable", frozen)]
pub(crate) struct PyRemoteTable {
    conn: Conn,
    info: RemoteTable,
    pub(crate) name: String,
    pub(crate) schema: SchemaRef,
}

impl PyRemoteTable {
    fn new(conn: Conn, info: RemoteTable) -> Self {
        Self {
            conn,
            name: info.name.clone(),
            schema: info.schema.clone(),
            info,
        }
    }

    /// Where a multithreaded writer sends this table's rows.
    pub(crate) fn write_target(&self) -> WriteTarget {
        WriteTarget::Remote {
            url: self.conn.url.clone(),
            table: self.name.clone(),
            token: self.conn.token.clone(),
        }
    }

    /// The key columns by index.
    pub(crate) fn key_indices(&self) -> Vec<usize> {
        self.info
            .key
            .iter()
            .filter_map(|k| self.schema.index_of(k).ok())
            .collect()
    }

    fn publish(&self, py: Python<'_>, batch: RecordBatch) -> PyResult<u64> {
        let name = self.name.clone();
        self.conn
            .call(py, async move |c| c.publish(&name, vec![batch]).await)
    }
}

#[pymethods]
impl PyRemoteTable {
    /// The table's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The table's schema, a ``pyarrow.Schema``.
    #[getter]
    fn schema(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.schema.as_ref().to_pyarrow(py)?.unbind())
    }

    /// ``"append"``, ``"blink"``, ``"ring"`` or ``"keyed"``.
    #[getter]
    fn kind(&self) -> &'static str {
        kind_name(self.info.kind)
    }

    /// A ring's capacity or an append table's limit, if it has one.
    #[getter]
    fn capacity(&self) -> Option<u64> {
        self.info.capacity
    }

    /// A keyed table's key columns (empty for other kinds).
    #[getter]
    fn key(&self) -> Vec<String> {
        self.info.key.clone()
    }

    /// The row count when the table was looked up.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.info.num_rows
    }

    /// The table's rows now, read from the server, as a ``pyarrow.Table``.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let name = self.name.clone();
        let s = self.conn.call(py, async move |c| c.snapshot(&name).await)?;
        to_pyarrow_table(py, &s.schema, s.batches)
    }

    /// Follows the table: a ``RemoteSubscription`` of ``Snapshot``, ``Update`` and
    /// ``Lagged`` events, as a local subscription gives.
    fn subscribe(&self, py: Python<'_>) -> PyResult<PyRemoteSubscription> {
        let name = self.name.clone();
        let sub = self
            .conn
            .call(py, async move |c| c.subscribe(&name).await)?;
        Ok(PyRemoteSubscription {
            sub: Mutex::new(Some(sub)),
            runtime: self.conn.runtime.clone(),
            schema: self.schema.clone(),
            state: Mutex::new(StreamState::default()),
        })
    }

    /// Publishes ``data`` (what ``TablePublisher.add`` takes) with ``DoPut``: all of it lands
    /// in one cycle, or none if it does not fit. Returns the rows accepted.
    fn add(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let batch = batch_of(data, &self.name, &self.schema, None)?;
        self.publish(py, batch)
    }

    /// Upserts into a keyed table (a batch with only some columns is a partial upsert).
    fn upsert(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<u64> {
        let key = self.info.key.clone();
        let batch = batch_of(data, &self.name, &self.schema, Some(&key))?;
        self.publish(py, batch)
    }

    /// Deletes keys from a keyed table (as ``TablePublisher.delete``). Returns the rows sent.
    fn delete(&self, py: Python<'_>, keys: &Bound<'_, PyAny>) -> PyResult<u64> {
        use arrow_pyarrow::FromPyArrow;
        let idx = self.key_indices();
        let key_schema = arrow_schema::Schema::new(
            idx.iter()
                .map(|&c| self.schema.field(c).clone())
                .collect::<Vec<_>>(),
        );
        let batch = helpers(py)?.getattr("keys_to_batch")?.call1((
            keys,
            &self.name,
            key_schema.to_pyarrow(py)?,
        ))?;
        let batch = RecordBatch::from_pyarrow_bound(&batch)?;
        let name = self.name.clone();
        self.conn
            .call(py, async move |c| c.delete(&name, batch).await)
    }

    fn __repr__(&self) -> String {
        format!(
            "RemoteTable({:?}, kind={}, url={:?})",
            self.name, self.info.kind, self.conn.url
        )
    }
}

/// Where a remote stream is: waiting for the rest of a snapshot or not.
#[derive(Default)]
struct StreamState {
    /// A snapshot being received: the position its mirror ends at when complete.
    resetting: Option<u64>,
    /// Snapshots received so far (the first is a `Snapshot`, later ones `Lagged`).
    resets: u64,
}

/// A live stream of a served table (``RemoteTable.subscribe``): an iterator of events.
///
/// Like a local subscription: a ``Snapshot`` first (once all of it has arrived), then an
/// ``Update`` per message (a large update may come as several with the same step), and a
/// ``Lagged`` with a fresh snapshot if the server had to resynchronise this client.
/// ``snapshot()`` is the locally mirrored table. Waiting releases the GIL; Ctrl-C interrupts.
#[pyclass(name = "RemoteSubscription", module = "tickertable", frozen)]
pub(crate) struct PyRemoteSubscription {
    sub: Mutex<Option<RemoteSubscription>>,
    runtime: Arc<tokio::runtime::Runtime>,
    schema: SchemaRef,
    state: Mutex<StreamState>,
}

enum Next {
    Event(Py<PyAny>),
    Timeout,
    Ended,
}

impl PyRemoteSubscription {
    fn next_event(&self, py: Python<'_>, timeout: std::time::Duration) -> PyResult<Next> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let got = py.detach(|| {
                let mut guard = self.sub.lock();
                let sub = guard.as_mut()?;
                let got = self
                    .runtime
                    .block_on(async { tokio::time::timeout(left, sub.next()).await });
                Some(got.map(|m| m.map(|m| m.map(|m| (m, sub.rows(), sub.step(), sub.batches())))))
            });
            let msg = match got {
                None | Some(Ok(None)) => return Ok(Next::Ended),
                Some(Err(_)) => return Ok(Next::Timeout),
                Some(Ok(Some(Err(e)))) => return Err(crate::errors::to_py(py, &e)),
                Some(Ok(Some(Ok(m)))) => m,
            };
            let (message, mirror_rows, step, batches) = msg;
            let mut st = self.state.lock();
            if message.meta.reset {
                st.resetting = Some(message.meta.rows.as_ref().map_or(0, |r| r.end));
            }
            if let Some(end) = st.resetting {
                if mirror_rows.end < end {
                    continue;
                }
                st.resetting = None;
                st.resets += 1;
                let snap = PySnapshot::from_parts(
                    step.as_u64(),
                    mirror_rows,
                    batches,
                    self.schema.clone(),
                );
                let snap = Py::new(py, snap)?;
                return Ok(Next::Event(if st.resets == 1 {
                    snap.into_any()
                } else {
                    Py::new(
                        py,
                        PyLagged {
                            missed: None,
                            snapshot: snap,
                        },
                    )?
                    .into_any()
                }));
            }
            let update = PyUpdate::remote(&message.meta, message.batch, self.schema.clone());
            return Ok(Next::Event(Py::new(py, update)?.into_any()));
        }
    }
}

#[pymethods]
impl PyRemoteSubscription {
    /// Returns the subscription.
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next event, waiting for it (GIL released, Ctrl-C checked every 50 ms).
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        loop {
            match self.next_event(py, SLICE)? {
                Next::Event(e) => return Ok(e),
                Next::Timeout => py.check_signals()?,
                Next::Ended => return Err(PyStopIteration::new_err(())),
            }
        }
    }

    /// The next event, waiting at most ``timeout`` seconds; ``None`` on timeout.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let Some(t) = timeout else {
            return self.__next__(py).map(Some);
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0));
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.next_event(py, left.min(SLICE))? {
                Next::Event(e) => return Ok(Some(e)),
                Next::Ended => return Err(PyStopIteration::new_err(())),
                Next::Timeout if left.is_zero() => return Ok(None),
                Next::Timeout => py.check_signals()?,
            }
        }
    }

    /// The mirrored table as of the last event, a ``pyarrow.Table``.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let batches = py.detach(|| {
            self.sub
                .lock()
                .as_ref()
                .map(RemoteSubscription::batches)
                .unwrap_or_default()
        });
        to_pyarrow_table(py, &self.schema, batches)
    }

    /// Ends the stream.
    fn close(&self, py: Python<'_>) {
        let sub = py.detach(|| self.sub.lock().take());
        py.detach(move || drop(sub));
    }

    /// Returns the subscription.
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Ends the stream.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }
}
