//! Reading CSV files into a multithreaded writer, one reader thread per file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use arrow_schema::SchemaRef;
use parking_lot::Mutex;
use tickertable::{MultithreadedTableWriter, Value};

use crate::schema::value;

/// A line that was not loaded, and why.
#[derive(Debug, Clone)]
pub(crate) struct LineError {
    pub(crate) file: PathBuf,
    pub(crate) line: u64,
    pub(crate) message: String,
}

/// Counters shared by the reader threads.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub(crate) lines: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

/// Bad lines: all counted, the first `keep` kept.
#[derive(Debug)]
pub(crate) struct Errors {
    keep: usize,
    first: Mutex<Vec<LineError>>,
}

impl Errors {
    pub(crate) fn new(keep: usize) -> Self {
        Self {
            keep,
            first: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, e: LineError) {
        let mut first = self.first.lock();
        if first.len() < self.keep {
            first.push(e);
        }
    }

    pub(crate) fn into_first(self) -> Vec<LineError> {
        let mut v = self.first.into_inner();
        v.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        v
    }
}

pub(crate) fn csv_reader(path: &Path, header: bool, delimiter: u8) -> Result<csv::Reader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(header)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(file))
}

/// Reads one file and inserts its good lines; bad lines are counted and kept in `errors`.
pub(crate) fn load_file(
    path: &Path,
    header: bool,
    delimiter: u8,
    schema: &SchemaRef,
    mtw: &MultithreadedTableWriter,
    progress: &Progress,
    errors: &Errors,
) -> Result<()> {
    let mut reader = csv_reader(path, header, delimiter)?;
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let mut record = csv::StringRecord::new();
    let mut last_byte = 0;
    let mut since_update = 0u32;
    loop {
        let read = reader.read_record(&mut record);
        // The position of the record just read (a header is read lazily before the first).
        let line = match &read {
            Ok(_) => record.position().map_or(0, csv::Position::line),
            Err(e) => e.position().map_or(0, csv::Position::line),
        };
        let fail = |message: String| {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            errors.push(LineError {
                file: path.to_owned(),
                line,
                message,
            });
        };
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                progress.lines.fetch_add(1, Ordering::Relaxed);
                fail(format!("unreadable line: {e}"));
                continue;
            }
        }
        progress.lines.fetch_add(1, Ordering::Relaxed);
        if record.len() != types.len() {
            fail(format!(
                "expected {} fields, found {}",
                types.len(),
                record.len()
            ));
            continue;
        }
        let row: Result<Vec<Value<'_>>, String> = record
            .iter()
            .zip(&types)
            .zip(schema.fields())
            .map(|((field, dt), f)| {
                value(field, dt).map_err(|e| format!("column {:?}: {e}", f.name()))
            })
            .collect();
        match row {
            Err(message) => fail(message),
            Ok(row) => match mtw.insert(&row) {
                Ok(()) => {
                    progress.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => fail(e.to_string()),
            },
        }
        since_update += 1;
        if since_update == 4096 {
            since_update = 0;
            let byte = reader.position().byte();
            progress
                .bytes
                .fetch_add(byte - last_byte, Ordering::Relaxed);
            last_byte = byte;
        }
    }
    progress
        .bytes
        .fetch_add(reader.position().byte() - last_byte, Ordering::Relaxed);
    Ok(())
}
