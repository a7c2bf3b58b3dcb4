//! Reading cells: one cell of a batch as a number or a string ([`num_at`], [`text_at`]), the
//! kinds of columns ([`is_numeric`], [`is_time`], [`is_text`]), and cells formatted for the
//! screen with arrow's `ArrayFormatter` ([`format_cell`]).
//!
//! The rows themselves are a `tickertable::Mirror`'s: these helpers read its chunks in place.

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::Array;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;

/// How cells are formatted: times of day to the microsecond, nulls as `·`.
pub(crate) const FORMAT: FormatOptions<'static> = FormatOptions::new()
    .with_display_error(true)
    .with_null("·")
    .with_timestamp_format(Some("%H:%M:%S%.6f"))
    .with_timestamp_tz_format(Some("%H:%M:%S%.6f"));

/// `u64` to `usize`; the viewer only runs where positions of held rows fit.
pub(crate) fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Whether a column can be read as a number (sorting, charts, numeric filters).
pub(crate) fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric()
        || matches!(
            dt,
            DataType::Timestamp(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Duration(_)
        )
}

/// Whether a column holds times of day or dates (numbers, but not ones that rise or fall).
pub(crate) fn is_time(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
    )
}

/// Whether a column holds strings.
pub(crate) fn is_text(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Cell `i` of `array` as a number, if it is a non-null number (times in their unit). No
/// allocation: one downcast per call.
pub(crate) fn num_at(array: &dyn Array, i: usize) -> Option<f64> {
    use arrow_array::types::{
        Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType,
        DurationNanosecondType, DurationSecondType, Float32Type, Float64Type, Int16Type, Int32Type,
        Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
        UInt8Type,
    };
    if i >= array.len() || array.is_null(i) {
        return None;
    }
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(p) = array.as_primitive_opt::<$t>() {
                return Some(p.value(i) as f64);
            }
        )*};
    }
    try_types!(
        Float64Type,
        Int64Type,
        TimestampNanosecondType,
        Int32Type,
        Float32Type,
        UInt64Type,
        UInt32Type,
        Int16Type,
        Int8Type,
        UInt16Type,
        UInt8Type,
        TimestampMicrosecondType,
        TimestampMillisecondType,
        TimestampSecondType,
        Date32Type,
        Date64Type,
        DurationNanosecondType,
        DurationMicrosecondType,
        DurationMillisecondType,
        DurationSecondType
    );
    None
}

/// Cell `i` of `array` as a string, if it is a non-null string.
pub(crate) fn text_at(array: &dyn Array, i: usize) -> Option<&str> {
    if i >= array.len() || array.is_null(i) {
        return None;
    }
    if let Some(s) = array.as_string_opt::<i32>() {
        Some(s.value(i))
    } else if let Some(s) = array.as_string_opt::<i64>() {
        Some(s.value(i))
    } else {
        array.as_string_view_opt().map(|s| s.value(i))
    }
}

/// Writes cell `i` of `array` into `out` (cleared first), formatted by arrow.
pub(crate) fn format_cell(array: &dyn Array, i: usize, out: &mut String) {
    out.clear();
    match ArrayFormatter::try_new(array, &FORMAT) {
        Ok(f) => {
            let _ = write!(out, "{}", f.value(i));
        }
        Err(_) => out.push('?'),
    }
}

/// Whether `hay` contains `needle_lower` (already lowercase), ignoring ASCII case, without
/// allocating.
pub(crate) fn contains_ignore_case(hay: &str, needle_lower: &str) -> bool {
    let n = needle_lower.as_bytes();
    if n.is_empty() {
        return true;
    }
    hay.as_bytes()
        .windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float32Array, Int64Array, StringArray, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn smoke() {
        let prices = Float32Array::from(vec![Some(1.5), None]);
        assert_eq!(num_at(&prices, 0), Some(1.5));
        assert_eq!(num_at(&prices, 1), None, "null");
        assert_eq!(num_at(&prices, 2), None, "past the end");
        let syms = StringArray::from(vec!["AAPL"]);
        assert_eq!(text_at(&syms, 0), Some("AAPL"));
        assert_eq!(num_at(&syms, 0), None);
    }

    #[test]
    fn columns_read_as_numbers_or_text_and_format() {
        let ints = Int64Array::from(vec![7, -2]);
        assert_eq!(num_at(&ints, 1), Some(-2.0));
        let times = TimestampNanosecondArray::from(vec![5]);
        assert!(is_numeric(times.data_type()) && is_time(times.data_type()));
        assert!(!is_time(ints.data_type()));
        assert_eq!(num_at(&times, 0), Some(5.0), "in the column's unit");
        let syms = StringArray::from(vec![Some("MSFT"), None]);
        assert!(is_text(syms.data_type()) && !is_numeric(syms.data_type()));
        assert_eq!((text_at(&syms, 0), text_at(&syms, 1)), (Some("MSFT"), None));
        let mut out = String::new();
        format_cell(&syms, 0, &mut out);
        assert_eq!(out, "MSFT");
        format_cell(&syms, 1, &mut out);
        assert_eq!(out, "·");
        assert!(contains_ignore_case("MSFT", "sf") && !contains_ignore_case("MSFT", "x"));
    }
}
