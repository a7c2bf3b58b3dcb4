//! `ticker-serve` with `[[kafka_source]]` and `[[kafka_sink]]` entries, end to end, against a
//! real Kafka-protocol broker (`tansu`, started on loopback by the test): messages produced
//! to a topic become rows of the source table a Flight client reads, with their partition
//! and offset; a bad message is counted, never a row; the sink publishes the table's rows to
//! another topic that a plain consumer reads back in the table's order; the `kafka_status`
//! table shows each partition consumed up to its high watermark, and the sink's deliveries;
//! a `[[derived]]` table of the config reads the source (the latest row per symbol).
//!
//! Built with `--features kafka` (the README's test command runs it so); without a `tansu`
//! binary the test says it skipped, except under `TICKERTABLE_REQUIRE_KAFKA=1` (CI).
#![cfg(feature = "kafka")]

mod support;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::RecordBatch;
use support::{temp_dir, wait_for, write, Server};
use tickertable::flight::Client;
use tickertable::test_util::kafka::broker;

/// A table's rows as `(Sym, Px, Seq, Partition, Offset)`, in table order.
type Row = (String, f64, i64, i32, i64);

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let sym = b.column(0).as_string::<i32>();
        let px = b.column(1).as_primitive::<Float64Type>();
        let seq = b.column(2).as_primitive::<Int64Type>();
        let partition = b.column(3).as_primitive::<Int32Type>();
        let offset = b.column(4).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                sym.value(i).to_owned(),
                px.value(i),
                seq.value(i),
                partition.value(i),
                offset.value(i),
            ));
        }
    }
    out
}

/// A sink message (one JSON object per row) as a [`Row`].
fn row_of_json(value: &[u8]) -> Row {
    let v: serde_json::Value = serde_json::from_slice(value).expect("the sink writes JSON");
    (
        v["Sym"].as_str().expect("Sym").to_owned(),
        v["Px"].as_f64().expect("Px"),
        v["Seq"].as_i64().expect("Seq"),
        i32::try_from(v["Partition"].as_i64().expect("Partition")).expect("a partition"),
        v["Offset"].as_i64().expect("Offset"),
    )
}

fn quote(sym: &str, px: f64, seq: i64) -> Vec<u8> {
    format!(r#"{{"Sym":"{sym}","Px":{px:?},"Seq":{seq}}}"#).into_bytes()
}

/// `kafka_status` as `(Kind, Partition, NextOffset, HighWatermark, Lag, Messages, Errors)`.
type Status = (String, i32, i64, i64, i64, u64, u64);

fn status(batches: &[RecordBatch]) -> Vec<Status> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| {
            b.column(b.schema().index_of(name).expect("a status column"))
                .clone()
        };
        let (kind, partition) = (col("Kind"), col("Partition"));
        let (next, high, lag) = (col("NextOffset"), col("HighWatermark"), col("Lag"));
        let (messages, errors) = (col("Messages"), col("Errors"));
        for i in 0..b.num_rows() {
            out.push((
                kind.as_string::<i32>().value(i).to_owned(),
                partition.as_primitive::<Int32Type>().value(i),
                next.as_primitive::<Int64Type>().value(i),
                high.as_primitive::<Int64Type>().value(i),
                lag.as_primitive::<Int64Type>().value(i),
                messages
                    .as_primitive::<arrow_array::types::UInt64Type>()
                    .value(i),
                errors
                    .as_primitive::<arrow_array::types::UInt64Type>()
                    .value(i),
            ));
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: produce, serve, read, produce again, read back
async fn a_served_kafka_source_and_sink_carry_a_topic_through_a_table_to_another_topic() {
    let test = "a_served_kafka_source_and_sink_carry_a_topic_through_a_table_to_another_topic";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("ticks", 2);
    broker.create_topic("ticks-out", 1);
    let (a, b, c) = (quote("A", 1.5, 0), quote("B", 2.5, 1), quote("C", 3.5, 2));
    // One message per record batch: tansu 0.6 reports a partition's high watermark as its
    // last record batch's first offset + 1.
    broker.produce_batching(
        "ticks",
        &[
            (0, None, &a),
            (0, None, &b),
            (1, None, &c),
            (1, None, b"not json"),
        ],
        1,
    );
    let config = format!(
        r#"
[[kafka_source]]
name = "ticks"
brokers = "{addr}"
topic = "ticks"
kind = "append"
partition_column = "Partition"
offset_column = "Offset"
columns = [{{ name = "Sym", type = "utf8", nullable = false }}, {{ name = "Px", type = "float64", nullable = false }}, {{ name = "Seq", type = "int64", nullable = false }}]

[[derived]]
name = "latest"
source = "ticks"
kind = "last_by"
keys = ["Sym"]

[[kafka_sink]]
table = "ticks"
brokers = "{addr}"
topic = "ticks-out"
"#,
        addr = broker.addr
    );
    let dir = temp_dir("kafka");
    let config = write(&dir, "kafka.toml", &config);
    let server = Server::start(&[
        "--config",
        config.to_str().expect("utf-8"),
        "--period-ms",
        "5",
    ]);
    let mut client = Client::connect(&server.url).await.expect("connect");

    let snap = wait_for(&mut client, "ticks", |s| s.num_rows() == 3).await;
    let mut seen = rows(&snap.batches);
    // Partitions are drained side by side: within one, rows keep their offsets' order.
    let mut by_seq = seen.clone();
    by_seq.sort_by_key(|r| r.2);
    assert_eq!(
        by_seq,
        [
            ("A".into(), 1.5, 0, 0, 0),
            ("B".into(), 2.5, 1, 0, 1),
            ("C".into(), 3.5, 2, 1, 0),
        ]
    );

    // Each partition read up to its high watermark; the bad message counted, not a row.
    let st = wait_for(&mut client, "kafka_status", |s| {
        let st = status(&s.batches);
        // Sorted by kind: the sink's row, then the source's partitions 0 and 1, whose
        // watermarks are fetched about every second.
        st.len() == 3 && st[0].5 == 3 && st[1..].iter().all(|p| p.2 == 2 && p.3 == 2)
    })
    .await;
    let st = status(&st.batches);
    assert_eq!(
        (st[0].0.as_str(), st[0].4, st[0].6),
        ("sink", 0, 0),
        "{st:?}"
    );
    for (p, source) in st[1..].iter().enumerate() {
        let p = i32::try_from(p).expect("a partition");
        assert_eq!((source.0.as_str(), source.1), ("source", p), "{st:?}");
        assert_eq!(
            (source.3, source.4),
            (2, 0),
            "read to the watermark: {st:?}"
        );
        assert_eq!(source.6, 1, "the bad message is counted: {st:?}");
    }

    // More messages keep flowing through both.
    let d = quote("D", 4.5, 3);
    broker.produce_batching("ticks", &[(1, None, &d)], 1);
    let snap = wait_for(&mut client, "ticks", |s| s.num_rows() == 4).await;
    seen = rows(&snap.batches);
    assert_eq!(seen[3], ("D".into(), 4.5, 3, 1, 2));
    // The config's derived table reads the source: the latest row per symbol.
    let latest = wait_for(&mut client, "latest", |s| s.num_rows() == 4).await;
    let mut latest = rows(&latest.batches);
    latest.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expect = seen.clone();
    expect.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(latest, expect, "one row per symbol, each seen once");
    let out: Vec<Row> = broker
        .read("ticks-out", 1, 4)
        .iter()
        .map(|m| row_of_json(m.value.as_deref().expect("a row, not a tombstone")))
        .collect();
    assert_eq!(
        out, seen,
        "the sink's messages are the table's rows, in order"
    );
}
