//! The wire format of `DoGet` streams: IPC messages plus JSON app metadata.

use std::fmt::Write as _;
use std::ops::Range;

use arrow_array::RecordBatch;
use arrow_flight::FlightData;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, Result};
use crate::step::Step;

/// The app metadata of one message of a `DoGet` stream; see the [module docs](super#wire-format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The step of the snapshot or update this message belongs to.
    pub step: Step,
    /// Clear the mirror before applying this message (a snapshot or a resynchronisation).
    pub reset: bool,
    /// Positions to drop from the mirror: a prefix, or for a keyed table a suffix.
    pub removed: Range<u64>,
    /// Positions of the rows this message carries (empty for a metadata-only message).
    pub added: Range<u64>,
    /// On the first message of a snapshot (a `reset`): the positions of the whole snapshot, so
    /// a client knows it is complete once its mirror ends at `rows.end`.
    pub rows: Option<Range<u64>>,
    /// A keyed table's rows modified in place: the message's rows replace the mirror's rows at
    /// these positions, in order (and `added` is empty).
    pub modified: Vec<u64>,
    /// Per modified row, a bit mask of the columns written (bit `c % 8` of byte `c / 8`);
    /// empty when every column of every row was.
    pub masks: Vec<Vec<u8>>,
}

impl MessageMeta {
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::json!({
            "step": self.step.as_u64(),
            "reset": self.reset,
            "removed": [self.removed.start, self.removed.end],
            "added": [self.added.start, self.added.end],
        });
        if let Some(rows) = &self.rows {
            v["rows"] = serde_json::json!([rows.start, rows.end]);
        }
        if !self.modified.is_empty() {
            v["modified"] = serde_json::json!(self.modified);
        }
        if !self.masks.is_empty() {
            let hex: Vec<String> = self
                .masks
                .iter()
                .map(|m| {
                    m.iter().fold(String::new(), |mut hex, b| {
                        let _ = write!(hex, "{b:02x}");
                        hex
                    })
                })
                .collect();
            v["masks"] = serde_json::json!(hex);
        }
        v.to_string().into_bytes()
    }

    /// Parses a message's app metadata.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] if it is not the JSON this module writes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::Protocol {
            message: format!("app metadata: {what}"),
        };
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let range = |key: &str| -> Result<Range<u64>> {
            let a = v
                .get(key)
                .and_then(|r| r.as_array())
                .ok_or_else(|| bad(key))?;
            match a.as_slice() {
                [s, e] => {
                    let (s, e) = (s.as_u64(), e.as_u64());
                    match (s, e) {
                        (Some(s), Some(e)) if s <= e => Ok(s..e),
                        _ => Err(bad(key)),
                    }
                }
                _ => Err(bad(key)),
            }
        };
        Ok(Self {
            step: Step(
                v.get("step")
                    .and_then(serde_json::Value::as_u64)
                    .ok_or_else(|| bad("step"))?,
            ),
            reset: v
                .get("reset")
                .and_then(serde_json::Value::as_bool)
                .ok_or_else(|| bad("reset"))?,
            removed: range("removed")?,
            added: range("added")?,
            rows: if v.get("rows").is_some() {
                Some(range("rows")?)
            } else {
                None
            },
            modified: match v.get("modified") {
                None => Vec::new(),
                Some(m) => m
                    .as_array()
                    .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
                    .ok_or_else(|| bad("modified"))?,
            },
            masks: match v.get("masks") {
                None => Vec::new(),
                Some(m) => m
                    .as_array()
                    .and_then(|a| a.iter().map(|h| h.as_str().and_then(unhex)).collect())
                    .ok_or_else(|| bad("masks"))?,
            },
        })
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The request header a client sends to have a `DoGet` stream compressed:
/// `x-tickertable-compression: lz4` or `zstd` (`none` is the default). The record batches'
/// buffers are then compressed as Arrow IPC allows (LZ4 frame or ZSTD), which any Arrow
/// reader, pyarrow's included, decompresses on its own; the app metadata is not compressed.
/// A `DoPut` needs no header: the server reads compressed batches as they come. Needs the
/// `compression` feature on the server; without it a request for compression is refused
/// with `INVALID_ARGUMENT`.
pub const COMPRESSION_HEADER: &str = "x-tickertable-compression";

/// How a stream's record batches are compressed (see [`COMPRESSION_HEADER`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed (the default): on loopback and fast networks compression costs more
    /// CPU than the bytes it saves.
    #[default]
    None,
    /// LZ4 frame: fast, a modest ratio.
    Lz4,
    /// ZSTD: a better ratio for more CPU; for slow or metered links.
    Zstd,
}

impl Compression {
    /// The header value naming this compression.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a header value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] for anything but `none`, `lz4` and `zstd`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(Compression::None),
            "lz4" | "lz4_frame" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(Error::InvalidOption {
                option: "compression",
                reason: format!("{other:?} is not one of none, lz4, zstd"),
            }),
        }
    }

    /// IPC write options for this compression.
    fn options(self) -> Result<IpcWriteOptions> {
        let codec = match self {
            Compression::None => return Ok(IpcWriteOptions::default()),
            Compression::Lz4 => arrow_ipc::CompressionType::LZ4_FRAME,
            Compression::Zstd => arrow_ipc::CompressionType::ZSTD,
        };
        if cfg!(not(feature = "compression")) {
            return Err(Error::InvalidOption {
                option: "compression",
                reason: format!(
                    "{} was asked for, but this build has no compression (the `compression` \
                     feature)",
                    self.as_str()
                ),
            });
        }
        Ok(IpcWriteOptions::default().try_with_compression(Some(codec))?)
    }
}

/// Encodes one table's batches as Flight messages, splitting large batches so no message
/// goes far past [`TARGET_MESSAGE_BYTES`] (gRPC peers often refuse messages over 4 MiB).
pub(crate) struct Encoder {
    schema: SchemaRef,
    options: IpcWriteOptions,
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    context: IpcWriteContext,
    /// A cap on rows per message, for tests; sizes decide otherwise.
    max_rows: usize,
}

/// The default target size of one message.
pub(crate) const TARGET_MESSAGE_BYTES: usize = 2 << 20;

impl Encoder {
    #[cfg(test)]
    pub(crate) fn new(schema: SchemaRef) -> Self {
        Self::with_options(schema, IpcWriteOptions::default())
    }

    /// An encoder whose record batches are compressed with `compression`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] if this build cannot compress.
    pub(crate) fn compressed(schema: SchemaRef, compression: Compression) -> Result<Self> {
        Ok(Self::with_options(schema, compression.options()?))
    }

    fn with_options(schema: SchemaRef, options: IpcWriteOptions) -> Self {
        let max_rows = usize::MAX;
        Self {
            schema,
            options,
            generator: IpcDataGenerator::default(),
            tracker: DictionaryTracker::new(false),
            context: IpcWriteContext::default(),
            max_rows,
        }
    }

    /// The schema message that starts every stream. It registers the schema's dictionary
    /// fields with this encoder's tracker, so dictionary columns encode.
    pub(crate) fn schema_message(&mut self) -> FlightData {
        self.generator
            .schema_to_bytes_with_dictionary_tracker(&self.schema, &mut self.tracker, &self.options)
            .into()
    }

    /// The messages of one reset or update: metadata-only if there are no rows, otherwise
    /// one message per slice of at most `max_rows` rows, the first carrying `removed`.
    /// `reset` holds the whole snapshot's positions when these messages start one.
    pub(crate) fn messages(
        &mut self,
        step: Step,
        reset: Option<&Range<u64>>,
        removed: Range<u64>,
        start: u64,
        batches: &[RecordBatch],
        out: &mut Vec<FlightData>,
    ) -> Result<()> {
        let mut first = true;
        let mut pos = start;
        let meta = |first: &mut bool, added: Range<u64>| {
            let m = MessageMeta {
                step,
                reset: reset.is_some() && *first,
                rows: if *first { reset.cloned() } else { None },
                removed: if *first {
                    removed.clone()
                } else {
                    removed.end..removed.end
                },
                added,
                modified: Vec::new(),
                masks: Vec::new(),
            };
            *first = false;
            m.to_json()
        };
        for batch in batches {
            self.encode_slices(batch, out, |offset, len| {
                let added = pos + offset as u64..pos + (offset + len) as u64;
                meta(&mut first, added)
            })?;
            pos += batch.num_rows() as u64;
        }
        if first {
            out.push(FlightData::new().with_app_metadata(meta(&mut first, start..start)));
        }
        Ok(())
    }
}

impl Encoder {
    /// The messages of a keyed table's modified rows: slices of `batch` (the new rows at
    /// `positions`) sized as [`messages`](Self::messages) sizes them, each naming its rows'
    /// positions; the first carries `removed`. `end` is the mirror's end once `removed` is
    /// applied (the messages' empty `added`).
    #[allow(clippy::too_many_arguments)] // the parts of one modified-rows work item
    pub(crate) fn modified_messages(
        &mut self,
        step: Step,
        removed: Range<u64>,
        end: u64,
        positions: &[u64],
        masks: &[Vec<u8>],
        batch: &RecordBatch,
        out: &mut Vec<FlightData>,
    ) -> Result<()> {
        self.encode_slices(batch, out, |offset, len| {
            MessageMeta {
                step,
                reset: false,
                removed: if offset == 0 {
                    removed.clone()
                } else {
                    removed.end..removed.end
                },
                added: end..end,
                rows: None,
                modified: positions[offset..offset + len].to_vec(),
                masks: if masks.is_empty() {
                    Vec::new()
                } else {
                    masks[offset..offset + len].to_vec()
                },
            }
            .to_json()
        })
    }

    /// Encodes `batch` in slices of about [`TARGET_MESSAGE_BYTES`] (rows per message from the
    /// batch's own size, so wide rows split finely too), each message with the app metadata
    /// `meta(offset, len)` of its slice.
    fn encode_slices(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<FlightData>,
        mut meta: impl FnMut(usize, usize) -> Vec<u8>,
    ) -> Result<()> {
        let bytes_per_row = slice_bytes(batch) / batch.num_rows().max(1);
        let per_message = (TARGET_MESSAGE_BYTES / bytes_per_row.max(1))
            .max(1)
            .min(self.max_rows);
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = (batch.num_rows() - offset).min(per_message);
            let slice = batch.slice(offset, len);
            let (dicts, data) = self.generator.encode(
                &slice,
                &mut self.tracker,
                &self.options,
                &mut self.context,
            )?;
            out.extend(dicts.into_iter().map(FlightData::from));
            out.push(FlightData::from(data).with_app_metadata(meta(offset, len)));
            offset += len;
        }
        Ok(())
    }
}

/// The bytes of `batch`'s rows, counting only the slice each array views: a slice of a big
/// chunk (a snapshot's last rows, a replayed batch sharing its record's buffer) would
/// otherwise count the whole shared buffer and be split into messages of a row or two.
/// O(columns).
fn slice_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            // A view column's slice size counts its views, not the bytes they point at:
            // the whole array's size is the safe side (messages smaller, not too big).
            DataType::Utf8View | DataType::BinaryView => c.get_array_memory_size(),
            _ => c
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let m = MessageMeta {
            step: Step(7),
            reset: true,
            removed: 0..3,
            added: 3..10,
            rows: Some(0..10),
            modified: Vec::new(),
            masks: Vec::new(),
        };
        assert_eq!(MessageMeta::parse(&m.to_json()).unwrap(), m);
        let keyed = MessageMeta {
            modified: vec![1, 5, 9],
            masks: vec![vec![0x0a], vec![0xff], vec![0x01]],
            ..m.clone()
        };
        assert_eq!(MessageMeta::parse(&keyed.to_json()).unwrap(), keyed);
        let m = MessageMeta { rows: None, ..m };
        assert_eq!(MessageMeta::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn bad_metadata_is_a_protocol_error() {
        for junk in [
            &b"nope"[..],
            br#"{"step":1}"#,
            br#"{"step":1,"reset":false,"removed":[3,1],"added":[0,0]}"#,
        ] {
            assert!(matches!(
                MessageMeta::parse(junk),
                Err(Error::Protocol { .. })
            ));
        }
    }

    #[test]
    fn large_batches_are_split_and_positions_follow() {
        let batch = crate::test_util::int_batch(0..5000);
        let mut enc = Encoder::new(batch.schema());
        enc.max_rows = 2000;
        let mut out = Vec::new();
        enc.messages(Step(4), Some(&(100..5100)), 0..0, 100, &[batch], &mut out)
            .unwrap();
        let metas: Vec<_> = out
            .iter()
            .map(|m| MessageMeta::parse(&m.app_metadata).unwrap())
            .collect();
        assert_eq!(metas.len(), 3);
        assert!(metas[0].reset && !metas[1].reset);
        assert_eq!(
            metas.iter().map(|m| m.added.clone()).collect::<Vec<_>>(),
            vec![100..2100, 2100..4100, 4100..5100]
        );
    }

    /// A few rows sliced out of a big batch go in one message: the size of a message comes
    /// from the rows sent, not from the buffer they share.
    #[test]
    fn a_small_slice_of_a_big_batch_is_one_message() {
        let big = crate::test_util::int_batch(0..2_000_000);
        let slice = big.slice(1_999_950, 50);
        let mut enc = Encoder::new(big.schema());
        let mut out = Vec::new();
        enc.messages(Step(1), None, 0..0, 0, &[slice], &mut out)
            .unwrap();
        let metas: Vec<_> = out
            .iter()
            .map(|m| MessageMeta::parse(&m.app_metadata).unwrap())
            .collect();
        assert_eq!(metas.len(), 1, "{metas:?}");
        assert_eq!(metas[0].added, 0..50);
        // The whole batch is still split by its size: 16 MB of i64 in 2 MiB messages.
        let mut out = Vec::new();
        enc.messages(Step(2), None, 0..0, 0, &[big], &mut out)
            .unwrap();
        assert_eq!(out.len(), 8);
    }

    /// A view column's strings count: 10 MB of 1 KiB strings go in messages of about 2 MiB,
    /// not in one.
    #[test]
    fn view_columns_are_sized_by_their_strings() {
        let long = "x".repeat(1024);
        let views = arrow_array::StringViewArray::from_iter_values((0..10_000).map(|_| &long));
        let schema =
            std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "s",
                DataType::Utf8View,
                false,
            )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(views)]).unwrap();
        let mut enc = Encoder::new(schema);
        let mut out = Vec::new();
        enc.messages(Step(1), None, 0..0, 0, &[batch], &mut out)
            .unwrap();
        assert!(out.len() >= 4, "{} messages", out.len());
    }

    #[test]
    fn an_update_without_rows_is_one_metadata_only_message() {
        let mut enc = Encoder::new(crate::test_util::int_schema());
        let mut out = Vec::new();
        enc.messages(Step(9), None, 10..20, 50, &[], &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].data_header.is_empty());
        let m = MessageMeta::parse(&out[0].app_metadata).unwrap();
        assert_eq!((m.removed, m.added), (10..20, 50..50));
    }
}
