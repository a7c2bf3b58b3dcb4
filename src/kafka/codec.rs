//! Messages to rows and rows to messages: JSON and Arrow IPC values, JSON keys, and the
//! source cursor a durable source logs.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_json::reader::Decoder;
use arrow_json::{LineDelimitedWriter, ReaderBuilder, WriterBuilder};
use arrow_schema::{ArrowError, Schema, SchemaRef};

/// A client failure as the crate's error.
pub(crate) fn kafka_error(
    table: &str,
    operation: &'static str,
    e: &dyn std::fmt::Display,
) -> crate::error::Error {
    crate::error::Error::Kafka {
        table: table.to_owned(),
        operation,
        message: e.to_string(),
    }
}

/// A message a source could not decode: where it is and why.
#[derive(Debug)]
pub(crate) struct Bad {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) reason: String,
}

/// Builds a source's batches: the value columns decoded from messages, then the partition
/// and offset columns asked for.
pub(crate) struct BatchBuilder {
    /// The messages' columns.
    value: SchemaRef,
    /// The table's: `value`'s, then partition and offset if asked for.
    table: SchemaRef,
    partition_column: bool,
    offset_column: bool,
    max_rows: usize,
    /// A JSON poll's message values, back to back, newline-separated (reused).
    json: Vec<u8>,
    /// Where each message ends in `json`.
    ends: Vec<usize>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    /// A keyed table's key columns: a tombstone's message key decodes to them.
    key: Option<SchemaRef>,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("messages", &self.partitions.len())
            .finish_non_exhaustive()
    }
}

impl BatchBuilder {
    pub(crate) fn new(
        value: SchemaRef,
        table: SchemaRef,
        partition_column: bool,
        offset_column: bool,
        max_rows: usize,
    ) -> Self {
        Self {
            value,
            table,
            partition_column,
            offset_column,
            max_rows,
            json: Vec::new(),
            ends: Vec::new(),
            partitions: Vec::with_capacity(max_rows),
            offsets: Vec::with_capacity(max_rows),
            key: None,
        }
    }

    /// A keyed table's builder: tombstones (messages without a value) delete the key their
    /// message key names, a JSON object of `key`'s columns (what a keyed table's sink sends).
    #[must_use]
    pub(crate) fn with_key(mut self, key: SchemaRef) -> Self {
        self.key = Some(key);
        self
    }

    /// Decodes a tombstone's message key into a one-row batch of the key columns. One small
    /// decode per tombstone; `Err` says why it names no key.
    pub(crate) fn decode_key(&self, key: Option<&[u8]>) -> Result<RecordBatch, String> {
        let Some(schema) = &self.key else {
            return Err("a message without a value (a tombstone) for a table without keys".into());
        };
        let Some(key) = key else {
            return Err("a tombstone without a key".into());
        };
        let mut d = ReaderBuilder::new(schema.clone())
            .with_batch_size(2)
            .with_strict_mode(true)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        let used = d
            .decode(key)
            .map_err(|e| format!("a tombstone's key: {e}"))?;
        if used != key.len() {
            return Err("a tombstone's key holds more than one object".into());
        }
        match d.flush().map_err(|e| format!("a tombstone's key: {e}"))? {
            Some(b) if b.num_rows() == 1 => Ok(b),
            _ => Err("a tombstone's key is not one JSON object of the key columns".into()),
        }
    }

    /// The key columns' schema, for a keyed table's builder.
    pub(crate) fn key_schema(&self) -> Option<&SchemaRef> {
        self.key.as_ref()
    }

    /// The most messages in one batch.
    pub(crate) fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// JSON messages held, not yet decoded.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the next JSON message would go past the batch size.
    pub(crate) fn is_full(&self) -> bool {
        self.ends.len() >= self.max_rows
    }

    /// Holds a JSON message for [`finish_json`](Self::finish_json). O(its bytes), no
    /// allocation once the buffers have grown.
    pub(crate) fn push_json(&mut self, partition: i32, offset: i64, value: &[u8]) {
        self.json.extend_from_slice(value);
        self.json.push(b'\n');
        self.ends.push(self.json.len());
        self.partitions.push(partition);
        self.offsets.push(offset);
    }

    fn decoder(&self, rows: usize) -> Result<Decoder, ArrowError> {
        ReaderBuilder::new(self.value.clone())
            .with_batch_size(rows.max(1))
            .with_strict_mode(true)
            .build_decoder()
    }

    /// Decodes the JSON messages held into one batch, reporting each message that is not
    /// one object of the schema into `bad`; `None` if none was good.
    pub(crate) fn finish_json(&mut self, bad: &mut Vec<Bad>) -> Option<RecordBatch> {
        let n = self.ends.len();
        if n == 0 {
            return None;
        }
        // The fast path: all of them in one pass.
        let whole = self.decoder(n + 1).and_then(|mut d| {
            let used = d.decode(&self.json)?;
            if used != self.json.len() {
                return Err(ArrowError::JsonError("more rows than messages".into()));
            }
            d.flush()
        });
        let batch = match whole {
            Ok(Some(b)) if b.num_rows() == n => {
                let parts = std::mem::take(&mut self.partitions);
                let offs = std::mem::take(&mut self.offsets);
                Some(self.with_meta(b, parts, offs))
            }
            _ => self.finish_one_by_one(bad),
        };
        self.json.clear();
        self.ends.clear();
        self.partitions.clear();
        self.offsets.clear();
        batch
    }

    /// The slow path, after a poll's batch failed: each message alone.
    fn finish_one_by_one(&mut self, bad: &mut Vec<Bad>) -> Option<RecordBatch> {
        let mut good = Vec::new();
        let mut parts = Vec::new();
        let mut offs = Vec::new();
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            let msg = &self.json[start..end];
            start = end;
            let one = self.decoder(2).and_then(|mut d| {
                let used = d.decode(msg)?;
                if used != msg.len() {
                    return Err(ArrowError::JsonError("more than one object".into()));
                }
                d.flush()
            });
            match one {
                Ok(Some(b)) if b.num_rows() == 1 => {
                    good.push(b);
                    parts.push(self.partitions[i]);
                    offs.push(self.offsets[i]);
                }
                Ok(Some(b)) => {
                    bad.push(self.bad(i, format!("{} objects, expected one", b.num_rows())));
                }
                Ok(None) => bad.push(self.bad(i, "no JSON object".to_owned())),
                Err(e) => bad.push(self.bad(i, e.to_string())),
            }
        }
        if good.is_empty() {
            return None;
        }
        let batch = arrow_select::concat::concat_batches(&self.value, &good)
            .expect("invariant: batches of one schema");
        Some(self.with_meta(batch, parts, offs))
    }

    fn bad(&self, i: usize, reason: String) -> Bad {
        Bad {
            partition: self.partitions[i],
            offset: self.offsets[i],
            reason,
        }
    }

    /// Decodes one Arrow IPC message: its batches, of the value schema (names and types;
    /// nulls only where the schema allows them), each with the message's partition and
    /// offset. `Err` says why it does not fit.
    pub(crate) fn decode_ipc(
        &self,
        partition: i32,
        offset: i64,
        value: &[u8],
        out: &mut Vec<RecordBatch>,
    ) -> Result<usize, String> {
        let reader = StreamReader::try_new(Cursor::new(value), None).map_err(|e| e.to_string())?;
        check_fields(&self.value, &reader.schema())?;
        let mut rows = 0;
        let mut batches = Vec::new();
        for b in reader {
            let b = b.map_err(|e| e.to_string())?;
            let b = RecordBatch::try_new(self.value.clone(), b.columns().to_vec())
                .map_err(|e| e.to_string())?;
            rows += b.num_rows();
            batches.push(b);
        }
        for b in batches {
            let n = b.num_rows();
            if n > 0 {
                out.push(self.with_meta(b, vec![partition; n], vec![offset; n]));
            }
        }
        Ok(rows)
    }

    /// Adds the partition and offset columns asked for.
    fn with_meta(
        &self,
        batch: RecordBatch,
        partitions: Vec<i32>,
        offsets: Vec<i64>,
    ) -> RecordBatch {
        if !self.partition_column && !self.offset_column {
            return batch;
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if self.partition_column {
            columns.push(Arc::new(Int32Array::from(partitions)));
        }
        if self.offset_column {
            columns.push(Arc::new(Int64Array::from(offsets)));
        }
        RecordBatch::try_new(self.table.clone(), columns)
            .expect("invariant: the table's schema is the value's and the meta columns")
    }
}

/// Whether `given` has `want`'s column names and types, in order.
fn check_fields(want: &Schema, given: &Schema) -> Result<(), String> {
    if want.fields().len() != given.fields().len() {
        return Err(format!(
            "{} columns, expected {}",
            given.fields().len(),
            want.fields().len()
        ));
    }
    for (w, g) in want.fields().iter().zip(given.fields()) {
        if w.name() != g.name() || w.data_type() != g.data_type() {
            return Err(format!(
                "column {:?} {}, expected {:?} {}",
                g.name(),
                g.data_type(),
                w.name(),
                w.data_type()
            ));
        }
    }
    Ok(())
}

/// The first bytes of a Kafka source's cursor, and its version.
const CURSOR_MAGIC: &[u8; 4] = b"KAF1";

/// A source's position: the next offset of every partition it has read, for the topic.
/// Encoded: magic, topic length (`u32` LE) and bytes, partition count (`u32`), then per
/// partition `i32` partition and `i64` next offset, little-endian.
pub(crate) fn encode_cursor(topic: &str, next: &BTreeMap<i32, i64>) -> Buffer {
    let mut v = Vec::with_capacity(12 + topic.len() + next.len() * 12);
    v.extend_from_slice(CURSOR_MAGIC);
    v.extend_from_slice(&u32::try_from(topic.len()).unwrap_or(u32::MAX).to_le_bytes());
    v.extend_from_slice(topic.as_bytes());
    v.extend_from_slice(&u32::try_from(next.len()).unwrap_or(u32::MAX).to_le_bytes());
    for (p, o) in next {
        v.extend_from_slice(&p.to_le_bytes());
        v.extend_from_slice(&o.to_le_bytes());
    }
    Buffer::from_vec(v)
}

/// Reads a cursor back: `Ok(None)` if it is another topic's, `Err` if it is not a cursor.
pub(crate) fn decode_cursor(
    topic: &str,
    bytes: &[u8],
) -> Result<Option<BTreeMap<i32, i64>>, String> {
    let bad = || "not a kafka source cursor".to_owned();
    let rest = bytes.strip_prefix(CURSOR_MAGIC).ok_or_else(bad)?;
    let (len, rest) = take_u32(rest).ok_or_else(bad)?;
    let len = usize::try_from(len).map_err(|_| bad())?;
    if rest.len() < len {
        return Err(bad());
    }
    let (logged_topic, rest) = rest.split_at(len);
    let (count, mut rest) = take_u32(rest).ok_or_else(bad)?;
    let mut next = BTreeMap::new();
    for _ in 0..count {
        if rest.len() < 12 {
            return Err(bad());
        }
        let partition = i32::from_le_bytes(rest[0..4].try_into().expect("invariant: 4 bytes"));
        let offset = i64::from_le_bytes(rest[4..12].try_into().expect("invariant: 8 bytes"));
        next.insert(partition, offset);
        rest = &rest[12..];
    }
    Ok((logged_topic == topic.as_bytes()).then_some(next))
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (h, rest) = b.split_at_checked(4)?;
    Some((u32::from_le_bytes(h.try_into().ok()?), rest))
}

/// A batch's rows as JSON lines, in one buffer: row `i` is `buf[ends[i-1]..ends[i] - 1]`
/// (without its newline). Nulls are written as `null`.
pub(crate) fn json_lines(
    batch: &RecordBatch,
    buf: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> Result<(), ArrowError> {
    buf.clear();
    ends.clear();
    {
        let mut w: LineDelimitedWriter<&mut Vec<u8>> = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build(&mut *buf);
        w.write(batch)?;
        w.finish()?;
    }
    ends.extend(
        buf.iter()
            .enumerate()
            .filter(|(_, &c)| c == b'\n')
            .map(|(i, _)| i + 1),
    );
    if ends.len() != batch.num_rows() {
        return Err(ArrowError::JsonError(format!(
            "{} lines for {} rows",
            ends.len(),
            batch.num_rows()
        )));
    }
    Ok(())
}

/// A batch as one Arrow IPC stream.
pub(crate) fn ipc_message(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut out, batch.schema_ref())?;
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use arrow_array::{Float64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn schemas(meta: bool) -> (SchemaRef, SchemaRef) {
        let value = Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Px", DataType::Float64, true),
        ]));
        let mut fields = value.fields().to_vec();
        if meta {
            fields.push(Arc::new(Field::new("P", DataType::Int32, false)));
            fields.push(Arc::new(Field::new("O", DataType::Int64, false)));
        }
        (value, Arc::new(Schema::new(fields)))
    }

    #[test]
    fn smoke() {
        let (value, table) = schemas(true);
        let mut b = BatchBuilder::new(value, table, true, true, 16);
        b.push_json(0, 10, br#"{"Sym":"A","Px":1.5}"#);
        b.push_json(1, 20, br#"{"Sym":"B"}"#);
        let mut bad = Vec::new();
        let batch = b.finish_json(&mut bad).unwrap();
        assert!(bad.is_empty());
        assert_eq!(batch.num_rows(), 2);
        let offs = batch
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(offs.values(), &[10, 20]);
    }

    #[test]
    fn bad_json_messages_are_reported_and_the_others_kept() {
        let (value, table) = schemas(false);
        let mut b = BatchBuilder::new(value, table, false, false, 16);
        b.push_json(0, 1, br#"{"Sym":"A","Px":1.5}"#);
        b.push_json(0, 2, br#"{"Px":2.0}"#); // no Sym
        b.push_json(0, 3, b"not json");
        b.push_json(0, 4, br#"{"Sym":"D","Px":"x"}"#);
        b.push_json(0, 5, br#"{"Sym":"E","Other":1}"#);
        b.push_json(0, 6, br#"{"Sym":"F"} {"Sym":"G"}"#);
        b.push_json(0, 7, br#"{"Sym":"H","Px":8}"#);
        let mut bad = Vec::new();
        let batch = b.finish_json(&mut bad).unwrap();
        let syms = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(syms.iter().flatten().collect::<Vec<_>>(), vec!["A", "H"]);
        let offsets: Vec<i64> = bad.iter().map(|b| b.offset).collect();
        assert_eq!(offsets, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn an_ipc_message_of_another_schema_is_refused() {
        let (value, table) = schemas(true);
        let b = BatchBuilder::new(value.clone(), table, true, true, 16);
        let good = RecordBatch::try_new(
            value,
            vec![
                Arc::new(StringArray::from(vec!["A", "B"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            b.decode_ipc(3, 7, &ipc_message(&good).unwrap(), &mut out),
            Ok(2)
        );
        assert_eq!(out[0].num_columns(), 4);
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["A"]))],
        )
        .unwrap();
        let err = b
            .decode_ipc(3, 8, &ipc_message(&other).unwrap(), &mut out)
            .unwrap_err();
        assert_eq!(err, "1 columns, expected 2");
        assert!(b.decode_ipc(3, 9, b"garbage", &mut out).is_err());
    }

    #[test]
    fn a_cursor_round_trips_and_knows_its_topic() {
        let next = BTreeMap::from([(0, 5), (2, 9)]);
        let c = encode_cursor("trades", &next);
        assert_eq!(decode_cursor("trades", c.as_slice()), Ok(Some(next)));
        assert_eq!(decode_cursor("quotes", c.as_slice()), Ok(None));
        assert!(decode_cursor("trades", b"junk").is_err());
    }

    #[test]
    fn json_lines_slices_rows() {
        let (value, _) = schemas(false);
        let batch = RecordBatch::try_new(
            value,
            vec![
                Arc::new(StringArray::from(vec!["A", "B"])),
                Arc::new(Float64Array::from(vec![Some(1.0), None])),
            ],
        )
        .unwrap();
        let (mut buf, mut ends) = (Vec::new(), Vec::new());
        json_lines(&batch, &mut buf, &mut ends).unwrap();
        assert_eq!(&buf[..ends[0] - 1], br#"{"Sym":"A","Px":1.0}"#);
        assert_eq!(&buf[ends[0]..ends[1] - 1], br#"{"Sym":"B","Px":null}"#);
    }
}
