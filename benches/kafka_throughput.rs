//! Kafka throughput against a real broker: rows/s from a topic into a table (JSON, Arrow IPC)
//! and from a table into a topic (JSON, Arrow IPC).
//!
//! Not a criterion bench: each measurement moves a few hundred thousand rows through a
//! broker (a `tansu` it starts on a free loopback port, in-memory storage), once, and prints
//! one JSON line. Run: `cargo bench -p tickertable --features kafka --bench kafka_throughput`
//! (`ROWS=...` to change the count, default 200,000; `TANSU=...` for the broker's path).
//! The numbers include the broker, on the same machine (2 cores here, shared with it).
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a benchmark's setup panics on the unexpected; counts are small"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::kafka::rdkafka::config::ClientConfig;
use tickertable::kafka::rdkafka::producer::{
    BaseRecord, DefaultProducerContext, Producer, ThreadedProducer,
};
use tickertable::kafka::{KafkaFormat, KafkaSinkOptions, KafkaSourceOptions};
use tickertable::test_util::kafka::{broker, Broker};
use tickertable::{Engine, PublisherOptions, TableKind};

const PARTITIONS: i32 = 3;

/// Produces `values` round-robin over the partitions, waiting whenever the producer's
/// queue is full, and until every message is delivered.
fn produce(broker: &Broker, topic: &str, values: &[Vec<u8>]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        let partition = (i % PARTITIONS as usize) as i32;
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(v);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Px", DataType::Float64, false),
        Field::new("Size", DataType::Int64, false),
    ]))
}

fn batch(start: usize, n: usize) -> RecordBatch {
    let syms = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG"];
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                (start..start + n).map(|i| syms[i % syms.len()]),
            )),
            Arc::new(Float64Array::from_iter_values(
                (start..start + n).map(|i| 100.0 + (i % 1000) as f64 / 100.0),
            )),
            Arc::new(Int64Array::from_iter_values(
                (start..start + n).map(|i| (i % 500) as i64 + 1),
            )),
        ],
    )
    .unwrap()
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, batch.schema_ref()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

fn report(name: &str, rows: usize, messages: usize, took: Duration) {
    println!(
        "{{\"bench\":\"{name}\",\"rows\":{rows},\"messages\":{messages},\"secs\":{:.3},\"rows_per_s\":{:.0}}}",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
}

/// Topic into an append table: from the source's creation to the last row visible.
fn source(broker: &Broker, topic: &str, format: KafkaFormat, rows: usize, messages: usize) {
    let engine = Engine::builder().manual().build().unwrap();
    let start = Instant::now();
    let options = KafkaSourceOptions::new(&broker.addr, topic)
        .with_kind(TableKind::Append)
        .with_format(format);
    let source = engine.kafka_source(topic, schema(), options).unwrap();
    while source.table().num_rows() < rows {
        engine.run_cycle();
        std::thread::sleep(Duration::from_millis(1));
    }
    report(
        &format!("topic_to_table_{topic}"),
        rows,
        messages,
        start.elapsed(),
    );
}

/// An append table into a topic: from the first cycle to the last delivery report.
fn sink(broker: &Broker, topic: &str, format: KafkaFormat, rows: usize) {
    let engine = Engine::builder().manual().build().unwrap();
    let (table, publisher) = engine
        .table_publisher(
            topic,
            schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let sink = table
        .kafka_sink(
            KafkaSinkOptions::new(&broker.addr, topic)
                .with_format(format)
                .with_max_rows_per_message(1000)
                .with_client_config("linger.ms", "5"),
        )
        .unwrap();
    let per_cycle = 10_000;
    let batches: Vec<RecordBatch> = (0..rows)
        .step_by(per_cycle)
        .map(|s| batch(s, per_cycle.min(rows - s)))
        .collect();
    let start = Instant::now();
    for b in batches {
        publisher.add(b).unwrap();
        engine.run_cycle();
    }
    let messages = if format == KafkaFormat::Json {
        rows
    } else {
        rows.div_ceil(1000)
    };
    while sink.stats().delivered < messages as u64 {
        std::thread::sleep(Duration::from_millis(1));
    }
    report(
        &format!("table_to_topic_{topic}"),
        rows,
        messages,
        start.elapsed(),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches`
    }
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200_000);
    let broker = broker("kafka_throughput").expect("a tansu broker");
    for t in ["json", "ipc", "out_json", "out_ipc"] {
        broker.create_topic(t, PARTITIONS);
    }
    let json: Vec<Vec<u8>> = (0..rows)
        .map(|i| {
            let b = batch(i, 1);
            format!(
                r#"{{"Sym":"{}","Px":{:?},"Size":{}}}"#,
                b.column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .value(0),
                100.0 + (i % 1000) as f64 / 100.0,
                (i % 500) + 1
            )
            .into_bytes()
        })
        .collect();
    produce(&broker, "json", &json);
    let ipc_messages: Vec<Vec<u8>> = (0..rows)
        .step_by(1000)
        .map(|s| ipc(&batch(s, 1000.min(rows - s))))
        .collect();
    produce(&broker, "ipc", &ipc_messages);

    source(&broker, "json", KafkaFormat::Json, rows, rows);
    source(
        &broker,
        "ipc",
        KafkaFormat::ArrowIpc,
        rows,
        ipc_messages.len(),
    );
    sink(&broker, "out_json", KafkaFormat::Json, rows);
    sink(&broker, "out_ipc", KafkaFormat::ArrowIpc, rows);
}
