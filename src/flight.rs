//! Serving tables over Arrow Flight, and a Rust client for it.
//!
//! [`EngineHandle::serve_flight`](crate::EngineHandle::serve_flight) starts a Flight service
//! (arrow-flight on tokio/tonic, on its own runtime and thread) that any Flight client, pyarrow's
//! included, can use:
//!
//! - `ListFlights`: one `FlightInfo` per table: its schema, a path descriptor with its name, the
//!   row count as `total_records`, and app metadata
//!   `{"kind": "append"|"blink"|"ring"|"keyed", "capacity": n|null, "key": [names], "step": s,
//!   "rows": [start, end]}`.
//!   Its two endpoints are, in order, the table's **snapshot** ticket and its **live** ticket,
//!   so a generic client can pick either without knowing the ticket format.
//! - `GetFlightInfo` / `GetSchema` by a path descriptor holding the table's name.
//! - `DoGet` with a snapshot ticket: the table at one step, then the stream ends. With a live
//!   ticket: the snapshot, then every update as it happens, until the client goes away.
//! - `DoPut` with a path descriptor: the batches are checked against the table's schema and
//!   staged together, as a [`TablePublisher`](crate::TablePublisher) would, so they land in one
//!   cycle; if any batch does not fit, the call fails with `INVALID_ARGUMENT` and nothing is
//!   applied. The one `PutResult`'s app metadata is `{"rows": n}`. Into a keyed table, a
//!   batch upserts (a partial one if it has only some columns, by name), and a batch whose
//!   schema metadata has `tickertable.op: delete` deletes its rows' keys.
//!
//! # Streaming puts
//!
//! With the request header [`PUT_MODE_HEADER`]` batch`, a `DoPut` stages each batch on its
//! own as it arrives and answers each with a `PutResult` whose app metadata is
//! `{"rows": n, "total": t}` (the batch's rows, the call's so far), so one client streams at
//! the wire's rate instead of waiting a round trip per call. A batch waits for room while
//! the table's staging is full (the call's flow control then slows the client); the first
//! batch that does not fit ends the call with its error, and the batches acknowledged before
//! it stay. The Rust client's [`Client::publisher`] uses it; from pyarrow:
//! `client.do_put(descriptor, schema, options=FlightCallOptions(headers=[(b"x-tickertable-put",
//! b"batch")]))`, reading the acknowledgements from the returned reader.
//!
//! # Table management
//!
//! `ListActions` and `DoAction` (details in [`CreateTable`] and the action constants):
//!
//! - `stats`: engine and per-table statistics as JSON (step, period, last, worst and mean
//!   cycle time, rows, rows/s, staged rows, subscribers; the server's puts, refusals by code
//!   and resynchronised streams);
//! - with [`FlightOptions::with_table_management`]: `create_table` (a JSON body with the
//!   name, kind, options and the schema as base64 Arrow IPC schema bytes, so any Arrow client
//!   can send one; an identical existing table is a no-op, a different one is refused with
//!   `ALREADY_EXISTS`) and `drop_table` (the table and its derived tables; their live streams
//!   end with `NOT_FOUND` and code `table_dropped`).
//!
//! # Stopping
//!
//! A live stream ends with `UNAVAILABLE` and code `server_stopping`
//! ([`Error::ServerStopping`](crate::Error::ServerStopping)) when the server stops or its
//! engine shuts down: not a failure, so a client can reconnect later. A failed table ends its
//! streams with the table's error and code (`table_closed`). See
//! [`FlightServer`'s draining](FlightServer#draining) for a stop that loses no staged row.
//!
//! # Authentication
//!
//! With [`FlightOptions::with_token`] (or [`FlightOptions::with_token_file`]) every call needs
//! the token, compared in constant time: the header `authorization: Bearer <token>`, or
//! `Basic` credentials whose password is the token. A `Handshake` with basic credentials
//! (pyarrow's `client.authenticate_basic_token(user, token)`) answers with the header
//! `authorization: Bearer <token>` to send on later calls. Calls without it are refused with
//! `UNAUTHENTICATED`.
//!
//! # TLS
//!
//! [`FlightOptions::with_tls`] serves TLS ([`ServerTls`]: a certificate chain and key, and
//! optionally a client CA for mutual TLS); [`Client::connect_tls`] connects to
//! `grpc+tls://host:port` with a [`ClientTls`]; pyarrow with
//! `flight.connect("grpc+tls://host:port", tls_root_certs=ca)`. Needs the `tls` feature (on by
//! default).
//!
//! # Limits
//!
//! Every connection has its own share of live streams and of snapshot streams, a live stream
//! whose client stopped reading is ended, a `DoPut` is bounded in bytes and rows until it is
//! staged whole, and messages are bounded in size: see [`FlightOptions`]. Refusals are
//! `RESOURCE_EXHAUSTED` with the limit in the message, and errors never echo more than
//! [`MAX_STATUS_MESSAGE`] bytes of a request back. Each error status carries its
//! [`ErrorCode`](crate::ErrorCode) in the [`CODE_HEADER`] header.
//!
//! # Wire format
//!
//! A `DoGet` stream is an Arrow IPC stream (a schema message, then record batches) whose every
//! message after the schema carries JSON app metadata:
//!
//! ```json
//! {"step": 42, "reset": false, "removed": [100, 110], "added": [1000, 1250]}
//! ```
//!
//! A client mirrors the table by applying each message in order:
//!
//! 1. if `reset` is true, clear the mirror (a snapshot starts, or a slow client is
//!    resynchronised: what follows is the whole table);
//! 2. drop the rows at positions `removed` (a prefix of the mirror; for a keyed table a
//!    suffix);
//! 3. if the message has `"modified": [p0, p1, ...]` (keyed tables only), its rows replace the
//!    mirror's rows at those positions, in order; an optional `"masks": ["0a", ...]` gives, per
//!    row, the columns written as a hex bit mask (bit `c % 8` of byte `c / 8`), for a client
//!    that highlights changed cells;
//! 4. otherwise append the message's rows, which are at positions `added` (`added` is empty
//!    and the message has no batch when an update only removes rows: a metadata-only message).
//!
//! A keyed table's update sends its modified rows first, then its added rows. Its
//! `FlightInfo` metadata has `"kind": "keyed"` and `"key": [column names]`.
//!
//! The first message of a snapshot (a `reset`) also carries `"rows": [start, end]`, the
//! positions of the whole snapshot, so a client knows the snapshot is complete once its
//! mirror ends at `end`.
//!
//! A snapshot or an update may span several messages (large batches are split to keep messages
//! near 2 MiB); only the first carries `reset` and `removed`. All messages of one step share
//! its `step`. Positions count every row ever appended to the table (see
//! [`table`](crate::table)), so `added.start` may jump past the mirror's end when a ring drops
//! rows that were never sent; the mirror is then empty after step 2.
//!
//! With the request header [`COMPRESSION_HEADER`] (`lz4` or `zstd`) the record batches'
//! buffers are compressed as Arrow IPC allows; the messages and their metadata are
//! otherwise the same.
//!
//! A client too slow for the live stream is never buffered for without bound: its server-side
//! subscription lags, and the next message is a `reset` with a fresh snapshot.

pub(crate) mod actions;
pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod limits;
pub(crate) mod server;
pub(crate) mod server_stats;
pub(crate) mod status;
pub(crate) mod ticket;
pub(crate) mod tls;
pub(crate) mod wire;

pub use actions::{CreateTable, CREATE_TABLE, DROP_TABLE, STATS};
pub use client::{
    Client, RemoteMessage, RemotePublisher, RemoteSnapshot, RemoteSubscription, RemoteTable,
    CALL_TIMEOUT, CONNECT_TIMEOUT,
};
pub use server::{FlightOptions, FlightServer, PUT_MODE_HEADER, STOP_GRACE};
pub use server_stats::{FlightStats, FlightStatsHandle};
pub use status::{CODE_HEADER, MAX_STATUS_MESSAGE};
pub use ticket::{FlightTicket, TicketKind};
pub use tls::{ClientTls, ServerTls};
pub use wire::{Compression, MessageMeta, COMPRESSION_HEADER};
