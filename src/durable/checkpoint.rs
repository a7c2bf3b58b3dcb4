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
//!
//! It is written as `*.tmp`, synced, renamed and its directory synced, so a checkpoint file
//! that exists is complete; the checksum still catches a file damaged later.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{ArrowError, SchemaRef};

use crate::durable::files::{checkpoint_path, sync_dir, TMP_EXT};
use crate::table::chunk::ChunkLog;

const STEP: &str = "tickertable.checkpoint.step";
const START: &str = "tickertable.checkpoint.start";
const END: &str = "tickertable.checkpoint.end";
const SEGMENT: &str = "tickertable.checkpoint.segment";
const BYTES: &str = "tickertable.checkpoint.bytes";
const CRC: &str = "tickertable.checkpoint.crc";

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
    rows: &ChunkLog,
) -> Result<(PathBuf, u64), ArrowError> {
    let path = checkpoint_path(dir, step);
    let tmp = path.with_extension(TMP_EXT);
    let result = (|| {
        let file = File::create(&tmp)?;
        let sink = Summing {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        let mut w = FileWriter::try_new(sink, schema)?;
        for chunk in rows.chunks() {
            // Chunks carry the table's schema; a batch relabelled to it is the same data.
            let batch = RecordBatch::try_new(schema.clone(), chunk.batch.columns().to_vec())?;
            w.write(&batch)?;
        }
        let range = rows.rows();
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
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(corrupt)?;
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
    })
}
