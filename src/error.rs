//! Errors: one [`Error`] enum for the crate, plus per-operation errors that hand the value back.
//!
//! Every variant carries the values a user needs to act on it (the table, the column, the
//! expected and the found type). Runtime input (a bad row, a closed table, a full buffer) is
//! always an `Err`, never a panic, and an operation that fails has applied nothing.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{ArrowError, DataType};

/// A `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error of any tickertable operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A column of a row or batch has a type the table's schema does not accept there.
    #[error("table {table:?}: column {column:?} expects {expected}, found {found}")]
    SchemaMismatch {
        /// The table written to.
        table: String,
        /// The column's name.
        column: String,
        /// The type the schema declares.
        expected: DataType,
        /// The type that was given.
        found: DataType,
    },
    /// A row or batch has the wrong number of columns.
    #[error("table {table:?}: expected {expected} columns, found {found}")]
    ColumnCount {
        /// The table written to.
        table: String,
        /// The schema's column count.
        expected: usize,
        /// The count that was given.
        found: usize,
    },
    /// A batch's column is named differently from the schema's column at that index.
    #[error("table {table:?}: column {index} should be named {expected:?}, found {found:?}")]
    ColumnName {
        /// The table written to.
        table: String,
        /// The column's index.
        index: usize,
        /// The schema's name for it.
        expected: String,
        /// The name that was given.
        found: String,
    },
    /// A null was given for a column that is not nullable.
    #[error("table {table:?}: column {column:?} is not nullable, found a null")]
    NullInNonNullable {
        /// The table written to.
        table: String,
        /// The column's name.
        column: String,
    },
    /// A value does not fit the column's type (say 300 into an `Int8` column).
    #[error("table {table:?}: column {column:?} of type {expected} cannot hold {value}")]
    ValueOutOfRange {
        /// The table written to.
        table: String,
        /// The column's name.
        column: String,
        /// The column's type.
        expected: DataType,
        /// The value that was given, as text.
        value: String,
    },
    /// A column index past the end of the schema.
    #[error("table {table:?}: no column at index {index} (the table has {count})")]
    NoSuchColumn {
        /// The table.
        table: String,
        /// The index asked for.
        index: usize,
        /// The table's column count.
        count: usize,
    },
    /// A batch names a column the table does not have.
    #[error("table {table:?} has no column named {column:?}")]
    NoColumnNamed {
        /// The table.
        table: String,
        /// The name that was given.
        column: String,
    },
    /// An upsert or delete into a keyed table without one of its key columns.
    #[error("table {table:?}: key column {column:?} is missing")]
    MissingKeyColumn {
        /// The keyed table.
        table: String,
        /// The key column left out.
        column: String,
    },
    /// A partial upsert leaves out a column that is not nullable: a new key would get a null
    /// there.
    #[error(
        "table {table:?}: a partial upsert may leave out only nullable columns; {column:?} is not nullable"
    )]
    UnsetColumn {
        /// The keyed table.
        table: String,
        /// The column left out.
        column: String,
    },
    /// An operation the table's kind does not have (a delete on an append table), or a
    /// malformed operation tag on a batch for a keyed table.
    #[error("table {table:?}: {reason}")]
    InvalidOp {
        /// The table.
        table: String,
        /// What was wrong.
        reason: String,
    },
    /// The schema has a column type that row writers cannot build.
    #[error("column {column:?}: row writers do not support type {data_type}")]
    UnsupportedType {
        /// The column's name.
        column: String,
        /// Its type.
        data_type: DataType,
    },
    /// The table was closed; it takes no more rows.
    #[error("table {table:?} is closed")]
    TableClosed {
        /// The table.
        table: String,
    },
    /// The table's publisher reported a failure; the table takes no more rows.
    #[error("table {table:?} failed: {source}")]
    TableFailed {
        /// The table.
        table: String,
        /// What the publisher reported.
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A callback (`on_flush`) panicked on the cycle thread; its table was failed.
    #[error("table {table:?}: {callback} panicked: {message}")]
    CallbackPanicked {
        /// The table the callback belongs to.
        table: String,
        /// Which callback.
        callback: &'static str,
        /// The panic's message.
        message: String,
    },
    /// A listener panicked on the cycle thread; it was removed, the engine went on.
    #[error("table {table:?}: listener {listener} panicked and was removed: {message}")]
    ListenerPanicked {
        /// The table the listener was on.
        table: String,
        /// The listener's id.
        listener: u64,
        /// The panic's message.
        message: String,
    },
    /// A table with this name already exists in the engine.
    #[error("a table named {table:?} already exists")]
    TableExists {
        /// The name.
        table: String,
    },
    /// No table has this name.
    #[error("no table named {table:?}")]
    NoSuchTable {
        /// The name.
        table: String,
    },
    /// The table was dropped ([`EngineHandle::drop_table`](crate::EngineHandle::drop_table)):
    /// what its listeners and subscriptions end with, and what a handle still held reports.
    #[error("table {table:?} was dropped")]
    TableDropped {
        /// The table.
        table: String,
    },
    /// A table of this name exists with another kind or schema than a create asked for (an
    /// identical create is not an error: it leaves the table as it is).
    #[error("table {table:?} exists with {existing}; the create asked for {requested}")]
    TableConflict {
        /// The table.
        table: String,
        /// What the existing table is (its kind, options or schema, whichever differs).
        existing: String,
        /// What the create asked for instead.
        requested: String,
    },
    /// The server is shutting down: what its live streams end with after the last cycle,
    /// and what calls made while it drains are refused with. Transient: reconnect once it is
    /// back.
    #[error("the server is shutting down; reconnect once it is back")]
    ServerStopping,
    /// The table's staging buffer is full and the call could not wait for a cycle. Transient:
    /// the next cycle makes room.
    #[error(
        "table {table:?}: staging is full ({staged} rows staged, limit {limit}); retry after \
         the next cycle, or raise Builder::staging_limit"
    )]
    StagingFull {
        /// The table.
        table: String,
        /// Rows staged now.
        staged: usize,
        /// The limit.
        limit: usize,
    },
    /// One write has more rows than the table's whole staging limit, so it can never be
    /// staged. Permanent: split it.
    #[error(
        "table {table:?}: {rows} rows in one write is more than the staging limit ({limit} \
         rows); split it, or raise Builder::staging_limit"
    )]
    BatchTooLarge {
        /// The table.
        table: String,
        /// The rows of the write.
        rows: usize,
        /// The limit.
        limit: usize,
    },
    /// A derived table takes its rows from its source, never from writers.
    #[error("table {table:?} is derived from another table and takes no rows from writers")]
    DerivedTable {
        /// The derived table.
        table: String,
    },
    /// An option has a value that cannot work (a ring of capacity 0, a period of 0).
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why the value cannot work.
        reason: String,
    },
    /// `commit` or `rollback` without `begin`, or `begin` inside a transaction.
    #[error("{0}")]
    Transaction(TransactionError),
    /// A remote server refused a call or could not be reached.
    #[error("remote {kind}: {message}")]
    Remote {
        /// What kind of failure, for deciding whether to retry.
        kind: RemoteErrorKind,
        /// The server's classification of its error ([`Error::code`] on the server), or the
        /// one the transport failure implies.
        code: ErrorCode,
        /// The server's or the transport's message.
        message: String,
    },
    /// A peer sent something this side cannot apply.
    #[error("protocol error: {message}")]
    Protocol {
        /// What was wrong.
        message: String,
    },
    /// A multithreaded writer takes no more rows: it was completed, or the row's writer
    /// thread gave up after a failure (see its status and unwritten data).
    #[error("the writer takes no more rows: {reason}")]
    MultithreadedWriterClosed {
        /// Why.
        reason: String,
    },
    /// The engine has shut down.
    #[error("the engine has shut down")]
    EngineShutDown,
    /// The cycle thread panicked; the engine shut down.
    #[error("the cycle thread panicked: {message}")]
    CyclePanicked {
        /// The panic's message.
        message: String,
    },
    /// A durable table's log or checkpoint holds a record that is torn or corrupt (a bad
    /// checksum, a cut-off record, a record that does not follow the one before it). Replay
    /// keeps everything before `offset` and truncates the rest (see [`crate::durable`]).
    #[error("table {table:?}: log {file} is corrupt at byte {offset}: {reason}")]
    LogCorrupt {
        /// The table.
        table: String,
        /// The file, as a path.
        file: String,
        /// The byte offset of the first bad record in `file`.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A durable table was created with a schema other than the one its log was written with.
    #[error(
        "table {table:?}: the log was written with schema {logged}, the table is given {given}"
    )]
    SchemaChanged {
        /// The table.
        table: String,
        /// The logged schema's columns.
        logged: String,
        /// The given schema's columns.
        given: String,
    },
    /// A durable table was created as another kind (or key) than its log was written with.
    #[error("table {table:?}: the log was written for a {logged} table, the table is {given}")]
    KindChanged {
        /// The table.
        table: String,
        /// The logged kind (and key columns).
        logged: String,
        /// The given kind (and key columns).
        given: String,
    },
    /// Writing or syncing a durable table's log failed; the table fails with this error.
    #[error("table {table:?}: writing its log failed: {source}")]
    LogWrite {
        /// The table.
        table: String,
        /// The I/O error.
        source: Arc<std::io::Error>,
    },
    /// The data directory is in use by another engine, in this process or another (see
    /// [`crate::durable`], "One engine per directory").
    #[error(
        "data directory {dir} is in use by process {pid} (lock file {lock_file}): one engine \
         per data directory; stop that process, or delete the lock file if it is gone"
    )]
    DataDirLocked {
        /// The data directory.
        dir: String,
        /// The process that holds it.
        pid: u32,
        /// The lock file.
        lock_file: String,
    },
    /// A Kafka message a source could not turn into rows of its table (not an object of the
    /// schema's columns, not an Arrow IPC batch of its schema). The source counts and
    /// reports it and goes on with the next message; its offset is consumed.
    #[error("table {table:?}: kafka message {topic}/{partition}@{offset} does not fit: {reason}")]
    KafkaBadMessage {
        /// The source's table.
        table: String,
        /// The topic.
        topic: String,
        /// The message's partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// The Kafka client failed: creating a consumer or producer, subscribing, committing,
    /// a broker that cannot be reached.
    #[error("table {table:?}: kafka {operation} failed: {message}")]
    Kafka {
        /// The source's or sink's table.
        table: String,
        /// What was being done: `consumer`, `assign`, `commit`, `produce`, ...
        operation: &'static str,
        /// The client's message.
        message: String,
    },
    /// A Kafka sink lost messages: its bounded buffer overflowed while the broker could not
    /// take them, or the client gave up delivering them. Counted in the sink's stats.
    #[error("table {table:?}: kafka sink to {topic} lost {messages} messages: {reason}")]
    KafkaSinkLoss {
        /// The sink's table.
        table: String,
        /// The topic.
        topic: String,
        /// How many messages (or, after a lag, rows) were lost.
        messages: u64,
        /// Why.
        reason: String,
    },
    /// An Arrow operation failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// An expression (a derived table's predicate) does not parse, does not fit the
    /// schema, or failed on the rows: the message gives the position.
    #[error(transparent)]
    Expr(#[from] crate::expr::ExprError),
    /// An I/O operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A short, stable classification of an [`Error`]: what a program decides on (retry, fix
/// the data, give up) without matching every variant. The same code is given locally and over
/// Flight (the server sends it with its status, so a remote error has the server's code).
///
/// | code | errors | transient |
/// |---|---|---|
/// | `schema` | the data does not fit the table: [`Error::SchemaMismatch`], [`Error::ColumnCount`], [`Error::ColumnName`], [`Error::NullInNonNullable`], [`Error::ValueOutOfRange`], [`Error::NoSuchColumn`], [`Error::NoColumnNamed`], [`Error::MissingKeyColumn`], [`Error::UnsetColumn`], [`Error::UnsupportedType`], [`Error::KafkaBadMessage`] | no |
/// | `invalid_op` | an operation the table's kind does not have: [`Error::InvalidOp`] | no |
/// | `staging_full` | [`Error::StagingFull`] | yes |
/// | `batch_too_large` | [`Error::BatchTooLarge`] | no |
/// | `table_closed` | [`Error::TableClosed`], [`Error::TableFailed`], [`Error::DerivedTable`] | no |
/// | `table_missing` | [`Error::NoSuchTable`] | no |
/// | `table_dropped` | [`Error::TableDropped`] | no |
/// | `table_exists` | [`Error::TableExists`], [`Error::TableConflict`] | no |
/// | `engine_shut_down` | [`Error::EngineShutDown`], [`Error::CyclePanicked`] | no |
/// | `server_stopping` | [`Error::ServerStopping`]: a server draining on SIGTERM, not a failure | yes |
/// | `writer_closed` | [`Error::MultithreadedWriterClosed`] | no |
/// | `invalid_option` | [`Error::InvalidOption`], [`Error::Transaction`] | no |
/// | `callback_panicked` | [`Error::CallbackPanicked`], [`Error::ListenerPanicked`] | no |
/// | `unavailable` | a server that cannot be reached or timed out ([`Error::Remote`]), a Kafka client failure ([`Error::Kafka`]) | yes |
/// | `resource_exhausted` | a server out of room other than staging (too many streams, a call too large), a Kafka sink's full buffer ([`Error::KafkaSinkLoss`]) | yes |
/// | `unauthenticated` | missing or wrong credentials | no |
/// | `protocol` | [`Error::Protocol`] | no |
/// | `io` | [`Error::Io`] | no |
/// | `arrow` | [`Error::Arrow`] | no |
/// | `expr` | [`Error::Expr`] | no |
/// | `other` | anything else | no |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The data does not fit the table's schema.
    Schema,
    /// An operation the table's kind does not have.
    InvalidOp,
    /// Staging is full: retry after a cycle.
    StagingFull,
    /// One write is larger than the staging limit.
    BatchTooLarge,
    /// The table is closed, failed or derived.
    TableClosed,
    /// No such table.
    TableMissing,
    /// The table was dropped.
    TableDropped,
    /// A table of that name exists.
    TableExists,
    /// The engine has shut down.
    EngineShutDown,
    /// The server is shutting down cleanly: reconnect once it is back.
    ServerStopping,
    /// A multithreaded writer takes no more rows.
    WriterClosed,
    /// An option or call sequence that cannot work.
    InvalidOption,
    /// A callback panicked.
    CallbackPanicked,
    /// A server cannot be reached: retry.
    Unavailable,
    /// A server is out of room: retry later.
    ResourceExhausted,
    /// Missing or wrong credentials.
    Unauthenticated,
    /// A peer sent something this side cannot apply.
    Protocol,
    /// An I/O error.
    Io,
    /// An Arrow error.
    Arrow,
    /// An expression that does not parse or fit the schema.
    Expr,
    /// Anything else.
    Other,
}

impl ErrorCode {
    /// Every code, in the order of the table above.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Schema,
        ErrorCode::InvalidOp,
        ErrorCode::StagingFull,
        ErrorCode::BatchTooLarge,
        ErrorCode::TableClosed,
        ErrorCode::TableMissing,
        ErrorCode::TableDropped,
        ErrorCode::TableExists,
        ErrorCode::EngineShutDown,
        ErrorCode::ServerStopping,
        ErrorCode::WriterClosed,
        ErrorCode::InvalidOption,
        ErrorCode::CallbackPanicked,
        ErrorCode::Unavailable,
        ErrorCode::ResourceExhausted,
        ErrorCode::Unauthenticated,
        ErrorCode::Protocol,
        ErrorCode::Io,
        ErrorCode::Arrow,
        ErrorCode::Expr,
        ErrorCode::Other,
    ];

    /// The code as text: `schema`, `staging_full`, ... (see the table above).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Schema => "schema",
            ErrorCode::InvalidOp => "invalid_op",
            ErrorCode::StagingFull => "staging_full",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::TableClosed => "table_closed",
            ErrorCode::TableMissing => "table_missing",
            ErrorCode::TableDropped => "table_dropped",
            ErrorCode::TableExists => "table_exists",
            ErrorCode::EngineShutDown => "engine_shut_down",
            ErrorCode::ServerStopping => "server_stopping",
            ErrorCode::WriterClosed => "writer_closed",
            ErrorCode::InvalidOption => "invalid_option",
            ErrorCode::CallbackPanicked => "callback_panicked",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Protocol => "protocol",
            ErrorCode::Io => "io",
            ErrorCode::Arrow => "arrow",
            ErrorCode::Expr => "expr",
            ErrorCode::Other => "other",
        }
    }

    /// The code spelled `text` by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Whether retrying the same call later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::StagingFull
                | ErrorCode::Unavailable
                | ErrorCode::ResourceExhausted
                | ErrorCode::ServerStopping
        )
    }

    /// The kind of remote failure a server's error of this code is, for a client.
    pub fn remote_kind(self) -> RemoteErrorKind {
        match self {
            ErrorCode::Schema
            | ErrorCode::InvalidOp
            | ErrorCode::BatchTooLarge
            | ErrorCode::InvalidOption
            | ErrorCode::Protocol
            | ErrorCode::Expr => RemoteErrorKind::InvalidArgument,
            ErrorCode::StagingFull | ErrorCode::ResourceExhausted => {
                RemoteErrorKind::ResourceExhausted
            }
            ErrorCode::TableClosed | ErrorCode::EngineShutDown | ErrorCode::WriterClosed => {
                RemoteErrorKind::FailedPrecondition
            }
            ErrorCode::TableMissing | ErrorCode::TableDropped => RemoteErrorKind::NotFound,
            ErrorCode::TableExists => RemoteErrorKind::AlreadyExists,
            ErrorCode::Unavailable | ErrorCode::ServerStopping => RemoteErrorKind::Unavailable,
            ErrorCode::Unauthenticated => RemoteErrorKind::Unauthenticated,
            ErrorCode::CallbackPanicked | ErrorCode::Io | ErrorCode::Arrow | ErrorCode::Other => {
                RemoteErrorKind::Other
            }
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// This error's [`ErrorCode`]: the one classification used by the multithreaded
    /// writer's status, the Flight server's statuses and the Flight client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::SchemaMismatch { .. }
            | Error::ColumnCount { .. }
            | Error::ColumnName { .. }
            | Error::NullInNonNullable { .. }
            | Error::ValueOutOfRange { .. }
            | Error::NoSuchColumn { .. }
            | Error::NoColumnNamed { .. }
            | Error::MissingKeyColumn { .. }
            | Error::UnsetColumn { .. }
            | Error::UnsupportedType { .. }
            | Error::KafkaBadMessage { .. }
            | Error::SchemaChanged { .. }
            | Error::KindChanged { .. } => ErrorCode::Schema,
            Error::InvalidOp { .. } => ErrorCode::InvalidOp,
            Error::StagingFull { .. } => ErrorCode::StagingFull,
            Error::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            Error::TableClosed { .. } | Error::TableFailed { .. } | Error::DerivedTable { .. } => {
                ErrorCode::TableClosed
            }
            Error::NoSuchTable { .. } => ErrorCode::TableMissing,
            Error::TableDropped { .. } => ErrorCode::TableDropped,
            Error::TableExists { .. } | Error::TableConflict { .. } => ErrorCode::TableExists,
            Error::ServerStopping => ErrorCode::ServerStopping,
            Error::EngineShutDown | Error::CyclePanicked { .. } => ErrorCode::EngineShutDown,
            Error::MultithreadedWriterClosed { .. } => ErrorCode::WriterClosed,
            Error::InvalidOption { .. } | Error::Transaction(_) => ErrorCode::InvalidOption,
            Error::CallbackPanicked { .. } | Error::ListenerPanicked { .. } => {
                ErrorCode::CallbackPanicked
            }
            Error::Remote { code, .. } => *code,
            Error::Protocol { .. } => ErrorCode::Protocol,
            Error::Io(_)
            | Error::LogCorrupt { .. }
            | Error::LogWrite { .. }
            | Error::DataDirLocked { .. } => ErrorCode::Io,
            Error::Kafka { .. } => ErrorCode::Unavailable,
            Error::KafkaSinkLoss { .. } => ErrorCode::ResourceExhausted,
            Error::Arrow(_) => ErrorCode::Arrow,
            Error::Expr(_) => ErrorCode::Expr,
        }
    }

    /// Whether retrying the same call later can succeed (a full staging buffer, a server
    /// that cannot be reached or is out of room).
    pub fn is_transient(&self) -> bool {
        self.code().is_transient()
    }
}

/// The kind of a [`Error::Remote`] failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// The server could not be reached, or the call was cut off: transient, retry.
    Unavailable,
    /// The server is out of room (staging full, too many streams): transient, retry later.
    ResourceExhausted,
    /// Missing or wrong credentials: permanent.
    Unauthenticated,
    /// No such table: permanent.
    NotFound,
    /// The data does not fit (schema refused): permanent.
    InvalidArgument,
    /// The table cannot take it now (closed, derived): permanent.
    FailedPrecondition,
    /// What the call would create exists already: permanent.
    AlreadyExists,
    /// Anything else.
    Other,
}

impl RemoteErrorKind {
    /// Whether retrying the same call later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::ResourceExhausted)
    }
}

impl fmt::Display for RemoteErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "unavailable",
            Self::ResourceExhausted => "resource exhausted",
            Self::Unauthenticated => "unauthenticated",
            Self::NotFound => "not found",
            Self::InvalidArgument => "invalid argument",
            Self::FailedPrecondition => "failed precondition",
            Self::AlreadyExists => "already exists",
            Self::Other => "error",
        })
    }
}

/// A misuse of [`RowWriter`](crate::RowWriter) transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionError {
    /// `begin` was called while a transaction was open.
    AlreadyOpen,
    /// `commit` or `rollback` was called with no open transaction.
    NotOpen,
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyOpen => f.write_str("a transaction is already open"),
            Self::NotOpen => f.write_str("no transaction is open"),
        }
    }
}

/// The error of [`TablePublisher::try_add`](crate::TablePublisher::try_add): the batch comes back.
#[derive(Debug)]
#[non_exhaustive]
pub enum TryPublishError<R> {
    /// Staging is full; try again after the next cycle.
    Full(R),
    /// The table is closed or failed, or the engine shut down.
    Closed(R),
    /// The batch does not fit the schema (boxed to keep the `Result` small).
    Invalid(R, Box<Error>),
}

impl<R> TryPublishError<R> {
    /// The value that was not published.
    pub fn into_inner(self) -> R {
        match self {
            Self::Full(r) | Self::Closed(r) | Self::Invalid(r, _) => r,
        }
    }
}

impl<R> fmt::Display for TryPublishError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("staging is full"),
            Self::Closed(_) => f.write_str("the table is closed"),
            Self::Invalid(_, e) => write!(f, "{e}"),
        }
    }
}

impl<R: fmt::Debug> std::error::Error for TryPublishError<R> {}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
