//! Kafka sources and sinks against a real Kafka-protocol broker: `tansu`, started by each
//! test on a free loopback port (in-memory storage) and killed at its end.
//!
//! Without a `tansu` binary (on `PATH`, or `TANSU=/path/to/tansu`) every test says it
//! skipped, loudly, and passes, except under `TICKERTABLE_REQUIRE_KAFKA=1` (CI), where it
//! fails. Engines run in manual mode: a test steps cycles with `run_cycle()` and polls the
//! broker with a generous deadline (a hang guard, never an assertion on time).
#![cfg(feature = "kafka")]
#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "small test counts and offsets"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::kafka::{
    KafkaFormat, KafkaSink, KafkaSinkOptions, KafkaSource, KafkaSourceOptions, StartOffset,
};
use tickertable::test_util::kafka::{broker, Broker, Msg, Read, DEADLINE};
use tickertable::{Durability, Engine, Error, PublisherOptions, Table, TableKind};

fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Px", DataType::Float64, false),
        Field::new("Seq", DataType::Int64, false),
    ]))
}

fn trade_json(sym: &str, px: f64, seq: i64) -> Vec<u8> {
    format!(r#"{{"Sym":"{sym}","Px":{px:?},"Seq":{seq}}}"#).into_bytes()
}

fn trade_batch(rows: &[(&str, f64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        trade_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
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

/// Runs cycles until `done` holds (the broker delivers when it will).
fn cycle_until(engine: &Engine, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        engine.run_cycle();
        if done() {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every row's `Seq` (column 2), in table order.
fn seqs(table: &Table) -> Vec<i64> {
    let snap = table.snapshot();
    snap.batches()
        .flat_map(|b| b.column(2).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

fn column_i64(table: &Table, name: &str) -> Vec<i64> {
    let snap = table.snapshot();
    snap.column(name)
        .unwrap()
        .primitive::<Int64Type>()
        .unwrap()
        .flatten()
        .collect()
}

#[test]
fn smoke() {
    let Some(broker) = broker("smoke") else {
        return;
    };
    broker.create_topic("smoke", 3);
    let messages: Vec<Vec<u8>> = (0..30)
        .map(|i| trade_json("AAPL", 100.0 + i as f64, i))
        .collect();
    let batch: Vec<Msg<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| ((i % 3) as i32, None, m.as_slice()))
        .collect();
    broker.produce("smoke", &batch);

    let engine = Engine::builder().manual().build().unwrap();
    let options = KafkaSourceOptions::new(&broker.addr, "smoke")
        .with_kind(TableKind::Append)
        .with_partition_column("Partition")
        .with_offset_column("Offset");
    let source = engine
        .kafka_source("smoke", trade_schema(), options)
        .unwrap();
    assert_eq!(source.table().schema().fields().len(), 5);
    cycle_until(&engine, "30 rows", || source.table().num_rows() == 30);
    let mut got = seqs(source.table());
    got.sort_unstable();
    assert_eq!(got, (0..30).collect::<Vec<_>>());
    // Each row's partition and offset say where it came from: seq i went to partition
    // i % 3 at offset i / 3.
    let snap = source.table().snapshot();
    for b in snap.batches() {
        let p = b.column(3).as_primitive::<Int32Type>();
        let o = b.column(4).as_primitive::<Int64Type>();
        let s = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            assert_eq!(
                (p.value(i), o.value(i)),
                ((s.value(i) % 3) as i32, s.value(i) / 3)
            );
        }
    }
    let stats = source.stats();
    assert_eq!(
        (stats.messages, stats.rows, stats.bad_messages),
        (30, 30, 0)
    );
}

/// The status rows' `(NextOffset, HighWatermark, Lag)` summed over a source's partitions.
fn status_sums(source: &KafkaSource) -> (usize, i64, i64, i64) {
    let b = tickertable::kafka::status_batch(&[source], &[]);
    let sum = |c: &str| -> i64 {
        b.column_by_name(c)
            .unwrap()
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .sum()
    };
    (
        b.num_rows(),
        sum("NextOffset"),
        sum("HighWatermark"),
        sum("Lag"),
    )
}

#[test]
fn a_sources_status_rows_show_its_lag_while_its_buffer_is_full_and_none_once_drained() {
    let test = "a_sources_status_rows_show_its_lag_while_its_buffer_is_full_and_none_once_drained";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("lag", 3);
    // One message per record batch: tansu 0.6 reports a partition's high watermark as its
    // last record batch's first offset + 1.
    produce_seqs_batching(&broker, "lag", 3, 0..30, 1);
    let engine = Engine::builder().manual().build().unwrap();
    let source = engine
        .kafka_source(
            "lag",
            trade_schema(),
            KafkaSourceOptions::new(&broker.addr, "lag")
                .with_partitions([0, 1, 2])
                .with_max_batch_rows(5)
                .with_max_buffered_rows(5),
        )
        .unwrap();
    // No cycle runs: the consumer holds one poll of 5 and waits for room.
    let start = Instant::now();
    while status_sums(&source) != (3, 5, 30, 25) {
        assert!(start.elapsed() < DEADLINE, "{:?}", status_sums(&source));
        std::thread::sleep(Duration::from_millis(20));
    }
    cycle_until(&engine, "no lag", || status_sums(&source) == (3, 30, 30, 0));
    assert_eq!(
        source.table().num_rows(),
        0,
        "a blink table after its last cycle"
    );
    let b = tickertable::kafka::status_batch(&[&source], &[]);
    assert_eq!(b.schema(), tickertable::kafka::status_schema());
    let kinds: Vec<&str> = b.column(0).as_string::<i32>().iter().flatten().collect();
    assert_eq!(kinds, ["source"; 3]);
}

#[test]
fn bad_json_messages_are_reported_with_partition_and_offset_and_the_rest_kept() {
    let test = "bad_json_messages_are_reported_with_partition_and_offset_and_the_rest_kept";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("bad", 1);
    let good0 = trade_json("A", 1.0, 0);
    let good1 = trade_json("B", 2.0, 1);
    broker.produce(
        "bad",
        &[
            (0, None, &good0),
            (0, None, b"{\"Sym\":\"X\"}"), // offset 1: no Px, no Seq
            (0, None, b"not json at all"), // offset 2
            (0, None, b"{\"Sym\":\"Y\",\"Px\":\"high\",\"Seq\":3}"), // offset 3
            (0, None, &good1),
        ],
    );
    let engine = Engine::builder().manual().build().unwrap();
    let options = KafkaSourceOptions::new(&broker.addr, "bad").with_kind(TableKind::Append);
    let source = engine.kafka_source("bad", trade_schema(), options).unwrap();
    cycle_until(&engine, "5 messages", || source.stats().messages == 5);
    engine.run_cycle();
    assert_eq!(seqs(source.table()), vec![0, 1]);
    let bad = source.bad_messages();
    let where_: Vec<(i32, i64)> = bad
        .iter()
        .map(|e| match &**e {
            Error::KafkaBadMessage {
                topic,
                partition,
                offset,
                ..
            } => {
                assert_eq!(topic, "bad");
                (*partition, *offset)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(where_, vec![(0, 1), (0, 2), (0, 3)]);
    assert_eq!(source.stats().bad_messages, 3);
    assert!(bad[0].to_string().contains("bad/0@1"), "{}", bad[0]);
    // The engine's recent errors have them too.
    let recent = engine.recent_errors();
    assert!(
        recent
            .iter()
            .filter(|e| matches!(&***e, Error::KafkaBadMessage { .. }))
            .count()
            >= 3
    );
}

#[test]
fn json_sources_fill_blink_ring_and_keyed_tables() {
    let Some(broker) = broker("json_sources_fill_blink_ring_and_keyed_tables") else {
        return;
    };
    broker.create_topic("trades", 1);
    let rows: Vec<Vec<u8>> = (0..20)
        .map(|i| trade_json(["A", "B", "C"][i as usize % 3], i as f64, i))
        .collect();
    let msgs: Vec<Msg<'_>> = rows.iter().map(|m| (0, None, m.as_slice())).collect();
    broker.produce("trades", &msgs);

    let engine = Engine::builder().manual().build().unwrap();
    let opts = || KafkaSourceOptions::new(&broker.addr, "trades");
    let blink = engine
        .kafka_source("blink", trade_schema(), opts())
        .unwrap();
    let ring = engine
        .kafka_source(
            "ring",
            trade_schema(),
            opts().with_kind(TableKind::Ring { capacity: 5 }),
        )
        .unwrap();
    let keyed = engine
        .kafka_source("keyed", trade_schema(), opts().with_key(["Sym"]))
        .unwrap();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    let _l = blink
        .table()
        .listen(move |u: &tickertable::TableUpdate| {
            for b in u.batches() {
                s.lock()
                    .extend_from_slice(b.column(2).as_primitive::<Int64Type>().values());
            }
        })
        .unwrap();
    cycle_until(&engine, "every source's 20 rows", || {
        blink.stats().staged_rows == 20
            && ring.stats().staged_rows == 20
            && keyed.stats().staged_rows == 20
    });
    engine.run_cycle();
    // Blink: every row passed through once, and the table is empty after a quiet cycle.
    assert_eq!(*seen.lock(), (0..20).collect::<Vec<_>>());
    assert_eq!(blink.table().num_rows(), 0);
    // Ring: the newest 5.
    assert_eq!(seqs(ring.table()), vec![15, 16, 17, 18, 19]);
    // Keyed: the last row per Sym.
    let snap = keyed.table().snapshot();
    let mut last: Vec<(String, i64)> = snap
        .batches()
        .flat_map(|b| {
            let sym = b
                .column(0)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_owned())
                .collect::<Vec<_>>();
            let seq = b.column(2).as_primitive::<Int64Type>().values().to_vec();
            sym.into_iter().zip(seq)
        })
        .collect();
    last.sort();
    assert_eq!(
        last,
        vec![("A".into(), 18), ("B".into(), 19), ("C".into(), 17)]
    );
}

#[test]
fn arrow_ipc_messages_become_batches_and_a_bad_one_is_reported() {
    let Some(broker) = broker("arrow_ipc_messages_become_batches_and_a_bad_one_is_reported") else {
        return;
    };
    broker.create_topic("ipc", 2);
    let a = ipc(&trade_batch(&[("A", 1.0, 0), ("B", 2.0, 1), ("C", 3.0, 2)]));
    let b = ipc(&trade_batch(&[("D", 4.0, 3), ("E", 5.0, 4)]));
    let other = ipc(&RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["Z"]))],
    )
    .unwrap());
    broker.produce(
        "ipc",
        &[
            (0, None, &a),
            (1, None, &b),
            (1, None, &other),
            (0, None, b"junk"),
        ],
    );
    let engine = Engine::builder().manual().build().unwrap();
    let options = KafkaSourceOptions::new(&broker.addr, "ipc")
        .with_format(KafkaFormat::ArrowIpc)
        .with_kind(TableKind::Append)
        .with_offset_column("Offset");
    let source = engine.kafka_source("ipc", trade_schema(), options).unwrap();
    cycle_until(&engine, "4 messages", || source.stats().messages == 4);
    engine.run_cycle();
    let mut got = seqs(source.table());
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    let mut bad: Vec<(i32, i64)> = source
        .bad_messages()
        .iter()
        .map(|e| match &**e {
            Error::KafkaBadMessage {
                partition, offset, ..
            } => (*partition, *offset),
            other => panic!("{other:?}"),
        })
        .collect();
    bad.sort_unstable();
    assert_eq!(bad, vec![(0, 1), (1, 1)]);
    // A batch's rows share their message's offset.
    let mut offsets = column_i64(source.table(), "Offset");
    offsets.sort_unstable();
    assert_eq!(offsets, vec![0, 0, 0, 0, 0]);
}

#[test]
fn a_source_stages_whole_polls_within_the_staging_limit() {
    let Some(broker) = broker("a_source_stages_whole_polls_within_the_staging_limit") else {
        return;
    };
    broker.create_topic("limit", 1);
    produce_seqs(&broker, "limit", 1, 0..50);
    let engine = Engine::builder()
        .manual()
        .staging_limit(10)
        .build()
        .unwrap();
    let options = KafkaSourceOptions::new(&broker.addr, "limit")
        .with_kind(TableKind::Append)
        .with_max_batch_rows(4);
    let source = engine
        .kafka_source("limit", trade_schema(), options)
        .unwrap();
    let mut most = 0;
    let mut last = 0;
    cycle_until(&engine, "50 rows", || {
        let n = source.table().num_rows();
        most = most.max(n - last);
        last = n;
        n == 50
    });
    assert!(
        most <= 10,
        "a cycle staged {most} rows, more than the limit"
    );
    assert_eq!(seqs(source.table()), (0..50).collect::<Vec<_>>());
}

/// The messages `0..n` spread over `partitions`, JSON, produced as seq `i` to partition
/// `i % partitions`.
fn produce_seqs(broker: &Broker, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    produce_seqs_batching(broker, topic, partitions, range, 10_000);
}

/// [`produce_seqs`] with at most `per_batch` messages per record batch.
fn produce_seqs_batching(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<i64>,
    per_batch: usize,
) {
    let values: Vec<Vec<u8>> = range.clone().map(|i| trade_json("S", 0.5, i)).collect();
    let msgs: Vec<Msg<'_>> = range
        .zip(&values)
        .map(|(i, v)| ((i % i64::from(partitions)) as i32, None, v.as_slice()))
        .collect();
    broker.produce_batching(topic, &msgs, per_batch);
}

#[test]
fn two_engines_with_explicit_partitions_together_see_every_message_once() {
    let test = "two_engines_with_explicit_partitions_together_see_every_message_once";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("split", 3);
    produce_seqs(&broker, "split", 3, 0..300);
    let (e1, e2) = (
        Engine::builder().manual().build().unwrap(),
        Engine::builder().manual().build().unwrap(),
    );
    let opts = |parts: Vec<i32>| {
        KafkaSourceOptions::new(&broker.addr, "split")
            .with_group("split-group")
            .with_partitions(parts)
            .with_kind(TableKind::Append)
    };
    let s1 = e1
        .kafka_source("t", trade_schema(), opts(vec![0, 2]))
        .unwrap();
    let s2 = e2.kafka_source("t", trade_schema(), opts(vec![1])).unwrap();
    let start = Instant::now();
    while s1.table().num_rows() + s2.table().num_rows() < 300 {
        assert!(
            start.elapsed() < DEADLINE,
            "{} + {} rows",
            s1.table().num_rows(),
            s2.table().num_rows()
        );
        e1.run_cycle();
        e2.run_cycle();
        std::thread::sleep(Duration::from_millis(10));
    }
    let (a, b) = (seqs(s1.table()), seqs(s2.table()));
    assert!(a.iter().all(|s| s % 3 != 1) && b.iter().all(|s| s % 3 == 1));
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!((a.len() + b.len(), all.len()), (300, 300));
}

#[test]
fn two_engines_in_one_consumer_group_split_the_partitions_and_see_every_message_once() {
    let test = "two_engines_in_one_consumer_group_split_the_partitions_and_see_every_message_once";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("group", 3);
    let (e1, e2) = (
        Engine::builder().manual().build().unwrap(),
        Engine::builder().manual().build().unwrap(),
    );
    let opts = || {
        KafkaSourceOptions::new(&broker.addr, "group")
            .with_group("two-engines")
            .with_kind(TableKind::Append)
            .with_partition_column("Partition")
    };
    let s1 = e1.kafka_source("t", trade_schema(), opts()).unwrap();
    let s2 = e2.kafka_source("t", trade_schema(), opts()).unwrap();
    produce_seqs(&broker, "group", 3, 0..300);
    let start = Instant::now();
    while s1.table().num_rows() + s2.table().num_rows() < 300 {
        assert!(
            start.elapsed() < DEADLINE,
            "the group consumed {} + {} of 300 rows",
            s1.table().num_rows(),
            s2.table().num_rows()
        );
        e1.run_cycle();
        e2.run_cycle();
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let late duplicates (a rebalance re-reading uncommitted offsets) show up if any.
    for _ in 0..20 {
        e1.run_cycle();
        e2.run_cycle();
        std::thread::sleep(Duration::from_millis(10));
    }
    let (a, b) = (seqs(s1.table()), seqs(s2.table()));
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), 300, "every message seen");
    assert_eq!(a.len() + b.len(), 300, "none seen twice");
    let parts = |t: &Table| -> BTreeSet<i32> {
        t.snapshot()
            .column("Partition")
            .unwrap()
            .primitive::<Int32Type>()
            .unwrap()
            .flatten()
            .collect()
    };
    let (p1, p2) = (parts(s1.table()), parts(s2.table()));
    assert!(
        p1.is_disjoint(&p2),
        "the members split the partitions: {p1:?} {p2:?}"
    );
}

const CHILD_ENV: &str = "TICKERTABLE_KAFKA_CHILD";

/// The SIGKILL test's child: a durable append table fed from the topic, cycling on a
/// thread; prints the rows it has seen and waits to be killed. A no-op without the variable.
#[test]
fn child_process_consumes_until_killed() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, brokers) = spec.split_once('|').unwrap();
    let engine = Engine::builder()
        .period(Duration::from_millis(5))
        .data_dir(dir)
        .build()
        .unwrap();
    let source = engine
        .kafka_source("durable", trade_schema(), durable_options(brokers))
        .unwrap();
    loop {
        println!("rows {}", source.table().num_rows());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn durable_options(brokers: &str) -> KafkaSourceOptions {
    KafkaSourceOptions::new(brokers, "durable")
        .with_group("durable-group")
        // One partition: against tansu 0.6, a consumer assigned two partitions was seen to
        // fetch only one of them for minutes (either one, also with small fetches), which
        // no resume logic can fix; the split across partitions is tested apart.
        .with_partitions([0])
        .with_start(StartOffset::Earliest)
        .with_kind(TableKind::Append)
        .with_partition_column("Partition")
        .with_offset_column("Offset")
        .with_durability(Durability::Log)
        .with_max_batch_rows(16)
}

/// What a failed resume looked like: the rows around the replayed end, stats, replay.
fn explain_resume(engine: &Engine, source: &KafkaSource, got: &[i64], replayed: usize) {
    let offs = column_i64(source.table(), "Offset");
    let around: Vec<(usize, i64, i64)> = got
        .iter()
        .zip(&offs)
        .enumerate()
        .filter(|&(i, _)| i + 3 >= replayed && i <= replayed + 3)
        .map(|(i, (&s, &o))| (i, s, o))
        .collect();
    eprintln!(
        "FAILED: {} rows, {} distinct; around the replayed end (row, seq, offset): \
         {around:?}; stats {:?}; replay {:?}",
        got.len(),
        got.iter().collect::<BTreeSet<_>>().len(),
        source.stats(),
        engine.replay_report("durable")
    );
}

#[test]
fn a_durable_source_killed_with_sigkill_resumes_with_no_gap_and_no_duplicate() {
    let test = "a_durable_source_killed_with_sigkill_resumes_with_no_gap_and_no_duplicate";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("durable", 1);
    let dir = std::env::temp_dir().join(format!("tickertable-kafka-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let total = 2000;
    // One message per record batch: tansu 0.6 answers a fetch at an offset inside a
    // record batch with the next batch, skipping the rest of the one holding the offset (a
    // resume at offset 864 of a 1,000-message batch was answered from offset 1,000, which
    // the source counts as an offset gap). Kafka answers with the whole batch and the client
    // drops the messages before the offset.
    produce_seqs_batching(&broker, "durable", 1, 0..total / 2, 1);
    // Kill the child three times mid-stream, producing more in between.
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_consumes_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{}", dir.display(), broker.addr))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        let start = Instant::now();
        let mut last = 0;
        for line in lines.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("rows ") {
                let n: usize = n.parse().unwrap();
                // Kill once the child has moved on from where it started.
                if n > last && last > 0 || n >= 200 * (round + 1) {
                    break;
                }
                last = last.max(n);
            }
            assert!(start.elapsed() < DEADLINE, "the child made no progress");
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no final cycle, no commit
        let status = child.wait().unwrap();
        assert!(!status.success());
        if round == 0 {
            produce_seqs_batching(&broker, "durable", 1, total / 2..total, 1);
        }
    }
    // Restart in this process and read to the end.
    let engine = Engine::builder().manual().data_dir(&dir).build().unwrap();
    let source = engine
        .kafka_source("durable", trade_schema(), durable_options(&broker.addr))
        .unwrap();
    let replayed = source.table().num_rows();
    eprintln!("REPLAY {:?}", engine.replay_report("durable"));
    let mut polls = 0;
    cycle_until(&engine, "every message", || {
        polls += 1;
        let stats = source.stats();
        assert_eq!(
            stats.offset_gaps, 0,
            "the broker skipped messages: {stats:?}"
        );
        if polls % 1000 == 0 {
            eprintln!(
                "STATS {replayed} replayed, {} rows: {:?}",
                source.table().num_rows(),
                source.stats()
            );
        }
        source.table().num_rows() >= total as usize
    });
    for _ in 0..20 {
        engine.run_cycle();
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = seqs(source.table());
    let distinct: BTreeSet<i64> = got.iter().copied().collect();
    if got.len() != total as usize || distinct.len() != total as usize {
        explain_resume(&engine, &source, &got, replayed);
    }
    assert_eq!(
        distinct.len(),
        total as usize,
        "no gap ({replayed} rows replayed)"
    );
    assert_eq!(
        got.len(),
        total as usize,
        "no duplicate ({replayed} rows replayed)"
    );
    // Per partition, offsets are 0..n in order.
    let (parts, offs) = (
        column_i64_i32(source.table(), "Partition"),
        column_i64(source.table(), "Offset"),
    );
    let mut per: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o) in parts.into_iter().zip(offs) {
        per.entry(p).or_default().push(o);
    }
    for (p, o) in per {
        assert_eq!(o, (0..total).collect::<Vec<_>>(), "partition {p}");
    }
    drop(source);
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn durable_ring_and_blink_sources_resume_from_their_logs_past_checkpoints() {
    let test = "durable_ring_and_blink_sources_resume_from_their_logs_past_checkpoints";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("resume", 1);
    produce_seqs(&broker, "resume", 1, 0..400);
    let dir = std::env::temp_dir().join(format!("tickertable-kafka-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let engine = || {
        Engine::builder()
            .manual()
            .data_dir(&dir)
            .log_segment_bytes(4096) // rotate and checkpoint often
            .build()
            .unwrap()
    };
    let options = |kind| {
        KafkaSourceOptions::new(&broker.addr, "resume")
            .with_partitions([0])
            .with_kind(kind)
            .with_durability(Durability::Log)
            .with_max_batch_rows(8)
    };
    {
        let e = engine();
        let ring = e
            .kafka_source(
                "ring",
                trade_schema(),
                options(TableKind::Ring { capacity: 5 }),
            )
            .unwrap();
        let blink = e
            .kafka_source("blink", trade_schema(), options(TableKind::Blink))
            .unwrap();
        cycle_until(&e, "400 rows each", || {
            ring.stats().staged_rows == 400 && blink.stats().staged_rows == 400
        });
        e.run_cycle();
        assert_eq!(seqs(ring.table()), vec![395, 396, 397, 398, 399]);
        cycle_until(&e, "a checkpoint of the ring", || {
            e.stats().log.checkpoints > 0
        });
    }
    produce_seqs(&broker, "resume", 1, 400..450);
    let e = engine();
    let ring = e
        .kafka_source(
            "ring",
            trade_schema(),
            options(TableKind::Ring { capacity: 5 }),
        )
        .unwrap();
    let blink = e
        .kafka_source("blink", trade_schema(), options(TableKind::Blink))
        .unwrap();
    assert_eq!(
        seqs(ring.table()),
        vec![395, 396, 397, 398, 399],
        "replayed"
    );
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    let _l = blink
        .table()
        .listen(move |u: &tickertable::TableUpdate| {
            for b in u.batches() {
                s.lock()
                    .extend_from_slice(b.column(2).as_primitive::<Int64Type>().values());
            }
        })
        .unwrap();
    let mut n = 0;
    cycle_until(&e, "the 50 new rows", || {
        n += 1;
        if n % 500 == 0 {
            eprintln!("STATS ring {:?} blink {:?}", ring.stats(), blink.stats());
        }
        ring.stats().staged_rows == 50 && blink.stats().staged_rows == 50
    });
    e.run_cycle();
    assert_eq!(seqs(ring.table()), vec![445, 446, 447, 448, 449]);
    assert_eq!(
        *seen.lock(),
        (400..450).collect::<Vec<_>>(),
        "the blink resumed at 400"
    );
    // Only the new messages were read: the sources started at their logged offsets.
    assert_eq!((ring.stats().messages, blink.stats().messages), (50, 50));
    drop((ring, blink, e));
    let _ = std::fs::remove_dir_all(&dir);
}

fn column_i64_i32(table: &Table, name: &str) -> Vec<i32> {
    table
        .snapshot()
        .column(name)
        .unwrap()
        .primitive::<Int32Type>()
        .unwrap()
        .flatten()
        .collect()
}

#[test]
fn a_sinks_messages_read_back_by_a_plain_consumer_equal_the_tables_updates() {
    let test = "a_sinks_messages_read_back_by_a_plain_consumer_equal_the_tables_updates";
    let Some(broker) = broker(test) else {
        return;
    };
    broker.create_topic("out", 1);
    let engine = Engine::builder().manual().build().unwrap();
    let (table, publisher) = engine
        .table_publisher(
            "t",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    publisher.add(trade_batch(&[("A", 1.0, 0)])).unwrap();
    engine.run_cycle(); // before the sink: its snapshot
    let sink = table
        .kafka_sink(KafkaSinkOptions::new(&broker.addr, "out"))
        .unwrap();
    publisher
        .add(trade_batch(&[("B", 2.0, 1), ("C", 3.0, 2)]))
        .unwrap();
    engine.run_cycle();
    publisher.add(trade_batch(&[("D", 4.5, 3)])).unwrap();
    engine.run_cycle();
    let start = Instant::now();
    while sink.stats().delivered < 4 {
        assert!(start.elapsed() < DEADLINE, "{:?}", sink.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let read = broker.read("out", 1, 4);
    let values: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            r#"{"Sym":"A","Px":1.0,"Seq":0}"#,
            r#"{"Sym":"B","Px":2.0,"Seq":1}"#,
            r#"{"Sym":"C","Px":3.0,"Seq":2}"#,
            r#"{"Sym":"D","Px":4.5,"Seq":3}"#,
        ]
    );
    assert!(read.iter().all(|r| r.key.is_none()));
    let stats = sink.stats();
    assert_eq!((stats.produced, stats.delivered, stats.failed), (4, 4, 0));
}

/// A keyed table `book` (on `Sym`) in `engine` with two sinks: JSON to `topic`, Arrow IPC
/// to `topic-ipc` (both created, one partition each).
fn keyed_book_with_sinks(
    broker: &Broker,
    engine: &Engine,
    topic: &str,
) -> (Table, tickertable::TablePublisher, [KafkaSink; 2]) {
    let ipc_topic = format!("{topic}-ipc");
    broker.create_topic(topic, 1);
    broker.create_topic(&ipc_topic, 1);
    let (table, publisher) = engine
        .table_publisher(
            "book",
            trade_schema(),
            PublisherOptions::default().with_key(["Sym"]),
        )
        .unwrap();
    let sinks = [
        table
            .kafka_sink(KafkaSinkOptions::new(&broker.addr, topic))
            .unwrap(),
        table
            .kafka_sink(
                KafkaSinkOptions::new(&broker.addr, &ipc_topic).with_format(KafkaFormat::ArrowIpc),
            )
            .unwrap(),
    ];
    (table, publisher, sinks)
}

#[test]
fn a_keyed_tables_sink_sends_upserts_and_tombstones_and_arrow_ipc_batches() {
    let test = "a_keyed_tables_sink_sends_upserts_and_tombstones_and_arrow_ipc_batches";
    let Some(broker) = broker(test) else {
        return;
    };
    let engine = Engine::builder().manual().build().unwrap();
    let (table, publisher, [json, arrow]) = keyed_book_with_sinks(&broker, &engine, "book");
    publisher
        .add(trade_batch(&[("A", 1.0, 0), ("B", 2.0, 1), ("C", 3.0, 2)]))
        .unwrap();
    engine.run_cycle();
    publisher.add(trade_batch(&[("B", 2.5, 3)])).unwrap();
    engine.run_cycle();
    let keys = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)])),
        vec![Arc::new(StringArray::from(vec!["A"]))],
    )
    .unwrap();
    publisher.delete(keys).unwrap();
    engine.run_cycle();
    // JSON: A, B, C; B again; then A's tombstone (and C, moved into A's slot, again).
    let want = 6;
    let start = Instant::now();
    while json.stats().delivered < want {
        assert!(start.elapsed() < DEADLINE, "{:?}", json.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let read = broker.read("book", 1, want as usize);
    let utf8 = |v: &Option<Vec<u8>>| v.as_ref().map(|v| String::from_utf8(v.clone()).unwrap());
    let got: Vec<(Option<String>, Option<String>)> = read
        .iter()
        .map(|r| (utf8(&r.key), utf8(&r.value)))
        .collect();
    let k = |s: &str| Some(format!(r#"{{"Sym":"{s}"}}"#));
    assert_eq!(
        got,
        vec![
            (k("A"), Some(r#"{"Sym":"A","Px":1.0,"Seq":0}"#.into())),
            (k("B"), Some(r#"{"Sym":"B","Px":2.0,"Seq":1}"#.into())),
            (k("C"), Some(r#"{"Sym":"C","Px":3.0,"Seq":2}"#.into())),
            (k("B"), Some(r#"{"Sym":"B","Px":2.5,"Seq":3}"#.into())),
            (k("A"), None),
            (k("C"), Some(r#"{"Sym":"C","Px":3.0,"Seq":2}"#.into())),
        ]
    );
    // The final state a compacted topic keeps: B and C, as the table.
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (key, value) in got {
        state.insert(key.unwrap(), value);
    }
    state.retain(|_, v| v.is_some());
    assert_eq!(state.len(), table.num_rows());
    assert_eq!(json.stats().tombstones, 1);

    // Arrow IPC: one message per batch of rows, the tombstone with its key.
    while arrow.stats().delivered < 4 {
        assert!(start.elapsed() < DEADLINE, "{:?}", arrow.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let read = broker.read("book-ipc", 1, 4);
    let rows = |r: &Read| -> Vec<(String, f64)> {
        let reader = arrow_ipc::reader::StreamReader::try_new(
            std::io::Cursor::new(r.value.clone().unwrap()),
            None,
        )
        .unwrap();
        reader
            .flat_map(|b| {
                let b = b.unwrap();
                let sym: Vec<String> = b
                    .column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap().to_owned())
                    .collect();
                let px: Vec<f64> = b.column(1).as_primitive::<Float64Type>().values().to_vec();
                sym.into_iter().zip(px).collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(
        rows(&read[0]),
        vec![("A".into(), 1.0), ("B".into(), 2.0), ("C".into(), 3.0)]
    );
    assert_eq!(rows(&read[1]), vec![("B".into(), 2.5)]);
    assert_eq!((utf8(&read[2].key), read[2].value.as_ref()), (k("A"), None));
    assert_eq!(rows(&read[3]), vec![("C".into(), 3.0)]);
}

/// A table's rows as `(Sym, Px, Seq)`, sorted.
fn trade_rows(table: &Table) -> Vec<(String, f64, i64)> {
    let snap = table.snapshot();
    let mut rows: Vec<(String, f64, i64)> = snap
        .batches()
        .flat_map(|b| {
            let sym: Vec<String> = b
                .column(0)
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_owned())
                .collect();
            let px = b.column(1).as_primitive::<Float64Type>().values().to_vec();
            let seq = b.column(2).as_primitive::<Int64Type>().values().to_vec();
            sym.into_iter()
                .zip(px)
                .zip(seq)
                .map(|((s, p), q)| (s, p, q))
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn a_keyed_source_applies_tombstones_so_it_follows_another_engines_keyed_table() {
    let test = "a_keyed_source_applies_tombstones_so_it_follows_another_engines_keyed_table";
    let Some(broker) = broker(test) else {
        return;
    };
    let upstream = Engine::builder().manual().build().unwrap();
    let (table, publisher, sinks) = keyed_book_with_sinks(&broker, &upstream, "follow");
    let downstream = Engine::builder().manual().build().unwrap();
    let follow = |name: &str, topic: &str, format: KafkaFormat| {
        downstream
            .kafka_source(
                name,
                trade_schema(),
                KafkaSourceOptions::new(&broker.addr, topic)
                    .with_key(["Sym"])
                    .with_format(format),
            )
            .unwrap()
    };
    let sources = [
        follow("json", "follow", KafkaFormat::Json),
        follow("ipc", "follow-ipc", KafkaFormat::ArrowIpc),
    ];
    let delete = |syms: &[&str]| {
        let keys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(syms.to_vec()))],
        )
        .unwrap();
        publisher.delete(keys).unwrap();
    };
    // Upserts, deletes, a deleted key written again, a delete and an upsert in one cycle.
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            publisher
                .add(trade_batch(&[("A", 1.0, 0), ("B", 2.0, 1), ("C", 3.0, 2)]))
                .unwrap();
        }),
        Box::new(|| delete(&["A", "C"])),
        Box::new(|| publisher.add(trade_batch(&[("A", 1.5, 3)])).unwrap()),
        Box::new(|| {
            delete(&["B"]);
            publisher
                .add(trade_batch(&[("D", 4.0, 4), ("B", 2.5, 5)]))
                .unwrap();
        }),
    ];
    for step in &steps {
        step();
        upstream.run_cycle();
        let want = trade_rows(&table);
        for source in &sources {
            cycle_until(&downstream, "the upstream table's state", || {
                trade_rows(source.table()) == want
            });
        }
    }
    assert_eq!(
        trade_rows(&table),
        vec![
            ("A".into(), 1.5, 3),
            ("B".into(), 2.5, 5),
            ("D".into(), 4.0, 4)
        ]
    );
    for source in &sources {
        let stats = source.stats();
        assert_eq!((stats.bad_messages, stats.offset_gaps), (0, 0), "{stats:?}");
    }
    // A table without keys cannot apply a tombstone: each is a bad message, with its offset.
    // (A and C; B, deleted and written again in one cycle, was only modified.)
    assert_eq!(sinks[0].stats().tombstones, 2);
    tombstones_are_bad_messages_without_keys(&broker, &downstream, &sinks[0].stats());
}

/// A keyless source reading a keyed table's topic reports each tombstone as bad.
fn tombstones_are_bad_messages_without_keys(
    broker: &Broker,
    downstream: &Engine,
    sink: &tickertable::kafka::KafkaSinkStats,
) {
    let tombstones = sink.tombstones;
    let messages = sink.delivered;
    let plain = downstream
        .kafka_source(
            "plain",
            trade_schema(),
            KafkaSourceOptions::new(&broker.addr, "follow")
                .with_kind(TableKind::Append)
                .with_offset_column("Offset"),
        )
        .unwrap();
    cycle_until(downstream, "every message", || {
        plain.stats().messages == messages
    });
    assert_eq!(plain.stats().bad_messages, tombstones);
    assert_eq!(plain.table().num_rows() as u64, messages - tombstones);
    for e in plain.bad_messages() {
        assert!(
            matches!(&*e, Error::KafkaBadMessage { partition: 0, reason, .. } if reason.contains("tombstone")),
            "{e}"
        );
    }
}

/// Keeps the unused-import lint quiet when a helper is only used by some tests.
#[allow(dead_code)]
fn _uses(_: &KafkaSource) {}
