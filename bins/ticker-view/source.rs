//! Where the viewer's data comes from: a [`DataSource`] lists tables, streams each table's
//! snapshot and updates as [`DataEvent`]s, and reports the engine's status.
//!
//! The events are the viewer's own types, made of plain Arrow batches and position ranges, so
//! a remote source can produce them as well as the embedded engine does. [`Embedded`] reads an
//! engine in this process: subscriptions for the data, lock-free snapshots and statistics for
//! the status. Nothing here takes the engine's global lock after the subscriptions are set up.
//! `remote::Remote` (with the `flight` feature) reads a served engine over Arrow Flight: its
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
use tickertable::{EngineHandle, Event, SubscriptionOptions, Table, TableKind, TableSnapshot};

#[cfg(feature = "flight")]
pub(crate) mod remote;

/// A table as the viewer lists it.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub(crate) name: String,
    pub(crate) kind: TableKind,
    /// A ring's capacity or an append table's limit.
    pub(crate) capacity: Option<usize>,
    pub(crate) schema: SchemaRef,
}

/// A table's rows at one step, as batches in position order from `rows.start`.
#[derive(Debug, Clone)]
#[allow(clippy::struct_field_names)] // `rows.rows`: the positions of the rows
pub(crate) struct Rows {
    pub(crate) step: u64,
    pub(crate) rows: Range<u64>,
    pub(crate) batches: Vec<RecordBatch>,
}

/// One cycle's change to a table: a removed prefix and added rows (see `TableUpdate`).
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    pub(crate) step: u64,
    pub(crate) removed: Range<u64>,
    pub(crate) added: Range<u64>,
    pub(crate) batches: Vec<RecordBatch>,
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
#[cfg_attr(not(feature = "flight"), allow(dead_code))] // only a remote source disconnects
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
#[cfg_attr(not(feature = "flight"), allow(dead_code))] // only a remote source observes
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
    /// position in this process; for a remote engine, the rows seen while connected.
    pub(crate) ends: Vec<u64>,
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
                .map(|t| t.snapshot().rows().end)
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
