//! Column builders for row writers: one Arrow builder per column, chosen from the schema.
//!
//! This is arrow's "custom builder" pattern with the column types known at run time: a closed
//! enum of typed builders, so appending a value is one `match` and a push into a growable
//! buffer (amortised O(1), no allocation per row).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, LargeBinaryBuilder, LargeStringBuilder, PrimitiveBuilder,
    StringBuilder,
};
use arrow_array::types::{
    Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
    DurationNanosecondType, DurationSecondType, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field, TimeUnit};

use crate::error::{Error, Result};
use crate::schema::Value;

macro_rules! column_builder {
    ($($variant:ident($builder:ty)),* $(,)?) => {
        /// A builder for one column.
        #[derive(Debug)]
        pub(crate) enum ColumnBuilder {
            $($variant($builder),)*
        }

        impl ColumnBuilder {
            /// The column so far, with buffers shrunk to its length (a chunk keeps no
            /// spare capacity); the builder starts again empty.
            pub(crate) fn finish(&mut self) -> ArrayRef {
                let mut array: ArrayRef = match self {
                    $(ColumnBuilder::$variant(b) => Arc::new(b.finish()),)*
                };
                Array::shrink_to_fit(&mut array);
                array
            }
        }
    };
}

column_builder!(
    Bool(BooleanBuilder),
    I8(PrimitiveBuilder<Int8Type>),
    I16(PrimitiveBuilder<Int16Type>),
    I32(PrimitiveBuilder<Int32Type>),
    I64(PrimitiveBuilder<Int64Type>),
    U8(PrimitiveBuilder<UInt8Type>),
    U16(PrimitiveBuilder<UInt16Type>),
    U32(PrimitiveBuilder<UInt32Type>),
    U64(PrimitiveBuilder<UInt64Type>),
    F32(PrimitiveBuilder<Float32Type>),
    F64(PrimitiveBuilder<Float64Type>),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Binary(BinaryBuilder),
    LargeBinary(LargeBinaryBuilder),
    TsS(PrimitiveBuilder<TimestampSecondType>),
    TsMs(PrimitiveBuilder<TimestampMillisecondType>),
    TsUs(PrimitiveBuilder<TimestampMicrosecondType>),
    TsNs(PrimitiveBuilder<TimestampNanosecondType>),
    Date32(PrimitiveBuilder<Date32Type>),
    Date64(PrimitiveBuilder<Date64Type>),
    Time32S(PrimitiveBuilder<Time32SecondType>),
    Time32Ms(PrimitiveBuilder<Time32MillisecondType>),
    Time64Us(PrimitiveBuilder<Time64MicrosecondType>),
    Time64Ns(PrimitiveBuilder<Time64NanosecondType>),
    DurS(PrimitiveBuilder<DurationSecondType>),
    DurMs(PrimitiveBuilder<DurationMillisecondType>),
    DurUs(PrimitiveBuilder<DurationMicrosecondType>),
    DurNs(PrimitiveBuilder<DurationNanosecondType>),
);

/// Integer conversion after `check_value` proved the value fits.
fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &Value<'_>) -> T {
    let out = match *v {
        Value::Int(i) => T::try_from(i).ok(),
        Value::UInt(u) => T::try_from(u).ok(),
        _ => None,
    };
    out.expect("invariant: check_value accepted an integer that fits the column")
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn float(v: &Value<'_>) -> f64 {
    match *v {
        Value::Float(f) => f,
        Value::Int(i) => i as f64,
        Value::UInt(u) => u as f64,
        _ => unreachable!("invariant: check_value accepted only numbers for a float column"),
    }
}

impl ColumnBuilder {
    /// A builder for `field`'s type, with room for `capacity` rows.
    pub(crate) fn try_new(field: &Field, capacity: usize) -> Result<Self> {
        let dt = field.data_type();
        macro_rules! prim {
            ($variant:ident) => {
                ColumnBuilder::$variant(
                    PrimitiveBuilder::with_capacity(capacity).with_data_type(dt.clone()),
                )
            };
        }
        Ok(match dt {
            DataType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::Int8 => prim!(I8),
            DataType::Int16 => prim!(I16),
            DataType::Int32 => prim!(I32),
            DataType::Int64 => prim!(I64),
            DataType::UInt8 => prim!(U8),
            DataType::UInt16 => prim!(U16),
            DataType::UInt32 => prim!(U32),
            DataType::UInt64 => prim!(U64),
            DataType::Float32 => prim!(F32),
            DataType::Float64 => prim!(F64),
            DataType::Utf8 => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 8))
            }
            DataType::LargeUtf8 => {
                ColumnBuilder::LargeUtf8(LargeStringBuilder::with_capacity(capacity, capacity * 8))
            }
            DataType::Binary => {
                ColumnBuilder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 8))
            }
            DataType::LargeBinary => ColumnBuilder::LargeBinary(LargeBinaryBuilder::with_capacity(
                capacity,
                capacity * 8,
            )),
            DataType::Timestamp(TimeUnit::Second, _) => prim!(TsS),
            DataType::Timestamp(TimeUnit::Millisecond, _) => prim!(TsMs),
            DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TsUs),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => prim!(TsNs),
            DataType::Date32 => prim!(Date32),
            DataType::Date64 => prim!(Date64),
            DataType::Time32(TimeUnit::Second) => prim!(Time32S),
            DataType::Time32(TimeUnit::Millisecond) => prim!(Time32Ms),
            DataType::Time64(TimeUnit::Microsecond) => prim!(Time64Us),
            DataType::Time64(TimeUnit::Nanosecond) => prim!(Time64Ns),
            DataType::Duration(TimeUnit::Second) => prim!(DurS),
            DataType::Duration(TimeUnit::Millisecond) => prim!(DurMs),
            DataType::Duration(TimeUnit::Microsecond) => prim!(DurUs),
            DataType::Duration(TimeUnit::Nanosecond) => prim!(DurNs),
            other => {
                return Err(Error::UnsupportedType {
                    column: field.name().clone(),
                    data_type: other.clone(),
                })
            }
        })
    }

    /// Appends a value that [`check_value`](crate::schema::check_value) accepted for this column.
    #[allow(clippy::cast_possible_truncation)]
    pub(crate) fn append(&mut self, v: &Value<'_>) {
        if matches!(v, Value::Null) {
            self.append_null();
            return;
        }
        match self {
            ColumnBuilder::Bool(b) => match v {
                Value::Bool(x) => b.append_value(*x),
                _ => unreachable!("invariant: checked"),
            },
            ColumnBuilder::I8(b) => b.append_value(int(v)),
            ColumnBuilder::I16(b) => b.append_value(int(v)),
            ColumnBuilder::I32(b) => b.append_value(int(v)),
            ColumnBuilder::I64(b) => b.append_value(int(v)),
            ColumnBuilder::U8(b) => b.append_value(int(v)),
            ColumnBuilder::U16(b) => b.append_value(int(v)),
            ColumnBuilder::U32(b) => b.append_value(int(v)),
            ColumnBuilder::U64(b) => b.append_value(int(v)),
            ColumnBuilder::F32(b) => b.append_value(float(v) as f32),
            ColumnBuilder::F64(b) => b.append_value(float(v)),
            ColumnBuilder::Utf8(b) => b.append_value(str_of(v)),
            ColumnBuilder::LargeUtf8(b) => b.append_value(str_of(v)),
            ColumnBuilder::Binary(b) => b.append_value(bytes_of(v)),
            ColumnBuilder::LargeBinary(b) => b.append_value(bytes_of(v)),
            ColumnBuilder::TsS(b) => b.append_value(int(v)),
            ColumnBuilder::TsMs(b) => b.append_value(int(v)),
            ColumnBuilder::TsUs(b) => b.append_value(int(v)),
            ColumnBuilder::TsNs(b) => b.append_value(int(v)),
            ColumnBuilder::Date32(b) => b.append_value(int(v)),
            ColumnBuilder::Date64(b) => b.append_value(int(v)),
            ColumnBuilder::Time32S(b) => b.append_value(int(v)),
            ColumnBuilder::Time32Ms(b) => b.append_value(int(v)),
            ColumnBuilder::Time64Us(b) => b.append_value(int(v)),
            ColumnBuilder::Time64Ns(b) => b.append_value(int(v)),
            ColumnBuilder::DurS(b) => b.append_value(int(v)),
            ColumnBuilder::DurMs(b) => b.append_value(int(v)),
            ColumnBuilder::DurUs(b) => b.append_value(int(v)),
            ColumnBuilder::DurNs(b) => b.append_value(int(v)),
        }
    }

    fn append_null(&mut self) {
        macro_rules! null {
            ($($variant:ident),*) => {
                match self {
                    $(ColumnBuilder::$variant(b) => b.append_null(),)*
                }
            };
        }
        null!(
            Bool,
            I8,
            I16,
            I32,
            I64,
            U8,
            U16,
            U32,
            U64,
            F32,
            F64,
            Utf8,
            LargeUtf8,
            Binary,
            LargeBinary,
            TsS,
            TsMs,
            TsUs,
            TsNs,
            Date32,
            Date64,
            Time32S,
            Time32Ms,
            Time64Us,
            Time64Ns,
            DurS,
            DurMs,
            DurUs,
            DurNs
        );
    }
}

fn str_of<'a>(v: &Value<'a>) -> &'a str {
    match *v {
        Value::Str(s) => s,
        _ => unreachable!("invariant: check_value accepted only strings for a string column"),
    }
}

fn bytes_of<'a>(v: &Value<'a>) -> &'a [u8] {
    match *v {
        Value::Bytes(b) => b,
        Value::Str(s) => s.as_bytes(),
        _ => unreachable!("invariant: check_value accepted only bytes for a binary column"),
    }
}
