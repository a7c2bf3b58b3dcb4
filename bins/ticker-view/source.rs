//! Where the viewer's data comes from: a [`DataSource`] lists tables, streams each table's
//! snapshot and updates as [`DataEvent`]s, and reports the engine's status.
//!
//! Each source keeps every table in a `tickertable::Mirror`, the library's copy of a table,
//! which applies the protocol: the embedded source applies its subscriptions' [`Event`]s
//! ([`Follower`]), the remote one relies on the mirror of its Flight subscription. Each
//! [`DataEvent`] hands the viewer an O(1) copy of that mirror and a [`Change`] saying what the
//! update did (for rates, flashes and the filter). A keyed table's update also rewrites rows
//! in place: [`Change::modified`] holds their positions, with their new rows and which
//! columns were written.
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
use tickertable::flight::MessageMeta;
use tickertable::{
    EngineHandle, Event, Mirror, Replaced, Step, SubscriptionOptions, Table, TableKind, TableUpdate,
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

/// One update as the viewer uses it once its rows are in the mirror: where the rows went,
/// which rows a keyed table rewrote and which of their columns were written, and the chunks
/// those rows replaced (what a flash compares a cell's new value with).
///
/// It describes what a [`Mirror`] applied; it never applies anything itself. A local update
/// gives one, and so does each message of a remote update (a large one comes in several).
#[derive(Debug, Clone, Default)]
pub(crate) struct Change {
    pub(crate) step: Step,
    /// Positions that left: a prefix, or a keyed table's suffix.
    pub(crate) removed: Range<u64>,
    /// Positions that came, at the end.
    pub(crate) added: Range<u64>,
    /// A keyed table's positions rewritten in place, ascending.
    pub(crate) modified: Vec<u64>,
    /// The new rows at `modified`, in order; `None` when there are none.
    pub(crate) modified_rows: Option<RecordBatch>,
    /// Per modified row, `width` bytes: bit `c % 8` of byte `c / 8` says column `c` was
    /// written. Empty when every column of every row was.
    masks: Vec<u8>,
    width: usize,
    /// The chunks the modified rows replaced, as they were.
    pub(crate) replaced: Replaced,
}

impl Change {
    /// A local update, applied to a mirror that returned `replaced`. O(modified rows) for a
    /// partial upsert's masks, else O(1) beyond the positions.
    pub(crate) fn of_update(u: &TableUpdate, replaced: Replaced) -> Self {
        let rows = u.modified_batch().cloned();
        let width = rows.as_ref().map_or(0, |b| b.num_columns().div_ceil(8));
        Self {
            step: u.step(),
            removed: u.removed(),
            added: u.added(),
            modified: u.modified().to_vec(),
            masks: flat_masks(u.num_modified(), width, |i| u.modified_mask(i)),
            width,
            modified_rows: rows,
            replaced,
        }
    }

    /// One message of a Flight live stream, applied to the subscription's mirror (see
    /// `tickertable::flight::RemoteMessage`).
    pub(crate) fn of_message(
        meta: MessageMeta,
        batch: Option<RecordBatch>,
        replaced: Replaced,
    ) -> Self {
        let rows = batch.filter(|_| !meta.modified.is_empty());
        let width = rows.as_ref().map_or(0, |b| b.num_columns().div_ceil(8));
        Self {
            step: meta.step,
            masks: flat_masks(meta.modified.len(), width, |i| {
                meta.masks.get(i).map(Vec::as_slice)
            }),
            width,
            removed: meta.removed,
            added: meta.added,
            modified: meta.modified,
            modified_rows: rows,
            replaced,
        }
    }

    /// Whether message `next` continues the step this change (its first message) started:
    /// the same step, not a reset, no rows removed, and modified rows only before any added
    /// ones and after the modified ones so far. Such messages merge into one change.
    pub(crate) fn continues(&self, next: &MessageMeta) -> bool {
        let same_step = next.step == self.step && !next.reset && next.removed.is_empty();
        let in_order = next.modified.is_empty()
            || (self.added.is_empty()
                && match (self.modified.last(), next.modified.first()) {
                    (Some(last), Some(first)) => last < first,
                    _ => true,
                });
        same_step && in_order
    }

    /// Adds `next`, a later message of the same step that [`continues`](Self::continues)
    /// this one: its modified rows after these (their rows concatenated, O(rows so far)),
    /// its added rows after these, and the chunks it replaced that these did not.
    ///
    /// # Errors
    ///
    /// If the modified rows do not concatenate (another schema).
    pub(crate) fn merge(&mut self, next: Change) -> Result<(), String> {
        if self.added.is_empty() {
            self.added = next.added;
        } else {
            self.added.end = self.added.end.max(next.added.end);
        }
        if let Some(rows) = next.modified_rows {
            let width = rows.num_columns().div_ceil(8);
            if !self.masks.is_empty() || !next.masks.is_empty() {
                if self.masks.is_empty() {
                    // Every column of the rows so far was written.
                    self.masks = vec![0xff; self.modified.len() * width];
                }
                if next.masks.is_empty() {
                    self.masks
                        .resize(self.masks.len() + next.modified.len() * width, 0xff);
                } else {
                    self.masks.extend(next.masks);
                }
            }
            self.width = width;
            self.modified.extend(next.modified);
            self.modified_rows = Some(match self.modified_rows.take() {
                None => rows,
                Some(held) => {
                    arrow_select::concat::concat_batches(held.schema_ref(), [&held, &rows])
                        .map_err(|e| format!("modified rows: {e}"))?
                }
            });
        }
        self.replaced.merge(next.replaced);
        Ok(())
    }

    /// Rows `removed` and `added`, none modified.
    #[cfg(test)]
    pub(crate) fn moving(removed: Range<u64>, added: Range<u64>) -> Self {
        Self {
            removed,
            added,
            ..Self::default()
        }
    }

    /// Rows modified in place (every column written if `masks` is empty, else `masks` holds
    /// each row's bytes), nothing removed or added.
    #[cfg(test)]
    pub(crate) fn modifying(modified: Vec<u64>, rows: RecordBatch, masks: Vec<u8>) -> Self {
        Self {
            modified,
            width: rows.num_columns().div_ceil(8),
            modified_rows: Some(rows),
            masks,
            ..Self::default()
        }
    }

    /// Rows the update wrote: modified and added (the rows/s of a keyed table).
    pub(crate) fn rows_written(&self) -> u64 {
        self.modified.len() as u64 + (self.added.end - self.added.start)
    }

    /// Whether column `column` of the `i`th modified row was written.
    pub(crate) fn is_written(&self, i: usize, column: usize) -> bool {
        if self.masks.is_empty() {
            return i < self.modified.len();
        }
        self.masks
            .get(i * self.width + column / 8)
            .is_some_and(|b| b & (1 << (column % 8)) != 0)
    }
}

/// `n` rows' masks of `width` bytes each in one buffer, or none when no row has one (every
/// column written). A row without one gets every bit.
fn flat_masks<'a>(n: usize, width: usize, mask: impl Fn(usize) -> Option<&'a [u8]>) -> Vec<u8> {
    if !(0..n).any(|i| mask(i).is_some()) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n * width);
    for i in 0..n {
        let at = out.len();
        match mask(i) {
            Some(m) => {
                out.extend(m.iter().take(width));
                out.resize(at + width, 0);
            }
            None => out.resize(at + width, 0xff),
        }
    }
    out
}

/// One item of a table's stream. Every item that changes the rows carries the table's
/// [`Mirror`] after it (an O(1) copy sharing its chunks): the viewer shows what the source's
/// mirror holds and never applies an update itself.
#[derive(Debug, Clone)]
pub(crate) enum DataEvent {
    /// The table's rows when the stream started.
    Snapshot(Mirror),
    /// The next change, and the rows after it.
    Update { mirror: Mirror, change: Box<Change> },
    /// The viewer fell behind and `missed` updates were dropped: reset to these rows.
    Lagged { missed: u64, mirror: Mirror },
    /// The table failed; nothing follows.
    Failed(String),
}

/// A local subscription's events applied to a [`Mirror`]: the viewer's events.
#[derive(Debug)]
pub(crate) struct Follower {
    mirror: Mirror,
    /// An update did not fit: nothing more until a snapshot.
    failed: bool,
}

impl Follower {
    /// An empty mirror of a table with this schema.
    pub(crate) fn new(schema: SchemaRef) -> Self {
        Self {
            mirror: Mirror::new(schema),
            failed: false,
        }
    }

    /// Applies `event` to the mirror and says what it did. `None` for what the viewer does
    /// not show, and for updates after one that did not fit (until a fresh snapshot).
    pub(crate) fn follow(&mut self, event: &Event) -> Option<DataEvent> {
        Some(match event {
            Event::Snapshot(s) => {
                self.mirror.reset(s);
                self.failed = false;
                DataEvent::Snapshot(self.mirror.clone())
            }
            Event::Lagged { missed, snapshot } => {
                self.mirror.reset(snapshot);
                self.failed = false;
                DataEvent::Lagged {
                    missed: *missed,
                    mirror: self.mirror.clone(),
                }
            }
            Event::Update(u) if !self.failed => match self.mirror.apply(u) {
                Ok(replaced) => DataEvent::Update {
                    mirror: self.mirror.clone(),
                    change: Box::new(Change::of_update(u, replaced)),
                },
                Err(e) => {
                    self.failed = true;
                    DataEvent::Failed(e.to_string())
                }
            },
            Event::Failed(e) => DataEvent::Failed(e.to_string()),
            _ => return None,
        })
    }
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
    /// Per table, whether the engine still lists it (`false` once it was dropped); a table
    /// past the end of the list is listed.
    pub(crate) listed: Vec<bool>,
}

/// Whether `table` was dropped from its engine (not merely closed or failed).
pub(crate) fn is_dropped(table: &Table) -> bool {
    matches!(
        table.failure().as_deref(),
        Some(tickertable::Error::TableDropped { .. })
    )
}

/// A source of tables, their data and the engine's status.
pub(crate) trait DataSource {
    /// A short description for the title bar.
    fn describe(&self) -> String;
    /// The tables known now, in an order that indexes everything else; the list only grows
    /// (a dropped table stays, and [`SourceStatus::listed`] says it is gone).
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
        let mut follower = Follower::new(table.schema().clone());
        Ok(StreamExt::boxed(StreamExt::filter_map(sub, move |e| {
            std::future::ready(follower.follow(&e))
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
            listed: self.tables.iter().map(|t| !is_dropped(t)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use tickertable::PublisherOptions;

    use super::*;
    use crate::testing::{bid_batch, quote_batch, quote_schema};

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

    fn meta(modified: Vec<u64>, masks: Vec<Vec<u8>>) -> MessageMeta {
        MessageMeta {
            step: Step::new(4),
            reset: false,
            removed: 0..0,
            added: 9..9,
            rows: None,
            modified,
            masks,
        }
    }

    #[test]
    fn smoke() {
        let c = Change::of_message(
            meta(vec![1, 4], vec![]),
            Some(rows(2, 7)),
            Replaced::default(),
        );
        assert_eq!(
            (c.step, c.modified.as_slice(), c.rows_written()),
            (Step::new(4), &[1, 4][..], 2)
        );
        assert!(c.masks.is_empty(), "every column written");
        assert!(c.is_written(1, 8));
        assert!(!c.is_written(2, 0), "no third row");
        assert_eq!(c.modified_rows.map(|b| b.num_rows()), Some(2));
    }

    #[test]
    fn a_message_keeps_the_column_masks_of_each_row() {
        // Column 1 only, then columns 0 and 8, then (no mask) every column.
        let masks = vec![vec![0b10, 0], vec![0b1, 0b1]];
        let m = meta(vec![5, 6, 9], masks);
        let mut c = Change::of_message(m, Some(rows(3, 2)), Replaced::default());
        let written = |c: &Change, i| {
            (0..9)
                .filter(|&col| c.is_written(i, col))
                .collect::<Vec<_>>()
        };
        assert_eq!(written(&c, 0), [1]);
        assert_eq!(written(&c, 1), [0, 8]);
        assert_eq!(written(&c, 2), (0..9).collect::<Vec<_>>());
        c.masks = flat_masks(2, 1, |i| [Some(&[0xf0_u8][..]), None][i]);
        assert_eq!(c.masks, [0xf0, 0xff]);
        // Rows added, not modified: their batch is the mirror's, not the change's.
        let added = MessageMeta {
            added: 9..12,
            ..meta(vec![], vec![])
        };
        let c = Change::of_message(added, Some(rows(3, 2)), Replaced::default());
        assert!(c.modified_rows.is_none());
        assert_eq!(c.rows_written(), 3);
    }

    #[test]
    fn the_messages_of_one_step_merge_in_order_with_their_column_masks() {
        let part = |modified: Vec<u64>, masks: Vec<Vec<u8>>| {
            let n = modified.len();
            Change::of_message(meta(modified, masks), Some(rows(n, 1)), Replaced::default())
        };
        let mut c = part(vec![0, 3], vec![]);
        // Column 1 only, then columns 0 and 8.
        let next = meta(vec![5, 6], vec![vec![0b10, 0], vec![0b1, 0b1]]);
        assert!(c.continues(&next));
        c.merge(part(next.modified, next.masks)).unwrap();
        let next = meta(vec![9], vec![]);
        assert!(c.continues(&next));
        c.merge(part(next.modified, next.masks)).unwrap();
        assert_eq!(c.modified, [0, 3, 5, 6, 9]);
        assert_eq!(c.modified_rows.as_ref().map(RecordBatch::num_rows), Some(5));
        let written = |i| {
            (0..9)
                .filter(|&col| c.is_written(i, col))
                .collect::<Vec<_>>()
        };
        assert_eq!(written(0), (0..9).collect::<Vec<_>>());
        assert_eq!(written(2), [1]);
        assert_eq!(written(3), [0, 8]);
        assert_eq!(written(4), (0..9).collect::<Vec<_>>());
        // Then added rows; after them, or out of order, or of another step, or removing
        // rows, or a reset: a new change.
        let added = MessageMeta {
            added: 9..12,
            ..meta(vec![], vec![])
        };
        assert!(c.continues(&added));
        c.merge(Change::of_message(
            added,
            Some(rows(3, 2)),
            Replaced::default(),
        ))
        .unwrap();
        assert_eq!((c.added.clone(), c.rows_written()), (9..12, 8));
        assert!(
            !c.continues(&meta(vec![12], vec![])),
            "modified after added"
        );
        let c = part(vec![4], vec![]);
        assert!(!c.continues(&meta(vec![2], vec![])), "not ascending");
        let later = MessageMeta {
            step: Step::new(5),
            ..meta(vec![], vec![])
        };
        let removing = MessageMeta {
            removed: 8..9,
            ..meta(vec![], vec![])
        };
        let reset = MessageMeta {
            reset: true,
            ..meta(vec![], vec![])
        };
        assert!(!c.continues(&later) && !c.continues(&removing) && !c.continues(&reset));
    }

    #[test]
    fn a_follower_mirrors_a_local_keyed_table_and_stops_at_an_update_that_does_not_fit() {
        let engine = tickertable::test_util::manual_engine();
        let options = PublisherOptions::default().with_key(["Sym"]);
        let (table, publisher) = engine
            .table_publisher("quotes", quote_schema(), options)
            .unwrap();
        let sub = table.subscribe().unwrap();
        let mut follower = Follower::new(quote_schema());
        publisher
            .upsert(quote_batch(&[("A", 1.0, 2.0, "X"), ("B", 3.0, 4.0, "Y")]))
            .unwrap();
        engine.run_cycle();
        publisher.upsert(bid_batch(&[("B", 5.0)])).unwrap();
        engine.run_cycle();
        let events: Vec<Event> = std::iter::from_fn(|| sub.try_recv().ok()).collect();
        let mut changes = Vec::new();
        let mut last = None;
        for e in &events {
            match follower.follow(e) {
                Some(DataEvent::Snapshot(m)) => last = Some(m),
                Some(DataEvent::Update { mirror, change }) => {
                    changes.push(change);
                    last = Some(mirror);
                }
                other => panic!("{other:?}"),
            }
        }
        let mirror = last.unwrap();
        assert_eq!(mirror.rows(), table.snapshot().rows());
        assert_eq!(
            mirror.snapshot().to_batch().unwrap(),
            table.snapshot().to_batch().unwrap()
        );
        let partial = changes.last().unwrap();
        assert_eq!(partial.modified, [1]);
        let written: Vec<usize> = (0..4).filter(|&c| partial.is_written(0, c)).collect();
        assert_eq!(written, [0, 1], "Sym and Bid, not Ask or Venue");
        let (old, r) = partial.replaced.locate(1).unwrap();
        assert_eq!(
            crate::cells::num_at(old.column(1).as_ref(), r),
            Some(3.0),
            "as it was"
        );
        // The first update again (rows added where rows are) does not fit: the table fails,
        // and nothing follows until a snapshot.
        let added = events
            .iter()
            .find(|e| matches!(e, Event::Update(u) if u.num_added() > 0));
        let added = added.unwrap();
        assert!(matches!(follower.follow(added), Some(DataEvent::Failed(_))));
        assert!(follower.follow(events.last().unwrap()).is_none());
        assert!(matches!(
            follower.follow(&events[0]),
            Some(DataEvent::Snapshot(_))
        ));
    }
}
