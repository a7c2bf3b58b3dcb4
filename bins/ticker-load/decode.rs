//! Parsing a range of CSV records into Arrow batches with arrow-csv, and finding the bad
//! lines of a range that does not parse.
//!
//! # Fast path and bad lines
//!
//! A range is parsed whole by an arrow-csv [`Decoder`] into
//! batches of at most `--batch` rows. arrow-csv fails a whole batch for one bad line (a wrong
//! field count, a value that does not parse, a null in a column the table says is not
//! nullable), so a range that fails is parsed again in halves, and halves of halves, down to
//! single lines: the good lines load, in order, and each bad line is reported with the reason
//! found by parsing its fields one column at a time. A range with `k` bad lines among `n`
//! costs about `k * log2(n)` extra parses of shrinking parts; a clean range costs one.
//!
//! # Nulls
//!
//! A field equal to a null marker (after unquoting) is a null: arrow-csv matches each field
//! against one regex made of the markers. In float columns the markers that are float literals
//! (`NaN` among the defaults) are values instead; as arrow-csv has one regex for every column,
//! a batch whose float columns got nulls has those columns parsed again with the float
//! markers. Matching a regex against every field costs, so a range is first scanned for the
//! markers (with the line breaks it counts anyway): a range where no marker but the empty
//! field can occur is parsed without the regex, the empty field being arrow-csv's own null.
//!
//! # Dates and times
//!
//! A temporal column holds text arrow-csv parses (`2024-05-01`, `2024-05-01T09:30:00.5`) or,
//! when the first value of the first file is an integer, integers in the column's unit (epoch
//! nanoseconds for `timestamp_ns`, days for `date32`), parsed as integers and cast.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_csv::reader::{Decoder, Format};
use arrow_csv::ReaderBuilder;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::schema::{self, is_float, type_name, Dialect, NullMarkers};
use crate::split::count_newlines;

/// How every range of a load is parsed: the schemas, the null markers, the batch size.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The schema of the batches published: the table's.
    target: SchemaRef,
    /// The schema arrow-csv parses into: the target's, every column nullable, and integer
    /// temporal columns as integers.
    parse: SchemaRef,
    /// The type to cast each parsed column to, where it differs.
    casts: Vec<Option<DataType>>,
    /// Float columns parsed again when they got nulls (empty when the markers are the same
    /// for every column).
    floats: Vec<usize>,
    /// The format of every column but the floats.
    format: Format,
    /// The format of float columns.
    float_format: Format,
    /// The format without a null regex, and the scan that says when a range may use it.
    plain: Option<(Format, Prefilter)>,
    nulls: NullMarkers,
    delimiter: u8,
    quote: u8,
    newlines_in_values: bool,
    batch_rows: usize,
}

/// A line that was not loaded: where in its range, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// Line breaks between the range's start and the line's start.
    pub(crate) offset: u64,
    pub(crate) message: String,
}

/// What a range gave.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The good lines, in order.
    pub(crate) batches: Vec<RecordBatch>,
    /// Rows in `batches`.
    pub(crate) rows: u64,
    /// Bad lines, all counted.
    pub(crate) bad_lines: u64,
    /// The first bad lines, with why.
    pub(crate) bad: Vec<BadLine>,
    /// Line breaks in the range.
    pub(crate) newlines: u64,
}

impl Plan {
    /// A plan producing batches of `target`; `integer_temporals` says which temporal columns
    /// hold integers (see [`schema::integer_temporals`]).
    ///
    /// # Errors
    ///
    /// If the null markers make no regex.
    pub(crate) fn new(
        target: SchemaRef,
        integer_temporals: &[bool],
        dialect: &Dialect,
        batch_rows: usize,
    ) -> anyhow::Result<Self> {
        let mut casts = Vec::new();
        let fields: Vec<Field> = target
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let dt = f.data_type();
                let parse_as = if integer_temporals.get(i).copied().unwrap_or(false) {
                    Some(match dt {
                        DataType::Date32 | DataType::Time32(_) => DataType::Int32,
                        _ => DataType::Int64,
                    })
                } else {
                    None
                };
                casts.push(parse_as.as_ref().map(|_| dt.clone()));
                Field::new(f.name(), parse_as.unwrap_or_else(|| dt.clone()), true)
            })
            .collect();
        let floats = if dialect.nulls.float_columns_differ() {
            (0..fields.len())
                .filter(|&i| is_float(fields[i].data_type()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            target,
            parse: Arc::new(Schema::new(fields)),
            casts,
            floats,
            format: schema::format(dialect, false)?,
            float_format: schema::format(dialect, true)?,
            plain: Prefilter::new(dialect).map(|p| {
                let plain = Format::default()
                    .with_header(false)
                    .with_delimiter(dialect.delimiter)
                    .with_quote(dialect.quote);
                (plain, p)
            }),
            nulls: dialect.nulls.clone(),
            delimiter: dialect.delimiter,
            quote: dialect.quote,
            newlines_in_values: dialect.newlines_in_values,
            batch_rows: batch_rows.max(1),
        })
    }

    /// Parses a range: its good lines as batches, in order, and its bad lines, the first
    /// `keep` of them with why. `scratch` keeps decoders from one range to the next.
    pub(crate) fn decode_range(&self, bytes: &[u8], keep: usize, scratch: &mut Scratch) -> Decoded {
        let (newlines, plain) = match &self.plain {
            Some((format, prefilter)) => {
                let (newlines, marked) = prefilter.scan(bytes);
                (newlines, (!marked).then_some(format))
            }
            None => (count_newlines(bytes), None),
        };
        let mut out = Decoded {
            newlines,
            ..Decoded::default()
        };
        let fast = match plain {
            Some(format) => self.decode_whole(&mut scratch.plain, format, bytes, false),
            None => self.decode_whole(&mut scratch.marked, &self.format, bytes, true),
        };
        if let Ok(batches) = fast {
            out.rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            out.batches = batches;
            return out;
        }
        let lines = self.lines(bytes);
        let mut pieces = Vec::new();
        self.bisect(bytes, &lines, keep, &mut pieces, &mut out);
        out.rows = pieces.iter().map(|b| b.num_rows() as u64).sum();
        out.batches = self.coalesce(pieces);
        out
    }

    /// Parses a whole range with a decoder kept in `slot` (made again after a failure), and
    /// float columns again when they got nulls and `markers` may have made some.
    fn decode_whole(
        &self,
        slot: &mut Option<Decoder>,
        format: &Format,
        bytes: &[u8],
        markers: bool,
    ) -> Result<Vec<RecordBatch>, String> {
        if !bytes.ends_with(b"\n") {
            // The decoder has to be told where the input ends, and cannot go on after that.
            return self.decode_chunk(bytes, self.batch_rows);
        }
        let decoder =
            slot.get_or_insert_with(|| decoder(&self.parse, format, None, self.batch_rows));
        let mut batches = Vec::new();
        if let Err(e) = run(decoder, bytes, false, &mut batches) {
            *slot = None;
            return Err(e);
        }
        if markers {
            self.fix_floats(&mut batches, bytes, self.batch_rows)?;
        }
        batches.into_iter().map(|b| self.finish(&b)).collect()
    }

    /// The records of a range as (start, end, line offset), in order.
    fn lines(&self, bytes: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        let (mut start, mut offset, mut newlines, mut quoted) = (0, 0, 0, false);
        for (i, &b) in bytes.iter().enumerate() {
            if self.newlines_in_values && b == self.quote {
                quoted = !quoted;
            } else if b == b'\n' {
                newlines += 1;
                if !quoted {
                    out.push(Line {
                        start,
                        end: i + 1,
                        offset,
                    });
                    start = i + 1;
                    offset = newlines;
                }
            }
        }
        if start < bytes.len() {
            out.push(Line {
                start,
                end: bytes.len(),
                offset,
            });
        }
        out
    }

    /// Parses `lines` whole, or in halves when that fails, down to single bad lines.
    fn bisect(
        &self,
        bytes: &[u8],
        lines: &[Line],
        keep: usize,
        pieces: &mut Vec<RecordBatch>,
        out: &mut Decoded,
    ) {
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return;
        };
        let span = &bytes[first.start..last.end];
        match self.decode_chunk(span, lines.len().min(self.batch_rows)) {
            Ok(batches) => pieces.extend(batches),
            Err(why) if lines.len() == 1 => {
                out.bad_lines += 1;
                if out.bad.len() < keep {
                    out.bad.push(BadLine {
                        offset: first.offset,
                        message: self.diagnose(span).unwrap_or(why),
                    });
                }
            }
            Err(_) => {
                let (left, right) = lines.split_at(lines.len() / 2);
                self.bisect(bytes, left, keep, pieces, out);
                self.bisect(bytes, right, keep, pieces, out);
            }
        }
    }

    /// Joins the small batches bisection leaves into batches of up to `--batch` rows.
    fn coalesce(&self, pieces: Vec<RecordBatch>) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        let mut run: Vec<RecordBatch> = Vec::new();
        let mut rows = 0;
        let flush = |run: &mut Vec<RecordBatch>, out: &mut Vec<RecordBatch>| {
            match run.len() {
                0 => {}
                1 => out.append(run),
                _ => match arrow_select::concat::concat_batches(&self.target, run.iter()) {
                    Ok(b) => {
                        out.push(b);
                        run.clear();
                    }
                    // Cannot happen (one schema); keep the pieces as they are.
                    Err(_) => out.append(run),
                },
            }
        };
        for piece in pieces {
            if rows + piece.num_rows() > self.batch_rows {
                flush(&mut run, &mut out);
                rows = 0;
            }
            rows += piece.num_rows();
            run.push(piece);
        }
        flush(&mut run, &mut out);
        out
    }

    /// Parses whole records into batches of the target schema, or says why not.
    fn decode_chunk(&self, bytes: &[u8], batch_rows: usize) -> Result<Vec<RecordBatch>, String> {
        let mut batches = decode(&self.parse, &self.format, None, bytes, batch_rows)?;
        self.fix_floats(&mut batches, bytes, batch_rows)?;
        batches.into_iter().map(|b| self.finish(&b)).collect()
    }

    /// Parses the float columns of `bytes` again with the float markers if they got nulls
    /// (some of which may be float literals such as `NaN`).
    fn fix_floats(
        &self,
        batches: &mut [RecordBatch],
        bytes: &[u8],
        batch_rows: usize,
    ) -> Result<(), String> {
        let got_nulls = batches
            .iter()
            .any(|b| self.floats.iter().any(|&i| b.column(i).null_count() > 0));
        if !got_nulls {
            return Ok(());
        }
        let again = decode(
            &self.parse,
            &self.float_format,
            Some(self.floats.clone()),
            bytes,
            batch_rows,
        )?;
        if again.len() != batches.len() {
            return Err("float columns parsed into other batches".into());
        }
        for (batch, floats) in batches.iter_mut().zip(again) {
            let mut columns = batch.columns().to_vec();
            for (j, &i) in self.floats.iter().enumerate() {
                columns[i] = floats.column(j).clone();
            }
            *batch = RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A parsed batch as a batch of the target schema: casts, and nulls only where allowed.
    fn finish(&self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (i, (column, field)) in batch.columns().iter().zip(self.target.fields()).enumerate() {
            if !field.is_nullable() && column.null_count() > 0 {
                return Err(format!("column {:?} is not nullable", field.name()));
            }
            columns.push(match &self.casts[i] {
                Some(dt) => arrow_cast::cast(column, dt).map_err(|e| e.to_string())?,
                None => column.clone(),
            });
        }
        RecordBatch::try_new_with_options(
            self.target.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(|e| e.to_string())
    }

    /// Why one line does not load: its field count, or its first column that does not parse
    /// or is null where it may not be. `None` if every column parses alone.
    fn diagnose(&self, line: &[u8]) -> Option<String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .flexible(true)
            .from_reader(line);
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Err(e) => return Some(format!("unreadable line: {e}")),
            Ok(false) => return None,
            Ok(true) => {}
        }
        let expected = self.target.fields().len();
        if record.len() != expected {
            return Some(format!(
                "expected {expected} fields, found {}",
                record.len()
            ));
        }
        for (i, (value, field)) in record.iter().zip(self.target.fields()).enumerate() {
            let name = field.name();
            if self.nulls.is_null(value, field.data_type()) {
                if field.is_nullable() {
                    continue;
                }
                return Some(format!(
                    "column {name:?}: {value:?} is a missing value and the column is not nullable"
                ));
            }
            let format = if self.floats.contains(&i) {
                &self.float_format
            } else {
                &self.format
            };
            if decode(&self.parse, format, Some(vec![i]), line, 1).is_err() {
                let what = what(self.parse.field(i).data_type());
                return Some(format!("column {name:?}: {value:?} is not {what}"));
            }
        }
        None
    }
}

/// A record's place in its range.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    offset: u64,
}

/// Decoders a parsing thread keeps from one range to the next (so their buffers are not
/// allocated and cleared again for every range).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Without the null regex.
    plain: Option<Decoder>,
    /// With it.
    marked: Option<Decoder>,
}

/// Says whether a range may hold a null marker other than the empty field, so whether it
/// needs the null regex: a marker must start at a field's start and end at its end.
#[derive(Debug, Clone)]
struct Prefilter {
    /// The markers' first bytes (repeated to fill the four).
    firsts: [u8; 4],
    /// The markers but the empty one.
    markers: Vec<Vec<u8>>,
    delimiter: u8,
    quote: u8,
}

impl Prefilter {
    /// A prefilter, if parsing without the regex can be right: the empty field is a marker,
    /// there are others, and they start with at most four distinct bytes.
    fn new(dialect: &Dialect) -> Option<Self> {
        let all = dialect.nulls.markers();
        if !all.iter().any(String::is_empty) {
            return None;
        }
        let markers: Vec<Vec<u8>> = all
            .iter()
            .filter(|m| !m.is_empty())
            .map(|m| m.as_bytes().to_vec())
            .collect();
        let mut firsts: Vec<u8> = markers.iter().map(|m| m[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        if firsts.is_empty() || firsts.len() > 4 {
            return None;
        }
        let fill = firsts[0];
        firsts.resize(4, fill);
        Some(Self {
            firsts: [firsts[0], firsts[1], firsts[2], firsts[3]],
            markers,
            delimiter: dialect.delimiter,
            quote: dialect.quote,
        })
    }

    /// The line breaks in `bytes`, and whether a marker may be one of its fields. One pass,
    /// in blocks the compiler vectorizes; a block holding a marker's first byte is looked at
    /// closely.
    fn scan(&self, bytes: &[u8]) -> (u64, bool) {
        const BLOCK: usize = 64;
        let [f0, f1, f2, f3] = self.firsts;
        let (mut newlines, mut marked) = (0, false);
        let blocks = bytes.chunks_exact(BLOCK);
        let tail = blocks.remainder();
        for (k, block) in blocks.enumerate() {
            // Byte-wide counters (a block has fewer than 256 bytes) keep 16 lanes per vector.
            let (mut n, mut hit) = (0u8, 0u8);
            for &x in block {
                n += u8::from(x == b'\n');
                hit |=
                    u8::from(x == f0) | u8::from(x == f1) | u8::from(x == f2) | u8::from(x == f3);
            }
            newlines += u64::from(n);
            if hit != 0 && !marked {
                marked = (k * BLOCK..(k + 1) * BLOCK).any(|i| self.marker_at(bytes, i));
            }
        }
        newlines += count_newlines(tail);
        let start = bytes.len() - tail.len();
        marked = marked || (start..bytes.len()).any(|i| self.marker_at(bytes, i));
        (newlines, marked)
    }

    /// Whether a marker is a whole field starting at `i`.
    fn marker_at(&self, bytes: &[u8], i: usize) -> bool {
        if !self.firsts.contains(&bytes[i]) {
            return false;
        }
        let bound = |x: u8| x == self.delimiter || x == self.quote || x == b'\n' || x == b'\r';
        if i > 0 && !bound(bytes[i - 1]) {
            return false;
        }
        self.markers
            .iter()
            .any(|m| bytes[i..].starts_with(m) && bytes.get(i + m.len()).is_none_or(|&x| bound(x)))
    }
}

/// An arrow-csv decoder of `schema` (or its `projection`).
fn decoder(
    schema: &SchemaRef,
    format: &Format,
    projection: Option<Vec<usize>>,
    batch_rows: usize,
) -> Decoder {
    let mut builder = ReaderBuilder::new(schema.clone())
        .with_format(format.clone())
        .with_batch_size(batch_rows);
    if let Some(p) = projection {
        builder = builder.with_projection(p);
    }
    builder.build_decoder()
}

/// Feeds whole records to `decoder`, collecting its batches. With `eof` the decoder is then
/// told the input ended (so a last record without a line break ends too) and cannot be used
/// again; without, `bytes` must end with a line break.
fn run(
    decoder: &mut Decoder,
    bytes: &[u8],
    eof: bool,
    out: &mut Vec<RecordBatch>,
) -> Result<(), String> {
    let mut pos = 0;
    loop {
        // At the end, an empty slice tells the decoder the input ended.
        let read = decoder.decode(&bytes[pos..]).map_err(|e| e.to_string())?;
        pos += read;
        if decoder.capacity() == 0 {
            out.extend(decoder.flush().map_err(|e| e.to_string())?);
        } else if pos == bytes.len() && (read == 0 || !eof) {
            out.extend(decoder.flush().map_err(|e| e.to_string())?);
            return Ok(());
        } else if read == 0 {
            return Err("the CSV decoder made no progress".into());
        }
    }
}

/// Parses whole records with a new arrow-csv decoder into batches of `schema` (or its
/// `projection`).
fn decode(
    schema: &SchemaRef,
    format: &Format,
    projection: Option<Vec<usize>>,
    bytes: &[u8],
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, String> {
    let mut out = Vec::new();
    run(
        &mut decoder(schema, format, projection, batch_rows),
        bytes,
        true,
        &mut out,
    )?;
    Ok(out)
}

/// What a value of this type looks like, for messages: "a number", "an integer".
fn what(dt: &DataType) -> String {
    let fits = |kind: &str, default: &DataType| {
        if dt == default {
            kind.to_owned()
        } else {
            format!("{kind} that fits {}", type_name(dt))
        }
    };
    match dt {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "a number".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            fits("an integer", &DataType::Int64)
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            fits("an unsigned integer", &DataType::UInt64)
        }
        DataType::Boolean => "a boolean (true or false)".into(),
        DataType::Date32 | DataType::Date64 => "a date (YYYY-MM-DD)".into(),
        DataType::Timestamp(..) => "a timestamp".into(),
        other => format!("a {}", type_name(other)),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};

    use std::fmt::Write;

    use super::*;
    use crate::schema::parse;

    fn dialect(nulls: Option<&str>) -> Dialect {
        Dialect {
            header: false,
            delimiter: b',',
            quote: b'"',
            newlines_in_values: false,
            nulls: NullMarkers::parse(nulls),
        }
    }

    impl Plan {
        fn decode_range_for_test(&self, bytes: &[u8], keep: usize) -> Decoded {
            self.decode_range(bytes, keep, &mut Scratch::default())
        }
    }

    fn plan(spec: &str, batch: usize) -> Plan {
        let schema = parse(spec).unwrap();
        Plan::new(schema, &[], &dialect(None), batch).unwrap()
    }

    fn ints(batches: &[RecordBatch], col: usize) -> Vec<Option<i64>> {
        batches
            .iter()
            .flat_map(|b| b.column(col).as_primitive::<Int64Type>().iter())
            .collect()
    }

    #[test]
    fn smoke() {
        let p = plan("a:int64,b:utf8", 2);
        let d = p.decode_range_for_test(b"1,x\n2,y\n3,z", 10);
        assert_eq!(d.rows, 3);
        assert_eq!(d.batches.len(), 2);
        assert_eq!(d.newlines, 2);
        assert_eq!(ints(&d.batches, 0), [Some(1), Some(2), Some(3)]);
        assert!(d.bad.is_empty());
    }

    #[test]
    fn bad_lines_are_found_and_the_rest_loads_in_order() {
        let p = plan("a:int64,b:float64", 1000);
        let mut input = String::new();
        for i in 0..100 {
            match i {
                7 => input.push_str("x7,1.5\n"),
                50 => input.push_str("50\n"),
                51 => input.push_str("51,1.5,9\n"),
                99 => input.push_str("99,abc\n"),
                _ => writeln!(input, "{i},{i}.5").unwrap(),
            }
        }
        let d = p.decode_range_for_test(input.as_bytes(), 10);
        let good: Vec<Option<i64>> = (0..100)
            .filter(|i| ![7, 50, 51, 99].contains(i))
            .map(Some)
            .collect();
        assert_eq!(ints(&d.batches, 0), good);
        assert_eq!(d.batches.len(), 1, "coalesced");
        assert_eq!(d.bad_lines, 4);
        let bad: Vec<(u64, &str)> = d
            .bad
            .iter()
            .map(|b| (b.offset, b.message.as_str()))
            .collect();
        assert_eq!(
            bad,
            [
                (7, "column \"a\": \"x7\" is not an integer"),
                (50, "expected 2 fields, found 1"),
                (51, "expected 2 fields, found 3"),
                (99, "column \"b\": \"abc\" is not a number"),
            ]
        );
        assert_eq!(p.decode_range_for_test(input.as_bytes(), 1).bad.len(), 1);
    }

    #[test]
    fn null_markers_are_nulls_and_nan_stays_a_float() {
        let p = plan("a:int64,b:utf8,c:float64", 100);
        let d = p.decode_range_for_test(b"NA,NULL,NaN\n,null,\n1,N/A,2.5\nNaN,x,NA\n", 10);
        assert!(d.bad.is_empty(), "{:?}", d.bad);
        assert_eq!(ints(&d.batches, 0), [None, None, Some(1), None]);
        let b = &d.batches[0];
        assert_eq!(b.column(1).null_count(), 3);
        let c: Vec<Option<f64>> = b.column(2).as_primitive::<Float64Type>().iter().collect();
        assert!(c[0].unwrap().is_nan());
        assert_eq!(c[1..], [None, Some(2.5), None]);

        let custom = Plan::new(
            parse("a:int64,b:utf8").unwrap(),
            &[],
            &dialect(Some("-")),
            100,
        )
        .unwrap();
        let d = custom.decode_range_for_test(b"-,\n", 10);
        assert_eq!(ints(&d.batches, 0), [None]);
        assert_eq!(d.batches[0].column(1).as_string::<i32>().value(0), "");
        let d = custom.decode_range_for_test(b"NA,x\n", 10);
        assert_eq!(d.bad[0].message, "column \"a\": \"NA\" is not an integer");
    }

    #[test]
    fn nulls_in_a_non_nullable_column_are_bad_lines() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let p = Plan::new(schema.clone(), &[], &dialect(None), 100).unwrap();
        let d = p.decode_range_for_test(b"1,x\nNA,y\n3,\n", 10);
        assert_eq!(ints(&d.batches, 0), [Some(1), Some(3)]);
        assert_eq!(d.batches[0].schema(), schema);
        assert_eq!(
            d.bad,
            [BadLine {
                offset: 1,
                message: "column \"a\": \"NA\" is a missing value and the column is not nullable"
                    .into()
            }]
        );
    }

    #[test]
    fn integer_timestamps_are_cast() {
        let schema = parse("t:timestamp_ns,d:date32").unwrap();
        let p = Plan::new(schema.clone(), &[true, false], &dialect(None), 100).unwrap();
        let d = p.decode_range_for_test(b"1700000000000000000,2024-05-01\n", 10);
        assert!(d.bad.is_empty(), "{:?}", d.bad);
        let b = &d.batches[0];
        assert_eq!(b.schema(), schema);
        let t = b.column(0).as_primitive::<TimestampNanosecondType>();
        assert_eq!(t.value(0), 1_700_000_000_000_000_000);
    }

    #[test]
    fn quoted_line_breaks_count_as_one_record_when_asked() {
        let mut d = dialect(None);
        d.newlines_in_values = true;
        let p = Plan::new(parse("a:int64,b:utf8").unwrap(), &[], &d, 100).unwrap();
        let out = p.decode_range_for_test(b"1,\"x\ny\"\nbad,z\n3,w\n", 10);
        assert_eq!(ints(&out.batches, 0), [Some(1), Some(3)]);
        assert_eq!(out.bad.len(), 1);
        assert_eq!(
            out.bad[0].offset, 2,
            "the bad record starts on the third line"
        );
    }
}
