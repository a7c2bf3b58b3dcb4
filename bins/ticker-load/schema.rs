//! The schema a load uses and the CSV dialect it reads: `--schema` parsed, or a schema
//! inferred by arrow-csv, and the null markers.
//!
//! Nothing here touches an engine or a server: [`choose`] builds the schema from the
//! arguments and the first file alone, so an embedded load creates its table with it, and a
//! later `--create` can send the same schema to a server.

use std::fmt;
use std::fs::File;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::types::Float64Type;
use arrow_cast::parse::Parser;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use regex::Regex;

/// The default null markers: what pandas and `DuckDB` users expect to load as missing.
pub(crate) const DEFAULT_NULLS: [&str; 6] = ["", "NA", "N/A", "NULL", "null", "NaN"];

/// How the files are written: header, delimiter, quoting, and which values are nulls.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    /// The first line of each file names the columns.
    pub(crate) header: bool,
    /// The field delimiter.
    pub(crate) delimiter: u8,
    /// The quote character (`"`; a doubled quote inside quotes is a quote).
    pub(crate) quote: u8,
    /// Quoted fields may hold line breaks.
    pub(crate) newlines_in_values: bool,
    /// The values that load as nulls.
    pub(crate) nulls: NullMarkers,
}

/// The values that load as nulls: exact matches of a whole field, after unquoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NullMarkers {
    markers: Vec<String>,
}

impl Default for NullMarkers {
    fn default() -> Self {
        Self {
            markers: DEFAULT_NULLS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}

impl NullMarkers {
    /// `--null-values`: a comma-separated list replacing the default; `None` is the default.
    pub(crate) fn parse(list: Option<&str>) -> Self {
        match list {
            None => Self::default(),
            Some(list) => {
                let mut markers: Vec<String> = Vec::new();
                for m in list.split(',') {
                    if !markers.iter().any(|k| k == m) {
                        markers.push(m.to_owned());
                    }
                }
                Self { markers }
            }
        }
    }

    /// The markers, in the order given.
    pub(crate) fn markers(&self) -> &[String] {
        &self.markers
    }

    /// Whether `marker` is a float literal arrow parses (`NaN`, `inf`): in a float column it
    /// is a value, not a null.
    fn is_float_literal(marker: &str) -> bool {
        Float64Type::parse(marker).is_some()
    }

    /// The regex arrow-csv matches each field against, for float columns or the others;
    /// `None` when the empty field is the only marker (arrow-csv's own default, the fastest).
    pub(crate) fn regex(&self, floats: bool) -> Result<Option<Regex>> {
        let markers: Vec<&str> = self
            .markers
            .iter()
            .map(String::as_str)
            .filter(|m| !(floats && Self::is_float_literal(m)))
            .collect();
        if markers == [""] {
            return Ok(None);
        }
        let pattern = if markers.is_empty() {
            // Only float literals were given and this is for a float column: nothing is null.
            r"[^\s\S]".to_owned()
        } else {
            let alternatives: Vec<String> = markers.iter().map(|m| regex::escape(m)).collect();
            format!("^(?:{})$", alternatives.join("|"))
        };
        Ok(Some(Regex::new(&pattern).with_context(|| {
            format!("the null markers {:?} make no regex", self.markers)
        })?))
    }

    /// Whether the markers differ between float columns and the others (a float literal is
    /// among them), so float columns need a second look.
    pub(crate) fn float_columns_differ(&self) -> bool {
        self.markers.iter().any(|m| Self::is_float_literal(m))
    }

    /// Whether `value` is a marker in a column of type `dt`.
    pub(crate) fn is_null(&self, value: &str, dt: &DataType) -> bool {
        self.markers
            .iter()
            .any(|m| m == value && !(is_float(dt) && Self::is_float_literal(m)))
    }
}

impl fmt::Display for NullMarkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted: Vec<String> = self.markers.iter().map(|m| format!("{m:?}")).collect();
        f.write_str(&quoted.join(", "))
    }
}

/// Whether a column of this type is a float column (where `NaN` is a value).
pub(crate) fn is_float(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}

/// Where the schema of a load came from, for the summary.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// `--schema`.
    Given,
    /// Inferred by arrow-csv from these data lines of this file (`records` records).
    Inferred {
        file: PathBuf,
        lines: Option<RangeInclusive<u64>>,
        records: usize,
    },
    /// The served table's.
    Server,
}

/// A schema and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    pub(crate) schema: SchemaRef,
    pub(crate) origin: Origin,
}

/// The schema of a new table: `--schema`, or inferred from the first `infer_lines` data lines
/// of `first`. Every column is nullable.
///
/// # Errors
///
/// A malformed `--schema`, or a first file that cannot be read or is empty.
pub(crate) fn choose(
    spec: &str,
    first: &Path,
    dialect: &Dialect,
    infer_lines: u64,
) -> Result<Chosen> {
    if spec != "infer" {
        return Ok(Chosen {
            schema: parse(spec)?,
            origin: Origin::Given,
        });
    }
    infer(first, dialect, infer_lines)
}

/// Parses `Name:type,Name:type`; every column is nullable.
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
    tickertable_tools::types::data_type(name)
        .with_context(|| format!("unknown column type {name:?}"))
}

/// The `--schema` name of a type (the inverse of [`parse`]), or Arrow's for other types.
pub(crate) fn type_name(dt: &DataType) -> String {
    tickertable_tools::types::type_name(dt)
}

/// The schema as `--schema` takes it: `Ts:int64,Sym:utf8`.
pub(crate) fn spec(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), type_name(f.data_type())))
        .collect();
    fields.join(",")
}

/// A CSV reader of `path` in this dialect (flexible: records may have any field count).
pub(crate) fn csv_reader(path: &Path, dialect: &Dialect) -> Result<csv::Reader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(dialect.header)
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .flexible(true)
        .from_reader(file))
}

/// The arrow-csv format of a dialect, for float columns or the others, without a header
/// (ranges never start with one).
pub(crate) fn format(dialect: &Dialect, floats: bool) -> Result<arrow_csv::reader::Format> {
    let mut format = arrow_csv::reader::Format::default()
        .with_header(false)
        .with_delimiter(dialect.delimiter)
        .with_quote(dialect.quote);
    if let Some(regex) = dialect.nulls.regex(floats)? {
        format = format.with_null_regex(regex);
    }
    Ok(format)
}

/// Infers a schema with arrow-csv from the first `lines` data lines of `path`: each column
/// is the narrowest of bool, int64, float64, date32, timestamps and utf8 that all its
/// non-null values fit. A column of nothing but nulls is utf8. Every column is nullable.
///
/// # Errors
///
/// The file cannot be opened or read, or has no line at all.
pub(crate) fn infer(path: &Path, dialect: &Dialect, lines: u64) -> Result<Chosen> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let format = format(dialect, false)?
        .with_header(dialect.header)
        // A bad line among the first ones must not stop the inference: it is reported when
        // loaded.
        .with_truncated_rows(true);
    let max = usize::try_from(lines).unwrap_or(usize::MAX);
    let (schema, records) = format
        .infer_schema(std::io::BufReader::new(file), Some(max))
        .with_context(|| format!("inferring a schema from {}", path.display()))?;
    if schema.fields().is_empty() {
        bail!("{} is empty: cannot infer a schema", path.display());
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if dialect.header {
                f.name().clone()
            } else {
                format!("c{i}")
            };
            let dt = match f.data_type() {
                DataType::Null => DataType::Utf8,
                dt => dt.clone(),
            };
            Field::new(name, dt, true)
        })
        .collect();
    Ok(Chosen {
        schema: Arc::new(Schema::new(fields)),
        origin: Origin::Inferred {
            file: path.to_owned(),
            lines: record_lines(path, dialect, records)?,
            records,
        },
    })
}

/// The line numbers of the first and of the `records`-th data record of `path`.
fn record_lines(
    path: &Path,
    dialect: &Dialect,
    records: usize,
) -> Result<Option<RangeInclusive<u64>>> {
    let mut reader = csv_reader(path, dialect)?;
    let mut record = csv::StringRecord::new();
    let (mut first, mut last) = (None, None);
    for _ in 0..records {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                first.get_or_insert(line);
                last = Some(line);
            }
            Ok(false) | Err(_) => break,
        }
    }
    Ok(first.zip(last).map(|(a, b)| a..=b))
}

/// For each column of `schema`, whether it is a temporal column whose values in the first
/// lines of `path` are integers (epoch counts in the column's unit) rather than text that
/// arrow-csv parses as dates and times. Decided once per load, from the first non-null value.
pub(crate) fn integer_temporals(
    path: &Path,
    dialect: &Dialect,
    schema: &Schema,
) -> Result<Vec<bool>> {
    let temporal: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_temporal())
        .collect();
    let mut out = vec![false; temporal.len()];
    if !temporal.contains(&true) {
        return Ok(out);
    }
    let mut decided = vec![false; temporal.len()];
    let mut reader = csv_reader(path, dialect)?;
    for record in reader.records().take(100) {
        let Ok(record) = record else { continue };
        for (i, f) in schema.fields().iter().enumerate() {
            let Some(value) = record.get(i) else { continue };
            if !temporal[i] || decided[i] || dialect.nulls.is_null(value, f.data_type()) {
                continue;
            }
            decided[i] = true;
            out[i] = value.trim().parse::<i64>().is_ok();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let s = parse("Ts:int64, Sym:utf8,Price:float64").unwrap();
        assert_eq!(s.fields().len(), 3);
        assert_eq!(s.field(2).data_type(), &DataType::Float64);
        assert!(s.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(spec(&s), "Ts:int64,Sym:utf8,Price:float64");
        assert!(parse("Ts:decimal").is_err());
        assert!(parse("Ts").is_err());
    }

    #[test]
    fn null_markers_replace_the_default_and_spare_nan_in_float_columns() {
        let default = NullMarkers::parse(None);
        assert_eq!(default.markers(), DEFAULT_NULLS);
        assert!(default.is_null("NaN", &DataType::Int64));
        assert!(!default.is_null("NaN", &DataType::Float64));
        assert!(default.is_null("", &DataType::Utf8));
        let all = default.regex(false).unwrap().unwrap();
        let floats = default.regex(true).unwrap().unwrap();
        for m in DEFAULT_NULLS {
            assert!(all.is_match(m), "{m:?}");
        }
        assert!(!all.is_match("NAN") && !all.is_match("xNA") && !all.is_match("NA "));
        assert!(!floats.is_match("NaN") && floats.is_match("NA"));
        assert!(default.float_columns_differ());

        let custom = NullMarkers::parse(Some("-,n.a."));
        assert_eq!(custom.markers(), ["-", "n.a."]);
        let re = custom.regex(false).unwrap().unwrap();
        assert!(re.is_match("n.a.") && !re.is_match("nxa.") && !re.is_match(""));
        assert!(!custom.float_columns_differ());
        assert!(NullMarkers::parse(Some("")).regex(false).unwrap().is_none());
        let nan = NullMarkers::parse(Some("NaN"))
            .regex(true)
            .unwrap()
            .unwrap();
        assert!(!nan.is_match("") && !nan.is_match("NaN"));
    }

    #[test]
    fn type_names_round_trip() {
        let s = parse("a:bool,b:uint16,c:timestamp_ms,d:date32,e:float32").unwrap();
        assert_eq!(parse(&spec(&s)).unwrap(), s);
    }
}
