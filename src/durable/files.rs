//! Where a durable table's files are, and reading and writing frames in them.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use arrow_buffer::{Buffer, MutableBuffer};

use crate::durable::format::{Encoded, Frame, Kind, RowsRecord, HEADER_LEN};
use crate::durable::mapped;

/// The extension of log segments.
pub(crate) const SEGMENT_EXT: &str = "ttlog";
/// The extension of checkpoints (Arrow IPC files).
pub(crate) const CHECKPOINT_EXT: &str = "arrow";
/// What files being written are called until they are complete.
pub(crate) const TMP_EXT: &str = "tmp";

/// A table's directory name: the name with every byte outside `[A-Za-z0-9_-]` (and a
/// leading `.`) written `%XX`, so any name maps to one safe directory and back.
pub(crate) fn dir_name(table: &str) -> String {
    let mut out = String::with_capacity(table.len());
    for b in table.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && !out.is_empty()) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The table name of directory `dir` ([`dir_name`] read back), or `None` if `dir` is not one
/// `dir_name` makes.
pub(crate) fn table_name(dir: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(dir.len());
    let mut it = dir.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    let name = String::from_utf8(bytes).ok()?;
    (dir_name(&name) == dir).then_some(name)
}

/// The file of segment `index`.
pub(crate) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("log-{index:012}.{SEGMENT_EXT}"))
}

/// The checkpoint taken at `step`.
pub(crate) fn checkpoint_path(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("checkpoint-{step:020}.{CHECKPOINT_EXT}"))
}

/// The files of `dir` named `{prefix}{number}.{ext}`, by number.
fn numbered(dir: &Path, prefix: &str, ext: &str) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let number = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(ext))
            .and_then(|r| r.strip_suffix('.'))
            .and_then(|r| r.parse::<u64>().ok());
        if let Some(n) = number {
            out.push((n, path));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A table's segments, oldest first.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    numbered(dir, "log-", SEGMENT_EXT)
}

/// A table's checkpoints by step, oldest first.
pub(crate) fn checkpoints(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    numbered(dir, "checkpoint-", CHECKPOINT_EXT)
}

/// Removes what a crash left half-written (`*.tmp`).
pub(crate) fn remove_tmp(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == TMP_EXT) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Makes a directory's entries (new, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A buffer of `len` bytes whose start is 64-byte aligned, so Arrow arrays decoded from it
/// are not copied.
pub(crate) fn aligned(len: usize) -> MutableBuffer {
    MutableBuffer::from_len_zeroed(len)
}

/// One record read back: its frame, its offset in the file, its payload.
pub(crate) struct ReadRecord {
    pub(crate) frame: Frame,
    pub(crate) offset: u64,
    pub(crate) payload: Buffer,
}

/// Why reading stopped before the end of a file.
#[derive(Debug)]
pub(crate) struct Bad {
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

/// What reading a record gives: `Ok(None)` at a clean end, `Err(Bad)` at a torn or corrupt
/// record; the outer `Err` is a read error, which is not corruption.
pub(crate) type ReadResult<T> = io::Result<Result<Option<T>, Bad>>;

/// Reads a segment's records in order, checking each frame's checksum.
pub(crate) struct SegmentReader {
    file: BufReader<File>,
    /// The segment, or its first `len` bytes, mapped ([`open_mapped`](Self::open_mapped)):
    /// records are slices of it, and `file` is not read.
    map: Option<Buffer>,
    offset: u64,
    len: u64,
}

impl SegmentReader {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            // Large payloads bypass the buffer (std reads them straight into ours).
            file: BufReader::with_capacity(1 << 16, file),
            map: None,
            offset: 0,
            len,
        })
    }

    /// As [`open`](Self::open), with the segment mapped into memory (`durable/mapped.rs`):
    /// a kept record's payload is then a slice of the mapping, not a copy. Falls back to
    /// reading if the mapping is refused.
    pub(crate) fn open_mapped(path: &Path) -> io::Result<Self> {
        Self::open_mapped_upto(path, None)
    }

    /// As [`open_mapped`](Self::open_mapped), mapping and reading only the first `upto`
    /// bytes (all of them with `None`): a segment still being appended to, up to the end of
    /// records known to be complete.
    pub(crate) fn open_mapped_upto(path: &Path, upto: Option<u64>) -> io::Result<Self> {
        let mut reader = Self::open(path)?;
        if let Some(upto) = upto {
            reader.len = reader.len.min(upto);
        }
        match mapped::map(reader.file.get_ref(), reader.len) {
            Ok(map) => reader.map = map,
            Err(e) => {
                let path = path.display();
                tracing::debug!(error = %e, %path, "tickertable: a segment not mapped is read");
            }
        }
        Ok(reader)
    }

    /// With a mapping, its `len` bytes `skip` bytes past the reading position (which is
    /// not moved); `None` without one.
    fn mapped_bytes(&self, skip: usize, len: usize) -> Option<Buffer> {
        let map = self.map.as_ref()?;
        let at = usize::try_from(self.offset).expect("invariant: a mapped offset fits a usize");
        Some(map.slice_with_length(at + skip, len))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The next frame header, checked as far as it goes alone.
    fn header(&mut self) -> ReadResult<(Frame, [u8; HEADER_LEN])> {
        let offset = self.offset;
        let left = self.len - offset;
        if left == 0 {
            return Ok(Ok(None));
        }
        let bad = |reason: String| Ok(Err(Bad { offset, reason }));
        if left < HEADER_LEN as u64 {
            return bad(format!(
                "a torn record header ({left} of {HEADER_LEN} bytes)"
            ));
        }
        let mut header = [0u8; HEADER_LEN];
        match self.mapped_bytes(0, HEADER_LEN) {
            Some(m) => header.copy_from_slice(m.as_slice()),
            None => self.file.read_exact(&mut header)?,
        }
        let frame = match Frame::parse(&header) {
            Ok(f) => f,
            Err(reason) => return bad(reason),
        };
        if frame.len > left - HEADER_LEN as u64 {
            return bad(format!(
                "a torn record ({} of {} payload bytes)",
                left - HEADER_LEN as u64,
                frame.len
            ));
        }
        Ok(Ok(Some((frame, header))))
    }

    /// The next record, `Ok(None)` at a clean end, `Err(Bad)` at a torn or corrupt one
    /// (the outer `Err` is a read error, which is not corruption). A rows record is only
    /// checked, not kept, unless `keep_rows`: its payload is then its first 24 bytes (its
    /// positions), and `scratch` is reused for the rest.
    pub(crate) fn next(
        &mut self,
        keep_rows: bool,
        scratch: &mut Vec<u8>,
    ) -> ReadResult<ReadRecord> {
        let offset = self.offset;
        let (frame, header) = match self.header()? {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(Ok(None)),
            Err(bad) => return Ok(Err(bad)),
        };
        let len = usize::try_from(frame.len).map_err(|_| io::ErrorKind::InvalidData)?;
        let (ok, payload) = if let Some(payload) = self.mapped_bytes(HEADER_LEN, len) {
            let ok = frame.check(&header, payload.as_slice());
            if keep_rows || frame.kind != Kind::Rows {
                (ok, payload)
            } else {
                (ok, RowsRecord::head(payload.as_slice()))
            }
        } else if keep_rows || frame.kind != Kind::Rows {
            let mut payload = aligned(len);
            self.file.read_exact(payload.as_slice_mut())?;
            (frame.check(&header, payload.as_slice()), payload.into())
        } else {
            scratch.resize(len, 0);
            self.file.read_exact(scratch)?;
            let head = RowsRecord::head(scratch);
            (frame.check(&header, scratch), head)
        };
        if !ok {
            return Ok(Err(Bad {
                offset,
                reason: "the checksum does not match".to_owned(),
            }));
        }
        self.offset += HEADER_LEN as u64 + frame.len;
        Ok(Ok(Some(ReadRecord {
            frame,
            offset,
            payload,
        })))
    }

    /// Moves to `offset`, a record boundary found by an earlier pass.
    pub(crate) fn seek(&mut self, offset: u64) -> io::Result<()> {
        use std::io::Seek;
        if self.map.is_none() {
            self.file.seek(io::SeekFrom::Start(offset))?;
        }
        self.offset = offset;
        Ok(())
    }
}

/// The size from which a record is written with `writev` instead of through the buffer.
const DIRECT_RECORD_BYTES: u64 = 256 << 10;

/// Most slices one `writev` takes (Linux's `IOV_MAX`).
const MAX_SLICES: usize = 1024;

/// Writes every byte of `slices` (`Write::write_all_vectored` is not stable): `writev` of
/// at most [`MAX_SLICES`] at a time, advancing past what each call wrote.
fn write_all_vectored(file: &mut File, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let upto = slices.len().min(MAX_SLICES);
        match file.write_vectored(&slices[..upto]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Truncates `path` to `len` bytes and syncs it.
pub(crate) fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

/// A segment being appended to.
pub(crate) struct SegmentWriter {
    pub(crate) index: u64,
    file: BufWriter<File>,
    pub(crate) bytes: u64,
}

impl SegmentWriter {
    /// Creates segment `index` in `dir` (it must not exist) and writes `header` into it.
    pub(crate) fn create(dir: &Path, index: u64, header: &Encoded) -> io::Result<Self> {
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut w = Self {
            index,
            file: BufWriter::with_capacity(1 << 20, file),
            bytes: 0,
        };
        w.write(header)?;
        Ok(w)
    }

    /// Appends a record (buffered: [`flush`](Self::flush) hands it to the OS).
    ///
    /// A record smaller than [`DIRECT_RECORD_BYTES`] is copied into the buffer, so a cycle's
    /// small records reach the OS in one `write`; a bigger one is written straight from its
    /// batches' buffers with `writev` (after what is buffered), never copied in user space:
    /// a W3 cycle's record is hundreds of megabytes, and the copy into the buffer cost the
    /// writer about a quarter of its time.
    pub(crate) fn write(&mut self, record: &Encoded) -> io::Result<u64> {
        let n = record.len();
        if n < DIRECT_RECORD_BYTES {
            self.file.write_all(&record.header)?;
            for p in &record.parts {
                self.file.write_all(p.as_slice())?;
            }
        } else {
            self.file.flush()?;
            let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(1 + record.parts.len());
            slices.push(io::IoSlice::new(&record.header));
            slices.extend(
                record
                    .parts
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| io::IoSlice::new(p.as_slice())),
            );
            write_all_vectored(self.file.get_mut(), &mut slices)?;
        }
        self.bytes += n;
        Ok(n)
    }

    /// Hands what is buffered to the OS: it survives the process, not the machine.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    /// Flushes and syncs the file's data to disk.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        assert_eq!(dir_name("trades"), "trades");
        assert_eq!(dir_name("a/b c"), "a%2Fb%20c");
        assert_eq!(dir_name(".hidden"), "%2Ehidden");
        assert_eq!(dir_name("x.y"), "x.y");
        assert_eq!(dir_name("é"), "%C3%A9");
    }

    /// Records below and above the `writev` size, interleaved (and one with more parts than a
    /// `writev` takes), read back byte for byte in order, and the segment's length is theirs.
    #[test]
    #[allow(clippy::cast_possible_truncation)] // test bytes: wrapping on purpose
    fn small_and_direct_records_read_back_in_order() {
        use crate::step::Step;
        let dir = std::env::temp_dir().join(format!("tickertable-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("test dir");
        let part = |len: usize, seed: u8| {
            Buffer::from_vec(
                (0..len)
                    .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                    .collect(),
            )
        };
        let records: Vec<Encoded> = vec![
            Encoded::new(Kind::Close, Step(1), vec![part(40, 1)]),
            Encoded::new(Kind::Close, Step(2), vec![part(300 << 10, 2), part(5, 3)]),
            Encoded::new(Kind::Close, Step(3), vec![part(1000, 4)]),
            Encoded::new(
                Kind::Close,
                Step(4),
                (0..3000u32).map(|i| part(100, i as u8)).collect(),
            ),
            Encoded::new(Kind::Close, Step(5), vec![part(7, 5)]),
        ];
        let header = Encoded::new(Kind::Close, Step(0), vec![part(16, 9)]);
        let mut w = SegmentWriter::create(&dir, 0, &header).expect("create");
        for r in &records {
            w.write(r).expect("write");
        }
        w.sync().expect("sync");
        let expected: u64 = header.len() + records.iter().map(Encoded::len).sum::<u64>();
        assert_eq!(w.bytes, expected);
        let mut reader = SegmentReader::open(&segment_path(&dir, 0)).expect("open");
        assert_eq!(reader.len(), expected);
        let mut scratch = Vec::new();
        for (step, want) in std::iter::once(&header).chain(&records).enumerate() {
            let got = reader
                .next(true, &mut scratch)
                .expect("read")
                .expect("intact")
                .expect("a record");
            let bytes: Vec<u8> = want
                .parts
                .iter()
                .flat_map(|p| p.as_slice().to_vec())
                .collect();
            assert_eq!(got.payload.as_slice(), &bytes[..]);
            assert_eq!(got.frame.step, Step(step as u64));
        }
        assert!(reader
            .next(true, &mut scratch)
            .expect("read")
            .expect("clean")
            .is_none());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_directory_name_reads_back_as_its_table_name() {
        for name in ["trades", "a/b c", ".hidden", "x.y", "é", "100%", "%2F"] {
            assert_eq!(table_name(&dir_name(name)).as_deref(), Some(name), "{name}");
        }
        for not_one in ["%2e", "%2", "%ZZ", ".lock", "a b"] {
            assert_eq!(table_name(not_one), None, "{not_one}");
        }
    }
}
