//! Schemas, row values and all schema validation.
//!
//! A table's schema is an Arrow [`SchemaRef`]. Everything that enters a table is checked here
//! first: a [`RecordBatch`] by `check_batch` (column count, names, types, nulls in
//! non-nullable columns) and a row of [`Value`]s by `check_value`. A failed check names the
//! column, the expected and the found type, and nothing of the row or batch is applied.
//!
//! # Value conversions
//!
//! Row values are converted the way a user would expect, and refused when they do not fit:
//!
//! | column type | accepted values |
//! |---|---|
//! | `Boolean` | `Bool` |
//! | `Int8`..`Int64`, `UInt8`..`UInt64` | `Int`, `UInt`, if the value fits the column |
//! | `Float32`, `Float64` | `Float`, `Int`, `UInt` |
//! | `Utf8`, `LargeUtf8` | `Str` |
//! | `Binary`, `LargeBinary` | `Bytes`, `Str` |
//! | `Timestamp`, `Date64`, `Time64`, `Duration` | `Int` (in the column's unit) |
//! | `Date32`, `Time32` | `Int`, if it fits in 32 bits |
//! | any nullable column | `Null` |

use std::fmt;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, Result};

/// One cell of a row written through a [`RowWriter`](crate::RowWriter).
///
/// Borrowed, `Copy` and allocation-free: `write_row(&[Value])` costs no allocation. Build one
/// with `From`: `Value::from(3)`, `"AAPL".into()`, `None::<i64>.into()` for a null.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// A null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer; also timestamps, dates and durations in the column's unit.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// The Arrow type this value has on its own, used in error messages.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Bool(_) => DataType::Boolean,
            Value::Int(_) => DataType::Int64,
            Value::UInt(_) => DataType::UInt64,
            Value::Float(_) => DataType::Float64,
            Value::Str(_) => DataType::Utf8,
            Value::Bytes(_) => DataType::Binary,
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => write!(f, "{} bytes", v.len()),
        }
    }
}

macro_rules! value_from {
    ($variant:ident as $as:ty: $($t:ty),*) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$variant(<$as>::from(v))
            }
        }
    )*};
}
value_from!(Int as i64: i8, i16, i32, i64);
value_from!(UInt as u64: u8, u16, u32, u64);
value_from!(Float as f64: f32, f64);
value_from!(Bool as bool: bool);

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Str(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(v)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// An owned [`Value`]: what a row read back or handed back holds, and what a row built from
/// owned data (a `String` field) is made of. [`as_value`](Self::as_value) borrows it back as a
/// `Value` to write.
///
/// ```
/// use tickertable::{OwnedValue, Value};
///
/// let mut row: Vec<OwnedValue> = vec!["AAPL".into(), 187.5.into()];
/// row[0] = String::from("aaaaa").into(); // fix a field
/// assert_eq!(row[0].as_value(), Value::Str("aaaaa"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum OwnedValue {
    /// A null.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer; also timestamps, dates and durations in the column's unit.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl OwnedValue {
    /// The value, borrowed.
    pub fn as_value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Bool(b) => Value::Bool(*b),
            OwnedValue::Int(i) => Value::Int(*i),
            OwnedValue::UInt(u) => Value::UInt(*u),
            OwnedValue::Float(f) => Value::Float(*f),
            OwnedValue::Str(s) => Value::Str(s),
            OwnedValue::Bytes(b) => Value::Bytes(b),
        }
    }
}

impl fmt::Display for OwnedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_value().fmt(f)
    }
}

impl From<Value<'_>> for OwnedValue {
    fn from(v: Value<'_>) -> Self {
        match v {
            Value::Null => OwnedValue::Null,
            Value::Bool(b) => OwnedValue::Bool(b),
            Value::Int(i) => OwnedValue::Int(i),
            Value::UInt(u) => OwnedValue::UInt(u),
            Value::Float(f) => OwnedValue::Float(f),
            Value::Str(s) => OwnedValue::Str(s.to_owned()),
            Value::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
        }
    }
}

macro_rules! owned_from {
    ($variant:ident as $as:ty: $($t:ty),*) => {$(
        impl From<$t> for OwnedValue {
            fn from(v: $t) -> Self {
                OwnedValue::$variant(<$as>::from(v))
            }
        }
    )*};
}
owned_from!(Int as i64: i8, i16, i32, i64);
owned_from!(UInt as u64: u8, u16, u32, u64);
owned_from!(Float as f64: f32, f64);
owned_from!(Bool as bool: bool);

impl From<String> for OwnedValue {
    fn from(v: String) -> Self {
        OwnedValue::Str(v)
    }
}

impl From<&str> for OwnedValue {
    fn from(v: &str) -> Self {
        OwnedValue::Str(v.to_owned())
    }
}

impl From<Vec<u8>> for OwnedValue {
    fn from(v: Vec<u8>) -> Self {
        OwnedValue::Bytes(v)
    }
}

impl<T: Into<OwnedValue>> From<Option<T>> for OwnedValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(OwnedValue::Null, Into::into)
    }
}

impl<'a> From<&'a OwnedValue> for Value<'a> {
    fn from(v: &'a OwnedValue) -> Self {
        v.as_value()
    }
}

/// Checks that `value` can be stored in column `index` of `schema`.
///
/// # Errors
///
/// [`Error::NullInNonNullable`], [`Error::SchemaMismatch`] or [`Error::ValueOutOfRange`].
pub(crate) fn check_value(
    table: &str,
    schema: &SchemaRef,
    index: usize,
    value: &Value<'_>,
) -> Result<()> {
    let field = schema.field(index);
    let dt = field.data_type();
    let mismatch = || Error::SchemaMismatch {
        table: table.to_owned(),
        column: field.name().clone(),
        expected: dt.clone(),
        found: value.data_type(),
    };
    let out_of_range = || Error::ValueOutOfRange {
        table: table.to_owned(),
        column: field.name().clone(),
        expected: dt.clone(),
        value: value.to_string(),
    };
    match (dt, value) {
        (_, Value::Null) if field.is_nullable() => Ok(()),
        (_, Value::Null) => Err(Error::NullInNonNullable {
            table: table.to_owned(),
            column: field.name().clone(),
        }),
        (DataType::Boolean, Value::Bool(_))
        | (
            DataType::Float32 | DataType::Float64,
            Value::Float(_) | Value::Int(_) | Value::UInt(_),
        )
        | (DataType::Utf8 | DataType::LargeUtf8, Value::Str(_))
        | (DataType::Binary | DataType::LargeBinary, Value::Bytes(_) | Value::Str(_))
        | (
            DataType::Timestamp(..)
            | DataType::Date64
            | DataType::Time64(_)
            | DataType::Duration(_),
            Value::Int(_),
        ) => Ok(()),
        (DataType::Date32 | DataType::Time32(_), Value::Int(v)) => {
            i32::try_from(*v).map(|_| ()).map_err(|_| out_of_range())
        }
        (int, Value::Int(_) | Value::UInt(_)) if int.is_integer() => {
            if int_fits(int, value) {
                Ok(())
            } else {
                Err(out_of_range())
            }
        }
        _ => Err(mismatch()),
    }
}

/// Whether an integer value fits an integer column type.
fn int_fits(dt: &DataType, value: &Value<'_>) -> bool {
    let v: i128 = match value {
        Value::Int(v) => i128::from(*v),
        Value::UInt(v) => i128::from(*v),
        _ => return false,
    };
    let (lo, hi): (i128, i128) = match dt {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        _ => return false,
    };
    (lo..=hi).contains(&v)
}

/// Checks a batch against a table's schema and returns it re-labelled with that schema.
///
/// The returned batch shares every buffer with `batch` (cost O(columns), no copy); it carries
/// the table's `SchemaRef` so every chunk of a table has the same schema and metadata.
///
/// # Errors
///
/// [`Error::ColumnCount`], [`Error::ColumnName`], [`Error::SchemaMismatch`] or
/// [`Error::NullInNonNullable`]; the batch is not changed.
pub(crate) fn check_batch(
    table: &str,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(Error::ColumnCount {
            table: table.to_owned(),
            expected: schema.fields().len(),
            found: batch.num_columns(),
        });
    }
    if std::sync::Arc::ptr_eq(schema, &batch.schema()) {
        return Ok(batch.clone());
    }
    check_fields(table, schema, batch)?;
    for (index, want) in schema.fields().iter().enumerate() {
        if !want.is_nullable() && batch.column(index).null_count() > 0 {
            return Err(Error::NullInNonNullable {
                table: table.to_owned(),
                column: want.name().clone(),
            });
        }
    }
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        batch.columns().to_vec(),
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// Checks that `batch`'s first columns have the names and types of `schema`'s, in order.
///
/// # Errors
///
/// [`Error::ColumnName`] or [`Error::SchemaMismatch`] for the first column that differs.
pub(crate) fn check_fields(table: &str, schema: &SchemaRef, batch: &RecordBatch) -> Result<()> {
    let given = batch.schema_ref();
    for (index, (want, got)) in schema.fields().iter().zip(given.fields()).enumerate() {
        if want.name() != got.name() {
            return Err(Error::ColumnName {
                table: table.to_owned(),
                index,
                expected: want.name().clone(),
                found: got.name().clone(),
            });
        }
        if want.data_type() != got.data_type() {
            return Err(Error::SchemaMismatch {
                table: table.to_owned(),
                column: want.name().clone(),
                expected: want.data_type().clone(),
                found: got.data_type().clone(),
            });
        }
    }
    Ok(())
}

/// The value at row `i` of `array`, for the types row writers support; `None` for others.
///
/// Cost O(1); used to route rows of a batch by a partition column.
pub(crate) fn value_at(array: &dyn arrow_array::Array, i: usize) -> Option<Value<'_>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types as t;
    if array.is_null(i) {
        return Some(Value::Null);
    }
    Some(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Int(array.as_primitive::<t::Int8Type>().value(i).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<t::Int16Type>().value(i).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<t::Int32Type>().value(i).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<t::Int64Type>().value(i)),
        DataType::UInt8 => Value::UInt(array.as_primitive::<t::UInt8Type>().value(i).into()),
        DataType::UInt16 => Value::UInt(array.as_primitive::<t::UInt16Type>().value(i).into()),
        DataType::UInt32 => Value::UInt(array.as_primitive::<t::UInt32Type>().value(i).into()),
        DataType::UInt64 => Value::UInt(array.as_primitive::<t::UInt64Type>().value(i)),
        DataType::Float32 => Value::Float(array.as_primitive::<t::Float32Type>().value(i).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<t::Float64Type>().value(i)),
        DataType::Utf8 => Value::Str(array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Value::Str(array.as_string::<i64>().value(i)),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(i)),
        DataType::Date32 => Value::Int(array.as_primitive::<t::Date32Type>().value(i).into()),
        DataType::Date64 => Value::Int(array.as_primitive::<t::Date64Type>().value(i)),
        DataType::Timestamp(unit, _) => Value::Int(match unit {
            arrow_schema::TimeUnit::Second => {
                array.as_primitive::<t::TimestampSecondType>().value(i)
            }
            arrow_schema::TimeUnit::Millisecond => {
                array.as_primitive::<t::TimestampMillisecondType>().value(i)
            }
            arrow_schema::TimeUnit::Microsecond => {
                array.as_primitive::<t::TimestampMicrosecondType>().value(i)
            }
            arrow_schema::TimeUnit::Nanosecond => {
                array.as_primitive::<t::TimestampNanosecondType>().value(i)
            }
        }),
        DataType::Time32(arrow_schema::TimeUnit::Second) => {
            Value::Int(array.as_primitive::<t::Time32SecondType>().value(i).into())
        }
        DataType::Time32(arrow_schema::TimeUnit::Millisecond) => Value::Int(
            array
                .as_primitive::<t::Time32MillisecondType>()
                .value(i)
                .into(),
        ),
        DataType::Time64(arrow_schema::TimeUnit::Microsecond) => {
            Value::Int(array.as_primitive::<t::Time64MicrosecondType>().value(i))
        }
        DataType::Time64(arrow_schema::TimeUnit::Nanosecond) => {
            Value::Int(array.as_primitive::<t::Time64NanosecondType>().value(i))
        }
        DataType::Duration(unit) => Value::Int(match unit {
            arrow_schema::TimeUnit::Second => {
                array.as_primitive::<t::DurationSecondType>().value(i)
            }
            arrow_schema::TimeUnit::Millisecond => {
                array.as_primitive::<t::DurationMillisecondType>().value(i)
            }
            arrow_schema::TimeUnit::Microsecond => {
                array.as_primitive::<t::DurationMicrosecondType>().value(i)
            }
            arrow_schema::TimeUnit::Nanosecond => {
                array.as_primitive::<t::DurationNanosecondType>().value(i)
            }
        }),
        _ => return None,
    })
}

/// A stable hash of a value, for routing rows by a partition column.
pub(crate) fn hash_value(v: &Value<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match v {
        Value::Null => 0u8.hash(&mut h),
        Value::Bool(b) => b.hash(&mut h),
        // Integers hash by value whatever their Rust type, so `Int(3)` and `UInt(3)` agree.
        Value::Int(i) => i128::from(*i).hash(&mut h),
        Value::UInt(u) => i128::from(*u).hash(&mut h),
        Value::Float(f) => f.to_bits().hash(&mut h),
        Value::Str(s) => s.as_bytes().hash(&mut h),
        Value::Bytes(b) => b.hash(&mut h),
    }
    h.finish()
}

/// An estimate of a row's size in memory, for byte-bounded buffers.
pub(crate) fn row_bytes(row: &[Value<'_>]) -> usize {
    row.iter()
        .map(|v| match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => 8,
            Value::Str(s) => s.len() + 4,
            Value::Bytes(b) => b.len() + 4,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int8, false),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn smoke() {
        let s = schema();
        assert!(check_value("t", &s, 0, &Value::Int(5)).is_ok());
        assert!(check_value("t", &s, 1, &Value::Null).is_ok());
        assert!(check_value("t", &s, 1, &"x".into()).is_ok());
    }

    #[test]
    fn value_out_of_range_names_column_and_value() {
        let err = check_value("t", &schema(), 0, &Value::Int(300)).unwrap_err();
        assert!(matches!(err, Error::ValueOutOfRange { ref column, .. } if column == "a"));
        assert_eq!(
            err.to_string(),
            "table \"t\": column \"a\" of type Int8 cannot hold 300"
        );
    }

    #[test]
    fn wrong_type_names_expected_and_found() {
        let err = check_value("t", &schema(), 0, &Value::Str("x")).unwrap_err();
        match err {
            Error::SchemaMismatch {
                column,
                expected,
                found,
                ..
            } => {
                assert_eq!(column, "a");
                assert_eq!(expected, DataType::Int8);
                assert_eq!(found, DataType::Utf8);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn null_in_non_nullable_is_refused() {
        let err = check_value("t", &schema(), 0, &Value::Null).unwrap_err();
        assert!(matches!(err, Error::NullInNonNullable { .. }));
    }

    #[test]
    fn batch_with_nullable_field_and_nulls_is_refused() {
        let given = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int8, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            given,
            vec![
                Arc::new(arrow_array::Int8Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap();
        let err = check_batch("t", &schema(), &batch).unwrap_err();
        assert!(matches!(err, Error::NullInNonNullable { ref column, .. } if column == "a"));
    }

    #[test]
    fn batch_with_wrong_type_or_count_is_refused() {
        let given = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(given.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        assert!(matches!(
            check_batch("t", &schema(), &batch).unwrap_err(),
            Error::ColumnCount {
                expected: 2,
                found: 1,
                ..
            }
        ));
        let two = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            two,
            vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec!["x"])),
            ],
        )
        .unwrap();
        assert!(matches!(
            check_batch("t", &schema(), &batch).unwrap_err(),
            Error::SchemaMismatch {
                expected: DataType::Int8,
                found: DataType::Int64,
                ..
            }
        ));
    }
}
