//! Checkpoints: a ring or keyed table's rows at one step, as an Arrow IPC file.
//!
//! The file is a plain Arrow IPC file (readable by any Arrow reader) of the table's schema,
//! holding the table's chunks in position order, with these footer metadata keys:
//!
//! | key | value |
//! |---|---|
//! | `tickertable.checkpoint.step` | the step the rows are at |
//! | `tickertable.checkpoint.start`, `.end` | the positions `[start, end)` the rows hold |
//! | `tickertable.checkpoint.segment` | the first segment whose records may be after `step` |
//! | `tickertable.checkpoint.bytes`, `.crc` | the length and CRC-32 of the file before its footer |
//! | `tickertable.checkpoint.recency` | `1` if the last column is [`RECENCY_COLUMN`] |
//!
//! A keyed table with a capacity evicts its least recently written keys, an order its rows'
//! positions do not give: its checkpoint has one more column, last, [`RECENCY_COLUMN`]
//! (`UInt32`, not null), each row's place in that order (0 the least recently written), and
//! the footer says so. Replay rebuilds the table from the other columns, then puts the keys
//! back in that order.
//!
//! It is written as `*.tmp`, synced, renamed and its directory synced, so a checkpoint file
//! that exists is complete; the checksum still catches a file damaged later.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

use crate::durable::files::{checkpoint_path, sync_dir, TMP_EXT};
use crate::table::chunk::ChunkLog;

const STEP: &str = "tickertable.checkpoint.step";
const START: &str = "tickertable.checkpoint.start";
const END: &str = "tickertable.checkpoint.end";
const SEGMENT: &str = "tickertable.checkpoint.segment";
const BYTES: &str = "tickertable.checkpoint.bytes";
const CRC: &str = "tickertable.checkpoint.crc";
const RECENCY: &str = "tickertable.checkpoint.recency";

/// The name of a keyed table's recency column in its checkpoint (see the module docs).
pub(crate) const RECENCY_COLUMN: &str = "tickertable.recency";

/// What a checkpoint holds: a table's rows at one step (its chunks, shared: O(1)), and a
/// keyed table with a capacity's recency order (each slot's rank, O(keys)).
pub(crate) struct CheckpointRows {
    pub(crate) rows: ChunkLog,
    pub(crate) recency: Option<Vec<u32>>,
}

/// A checkpoint read back.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub(crate) step: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Segments before this one hold only records at or before `step`.
    pub(crate) segment: u64,
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) schema: SchemaRef,
    /// A keyed table with a capacity's recency ranks, one per row (a permutation of
    /// `0..rows`, checked).
    pub(crate) recency: Option<Vec<u32>>,
}

/// Counts and checksums what goes through it.
struct Summing<W> {
    inner: W,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `rows` (a table's chunks at `step`) as the checkpoint of `dir`; returns its path
/// and size.
///
/// # Errors
///
/// An I/O or Arrow error; a half-written `*.tmp` is removed.
pub(crate) fn write(
    dir: &Path,
    schema: &SchemaRef,
    step: u64,
    segment: u64,
    rows: &CheckpointRows,
) -> Result<(PathBuf, u64), ArrowError> {
    let CheckpointRows { rows, recency } = rows;
    let file_schema = if recency.is_some() {
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let rank = Field::new(RECENCY_COLUMN, DataType::UInt32, false);
        fields.push(Arc::new(rank));
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
    } else {
        schema.clone()
    };
    let path = checkpoint_path(dir, step);
    let tmp = path.with_extension(TMP_EXT);
    let result = (|| {
        let file = File::create(&tmp)?;
        let sink = Summing {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        let mut w = FileWriter::try_new(sink, &file_schema)?;
        let range = rows.rows();
        for chunk in rows.chunks() {
            // Chunks carry the table's schema; a batch relabelled to it is the same data.
            let mut columns = chunk.batch.columns().to_vec();
            if let Some(ranks) = recency {
                let at = usize::try_from(chunk.start - range.start)
                    .expect("invariant: a position in memory fits a usize");
                let ranks = &ranks[at..at + chunk.batch.num_rows()];
                columns.push(Arc::new(UInt32Array::from(ranks.to_vec())));
            }
            w.write(&RecordBatch::try_new(file_schema.clone(), columns)?)?;
        }
        let (crc, bytes) = {
            let sink = w.get_ref();
            (sink.crc.clone().finalize(), sink.bytes)
        };
        w.write_metadata(STEP, step.to_string());
        w.write_metadata(START, range.start.to_string());
        w.write_metadata(END, range.end.to_string());
        w.write_metadata(SEGMENT, segment.to_string());
        w.write_metadata(BYTES, bytes.to_string());
        w.write_metadata(CRC, crc.to_string());
        if recency.is_some() {
            w.write_metadata(RECENCY, "1".to_owned());
        }
        w.finish()?;
        let sink = w.into_inner()?;
        let total = sink.bytes;
        let file = sink
            .inner
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        Ok::<_, ArrowError>(total)
    })();
    match result {
        Ok(total) => Ok((path, total)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Why a checkpoint cannot be used.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// A read error (not the file's fault).
    Io(io::Error),
    /// The file is damaged: the reason.
    Corrupt(String),
}

fn meta(m: &HashMap<String, String>, key: &str) -> Result<u64, Unreadable> {
    m.get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Unreadable::Corrupt(format!("no {key} in the footer")))
}

/// Reads and checks a checkpoint.
///
/// # Errors
///
/// [`Unreadable::Corrupt`] for a file that is not a complete, intact checkpoint.
pub(crate) fn read(path: &Path) -> Result<Checkpoint, Unreadable> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(Unreadable::Io)?;
    let corrupt = |e: ArrowError| Unreadable::Corrupt(e.to_string());
    let reader = FileReader::try_new(io::Cursor::new(data.as_slice()), None).map_err(corrupt)?;
    let m = reader.custom_metadata().clone();
    let bytes = meta(&m, BYTES)?;
    let crc = meta(&m, CRC)?;
    let covered = usize::try_from(bytes)
        .ok()
        .and_then(|b| data.get(..b))
        .ok_or_else(|| Unreadable::Corrupt(format!("shorter than its {bytes} bytes")))?;
    if u64::from(crc32fast::hash(covered)) != crc {
        return Err(Unreadable::Corrupt(
            "the checksum does not match".to_owned(),
        ));
    }
    let mut schema = reader.schema();
    let mut batches = reader.collect::<Result<Vec<_>, _>>().map_err(corrupt)?;
    let recency = if m.get(RECENCY).is_some_and(|v| v == "1") {
        let (s, ranks) = split_recency(&schema, &mut batches)?;
        schema = s;
        Some(ranks)
    } else {
        None
    };
    let (start, end) = (meta(&m, START)?, meta(&m, END)?);
    let n: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if end < start || end - start != n {
        return Err(Unreadable::Corrupt(format!(
            "holds {n} rows for positions {start}..{end}"
        )));
    }
    Ok(Checkpoint {
        step: meta(&m, STEP)?,
        start,
        end,
        segment: meta(&m, SEGMENT)?,
        batches,
        schema,
        recency,
    })
}

/// Takes the recency column (the last) off `batches`: the table's schema and every row's
/// rank, checked to be a permutation of `0..rows`.
fn split_recency(
    schema: &SchemaRef,
    batches: &mut [RecordBatch],
) -> Result<(SchemaRef, Vec<u32>), Unreadable> {
    let corrupt = |e: ArrowError| Unreadable::Corrupt(e.to_string());
    let last = schema.fields().len().checked_sub(1);
    let is_recency = last.is_some_and(|l| {
        let f = schema.field(l);
        f.name() == RECENCY_COLUMN && f.data_type() == &DataType::UInt32
    });
    let Some(last) = last.filter(|_| is_recency) else {
        return Err(Unreadable::Corrupt(format!(
            "no {RECENCY_COLUMN} column, last, in a checkpoint that says it has one"
        )));
    };
    let table_schema = Arc::new(
        schema
            .project(&(0..last).collect::<Vec<_>>())
            .map_err(corrupt)?,
    );
    let mut ranks = Vec::new();
    for b in batches.iter_mut() {
        let col = b.column(last).clone();
        let r = col
            .as_any()
            .downcast_ref::<UInt32Array>()
            .filter(|r| r.null_count() == 0)
            .ok_or_else(|| Unreadable::Corrupt(format!("a null or mistyped {RECENCY_COLUMN}")))?;
        ranks.extend_from_slice(r.values());
        *b = RecordBatch::try_new(table_schema.clone(), b.columns()[..last].to_vec())
            .map_err(corrupt)?;
    }
    let mut seen = vec![false; ranks.len()];
    for &r in &ranks {
        match seen.get_mut(r as usize) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(Unreadable::Corrupt(format!(
                    "recency rank {r} repeated or out of 0..{}",
                    ranks.len()
                )))
            }
        }
    }
    Ok((table_schema, ranks))
}
