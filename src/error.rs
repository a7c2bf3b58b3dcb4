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
    /// The table's staging buffer is full and the call could not wait for a cycle.
    #[error("table {table:?}: staging is full ({staged} rows staged, limit {limit})")]
    StagingFull {
        /// The table.
        table: String,
        /// Rows staged now.
        staged: usize,
        /// The limit.
        limit: usize,
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
    /// An Arrow operation failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// An I/O operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
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
