//! The config's Kafka entries: `[[kafka_source]]` tables fed from topics and
//! `[[kafka_sink]]` tables published to topics (with the `kafka` feature).
//!
//! ```toml
//! [[kafka_source]]
//! name = "trades"                 # the table it creates
//! brokers = "127.0.0.1:9092"
//! topic = "trades"
//! group = "engines"               # optional: a consumer group (commits after visibility)
//! partitions = [0, 1]             # optional: explicit partitions, never rebalanced
//! kind = "ring"                   # append, blink (default), ring (capacity = N), keyed (key = [..])
//! capacity = 100000
//! format = "json"                 # json (default) or arrow_ipc
//! start = "earliest"              # earliest (default), latest, committed, or an offset
//! partition_column = "Partition"  # optional
//! offset_column = "Offset"        # optional
//! columns = [{ name = "Sym", type = "utf8" }, { name = "Px", type = "float64" }]
//!
//! [[kafka_sink]]
//! table = "trades"                # any table: the config's, a source's, a derived one
//! brokers = "127.0.0.1:9092"
//! topic = "trades-copy"
//! format = "json"                 # json (default) or arrow_ipc
//! key = ["Sym"]                   # optional (a keyed table's key by default)
//! ```
//!
//! Sources are created after the config's tables and before its derived tables, so a
//! `[[derived]]` table may name a source (the config's dry run checks it against a plain
//! table of the source's schema and kind); sinks come last, so they may name any table. A bad
//! entry is refused at start with `file:line:column` and the reason, as the rest of the file.
//!
//! With any entry, ticker-serve keeps a keyed table `kafka_status` (see [`STATUS_TABLE`]):
//! one row per source partition (next offset, high watermark, lag, messages, bad messages,
//! offset gaps) and one per sink (messages waiting for delivery as its lag, delivered,
//! failed), upserted every second, so `ticker-view grpc://...` shows the lag ticking.

use std::ops::Range;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::Deserialize;
use toml::Spanned;

/// The file's Kafka entries; everything else is `config.rs`'s.
#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    kafka_source: Vec<Spanned<SourceDef>>,
    #[serde(default)]
    kafka_sink: Vec<Spanned<SinkDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct SourceDef {
    name: String,
    brokers: String,
    topic: String,
    group: Option<String>,
    partitions: Option<Vec<i32>>,
    kind: Option<String>,
    capacity: Option<usize>,
    key: Option<Vec<String>>,
    format: Option<String>,
    start: Option<toml::Value>,
    partition_column: Option<String>,
    offset_column: Option<String>,
    columns: Vec<ColumnDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct ColumnDef {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default = "yes")]
    nullable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct SinkDef {
    table: String,
    brokers: String,
    topic: String,
    format: Option<String>,
    key: Option<Vec<String>>,
}

/// The table ticker-serve keeps the sources' and sinks' positions and lag in, upserted
/// every second (`tickertable::kafka::status_batch`; keyed on kind, table, topic and
/// partition), so `ticker-view` and any client watch them like any table.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(crate) const STATUS_TABLE: &str = "kafka_status";

/// The sources and sinks running, kept until the server stops.
#[derive(Debug, Default)]
pub(crate) struct Running {
    #[cfg(feature = "kafka")]
    sources: Vec<tickertable::kafka::KafkaSource>,
    #[cfg(feature = "kafka")]
    sinks: Vec<tickertable::kafka::KafkaSink>,
    #[cfg(feature = "kafka")]
    status: Option<Status>,
}

/// The thread upserting the status table, and its stop flag.
#[cfg(feature = "kafka")]
#[derive(Debug)]
struct Status {
    /// The sources and sinks the thread holds.
    count: usize,
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Running>,
}

impl Running {
    /// How many sources and sinks run.
    #[cfg_attr(not(feature = "kafka"), allow(clippy::unused_self))]
    pub(crate) fn len(&self) -> usize {
        #[cfg(feature = "kafka")]
        return self.sources.len() + self.sinks.len() + self.status.as_ref().map_or(0, |s| s.count);
        #[cfg(not(feature = "kafka"))]
        0
    }
}

impl Running {
    /// Stops the sources (they commit what is visible) and the sinks (they deliver what
    /// they produced, for up to 10 s each).
    pub(crate) fn stop(self) {
        #[cfg(feature = "kafka")]
        {
            let mut running = self;
            if let Some(status) = running.status.take() {
                let _ = status.stop.send(());
                if let Ok(r) = status.thread.join() {
                    running = r;
                } else {
                    tracing::warn!("the kafka status thread panicked");
                }
            }
            running
                .sources
                .into_iter()
                .for_each(tickertable::kafka::KafkaSource::stop);
            running
                .sinks
                .into_iter()
                .for_each(tickertable::kafka::KafkaSink::stop);
        }
        #[cfg(not(feature = "kafka"))]
        let _ = self;
    }

    /// Creates the status table and starts the thread that upserts it every `every`.
    #[cfg(feature = "kafka")]
    fn with_status(
        self,
        engine: &tickertable::EngineHandle,
        every: std::time::Duration,
    ) -> tickertable::Result<Self> {
        use tickertable::kafka::{status_batch, status_schema, STATUS_KEY};
        use tickertable::PublisherOptions;

        let count = self.len();
        if count == 0 {
            return Ok(self);
        }
        let (_, publisher) = engine.table_publisher(
            STATUS_TABLE,
            status_schema(),
            PublisherOptions::default().with_key(STATUS_KEY),
        )?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kafka-status".into())
            .spawn(move || loop {
                let sources: Vec<_> = self.sources.iter().collect();
                let sinks: Vec<_> = self.sinks.iter().collect();
                let batch = status_batch(&sources, &sinks);
                if batch.num_rows() > 0 {
                    if let Err(e) = publisher.add(batch) {
                        tracing::warn!(error = %e, "the kafka status table refused a write");
                    }
                }
                if stopped.recv_timeout(every) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                    return self;
                }
            })?;
        Ok(Self {
            status: Some(Status {
                count,
                stop,
                thread,
            }),
            ..Self::default()
        })
    }
}

fn at(
    path: &Path,
    text: &str,
    span: &Range<usize>,
    reason: impl std::fmt::Display,
) -> anyhow::Error {
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    anyhow!("{}:{line}:{col}: {reason}", path.display())
}

/// Reads the config's Kafka entries and starts them in `engine`: the sources, then
/// `between` (the config's derived tables, which may read the sources), then the sinks.
///
/// # Errors
///
/// An entry that does not parse, that the engine refuses, or (without the `kafka` feature)
/// any entry at all: each at its line; and `between`'s error.
pub(crate) fn start(
    path: Option<&Path>,
    engine: &tickertable::EngineHandle,
    between: impl FnOnce() -> Result<()>,
) -> Result<Running> {
    let Some(path) = path else {
        between()?;
        return Ok(Running::default());
    };
    let text = std::fs::read_to_string(path)?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at(path, &text, &span, e.message().trim())
    })?;
    run(path, &text, &file, engine, between)
}

/// The names of the tables the `[[kafka_source]]` entries make (none if the file does not
/// parse: that is reported where the entries are read).
pub(crate) fn source_names(text: &str) -> Vec<String> {
    toml::from_str::<File>(text).map_or_else(
        |_| Vec::new(),
        |f| {
            f.kafka_source
                .iter()
                .map(|d| d.get_ref().name.clone())
                .collect()
        },
    )
}

/// Creates a plain table for each `[[kafka_source]]` (its schema with the partition and
/// offset columns, its kind and key) in a dry run's `engine`, so the config's derived tables
/// can be checked against them. Without the `kafka` feature it refuses the first entry.
///
/// # Errors
///
/// The entry's span and the reason, for an entry that does not make a table.
pub(crate) fn stand_ins(
    text: &str,
    engine: &tickertable::EngineHandle,
) -> std::result::Result<(), (Range<usize>, String)> {
    let file: File = toml::from_str(text)
        .map_err(|e| (e.span().unwrap_or(0..0), e.message().trim().to_owned()))?;
    make_stand_ins(&file, engine)
}

#[cfg(not(feature = "kafka"))]
fn make_stand_ins(
    file: &File,
    _: &tickertable::EngineHandle,
) -> std::result::Result<(), (Range<usize>, String)> {
    match file.kafka_source.first() {
        Some(def) => Err((def.span(), WITHOUT_KAFKA.to_owned())),
        None => Ok(()),
    }
}

/// Why an entry is refused by a ticker-serve built without the `kafka` feature.
#[cfg(not(feature = "kafka"))]
const WITHOUT_KAFKA: &str =
    "this ticker-serve was built without Kafka: build it with `--features kafka`";

#[cfg(feature = "kafka")]
fn make_stand_ins(
    file: &File,
    engine: &tickertable::EngineHandle,
) -> std::result::Result<(), (Range<usize>, String)> {
    for def in &file.kafka_source {
        let s = def.get_ref();
        let refused = |reason: String| (def.span(), format!("kafka source {:?}: {reason}", s.name));
        let (schema, options) = source_options(s).map_err(refused)?;
        let schema = options
            .table_schema(&schema)
            .map_err(|e| refused(e.to_string()))?;
        engine
            .table_publisher(&s.name, schema, options.table_options())
            .map_err(|e| refused(e.to_string()))?;
    }
    Ok(())
}

#[cfg(not(feature = "kafka"))]
fn run(
    path: &Path,
    text: &str,
    file: &File,
    _: &tickertable::EngineHandle,
    between: impl FnOnce() -> Result<()>,
) -> Result<Running> {
    let first = file
        .kafka_source
        .first()
        .map(Spanned::span)
        .or_else(|| file.kafka_sink.first().map(Spanned::span));
    if let Some(span) = first {
        return Err(at(path, text, &span, WITHOUT_KAFKA));
    }
    between()?;
    Ok(Running::default())
}

#[cfg(feature = "kafka")]
fn format(f: Option<&str>) -> Result<tickertable::kafka::KafkaFormat, String> {
    use tickertable::kafka::KafkaFormat;
    match f {
        None | Some("json") => Ok(KafkaFormat::Json),
        Some("arrow_ipc") => Ok(KafkaFormat::ArrowIpc),
        Some(other) => Err(format!(
            "unknown format {other:?} (expected json or arrow_ipc)"
        )),
    }
}

/// A `[[kafka_source]]`'s table kind.
#[cfg(feature = "kafka")]
fn source_kind(s: &SourceDef) -> Result<tickertable::TableKind, String> {
    use tickertable::TableKind;

    Ok(match s.kind.as_deref() {
        None | Some("blink") => TableKind::Blink,
        Some("append") => TableKind::Append,
        Some("ring") => TableKind::Ring {
            capacity: s.capacity.ok_or("a ring needs a capacity")?,
        },
        Some("keyed") => TableKind::Keyed {
            capacity: s.capacity,
        },
        Some(other) => return Err(format!("unknown kind {other:?}")),
    })
}

/// A `[[kafka_source]]`'s schema and options.
#[cfg(feature = "kafka")]
fn source_options(
    s: &SourceDef,
) -> Result<
    (
        arrow_schema::SchemaRef,
        tickertable::kafka::KafkaSourceOptions,
    ),
    String,
> {
    use std::sync::Arc;

    use arrow_schema::{Field, Schema};
    use tickertable::kafka::{KafkaSourceOptions, StartOffset};

    let mut fields = Vec::new();
    for c in &s.columns {
        let ty = tickertable_tools::types::data_type(&c.data_type)
            .ok_or_else(|| format!("column {:?}: unknown type {:?}", c.name, c.data_type))?;
        fields.push(Field::new(&c.name, ty, c.nullable));
    }
    let kind = source_kind(s)?;
    let start = match &s.start {
        None => StartOffset::Earliest,
        Some(toml::Value::Integer(o)) => StartOffset::Offset(*o),
        Some(toml::Value::String(v)) => match v.as_str() {
            "earliest" => StartOffset::Earliest,
            "latest" => StartOffset::Latest,
            "committed" => StartOffset::Committed,
            other => return Err(format!("unknown start {other:?}")),
        },
        Some(other) => return Err(format!("start {other:?} is not a name or an offset")),
    };
    let mut options = KafkaSourceOptions::new(&s.brokers, &s.topic)
        .with_kind(kind)
        .with_start(start)
        .with_format(format(s.format.as_deref())?);
    if let Some(g) = &s.group {
        options = options.with_group(g);
    }
    if let Some(p) = &s.partitions {
        options = options.with_partitions(p.iter().copied());
    }
    if let Some(k) = &s.key {
        options = options.with_key(k.iter().cloned());
    }
    if let Some(c) = &s.partition_column {
        options = options.with_partition_column(c);
    }
    if let Some(c) = &s.offset_column {
        options = options.with_offset_column(c);
    }
    Ok((Arc::new(Schema::new(fields)), options))
}

#[cfg(feature = "kafka")]
fn run(
    path: &Path,
    text: &str,
    file: &File,
    engine: &tickertable::EngineHandle,
    between: impl FnOnce() -> Result<()>,
) -> Result<Running> {
    use tickertable::kafka::KafkaSinkOptions;

    let mut running = Running::default();
    for def in &file.kafka_source {
        let s = def.get_ref();
        let refused = |reason: String| {
            let reason = format!("kafka source {:?}: {reason}", s.name);
            at(path, text, &def.span(), reason)
        };
        let (schema, options) = source_options(s).map_err(refused)?;
        let source = engine
            .kafka_source(&s.name, schema, options)
            .map_err(|e| refused(e.to_string()))?;
        tracing::info!(table = %s.name, topic = %s.topic, "config: started a kafka source");
        running.sources.push(source);
    }
    between()?;
    for def in &file.kafka_sink {
        let s = def.get_ref();
        let refused = |reason: String| {
            let reason = format!("kafka sink of {:?}: {reason}", s.table);
            at(path, text, &def.span(), reason)
        };
        let table = engine
            .table(&s.table)
            .ok_or_else(|| refused("no such table".into()))?;
        let mut options = KafkaSinkOptions::new(&s.brokers, &s.topic)
            .with_format(format(s.format.as_deref()).map_err(refused)?);
        if let Some(k) = &s.key {
            options = options.with_key(k.iter().cloned());
        }
        let sink = table
            .kafka_sink(options)
            .map_err(|e| refused(e.to_string()))?;
        tracing::info!(table = %s.table, topic = %s.topic, "config: started a kafka sink");
        running.sinks.push(sink);
    }
    running
        .with_status(engine, std::time::Duration::from_secs(1))
        .map_err(|e| anyhow!("the {STATUS_TABLE:?} table: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> File {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn smoke() {
        let f = entries(
            r#"
            period_ms = 5
            [[table]]
            name = "t"
            [[kafka_source]]
            name = "k"
            brokers = "b:1"
            topic = "x"
            start = 42
            columns = [{ name = "v", type = "int64", nullable = false }]
            [[kafka_sink]]
            table = "t"
            brokers = "b:1"
            topic = "y"
            "#,
        );
        assert_eq!((f.kafka_source.len(), f.kafka_sink.len()), (1, 1));
        assert_eq!(
            f.kafka_source[0].get_ref().start,
            Some(toml::Value::Integer(42))
        );
    }

    const SOURCE: &str = "[[table]]\nname = \"t\"\n\n[[kafka_source]]\nname = \"k\"\n\
        brokers = \"127.0.0.1:1\"\ntopic = \"x\"\nkind = \"ring\"\n\
        columns = [{ name = \"v\", type = \"int64\" }]\n";

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn without_the_feature_an_entry_is_refused_at_its_line() {
        let engine = tickertable::Engine::builder().manual().build().unwrap();
        let file = entries(SOURCE);
        let err = run(Path::new("f.toml"), SOURCE, &file, &engine, || Ok(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.toml:4:1: this ticker-serve was built without Kafka: build it with `--features kafka`"
        );
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_source_entry_is_checked_before_anything_starts() {
        let file = entries(SOURCE);
        let err = source_options(file.kafka_source[0].get_ref()).unwrap_err();
        assert_eq!(err, "a ring needs a capacity");
        let ok = entries(&SOURCE.replace("\"ring\"", "\"keyed\"\nkey = [\"v\"]"));
        let (schema, _) = source_options(ok.kafka_source[0].get_ref()).unwrap();
        assert_eq!(schema.fields().len(), 1);
    }

    /// A ring source with a partition column and a derived `last_by` over it, keyed on `key`.
    fn derived_over_source(key: &str) -> String {
        format!(
            "[[kafka_source]]\nname = \"k\"\nbrokers = \"127.0.0.1:1\"\ntopic = \"x\"\n\
             kind = \"ring\"\ncapacity = 10\npartition_column = \"P\"\n\
             columns = [{{ name = \"v\", type = \"int64\" }}]\n\n\
             [[derived]]\nname = \"d\"\nsource = \"k\"\nkind = \"last_by\"\nkeys = [\"{key}\"]\n"
        )
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn a_derived_table_may_read_a_source_and_is_checked_against_its_columns() {
        let parse = |text: String| crate::config::Config::parse(Path::new("t.toml"), text);
        // The partition column is the source's: the dry run's stand-in table has it.
        parse(derived_over_source("P")).unwrap();
        let err = parse(derived_over_source("nope")).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn without_the_feature_a_derived_table_over_a_source_is_refused_at_the_source() {
        let err = crate::config::Config::parse(Path::new("t.toml"), derived_over_source("P"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml:1:1") && err.contains("built without Kafka"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_key_is_refused_at_its_line() {
        let text = "[[kafka_sink]]\ntable = \"t\"\nbrokers = \"b\"\ntopik = \"y\"\n";
        let e = toml::from_str::<File>(text).unwrap_err();
        let err = at(Path::new("f.toml"), text, &e.span().unwrap(), e.message());
        assert!(err.to_string().starts_with("f.toml:"), "{err}");
        assert!(err.to_string().contains("topik"), "{err}");
    }
}
