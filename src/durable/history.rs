//! Reading a durable blink table's logged rows back, for a table of its history
//! ([`EngineHandle::history_table`](crate::EngineHandle::history_table)).
//!
//! Read-only and without any engine lock, while the writer may be appending to the newest
//! segment: the caller first has the writer hand every record it holds to the OS
//! ([`Durable::flush`](crate::durable::writer::Durable::flush)), so every record up to the
//! positions asked for is complete in the files. A record past them may be half-written:
//! reading stops at the first frame that does not check, and nothing is truncated (replay,
//! when the table was created, already cut any damaged tail off).

use std::ops::Range;
use std::path::PathBuf;

use arrow_array::RecordBatch;

use crate::durable::files::{self, SegmentReader};
use crate::durable::format::{Kind, RowsRecord, HEADER_LEN};
use crate::durable::replay::relabel;
use crate::durable::writer::TableLog;
use crate::error::{Error, Result};

/// Where a read stopped: the segment and the offset of the first record it did not take, so
/// that the next read of later rows starts there instead of at the log's start.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    segment: u64,
    offset: u64,
}

/// A rows record that holds some of the rows asked for.
struct Found {
    path: PathBuf,
    offset: u64,
    /// The offset just past the record.
    end: u64,
    first: u64,
    rows: u64,
}

/// The rows of `log`'s table at positions `want`, in order, as the table's schema; where
/// the log starts after `want.start` (its oldest segments were deleted by hand), the rows
/// from where it starts. Two passes: one over the frames (checked, not decoded) to find the
/// records that hold them (reading, not mapping: the newest segment may have a record being
/// written past them), one decoding only those, in place. The first pass starts at `cursor` and
/// leaves it where it stopped: reads of consecutive ranges cost O(their records), not
/// O(log).
///
/// # Errors
///
/// [`Error::Io`] if a file cannot be read, or if the log does not hold every row from the
/// first it has up to `want.end` (a gap: rows the history cannot give).
pub(crate) fn read(
    log: &TableLog,
    want: Range<u64>,
    cursor: &mut Cursor,
) -> Result<Vec<RecordBatch>> {
    if want.is_empty() {
        return Ok(Vec::new());
    }
    let found = find(log, &want, cursor)?;
    let mut scratch = Vec::new();
    let mut at = match found.first() {
        Some(f) => f.first.max(want.start),
        None => want.end,
    };
    let mut out = Vec::with_capacity(found.len());
    // Each segment is mapped once, up to the end of the last record wanted from it: those
    // records are complete and never written again (the writer only appends), so the rows
    // are read in place (`durable/mapped.rs`).
    let mut mapped: Option<(PathBuf, SegmentReader)> = None;
    for (i, f) in found.iter().enumerate() {
        if f.first > at {
            return Err(gap(log, &format!("no rows at positions {at}..{}", f.first)));
        }
        if mapped.as_ref().is_none_or(|(p, _)| p != &f.path) {
            let upto = found[i..]
                .iter()
                .take_while(|g| g.path == f.path)
                .map(|g| g.end)
                .max();
            mapped = Some((
                f.path.clone(),
                SegmentReader::open_mapped_upto(&f.path, upto)?,
            ));
        }
        let (_, reader) = mapped.as_mut().expect("invariant: mapped above");
        reader.seek(f.offset)?;
        let Ok(Some(rec)) = reader.next(true, &mut scratch)? else {
            return Err(gap(
                log,
                &format!("{} changed while it was read", f.path.display()),
            ));
        };
        let r = RowsRecord::decode(rec.payload).map_err(|e| gap(log, &e))?;
        // The record's rows are `f.first..f.first + f.rows`; keep those in `at..want.end`.
        let mut pos = f.first;
        for b in relabel(&log.schema, r.batches)? {
            let n = b.num_rows() as u64;
            let (from, to) = (at.max(pos), want.end.min(pos + n));
            if from < to {
                #[allow(clippy::cast_possible_truncation)] // within one batch
                out.push(b.slice((from - pos) as usize, (to - from) as usize));
                at = to;
            }
            pos += n;
        }
        debug_assert_eq!(pos, f.first + f.rows);
    }
    if at < want.end {
        return Err(gap(
            log,
            &format!("no rows at positions {at}..{}", want.end),
        ));
    }
    Ok(out)
}

/// The first pass of [`read`]: the rows records holding rows of `want`, from `cursor` on
/// (left at the first record a later read needs).
fn find(log: &TableLog, want: &Range<u64>, cursor: &mut Cursor) -> Result<Vec<Found>> {
    let mut found: Vec<Found> = Vec::new();
    let mut scratch = Vec::new();
    'segments: for (index, path) in files::segments(&log.dir)? {
        if index < cursor.segment {
            continue;
        }
        let mut reader = SegmentReader::open(&path)?;
        if index == cursor.segment {
            reader.seek(cursor.offset)?;
        }
        *cursor = Cursor {
            segment: index,
            offset: 0,
        };
        loop {
            let rec = match reader.next(false, &mut scratch)? {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    cursor.offset = reader.len();
                    continue 'segments;
                }
                // A record being written past what was asked for.
                Err(bad) => {
                    cursor.offset = bad.offset;
                    continue 'segments;
                }
            };
            cursor.offset = rec.offset;
            if rec.frame.kind != Kind::Rows {
                continue;
            }
            let (first, rows) =
                RowsRecord::decode_positions(&rec.payload).map_err(|e| gap(log, &e))?;
            if first >= want.end {
                break 'segments;
            }
            if first + rows > want.start {
                found.push(Found {
                    path: path.clone(),
                    offset: rec.offset,
                    end: rec.offset + HEADER_LEN as u64 + rec.frame.len,
                    first,
                    rows,
                });
            }
            if first + rows > want.end {
                // Its later rows are for the next read, which starts at it (the cursor).
                break 'segments;
            }
        }
    }
    Ok(found)
}

fn gap(log: &TableLog, reason: &str) -> Error {
    Error::Io(std::io::Error::other(format!(
        "the log of {:?} cannot give its history: {reason}",
        log.name
    )))
}
