//! The record format of a durable table's log: checksummed frames around Arrow IPC streams.
//!
//! Every record is one frame: a 32-byte header, then `len` bytes of payload (a multiple of 8,
//! so every Arrow buffer inside stays 8-byte aligned when a segment is read into an aligned
//! buffer and decoded without copying):
//!
//! | bytes | field |
//! |---|---|
//! | `0..4` | magic `TTLR` |
//! | `4..8` | CRC-32 (IEEE, `crc32fast`) of bytes `8..32` and the payload |
//! | `8..16` | `len`, the payload's length, little-endian `u64` |
//! | `16..24` | the step the record became visible at |
//! | `24` | the record kind: 1 segment header, 2 rows, 3 close |
//! | `25..32` | zero |
//!
//! Payloads are little-endian `u64` fields and Arrow IPC streams, each stream prefixed by its
//! length (see [`RowsRecord`], [`SegmentHeader`], [`CloseRecord`]).
//!
//! # Source cursors
//!
//! A rows record and a segment header may end with one more length-prefixed piece: the
//! table's **source cursor**, opaque bytes that the table's feed (a Kafka source's next offset
//! per partition) staged with the rows, so that the rows and the position in the feed they
//! came from are logged in one checksummed frame, never one without the other. A segment
//! header carries the cursor of the last rows record before it, so a checkpoint that deletes
//! older segments keeps it. Logs written before cursors existed end where the piece would
//! start and read as having none; replay takes the last cursor it reads.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamEncoder;
use arrow_schema::{ArrowError, Schema, SchemaRef};

use crate::step::Step;
use crate::table::kind::Retention;

/// The frame header's length.
pub(crate) const HEADER_LEN: usize = 32;
/// The first bytes of every frame.
pub(crate) const MAGIC: [u8; 4] = *b"TTLR";
/// The version written in every segment header.
pub(crate) const VERSION: u64 = 1;
/// The largest payload replay accepts: a bigger length is a corrupt header.
pub(crate) const MAX_PAYLOAD: u64 = 1 << 40;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first record of every segment: the table's kind, key and schema.
    Segment = 1,
    /// What one cycle appended (or upserted and deleted).
    Rows = 2,
    /// The table was closed or failed by its writer.
    Close = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Kind::Segment),
            2 => Some(Kind::Rows),
            3 => Some(Kind::Close),
            _ => None,
        }
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) crc: u32,
    pub(crate) len: u64,
    pub(crate) step: Step,
    pub(crate) kind: Kind,
}

impl Frame {
    /// Parses a frame header; `Err` says why it is not one.
    pub(crate) fn parse(h: &[u8; HEADER_LEN]) -> Result<Self, String> {
        if h[0..4] != MAGIC {
            return Err("no record starts here (bad magic)".to_owned());
        }
        let crc = u32::from_le_bytes(h[4..8].try_into().expect("invariant: 4 bytes"));
        let len = u64_at(h, 8);
        let step = Step(u64_at(h, 16));
        let kind = Kind::from_u8(h[24]).ok_or_else(|| format!("unknown record kind {}", h[24]))?;
        if h[25..32].iter().any(|&b| b != 0) {
            return Err("reserved header bytes are not zero".to_owned());
        }
        if len > MAX_PAYLOAD || len % 8 != 0 {
            return Err(format!("implausible record length {len}"));
        }
        Ok(Self {
            crc,
            len,
            step,
            kind,
        })
    }

    /// Whether `payload` is this frame's: the checksum over the header's tail and it.
    pub(crate) fn check(&self, header: &[u8; HEADER_LEN], payload: &[u8]) -> bool {
        let mut h = crc32fast::Hasher::new();
        h.update(&header[8..]);
        h.update(payload);
        h.finalize() == self.crc
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("invariant: 8 bytes"))
}

/// An encoded record: its header and its payload in pieces (Arrow buffers are not copied).
pub(crate) struct Encoded {
    pub(crate) header: [u8; HEADER_LEN],
    pub(crate) parts: Vec<Buffer>,
}

impl Encoded {
    /// Frames `parts` as a record of `kind` at `step`, padding the payload to 8 bytes.
    pub(crate) fn new(kind: Kind, step: Step, mut parts: Vec<Buffer>) -> Self {
        let len: usize = parts.iter().map(Buffer::len).sum();
        let pad = len.next_multiple_of(8) - len;
        if pad > 0 {
            parts.push(Buffer::from_vec(vec![0u8; pad]));
        }
        let mut header = [0u8; HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC);
        header[8..16].copy_from_slice(&((len + pad) as u64).to_le_bytes());
        header[16..24].copy_from_slice(&step.0.to_le_bytes());
        header[24] = kind as u8;
        let mut h = crc32fast::Hasher::new();
        h.update(&header[8..]);
        for p in &parts {
            h.update(p.as_slice());
        }
        header[4..8].copy_from_slice(&h.finalize().to_le_bytes());
        Self { header, parts }
    }

    /// The record's length on disk.
    pub(crate) fn len(&self) -> u64 {
        (HEADER_LEN + self.parts.iter().map(Buffer::len).sum::<usize>()) as u64
    }
}

fn words(values: &[u64]) -> Buffer {
    let mut v = Vec::with_capacity(values.len() * 8);
    for x in values {
        v.extend_from_slice(&x.to_le_bytes());
    }
    Buffer::from_vec(v)
}

/// Encodes `batches` (all of `schema`) as one Arrow IPC stream: the schema, the dictionaries
/// and batches, the end-of-stream marker. Body buffers are shared with the batches.
fn encode_stream(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<Buffer>, ArrowError> {
    let mut encoder = StreamEncoder::try_new(schema)?;
    let mut out = Vec::new();
    for b in batches {
        out.extend(encoder.encode(b)?);
    }
    out.extend(encoder.finish()?);
    Ok(out)
}

/// Appends a stream to `parts`, prefixed by its length and padded to 8 bytes.
fn push_stream(parts: &mut Vec<Buffer>, stream: Vec<Buffer>) {
    let len: usize = stream.iter().map(Buffer::len).sum();
    let pad = len.next_multiple_of(8) - len;
    parts.push(words(&[(len + pad) as u64]));
    parts.extend(stream);
    if pad > 0 {
        parts.push(Buffer::from_vec(vec![0u8; pad]));
    }
}

/// Appends a source cursor as the payload's last piece: a flag word (1), the cursor's
/// length, then its bytes length-prefixed and padded. Nothing without one, so the payload
/// reads as before.
fn push_cursor(parts: &mut Vec<Buffer>, cursor: Option<&Buffer>) {
    if let Some(c) = cursor {
        parts.push(words(&[1, c.len() as u64]));
        push_stream(parts, vec![c.clone()]);
    }
}

/// Decodes one Arrow IPC stream into `out`; returns its schema.
pub(crate) fn decode_stream(
    mut buf: Buffer,
    out: &mut Vec<RecordBatch>,
) -> Result<SchemaRef, ArrowError> {
    let mut decoder = StreamDecoder::new();
    while !buf.is_empty() {
        if let Some(b) = decoder.decode(&mut buf)? {
            out.push(b);
        }
    }
    decoder.finish()?;
    decoder
        .schema()
        .ok_or_else(|| ArrowError::IpcError("a stream without a schema".to_owned()))
}

/// Reads a payload's fields in order, refusing to run past its end.
pub(crate) struct Cursor {
    buf: Buffer,
    at: usize,
}

impl Cursor {
    pub(crate) fn new(buf: Buffer) -> Self {
        Self { buf, at: 0 }
    }

    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        if self.at + 8 > self.buf.len() {
            return Err("the payload ends inside a field".to_owned());
        }
        let v = u64_at(self.buf.as_slice(), self.at);
        self.at += 8;
        Ok(v)
    }

    /// The source cursor ending a payload: `None` at the payload's end (logs written before
    /// cursors), else as `push_cursor` wrote it.
    pub(crate) fn cursor(&mut self) -> Result<Option<Buffer>, String> {
        if self.at >= self.buf.len() {
            return Ok(None);
        }
        match self.u64()? {
            1 => {
                let len = self.u64()?;
                let bytes = self.bytes()?;
                match usize::try_from(len) {
                    Ok(len) if len <= bytes.len() => Ok(Some(bytes.slice_with_length(0, len))),
                    _ => Err(format!("a cursor of {len} bytes in {} bytes", bytes.len())),
                }
            }
            flag => Err(format!("unknown trailing piece {flag}")),
        }
    }

    /// The next length-prefixed piece, zero-copy.
    pub(crate) fn bytes(&mut self) -> Result<Buffer, String> {
        let len = usize::try_from(self.u64()?).map_err(|_| "a length past usize".to_owned())?;
        if len > self.buf.len() - self.at {
            return Err(format!("a piece of {len} bytes runs past the payload"));
        }
        let b = self.buf.slice_with_length(self.at, len);
        self.at += len;
        Ok(b)
    }
}

/// A table's kind, capacity and key as the log stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) retention: Retention,
    pub(crate) key: Vec<u64>,
}

impl Shape {
    fn codes(&self) -> (u64, u64) {
        match self.retention {
            Retention::Append { limit } => (0, limit.unwrap_or(u64::MAX)),
            Retention::Blink { cap } => (1, cap.unwrap_or(u64::MAX)),
            Retention::Ring { capacity } => (2, capacity),
            Retention::Keyed { capacity } => (3, capacity.unwrap_or(u64::MAX)),
        }
    }

    fn from_codes(kind: u64, cap: u64, key: Vec<u64>) -> Result<Self, String> {
        let opt = (cap != u64::MAX).then_some(cap);
        let retention = match kind {
            0 => Retention::Append { limit: opt },
            1 => Retention::Blink { cap: opt },
            2 => Retention::Ring { capacity: cap },
            3 => Retention::Keyed { capacity: opt },
            k => return Err(format!("unknown table kind code {k}")),
        };
        Ok(Self { retention, key })
    }

    /// The kind as an error names it: `ring(100)`, `keyed on [Sym]`.
    pub(crate) fn describe(&self, schema: &Schema) -> String {
        let kind = self.retention.kind().to_string();
        if self.key.is_empty() {
            return kind;
        }
        let names: Vec<String> = self
            .key
            .iter()
            .map(|&k| {
                usize::try_from(k)
                    .ok()
                    .and_then(|k| schema.fields().get(k))
                    .map_or_else(|| format!("#{k}"), |f| f.name().clone())
            })
            .collect();
        format!("{kind} on [{}]", names.join(", "))
    }
}

/// The first record of a segment.
#[derive(Debug, Clone)]
pub(crate) struct SegmentHeader {
    pub(crate) shape: Shape,
    /// The table's end position when the segment began.
    pub(crate) first_position: u64,
    pub(crate) schema: SchemaRef,
    /// The source cursor of the last rows record before this segment.
    pub(crate) cursor: Option<Buffer>,
}

impl SegmentHeader {
    pub(crate) fn encode(&self, step: Step) -> Result<Encoded, ArrowError> {
        let (kind, cap) = self.shape.codes();
        let mut fields = vec![VERSION, kind, cap, self.first_position];
        fields.push(self.shape.key.len() as u64);
        fields.extend(&self.shape.key);
        let mut parts = vec![words(&fields)];
        push_stream(&mut parts, encode_stream(&self.schema, &[])?);
        push_cursor(&mut parts, self.cursor.as_ref());
        Ok(Encoded::new(Kind::Segment, step, parts))
    }

    pub(crate) fn decode(payload: Buffer) -> Result<Self, String> {
        let mut c = Cursor::new(payload);
        let version = c.u64()?;
        if version != VERSION {
            return Err(format!(
                "log format version {version}, this build reads {VERSION}"
            ));
        }
        let (kind, cap, first_position) = (c.u64()?, c.u64()?, c.u64()?);
        let nkeys = c.u64()?;
        if nkeys > 1 << 16 {
            return Err(format!("implausible key column count {nkeys}"));
        }
        let key = (0..nkeys).map(|_| c.u64()).collect::<Result<Vec<_>, _>>()?;
        let shape = Shape::from_codes(kind, cap, key)?;
        let schema = decode_stream(c.bytes()?, &mut Vec::new()).map_err(|e| e.to_string())?;
        let cursor = c.cursor()?;
        Ok(Self {
            shape,
            first_position,
            schema,
            cursor,
        })
    }
}

/// What one cycle staged into a table: for append, blink and ring tables the rows appended
/// at positions `first..first + rows`; for a keyed table its staged input in its shapes
/// (`first` is 0), replayed through the same apply.
#[derive(Debug, Clone)]
pub(crate) struct RowsRecord {
    pub(crate) first: u64,
    pub(crate) rows: u64,
    pub(crate) batches: Vec<RecordBatch>,
    /// The source cursor staged with these rows, if any.
    pub(crate) cursor: Option<Buffer>,
}

impl RowsRecord {
    /// One stream per run of batches with the same schema (a keyed table's input mixes
    /// shapes; other tables' input is one stream).
    pub(crate) fn encode(&self, step: Step) -> Result<Encoded, ArrowError> {
        let mut runs: Vec<&[RecordBatch]> = Vec::new();
        let mut start = 0;
        for i in 1..=self.batches.len() {
            let split = i == self.batches.len() || {
                let (a, b) = (
                    self.batches[start].schema_ref(),
                    self.batches[i].schema_ref(),
                );
                !Arc::ptr_eq(a, b) && a != b
            };
            if split {
                runs.push(&self.batches[start..i]);
                start = i;
            }
        }
        let mut parts = vec![words(&[self.first, self.rows, runs.len() as u64])];
        for run in runs {
            push_stream(&mut parts, encode_stream(run[0].schema_ref(), run)?);
        }
        push_cursor(&mut parts, self.cursor.as_ref());
        Ok(Encoded::new(Kind::Rows, step, parts))
    }

    /// The positions only, from the payload's first 16 bytes, without decoding a batch.
    pub(crate) fn decode_positions(payload: &Buffer) -> Result<(u64, u64), String> {
        let mut c = Cursor::new(payload.clone());
        Ok((c.u64()?, c.u64()?))
    }

    /// What replay keeps of a rows record it does not decode (a ring's or a blink's): its
    /// positions, no stream, and its source cursor, as a payload the `decode_*` functions
    /// read. O(streams); copies only the cursor.
    pub(crate) fn head(payload: &[u8]) -> Buffer {
        let word = |at: usize| {
            payload
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("invariant: 8 bytes")))
        };
        let mut head = payload[..payload.len().min(16)].to_vec();
        head.resize(24, 0); // no streams
        let mut at = 24;
        let streams = word(16).unwrap_or(0);
        for _ in 0..streams {
            let Some(len) = word(at).and_then(|l| usize::try_from(l).ok()) else {
                return Buffer::from_vec(head);
            };
            at = at.saturating_add(8).saturating_add(len);
        }
        if let Some(tail) = payload.get(at..) {
            head.extend_from_slice(tail);
        }
        Buffer::from_vec(head)
    }

    /// The source cursor only, skipping the streams without decoding them.
    pub(crate) fn decode_cursor(payload: &Buffer) -> Result<Option<Buffer>, String> {
        let mut c = Cursor::new(payload.clone());
        let (_, _, streams) = (c.u64()?, c.u64()?, c.u64()?);
        for _ in 0..streams {
            c.bytes()?;
        }
        c.cursor()
    }

    pub(crate) fn decode(payload: Buffer) -> Result<Self, String> {
        let mut c = Cursor::new(payload);
        let (first, rows, streams) = (c.u64()?, c.u64()?, c.u64()?);
        let mut batches = Vec::new();
        for _ in 0..streams {
            decode_stream(c.bytes()?, &mut batches).map_err(|e| e.to_string())?;
        }
        let cursor = c.cursor()?;
        let n: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if n != rows {
            return Err(format!("the record says {rows} rows and holds {n}"));
        }
        Ok(Self {
            first,
            rows,
            batches,
            cursor,
        })
    }
}

/// A table closed by its writer: cleanly, or failed with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRecord {
    pub(crate) failure: Option<String>,
}

impl CloseRecord {
    pub(crate) fn encode(&self, step: Step) -> Encoded {
        let msg = self.failure.as_deref().unwrap_or("").as_bytes().to_vec();
        let mut parts = vec![words(&[u64::from(self.failure.is_some())])];
        push_stream(&mut parts, vec![Buffer::from_vec(msg)]);
        Encoded::new(Kind::Close, step, parts)
    }

    pub(crate) fn decode(payload: Buffer) -> Result<Self, String> {
        let mut c = Cursor::new(payload);
        let failed = c.u64()? != 0;
        let msg = c.bytes()?;
        let text = String::from_utf8_lossy(msg.as_slice())
            .trim_end_matches('\0')
            .to_owned();
        Ok(Self {
            failure: failed.then_some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("s{i}")),
                )),
            ],
        )
        .unwrap()
    }

    fn flat(e: &Encoded) -> (Vec<u8>, Buffer) {
        let mut p = Vec::new();
        for part in &e.parts {
            p.extend_from_slice(part.as_slice());
        }
        (e.header.to_vec(), Buffer::from_vec(p))
    }

    #[test]
    fn smoke() {
        let record = RowsRecord {
            first: 7,
            rows: 5,
            batches: vec![batch(2), batch(3)],
            cursor: None,
        };
        let encoded = record.encode(Step(9)).unwrap();
        let (header, payload) = flat(&encoded);
        let header: [u8; HEADER_LEN] = header.try_into().unwrap();
        let frame = Frame::parse(&header).unwrap();
        assert_eq!(
            (frame.kind, frame.step, frame.len),
            (Kind::Rows, Step(9), payload.len() as u64)
        );
        assert!(frame.check(&header, payload.as_slice()));
        let back = RowsRecord::decode(payload).unwrap();
        assert_eq!((back.first, back.rows), (7, 5));
        assert_eq!(back.batches.len(), 2);
        assert_eq!(back.batches[1], batch(3));
    }

    #[test]
    fn a_rows_record_carries_its_source_cursor_and_old_records_have_none() {
        let mut record = RowsRecord {
            first: 0,
            rows: 2,
            batches: vec![batch(2)],
            cursor: None,
        };
        let (_, old) = flat(&record.encode(Step(1)).unwrap());
        assert!(RowsRecord::decode_cursor(&old).unwrap().is_none());
        record.cursor = Some(Buffer::from_vec(b"offsets:12345".to_vec()));
        let (_, new) = flat(&record.encode(Step(2)).unwrap());
        assert_eq!(new.len() % 8, 0);
        let c = RowsRecord::decode_cursor(&new).unwrap().unwrap();
        assert_eq!(c.as_slice(), b"offsets:12345");
        // What replay keeps of a record it does not decode: positions and cursor.
        let head = RowsRecord::head(new.as_slice());
        assert_eq!(RowsRecord::decode_positions(&head).unwrap(), (0, 2));
        let c = RowsRecord::decode_cursor(&head).unwrap().unwrap();
        assert_eq!(c.as_slice(), b"offsets:12345");
        let head = RowsRecord::head(old.as_slice());
        assert!(RowsRecord::decode_cursor(&head).unwrap().is_none());
        let back = RowsRecord::decode(new).unwrap();
        assert_eq!(back.cursor.unwrap().as_slice(), b"offsets:12345");
        assert_eq!(back.batches, vec![batch(2)]);
    }

    #[test]
    fn a_flipped_payload_byte_fails_the_checksum() {
        let e = CloseRecord {
            failure: Some("boom".into()),
        }
        .encode(Step(1));
        let (h, p) = flat(&e);
        let h: [u8; HEADER_LEN] = h.try_into().unwrap();
        let f = Frame::parse(&h).unwrap();
        let mut bad = p.as_slice().to_vec();
        bad[3] ^= 0x10;
        assert!(!f.check(&h, &bad));
        assert_eq!(
            CloseRecord::decode(p).unwrap().failure.as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn segment_header_round_trips_shape_and_schema() {
        let schema = batch(1).schema();
        let h = SegmentHeader {
            shape: Shape {
                retention: Retention::Keyed { capacity: Some(4) },
                key: vec![1],
            },
            first_position: 0,
            schema: schema.clone(),
            cursor: Some(Buffer::from_vec(b"abc".to_vec())),
        };
        let (_, p) = flat(&h.encode(Step(3)).unwrap());
        let back = SegmentHeader::decode(p).unwrap();
        assert_eq!(back.cursor.unwrap().as_slice(), b"abc");
        assert_eq!(back.shape, h.shape);
        assert_eq!(back.schema.fields(), schema.fields());
        assert_eq!(back.shape.describe(&schema), "keyed(4) on [s]");
    }
}
