//! The load pipeline: one thread reads the files as ranges of whole records, `--threads`
//! threads parse ranges into Arrow batches, and the calling thread publishes them in file
//! order.
//!
//! # Order and memory
//!
//! Ranges are numbered as read, files one after another; parsed ranges come back in any order
//! and are published strictly by number, so a table gets the files' rows in order (and a keyed
//! table ends with the last line of each key, across files too). A fixed set of range buffers
//! circulates: the reader fills a free one, a parser parses it, and it is free again once its
//! batches are published. So at most that many ranges are in flight, whatever the speed of
//! the table or the server, and a slow sink slows the reading down rather than fill memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use parking_lot::Mutex;

use crate::decode::Plan;
use crate::sink::Sink;
use crate::split::{count_newlines, Splitter};

/// A line that was not loaded, and why.
#[derive(Debug, Clone)]
pub(crate) struct LineError {
    pub(crate) file: PathBuf,
    pub(crate) line: u64,
    pub(crate) message: String,
}

/// What a load is told: the files, how to split and parse them, how many errors to keep.
#[derive(Debug)]
pub(crate) struct Job<'a> {
    pub(crate) files: &'a [PathBuf],
    pub(crate) header: bool,
    pub(crate) quote: Option<u8>,
    pub(crate) range_bytes: usize,
    pub(crate) threads: usize,
    pub(crate) keep_errors: usize,
    pub(crate) plan: &'a Plan,
}

/// Counters the progress bar reads while the load runs.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Records (good and bad) published or refused.
    pub(crate) lines: AtomicU64,
    /// Bytes of the files whose records are done.
    pub(crate) bytes: AtomicU64,
}

/// What a load did, besides what the sink reports.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Records read: good and bad lines.
    pub(crate) lines: u64,
    /// Bad lines.
    pub(crate) bad_lines: u64,
    /// The first bad lines, in file order.
    pub(crate) first: Vec<LineError>,
    /// Bytes of the files read.
    pub(crate) bytes: u64,
    /// Time in `read` calls, and finding record boundaries (the reader thread).
    pub(crate) read_time: Duration,
    pub(crate) split_time: Duration,
    /// Time parsing, summed over the parsing threads.
    pub(crate) parse_time: Duration,
}

/// A range to parse.
struct Range {
    seq: u64,
    file: usize,
    /// On a file's first range: the line number of its first byte.
    first_line: Option<u64>,
    bytes: Vec<u8>,
}

/// A parsed range.
struct Parsed {
    seq: u64,
    file: usize,
    first_line: Option<u64>,
    decoded: crate::decode::Decoded,
    /// The range's buffer, to be used again once the range is published.
    buffer: Vec<u8>,
    len: u64,
}

/// Loads the files into `sink`, in order, while `tick` runs about every 100 ms.
///
/// # Errors
///
/// A file that cannot be read, or a thread that panicked. Bad lines and a sink that stops
/// are not errors: they are in the outcome and the sink's report.
pub(crate) fn run(
    job: &Job<'_>,
    sink: &mut Sink,
    progress: &Progress,
    tick: &mut dyn FnMut(),
) -> Result<Outcome> {
    let threads = job.threads.max(1);
    let buffers = 2 * threads + 2;
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(buffers);
    for _ in 0..buffers {
        free_tx
            .send(Vec::new())
            .map_err(|_| anyhow!("invariant: the free list has room for every buffer"))?;
    }
    let (range_tx, range_rx) = mpsc::channel::<Range>();
    let range_rx = Mutex::new(range_rx);
    let (parsed_tx, parsed_rx) = mpsc::channel::<Parsed>();
    let stop = AtomicBool::new(false);
    let parse_nanos = AtomicU64::new(0);
    std::thread::scope(|scope| -> Result<Outcome> {
        let stop_ref = &stop;
        // The reader owns the range sender: when it ends, the parsers run out of ranges.
        let reader = std::thread::Builder::new()
            .name("ticker-load-read".into())
            .spawn_scoped(scope, move || {
                read_files(job, &free_rx, &range_tx, stop_ref)
            })
            .context("starting the reader thread")?;
        let mut parsers = Vec::new();
        for i in 0..threads {
            let parsed_tx = parsed_tx.clone();
            let (range_rx, stop, parse_nanos) = (&range_rx, &stop, &parse_nanos);
            parsers.push(
                std::thread::Builder::new()
                    .name(format!("ticker-load-parse-{i}"))
                    .spawn_scoped(scope, move || {
                        parse_ranges(job, range_rx, &parsed_tx, stop, parse_nanos);
                    })
                    .context("starting a parsing thread")?,
            );
        }
        drop(parsed_tx);
        let mut outcome = publish_in_order(job, sink, &parsed_rx, &free_tx, progress, &stop, tick);
        // Whatever happened, let the reader and parsers end.
        stop.store(true, Ordering::Relaxed);
        drop(free_tx);
        drop(parsed_rx);
        for p in parsers {
            p.join().map_err(|_| anyhow!("a parsing thread panicked"))?;
        }
        let (read_time, split_time) = reader
            .join()
            .map_err(|_| anyhow!("the reader thread panicked"))??;
        outcome.read_time = read_time;
        outcome.split_time = split_time;
        outcome.parse_time = Duration::from_nanos(parse_nanos.load(Ordering::Relaxed));
        Ok(outcome)
    })
}

/// The reader thread: every file as ranges, numbered in order. Returns its read and split
/// times.
fn read_files(
    job: &Job<'_>,
    free: &Receiver<Vec<u8>>,
    ranges: &Sender<Range>,
    stop: &AtomicBool,
) -> Result<(Duration, Duration)> {
    let (mut read_time, mut split_time) = (Duration::ZERO, Duration::ZERO);
    let mut seq = 0;
    // A free buffer not used yet (the end of a file was found with it).
    let mut spare = None;
    for (file, path) in job.files.iter().enumerate() {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut splitter = Splitter::new(f, job.range_bytes, job.quote);
        let mut first_line = Some(if job.header {
            let header = splitter
                .take_header()
                .with_context(|| format!("reading {}", path.display()))?;
            1 + count_newlines(&header)
        } else {
            1
        });
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok((read_time, split_time));
            }
            // A free buffer, or the load is over.
            let mut buffer = match spare.take() {
                Some(b) => b,
                None => match free.recv() {
                    Ok(b) => b,
                    Err(_) => return Ok((read_time, split_time)),
                },
            };
            let more = splitter
                .next_range(&mut buffer)
                .with_context(|| format!("reading {}", path.display()))?;
            if !more {
                spare = Some(buffer);
                break;
            }
            let range = Range {
                seq,
                file,
                first_line: first_line.take(),
                bytes: buffer,
            };
            seq += 1;
            if ranges.send(range).is_err() {
                return Ok((read_time, split_time));
            }
        }
        read_time += splitter.read_time;
        split_time += splitter.split_time;
    }
    Ok((read_time, split_time))
}

/// A parsing thread: takes ranges until there are none, parses them, sends them back.
fn parse_ranges(
    job: &Job<'_>,
    ranges: &Mutex<Receiver<Range>>,
    parsed: &Sender<Parsed>,
    stop: &AtomicBool,
    parse_nanos: &AtomicU64,
) {
    let mut scratch = crate::decode::Scratch::default();
    loop {
        let next = ranges.lock().recv();
        let Ok(range) = next else { return };
        let started = Instant::now();
        let decoded = if stop.load(Ordering::Relaxed) {
            crate::decode::Decoded::default()
        } else {
            job.plan
                .decode_range(&range.bytes, job.keep_errors, &mut scratch)
        };
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        parse_nanos.fetch_add(nanos, Ordering::Relaxed);
        let done = Parsed {
            seq: range.seq,
            file: range.file,
            first_line: range.first_line,
            decoded,
            len: range.bytes.len() as u64,
            buffer: range.bytes,
        };
        if parsed.send(done).is_err() {
            return;
        }
    }
}

/// The calling thread: publishes parsed ranges by number, counts lines and bad lines, and
/// frees each range's buffer once it is published.
fn publish_in_order(
    job: &Job<'_>,
    sink: &mut Sink,
    parsed: &Receiver<Parsed>,
    free: &SyncSender<Vec<u8>>,
    progress: &Progress,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(),
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut waiting: BTreeMap<u64, Parsed> = BTreeMap::new();
    let mut next = 0;
    let mut line = 1;
    let mut last_tick = Instant::now();
    loop {
        match parsed.recv_timeout(Duration::from_millis(100)) {
            Ok(p) => {
                waiting.insert(p.seq, p);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Some(p) = waiting.remove(&next) {
            next += 1;
            if let Some(first) = p.first_line {
                line = first;
            }
            let d = p.decoded;
            outcome.bad_lines += d.bad_lines;
            for bad in d.bad {
                if outcome.first.len() < job.keep_errors {
                    outcome.first.push(LineError {
                        file: job.files[p.file].clone(),
                        line: line + bad.offset,
                        message: bad.message,
                    });
                }
            }
            line += d.newlines;
            let records = d.rows + d.bad_lines;
            // A sink that stopped counts what it is given as not written; stop reading.
            if !sink.publish(d.batches) {
                stop.store(true, Ordering::Relaxed);
            }
            outcome.lines += records;
            outcome.bytes += p.len;
            progress.lines.fetch_add(records, Ordering::Relaxed);
            progress.bytes.fetch_add(p.len, Ordering::Relaxed);
            // The reader may be gone (stopped); then the buffer is just dropped.
            let _ = free.try_send(p.buffer);
        }
        if last_tick.elapsed() >= Duration::from_millis(100) {
            tick();
            last_tick = Instant::now();
        }
    }
    outcome
}
