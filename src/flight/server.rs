//! The Flight service of an engine.

use std::collections::VecDeque;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
use tokio::sync::{watch, Semaphore};
use tonic::{Request, Response, Status, Streaming};

use crate::engine::EngineHandle;
use crate::error::ErrorCode;
use crate::error::{Error, Result};
use crate::flight::actions::{self, CreateTable};
use crate::flight::auth::Auth;
use crate::flight::limits::{Budget, Refusal, StreamKind, StreamLimits, StreamPermit};
use crate::flight::server_stats::{Counters, FlightStats, FlightStatsHandle};
use crate::flight::status::{status, to_status};
use crate::flight::ticket::{FlightTicket, TicketKind};
use crate::flight::tls::ServerTls;
use crate::flight::wire::Encoder;
use crate::graph::stage;
use crate::step::Step;
use crate::subscribe::queue::Queue;
use crate::subscribe::{Event, Subscription, SubscriptionOptions};
use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crate::table::Table;

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send + 'static>>;

/// Options of [`EngineHandle::serve_flight_with`].
///
/// # Limits
///
/// Every client and every call is bounded, so no request, idle subscriber or slow reader
/// makes the server grow without limit:
///
/// - live streams: at most [`with_max_streams`](Self::with_max_streams) in all and
///   [`with_max_streams_per_peer`](Self::with_max_streams_per_peer) per connection; snapshot
///   streams have their own budget ([`with_max_snapshots`](Self::with_max_snapshots)), so a
///   client holding live streams never makes another's snapshot fail;
/// - a live stream whose client stopped reading (updates waiting, none taken for
///   [`with_stall_timeout`](Self::with_stall_timeout)) is ended with `UNAVAILABLE` and a
///   reason, and its queue and place are freed at once; a slower client short of that is
///   resynchronised with a fresh snapshot (its queue is bounded by
///   [`with_subscription`](Self::with_subscription));
/// - a `DoPut` holds at most [`with_max_put_bytes`](Self::with_max_put_bytes) of Arrow IPC
///   data (and no more rows than the table's staging limit) until it is staged whole, and
///   at most [`with_max_puts`](Self::with_max_puts) run at once; past either it is refused
///   with `RESOURCE_EXHAUSTED`, nothing applied;
/// - one message is at most [`with_max_message_bytes`](Self::with_max_message_bytes);
/// - one connection has at most 16 MiB in flight to the server (8 MiB per call), its
///   HTTP/2 receive windows.
///
/// # Transport
///
/// HTTP/2's default flow-control windows (64 KiB, or hyper's 1-2 MiB) and frames (16 KiB)
/// cap a loopback stream well below what Arrow IPC encodes: the sender stops every window
/// for the receiver's update. The server receives with 8 MiB per call and 16 MiB per
/// connection; [`Client`](crate::flight::Client) receives with 16 MiB per stream and 32 MiB
/// per connection; both take frames up to 1 MiB. A live stream's messages are about one
/// published batch each (a 10,000-row batch of the benchmark schema is 310 KB), split at
/// 2 MiB. Compression is off by default: on loopback and fast networks it costs more CPU
/// than the bytes it saves; a client asks for LZ4 or ZSTD with
/// [`COMPRESSION_HEADER`](crate::flight::COMPRESSION_HEADER).
#[derive(Clone)]
pub struct FlightOptions {
    token: Option<String>,
    live: Budget,
    snapshots: Budget,
    stall_timeout: Duration,
    max_message_bytes: usize,
    max_put_bytes: usize,
    max_puts: usize,
    worker_threads: usize,
    subscription: SubscriptionOptions,
    tls: Option<ServerTls>,
    manage_tables: bool,
}

impl Default for FlightOptions {
    fn default() -> Self {
        Self {
            token: None,
            live: Budget {
                total: 256,
                per_peer: 32,
            },
            snapshots: Budget {
                total: 64,
                per_peer: 8,
            },
            stall_timeout: Duration::from_secs(60),
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_put_bytes: 256 << 20,
            max_puts: 8,
            worker_threads: 2,
            subscription: SubscriptionOptions::default().with_capacity(256),
            tls: None,
            manage_tables: false,
        }
    }
}

impl FlightOptions {
    /// Require every call to carry the token: the header `authorization: Bearer <token>`, or
    /// pyarrow's `authenticate_basic_token(user, token)` handshake (see
    /// [`flight`](crate::flight#authentication)). Calls without it are refused with
    /// `UNAUTHENTICATED`. The token is compared in constant time.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The token from a file (its first line, trimmed), so it need not be on a command line
    /// where `ps` shows it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read, [`Error::InvalidOption`] if it is empty.
    pub fn with_token_file(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(Error::InvalidOption {
                option: "token file",
                reason: "the file holds no token".into(),
            });
        }
        Ok(self.with_token(token))
    }

    /// The most live `DoGet` streams open at once (default 256); more are refused with
    /// `RESOURCE_EXHAUSTED`.
    #[must_use]
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.live.total = n.max(1);
        self
    }

    /// The most live streams one connection holds at once (default 32).
    #[must_use]
    pub fn with_max_streams_per_peer(mut self, n: usize) -> Self {
        self.live.per_peer = n.max(1);
        self
    }

    /// The most snapshot `DoGet` streams open at once (default 64), and per connection
    /// (default 8).
    #[must_use]
    pub fn with_max_snapshots(mut self, total: usize, per_peer: usize) -> Self {
        self.snapshots = Budget {
            total: total.max(1),
            per_peer: per_peer.max(1),
        };
        self
    }

    /// How long a live stream's client may leave updates unread before the server ends the
    /// stream (default 60 s).
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// The largest message the server sends or accepts (default 64 MiB). A larger batch in a
    /// `DoPut` is refused with `RESOURCE_EXHAUSTED`: split it.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1 << 10);
        self
    }

    /// The most bytes of Arrow IPC data (message headers and bodies, as sent) one `DoPut`
    /// holds before it is staged (default 256 MiB). The decoded batches share those buffers,
    /// so this is what the call holds in memory.
    #[must_use]
    pub fn with_max_put_bytes(mut self, bytes: usize) -> Self {
        self.max_put_bytes = bytes.max(1);
        self
    }

    /// The most `DoPut` calls in progress at once (default 8).
    #[must_use]
    pub fn with_max_puts(mut self, n: usize) -> Self {
        self.max_puts = n.max(1);
        self
    }

    /// Serve TLS (see [`ServerTls`]); clients then connect to `grpc+tls://`.
    #[must_use]
    pub fn with_tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Let clients create and drop tables with the `create_table` and `drop_table` actions
    /// (see [table management](crate::flight#table-management)); off by default, when
    /// `ListActions` offers `stats` only and those two are refused with `PERMISSION_DENIED`.
    #[must_use]
    pub fn with_table_management(mut self, on: bool) -> Self {
        self.manage_tables = on;
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
            .field("live", &self.live)
            .field("snapshots", &self.snapshots)
            .field("stall_timeout", &self.stall_timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_put_bytes", &self.max_put_bytes)
            .field("max_puts", &self.max_puts)
            .field("worker_threads", &self.worker_threads)
            .field("subscription", &self.subscription)
            .field("tls", &self.tls)
            .field("manage_tables", &self.manage_tables)
            .finish()
    }
}

/// A running Flight server. Dropping it stops the server and joins its thread.
///
/// Stopping ends every open stream (live clients see their stream end with `UNAVAILABLE` and
/// code `server_stopping`, [`Error::ServerStopping`]), waits up to [`STOP_GRACE`] for calls
/// in flight, then drops what is left.
///
/// # Draining
///
/// A clean stop that loses no acknowledged row and tells live clients why (what
/// `ticker-serve` does on SIGTERM):
///
/// 1. [`drain`](Self::drain): the server stops accepting connections, refuses new calls with
///    `UNAVAILABLE` and code `server_stopping`, and waits for the `DoPut`s in progress to
///    stage their batches;
/// 2. shut the engine down ([`Engine::shutdown`](crate::Engine::shutdown)): its last cycle
///    applies everything staged and delivers it;
/// 3. [`shutdown`](Self::shutdown): each live stream sends what it has not sent yet, that
///    last cycle's updates included, then ends with `server_stopping`.
pub struct FlightServer {
    addr: SocketAddr,
    tls: bool,
    stop: Option<watch::Sender<bool>>,
    accept: watch::Sender<bool>,
    draining: Arc<AtomicBool>,
    puts: Arc<Semaphore>,
    max_puts: usize,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

/// How long a stopping server waits for calls in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

impl FlightServer {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients connect to: `grpc://host:port`, or `grpc+tls://host:port` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "grpc+tls" } else { "grpc" };
        format!("{scheme}://{}", self.addr)
    }

    /// Step 1 of [draining](Self#draining): stops accepting connections and calls (new calls
    /// are refused with [`Error::ServerStopping`]'s status), then waits up to `timeout` for
    /// the `DoPut` calls in progress to stage their batches. Returns whether they all did.
    /// Live streams go on until their tables close or [`shutdown`](Self::shutdown).
    pub fn drain(&self, timeout: Duration) -> bool {
        // SeqCst: a DoPut takes its permit, then reads the flag; this sets the flag, then
        // counts permits. Either the DoPut sees the flag, or this sees its permit taken.
        self.draining.store(true, Ordering::SeqCst);
        let _ = self.accept.send(true);
        let deadline = Instant::now() + timeout;
        // Polled, not awaited: this runs on the caller's thread, outside the server's runtime.
        while self.puts.available_permits() < self.max_puts {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The server's counters: puts, rows put, refusals by reason, resynchronised streams.
    pub fn stats(&self) -> FlightStats {
        self.counters.snapshot()
    }

    /// A handle to the server's counters, usable from another thread and after the server
    /// stopped.
    pub fn stats_handle(&self) -> FlightStatsHandle {
        FlightStatsHandle(self.counters.clone())
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
    // One sequence of setup steps; splitting it would only pass its locals around.
    #[allow(clippy::too_many_lines)]
    pub fn serve_flight_with(
        &self,
        addr: impl ToSocketAddrs,
        options: FlightOptions,
    ) -> Result<FlightServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (accept, accept_stop) = watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let puts = Arc::new(Semaphore::new(options.max_puts));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads)
            .thread_name("tickertable-flight")
            .enable_all()
            .build()?;
        #[cfg(not(feature = "tls"))]
        if options.tls.is_some() {
            return Err(crate::flight::tls::unsupported());
        }
        let auth = Auth::new(options.token);
        let service = Service {
            engine: self.clone(),
            streams: Arc::new(StreamLimits::new(options.live, options.snapshots)),
            puts: puts.clone(),
            max_puts: options.max_puts,
            manage_tables: options.manage_tables,
            counters: counters.clone(),
            draining: draining.clone(),
            max_put_bytes: options.max_put_bytes,
            max_message_bytes: options.max_message_bytes,
            stall_timeout: options.stall_timeout,
            subscription: options.subscription,
            auth: auth.clone(),
            stopped: stopped.clone(),
        };
        let max_message = options.max_message_bytes;
        let tls = options.tls;
        let is_tls = tls.is_some();
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
                        .max_decoding_message_size(max_message)
                        .max_encoding_message_size(max_message);
                    let check = move |req: Request<()>| auth.check(req.metadata()).map(|()| req);
                    let mut stop_signal = stopped.clone();
                    let mut accept_stop = accept_stop;
                    let builder = tonic::transport::Server::builder()
                        .initial_stream_window_size(SERVER_STREAM_WINDOW)
                        .initial_connection_window_size(SERVER_CONNECTION_WINDOW)
                        .max_frame_size(FRAME_SIZE);
                    #[cfg(feature = "tls")]
                    let builder = match &tls {
                        Some(tls) => match builder.tls_config(tls.config()) {
                            Ok(b) => b,
                            Err(error) => {
                                tracing::error!(%error, "flight: bad TLS settings");
                                return;
                            }
                        },
                        None => builder,
                    };
                    #[cfg(not(feature = "tls"))]
                    let _ = &tls;
                    let serve = builder
                        .layer(tower::util::MapResponseLayer::new(undecodable_is_invalid))
                        .add_service(tonic::service::interceptor::InterceptedService::new(
                            server, check,
                        ))
                        .serve_with_incoming_shutdown(incoming, async move {
                            tokio::select! {
                                _ = stop_signal.wait_for(|s| *s) => {}
                                _ = accept_stop.wait_for(|s| *s) => {}
                            }
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
            tls: is_tls,
            stop: Some(stop),
            accept,
            draining,
            puts,
            max_puts: options.max_puts,
            counters,
            thread: Some(thread),
        })
    }
}

/// The HTTP/2 receive window of one `DoPut` stream, and of one connection: what a client
/// may have in flight to the server before it waits for the server to read. hyper's default
/// (1 MiB) makes a `DoPut` wait for a window update every few messages; this is what one
/// connection can make the server hold unread, on top of the `DoPut` limits.
const SERVER_STREAM_WINDOW: u32 = 8 << 20;
const SERVER_CONNECTION_WINDOW: u32 = 16 << 20;
/// The largest HTTP/2 frame either side accepts (the protocol's default is 16 KiB): a 2 MiB
/// message goes in two frames, not 128.
pub(crate) const FRAME_SIZE: u32 = 1 << 20;

/// The largest message either side accepts.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A request the server cannot decode (say a descriptor path that is not UTF-8) is the
/// client's fault: tonic answers it `INTERNAL`; say `INVALID_ARGUMENT` instead.
fn undecodable_is_invalid<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
    let undecodable = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.contains("failed%20to%20decode") || m.contains("failed to decode"));
    if internal && undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_static(
                "the request is not a valid Flight message: descriptor paths, tickets' and \
                 actions' strings must be UTF-8",
            ),
        );
    }
    response
}

struct Service {
    engine: EngineHandle,
    streams: Arc<StreamLimits>,
    puts: Arc<Semaphore>,
    max_puts: usize,
    max_put_bytes: usize,
    max_message_bytes: usize,
    stall_timeout: Duration,
    subscription: SubscriptionOptions,
    auth: Auth,
    /// Whether clients may create and drop tables.
    manage_tables: bool,
    counters: Arc<Counters>,
    /// Set by [`FlightServer::drain`]: new calls are refused.
    draining: Arc<AtomicBool>,
    /// Turns true when the server stops; open streams end on it.
    stopped: watch::Receiver<bool>,
}

impl Service {
    /// Refuses a call once the server drains.
    fn check_open(&self) -> std::result::Result<(), Status> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(to_status(&Error::ServerStopping));
        }
        Ok(())
    }

    /// The status for a `DoPut` whose data could not be read.
    fn bad_put_data(&self, e: &FlightError) -> Status {
        bad_put_data(self.max_message_bytes, e)
    }

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

/// The status for a `DoPut` whose data could not be read: a message over the size limit is
/// `RESOURCE_EXHAUSTED` with the limit, anything else `INVALID_ARGUMENT`.
fn bad_put_data(max_message_bytes: usize, e: &FlightError) -> Status {
    if let FlightError::Tonic(s) = e {
        if matches!(
            s.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ) {
            return status(
                tonic::Code::ResourceExhausted,
                ErrorCode::BatchTooLarge,
                format!(
                    "a DoPut message is larger than the server's limit of {max_message_bytes} \
                     bytes; split the batch into smaller ones"
                ),
            );
        }
        return Status::new(
            s.code(),
            crate::flight::status::capped(s.message().to_owned()),
        );
    }
    Status::invalid_argument(crate::flight::status::capped(format!(
        "bad DoPut data: {e}"
    )))
}

/// The `DoPut` request header that picks how its batches land: `call` (the default: all of
/// the call's batches staged together when it ends, or none) or `batch` (each batch staged
/// on its own as it arrives and acknowledged with its own `PutResult`; see the
/// [module docs](crate::flight#streaming-puts)).
pub const PUT_MODE_HEADER: &str = "x-tickertable-put";

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
    /// This stream's place in the server's limits, and when it last sent a message; shared
    /// with the stall watchdog of a live stream.
    watch: Arc<StreamWatch>,
    /// To tell a table closed by the engine's shutdown from one closed by its publisher.
    engine: EngineHandle,
    counters: Arc<Counters>,
    /// Counts a live stream as open while it lives.
    _live: Option<LiveGuard>,
}

/// One open live stream in the server's counters.
struct LiveGuard(Arc<Counters>);

impl LiveGuard {
    fn new(counters: &Arc<Counters>) -> Self {
        counters.live_opened();
        Self(counters.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live_closed();
    }
}

/// What a live stream's stall watchdog shares with the stream.
struct StreamWatch {
    permit: crate::sync::Mutex<Option<StreamPermit>>,
    /// Milliseconds since `epoch` when the stream last handed a message to the transport.
    /// Relaxed: a heuristic clock, nothing is published with it.
    last_sent: AtomicU64,
    epoch: Instant,
    /// Set once the watchdog ended the stream.
    stalled: AtomicBool,
}

impl StreamWatch {
    fn new(permit: StreamPermit) -> Self {
        Self {
            permit: crate::sync::Mutex::new(Some(permit)),
            last_sent: AtomicU64::new(0),
            epoch: Instant::now(),
            stalled: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn sent(&self) {
        self.last_sent.store(self.now_ms(), Ordering::Relaxed);
    }
}

/// Ends a live stream whose client stopped reading: updates wait in its queue and none was
/// sent for `timeout`. Frees the queue (the subscription is abandoned) and the stream's place
/// at once; the stream says why when it is next polled.
async fn stall_watchdog(watch: std::sync::Weak<StreamWatch>, queue: Arc<Queue>, timeout: Duration) {
    let tick = (timeout / 4).max(Duration::from_millis(5));
    let limit = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::time::sleep(tick).await;
        let Some(w) = watch.upgrade() else { return };
        let idle = w
            .now_ms()
            .saturating_sub(w.last_sent.load(Ordering::Relaxed));
        if queue.len() > 0 && idle >= limit {
            // Release: the stream that sees `stalled` also sees the queue abandoned.
            w.stalled.store(true, Ordering::Release);
            queue.abandon();
            w.permit.lock().take();
            tracing::info!(
                idle_ms = idle,
                "flight: ended a live stream whose client stopped reading"
            );
            return;
        }
        if queue.is_ended() {
            return;
        }
    }
}

impl GetStream {
    async fn next(&mut self) -> Option<std::result::Result<FlightData, Status>> {
        loop {
            if self.watch.stalled.load(Ordering::Acquire) {
                self.sub = None;
                self.work = None;
                self.pending.clear();
                return Some(Err(status(
                    tonic::Code::Unavailable,
                    ErrorCode::Unavailable,
                    "the live stream was ended: its client stopped reading; subscribe again",
                )));
            }
            if let Some(m) = self.pending.pop_front() {
                self.watch.sent();
                self.counters.sent(m.data_header.len() + m.data_body.len());
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
            // Biased: what the queue holds (a shutting-down engine's last cycle) is sent
            // before the stream ends for the server's stop.
            let event = tokio::select! {
                biased;
                e = StreamExt::next(sub) => Some(e),
                _ = self.stopped.wait_for(|s| *s) => None,
            };
            match event {
                Some(Some(Event::Snapshot(s))) => self.work = Some(Work::snapshot(&s)),
                Some(Some(Event::Lagged { snapshot: s, .. })) => {
                    self.counters.lagged();
                    self.work = Some(Work::snapshot(&s));
                }
                Some(Some(Event::Update(u))) => self.work = Some(Work::update(&u)),
                Some(Some(Event::Failed(e))) => {
                    self.sub = None;
                    // A failed or dropped table: its code says which (`table_closed`,
                    // `table_dropped`), with the publisher's reason in the message.
                    return Some(Err(to_status(&e)));
                }
                // A queue the stall watchdog abandoned ends too: say why at the loop's top.
                Some(None) if self.watch.stalled.load(Ordering::Acquire) => {}
                // Closed cleanly by the engine's shutdown, or the server stops: not a
                // failure, and the client can tell (`server_stopping`).
                Some(None) if self.engine.is_shut_down() => {
                    self.sub = None;
                    return Some(Err(to_status(&Error::ServerStopping)));
                }
                None => {
                    self.sub = None;
                    return Some(Err(to_status(&Error::ServerStopping)));
                }
                Some(None) => {
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
        // The call got past the token check (a bearer header, or basic credentials with the
        // token as password): answer with the bearer header for later calls, as pyarrow's
        // `authenticate_basic_token` expects.
        let mut response: Response<Self::HandshakeStream> =
            Response::new(Box::pin(stream::empty()));
        if let Some(bearer) = self.auth.bearer() {
            response.metadata_mut().insert("authorization", bearer);
        }
        Ok(response)
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
        self.check_open()?;
        let ticket = FlightTicket::parse(&request.get_ref().ticket).ok_or_else(|| {
            Status::invalid_argument(
                "not a tickertable ticket (expected tickertable:snapshot:<table> or \
                 tickertable:live:<table>)",
            )
        })?;
        let table = self.table(&ticket.table)?;
        let kind = match ticket.kind {
            TicketKind::Snapshot => StreamKind::Snapshot,
            TicketKind::Live => StreamKind::Live,
        };
        let what = match kind {
            StreamKind::Live => "live streams",
            StreamKind::Snapshot => "snapshot streams",
        };
        let permit = self
            .streams
            .acquire(request.remote_addr(), kind)
            .map_err(|refusal| {
                let why = match refusal {
                    Refusal::Total(n) => {
                        format!("too many open {what} (the server's limit is {n})")
                    }
                    Refusal::Peer(n) => format!(
                        "this connection has {n} open {what}, its share; close one or retry later"
                    ),
                };
                status(
                    tonic::Code::ResourceExhausted,
                    ErrorCode::ResourceExhausted,
                    why,
                )
            })?;
        let compression = match request.metadata().get(crate::flight::COMPRESSION_HEADER) {
            None => crate::flight::Compression::None,
            Some(v) => v
                .to_str()
                .map_err(|_| Status::invalid_argument("the compression header is not text"))
                .and_then(|v| crate::flight::Compression::parse(v).map_err(|e| to_status(&e)))?,
        };
        let mut enc =
            Encoder::compressed(table.schema().clone(), compression).map_err(|e| to_status(&e))?;
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
        let watch = Arc::new(StreamWatch::new(permit));
        if let Some(sub) = &sub {
            tokio::spawn(stall_watchdog(
                Arc::downgrade(&watch),
                sub.queue(),
                self.stall_timeout,
            ));
        }
        let live = sub.as_ref().map(|_| LiveGuard::new(&self.counters));
        let state = GetStream {
            enc,
            pending,
            work,
            sub,
            stopped,
            watch,
            engine: self.engine.clone(),
            counters: self.counters.clone(),
            _live: live,
        };
        let out = stream::unfold(state, |mut s| async move { s.next().await.map(|m| (m, s)) });
        Ok(Response::new(Box::pin(out)))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoPutStream>, Status> {
        let batch_mode = match request.metadata().get(PUT_MODE_HEADER) {
            None => false,
            Some(v) if v == "batch" => true,
            Some(v) if v == "call" => false,
            Some(v) => {
                return Err(Status::invalid_argument(crate::flight::status::capped(
                    format!("{PUT_MODE_HEADER}: {v:?} is not a put mode (\"call\" or \"batch\")"),
                )))
            }
        };
        let opened = self.open_put(request).await;
        let result = match opened {
            Ok(open) if batch_mode => {
                let acks = put_batches(open, self.counters.clone(), self.max_message_bytes);
                return Ok(Response::new(Box::pin(acks)));
            }
            Ok(open) => self.put(open).await,
            Err(s) => Err(s),
        };
        match result {
            Ok(rows) => {
                self.counters.put(rows);
                let result = PutResult {
                    app_metadata: serde_json::json!({ "rows": rows }).to_string().into(),
                };
                Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
            }
            Err(status) => {
                self.counters
                    .refused(crate::flight::status::from_status(&status).code());
                Err(status)
            }
        }
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> std::result::Result<Response<Self::DoActionStream>, Status> {
        self.check_open()?;
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            actions::STATS => actions::stats_json(&self.engine, &self.counters).to_string(),
            actions::CREATE_TABLE | actions::DROP_TABLE if !self.manage_tables => {
                return Err(status(
                    tonic::Code::PermissionDenied,
                    ErrorCode::InvalidOption,
                    format!(
                        "{}: this server does not let clients manage tables",
                        action.r#type
                    ),
                ))
            }
            actions::CREATE_TABLE => {
                let text = std::str::from_utf8(&action.body)
                    .map_err(|_| Status::invalid_argument("create_table: the body is not UTF-8"))?;
                let create = CreateTable::from_json(text).map_err(|e| to_status(&e))?;
                let created = create.apply(&self.engine).map_err(|e| to_status(&e))?;
                if created {
                    tracing::info!(
                        table = create.name(),
                        kind = %create.kind(),
                        schema = %actions::describe(create.schema()),
                        "flight: created a table"
                    );
                }
                serde_json::json!({ "created": created, "table": create.name() }).to_string()
            }
            actions::DROP_TABLE => {
                let name = actions::drop_target(&action.body).map_err(|e| to_status(&e))?;
                let dropped = self.engine.drop_table(&name).map_err(|e| to_status(&e))?;
                tracing::info!(table = %name, ?dropped, "flight: dropped tables");
                serde_json::json!({ "dropped": dropped }).to_string()
            }
            other => {
                return Err(Status::invalid_argument(crate::flight::status::capped(
                    format!(
                        "unknown action {other:?} (ListActions lists the ones this server has)"
                    ),
                )))
            }
        };
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(stream::iter([Ok(result)]))))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> std::result::Result<Response<Self::ListActionsStream>, Status> {
        let mut list = vec![ActionType {
            r#type: actions::STATS.into(),
            description: "engine and per-table statistics as JSON".into(),
        }];
        if self.manage_tables {
            list.push(ActionType {
                r#type: actions::CREATE_TABLE.into(),
                description: "create a table: JSON {name, kind, options: {capacity, limit, \
                              key}, schema: base64 of an Arrow IPC schema message}; an \
                              identical existing table is left as it is"
                    .into(),
            });
            list.push(ActionType {
                r#type: actions::DROP_TABLE.into(),
                description: "drop a table and the tables derived from it: JSON {name}".into(),
            });
        }
        Ok(Response::new(Box::pin(stream::iter(
            list.into_iter().map(Ok),
        ))))
    }
}

/// A `DoPut` under way: its table, its place among the calls in progress, and its decoded
/// batches with the bytes they came in.
struct OpenPut {
    table: Table,
    _permit: tokio::sync::OwnedSemaphorePermit,
    decoded: FlightRecordBatchStream,
    wire: Arc<AtomicU64>,
}

impl Service {
    /// Opens a `DoPut`: reads the first message (the descriptor names the table), takes a
    /// place among the calls in progress, and decodes what follows.
    async fn open_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<OpenPut, Status> {
        self.check_open()?;
        let mut input = request.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty DoPut stream"))?;
        let descriptor = first.flight_descriptor.clone().ok_or_else(|| {
            Status::invalid_argument("the first DoPut message needs a descriptor")
        })?;
        let table = self.table_of(&descriptor)?;
        let permit = self.puts.clone().try_acquire_owned().map_err(|_| {
            status(
                tonic::Code::ResourceExhausted,
                ErrorCode::ResourceExhausted,
                format!(
                    "too many DoPut calls at once (the server's limit is {}); retry later",
                    self.max_puts
                ),
            )
        })?;
        // After taking the permit: see `FlightServer::drain`.
        self.check_open()?;
        // Counted as sent: decoded columns are slices of their message's body, so summing each
        // array's memory would count one body once per buffer.
        let wire = Arc::new(AtomicU64::new(0));
        let counted = wire.clone();
        let counters = self.counters.clone();
        let messages = stream::once(async { Ok(first) })
            .chain(input)
            .inspect_ok(move |m| {
                let len = (m.data_header.len() + m.data_body.len()) as u64;
                counted.fetch_add(len, Ordering::Relaxed);
                counters.put_bytes(len);
            })
            .map_err(FlightError::from);
        Ok(OpenPut {
            table,
            _permit: permit,
            decoded: FlightRecordBatchStream::new_from_flight_data(messages),
            wire,
        })
    }

    /// A `DoPut`: its batches staged together; the rows staged.
    async fn put(&self, open: OpenPut) -> std::result::Result<u64, Status> {
        let OpenPut {
            table,
            _permit,
            mut decoded,
            wire,
        } = open;
        // A DoPut lands whole or not at all: its batches are held, bounded, until the end of
        // the call, then staged together in one step (one cycle applies all of them).
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let limit_rows = table.shared.staging.limit();
        while let Some(batch) = decoded.next().await {
            let batch = batch.map_err(|e| self.bad_put_data(&e))?;
            rows += batch.num_rows();
            if wire.load(Ordering::Relaxed) > self.max_put_bytes as u64 {
                return Err(status(
                    tonic::Code::ResourceExhausted,
                    ErrorCode::BatchTooLarge,
                    format!(
                        "a DoPut may carry at most {} bytes (the server's limit); split it \
                         into several calls, or send it with {PUT_MODE_HEADER}: batch",
                        self.max_put_bytes
                    ),
                ));
            }
            if rows > limit_rows {
                return Err(to_status(&Error::BatchTooLarge {
                    table: table.name().to_owned(),
                    rows,
                    limit: limit_rows,
                }));
            }
            batches.push(batch);
        }
        let core = table.core().map_err(|e| to_status(&e))?;
        let rows = stage::batches(&core, &table.shared, &batches, false)
            .map_err(|e| to_status(&e.into_error(&core, &table.shared)))?;
        Ok(rows)
    }
}

/// How long a batch of a [`PUT_MODE_HEADER`]` batch` `DoPut` waits for room in a full
/// staging buffer before the call fails with `StagingFull`'s status.
const PUT_ROOM_WAIT: Duration = Duration::from_secs(30);

/// Stages one batch of a batch-mode `DoPut`, waiting (without blocking the runtime) while the
/// table's staging is full; the rows staged.
async fn stage_one(table: &Table, batch: RecordBatch) -> std::result::Result<u64, Status> {
    let core = table.core().map_err(|e| to_status(&e))?;
    let deadline = Instant::now() + PUT_ROOM_WAIT;
    let batches = [batch];
    loop {
        match stage::batches(&core, &table.shared, &batches, false) {
            Ok(rows) => return Ok(rows),
            Err(stage::Rejected::Refused(crate::publish::staging::Refused::Full(_)))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => return Err(to_status(&e.into_error(&core, &table.shared))),
        }
    }
}

/// A batch-mode `DoPut` as the stream of its acknowledgements: each batch is staged on its
/// own as it arrives (waiting for room in a full staging buffer), then acknowledged with a
/// `PutResult` whose app metadata is `{"rows": n, "total": t}`: the batch's rows and the
/// call's so far. The first bad batch ends the call with its error; the batches
/// acknowledged before it stay staged.
fn put_batches(
    open: OpenPut,
    counters: Arc<Counters>,
    max_message_bytes: usize,
) -> impl Stream<Item = std::result::Result<PutResult, Status>> + Send + 'static {
    let state = (open, 0u64, false);
    stream::unfold(state, move |(mut open, total, done)| {
        let counters = counters.clone();
        async move {
            if done {
                return None;
            }
            let batch = match open.decoded.next().await? {
                Ok(b) => b,
                Err(e) => {
                    let s = bad_put_data(max_message_bytes, &e);
                    counters.refused(crate::flight::status::from_status(&s).code());
                    return Some((Err(s), (open, total, true)));
                }
            };
            match stage_one(&open.table, batch).await {
                Ok(rows) => {
                    counters.put(rows);
                    let total = total + rows;
                    let ack = PutResult {
                        app_metadata: serde_json::json!({ "rows": rows, "total": total })
                            .to_string()
                            .into(),
                    };
                    Some((Ok(ack), (open, total, false)))
                }
                Err(s) => {
                    counters.refused(crate::flight::status::from_status(&s).code());
                    Some((Err(s), (open, total, true)))
                }
            }
        }
    })
}
