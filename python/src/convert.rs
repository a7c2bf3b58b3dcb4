//! Conversions between Python values and the engine's: row values, schemas, batches, kinds.
//!
//! # Row values
//!
//! [`RowConverter::convert`] turns a row of Python objects into [`Value`]s that borrow from
//! them: no allocation per row for up to [`INLINE`] columns, and a `str` is borrowed as UTF-8
//! (CPython caches it in the object; the limited API has the call from 3.10). Exact
//! `float`, `int`, `str`, `None`, `bool` and `bytes` take the fast path; numpy scalars,
//! `datetime`/`date`/`timedelta`/`numpy.datetime64`/`pandas.Timestamp` (for temporal columns,
//! through pyarrow) and anything with `__index__` or `__float__` take a slower one. Anything
//! else is a `SchemaError` naming the column, the expected Arrow type and the Python type.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, ToPyArrow};
use arrow_schema::{DataType, Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyModule, PyString, PyTuple};
use smallvec::SmallVec;
use tickertable::{TableKind, Value};

use crate::errors::{obj, schema_error, simple, type_name};

/// Columns converted on the stack; wider rows use the heap.
pub(crate) const INLINE: usize = 16;

/// A row of Python objects, held while their values are borrowed.
pub(crate) type Objects<'py> = SmallVec<[Bound<'py, PyAny>; INLINE]>;
/// A row of values borrowed from [`Objects`].
pub(crate) type Values<'a> = SmallVec<[Value<'a>; INLINE]>;

/// The `tickertable._convert` helper module, imported once.
pub(crate) fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("tickertable._convert")?.unbind()))
        .map(|m| m.bind(py))
}

/// Converts rows of Python objects for one table's schema.
#[derive(Debug, Clone)]
pub(crate) struct RowConverter {
    pub(crate) table: Arc<str>,
    pub(crate) schema: SchemaRef,
}

impl RowConverter {
    pub(crate) fn new(table: &str, schema: SchemaRef) -> Self {
        Self {
            table: Arc::from(table),
            schema,
        }
    }

    /// The objects of a tuple, kept alive while their values are borrowed.
    pub(crate) fn objects<'py>(row: &Bound<'py, PyTuple>) -> Objects<'py> {
        row.iter().collect()
    }

    /// The objects of any sequence (a tuple or a list).
    pub(crate) fn objects_of<'py>(row: &Bound<'py, PyAny>) -> PyResult<Objects<'py>> {
        if let Ok(t) = row.cast::<PyTuple>() {
            return Ok(t.iter().collect());
        }
        row.try_iter()?.collect()
    }

    /// One value per column (the count is checked by the engine, which names the table).
    pub(crate) fn convert<'a>(&self, objects: &'a [Bound<'_, PyAny>]) -> PyResult<Values<'a>> {
        let mut values = Values::new();
        for (i, o) in objects.iter().enumerate() {
            values.push(self.value(i, o)?);
        }
        Ok(values)
    }

    /// The values of the key columns `key` (indices), from one object per key column.
    pub(crate) fn convert_key<'a>(
        &self,
        key: &[usize],
        objects: &'a [Bound<'_, PyAny>],
    ) -> PyResult<Values<'a>> {
        let mut values = Values::new();
        for (&c, o) in key.iter().zip(objects) {
            values.push(self.value(c, o)?);
        }
        Ok(values)
    }

    /// One value for column `col` (`col` may be past the schema's end: the row is too long,
    /// and the engine reports the count).
    #[inline]
    pub(crate) fn value<'a>(&self, col: usize, o: &'a Bound<'_, PyAny>) -> PyResult<Value<'a>> {
        if let Ok(f) = o.cast_exact::<PyFloat>() {
            return Ok(Value::Float(f.value()));
        }
        if let Ok(i) = o.cast_exact::<PyInt>() {
            return self.int(col, i);
        }
        if let Ok(s) = o.cast_exact::<PyString>() {
            return Ok(Value::Str(s.to_str()?));
        }
        if o.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = o.cast_exact::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if let Ok(b) = o.cast::<PyBytes>() {
            return Ok(Value::Bytes(b.as_bytes()));
        }
        self.slow_value(col, o)
    }

    fn int(&self, col: usize, i: &Bound<'_, PyInt>) -> PyResult<Value<'static>> {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Value::Int(v));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Value::UInt(v));
        }
        let py = i.py();
        let found = i.str()?.to_string();
        Err(self.mismatch(py, col, &found, "an integer that does not fit 64 bits"))
    }

    fn data_type(&self, col: usize) -> Option<&DataType> {
        self.schema.fields().get(col).map(|f| f.data_type())
    }

    /// Subclasses, numpy scalars, temporal objects and number protocols.
    fn slow_value<'a>(&self, col: usize, o: &'a Bound<'_, PyAny>) -> PyResult<Value<'a>> {
        let py = o.py();
        let dt = self.data_type(col).cloned();
        let temporal = dt.as_ref().is_some_and(DataType::is_temporal);
        if let Ok(s) = o.cast::<PyString>() {
            return Ok(Value::Str(s.to_str()?));
        }
        if let Ok(b) = o.cast::<PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        let type_name_of = o.get_type().name()?.to_string();
        if matches!(dt, Some(DataType::Boolean))
            && matches!(type_name_of.as_str(), "bool" | "bool_")
        {
            return Ok(Value::Bool(o.is_truthy()?));
        }
        if temporal && !o.is_instance_of::<PyInt>() {
            // datetime, date, time, timedelta, numpy.datetime64, pandas.Timestamp, ...: pyarrow
            // knows every unit and time zone rule; this path is for convenience, not speed.
            let dt = dt
                .as_ref()
                .expect("invariant: temporal implies a column type");
            let as_int = helpers(py)?
                .getattr("temporal_value")?
                .call1((o, dt.to_pyarrow(py)?));
            return match as_int {
                Ok(v) => Ok(Value::Int(v.extract::<i64>()?)),
                Err(_) => Err(self.mismatch(py, col, &type_name_of, "")),
            };
        }
        if let Ok(i) = o.cast::<PyInt>() {
            return self.int(col, i);
        }
        if let Ok(f) = o.cast::<PyFloat>() {
            return Ok(Value::Float(f.value()));
        }
        if o.hasattr("__index__")? {
            if let Ok(i) = o.call_method0("__index__") {
                if let Ok(i) = i.cast::<PyInt>() {
                    return self.int(col, i);
                }
            }
        }
        if o.hasattr("__float__")? {
            if let Ok(v) = o.extract::<f64>() {
                return Ok(Value::Float(v));
            }
        }
        Err(self.mismatch(py, col, &type_name_of, ""))
    }

    /// A `SchemaError` for a Python value with no fitting Arrow value.
    pub(crate) fn mismatch(&self, py: Python<'_>, col: usize, found: &str, why: &str) -> PyErr {
        let Some(field) = self.schema.fields().get(col) else {
            return simple(
                py,
                "SchemaError",
                format!("column {col} is past the schema"),
            );
        };
        let expected = type_name(py, field.data_type());
        let mut message = format!(
            "table {:?}: column {:?} expects {expected}, found {found}",
            &*self.table,
            field.name()
        );
        if !why.is_empty() {
            message.push_str(" (");
            message.push_str(why);
            message.push(')');
        }
        schema_error(
            py,
            &message,
            Some(&self.table),
            Some(field.name()),
            obj(py, expected.as_str()),
            obj(py, found),
        )
    }
}

/// A schema from `col_defs`: a `pyarrow.Schema`, or a dict of names to pyarrow types (or
/// fields, or type names such as `"int64"`).
pub(crate) fn schema_of(col_defs: &Bound<'_, PyAny>) -> PyResult<SchemaRef> {
    let py = col_defs.py();
    let schema = helpers(py)?.getattr("schema_of")?.call1((col_defs,))?;
    Ok(Arc::new(Schema::from_pyarrow_bound(&schema)?))
}

/// A batch for `schema` from a `pyarrow.RecordBatch` (as is: no copy), a `pyarrow.Table`, a
/// dict of columns (or of one row's scalars), a pandas `DataFrame`, a tuple (one row), or any
/// object with `__arrow_c_array__` / `__arrow_c_stream__`.
pub(crate) fn batch_of(
    data: &Bound<'_, PyAny>,
    table: &str,
    schema: &SchemaRef,
    columns: Option<&[String]>,
) -> PyResult<RecordBatch> {
    let py = data.py();
    if let Ok(b) = RecordBatch::from_pyarrow_bound(data) {
        return Ok(b);
    }
    let batch =
        helpers(py)?
            .getattr("to_batch")?
            .call1((data, table, schema.to_pyarrow(py)?, columns))?;
    RecordBatch::from_pyarrow_bound(&batch)
}

/// Exports batches as one `pyarrow.Table`, through one Arrow C stream (no copy).
pub(crate) fn to_pyarrow_table(
    py: Python<'_>,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> PyResult<Py<PyAny>> {
    let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
        batches.into_iter().map(Ok),
        schema.clone(),
    ));
    let reader = reader.into_pyarrow(py)?;
    Ok(reader.call_method0("read_all")?.unbind())
}

/// A table kind from its Python spelling: `kind` in `"append"`, `"blink"`, `"ring"`, `"keyed"`
/// (`capacity` for a ring, optional for keyed); key columns make a table keyed.
pub(crate) fn kind_of(
    py: Python<'_>,
    kind: Option<&str>,
    capacity: Option<usize>,
    key: &[String],
    default: TableKind,
) -> PyResult<TableKind> {
    let bad = |reason: String| {
        crate::errors::new_error(
            py,
            "InvalidOptionError",
            &format!("invalid kind: {reason}"),
            &[
                ("option", obj(py, "kind")),
                ("reason", obj(py, reason.as_str())),
            ],
        )
    };
    let kind = match (kind, key.is_empty()) {
        (None, true) => match (default, capacity) {
            (TableKind::Ring { .. }, Some(c)) => TableKind::Ring { capacity: c },
            (d, None) => d,
            (d, Some(_)) => {
                return Err(bad(format!(
                    "a capacity needs kind=\"ring\" or \"keyed\", not {d}"
                )))
            }
        },
        (None | Some("keyed"), false) | (Some("keyed"), true) => TableKind::Keyed { capacity },
        (Some("append"), true) if capacity.is_none() => TableKind::Append,
        (Some("blink"), true) if capacity.is_none() => TableKind::Blink,
        (Some("ring"), true) => match capacity {
            Some(c) => TableKind::Ring { capacity: c },
            None => return Err(bad("kind=\"ring\" needs a capacity".into())),
        },
        (Some(k @ ("append" | "blink" | "ring")), false) => {
            return Err(bad(format!("key columns need kind=\"keyed\", not {k:?}")))
        }
        (Some(k @ ("append" | "blink")), true) => {
            return Err(bad(format!("kind={k:?} takes no capacity")))
        }
        (Some(other), _) => {
            return Err(bad(format!(
                "{other:?} is not one of \"append\", \"blink\", \"ring\", \"keyed\""
            )))
        }
    };
    Ok(kind)
}

/// A kind's name for Python (`"ring"`), without its capacity.
pub(crate) fn kind_name(kind: TableKind) -> &'static str {
    match kind {
        TableKind::Append => "append",
        TableKind::Blink => "blink",
        TableKind::Ring { .. } => "ring",
        TableKind::Keyed { .. } => "keyed",
        _ => "other",
    }
}

/// Key names as a list, from a string or a sequence of strings.
pub(crate) fn key_names(key: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match key {
        None => Ok(Vec::new()),
        Some(k) if k.is_none() => Ok(Vec::new()),
        Some(k) => {
            if let Ok(s) = k.extract::<String>() {
                Ok(vec![s])
            } else {
                k.extract::<Vec<String>>()
            }
        }
    }
}

/// A duration from seconds (an `int` or a `float`) or a `datetime.timedelta` (a
/// `pandas.Timedelta` keeps its nanoseconds); `what` names the option in errors.
pub(crate) fn duration_of(v: &Bound<'_, PyAny>, what: &str) -> PyResult<std::time::Duration> {
    use std::time::Duration;
    let py = v.py();
    let bad = |found: String| {
        crate::errors::new_error(
            py,
            "InvalidOptionError",
            &format!("invalid {what}: {found} is not a number of seconds >= 0 or a timedelta"),
            &[
                ("option", obj(py, what)),
                ("reason", obj(py, found.as_str())),
            ],
        )
    };
    if v.hasattr("days")? && v.hasattr("microseconds")? {
        let days: i64 = v.getattr("days")?.extract()?;
        let secs: i64 = v.getattr("seconds")?.extract()?;
        let micros: i64 = v.getattr("microseconds")?.extract()?;
        let nanos: i64 = match v.getattr("nanoseconds") {
            Ok(n) => n.extract().unwrap_or(0),
            Err(_) => 0,
        };
        let total = i128::from(days) * 86_400_000_000_000
            + i128::from(secs) * 1_000_000_000
            + i128::from(micros) * 1_000
            + i128::from(nanos);
        return u64::try_from(total)
            .map(Duration::from_nanos)
            .map_err(|_| bad(v.str().map_or_else(|_| "?".into(), |s| s.to_string())));
    }
    if let Ok(n) = v.cast::<PyInt>() {
        return n
            .extract::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| bad(n.to_string()));
    }
    let f: f64 = v.extract().map_err(|_| {
        bad(v
            .get_type()
            .name()
            .map_or_else(|_| "?".into(), |n| n.to_string()))
    })?;
    Duration::try_from_secs_f64(f).map_err(|_| bad(f.to_string()))
}

/// A value of a column of type `dt` as Python: numbers, strings, bytes and booleans
/// directly, other types (timestamps, dates, decimals, ...) through pyarrow, so they come
/// back as `datetime` and the like.
pub(crate) fn value_to_py(
    py: Python<'_>,
    dt: &DataType,
    v: tickertable::OwnedValue,
) -> PyResult<Py<PyAny>> {
    use tickertable::OwnedValue as V;
    let direct = matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    );
    let value = match v {
        V::Bool(b) => obj(py, b),
        V::Int(i) => obj(py, i),
        V::UInt(u) => obj(py, u),
        V::Float(f) => obj(py, f),
        V::Str(s) => obj(py, s),
        V::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        // Null, and any value kind newer than this function.
        _ => return Ok(py.None()),
    };
    if direct {
        return Ok(value);
    }
    Ok(helpers(py)?
        .getattr("value_as_py")?
        .call1((value, dt.to_pyarrow(py)?))?
        .unbind())
}
