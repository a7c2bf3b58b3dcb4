//! Replay: a durable table's checkpoint and log read back into its storage, before the table
//! is added to the graph (no lock is held while the files are read).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_schema::{Schema, SchemaRef};

use crate::durable::checkpoint::{self, Checkpoint, Unreadable};
use crate::durable::files::{self, SegmentReader, SegmentWriter};
use crate::durable::format::{CloseRecord, Kind, RowsRecord, SegmentHeader, Shape};
use crate::durable::writer::Durable;
use crate::durable::ReplayReport;
use crate::error::{Error, Result};
use crate::step::Step;
use crate::table::kind::Retention;
use crate::table::state::TableState;

/// A table read back from its files, ready to be added to the graph.
pub(crate) struct Opened<'a> {
    /// The rebuilt storage (taken when the table is added).
    pub(crate) state: Option<TableState>,
    /// The largest step in the table's files: the engine's step must be at least this.
    pub(crate) last_step: Step,
    pub(crate) report: ReplayReport,
    pub(crate) shape: Shape,
    /// The segment new records go to.
    pub(crate) segment: Option<SegmentWriter>,
    /// The table's end position.
    pub(crate) end: u64,
    name: Arc<str>,
    durable: &'a Durable,
}

impl Drop for Opened<'_> {
    /// A table that was not added after all gives its name back.
    fn drop(&mut self) {
        if self.segment.is_some() {
            self.durable.open_names.lock().remove(&self.name);
        }
    }
}

impl Opened<'_> {
    /// Takes the segment for the writer: the table is added, its name stays taken.
    pub(crate) fn take_segment(&mut self) -> SegmentWriter {
        self.segment.take().expect("invariant: taken once")
    }
}

/// Holds a table's name while it is replayed; gives it back unless kept.
struct Reservation<'a> {
    durable: &'a Durable,
    name: Arc<str>,
    keep: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.keep {
            self.durable.open_names.lock().remove(&self.name);
        }
    }
}

/// The columns of a schema as errors name them: `[Ts: Int64, Sym: Utf8?]`.
fn describe(schema: &Schema) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "?" } else { "" };
            format!("{}: {}{null}", f.name(), f.data_type())
        })
        .collect();
    format!("[{}]", cols.join(", "))
}

fn check_schema(table: &str, logged: &Schema, given: &Schema) -> Result<()> {
    if logged.fields() == given.fields() {
        Ok(())
    } else {
        Err(Error::SchemaChanged {
            table: table.to_owned(),
            logged: describe(logged),
            given: describe(given),
        })
    }
}

/// Relabels decoded batches with the table's schema (the same columns, checked at open).
pub(crate) fn relabel(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    batches
        .into_iter()
        .map(|b| Ok(RecordBatch::try_new(schema.clone(), b.columns().to_vec())?))
        .collect()
}

/// A ring's record found by the scan, decoded later if its rows are kept.
struct Pending {
    path: PathBuf,
    offset: u64,
    first: u64,
    rows: u64,
    step: Step,
}

/// Replay's progress through the segments.
struct Scan<'s> {
    name: &'s str,
    schema: &'s SchemaRef,
    shape: &'s Shape,
    state: TableState,
    report: ReplayReport,
    /// Records at or before this step are in the checkpoint.
    after: Step,
    last_step: Step,
    last_rows_step: Step,
    /// The next position expected (append, blink, ring).
    pos: Option<u64>,
    pending: Vec<Pending>,
}

impl Scan<'_> {
    fn positional(&self) -> bool {
        self.shape.key.is_empty()
    }

    /// Takes one record; `Err(Ok(reason))` is corruption at it, `Err(Err(e))` a refusal.
    fn record(
        &mut self,
        path: &Path,
        rec: files::ReadRecord,
        first_in_segment: bool,
    ) -> std::result::Result<(), std::result::Result<String, Error>> {
        let f = rec.frame;
        if first_in_segment != (f.kind == Kind::Segment) {
            return Err(Ok(
                "a segment must start with its header, and only there".to_owned()
            ));
        }
        if f.step < self.last_step && f.kind != Kind::Segment {
            return Err(Ok(format!(
                "step {} comes after step {}",
                f.step, self.last_step
            )));
        }
        self.last_step = self.last_step.max(f.step);
        match f.kind {
            Kind::Segment => {
                let h = SegmentHeader::decode(rec.payload).map_err(Ok)?;
                check_schema(self.name, &h.schema, self.schema).map_err(Err)?;
                if let Some(c) = h.cursor {
                    self.report.source_cursor = Some(c.as_slice().to_vec());
                }
                if &h.shape != self.shape {
                    return Err(Err(Error::KindChanged {
                        table: self.name.to_owned(),
                        logged: h.shape.describe(&h.schema),
                        given: self.shape.describe(self.schema),
                    }));
                }
            }
            Kind::Close => {
                let c = CloseRecord::decode(rec.payload).map_err(Ok)?;
                self.report.closed_at = Some(f.step);
                self.report.failure = c.failure;
            }
            Kind::Rows => {
                if let Some(c) = RowsRecord::decode_cursor(&rec.payload).map_err(Ok)? {
                    self.report.source_cursor = Some(c.as_slice().to_vec());
                }
                if f.step <= self.after {
                    return Ok(());
                }
                if f.step <= self.last_rows_step {
                    return Err(Ok(format!("a second record for step {}", f.step)));
                }
                self.last_rows_step = f.step;
                let (first, rows) = RowsRecord::decode_positions(&rec.payload).map_err(Ok)?;
                if self.positional() {
                    if let Some(p) = self.pos.filter(|&p| p != first) {
                        return Err(Ok(format!("rows at position {first}, expected {p}")));
                    }
                    self.pos = Some(first + rows);
                }
                self.report.records += 1;
                self.report.rows += rows;
                self.report.bytes += f.len;
                match self.shape.retention {
                    Retention::Append { .. } | Retention::Keyed { .. } => {
                        let r = RowsRecord::decode(rec.payload).map_err(Ok)?;
                        let mut batches = if self.positional() {
                            if self.state.log.rows().end < first {
                                self.state.log.skip_to(first);
                            }
                            relabel(self.schema, r.batches).map_err(Err)?
                        } else {
                            r.batches
                        };
                        self.state.apply_owned(f.step, &mut batches);
                    }
                    Retention::Ring { .. } => self.pending.push(Pending {
                        path: path.to_owned(),
                        offset: rec.offset,
                        first,
                        rows,
                        step: f.step,
                    }),
                    Retention::Blink { .. } => {}
                }
            }
        }
        Ok(())
    }
}

/// Whether a table of this retention decodes its rows records during the scan.
fn keeps_rows(retention: Retention) -> bool {
    matches!(
        retention,
        Retention::Append { .. } | Retention::Keyed { .. }
    )
}

impl Durable {
    /// Replays table `name` from its files (or starts its log if it has none) and starts a
    /// new segment for it. Runs without any engine lock.
    ///
    /// # Errors
    ///
    /// [`Error::TableExists`] if the table is open in this engine already,
    /// [`Error::SchemaChanged`] / [`Error::KindChanged`] if its log was written for another
    /// schema or kind, [`Error::Io`] if its files cannot be read or written. Corruption is
    /// not an error: it is truncated and reported.
    #[allow(clippy::too_many_lines)] // checkpoint, scan, ring tail, new segment: in order
    pub(crate) fn open(
        &self,
        name: &str,
        schema: &SchemaRef,
        retention: Retention,
        key: &Arc<[usize]>,
    ) -> Result<Opened<'_>> {
        let name: Arc<str> = Arc::from(name);
        if !self.open_names.lock().insert(name.clone()) {
            return Err(Error::TableExists {
                table: name.to_string(),
            });
        }
        let mut reservation = Reservation {
            durable: self,
            name: name.clone(),
            keep: false,
        };
        let began = Instant::now();
        let dir = self.table_dir(&name);
        fs::create_dir_all(&dir)?;
        files::remove_tmp(&dir)?;
        let shape = Shape {
            retention,
            key: key.iter().map(|&k| k as u64).collect(),
        };
        let mut report = ReplayReport::new(&name);

        // 1. The newest intact checkpoint.
        let mut ckpt: Option<Checkpoint> = None;
        for (_, path) in files::checkpoints(&dir)?.into_iter().rev() {
            match checkpoint::read(&path) {
                Ok(c) => {
                    check_schema(&name, &c.schema, schema)?;
                    ckpt = Some(c);
                    break;
                }
                Err(Unreadable::Io(e)) => return Err(e.into()),
                Err(Unreadable::Corrupt(reason)) => {
                    let err = corrupt(&name, &path, 0, reason);
                    report.note(err);
                    fs::rename(&path, path.with_extension("corrupt"))?;
                }
            }
        }
        let mut state = TableState::new(retention, schema, key);
        let mut recency_error: Option<Error> = None;
        if let Some(c) = &ckpt {
            report.checkpoint = Some(Step(c.step));
            report.checkpoint_rows = c.end - c.start;
            if matches!(retention, Retention::Keyed { .. }) {
                state.apply(Step(c.step), &c.batches);
                if let (Some(ranks), Some(keyed)) = (&c.recency, &mut state.keyed) {
                    // Reported after the scan: a capacity other than the logged one fails
                    // here too, and the scan refuses it with the clearer KindChanged.
                    recency_error = keyed.restore_recency(ranks).err().map(|reason| {
                        Error::Io(std::io::Error::other(format!(
                            "{name}: its checkpoint at step {}: {reason}",
                            c.step
                        )))
                    });
                }
            } else {
                state.log.skip_to(c.start);
                for b in relabel(schema, c.batches.clone())? {
                    state.log.push(b);
                }
            }
            // Segments wholly before the checkpoint are left over from an interrupted
            // clean-up.
            for (index, path) in files::segments(&dir)? {
                if index < c.segment {
                    fs::remove_file(path)?;
                }
            }
        }

        // 2. The segments, in order, up to the first bad record.
        let mut scan = Scan {
            name: &name,
            schema,
            shape: &shape,
            state,
            report,
            after: ckpt.as_ref().map_or(Step(0), |c| Step(c.step)),
            last_step: ckpt.as_ref().map_or(Step(0), |c| Step(c.step)),
            last_rows_step: Step(0),
            pos: ckpt
                .as_ref()
                .filter(|_| shape.key.is_empty())
                .map(|c| c.end),
            pending: Vec::new(),
        };
        let segments = files::segments(&dir)?;
        let mut next_index = segments.last().map_or(0, |(i, _)| i + 1);
        let mut scratch = Vec::new();
        let keep = keeps_rows(retention);
        'segments: for (i, (_, path)) in segments.iter().enumerate() {
            // An append table keeps every row it replays: its arrays point into the mapped
            // segments instead of copies of them (`durable/mapped.rs`). A keyed table copies
            // its input into its slots, and a ring or blink table keeps a small part of its
            // log, so those read (a mapping would keep deleted segments on disk).
            let mut reader = if matches!(retention, Retention::Append { .. }) {
                SegmentReader::open_mapped(path)?
            } else {
                SegmentReader::open(path)?
            };
            scan.report.segments += 1;
            let mut first = true;
            loop {
                let bad = match reader.next(keep, &mut scratch)? {
                    Ok(None) => break,
                    Ok(Some(rec)) => {
                        let offset = rec.offset;
                        match scan.record(path, rec, first) {
                            Ok(()) => {
                                first = false;
                                continue;
                            }
                            Err(Ok(reason)) => files::Bad { offset, reason },
                            Err(Err(refused)) => return Err(refused),
                        }
                    }
                    Err(bad) => bad,
                };
                // Keep what is before the bad record; set the rest aside.
                let cut = reader.len() - bad.offset;
                scan.report.truncated_bytes += cut;
                scan.report
                    .note(corrupt(&name, path, bad.offset, bad.reason));
                if bad.offset == 0 {
                    fs::remove_file(path)?;
                } else {
                    files::truncate(path, bad.offset)?;
                }
                for (_, later) in &segments[i + 1..] {
                    scan.report.truncated_bytes += fs::metadata(later)?.len();
                    fs::rename(later, later.with_extension("corrupt"))?;
                }
                break 'segments;
            }
        }
        if let Some(e) = recency_error {
            return Err(e);
        }
        if let Some((i, _)) = segments.last() {
            next_index = next_index.max(i + 1);
        }

        // 3. A ring decodes only the records its capacity keeps.
        let end = scan.pos.unwrap_or(0);
        if let Retention::Ring { capacity } = retention {
            let keep_from = end.saturating_sub(capacity);
            let needed: Vec<&Pending> = scan
                .pending
                .iter()
                .filter(|p| p.first + p.rows > keep_from)
                .collect();
            let from_ckpt = ckpt
                .as_ref()
                .is_some_and(|c| needed.first().is_none_or(|p| p.first <= c.end));
            if !from_ckpt {
                scan.state = TableState::new(retention, schema, key);
                let start = needed.first().map_or(end, |p| p.first);
                scan.state.log.skip_to(start);
            }
            for p in needed {
                let mut reader = SegmentReader::open(&p.path)?;
                reader.seek(p.offset)?;
                let Ok(Some(rec)) = reader.next(true, &mut scratch)? else {
                    return Err(Error::Io(std::io::Error::other(format!(
                        "{} changed while it was replayed",
                        p.path.display()
                    ))));
                };
                let r = RowsRecord::decode(rec.payload).map_err(|reason| {
                    Error::Io(std::io::Error::other(format!(
                        "{}: a checked record does not decode: {reason}",
                        p.path.display()
                    )))
                })?;
                let mut batches = relabel(schema, r.batches)?;
                scan.state.apply_owned(p.step, &mut batches);
            }
        }
        if matches!(retention, Retention::Blink { .. }) {
            scan.state.log.skip_to(end);
        }

        // 4. The segment new records go to.
        let last_step = scan.last_step;
        let header = SegmentHeader {
            shape: shape.clone(),
            first_position: end,
            schema: schema.clone(),
            cursor: scan.report.source_cursor.clone().map(Buffer::from_vec),
        }
        .encode(last_step)?;
        let mut segment = SegmentWriter::create(&dir, next_index, &header)?;
        segment.sync()?;
        files::sync_dir(&dir)?;

        let mut report = scan.report;
        report.last_step = last_step;
        report.duration = began.elapsed();
        reservation.keep = true;
        Ok(Opened {
            state: Some(scan.state),
            last_step,
            report,
            shape,
            segment: Some(segment),
            end,
            name,
            durable: self,
        })
    }
}

fn corrupt(table: &str, path: &Path, offset: u64, reason: String) -> Error {
    let e = Error::LogCorrupt {
        table: table.to_owned(),
        file: path.display().to_string(),
        offset,
        reason,
    };
    tracing::warn!(error = %e, "tickertable: truncating a durable table's log");
    e
}
