//! Engine errors as Python exceptions.
//!
//! The exception classes live in `tickertable/_errors.py` (plain Python, so they can inherit
//! from both `tickertable.Error` and a builtin such as `ValueError`); this module builds them
//! from [`tickertable::Error`] variants with their fields as attributes.

use arrow_pyarrow::ToPyArrow;
use arrow_schema::DataType;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use tickertable::{Error, ExprError, RemoteErrorKind, TransactionError};

/// The `tickertable._errors` module, imported once.
fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("tickertable._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// A `tickertable` exception of class `class` with `message` and `fields` as attributes.
pub(crate) fn new_error(
    py: Python<'_>,
    class: &str,
    message: &str,
    fields: &[(&str, Py<PyAny>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = module(py)?.getattr(class)?;
        let kwargs = PyDict::new(py);
        for (k, v) in fields {
            kwargs.set_item(k, v)?;
        }
        let exc = cls.call((message,), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A `tickertable.Error` subclass with a message only.
pub(crate) fn simple(py: Python<'_>, class: &str, message: impl AsRef<str>) -> PyErr {
    new_error(py, class, message.as_ref(), &[])
}

/// An Arrow type in pyarrow's spelling (`double`, `string`, `timestamp[ns]`), falling back to
/// arrow-rs's name.
pub(crate) fn type_name(py: Python<'_>, dt: &DataType) -> String {
    dt.to_pyarrow(py)
        .and_then(|t| t.str().map(|s| s.to_string()))
        .unwrap_or_else(|_| dt.to_string())
}

/// A Python object from a Rust value (`None` if the conversion fails, which it does not for
/// the strings and numbers used here).
pub(crate) fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    use pyo3::BoundObject;
    v.into_pyobject(py)
        .map_or_else(|_| py.None(), |b| b.into_any().unbind())
}

/// A `SchemaError`.
pub(crate) fn schema_error(
    py: Python<'_>,
    message: &str,
    table: Option<&str>,
    column: Option<&str>,
    expected: Py<PyAny>,
    found: Py<PyAny>,
) -> PyErr {
    new_error(
        py,
        "SchemaError",
        message,
        &[
            ("table", obj(py, table)),
            ("column", obj(py, column)),
            ("expected", expected),
            ("found", found),
        ],
    )
}

fn remote_kind(kind: RemoteErrorKind) -> &'static str {
    match kind {
        RemoteErrorKind::Unavailable => "unavailable",
        RemoteErrorKind::ResourceExhausted => "resource_exhausted",
        RemoteErrorKind::Unauthenticated => "unauthenticated",
        RemoteErrorKind::NotFound => "not_found",
        RemoteErrorKind::InvalidArgument => "invalid_argument",
        RemoteErrorKind::FailedPrecondition => "failed_precondition",
        RemoteErrorKind::AlreadyExists => "already_exists",
        _ => "other",
    }
}

/// The Python exception of an engine error.
#[allow(clippy::too_many_lines)] // one arm per variant
pub(crate) fn to_py(py: Python<'_>, err: &Error) -> PyErr {
    let msg = err.to_string();
    let o = |v: &str| obj(py, v);
    match err {
        Error::SchemaMismatch {
            table,
            column,
            expected,
            found,
        } => {
            let (e, f) = (type_name(py, expected), type_name(py, found));
            let message = format!("table {table:?}: column {column:?} expects {e}, found {f}");
            schema_error(py, &message, Some(table), Some(column), o(&e), o(&f))
        }
        Error::ColumnCount {
            table,
            expected,
            found,
        } => schema_error(
            py,
            &msg,
            Some(table),
            None,
            obj(py, expected),
            obj(py, found),
        ),
        Error::ColumnName {
            table,
            expected,
            found,
            ..
        } => schema_error(py, &msg, Some(table), Some(expected), o(expected), o(found)),
        Error::NullInNonNullable { table, column } => schema_error(
            py,
            &msg,
            Some(table),
            Some(column),
            o("not null"),
            o("null"),
        ),
        Error::ValueOutOfRange {
            table,
            column,
            expected,
            value,
        } => {
            let e = type_name(py, expected);
            let message =
                format!("table {table:?}: column {column:?} of type {e} cannot hold {value}");
            schema_error(py, &message, Some(table), Some(column), o(&e), o(value))
        }
        Error::NoSuchColumn { table, .. } => {
            schema_error(py, &msg, Some(table), None, py.None(), py.None())
        }
        Error::NoColumnNamed { table, column }
        | Error::MissingKeyColumn { table, column }
        | Error::UnsetColumn { table, column } => {
            schema_error(py, &msg, Some(table), Some(column), py.None(), py.None())
        }
        Error::UnsupportedType { column, data_type } => new_error(
            py,
            "UnsupportedTypeError",
            &msg,
            &[
                ("column", o(column)),
                ("data_type", o(&type_name(py, data_type))),
            ],
        ),
        Error::InvalidOp { table, reason } => new_error(
            py,
            "InvalidOperationError",
            &msg,
            &[("table", o(table)), ("reason", o(reason))],
        ),
        Error::TableClosed { table } | Error::DerivedTable { table } => {
            new_error(py, "TableClosedError", &msg, &[("table", o(table))])
        }
        Error::TableFailed { table, source } => new_error(
            py,
            "TableFailedError",
            &msg,
            &[("table", o(table)), ("cause", o(&source.to_string()))],
        ),
        Error::CallbackPanicked { table, .. } | Error::ListenerPanicked { table, .. } => {
            new_error(py, "CallbackError", &msg, &[("table", o(table))])
        }
        Error::TableDropped { table } => {
            new_error(py, "TableDroppedError", &msg, &[("table", o(table))])
        }
        Error::TableExists { table } => {
            new_error(py, "TableExistsError", &msg, &[("table", o(table))])
        }
        Error::TableConflict {
            table,
            existing,
            requested,
        } => new_error(
            py,
            "TableExistsError",
            &msg,
            &[
                ("table", o(table)),
                ("existing", o(existing)),
                ("requested", o(requested)),
            ],
        ),
        Error::ServerStopping => new_error(
            py,
            "RemoteError",
            &msg,
            &[("kind", o("unavailable")), ("transient", obj(py, true))],
        ),
        Error::SchemaChanged {
            table,
            logged,
            given,
        } => new_error(
            py,
            "SchemaChangedError",
            &msg,
            &[
                ("table", o(table)),
                ("column", py.None()),
                ("expected", o(logged)),
                ("found", o(given)),
                ("logged", o(logged)),
                ("given", o(given)),
            ],
        ),
        Error::KindChanged {
            table,
            logged,
            given,
        } => new_error(
            py,
            "KindChangedError",
            &msg,
            &[
                ("table", o(table)),
                ("logged", o(logged)),
                ("given", o(given)),
            ],
        ),
        Error::DataDirLocked {
            dir,
            pid,
            lock_file,
        } => new_error(
            py,
            "DataDirLockedError",
            &msg,
            &[
                ("dir", o(dir)),
                ("pid", obj(py, pid)),
                ("lock_file", o(lock_file)),
            ],
        ),
        Error::LogCorrupt {
            table,
            file,
            offset,
            reason,
        } => new_error(
            py,
            "LogCorruptError",
            &msg,
            &[
                ("table", o(table)),
                ("file", o(file)),
                ("offset", obj(py, offset)),
                ("reason", o(reason)),
            ],
        ),
        Error::LogWrite { table, source } => new_error(
            py,
            "LogWriteError",
            &msg,
            &[("table", o(table)), ("cause", o(&source.to_string()))],
        ),
        Error::Expr(e) => expr_error(py, e, None),
        Error::NoSuchTable { table } => {
            new_error(py, "NoSuchTableError", &msg, &[("table", o(table))])
        }
        Error::StagingFull {
            table,
            staged,
            limit,
        } => new_error(
            py,
            "StagingFullError",
            &msg,
            &[
                ("table", o(table)),
                ("staged", obj(py, staged)),
                ("limit", obj(py, limit)),
            ],
        ),
        Error::BatchTooLarge { table, rows, limit } => new_error(
            py,
            "StagingFullError",
            &msg,
            &[
                ("table", o(table)),
                ("staged", obj(py, rows)),
                ("limit", obj(py, limit)),
            ],
        ),
        Error::InvalidOption { option, reason } => new_error(
            py,
            "InvalidOptionError",
            &msg,
            &[("option", o(option)), ("reason", o(reason))],
        ),
        Error::Transaction(t) => new_error(
            py,
            "TransactionError",
            &msg,
            &[(
                "already_open",
                obj(py, matches!(t, TransactionError::AlreadyOpen)),
            )],
        ),
        Error::Remote { kind, .. } => new_error(
            py,
            "RemoteError",
            &msg,
            &[
                ("kind", o(remote_kind(*kind))),
                ("transient", obj(py, kind.is_transient())),
            ],
        ),
        Error::Protocol { .. } => simple(py, "ProtocolError", &msg),
        Error::MultithreadedWriterClosed { reason } => {
            new_error(py, "WriterClosedError", &msg, &[("reason", o(reason))])
        }
        Error::EngineShutDown | Error::CyclePanicked { .. } => {
            simple(py, "EngineShutDownError", &msg)
        }
        Error::Arrow(_) => simple(py, "ArrowError", &msg),
        Error::Io(_) => simple(py, "IoError", &msg),
        _ => simple(py, "Error", &msg),
    }
}

/// An `ExpressionError` with the error's position and, when known, the expression's text.
pub(crate) fn expr_error(py: Python<'_>, err: &ExprError, expression: Option<&str>) -> PyErr {
    let message = match expression {
        Some(text) => format!("{err} (in {text:?})"),
        None => err.to_string(),
    };
    new_error(
        py,
        "ExpressionError",
        &message,
        &[
            ("position", obj(py, err.position())),
            ("expression", obj(py, expression)),
        ],
    )
}

/// Converts engine results to Python results.
pub(crate) trait IntoPyResult<T> {
    /// The value, or the engine error as a Python exception.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}
