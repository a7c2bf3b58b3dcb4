//! A proptest model of durable tables: random appends, upserts, deletes, cycles and restarts
//! against an in-memory reference engine fed the same operations (and, for the append table,
//! a `Vec` of every row acknowledged). After every restart the replayed tables must equal the
//! reference exactly: rows, positions, keyed slots and values.
//!
//! Segments are tiny, so segments rotate and the ring and keyed tables (one with a capacity,
//! whose checkpoint keeps its keys' recency order) checkpoint during a
//! run (checkpoints are written off the cycle, so a restart may find one or not: either way
//! the replay must give the same tables).

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

mod support;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use support::TempDir;

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;
use tickertable::test_util::{i64_column, int_batch, int_schema};
use tickertable::{Engine, PublisherOptions, SyncPolicy, Table, TableKind, TablePublisher};

const RING: usize = 7;
const CAPPED: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// `n` new rows into the append and ring tables.
    Append(i64),
    /// Upserts into the keyed table.
    Upsert(Vec<(i64, i64)>),
    /// Deletes a key from the keyed table.
    Delete(i64),
    Cycle,
    /// A clean shutdown and a new engine on the same directory.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1i64..6).prop_map(Op::Append),
        3 => prop::collection::vec((0i64..10, -50i64..50), 1..5).prop_map(Op::Upsert),
        1 => (0i64..10).prop_map(Op::Delete),
        3 => Just(Op::Cycle),
        1 => Just(Op::Restart),
    ]
}

fn keyed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]))
}

fn kv(pairs: &[(i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        keyed_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.0))),
            Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.1))),
        ],
    )
    .unwrap()
}

/// The four tables of one engine.
struct Tables {
    append: (Table, TablePublisher),
    ring: (Table, TablePublisher),
    keyed: (Table, TablePublisher),
    /// Keyed with a capacity of [`CAPPED`]: fed what `keyed` is, evicting.
    capped: (Table, TablePublisher),
}

fn tables(e: &Engine, durable: bool) -> Tables {
    let make = |name: &str, schema: SchemaRef, opts: PublisherOptions| {
        let opts = if durable { opts.durable() } else { opts };
        e.table_publisher(name, schema, opts).unwrap()
    };
    Tables {
        append: make(
            "a",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        ),
        ring: make(
            "r",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Ring { capacity: RING }),
        ),
        keyed: make(
            "k",
            keyed_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Keyed { capacity: None })
                .with_key(["k"]),
        ),
        capped: make(
            "c",
            keyed_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Keyed {
                    capacity: Some(CAPPED),
                })
                .with_key(["k"]),
        ),
    }
}

fn durable_engine(dir: &Path) -> Engine {
    Engine::builder()
        .manual()
        .data_dir(dir)
        .sync_policy(SyncPolicy::Never)
        .log_segment_bytes(1024)
        .build()
        .unwrap()
}

type Rows = (Range<u64>, Vec<i64>);
type KeyedRows = (Range<u64>, Vec<i64>, Vec<Option<i64>>);

fn rows(t: &Table) -> Rows {
    let s = t.snapshot();
    (s.rows(), i64_column(s.batches(), 0))
}

fn keyed_rows(t: &Table) -> KeyedRows {
    let s = t.snapshot();
    let b = s.to_batch().unwrap();
    let col = |i: usize| {
        b.column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone()
    };
    let v = col(1);
    (
        s.rows(),
        col(0).values().to_vec(),
        (0..v.len())
            .map(|i| v.is_valid(i).then(|| v.value(i)))
            .collect(),
    )
}

/// Runs `ops`; returns an error message at the first disagreement.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = TempDir::new("durable-model");
    let reference = Engine::builder().manual().build().unwrap();
    let r = tables(&reference, false);
    let mut engine = durable_engine(dir.path());
    let mut d = tables(&engine, true);
    // Every row appended and cycled: what the append table must hold.
    let mut acknowledged: Vec<i64> = Vec::new();
    let mut staged: Vec<i64> = Vec::new();
    let mut next = 0i64;
    let check = |d: &Tables, acknowledged: &[i64], when: &str| -> Result<(), TestCaseError> {
        let len = acknowledged.len() as u64;
        prop_assert_eq!(
            rows(&d.append.0),
            (0..len, acknowledged.to_vec()),
            "append {}",
            when
        );
        prop_assert_eq!(rows(&d.ring.0), rows(&r.ring.0), "ring {}", when);
        prop_assert_eq!(
            keyed_rows(&d.keyed.0),
            keyed_rows(&r.keyed.0),
            "keyed {}",
            when
        );
        prop_assert_eq!(
            keyed_rows(&d.capped.0),
            keyed_rows(&r.capped.0),
            "capped {}",
            when
        );
        Ok(())
    };
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Append(n) => {
                let values: Vec<i64> = (next..next + n).collect();
                next += n;
                for p in [&d.append.1, &d.ring.1, &r.append.1, &r.ring.1] {
                    p.add(int_batch(values.iter().copied())).unwrap();
                }
                staged.extend(values);
            }
            Op::Upsert(pairs) => {
                for p in [&d.keyed.1, &r.keyed.1, &d.capped.1, &r.capped.1] {
                    p.add(kv(pairs)).unwrap();
                }
            }
            Op::Delete(k) => {
                for p in [&d.keyed.1, &r.keyed.1, &d.capped.1, &r.capped.1] {
                    p.delete(kv(&[(*k, 0)])).unwrap();
                }
            }
            Op::Cycle => {
                engine.run_cycle();
                reference.run_cycle();
                acknowledged.append(&mut staged);
                check(&d, &acknowledged, &format!("after cycle (op {i})"))?;
            }
            Op::Restart => {
                // A clean shutdown runs a last cycle: what was staged is applied and logged.
                drop(d);
                drop(engine);
                reference.run_cycle();
                acknowledged.append(&mut staged);
                engine = durable_engine(dir.path());
                d = tables(&engine, true);
                check(&d, &acknowledged, &format!("after restart (op {i})"))?;
                let report = engine.replay_report("a").unwrap();
                prop_assert!(report.corruption.is_none(), "{:?}", report.corruption);
            }
        }
    }
    drop(d);
    drop(engine);
    reference.run_cycle();
    acknowledged.append(&mut staged);
    let engine = durable_engine(dir.path());
    let d = tables(&engine, true);
    check(&d, &acknowledged, "at the end")
}

#[test]
fn smoke() {
    run(&[
        Op::Append(3),
        Op::Upsert(vec![(1, 10), (2, 20)]),
        Op::Cycle,
        Op::Delete(1),
        Op::Restart,
        Op::Append(2),
        Op::Cycle,
    ])
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_and_restarts_keep_what_was_acknowledged(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        run(&ops)?;
    }
}
