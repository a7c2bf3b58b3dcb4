//! Reading a file as ranges of whole records, the unit the parsing threads work on.
//!
//! # Record boundaries
//!
//! A range ends just after a line break that ends a record, so no record is split between two
//! ranges. Without `--newlines-in-values` every `\n` ends a record (a `\r\n` line ending is
//! fine: the `\r` goes with the record and the parser drops it), and finding where to cut is a
//! backward search from the end of each read. With it, a `\n` inside a quoted field (quotes
//! `"` doubled to escape, as RFC 4180 has them) does not end a record: the reader then scans
//! every byte, keeping track of whether it is inside quotes. Lines ending in a lone `\r` are
//! not supported.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Where a record ends in `buf`, which starts at a record boundary: the state of a scan that
/// can go on as `buf` grows.
#[derive(Debug, Default)]
struct Scan {
    /// How far `buf` has been scanned.
    pos: usize,
    /// Whether `pos` is inside a quoted field.
    quoted: bool,
    /// The end of the last whole record seen (just after its `\n`).
    cut: Option<usize>,
}

impl Scan {
    /// Scans `buf[pos..]`, remembering the last record end outside quotes; with `first`, stops
    /// at the first one.
    fn run(&mut self, buf: &[u8], quote: u8, first: bool) -> Option<usize> {
        for (i, &b) in buf.iter().enumerate().skip(self.pos) {
            if b == quote {
                self.quoted = !self.quoted;
            } else if b == b'\n' && !self.quoted {
                self.cut = Some(i + 1);
                if first {
                    self.pos = i + 1;
                    return self.cut;
                }
            }
        }
        self.pos = buf.len();
        self.cut
    }
}

/// The end of the first record of `buf` (just after its line break), outside quotes.
pub(crate) fn first_record_end(buf: &[u8], quote: u8) -> Option<usize> {
    Scan::default().run(buf, quote, true)
}

/// Splits one file into ranges of whole records of about `range_bytes` each.
#[derive(Debug)]
pub(crate) struct Splitter<R> {
    reader: R,
    /// Bytes read after the last range's end: the start of the next one.
    carry: Vec<u8>,
    eof: bool,
    range_bytes: usize,
    quote: Option<u8>,
    /// Time spent in `read` calls.
    pub(crate) read_time: Duration,
    /// Time spent finding record boundaries and moving the carried bytes.
    pub(crate) split_time: Duration,
}

impl<R: Read> Splitter<R> {
    /// A splitter of `reader`; `quote` is `Some` when quoted fields may hold line breaks.
    pub(crate) fn new(reader: R, range_bytes: usize, quote: Option<u8>) -> Self {
        Self {
            reader,
            carry: Vec::new(),
            eof: false,
            range_bytes: range_bytes.max(1),
            quote,
            read_time: Duration::ZERO,
            split_time: Duration::ZERO,
        }
    }

    /// Reads until `buf` holds `want` bytes or the file ends.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
        let started = Instant::now();
        while buf.len() < want && !self.eof {
            let missing = want - buf.len();
            buf.reserve(missing);
            // `read_to_end` reads into the spare capacity without zeroing it first.
            let limit = u64::try_from(missing).unwrap_or(u64::MAX);
            match (&mut self.reader).take(limit).read_to_end(buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.read_time += started.elapsed();
        Ok(())
    }

    /// The next range into `buf` (cleared first), or `false` at the end of the file. Every
    /// range ends with a line break (one is added at the end of a file that has none); a
    /// record longer than `range_bytes` makes its range longer.
    ///
    /// # Errors
    ///
    /// A read error.
    pub(crate) fn next_range(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let mut want = self.range_bytes;
        let mut scan = Scan::default();
        loop {
            self.fill(buf, want)?;
            if self.eof {
                if buf.last().is_some_and(|&b| b != b'\n') {
                    buf.push(b'\n');
                }
                return Ok(!buf.is_empty());
            }
            let started = Instant::now();
            let cut = match self.quote {
                None => buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1),
                Some(q) => scan.run(buf, q, false),
            };
            if let Some(end) = cut {
                self.carry.extend_from_slice(&buf[end..]);
                buf.truncate(end);
                self.split_time += started.elapsed();
                return Ok(true);
            }
            self.split_time += started.elapsed();
            want = want.saturating_mul(2);
        }
    }

    /// Reads the header record (the first one) and returns it; the ranges start after it.
    ///
    /// # Errors
    ///
    /// A read error.
    pub(crate) fn take_header(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut want = self.range_bytes.min(64 << 10);
        loop {
            self.fill(&mut buf, want)?;
            let end = match self.quote {
                None => buf.iter().position(|&b| b == b'\n').map(|i| i + 1),
                Some(q) => first_record_end(&buf, q),
            };
            if let Some(end) = end {
                self.carry = buf.split_off(end);
                return Ok(buf);
            }
            if self.eof {
                return Ok(buf);
            }
            want = want.saturating_mul(2);
        }
    }
}

/// How many `\n` bytes `bytes` holds.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    // Byte-wide counts over blocks of fewer than 256 bytes: the compiler vectorizes this.
    let blocks = bytes.chunks_exact(128);
    let tail = blocks.remainder();
    let mut n: u64 = blocks
        .map(|b| u64::from(b.iter().fold(0u8, |n, &x| n + u8::from(x == b'\n'))))
        .sum();
    n += tail.iter().map(|&x| u64::from(x == b'\n')).sum::<u64>();
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(input: &[u8], range_bytes: usize, quote: Option<u8>) -> Vec<Vec<u8>> {
        let mut s = Splitter::new(input, range_bytes, quote);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while s.next_range(&mut buf).unwrap() {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn smoke() {
        let input = b"a,1\nb,2\nc,3\n";
        let r = ranges(input, 9, None);
        assert_eq!(r, [b"a,1\nb,2\n".to_vec(), b"c,3\n".to_vec()]);
        assert_eq!(r.concat(), input);
    }

    #[test]
    fn ranges_cover_the_input_and_end_at_line_breaks() {
        let input: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i},{}\r\n", "x".repeat(i % 17)).into_bytes())
            .collect();
        for size in [1, 7, 64, 1000, 1 << 20] {
            let r = ranges(&input, size, None);
            assert_eq!(r.concat(), input, "size {size}");
            assert!(r.iter().all(|p| p.ends_with(b"\n")), "size {size}");
        }
        let unterminated = b"a\nb\nlast";
        assert_eq!(ranges(unterminated, 3, None).last().unwrap(), b"last\n");
    }

    #[test]
    fn quoted_line_breaks_stay_inside_a_range_when_asked() {
        let input = b"1,\"two\nlines\"\n2,\"a \"\"quote\"\"\nand more\"\n3,x\n";
        for size in 1..input.len() {
            let r = ranges(input, size, Some(b'"'));
            assert_eq!(r.concat(), input);
            for part in &r {
                let quotes: usize = part.iter().map(|&b| usize::from(b == b'"')).sum();
                assert_eq!(
                    quotes % 2,
                    0,
                    "size {size}: {:?}",
                    String::from_utf8_lossy(part)
                );
            }
        }
        // Without the option a quoted line break may be cut.
        assert!(ranges(input, 1, None).len() > 3);
    }

    #[test]
    fn the_header_is_the_first_record() {
        let mut s = Splitter::new(&b"\"a\nb\",c\n1,2\n"[..], 1, Some(b'"'));
        assert_eq!(s.take_header().unwrap(), b"\"a\nb\",c\n");
        let mut buf = Vec::new();
        assert!(s.next_range(&mut buf).unwrap());
        assert_eq!(buf, b"1,2\n");
        assert!(!s.next_range(&mut buf).unwrap());
        let mut only = Splitter::new(&b"a,b"[..], 1, None);
        assert_eq!(only.take_header().unwrap(), b"a,b");
        assert!(!only.next_range(&mut buf).unwrap());
    }

    #[test]
    fn newlines_are_counted() {
        assert_eq!(count_newlines(b""), 0);
        assert_eq!(count_newlines(b"a\nb\r\n\n"), 3);
        assert_eq!(count_newlines(&vec![b'\n'; 200_000]), 200_000);
    }
}
