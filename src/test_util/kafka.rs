//! A real Kafka-protocol broker for tests: `tansu`, started on a free loopback port with
//! in-memory storage and killed when dropped, with a plain producer and consumer
//! (`rdkafka`) to write and read topics around an engine. Used by the crate's Kafka tests
//! and ticker-serve's.
//!
//! Without a `tansu` binary (on `PATH`, in `~/.cargo/bin`, or `TANSU=/path/to/tansu`),
//! [`broker`] says the test skipped, loudly, and returns `None`, except under
//! `TICKERTABLE_REQUIRE_KAFKA=1` (CI), where it panics.
//!
//! # Panics
//!
//! Every function here panics on what a test does not expect (a broker that does not start,
//! a message that is not delivered within [`DEADLINE`]), as a test's own code does.
#![allow(
    clippy::missing_panics_doc,
    reason = "test helpers panic on the unexpected, as tests do (see # Panics above)"
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// How long a test waits for the broker before it gives up: a hang guard only.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A `tansu` broker on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// `host:port` of the broker.
    pub addr: String,
    bin: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANSU") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")))
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
}

/// Where the broker's output goes: `TICKERTABLE_TANSU_LOG=file` to see it.
fn log() -> Stdio {
    match std::env::var_os("TICKERTABLE_TANSU_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    }
}

/// Starts a broker, or says the test skipped (fails under `TICKERTABLE_REQUIRE_KAFKA=1`).
pub fn broker(test: &str) -> Option<Broker> {
    let Some(bin) = tansu() else {
        assert!(
            std::env::var("TICKERTABLE_REQUIRE_KAFKA").as_deref() != Ok("1"),
            "{test}: TICKERTABLE_REQUIRE_KAFKA=1 and no tansu broker \
             (cargo install tansu --version '^0.6' --features dynostore)"
        );
        eprintln!("\n*** SKIPPED {test}: no `tansu` on PATH (cargo install tansu --version '^0.6' --features dynostore) ***\n");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port for the broker")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(&bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdin(Stdio::null())
        .stdout(log())
        .stderr(log())
        .spawn()
        .expect("start tansu");
    let broker = Broker {
        child,
        addr: format!("127.0.0.1:{port}"),
        bin,
    };
    let start = Instant::now();
    while TcpStream::connect(&broker.addr).is_err() {
        assert!(
            start.elapsed() < DEADLINE,
            "tansu did not listen on {}",
            broker.addr
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(broker)
}

impl Broker {
    /// Creates a topic with the broker's own CLI (librdkafka's admin client waits for a
    /// controller that tansu 0.6 does not name in its metadata).
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let status = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://{}", self.addr),
            ])
            .args(["--partitions", &partitions.to_string(), topic])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }

    /// A producer putting at most `per_batch` messages in one record batch.
    pub fn producer_batching(&self, per_batch: usize) -> ThreadedProducer<DefaultProducerContext> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("linger.ms", "1")
            .set("batch.num.messages", per_batch.to_string())
            .create()
            .expect("a producer for the test broker")
    }

    /// Produces `(partition, key, value)` messages and waits until they are delivered.
    pub fn produce(&self, topic: &str, messages: &[Msg<'_>]) {
        self.produce_batching(topic, messages, 10_000);
    }

    /// [`Broker::produce`] with at most `per_batch` messages per record batch.
    pub fn produce_batching(&self, topic: &str, messages: &[Msg<'_>], per_batch: usize) {
        let producer = self.producer_batching(per_batch);
        for &(p, key, value) in messages {
            let mut record: BaseRecord<'_, [u8], [u8]> =
                BaseRecord::to(topic).partition(p).payload(value);
            if let Some(k) = key {
                record = record.key(k);
            }
            producer
                .send(record)
                .map_err(|(e, _)| e)
                .expect("a message queued for the test broker");
        }
        producer
            .flush(DEADLINE)
            .expect("the messages delivered to the test broker");
    }

    /// A plain consumer's view of `topic`: every message of every partition, from the
    /// start, until `n` have arrived: `(partition, offset, key, value)`.
    pub fn read(&self, topic: &str, partitions: i32, n: usize) -> Vec<Read> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", format!("reader-{topic}"))
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer of the test broker");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("a partition to read from the start");
        }
        consumer
            .assign(&tpl)
            .expect("the topic's partitions assigned");
        let mut out = Vec::new();
        let start = Instant::now();
        while out.len() < n {
            assert!(
                start.elapsed() < DEADLINE,
                "read {} of {n} messages",
                out.len()
            );
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m.expect("a message from the test broker");
                out.push(Read {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                });
            }
        }
        out
    }
}

/// A message to produce: partition, key, value.
pub type Msg<'a> = (i32, Option<&'a [u8]>, &'a [u8]);

/// A message [`Broker::read`] read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its value (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
}
