//! Column type names, as `ticker-load --schema` and `ticker-serve`'s config spell them.

use arrow_schema::{DataType, TimeUnit};

/// The column type a name stands for: `bool`, `int8`..`int64`, `uint8`..`uint64`, `float32`,
/// `float64`, `utf8`, `timestamp_s|ms|us|ns`, `date32` (and a few aliases), or any type in
/// Arrow's own spelling (`Timestamp(Nanosecond, Some("UTC"))`, `LargeUtf8`).
pub fn data_type(name: &str) -> Option<DataType> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
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
        _ => return name.trim().parse().ok(),
    })
}

/// The `--schema` name of a type (the inverse of [`data_type`]), or Arrow's for other types.
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 => "utf8".into(),
        DataType::Timestamp(TimeUnit::Second, None) => "timestamp_s".into(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => "timestamp_ms".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp_us".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "timestamp_ns".into(),
        DataType::Date32 => "date32".into(),
        other => other.to_string(),
    }
}
