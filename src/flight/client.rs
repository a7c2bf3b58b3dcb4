//! A Rust Flight client for a tickertable server.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use arrow_array::RecordBatch;
use std::collections::HashMap;

use arrow_array::ArrayRef;
use arrow_buffer::Buffer;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Criteria, FlightData, FlightDescriptor, FlightInfo, Ticket};
use arrow_schema::SchemaRef;
use futures_util::{stream, StreamExt};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::{Request, Streaming};

use crate::error::{Error, Result};
use crate::flight::server::MAX_MESSAGE_BYTES;
use crate::flight::status::unavailable;
use crate::flight::ticket::FlightTicket;
use crate::flight::wire::{Compression, Encoder, MessageMeta};
use crate::mirror::{Mirror, Replaced};
use crate::step::Step;
use crate::table::TableKind;

/// Messages a [`RemotePublisher`] queues for its connection before `send` waits.
const PUBLISHER_QUEUE: usize = 8;

/// A streaming `DoPut` into one table (see [`Client::publisher`]): batches go out as they
/// are sent, each staged on its own by the server and acknowledged.
///
/// Memory is bounded: `send` waits while 8 messages are queued, and the
/// server reads no faster than its staging takes rows. Dropping the publisher without
/// [`finish`](Self::finish) ends the call; what was acknowledged stays staged.
pub struct RemotePublisher {
    enc: Encoder,
    schema: SchemaRef,
    tx: Option<tokio::sync::mpsc::Sender<FlightData>>,
    acks: Option<tokio::task::JoinHandle<Result<u64>>>,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    scratch: Vec<FlightData>,
}

impl RemotePublisher {
    /// Sends one batch; returns once it is queued for the connection (not acknowledged:
    /// see [`acked`](Self::acked) and [`finish`](Self::finish)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if the batch's schema differs from the publisher's; the
    /// call's error (as [`Client::publish`]'s) if the server ended it, say for a batch that
    /// did not fit the table.
    pub async fn send(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(Error::InvalidOption {
                option: "batch",
                reason: "its schema differs from the publisher's".into(),
            });
        }
        self.scratch.clear();
        self.enc.messages(
            Step(0),
            None,
            0..0,
            0,
            std::slice::from_ref(batch),
            &mut self.scratch,
        )?;
        let tx = self.tx.as_ref().ok_or_else(|| Error::InvalidOption {
            option: "publisher",
            reason: "already finished".into(),
        })?;
        let mut ended = false;
        for m in self.scratch.drain(..) {
            if tx.send(m).await.is_err() {
                ended = true;
                break;
            }
        }
        if ended {
            // The call ended: its error says why.
            self.tx = None;
            return Err(self.join().await.err().unwrap_or_else(|| {
                unavailable("the DoPut call ended before its batches were sent".into())
            }));
        }
        Ok(())
    }

    /// The rows the server has acknowledged so far (staged: visible after the next cycle).
    pub fn acked(&self) -> u64 {
        self.acked.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Ends the call and waits for every batch's acknowledgement; returns the rows staged.
    ///
    /// # Errors
    ///
    /// The call's error, if the server refused a batch or the connection failed.
    pub async fn finish(mut self) -> Result<u64> {
        self.tx = None;
        self.join().await
    }

    async fn join(&mut self) -> Result<u64> {
        match self.acks.take() {
            Some(h) => h.await.map_err(|e| Error::Protocol {
                message: format!("the DoPut task failed: {e}"),
            })?,
            None => Ok(self.acked()),
        }
    }
}

impl fmt::Debug for RemotePublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemotePublisher")
            .field("acked", &self.acked())
            .finish_non_exhaustive()
    }
}

/// A table as a server lists it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteTable {
    /// The table's name.
    pub name: String,
    /// Its kind.
    pub kind: TableKind,
    /// Its schema.
    pub schema: SchemaRef,
    /// Its row count when listed.
    pub num_rows: u64,
    /// The step of its last change when listed.
    pub step: Step,
    /// A ring's capacity or an append table's limit, if it has one.
    pub capacity: Option<u64>,
    /// A keyed table's key columns, by name (empty for other kinds).
    pub key: Vec<String>,
}

/// An error and its sources, `a: b: c` (transport errors say little without their cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A table read at one step from a server.
#[derive(Debug, Clone)]
pub struct RemoteSnapshot {
    /// The step of the table's last change.
    pub step: Step,
    /// The positions of the rows.
    pub rows: Range<u64>,
    /// The rows, in order.
    pub batches: Vec<RecordBatch>,
    /// The schema.
    pub schema: SchemaRef,
}

impl RemoteSnapshot {
    /// How many rows the snapshot holds.
    pub fn num_rows(&self) -> usize {
        crate::table::chunk::range_len(&self.rows)
    }
}

/// One message of a live stream, already applied to the subscription's mirror.
#[derive(Debug, Clone)]
pub struct RemoteMessage {
    /// The message's metadata: step, reset, removed and added positions.
    pub meta: MessageMeta,
    /// The rows it carried, if any.
    pub batch: Option<RecordBatch>,
    /// The chunks its modified rows replaced in the mirror, as they were.
    pub replaced: Replaced,
}

/// A client of a tickertable Flight server. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: FlightServiceClient<Channel>,
    auth: Option<MetadataValue<Ascii>>,
    timeout: Duration,
    compression: Compression,
}

/// HTTP/2 receive windows of a connection's streams and of the connection (see
/// [`FlightOptions`](crate::flight::FlightOptions#transport) for why these sizes).
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default time limit of one `list`, `table` or `publish` call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `call` within `limit`; running out of time is a transient remote error.
async fn timed<T>(
    limit: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(unavailable(format!("{what} timed out after {limit:?}"))))
}

fn remote(status: &tonic::Status) -> Error {
    crate::flight::status::from_status(status)
}

impl Client {
    /// Connects to `grpc://host:port` (or `http://host:port`). For `grpc+tls://` use
    /// [`connect_tls`](Self::connect_tls).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] with [`RemoteErrorKind::Unavailable`](crate::RemoteErrorKind::Unavailable)
    /// if the server cannot be reached, [`Error::InvalidOption`] for a malformed URL or a
    /// `grpc+tls://` URL without TLS settings.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_inner(url, None).await
    }

    /// Connects to `grpc+tls://host:port` (or `https://host:port`) trusting the CA of `tls`,
    /// and presenting its identity if it has one (mutual TLS).
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); [`Error::InvalidOption`] if `tls` has no CA or the build
    /// has no `tls` feature.
    pub async fn connect_tls(url: &str, tls: &crate::flight::ClientTls) -> Result<Self> {
        Self::connect_inner(url, Some(tls)).await
    }

    async fn connect_inner(url: &str, tls: Option<&crate::flight::ClientTls>) -> Result<Self> {
        let (http, secure) = if let Some(rest) = url.strip_prefix("grpc://") {
            (format!("http://{rest}"), false)
        } else if let Some(rest) = url.strip_prefix("grpc+tls://") {
            (format!("https://{rest}"), true)
        } else {
            (url.to_owned(), url.starts_with("https://"))
        };
        if secure && tls.is_none() {
            return Err(Error::InvalidOption {
                option: "url",
                reason: format!("{url} is TLS: connect with Client::connect_tls and a CA"),
            });
        }
        let endpoint =
            tonic::transport::Endpoint::from_shared(http).map_err(|e| Error::InvalidOption {
                option: "url",
                reason: e.to_string(),
            })?;
        #[cfg(feature = "tls")]
        let endpoint = match tls {
            Some(tls) => endpoint
                .tls_config(tls.config()?)
                .map_err(|e| Error::InvalidOption {
                    option: "tls",
                    reason: error_chain(&e),
                })?,
            None => endpoint,
        };
        #[cfg(not(feature = "tls"))]
        if tls.is_some() {
            return Err(crate::flight::tls::unsupported());
        }
        // Keep-alive pings find a server that went away even on an idle live stream.
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(crate::flight::server::FRAME_SIZE);
        let channel = timed(CONNECT_TIMEOUT, "connecting", async {
            endpoint
                .connect()
                .await
                .map_err(|e| unavailable(format!("cannot connect to {url}: {}", error_chain(&e))))
        })
        .await?;
        let inner = FlightServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            inner,
            auth: None,
            timeout: CALL_TIMEOUT,
            compression: Compression::None,
        })
    }

    /// Sends `authorization: Bearer <token>` with every call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if the token is not valid header text.
    pub fn with_token(mut self, token: &str) -> Result<Self> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Error::InvalidOption {
                option: "token",
                reason: "not header text".into(),
            })?;
        self.auth = Some(value);
        Ok(self)
    }

    /// The time limit of each `list`, `table` and `publish` call (default [`CALL_TIMEOUT`]);
    /// live and snapshot streams have none.
    #[must_use]
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Compresses what this client sends (`DoPut` batches) and asks the server to compress
    /// the streams it reads ([`COMPRESSION_HEADER`](crate::flight::COMPRESSION_HEADER));
    /// default [`Compression::None`]. Worth it on slow links, not on loopback.
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        if let Some(auth) = &self.auth {
            req.metadata_mut().insert("authorization", auth.clone());
        }
        if self.compression != Compression::None {
            req.metadata_mut().insert(
                crate::flight::COMPRESSION_HEADER,
                MetadataValue::from_static(self.compression.as_str()),
            );
        }
        req
    }

    /// Every table of the server.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] or [`Error::Protocol`].
    pub async fn list(&mut self) -> Result<Vec<RemoteTable>> {
        let limit = self.timeout;
        timed(limit, "list", self.list_now()).await
    }

    async fn list_now(&mut self) -> Result<Vec<RemoteTable>> {
        let req = self.request(Criteria::default());
        let mut infos = self
            .inner
            .list_flights(req)
            .await
            .map_err(|s| remote(&s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(info) = infos.message().await.map_err(|s| remote(&s))? {
            out.push(remote_table(info)?);
        }
        Ok(out)
    }

    /// One table's listing.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] (`NotFound` for a missing table) or [`Error::Protocol`].
    pub async fn table(&mut self, name: &str) -> Result<RemoteTable> {
        let limit = self.timeout;
        timed(limit, "get_flight_info", self.table_now(name)).await
    }

    async fn table_now(&mut self, name: &str) -> Result<RemoteTable> {
        let req = self.request(FlightDescriptor::new_path(vec![name.to_owned()]));
        let info = self
            .inner
            .get_flight_info(req)
            .await
            .map_err(|s| remote(&s))?
            .into_inner();
        remote_table(info)
    }

    async fn do_get(&mut self, ticket: &FlightTicket) -> Result<Streaming<FlightData>> {
        let req = self.request(Ticket::new(ticket.to_bytes()));
        Ok(self
            .inner
            .do_get(req)
            .await
            .map_err(|s| remote(&s))?
            .into_inner())
    }

    /// The table at one step.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] or [`Error::Protocol`].
    pub async fn snapshot(&mut self, table: &str) -> Result<RemoteSnapshot> {
        let mut sub = RemoteSubscription::new(self.do_get(&FlightTicket::snapshot(table)).await?);
        while sub.next().await.transpose()?.is_some() {}
        let schema = sub.schema.clone().ok_or_else(|| Error::Protocol {
            message: "the stream carried no schema".into(),
        })?;
        Ok(RemoteSnapshot {
            step: sub.step(),
            rows: sub.rows(),
            batches: sub.batches(),
            schema,
        })
    }

    /// Subscribes to a table: its snapshot, then every update, mirrored locally.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] or [`Error::Protocol`].
    pub async fn subscribe(&mut self, table: &str) -> Result<RemoteSubscription> {
        Ok(RemoteSubscription::new(
            self.do_get(&FlightTicket::live(table)).await?,
        ))
    }

    /// Publishes batches into a table with `DoPut`: all of them land in one cycle, or none
    /// if any does not fit the table's schema. Returns the rows accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`]: `InvalidArgument` for a batch that does not fit the schema,
    /// `ResourceExhausted` when the table's staging is full (retry later), `NotFound`,
    /// `FailedPrecondition` for a closed or derived table.
    pub async fn publish(&mut self, table: &str, batches: Vec<RecordBatch>) -> Result<u64> {
        let limit = self.timeout;
        timed(limit, "publish", self.publish_now(table, batches)).await
    }

    /// Opens a streaming `DoPut` into `table` for batches of `schema`: each batch sent with
    /// [`RemotePublisher::send`] is staged on its own as it arrives (the server's
    /// [`PUT_MODE_HEADER`](crate::flight::PUT_MODE_HEADER)` batch` mode) and acknowledged,
    /// so one client keeps the connection full instead of waiting a round trip per call.
    /// A batch is atomic; batches are not staged together. Call it within a tokio runtime
    /// (it starts the call on one), as every other method of the client.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if the table name is not valid in a descriptor; errors of the
    /// call itself surface from [`send`](RemotePublisher::send) and
    /// [`finish`](RemotePublisher::finish).
    pub fn publisher(&self, table: &str, schema: SchemaRef) -> Result<RemotePublisher> {
        let mut enc = Encoder::compressed(schema.clone(), self.compression)?;
        let first = enc
            .schema_message()
            .with_descriptor(FlightDescriptor::new_path(vec![table.to_owned()]));
        let (tx, mut rx) = tokio::sync::mpsc::channel::<FlightData>(PUBLISHER_QUEUE);
        let messages =
            stream::once(async move { first }).chain(stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let mut req = self.request(messages);
        req.metadata_mut().insert(
            crate::flight::server::PUT_MODE_HEADER,
            MetadataValue::from_static("batch"),
        );
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = acked.clone();
        let mut inner = self.inner.clone();
        let acks = tokio::spawn(async move {
            let mut results = inner
                .do_put(req)
                .await
                .map_err(|s| remote(&s))?
                .into_inner();
            while let Some(r) = results.message().await.map_err(|s| remote(&s))? {
                let v: serde_json::Value =
                    serde_json::from_slice(&r.app_metadata).map_err(|e| Error::Protocol {
                        message: format!("put result: {e}"),
                    })?;
                let total = v
                    .get("total")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| Error::Protocol {
                        message: "a put result without its total".into(),
                    })?;
                seen.store(total, std::sync::atomic::Ordering::Release);
            }
            Ok(seen.load(std::sync::atomic::Ordering::Acquire))
        });
        Ok(RemotePublisher {
            enc,
            schema,
            tx: Some(tx),
            acks: Some(acks),
            acked,
            scratch: Vec::new(),
        })
    }

    /// Deletes the keys of `keys`' rows from a keyed table on the server (a missing key is
    /// ignored): a `DoPut` of the batch tagged `tickertable.op: delete`. Returns the rows sent.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish); `InvalidArgument` if the table is not keyed or a key
    /// column is missing.
    pub async fn delete(&mut self, table: &str, keys: RecordBatch) -> Result<u64> {
        let tagged = crate::publish::publisher::delete_batch(&keys)?;
        self.publish(table, vec![tagged]).await
    }

    /// The actions the server offers (`ListActions`): their names.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub async fn list_actions(&mut self) -> Result<Vec<String>> {
        let limit = self.timeout;
        timed(limit, "list_actions", async {
            let req = self.request(arrow_flight::Empty {});
            let mut list = self
                .inner
                .list_actions(req)
                .await
                .map_err(|s| remote(&s))?
                .into_inner();
            let mut out = Vec::new();
            while let Some(a) = list.message().await.map_err(|s| remote(&s))? {
                out.push(a.r#type);
            }
            Ok(out)
        })
        .await
    }

    /// Runs `DoAction` `kind` with `body`; its one result's body.
    async fn action(&mut self, kind: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let limit = self.timeout;
        timed(limit, kind, async {
            let req = self.request(arrow_flight::Action {
                r#type: kind.to_owned(),
                body: body.into(),
            });
            let mut results = self
                .inner
                .do_action(req)
                .await
                .map_err(|s| remote(&s))?
                .into_inner();
            let mut out = Vec::new();
            while let Some(r) = results.message().await.map_err(|s| remote(&s))? {
                out.extend_from_slice(&r.body);
            }
            Ok(out)
        })
        .await
    }

    fn json(bytes: &[u8], what: &str) -> Result<serde_json::Value> {
        serde_json::from_slice(bytes).map_err(|e| Error::Protocol {
            message: format!("{what} result: {e}"),
        })
    }

    /// Creates a table on the server (`DoAction` `create_table`). Returns `true` if it was
    /// created, `false` if an identical one existed (which is left as it is).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`]: `AlreadyExists` with code `table_exists` if a table of that name has
    /// another kind, options or schema; `InvalidArgument` for a request that cannot work.
    pub async fn create_table(&mut self, table: &crate::flight::CreateTable) -> Result<bool> {
        let body = table.to_json()?.into_bytes();
        let out = self.action(crate::flight::CREATE_TABLE, body).await?;
        Ok(Self::json(&out, "create_table")?
            .get("created")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false))
    }

    /// Drops a table on the server and the tables derived from it (`DoAction`
    /// `drop_table`); returns their names, `name` first.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`]: `NotFound` if there is no such table.
    pub async fn drop_table(&mut self, name: &str) -> Result<Vec<String>> {
        let body = serde_json::json!({ "name": name }).to_string().into_bytes();
        let out = self.action(crate::flight::DROP_TABLE, body).await?;
        let v = Self::json(&out, "drop_table")?;
        Ok(v.get("dropped")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The server's statistics (`DoAction` `stats`), as the JSON the
    /// [table management docs](crate::flight#table-management) describe.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] or [`Error::Protocol`].
    pub async fn stats(&mut self) -> Result<serde_json::Value> {
        let out = self.action(crate::flight::STATS, Vec::new()).await?;
        Self::json(&out, "stats")
    }

    async fn publish_now(&mut self, table: &str, batches: Vec<RecordBatch>) -> Result<u64> {
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => return Ok(0),
        };
        if batches
            .iter()
            .any(|b| b.schema().fields() != schema.fields())
        {
            return Err(Error::InvalidOption {
                option: "batches",
                reason: "all batches of one publish must have the same schema".into(),
            });
        }
        let mut enc = Encoder::compressed(schema, self.compression)?;
        let mut messages: Vec<FlightData> = vec![enc
            .schema_message()
            .with_descriptor(FlightDescriptor::new_path(vec![table.to_owned()]))];
        for batch in &batches {
            enc.messages(
                Step(0),
                None,
                0..0,
                0,
                std::slice::from_ref(batch),
                &mut messages,
            )?;
        }
        let req = self.request(stream::iter(messages));
        let mut results = self
            .inner
            .do_put(req)
            .await
            .map_err(|s| remote(&s))?
            .into_inner();
        let mut rows = 0;
        while let Some(r) = results.message().await.map_err(|s| remote(&s))? {
            let v: serde_json::Value =
                serde_json::from_slice(&r.app_metadata).map_err(|e| Error::Protocol {
                    message: format!("put result: {e}"),
                })?;
            rows += v
                .get("rows")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
        }
        Ok(rows)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

fn remote_table(info: FlightInfo) -> Result<RemoteTable> {
    let name = info
        .flight_descriptor
        .as_ref()
        .and_then(|d| d.path.first().cloned())
        .ok_or_else(|| Error::Protocol {
            message: "a FlightInfo without a table name".into(),
        })?;
    let meta: serde_json::Value =
        serde_json::from_slice(&info.app_metadata).map_err(|e| Error::Protocol {
            message: format!("table metadata: {e}"),
        })?;
    let capacity = meta.get("capacity").and_then(serde_json::Value::as_u64);
    let kind = match (meta.get("kind").and_then(|k| k.as_str()), capacity) {
        (Some("append"), _) => TableKind::Append,
        (Some("blink"), _) => TableKind::Blink,
        (Some("ring"), Some(c)) => TableKind::Ring {
            capacity: usize::try_from(c).map_err(|_| Error::Protocol {
                message: "capacity".into(),
            })?,
        },
        (Some("keyed"), c) => TableKind::Keyed {
            capacity: c
                .map(|c| {
                    usize::try_from(c).map_err(|_| Error::Protocol {
                        message: "capacity".into(),
                    })
                })
                .transpose()?,
        },
        _ => {
            return Err(Error::Protocol {
                message: format!("table {name:?}: unknown kind"),
            })
        }
    };
    let step = Step(
        meta.get("step")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
    );
    let num_rows = u64::try_from(info.total_records).unwrap_or(0);
    let schema = std::sync::Arc::new(info.try_decode_schema().map_err(|e| Error::Protocol {
        message: e.to_string(),
    })?);
    let key = meta
        .get("key")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(RemoteTable {
        name,
        kind,
        schema,
        num_rows,
        step,
        capacity,
        key,
    })
}

/// What one message of a `DoGet` stream holds.
enum Decoded {
    /// A schema or dictionary: decoder state only.
    State,
    /// App metadata only (an empty data header, as C++ and pyarrow write them).
    MetadataOnly,
    /// Rows.
    Rows(RecordBatch),
}

/// A live stream from a server, mirrored locally: [`rows`](Self::rows) and
/// [`batches`](Self::batches) are the table as of the last message applied.
pub struct RemoteSubscription {
    input: Streaming<FlightData>,
    dictionaries: HashMap<i64, ArrayRef>,
    mirror: Option<Mirror>,
    schema: Option<SchemaRef>,
}

impl RemoteSubscription {
    fn new(input: Streaming<FlightData>) -> Self {
        Self {
            input,
            dictionaries: HashMap::new(),
            mirror: None,
            schema: None,
        }
    }

    /// Decodes one message.
    fn decode(&mut self, data: &FlightData) -> Result<Decoded> {
        use arrow_ipc::MessageHeader;
        let bad = |e: &dyn fmt::Display| Error::Protocol {
            message: format!("bad message: {e}"),
        };
        if data.data_header.is_empty() {
            return Ok(Decoded::MetadataOnly);
        }
        let message = arrow_ipc::root_as_message(&data.data_header[..]).map_err(|e| bad(&e))?;
        match message.header_type() {
            MessageHeader::NONE => Ok(Decoded::MetadataOnly),
            MessageHeader::Schema => {
                let schema =
                    std::sync::Arc::new(arrow_schema::Schema::try_from(data).map_err(|e| bad(&e))?);
                self.mirror = Some(Mirror::new(schema.clone()));
                self.schema = Some(schema);
                Ok(Decoded::State)
            }
            MessageHeader::DictionaryBatch => {
                let schema = self
                    .schema
                    .as_ref()
                    .ok_or_else(|| bad(&"dictionary before schema"))?;
                let batch = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| bad(&"dictionary"))?;
                arrow_ipc::reader::read_dictionary(
                    &Buffer::from(data.data_body.clone()),
                    batch,
                    schema,
                    &mut self.dictionaries,
                    &message.version(),
                )
                .map_err(|e| bad(&e))?;
                Ok(Decoded::State)
            }
            MessageHeader::RecordBatch => {
                let schema = self
                    .schema
                    .clone()
                    .ok_or_else(|| bad(&"record batch before schema"))?;
                let header = message
                    .header_as_record_batch()
                    .ok_or_else(|| bad(&"record batch"))?;
                // The body as received when it is aligned for every column (no copy), else
                // one copy into an aligned buffer.
                let body = if (data.data_body.as_ptr() as usize) % 64 == 0 {
                    Buffer::from(data.data_body.clone())
                } else {
                    Buffer::from(data.data_body.as_ref())
                };
                let batch = arrow_ipc::reader::read_record_batch(
                    &body,
                    header,
                    schema,
                    &self.dictionaries,
                    None,
                    &message.version(),
                )
                .map_err(|e| bad(&e))?;
                Ok(Decoded::Rows(batch))
            }
            other => Err(bad(&format!("unexpected message type {other:?}"))),
        }
    }

    /// The next message, applied to the mirror; `None` when the stream ends.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] if the connection fails or the table failed, [`Error::Protocol`] if
    /// a message cannot be applied.
    pub async fn next(&mut self) -> Option<Result<RemoteMessage>> {
        loop {
            let data = match self.input.message().await {
                Ok(Some(d)) => d,
                Ok(None) => return None,
                Err(status) => return Some(Err(remote(&status))),
            };
            let batch = match self.decode(&data) {
                Ok(Decoded::Rows(b)) => Some(b),
                Ok(Decoded::MetadataOnly) => None,
                Ok(Decoded::State) => continue,
                Err(e) => return Some(Err(e)),
            };
            let meta = match MessageMeta::parse(&data.app_metadata) {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            let Some(mirror) = self.mirror.as_mut() else {
                return Some(Err(Error::Protocol {
                    message: "rows before the stream's schema".into(),
                }));
            };
            let replaced = match mirror.apply_message(&meta, batch.as_ref()) {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            return Some(Ok(RemoteMessage {
                meta,
                batch,
                replaced,
            }));
        }
    }

    /// The local copy of the table, as of the last message applied (`None` before the
    /// stream's first message).
    pub fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_ref()
    }

    /// The positions the mirror holds.
    pub fn rows(&self) -> Range<u64> {
        self.mirror.as_ref().map_or(0..0, Mirror::rows)
    }

    /// The mirror's rows, in order (O(chunks), no copy).
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.mirror
            .as_ref()
            .map(|m| m.batches().cloned().collect())
            .unwrap_or_default()
    }

    /// The step of the last message applied.
    pub fn step(&self) -> Step {
        self.mirror.as_ref().map_or(Step(0), Mirror::step)
    }

    /// The table's schema, once the stream's first message has arrived.
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// How many resets (the initial snapshot plus resynchronisations) were applied.
    pub fn resets(&self) -> u64 {
        self.mirror.as_ref().map_or(0, Mirror::resets)
    }
}

impl fmt::Debug for RemoteSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSubscription")
            .field("rows", &self.rows())
            .field("step", &self.step())
            .finish_non_exhaustive()
    }
}
