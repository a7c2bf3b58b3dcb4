//! Where the viewer's data comes from: a [`DataSource`] lists tables, streams each table's
//! snapshot and updates as [`DataEvent`]s, and reports the engine's status.
//!
//! The events are the viewer's own types, made of plain Arrow batches and position ranges, so
//! a remote source can produce them as well as the embedded engine does. A keyed table's
//! update also rewrites rows in place: [`Delta::modified`] holds their positions, their new
//! rows and which columns were written.
//!
//! [`Embedded`] reads an engine in this process: subscriptions for the data, lock-free
//! snapshots and statistics for the status. Nothing here takes the engine's global lock after
//! the subscriptions are set up.
//! `remote::Remote` reads a served engine over Arrow Flight: its
//! network runs on the tokio runtime and the viewer only reads what it left behind.
//!
//! # Tables that appear later
//!
//! [`DataSource::tables`] may grow: a remote source lists nothing until it first connects, and
//! finds tables created on the server later. Indices never change; the event loop subscribes
//! to each new index as it shows up.

use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures_util::{Stream, StreamExt};
use tickertable::{
    EngineHandle, Event, SubscriptionOptions, Table, TableKind, TableSnapshot, TableUpdate,
};

pub(crate) mod remote;

/// A table as the viewer lists it.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub(crate) name: String,
    pub(crate) kind: TableKind,
    /// A ring's capacity, an append table's limit or a keyed table's capacity.
    pub(crate) capacity: Option<usize>,
    pub(crate) schema: SchemaRef,
    /// A keyed table's key columns, by index (empty for other kinds, or when not known).
    pub(crate) key: Vec<usize>,
}

impl TableInfo {
    /// Whether the table is keyed: its rows change in place.
    pub(crate) fn is_keyed(&self) -> bool {
        matches!(self.kind, TableKind::Keyed { .. })
    }
}

/// A table's rows at one step, as batches in position order from `rows.start`.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)] // `rows.rows`: the positions of the rows
pub(crate) struct Rows {
    pub(crate) step: u64,
    pub(crate) rows: Range<u64>,
    pub(crate) batches: Vec<RecordBatch>,
}

/// One cycle's change to a table (see `TableUpdate`): `removed` rows (a prefix; a keyed
/// table's: a suffix), rows `modified` in place (keyed tables), then `added` rows at the end,
/// applied in that order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    pub(crate) step: u64,
    pub(crate) removed: Range<u64>,
    pub(crate) modified: Modified,
    pub(crate) added: Range<u64>,
    /// The added rows, in order.
    pub(crate) batches: Vec<RecordBatch>,
}

impl Delta {
    /// Rows the update wrote: modified and added (the rows/s of a keyed table).
    pub(crate) fn rows_written(&self) -> u64 {
        self.modified.len() as u64 + (self.added.end - self.added.start)
    }
}

/// A keyed table's rows rewritten in place by one update.
#[derive(Debug, Clone, Default)]
pub(crate) struct Modified {
    /// Ascending positions, held before and after the update.
    pub(crate) positions: Vec<u64>,
    /// The new rows at `positions`, in order; `None` when there are none.
    pub(crate) batch: Option<RecordBatch>,
    /// Per modified row, `width` bytes: bit `c % 8` of byte `c / 8` says column `c` was
    /// written. Empty when every column of every row was.
    pub(crate) masks: Vec<u8>,
    pub(crate) width: usize,
}

impl Modified {
    /// How many rows were modified.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether no row was modified.
    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Whether column `column` of the `i`th modified row was written.
    pub(crate) fn is_written(&self, i: usize, column: usize) -> bool {
        if self.masks.is_empty() {
            return i < self.positions.len();
        }
        self.masks
            .get(i * self.width + column / 8)
            .is_some_and(|b| b & (1 << (column % 8)) != 0)
    }

    /// The modified rows of a local update. O(modified rows × columns).
    fn of_update(u: &TableUpdate) -> Self {
        let Some(batch) = u.modified_batch() else {
            return Self::default();
        };
        let n = u.num_modified();
        let ncols = batch.num_columns();
        let width = ncols.div_ceil(8);
        let mut masks = vec![0u8; n * width];
        let mut partial = false;
        for i in 0..n {
            for c in 0..ncols {
                if u.is_modified(i, c) {
                    masks[i * width + c / 8] |= 1 << (c % 8);
                } else {
                    partial = true;
                }
            }
        }
        if !partial {
            masks.clear();
        }
        Self {
            positions: u.modified().to_vec(),
            batch: Some(batch.clone()),
            masks,
            width,
        }
    }

    /// Appends the modified rows of a later part of the same update (a remote update sent
    /// in several messages): `positions` past the ones held, their rows in `batch`, `masks`
    /// one per row (empty: every column written). Concatenates the rows (O(rows so far)).
    ///
    /// # Errors
    ///
    /// If the positions do not continue the ascending order, or the masks or rows do not
    /// match the positions.
    pub(crate) fn extend(
        &mut self,
        positions: &[u64],
        masks: &[Vec<u8>],
        batch: &RecordBatch,
    ) -> Result<(), String> {
        if batch.num_rows() != positions.len() {
            return Err(format!(
                "{} modified positions for {} rows",
                positions.len(),
                batch.num_rows()
            ));
        }
        if !masks.is_empty() && masks.len() != positions.len() {
            return Err(format!(
                "{} column masks for {} modified rows",
                masks.len(),
                positions.len()
            ));
        }
        let ascending = positions.windows(2).all(|w| w[0] < w[1])
            && match (self.positions.last(), positions.first()) {
                (Some(last), Some(first)) => last < first,
                _ => true,
            };
        if !ascending {
            return Err("modified positions are not ascending".to_owned());
        }
        let width = batch.num_columns().div_ceil(8);
        if !masks.is_empty() || !self.masks.is_empty() {
            if self.masks.is_empty() {
                // Every column of the rows so far was written.
                self.masks = vec![0xff; self.positions.len() * width];
            }
            if masks.is_empty() {
                self.masks
                    .resize(self.masks.len() + positions.len() * width, 0xff);
            } else {
                for m in masks {
                    let at = self.masks.len();
                    self.masks.resize(at + width, 0);
                    let n = m.len().min(width);
                    self.masks[at..at + n].copy_from_slice(&m[..n]);
                }
            }
        }
        self.width = width;
        self.batch = Some(match self.batch.take() {
            None => batch.clone(),
            Some(held) => arrow_select::concat::concat_batches(held.schema_ref(), [&held, batch])
                .map_err(|e| format!("modified rows: {e}"))?,
        });
        self.positions.extend_from_slice(positions);
        Ok(())
    }
}

/// One item of a table's stream.
#[derive(Debug, Clone)]
pub(crate) enum DataEvent {
    /// The table's rows when the stream started.
    Snapshot(Rows),
    /// The next change.
    Update(Delta),
    /// The viewer fell behind and `missed` updates were dropped: reset to these rows.
    Lagged { missed: u64, rows: Rows },
    /// The table failed; nothing follows.
    Failed(String),
}

/// A boxed stream of one table's events.
pub(crate) type DataStream = Pin<Box<dyn Stream<Item = DataEvent> + Send>>;

/// How the viewer reaches the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Link {
    /// The engine is in this process: always there.
    #[default]
    Local,
    /// Connecting for the first time.
    Connecting,
    /// Connected: tables are listed and streaming.
    Connected,
    /// The connection was lost or refused for `reason`. The next attempt is `retry_in` from
    /// now, or under way (`None`).
    Disconnected {
        reason: String,
        retry_in: Option<Duration>,
    },
}

/// The engine's cycle period as far as the source knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Period {
    /// Not known (a remote engine that has not ticked twice yet).
    #[default]
    Unknown,
    /// The engine's configured period.
    Configured(Duration),
    /// Measured from the steps seen go by (a remote engine).
    Observed(Duration),
}

/// The engine's status, polled at the data tick rate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceStatus {
    /// How the engine is reached.
    pub(crate) link: Link,
    /// The last finished step (a remote source: the newest it saw).
    pub(crate) step: u64,
    /// The cycle period.
    pub(crate) period: Period,
    /// How long the last cycle held the lock (only an engine in this process knows).
    pub(crate) last_cycle: Option<Duration>,
    /// Per table, a count of the rows it took, for the "in" side of the rates: its end
    /// position in this process; for a remote engine, the rows seen while connected (a keyed
    /// table's: rows modified and added). `None` when the source does not count them (a keyed
    /// table in this process): the App counts the rows its updates wrote.
    pub(crate) ends: Vec<Option<u64>>,
    /// Rows refused by append-table limits so far (counted from the cycles seen; a remote
    /// source cannot know them and says 0).
    pub(crate) dropped: u64,
}

/// A source of tables, their data and the engine's status.
pub(crate) trait DataSource {
    /// A short description for the title bar.
    fn describe(&self) -> String;
    /// The tables known now, in an order that indexes everything else; the list only grows.
    fn tables(&self) -> Vec<TableInfo>;
    /// A stream of table `index`'s snapshot then every update.
    fn subscribe(&self, index: usize) -> Result<DataStream>;
    /// The engine's status now.
    fn status(&mut self) -> SourceStatus;
}

/// An engine in this process.
#[derive(Debug)]
pub(crate) struct Embedded {
    engine: EngineHandle,
    tables: Vec<Table>,
    what: String,
    last_step_seen: u64,
    dropped: u64,
}

impl Embedded {
    /// Reads every table `engine` has now.
    pub(crate) fn new(engine: EngineHandle, what: &str) -> Self {
        let tables = engine.tables();
        Self {
            engine,
            tables,
            what: what.to_owned(),
            last_step_seen: 0,
            dropped: 0,
        }
    }
}

impl DataSource for Embedded {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn tables(&self) -> Vec<TableInfo> {
        self.tables
            .iter()
            .map(|t| TableInfo {
                name: t.name().to_owned(),
                kind: t.kind(),
                capacity: t.capacity(),
                schema: t.schema().clone(),
                key: t.key_columns().to_vec(),
            })
            .collect()
    }

    fn subscribe(&self, index: usize) -> Result<DataStream> {
        let table = self.tables.get(index).context("no such table")?;
        // Room for ~100 s of updates at the default period, and for a few seconds of rows at
        // millions of rows per second, before the viewer lags and resynchronises.
        let options = SubscriptionOptions::default()
            .with_capacity(1024)
            .with_max_queued_rows(8 << 20);
        let sub = table
            .subscribe_with(options)
            .with_context(|| format!("subscribing to {}", table.name()))?;
        Ok(StreamExt::boxed(StreamExt::filter_map(sub, |e| {
            std::future::ready(convert(e))
        })))
    }

    fn status(&mut self) -> SourceStatus {
        // Only the cycles since the last poll; the stats log is its own short mutex, never the
        // global lock.
        let last = self.engine.last_cycle();
        if last.is_some_and(|c| c.step.as_u64() > self.last_step_seen) {
            for c in self.engine.recent_cycles() {
                if c.step.as_u64() > self.last_step_seen {
                    self.dropped += c.rows_dropped;
                }
            }
        }
        if let Some(c) = last {
            self.last_step_seen = c.step.as_u64();
        }
        SourceStatus {
            link: Link::Local,
            step: self.engine.step().as_u64(),
            period: Period::Configured(self.engine.period()),
            last_cycle: last.map(|c| c.duration),
            ends: self
                .tables
                .iter()
                .map(|t| match t.kind() {
                    // Its end is its size, not a count of rows taken.
                    TableKind::Keyed { .. } => None,
                    _ => Some(t.snapshot().rows().end),
                })
                .collect(),
            dropped: self.dropped,
        }
    }
}

/// A subscription event as the viewer's event.
pub(crate) fn convert(event: Event) -> Option<DataEvent> {
    Some(match event {
        Event::Snapshot(s) => DataEvent::Snapshot(rows_of(&s)),
        Event::Update(u) => DataEvent::Update(Delta {
            step: u.step().as_u64(),
            removed: u.removed(),
            modified: Modified::of_update(&u),
            added: u.added(),
            batches: u.batches().to_vec(),
        }),
        Event::Lagged { missed, snapshot } => DataEvent::Lagged {
            missed,
            rows: rows_of(&snapshot),
        },
        Event::Failed(e) => DataEvent::Failed(e.to_string()),
        _ => return None,
    })
}

fn rows_of(s: &TableSnapshot) -> Rows {
    Rows {
        step: s.step().as_u64(),
        rows: s.rows(),
        batches: s.batches().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    /// Nine int64 columns (two mask bytes), `rows` rows of `v`.
    fn rows(n: usize, v: i64) -> RecordBatch {
        let fields: Vec<Field> = (0..9)
            .map(|c| Field::new(format!("c{c}"), DataType::Int64, true))
            .collect();
        let columns = (0..9)
            .map(|_| Arc::new(Int64Array::from(vec![v; n])) as arrow_array::ArrayRef)
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn smoke() {
        let mut m = Modified::default();
        m.extend(&[1, 4], &[], &rows(2, 7)).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.masks.is_empty(), "every column written");
        assert!(m.is_written(1, 8));
        assert!(!m.is_written(2, 0), "no third row");
    }

    #[test]
    fn modified_rows_in_parts_keep_their_order_and_column_masks() {
        let mut m = Modified::default();
        m.extend(&[0, 3], &[], &rows(2, 1)).unwrap();
        // Column 1 only, then columns 0 and 8.
        m.extend(&[5, 6], &[vec![0b10, 0], vec![0b1, 0b1]], &rows(2, 2))
            .unwrap();
        m.extend(&[9], &[], &rows(1, 3)).unwrap();
        assert_eq!(m.positions, [0, 3, 5, 6, 9]);
        assert_eq!(m.batch.as_ref().unwrap().num_rows(), 5);
        let written = |i| (0..9).filter(|&c| m.is_written(i, c)).collect::<Vec<_>>();
        assert_eq!(written(0), (0..9).collect::<Vec<_>>());
        assert_eq!(written(2), [1]);
        assert_eq!(written(3), [0, 8]);
        assert_eq!(written(4), (0..9).collect::<Vec<_>>());
        assert!(m.extend(&[9], &[], &rows(1, 4)).is_err(), "not ascending");
        assert!(
            m.extend(&[10, 11], &[], &rows(1, 4)).is_err(),
            "rows and positions"
        );
        assert!(
            m.extend(&[10], &[vec![1], vec![1]], &rows(1, 4)).is_err(),
            "masks and positions"
        );
    }
}
