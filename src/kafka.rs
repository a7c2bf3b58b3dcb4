//! Kafka sources and sinks: tables fed from a topic, and tables published to one (the
//! `kafka` feature).
//!
//! [`EngineHandle::kafka_source`] creates a table fed by a topic's messages, one row per JSON
//! message or one batch per Arrow IPC message, in a blink, ring, append or keyed table;
//! [`Table::kafka_sink`] publishes every cycle's changes of a table to a topic. Several
//! engines can share a topic's partitions (a consumer group, or explicit partitions), and any
//! Kafka tool reads what an engine publishes.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use arrow_schema::{DataType, Field, Schema};
//! use tickertable::kafka::{KafkaFormat, KafkaSinkOptions, KafkaSourceOptions, StartOffset};
//! use tickertable::{Engine, TableKind};
//!
//! let engine = Engine::new()?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("Sym", DataType::Utf8, false),
//!     Field::new("Price", DataType::Float64, false),
//! ]));
//! let options = KafkaSourceOptions::new("127.0.0.1:9092", "trades")
//!     .with_group("engines")
//!     .with_kind(TableKind::Ring { capacity: 100_000 })
//!     .with_start(StartOffset::Earliest)
//!     .with_offset_column("Offset");
//! let source = engine.kafka_source("trades", schema, options)?;
//! let latest = engine.last_by("latest", source.table(), &["Sym"])?;
//! let sink = latest.kafka_sink(KafkaSinkOptions::new("127.0.0.1:9092", "latest").with_key(["Sym"]))?;
//! # drop((sink, source));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The client: librdkafka, linked dynamically
//!
//! Sources and sinks use [`rdkafka`], the Rust binding of librdkafka, the C client most
//! Kafka clients outside the JVM are built on (Python's confluent-kafka, Go's
//! confluent-kafka-go, .NET's): consumer groups, rebalancing, batching, retries, compression
//! and delivery reports are a long-tested library's, not ours. A pure-Rust client would build
//! without C, but none is as complete or as widely run.
//!
//! librdkafka is built from the copy `rdkafka-sys` bundles (`cmake-build`: cmake and a C
//! compiler, plus zlib's and curl's headers; Debian: `apt-get install cmake zlib1g-dev
//! libcurl4-openssl-dev`), statically linked, rather than linked against the system's:
//!
//! - the version is the one the bindings were generated for, on every machine. Linking the
//!   system's (`dynamic-linking`) takes whatever the distribution ships, and `rdkafka-sys`
//!   refuses one older than its bundled copy: Debian bookworm's 2.0.2 only goes with
//!   `rdkafka` 0.33 (bundling 1.9.2), and that 2.0.2 never finishes its `ApiVersions`
//!   handshake with the `tansu` broker the tests use, where librdkafka 2.12 (bundled here)
//!   and 2.16 work;
//! - the cost is compiling librdkafka's C once per clean build (about a minute on a
//!   two-core machine, cached after), not at every build; a binary needs no librdkafka
//!   installed where it runs.
//!
//! TLS and SASL are not compiled in (no OpenSSL or Cyrus SASL to build against); compression:
//! gzip (zlib), snappy and lz4 (bundled).
//!
//! The feature is off by default, so an engine that does not use Kafka compiles none of it.
//!
//! # Sources
//!
//! A consumer thread per source polls the topic, decodes messages (off the cycle), and keeps
//! them in a bounded buffer ([`KafkaSourceOptions::with_max_buffered_rows`]: past it, it
//! stops polling until a cycle takes them). Each cycle's `on_flush` stages everything
//! buffered, so one cycle makes a poll's rows visible together.
//!
//! - **Formats** ([`KafkaFormat`]): JSON, one object per message, checked against the
//!   schema (every non-nullable column present, values of the column's type, no other
//!   fields); Arrow IPC, one stream per message holding batches of the schema. A message that
//!   does not fit is counted and reported with its partition and offset
//!   ([`Error::KafkaBadMessage`](crate::Error::KafkaBadMessage), in [`KafkaSource::bad_messages`], the engine's
//!   [`recent_errors`](crate::EngineHandle::recent_errors) and a `tracing` warning), never
//!   dropped silently; the messages around it are kept.
//! - **Tombstones** (a message with a key and no value) delete their key from a keyed
//!   source's table, in order with the rows around them. The message key is a JSON object
//!   of the key columns (`{"Sym":"AAPL"}`), what a keyed table's sink sends, so one
//!   engine's keyed table can be followed by another's through a (compacted) topic. A
//!   tombstone for a table without keys, or whose key does not decode, is a bad message.
//! - **Offset gaps**: a partition's message at a later offset than the one expected is
//!   counted ([`KafkaSourceStats::offset_gaps`]) and logged: normal on compacted or
//!   transactional topics, a broker that skipped messages otherwise.
//! - **Partition and offset** columns, on request
//!   ([`with_partition_column`](KafkaSourceOptions::with_partition_column),
//!   [`with_offset_column`](KafkaSourceOptions::with_offset_column)), after the schema's.
//! - **Assignment**: a consumer group ([`with_group`](KafkaSourceOptions::with_group)),
//!   whose members split the partitions, or explicit partitions
//!   ([`with_partitions`](KafkaSourceOptions::with_partitions)) for a split that never
//!   rebalances.
//! - **Start** ([`StartOffset`]): earliest, latest, the group's committed offsets, or an
//!   offset. In a group, a partition with a committed offset resumes from it; the start says
//!   where a partition without one begins.
//! - **Commits**: a source with a group commits a partition's offset only after the cycle
//!   that made its rows visible has delivered (the commit follows at the next cycle), so a
//!   consumer restarted from the committed offsets sees every row again that no listener
//!   saw, and none that one did. Bad messages' offsets are consumed with the rows around them.
//!
//! ## Durable sources: exactly where the table ends
//!
//! With [`with_durability`](KafkaSourceOptions::with_durability) (an engine with a data
//! directory), each cycle's rows are logged together with the source's next offset per
//! partition, in the same checksummed record (the log's *source cursor*, see
//! [`crate::durable`]). Created again, the table replays its log and the source resumes from
//! the logged offsets: with explicit partitions by assigning them there, in a group by
//! skipping every message below them. The table's state and the source's position come from
//! one record, so after a crash, even a `SIGKILL` between the log and a commit, no message is
//! applied twice and none is skipped. (Bad messages after the last rows logged are read
//! again, and reported again.)
//!
//! # Sinks
//!
//! A sink's thread follows the table with a [`Subscription`](crate::Subscription) and
//! produces, per cycle, the added rows (for a keyed table the modified rows too, and a
//! tombstone, a message with the key and no value, for each key removed): JSON one message
//! per row, Arrow IPC one message per batch (of at most
//! [`with_max_rows_per_message`](KafkaSinkOptions::with_max_rows_per_message) rows). With key
//! columns each message's key is a JSON object of them, so a key's updates go to one
//! partition in order. The table's rows at the start are published first
//! ([`with_snapshot`](KafkaSinkOptions::with_snapshot)).
//!
//! librdkafka batches and retries; delivery reports are counted ([`KafkaSinkStats`]). While
//! the broker is out, messages wait in the producer's queue (bounded by
//! [`with_max_queued_messages`](KafkaSinkOptions::with_max_queued_messages)) and, once it is
//! full, the sink backs off and retries while updates wait in its subscription (bounded too).
//! If the outage outlasts both, the subscription lags: the updates it dropped are reported as
//! lost ([`Error::KafkaSinkLoss`](crate::Error::KafkaSinkLoss)), never silently; a keyed table's sink then republishes the
//! table's rows and tombstones from the new snapshot, so a compacted topic ends up right. A
//! message the client gives up on (past the delivery timeout) is counted and reported too.
//!
//! # Cost
//!
//! A source decodes a poll's JSON messages in one pass of arrow-json's decoder (no
//! allocation per row; a batch that fails is decoded again message by message to find the
//! bad ones), and an IPC message with one copy out of the client's buffer. A sink encodes a
//! batch once and slices it per row. Neither runs on the cycle thread but for `on_flush`
//! staging the buffered batches (O(batches)).

mod codec;
mod options;
mod sink;
mod source;
mod status;

use arrow_schema::SchemaRef;

use crate::engine::EngineHandle;
use crate::error::Result;
use crate::table::Table;

/// The Kafka client crate, in the version this crate links: for admin calls, producers and
/// consumers of your own next to the engine's (its `ClientConfig`, `AdminClient`, ...).
pub use rdkafka;

pub use options::{KafkaFormat, KafkaSinkOptions, KafkaSourceOptions, StartOffset};
pub use sink::{KafkaSink, KafkaSinkStats};
pub use source::{KafkaSource, KafkaSourceStats, PartitionStats};
pub use status::{status_batch, status_schema, STATUS_KEY};

impl EngineHandle {
    /// Creates table `name` fed by a Kafka topic: `schema` is the messages' columns (the
    /// partition and offset columns, if asked for, follow). See the [module docs](crate::kafka).
    ///
    /// # Errors
    ///
    /// The errors of [`table_publisher`](Self::table_publisher) (a name taken, a bad kind or
    /// key, replay's), [`Error::InvalidOption`](crate::Error::InvalidOption) for options that
    /// do not go together (a start offset in a group, a column name taken), and
    /// [`Error::Kafka`](crate::Error::Kafka) if the client cannot be created or assigned.
    /// Nothing is left behind on an error.
    #[allow(clippy::needless_pass_by_value)] // by value, as `table_publisher` takes options
    pub fn kafka_source(
        &self,
        name: &str,
        schema: SchemaRef,
        options: KafkaSourceOptions,
    ) -> Result<KafkaSource> {
        source::start(self, name, schema, &options)
    }
}

impl Table {
    /// Publishes this table's changes to a Kafka topic until the returned sink is dropped.
    /// See the [module docs](crate::kafka#sinks).
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`](crate::Error::NoColumnNamed) for a key column the table
    /// does not have, [`Error::Kafka`](crate::Error::Kafka) if the producer cannot be
    /// created, and the errors of [`subscribe`](Self::subscribe).
    #[allow(clippy::needless_pass_by_value)] // by value, as the source's options
    pub fn kafka_sink(&self, options: KafkaSinkOptions) -> Result<KafkaSink> {
        sink::start(self, &options)
    }
}
