//! Schemas for CSV loading: parsing `--schema`, inferring one, and converting fields.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tickertable::Value;

/// Parses `Name:type,Name:type`.
pub(crate) fn parse(spec: &str) -> Result<SchemaRef> {
    let mut fields = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, ty) = part
            .split_once(':')
            .with_context(|| format!("schema field {part:?} is not Name:type"))?;
        fields.push(Field::new(name.trim(), data_type(ty.trim())?, true));
    }
    if fields.is_empty() {
        bail!("the schema has no fields");
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn data_type(name: &str) -> Result<DataType> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" | "i8" => DataType::Int8,
        "int16" | "i16" => DataType::Int16,
        "int32" | "i32" => DataType::Int32,
        "int64" | "i64" | "long" => DataType::Int64,
        "uint8" | "u8" => DataType::UInt8,
        "uint16" | "u16" => DataType::UInt16,
        "uint32" | "u32" => DataType::UInt32,
        "uint64" | "u64" => DataType::UInt64,
        "float32" | "f32" | "float" => DataType::Float32,
        "float64" | "f64" | "double" => DataType::Float64,
        "utf8" | "string" | "str" => DataType::Utf8,
        "timestamp_s" => DataType::Timestamp(TimeUnit::Second, None),
        "timestamp_ms" => DataType::Timestamp(TimeUnit::Millisecond, None),
        "timestamp_us" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp_ns" | "timestamp" => DataType::Timestamp(TimeUnit::Nanosecond, None),
        "date32" | "date" => DataType::Date32,
        other => bail!("unknown column type {other:?}"),
    })
}

/// Infers a schema from a header and sample rows: each column is the narrowest of int64,
/// float64, bool and utf8 that every non-empty sample value parses as.
pub(crate) fn infer(header: &[String], samples: &[Vec<String>]) -> SchemaRef {
    let fields = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = samples
                .iter()
                .filter_map(|r| r.get(i))
                .filter(|v| !v.is_empty());
            let (mut int, mut float, mut boolean, mut any) = (true, true, true, false);
            for v in values {
                any = true;
                int &= v.parse::<i64>().is_ok();
                float &= v.parse::<f64>().is_ok();
                boolean &= matches!(v.as_str(), "true" | "false" | "TRUE" | "FALSE");
            }
            let dt = match (any, int, float, boolean) {
                (true, true, ..) => DataType::Int64,
                (true, false, true, _) => DataType::Float64,
                (true, false, false, true) => DataType::Boolean,
                _ => DataType::Utf8,
            };
            Field::new(name.as_str(), dt, true)
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// Converts one CSV field to a value of the column's type; an empty field is null.
///
/// Range and nullability are checked later by the writer, which names the column.
pub(crate) fn value<'a>(field: &'a str, dt: &DataType) -> Result<Value<'a>, String> {
    if field.is_empty() && !matches!(dt, DataType::Utf8 | DataType::LargeUtf8) {
        return Ok(Value::Null);
    }
    let bad = |what: &str| format!("{field:?} is not {what}");
    Ok(match dt {
        DataType::Boolean => match field {
            "true" | "TRUE" | "True" | "1" => Value::Bool(true),
            "false" | "FALSE" | "False" | "0" => Value::Bool(false),
            _ => return Err(bad("a boolean")),
        },
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Value::UInt(field.parse().map_err(|_| bad("an unsigned integer"))?)
        }
        DataType::Float32 | DataType::Float64 => {
            Value::Float(field.parse().map_err(|_| bad("a number"))?)
        }
        DataType::Utf8 | DataType::LargeUtf8 => Value::Str(field),
        dt if dt.is_integer() || dt.is_temporal() => {
            Value::Int(field.parse().map_err(|_| bad("an integer"))?)
        }
        other => return Err(format!("column type {other} cannot be loaded from CSV")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let s = parse("Ts:int64, Sym:utf8,Price:float64").unwrap();
        assert_eq!(s.fields().len(), 3);
        assert_eq!(s.field(2).data_type(), &DataType::Float64);
        assert!(parse("Ts:decimal").is_err());
        assert!(parse("Ts").is_err());
    }

    #[test]
    fn inference_picks_the_narrowest_type_that_fits_every_sample() {
        let header = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let rows = vec![
            ["1", "1.5", "x", "true", ""].map(String::from).to_vec(),
            ["2", "2", "3", "false", ""].map(String::from).to_vec(),
        ];
        let s = infer(&header, &rows);
        let types: Vec<_> = s.fields().iter().map(|f| f.data_type().clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8,
                DataType::Boolean,
                DataType::Utf8
            ]
        );
    }

    #[test]
    fn fields_convert_or_say_why_not() {
        assert_eq!(value("42", &DataType::Int64), Ok(Value::Int(42)));
        assert_eq!(value("", &DataType::Int64), Ok(Value::Null));
        assert_eq!(value("", &DataType::Utf8), Ok(Value::Str("")));
        assert_eq!(
            value("x1", &DataType::Int64),
            Err("\"x1\" is not an integer".into())
        );
    }
}
