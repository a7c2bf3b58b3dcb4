//! `KafkaSource`: a table fed by a topic, its consumer thread and its `on_flush`.
//!
//! The consumer thread polls and decodes into the [`Inbox`]; the table's `on_flush` (on the
//! cycle thread, at the start of every cycle) stages what the inbox holds with the source's
//! cursor, and marks what the previous cycle staged as visible, for the consumer thread to
//! commit.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::codec::{self, kafka_error, Bad, BatchBuilder};
use super::options::{KafkaFormat, KafkaSourceOptions, StartOffset};
use crate::durable::Durability;
use crate::engine::EngineHandle;
use crate::error::{Error, Result};
use crate::graph::Core;
use crate::publish::publisher::delete_batch;
use crate::publish::TablePublisher;
use crate::sync::{Condvar, Mutex};
use crate::table::Table;

/// How many bad messages a source keeps for [`KafkaSource::bad_messages`].
const KEEP_BAD: usize = 256;
/// How long the consumer thread waits for a message, or for room, before it looks again.
const POLL: Duration = Duration::from_millis(50);
/// How long the consumer thread waits for one partition's high watermarks. The first query
/// also fetches the topic's metadata: with less (500 ms was tried), a group member's
/// queries to tansu kept timing out, and its lag stayed unknown.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the consumer thread asks the broker for high watermarks (for the lag).
const WATERMARKS_EVERY: Duration = Duration::from_secs(1);

/// A table fed by a Kafka topic, made by
/// [`EngineHandle::kafka_source`](crate::EngineHandle::kafka_source). Dropping it stops
/// the consumer (the table stays, with the rows it has).
pub struct KafkaSource {
    table: Table,
    topic: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A source's counters, from [`KafkaSource::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaSourceStats {
    /// Messages consumed (good and bad, and skipped below a durable table's offsets).
    pub messages: u64,
    /// Rows decoded from them.
    pub rows: u64,
    /// Messages that did not fit the schema ([`Error::KafkaBadMessage`]).
    pub bad_messages: u64,
    /// Messages skipped because the table's log already held them (durable, in a group).
    pub skipped: u64,
    /// Rows staged into the table by cycles.
    pub staged_rows: u64,
    /// Offset commits sent to the group, and those that failed.
    pub commits: u64,
    /// Commits that failed (reported as [`Error::Kafka`]).
    pub commit_errors: u64,
    /// Client errors met while polling (a broker out, say; the client reconnects).
    pub poll_errors: u64,
    /// Times a partition's next message came at a later offset than expected (the offset
    /// resumed from, or the last message's + 1), each logged as a warning with its offsets.
    /// Normal on compacted or transactional topics, and in a group when a partition comes
    /// back after another member read part of it; otherwise messages this table never saw:
    /// a broker that skipped them, or a durable table whose log lost its tail (`Never`
    /// sync) after the group had committed past it.
    pub offset_gaps: u64,
    /// Per partition read: the next offset, the high watermark and so the lag.
    pub partitions: Vec<PartitionStats>,
}

impl KafkaSourceStats {
    /// Messages in the topic not yet consumed, over every partition read (as of the last
    /// watermarks fetched, about every second).
    pub fn lag(&self) -> u64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// One partition's position in [`KafkaSourceStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// The partition.
    pub partition: i32,
    /// The next offset the source will read.
    pub next_offset: i64,
    /// The partition's high watermark, when last fetched (`-1` before).
    pub high_watermark: i64,
    /// `high_watermark - next_offset`, at least 0.
    pub lag: u64,
}

/// One poll's rows, and the next offsets after it (its bad messages included).
struct Poll {
    batches: Vec<RecordBatch>,
    rows: usize,
    next: BTreeMap<i32, i64>,
}

/// What the consumer thread and `on_flush` share. Guarded by `inbox`'s mutex.
struct Inbox {
    /// Decoded, not yet staged: one entry per poll, oldest first.
    polls: VecDeque<Poll>,
    /// Their rows.
    rows: usize,
    /// The next offset per partition, of everything decoded (bad messages included).
    next: BTreeMap<i32, i64>,
    /// `next` as of the last staging: visible once the cycle that drained it delivered.
    staged: Option<BTreeMap<i32, i64>>,
    /// The next offsets whose rows (and everything before) are visible.
    visible: BTreeMap<i32, i64>,
    /// `visible` changed since the consumer thread last committed it.
    commit_due: bool,
    stats: KafkaSourceStats,
    bad: VecDeque<Arc<Error>>,
    stop: bool,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// Signalled when a cycle takes the inbox's rows, and on stop.
    room: Condvar,
    max_buffered_rows: usize,
}

/// Validated options: the source's part of them.
struct Plan {
    name: String,
    topic: String,
    format: KafkaFormat,
    group: Option<String>,
    partitions: Option<Vec<i32>>,
    start: StartOffset,
    builder: BatchBuilder,
    /// Offsets from the table's log: messages below them are already in the table.
    resume: BTreeMap<i32, i64>,
    config: ClientConfig,
}

pub(super) fn start(
    engine: &EngineHandle,
    name: &str,
    schema: SchemaRef,
    options: &KafkaSourceOptions,
) -> Result<KafkaSource> {
    check_options(name, options)?;
    let table_schema = table_schema(&schema, options).map_err(|reason| invalid(name, reason))?;
    let config = client_config(name, options);
    // Fail early on a bad option, before the table exists.
    let probe: BaseConsumer = config
        .create()
        .map_err(|e| kafka_error(name, "consumer", &e))?;
    drop(probe);

    let shared = Arc::new(Shared {
        inbox: Mutex::new(Inbox {
            polls: VecDeque::new(),
            rows: 0,
            next: BTreeMap::new(),
            staged: None,
            visible: BTreeMap::new(),
            commit_due: false,
            stats: KafkaSourceStats::default(),
            bad: VecDeque::new(),
            stop: false,
        }),
        room: Condvar::new(),
        max_buffered_rows: options.max_buffered_rows,
    });
    let topic = options.topic.clone();
    let flush_shared = shared.clone();
    let flush_topic = topic.clone();
    let publisher_options = options
        .table_options()
        .with_on_flush(move |p| on_flush(&flush_shared, &flush_topic, p));
    let (table, _publisher) =
        engine.table_publisher(name, table_schema.clone(), publisher_options)?;

    let resume = if options.durability == Durability::Log {
        replayed_offsets(engine, name, &topic)
    } else {
        BTreeMap::new()
    };
    shared.inbox.lock().next.clone_from(&resume);

    let plan = Plan {
        name: name.to_owned(),
        topic,
        format: options.format,
        group: options.group.clone(),
        partitions: options.partitions.clone(),
        start: options.start,
        builder: key_builder(
            BatchBuilder::new(
                schema,
                table_schema.clone(),
                options.partition_column.is_some(),
                options.offset_column.is_some(),
                options.max_batch_rows,
            ),
            &table_schema,
            &options.key,
        ),
        resume,
        config,
    };
    let consumer = match subscribe(&plan) {
        Ok(c) => c,
        Err(e) => {
            drop_table(engine, &table);
            return Err(e);
        }
    };
    let core = engine.core().clone();
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("tickertable-kafka-{name}"))
        .spawn(move || Consumer_::new(plan, consumer, thread_shared, core).run());
    match spawned {
        Ok(t) => Ok(KafkaSource {
            table,
            topic: options.topic.clone(),
            shared,
            thread: Some(t),
        }),
        Err(e) => {
            drop_table(engine, &table);
            Err(Error::Io(e))
        }
    }
}

/// A source option refused, for table `name`.
fn invalid(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidOption {
        option: "kafka_source",
        reason: format!("table {name:?}: {reason}"),
    }
}

/// Refuses options that cannot work together, before anything is created.
fn check_options(name: &str, options: &KafkaSourceOptions) -> Result<()> {
    if options.partitions.is_none()
        && options.group.is_none()
        && options.start == StartOffset::Committed
    {
        return Err(invalid(name, "start Committed needs a group"));
    }
    if let (StartOffset::Offset(_), None) = (options.start, &options.partitions) {
        return Err(invalid(
            name,
            "a start offset needs explicit partitions (a group resumes from its commits)",
        ));
    }
    if options.partitions.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(name, "no partitions given"));
    }
    Ok(())
}

/// The next offsets a durable table's log ends at (empty without any).
fn replayed_offsets(engine: &EngineHandle, name: &str, topic: &str) -> BTreeMap<i32, i64> {
    let Some(cursor) = engine.replay_report(name).and_then(|r| r.source_cursor) else {
        return BTreeMap::new();
    };
    match codec::decode_cursor(topic, &cursor) {
        Ok(Some(next)) => next,
        Ok(None) => {
            tracing::warn!(
                table = name,
                "tickertable: the log's kafka offsets are another topic's; starting afresh"
            );
            BTreeMap::new()
        }
        Err(e) => {
            tracing::warn!(table = name, error = %e, "tickertable: unreadable cursor");
            BTreeMap::new()
        }
    }
}

/// A keyed table's builder knows its key columns, for tombstones. The table exists with
/// them, so they are in its schema.
fn key_builder(builder: BatchBuilder, table: &SchemaRef, key: &[String]) -> BatchBuilder {
    if key.is_empty() {
        return builder;
    }
    let indices: Vec<usize> = key
        .iter()
        .map(|k| {
            table
                .index_of(k)
                .expect("invariant: the table was created with this key column")
        })
        .collect();
    let schema = table
        .project(&indices)
        .expect("invariant: indices of the schema");
    builder.with_key(Arc::new(schema))
}

/// The table's schema: the messages' columns, then the partition and offset columns.
pub(super) fn table_schema(
    schema: &SchemaRef,
    options: &KafkaSourceOptions,
) -> Result<SchemaRef, String> {
    let mut fields = schema.fields().to_vec();
    for (column, ty) in [
        (&options.partition_column, DataType::Int32),
        (&options.offset_column, DataType::Int64),
    ] {
        if let Some(c) = column {
            if fields.iter().any(|f| f.name() == c) {
                return Err(format!("column {c:?} is in the schema already"));
            }
            fields.push(Arc::new(Field::new(c.clone(), ty, false)));
        }
    }
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// The consumer's properties: manual commits, a bounded fetch queue, the user's last.
fn client_config(name: &str, options: &KafkaSourceOptions) -> ClientConfig {
    let reset = if options.start == StartOffset::Latest {
        "latest"
    } else {
        "earliest"
    };
    let group = options
        .group
        .clone()
        .unwrap_or_else(|| format!("tickertable-{name}-{}", std::process::id()));
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", reset)
        // librdkafka's fetch queue: 64 MiB per source, not its 1 GiB default.
        .set("queued.max.messages.kbytes", "65536")
        .set("group.id", group);
    for (k, v) in &options.client {
        config.set(k, v);
    }
    config
}

fn drop_table(engine: &EngineHandle, table: &Table) {
    if let Err(e) = engine.drop_table(table.name()) {
        tracing::warn!(table = table.name(), error = %e, "tickertable: dropping a failed source's table");
    }
}

/// Subscribes to the group, or assigns the partitions at their start offsets.
fn subscribe(plan: &Plan) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = plan
        .config
        .create()
        .map_err(|e| kafka_error(&plan.name, "consumer", &e))?;
    let Some(partitions) = &plan.partitions else {
        consumer
            .subscribe(&[&plan.topic])
            .map_err(|e| kafka_error(&plan.name, "subscribe", &e))?;
        return Ok(consumer);
    };
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        let offset = match (plan.resume.get(&p), plan.start) {
            (Some(&next), _) => Offset::Offset(next),
            (None, StartOffset::Earliest) => Offset::Beginning,
            (None, StartOffset::Latest) => Offset::End,
            (None, StartOffset::Committed) => Offset::Stored,
            (None, StartOffset::Offset(o)) => Offset::Offset(o),
        };
        tpl.add_partition_offset(&plan.topic, p, offset)
            .map_err(|e| kafka_error(&plan.name, "assign", &e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(&plan.name, "assign", &e))?;
    Ok(consumer)
}

/// Runs at the start of every cycle, on the cycle thread: marks the previous cycle's staged
/// offsets visible and stages what the inbox holds. O(batches).
fn on_flush(shared: &Shared, topic: &str, publisher: &TablePublisher) {
    let mut inbox = shared.inbox.lock();
    // The cycle that drained the last staging has delivered: its rows are visible.
    if let Some(staged) = inbox.staged.take() {
        inbox.set_visible(staged);
    }
    if inbox.polls.is_empty() {
        if inbox.staged.is_none() {
            // Everything decoded is visible: only bad or skipped messages came since.
            let next = inbox.next.clone();
            inbox.set_visible(next);
        }
        return;
    }
    // As many whole polls as staging takes at once; the rest wait for the next cycle.
    let limit = publisher.table().shared.staging.limit();
    let (mut n, mut rows) = (0, 0);
    for p in &inbox.polls {
        if rows + p.rows > limit {
            break;
        }
        rows += p.rows;
        n += 1;
    }
    if n == 0 {
        let rows = inbox.polls[0].rows;
        publisher.publish_failure_message(format!(
            "kafka source: one poll of {rows} rows is more than the staging limit of {limit} \
             rows; lower its max_batch_rows or raise Builder::staging_limit"
        ));
        inbox.polls.clear();
        inbox.rows = 0;
        inbox.stop = true;
        shared.room.notify_all();
        return;
    }
    let next = inbox.polls[n - 1].next.clone();
    let batches: Vec<RecordBatch> = inbox
        .polls
        .iter()
        .take(n)
        .flat_map(|p| p.batches.iter().cloned())
        .collect();
    match publisher.add_with_cursor(&batches, codec::encode_cursor(topic, &next)) {
        Ok(true) => {
            inbox.stats.staged_rows += rows as u64;
            inbox.polls.drain(..n);
            inbox.rows -= rows;
            inbox.staged = Some(next);
            shared.room.notify_all();
        }
        Ok(false) => {} // staging is full: the next cycle takes them
        Err(e) => {
            // The table closed or failed: nothing more to stage.
            tracing::debug!(error = %e, "tickertable: kafka source stopped staging");
            inbox.polls.clear();
            inbox.rows = 0;
            inbox.stop = true;
            shared.room.notify_all();
        }
    }
}

impl Inbox {
    fn take_commit(&mut self) -> Option<BTreeMap<i32, i64>> {
        std::mem::take(&mut self.commit_due).then(|| self.visible.clone())
    }

    fn set_visible(&mut self, offsets: BTreeMap<i32, i64>) {
        if offsets != self.visible {
            self.visible = offsets;
            self.commit_due = true;
        }
    }
}

/// The consumer thread's state.
#[allow(non_camel_case_types)] // `Consumer` is rdkafka's trait, used here
struct Consumer_ {
    plan: Plan,
    consumer: BaseConsumer,
    shared: Arc<Shared>,
    core: Arc<Core>,
    bad: Vec<Bad>,
    ipc: Vec<RecordBatch>,
    /// One-row key batches of the tombstones since the last value, in order.
    deletes: Vec<RecordBatch>,
    /// The next offset per partition of what this thread decoded (the inbox's `next` is
    /// set from it when a batch goes in).
    next: BTreeMap<i32, i64>,
    last_watermarks: Instant,
    watermarks: BTreeMap<i32, i64>,
    last_poll_error: Option<Instant>,
}

impl Consumer_ {
    fn new(plan: Plan, consumer: BaseConsumer, shared: Arc<Shared>, core: Arc<Core>) -> Self {
        let next = plan.resume.clone();
        Self {
            plan,
            consumer,
            shared,
            core,
            bad: Vec::new(),
            ipc: Vec::new(),
            deletes: Vec::new(),
            next,
            last_watermarks: Instant::now()
                .checked_sub(WATERMARKS_EVERY)
                .unwrap_or_else(Instant::now),
            watermarks: BTreeMap::new(),
            last_poll_error: None,
        }
    }

    fn run(mut self) {
        loop {
            let to_commit = {
                let mut inbox = self.shared.inbox.lock();
                if inbox.stop {
                    break;
                }
                if inbox.rows >= self.shared.max_buffered_rows {
                    self.shared.room.wait_for(&mut inbox, POLL);
                    drop(inbox);
                    // A full buffer still reports its lag.
                    if self.last_watermarks.elapsed() >= WATERMARKS_EVERY {
                        self.fetch_watermarks();
                    }
                    continue;
                }
                inbox.take_commit()
            };
            if let Some(offsets) = to_commit {
                self.commit(&offsets);
            }
            self.poll_batch();
            if self.last_watermarks.elapsed() >= WATERMARKS_EVERY {
                self.fetch_watermarks();
            }
        }
        // A last commit of what is visible; the consumer leaves its group when dropped.
        let last = self.shared.inbox.lock().take_commit();
        if let Some(offsets) = last {
            self.commit(&offsets);
        }
    }

    /// Polls up to a batch of messages (waiting at most [`POLL`] for the first) and puts
    /// what they decode to into the inbox.
    fn poll_batch(&mut self) {
        let mut messages = 0u64;
        let mut skipped = 0u64;
        let mut gaps = 0u64;
        let mut rows = 0usize;
        let mut wait = POLL;
        let max = self.plan.builder.max_rows();
        while messages < max as u64 && rows < max {
            let Some(polled) = self.consumer.poll(wait) else {
                break;
            };
            wait = Duration::ZERO;
            let m = match polled {
                Ok(m) => m,
                Err(e) => {
                    self.poll_error(&e);
                    break;
                }
            };
            messages += 1;
            let (p, o) = (m.partition(), m.offset());
            if self.plan.resume.get(&p).is_some_and(|&next| o < next) {
                skipped += 1;
                continue;
            }
            if let Some(&expected) = self.next.get(&p).filter(|&&e| o > e) {
                gaps += 1;
                tracing::warn!(
                    table = %self.plan.name,
                    topic = %self.plan.topic,
                    partition = p,
                    expected,
                    offset = o,
                    "tickertable: kafka source: the next message came at a later offset"
                );
            }
            self.next.insert(p, o + 1);
            let Some(value) = m.payload() else {
                // A tombstone: a keyed table deletes its key, after the rows before it.
                match self.plan.builder.decode_key(m.key()) {
                    Ok(key) => {
                        rows += finish_values(&mut self.plan.builder, &mut self.bad, &mut self.ipc);
                        self.deletes.push(key);
                    }
                    Err(reason) => self.bad.push(Bad {
                        partition: p,
                        offset: o,
                        reason,
                    }),
                }
                continue;
            };
            rows += finish_deletes(&self.plan.builder, &mut self.deletes, &mut self.ipc);
            match self.plan.format {
                KafkaFormat::Json => {
                    self.plan.builder.push_json(p, o, value);
                    if self.plan.builder.is_full() {
                        break;
                    }
                }
                KafkaFormat::ArrowIpc => {
                    match self.plan.builder.decode_ipc(p, o, value, &mut self.ipc) {
                        Ok(n) => rows += n,
                        Err(reason) => self.bad.push(Bad {
                            partition: p,
                            offset: o,
                            reason,
                        }),
                    }
                }
            }
        }
        // At most one of them holds anything: each flushes the other.
        rows += self.finish_values();
        rows += self.finish_deletes();
        if messages == 0 {
            return;
        }
        self.deliver(messages, skipped, gaps, rows);
    }

    /// Puts a poll's batches, counts and bad messages into the inbox, and reports the bad.
    fn deliver(&mut self, messages: u64, skipped: u64, gaps: u64, rows: usize) {
        let bad: Vec<Arc<Error>> = self
            .bad
            .drain(..)
            .map(|b| {
                Arc::new(Error::KafkaBadMessage {
                    table: self.plan.name.clone(),
                    topic: self.plan.topic.clone(),
                    partition: b.partition,
                    offset: b.offset,
                    reason: b.reason,
                })
            })
            .collect();
        for e in &bad {
            tracing::warn!(error = %e, "tickertable: bad kafka message");
            self.core.report_shared(e.clone());
        }
        let mut inbox = self.shared.inbox.lock();
        inbox.stats.messages += messages;
        inbox.stats.skipped += skipped;
        inbox.stats.offset_gaps += gaps;
        inbox.stats.rows += rows as u64;
        inbox.stats.bad_messages += bad.len() as u64;
        for e in bad {
            if inbox.bad.len() == KEEP_BAD {
                inbox.bad.pop_front();
            }
            inbox.bad.push_back(e);
        }
        inbox.rows += rows;
        if rows > 0 {
            inbox.polls.push_back(Poll {
                batches: std::mem::take(&mut self.ipc),
                rows,
                next: self.next.clone(),
            });
        } else if let Some(last) = inbox.polls.back_mut() {
            // Bad or skipped messages only: they are consumed with the rows before them.
            last.next.clone_from(&self.next);
        }
        inbox.next.clone_from(&self.next);
    }

    /// Decodes the JSON values held into the poll's batches; the rows that gives.
    fn finish_values(&mut self) -> usize {
        finish_values(&mut self.plan.builder, &mut self.bad, &mut self.ipc)
    }

    /// Turns the tombstones held into one delete batch of the poll; the keys it deletes.
    fn finish_deletes(&mut self) -> usize {
        finish_deletes(&self.plan.builder, &mut self.deletes, &mut self.ipc)
    }

    fn poll_error(&mut self, e: &rdkafka::error::KafkaError) {
        self.shared.inbox.lock().stats.poll_errors += 1;
        // One report per 10 s: a broker that is out says so every poll.
        if self
            .last_poll_error
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            self.last_poll_error = Some(Instant::now());
            let err = kafka_error(&self.plan.name, "poll", e);
            tracing::warn!(error = %err, "tickertable: kafka source");
            self.core.report(err);
        }
    }

    fn commit(&mut self, offsets: &BTreeMap<i32, i64>) {
        if self.plan.group.is_none() || offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &o) in offsets {
            if tpl
                .add_partition_offset(&self.plan.topic, p, Offset::Offset(o))
                .is_err()
            {
                return;
            }
        }
        let result = self.consumer.commit(&tpl, CommitMode::Async);
        let mut inbox = self.shared.inbox.lock();
        inbox.stats.commits += 1;
        if let Err(e) = result {
            inbox.stats.commit_errors += 1;
            drop(inbox);
            self.core.report(kafka_error(&self.plan.name, "commit", &e));
        }
    }

    fn fetch_watermarks(&mut self) {
        self.last_watermarks = Instant::now();
        // A group member's partitions: its assignment, and every partition it has read
        // from (the assignment can lag behind what the consumer already fetches).
        let partitions: Vec<i32> = if let Some(p) = &self.plan.partitions {
            p.clone()
        } else {
            let mut all: std::collections::BTreeSet<i32> = self.next.keys().copied().collect();
            if let Ok(tpl) = self.consumer.assignment() {
                all.extend(
                    tpl.elements()
                        .iter()
                        .map(rdkafka::topic_partition_list::TopicPartitionListElem::partition),
                );
            }
            all.into_iter().collect()
        };
        for p in partitions {
            match self
                .consumer
                .fetch_watermarks(&self.plan.topic, p, WATERMARK_TIMEOUT)
            {
                Ok((_, high)) => {
                    self.watermarks.insert(p, high);
                }
                // A slow broker: the other partitions wait for the next round rather than
                // hold the consumer thread up one timeout each.
                Err(_) => break,
            }
        }
        let mut stats = Vec::new();
        for (&p, &high) in &self.watermarks {
            let next = self.next.get(&p).copied().unwrap_or(0);
            stats.push(PartitionStats {
                partition: p,
                next_offset: next,
                high_watermark: high,
                lag: u64::try_from(high - next).unwrap_or(0),
            });
        }
        self.shared.inbox.lock().stats.partitions = stats;
    }
}

/// Decodes the JSON values `builder` holds into `out`; the rows that gives.
fn finish_values(
    builder: &mut BatchBuilder,
    bad: &mut Vec<Bad>,
    out: &mut Vec<RecordBatch>,
) -> usize {
    if builder.len() == 0 {
        return 0;
    }
    let Some(b) = builder.finish_json(bad) else {
        return 0;
    };
    let n = b.num_rows();
    out.push(b);
    n
}

/// Turns the tombstones' keys held into one delete batch in `out`; the keys it deletes.
fn finish_deletes(
    builder: &BatchBuilder,
    deletes: &mut Vec<RecordBatch>,
    out: &mut Vec<RecordBatch>,
) -> usize {
    if deletes.is_empty() {
        return 0;
    }
    let schema = builder
        .key_schema()
        .expect("invariant: only a keyed builder decodes keys");
    let keys = arrow_select::concat::concat_batches(schema, deletes.iter())
        .expect("invariant: batches of the key schema");
    deletes.clear();
    let n = keys.num_rows();
    out.push(delete_batch(&keys).expect("invariant: a batch of the key columns"));
    n
}

impl KafkaSource {
    /// The table the source feeds.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The topic the source reads.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The source's counters and positions. O(partitions).
    pub fn stats(&self) -> KafkaSourceStats {
        let inbox = self.shared.inbox.lock();
        let mut stats = inbox.stats.clone();
        if stats.partitions.is_empty() {
            stats.partitions = inbox
                .next
                .iter()
                .map(|(&partition, &next_offset)| PartitionStats {
                    partition,
                    next_offset,
                    high_watermark: -1,
                    lag: 0,
                })
                .collect();
        }
        stats
    }

    /// The last bad messages (at most 256), oldest first: each an
    /// [`Error::KafkaBadMessage`] with its partition and offset.
    pub fn bad_messages(&self) -> Vec<Arc<Error>> {
        self.shared.inbox.lock().bad.iter().cloned().collect()
    }

    /// Stops the consumer (committing what is visible) and waits for its thread.
    pub fn stop(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.shared.inbox.lock().stop = true;
        self.shared.room.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSource")
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}
