//! `KafkaSink`: a table's changes produced to a topic, by a thread following a subscription.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::RecordBatch;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::codec::{self, kafka_error};
use super::options::{KafkaFormat, KafkaSinkOptions};
use crate::error::{Error, Result};
use crate::subscribe::{Event, RecvTimeoutError, SubscriptionOptions, TableUpdate};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::table::snapshot::TableSnapshot;
use crate::table::Table;

/// How long the sink waits for an update before it serves delivery reports again.
const WAIT: Duration = Duration::from_millis(50);
/// The longest back-off while the producer's queue is full.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a dropped sink waits for its queued messages to be delivered.
const FLUSH_ON_DROP: Duration = Duration::from_secs(10);

/// Publishes a table's changes to a Kafka topic, made by
/// [`Table::kafka_sink`](crate::Table::kafka_sink). Dropping it stops the sink, after
/// waiting (up to 10 s) for the messages it produced to be delivered.
pub struct KafkaSink {
    table: String,
    topic: String,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

/// A sink's counters, from [`KafkaSink::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaSinkStats {
    /// Table updates (and snapshots) turned into messages.
    pub updates: u64,
    /// Messages handed to the producer (rows, batches, tombstones).
    pub produced: u64,
    /// Of them, tombstones for removed keys.
    pub tombstones: u64,
    /// Delivery reports: delivered.
    pub delivered: u64,
    /// Delivery reports: failed (the client gave up; reported as [`Error::KafkaSinkLoss`]).
    pub failed: u64,
    /// Times the producer's queue was full and the sink backed off.
    pub backoffs: u64,
    /// Table updates dropped because the sink fell behind (reported as
    /// [`Error::KafkaSinkLoss`]).
    pub lost_updates: u64,
}

impl KafkaSinkStats {
    /// Messages produced and not yet reported delivered or failed.
    pub fn in_flight(&self) -> u64 {
        self.produced.saturating_sub(self.delivered + self.failed)
    }
}

#[derive(Default)]
struct Counters {
    updates: AtomicU64,
    produced: AtomicU64,
    tombstones: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    backoffs: AtomicU64,
    lost_updates: AtomicU64,
    stop: AtomicBool,
    /// The first delivery failure not yet reported (the context cannot reach the engine).
    failure: Mutex<Option<String>>,
}

/// Counts delivery reports; runs on the sink's thread, in `poll`.
struct Context(Arc<Counters>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        // Relaxed: counters, read for stats only.
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0.failure.lock().get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub(super) fn start(table: &Table, options: &KafkaSinkOptions) -> Result<KafkaSink> {
    let name = table.name().to_owned();
    let schema = table.schema().clone();
    let key: Vec<usize> = if options.key.is_empty() {
        table.key_columns().to_vec()
    } else {
        options
            .key
            .iter()
            .map(|c| {
                schema.index_of(c).map_err(|_| Error::NoColumnNamed {
                    table: name.clone(),
                    column: c.clone(),
                })
            })
            .collect::<Result<_>>()?
    };
    let keyed = !table.key_columns().is_empty();
    let counters = Arc::new(Counters::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &options.brokers)
        .set(
            "queue.buffering.max.messages",
            options.max_queued_messages.to_string(),
        )
        .set(
            "message.timeout.ms",
            options.delivery_timeout.as_millis().to_string(),
        )
        .set("linger.ms", "5");
    for (k, v) in &options.client {
        config.set(k, v);
    }
    let producer: BaseProducer<Context> = config
        .create_with_context(Context(counters.clone()))
        .map_err(|e| kafka_error(&name, "producer", &e))?;
    let subscription = table
        .subscribe_with(SubscriptionOptions::default().with_capacity(options.max_queued_updates))?;
    let core = Arc::downgrade(&table.core()?);
    let mut worker = Worker {
        table: name.clone(),
        topic: options.topic.clone(),
        format: options.format,
        key,
        keyed,
        snapshot: options.snapshot,
        max_rows: options.max_rows_per_message,
        producer,
        counters: counters.clone(),
        slots: Vec::new(),
        index: HashMap::new(),
        lines: Vec::new(),
        ends: Vec::new(),
        key_lines: Vec::new(),
        key_ends: Vec::new(),
        core,
    };
    let thread = std::thread::Builder::new()
        .name(format!("tickertable-kafka-sink-{name}"))
        .spawn(move || {
            loop {
                worker.producer.poll(Duration::ZERO);
                worker.report_failures();
                // Stopping, the sink still produces the updates already queued.
                let event = if worker.counters.stop.load(Ordering::Acquire) {
                    match subscription.try_recv() {
                        Ok(event) => event,
                        Err(_) => break,
                    }
                } else {
                    match subscription.recv_timeout(WAIT) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(_) => break,
                    }
                };
                if !worker.event(event) {
                    break;
                }
            }
            drop(subscription);
            let _ = worker.producer.flush(FLUSH_ON_DROP);
            worker.report_failures();
        })
        .map_err(Error::Io)?;
    Ok(KafkaSink {
        table: name,
        topic: options.topic.clone(),
        counters,
        thread: Some(thread),
    })
}

/// The sink thread's state.
struct Worker {
    table: String,
    topic: String,
    format: KafkaFormat,
    /// The message key's columns.
    key: Vec<usize>,
    /// The table is keyed: removed keys become tombstones.
    keyed: bool,
    snapshot: bool,
    max_rows: usize,
    producer: BaseProducer<Context>,
    counters: Arc<Counters>,
    /// A keyed table's key (as its message key) at each position.
    slots: Vec<Vec<u8>>,
    /// A keyed table's keys and their positions.
    index: HashMap<Vec<u8>, u64>,
    lines: Vec<u8>,
    ends: Vec<usize>,
    key_lines: Vec<u8>,
    key_ends: Vec<usize>,
    core: std::sync::Weak<crate::graph::Core>,
}

impl Worker {
    /// Handles one event; `false` ends the sink.
    fn event(&mut self, event: Event) -> bool {
        let result = match event {
            Event::Snapshot(s) => self.snapshot(&s, self.snapshot),
            Event::Update(u) => self.update(&u),
            Event::Lagged { missed, snapshot } => {
                // Relaxed: a counter.
                self.counters
                    .lost_updates
                    .fetch_add(missed, Ordering::Relaxed);
                self.report(Error::KafkaSinkLoss {
                    table: self.table.clone(),
                    topic: self.topic.clone(),
                    messages: missed,
                    reason: format!(
                        "the sink fell behind and {missed} table updates were dropped{}",
                        if self.keyed {
                            "; the table's rows are published again from its snapshot"
                        } else {
                            ""
                        }
                    ),
                });
                self.snapshot(&snapshot, self.keyed)
            }
            Event::Failed(_) => return false,
        };
        if let Err(e) = result {
            self.report(e);
        }
        true
    }

    fn report(&self, e: Error) {
        tracing::warn!(error = %e, "tickertable: kafka sink");
        if let Some(core) = self.core.upgrade() {
            core.report(e);
        }
    }

    fn report_failures(&self) {
        let failure = self.counters.failure.lock().take();
        if let Some(reason) = failure {
            self.report(Error::KafkaSinkLoss {
                table: self.table.clone(),
                topic: self.topic.clone(),
                messages: self.counters.failed.load(Ordering::Relaxed),
                reason: format!("delivery failed: {reason}"),
            });
        }
    }

    /// Starts from a snapshot: a keyed table's keys are taken from it (tombstones for keys
    /// it no longer holds, after a lag), and with `publish` its rows are produced.
    fn snapshot(&mut self, s: &TableSnapshot, publish: bool) -> Result<()> {
        self.counters.updates.fetch_add(1, Ordering::Relaxed);
        if self.keyed {
            let old: Vec<Vec<u8>> = std::mem::take(&mut self.slots);
            self.index.clear();
            for b in s.batches() {
                self.push_keys(b)?;
            }
            if publish {
                for k in old {
                    if !self.index.contains_key(&k) {
                        self.tombstone(&k);
                    }
                }
            }
        }
        if publish {
            for b in s.batches() {
                self.rows(b)?;
            }
        }
        Ok(())
    }

    fn update(&mut self, u: &TableUpdate) -> Result<()> {
        self.counters.updates.fetch_add(1, Ordering::Relaxed);
        if self.keyed {
            return self.keyed_update(u);
        }
        for b in u.batches() {
            self.rows(b)?;
        }
        Ok(())
    }

    /// A keyed update: removed positions (a suffix) and modified positions change keys;
    /// a key held before and by no position after is a tombstone.
    fn keyed_update(&mut self, u: &TableUpdate) -> Result<()> {
        let mut gone = Vec::new();
        for pos in u.removed() {
            let k = std::mem::take(&mut self.slots[usize_of(pos)]);
            if self.index.get(&k) == Some(&pos) {
                self.index.remove(&k);
            }
            gone.push(k);
        }
        if let Some(batch) = u.modified_batch() {
            self.key_json(batch)?;
            for (i, &pos) in u.modified().iter().enumerate() {
                let new = self.key_line(i).to_vec();
                let old = std::mem::replace(&mut self.slots[usize_of(pos)], new.clone());
                if self.index.get(&old) == Some(&pos) {
                    self.index.remove(&old);
                }
                self.index.insert(new, pos);
                gone.push(old);
            }
        }
        self.slots.truncate(usize_of(u.removed().start));
        for b in u.batches() {
            self.push_keys(b)?;
        }
        // A key can leave twice (removed, and its slot's key replaced): one tombstone.
        let mut sent = std::collections::HashSet::new();
        for k in gone {
            if !k.is_empty() && !self.index.contains_key(&k) && sent.insert(k.clone()) {
                self.tombstone(&k);
            }
        }
        if let Some(batch) = u.modified_batch() {
            self.rows(batch)?;
        }
        for b in u.batches() {
            self.rows(b)?;
        }
        Ok(())
    }

    /// Appends a batch's keys at the end of the slots.
    fn push_keys(&mut self, batch: &RecordBatch) -> Result<()> {
        self.key_json(batch)?;
        for i in 0..batch.num_rows() {
            let k = self.key_line(i).to_vec();
            self.index.insert(k.clone(), self.slots.len() as u64);
            self.slots.push(k);
        }
        Ok(())
    }

    /// Encodes `batch`'s key columns as JSON lines into `key_lines`.
    fn key_json(&mut self, batch: &RecordBatch) -> Result<()> {
        let keys = batch.project(&self.key)?;
        codec::json_lines(&keys, &mut self.key_lines, &mut self.key_ends)?;
        Ok(())
    }

    fn key_line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
        &self.key_lines[start..self.key_ends[i] - 1]
    }

    /// Produces a batch's rows: one message per row (JSON) or per slice (Arrow IPC).
    fn rows(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match self.format {
            KafkaFormat::Json => {
                let keyed = !self.key.is_empty();
                if keyed {
                    self.key_json(batch)?;
                }
                let mut lines = std::mem::take(&mut self.lines);
                let mut ends = std::mem::take(&mut self.ends);
                codec::json_lines(batch, &mut lines, &mut ends)?;
                let mut start = 0;
                for (i, &end) in ends.iter().enumerate() {
                    let value = &lines[start..end - 1];
                    start = end;
                    let key = keyed.then(|| self.key_line(i).to_vec());
                    self.produce(key.as_deref(), Some(value));
                }
                self.lines = lines;
                self.ends = ends;
            }
            KafkaFormat::ArrowIpc => {
                let mut at = 0;
                while at < batch.num_rows() {
                    let n = self.max_rows.min(batch.num_rows() - at);
                    let msg = codec::ipc_message(&batch.slice(at, n))?;
                    self.produce(None, Some(&msg));
                    at += n;
                }
            }
        }
        Ok(())
    }

    fn tombstone(&mut self, key: &[u8]) {
        self.counters.tombstones.fetch_add(1, Ordering::Relaxed);
        self.produce(Some(key), None);
    }

    /// Hands one message to the producer; while its queue is full, serves delivery reports
    /// and backs off (doubling up to [`MAX_BACKOFF`]) until there is room or the sink stops.
    fn produce(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        let mut backoff = Duration::from_millis(1);
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            match self.producer.send(record) {
                Ok(()) => {
                    self.counters.produced.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.counters.backoffs.fetch_add(1, Ordering::Relaxed);
                    self.producer.poll(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if self.counters.stop.load(Ordering::Acquire) && backoff == MAX_BACKOFF {
                        self.lose(1, "the sink stopped with the producer's queue full");
                        return;
                    }
                }
                Err((e, _)) => {
                    self.lose(1, &format!("the producer refused it: {e}"));
                    return;
                }
            }
        }
    }

    fn lose(&self, n: u64, reason: &str) {
        self.counters.failed.fetch_add(n, Ordering::Relaxed);
        self.counters.produced.fetch_add(n, Ordering::Relaxed);
        self.report(Error::KafkaSinkLoss {
            table: self.table.clone(),
            topic: self.topic.clone(),
            messages: n,
            reason: reason.to_owned(),
        });
    }
}

fn usize_of(pos: u64) -> usize {
    usize::try_from(pos).expect("invariant: a keyed table's positions fit in memory")
}

impl KafkaSink {
    /// The table the sink follows.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The topic the sink produces to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The sink's counters. O(1).
    pub fn stats(&self) -> KafkaSinkStats {
        let c = &self.counters;
        // Relaxed: counters, each exact, not a consistent set.
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KafkaSinkStats {
            updates: get(&c.updates),
            produced: get(&c.produced),
            tombstones: get(&c.tombstones),
            delivered: get(&c.delivered),
            failed: get(&c.failed),
            backoffs: get(&c.backoffs),
            lost_updates: get(&c.lost_updates),
        }
    }

    /// Stops the sink: waits (up to 10 s) for what it produced to be delivered.
    pub fn stop(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        // Release: the thread's Acquire load sees everything before the stop.
        self.counters.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaSink")
            .field("table", &self.table)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
