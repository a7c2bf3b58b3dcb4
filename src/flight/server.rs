//! The Flight service of an engine.

use std::collections::VecDeque;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use arrow_ipc::writer::IpcWriteOptions;
use futures_util::{stream, Stream, StreamExt, TryStreamExt};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::engine::EngineHandle;
use crate::error::ErrorCode;
use crate::error::{Error, Result};
use crate::flight::status::{status, to_status};
use crate::flight::ticket::{FlightTicket, TicketKind};
use crate::flight::wire::Encoder;
use crate::graph::stage;
use crate::step::Step;
use crate::subscribe::{Event, Subscription, SubscriptionOptions};
use crate::table::Table;

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send + 'static>>;

/// Options of [`EngineHandle::serve_flight_with`].
#[derive(Clone, PartialEq, Eq)]
pub struct FlightOptions {
    token: Option<String>,
    max_streams: usize,
    worker_threads: usize,
    subscription: SubscriptionOptions,
}

impl Default for FlightOptions {
    fn default() -> Self {
        Self {
            token: None,
            max_streams: 64,
            worker_threads: 2,
            subscription: SubscriptionOptions::default().with_capacity(256),
        }
    }
}

impl FlightOptions {
    /// Require every call to carry the header `authorization: Bearer <token>`; calls without
    /// it are refused with `UNAUTHENTICATED`.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The most `DoGet` streams open at once (default 64); more are refused with
    /// `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.max_streams = n.max(1);
        self
    }

    /// The server's tokio worker threads (default 2).
    #[must_use]
    pub fn with_worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n.max(1);
        self
    }

    /// The queue bounds of each live stream's subscription: a client slower than this is
    /// resynchronised with a fresh snapshot (default: 256 updates).
    #[must_use]
    pub fn with_subscription(mut self, options: SubscriptionOptions) -> Self {
        self.subscription = options;
        self
    }
}

impl fmt::Debug for FlightOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightOptions")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("max_streams", &self.max_streams)
            .field("worker_threads", &self.worker_threads)
            .field("subscription", &self.subscription)
            .finish()
    }
}

/// A running Flight server. Dropping it stops the server and joins its thread.
///
/// Stopping ends every open stream (live clients see their stream end), waits up to
/// [`STOP_GRACE`] for calls in flight, then drops what is left.
pub struct FlightServer {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

/// How long a stopping server waits for calls in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

impl FlightServer {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `grpc://host:port` URL clients connect to.
    pub fn url(&self) -> String {
        format!("grpc://{}", self.addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FlightServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl fmt::Debug for FlightServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EngineHandle {
    /// Serves this engine's tables over Arrow Flight at `addr` with default options.
    ///
    /// # Errors
    ///
    /// As [`serve_flight_with`](Self::serve_flight_with).
    pub fn serve_flight(&self, addr: impl ToSocketAddrs) -> Result<FlightServer> {
        self.serve_flight_with(addr, FlightOptions::default())
    }

    /// Serves this engine's tables over Arrow Flight at `addr` (port 0 picks a free port; see
    /// [`FlightServer::local_addr`]). The server runs on its own tokio runtime and thread and
    /// never takes the engine's lock on a hot path: it reads snapshots and subscriptions.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the address cannot be bound or the runtime cannot start.
    pub fn serve_flight_with(
        &self,
        addr: impl ToSocketAddrs,
        options: FlightOptions,
    ) -> Result<FlightServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads)
            .thread_name("tickertable-flight")
            .enable_all()
            .build()?;
        let service = Service {
            engine: self.clone(),
            streams: Arc::new(Semaphore::new(options.max_streams)),
            max_streams: options.max_streams,
            subscription: options.subscription,
            stopped: stopped.clone(),
        };
        let token = options.token.map(|t| format!("Bearer {t}"));
        let thread = std::thread::Builder::new()
            .name("tickertable-flight".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(error) => {
                            tracing::error!(%error, "flight: cannot listen");
                            return;
                        }
                    };
                    // No Nagle: a small `DoPut` or update must not wait for the peer's delayed ACK.
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(
                        |conn| {
                            conn.and_then(|c| {
                                c.set_nodelay(true)?;
                                Ok(c)
                            })
                        },
                    );
                    let server = FlightServiceServer::new(service)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES);
                    let auth = move |req: Request<()>| check_token(token.as_deref(), req);
                    let mut stop_signal = stopped.clone();
                    let serve = tonic::transport::Server::builder()
                        .add_service(tonic::service::interceptor::InterceptedService::new(
                            server, auth,
                        ))
                        .serve_with_incoming_shutdown(incoming, async move {
                            let _ = stop_signal.wait_for(|s| *s).await;
                        });
                    let mut grace = stopped;
                    tokio::select! {
                        result = serve => {
                            if let Err(error) = result {
                                tracing::error!(%error, "flight: server stopped");
                            }
                        }
                        () = async move {
                            let _ = grace.wait_for(|s| *s).await;
                            tokio::time::sleep(STOP_GRACE).await;
                        } => tracing::warn!("flight: calls open after the grace period were dropped"),
                    }
                });
            })?;
        Ok(FlightServer {
            addr: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The largest message either side accepts.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[allow(clippy::result_large_err)] // tonic's interceptor signature
fn check_token(
    expected: Option<&str>,
    req: Request<()>,
) -> std::result::Result<Request<()>, Status> {
    let Some(expected) = expected else {
        return Ok(req);
    };
    match req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    {
        Some(given) if given == expected => Ok(req),
        Some(_) => Err(Status::unauthenticated("invalid token")),
        None => Err(Status::unauthenticated(
            "missing authorization header (Bearer token)",
        )),
    }
}

struct Service {
    engine: EngineHandle,
    streams: Arc<Semaphore>,
    max_streams: usize,
    subscription: SubscriptionOptions,
    /// Turns true when the server stops; open streams end on it.
    stopped: watch::Receiver<bool>,
}

impl Service {
    fn table(&self, name: &str) -> std::result::Result<Table, Status> {
        self.engine.table(name).ok_or_else(|| {
            to_status(&Error::NoSuchTable {
                table: name.to_owned(),
            })
        })
    }

    fn table_of(&self, d: &FlightDescriptor) -> std::result::Result<Table, Status> {
        match d.path.as_slice() {
            [name] => self.table(name),
            _ => Err(Status::invalid_argument(
                "the descriptor must be a path of one element: the table's name",
            )),
        }
    }
}

/// A table's `FlightInfo`: schema, descriptor, snapshot then live endpoint, row count, and
/// app metadata `{"kind", "capacity", "step", "rows": [start, end]}`.
fn flight_info(table: &Table) -> std::result::Result<FlightInfo, Status> {
    let snap = table.snapshot();
    let rows = snap.rows();
    let meta = serde_json::json!({
        "kind": kind_name(table),
        "capacity": table.capacity(),
        "key": table
            .key_columns()
            .iter()
            .map(|&c| table.schema().field(c).name().clone())
            .collect::<Vec<_>>(),
        "step": snap.step().as_u64(),
        "rows": [rows.start, rows.end],
    });
    let info = FlightInfo::new()
        .try_with_schema(table.schema())
        .map_err(|e| Status::internal(e.to_string()))?
        .with_descriptor(FlightDescriptor::new_path(vec![table.name().to_owned()]))
        .with_endpoint(
            FlightEndpoint::new()
                .with_ticket(Ticket::new(FlightTicket::snapshot(table.name()).to_bytes())),
        )
        .with_endpoint(
            FlightEndpoint::new()
                .with_ticket(Ticket::new(FlightTicket::live(table.name()).to_bytes())),
        )
        .with_total_records(i64::try_from(snap.num_rows()).unwrap_or(i64::MAX))
        .with_total_bytes(-1)
        .with_ordered(true)
        .with_app_metadata(meta.to_string());
    Ok(info)
}

pub(crate) fn kind_name(table: &Table) -> &'static str {
    match table.kind() {
        crate::TableKind::Append => "append",
        crate::TableKind::Blink => "blink",
        crate::TableKind::Ring { .. } => "ring",
        crate::TableKind::Keyed { .. } => "keyed",
    }
}

/// One reset or update still to encode, a chunk at a time.
struct Work {
    step: Step,
    /// The whole snapshot's positions, when this work is a snapshot (a reset).
    reset: Option<std::ops::Range<u64>>,
    removed: std::ops::Range<u64>,
    pos: u64,
    batches: VecDeque<RecordBatch>,
    /// A keyed table's modified rows, sent before the added ones.
    modified: Option<(Vec<u64>, Vec<Vec<u8>>, RecordBatch)>,
    first: bool,
}

impl Work {
    fn snapshot(s: &crate::TableSnapshot) -> Self {
        Self {
            step: s.step(),
            reset: Some(s.rows()),
            removed: s.rows().start..s.rows().start,
            pos: s.rows().start,
            batches: s.batches().cloned().collect(),
            modified: None,
            first: true,
        }
    }

    fn update(u: &crate::TableUpdate) -> Self {
        Self {
            step: u.step(),
            reset: None,
            removed: u.removed(),
            pos: u.added().start,
            batches: u.batches().iter().cloned().collect(),
            modified: u.modified_batch().map(|b| {
                let m = &u.modified;
                let masks = if m.masks.is_empty() {
                    Vec::new()
                } else {
                    m.masks.chunks(m.width).map(<[u8]>::to_vec).collect()
                };
                (m.positions.clone(), masks, b.clone())
            }),
            first: true,
        }
    }

    /// Encodes the next chunk; `false` once done.
    fn encode_next(&mut self, enc: &mut Encoder, out: &mut Vec<FlightData>) -> Result<bool> {
        if let Some((positions, masks, batch)) = self.modified.take() {
            let removed = self.removed.clone();
            enc.modified_messages(
                self.step, removed, self.pos, &positions, &masks, &batch, out,
            )?;
            self.first = false;
            return Ok(true);
        }
        if !self.first && self.batches.is_empty() {
            return Ok(false);
        }
        let batch = self.batches.pop_front();
        let removed = if self.first {
            self.removed.clone()
        } else {
            self.removed.end..self.removed.end
        };
        let reset = if self.first {
            self.reset.as_ref()
        } else {
            None
        };
        let batches: &[RecordBatch] = batch.as_slice();
        enc.messages(self.step, reset, removed, self.pos, batches, out)?;
        self.pos += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        self.first = false;
        Ok(true)
    }
}

/// The state of one `DoGet` stream.
struct GetStream {
    enc: Encoder,
    pending: VecDeque<FlightData>,
    work: Option<Work>,
    sub: Option<Subscription>,
    stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl GetStream {
    async fn next(&mut self) -> Option<std::result::Result<FlightData, Status>> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(Ok(m));
            }
            if let Some(work) = &mut self.work {
                let mut out = Vec::new();
                match work.encode_next(&mut self.enc, &mut out) {
                    Ok(true) => {
                        self.pending.extend(out);
                        continue;
                    }
                    Ok(false) => self.work = None,
                    Err(e) => return Some(Err(Status::internal(e.to_string()))),
                }
            }
            let sub = self.sub.as_mut()?;
            let event = tokio::select! {
                e = StreamExt::next(sub) => e,
                _ = self.stopped.wait_for(|s| *s) => None,
            };
            match event {
                Some(Event::Snapshot(s) | Event::Lagged { snapshot: s, .. }) => {
                    self.work = Some(Work::snapshot(&s));
                }
                Some(Event::Update(u)) => self.work = Some(Work::update(&u)),
                Some(Event::Failed(e)) => {
                    self.sub = None;
                    return Some(Err(Status::aborted(e.to_string())));
                }
                None => {
                    self.sub = None;
                    return None;
                }
            }
        }
    }
}

#[tonic::async_trait]
impl FlightService for Service {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<Response<Self::HandshakeStream>, Status> {
        // Authentication is by header on every call; a handshake has nothing to exchange.
        Ok(Response::new(Box::pin(stream::empty())))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> std::result::Result<Response<Self::ListFlightsStream>, Status> {
        let infos: Vec<_> = self.engine.tables().iter().map(flight_info).collect();
        Ok(Response::new(Box::pin(stream::iter(infos))))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let table = self.table_of(request.get_ref())?;
        Ok(Response::new(flight_info(&table)?))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "poll_flight_info: use get_flight_info",
        ))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<SchemaResult>, Status> {
        let table = self.table_of(request.get_ref())?;
        let options = IpcWriteOptions::default();
        let result = SchemaResult::try_from(SchemaAsIpc::new(table.schema(), &options))
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<Self::DoGetStream>, Status> {
        let ticket = FlightTicket::parse(&request.get_ref().ticket).ok_or_else(|| {
            Status::invalid_argument(
                "not a tickertable ticket (expected tickertable:snapshot:<table> or \
                 tickertable:live:<table>)",
            )
        })?;
        let table = self.table(&ticket.table)?;
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| {
            status(
                tonic::Code::ResourceExhausted,
                ErrorCode::ResourceExhausted,
                format!(
                    "too many open streams (the server's limit is {})",
                    self.max_streams
                ),
            )
        })?;
        let mut enc = Encoder::new(table.schema().clone());
        let mut pending = VecDeque::new();
        pending.push_back(enc.schema_message());
        let (work, sub) = match ticket.kind {
            TicketKind::Snapshot => (Some(Work::snapshot(&table.snapshot())), None),
            TicketKind::Live => {
                let sub = table
                    .subscribe_with(self.subscription)
                    .map_err(|e| to_status(&e))?;
                (None, Some(sub))
            }
        };
        let stopped = self.stopped.clone();
        let state = GetStream {
            enc,
            pending,
            work,
            sub,
            stopped,
            _permit: permit,
        };
        let out = stream::unfold(state, |mut s| async move { s.next().await.map(|m| (m, s)) });
        Ok(Response::new(Box::pin(out)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoPutStream>, Status> {
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty DoPut stream"))?;
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first DoPut message needs a descriptor")
        })?;
        let table = self.table_of(&descriptor)?;
        let rest = input.map_err(FlightError::from);
        let messages = stream::once(async { Ok(first) }).chain(rest);
        let mut decoded = FlightRecordBatchStream::new_from_flight_data(messages);
        let mut batches = Vec::new();
        while let Some(batch) = decoded.next().await {
            batches
                .push(batch.map_err(|e| Status::invalid_argument(format!("bad DoPut data: {e}")))?);
        }
        let core = table.core().map_err(|e| to_status(&e))?;
        let rows = stage::batches(&core, &table.shared, &batches, false)
            .map_err(|e| to_status(&e.into_error(&core, &table.shared)))?;
        let result = PutResult {
            app_metadata: serde_json::json!({ "rows": rows }).to_string().into(),
        };
        Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }

    async fn do_action(
        &self,
        _request: Request<Action>,
    ) -> std::result::Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented("do_action: no actions"))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> std::result::Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(stream::empty())))
    }
}
