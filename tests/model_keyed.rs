//! Keyed tables against a `BTreeMap` model (proptest): after every cycle of random upserts,
//! partial upserts and deletes, the snapshot in key order is the model, `Table::get` finds
//! every key's row, a [`Mirror`] fed by a listener's updates equals the snapshot, and
//! snapshots taken earlier still hold what they held (the table writes chunks in place only
//! where nobody can see).

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;
use tickertable::test_util::manual_engine;
use tickertable::{
    Mirror, OwnedValue, PublisherOptions, Table, TableKind, TablePublisher, TableSnapshot,
    TableUpdate,
};

/// `k` int64 key, `a` int64 (nullable), `b` utf8 (nullable).
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]))
}

type Row = Vec<OwnedValue>;

#[derive(Debug, Clone)]
enum Op {
    Upsert(i64, Option<i64>, Option<String>),
    /// `k` and `a` only: `b` keeps its value (or is null for a new key).
    UpsertA(i64, Option<i64>),
    Delete(i64),
    /// Keep the snapshot taken after this cycle, to check it never changes.
    Hold,
}

fn op(keys: i64) -> impl Strategy<Value = Op> {
    let key = 0i64..keys;
    prop_oneof![
        6 => (key.clone(), proptest::option::of(-50i64..50), proptest::option::of("[a-d]{0,4}"))
            .prop_map(|(k, a, b)| Op::Upsert(k, a, b)),
        3 => (key.clone(), proptest::option::of(-50i64..50)).prop_map(|(k, a)| Op::UpsertA(k, a)),
        3 => key.prop_map(Op::Delete),
        1 => Just(Op::Hold),
    ]
}

/// Rows by key, with the order of each key's last write (for a capacity).
#[derive(Debug, Default, Clone)]
struct Model {
    rows: BTreeMap<i64, (Option<i64>, Option<String>, u64)>,
    seq: u64,
}

impl Model {
    fn apply(&mut self, op: &Op) {
        self.seq += 1;
        match op {
            Op::Upsert(k, a, b) => {
                self.rows.insert(*k, (*a, b.clone(), self.seq));
            }
            Op::UpsertA(k, a) => {
                let b = self.rows.get(k).and_then(|r| r.1.clone());
                self.rows.insert(*k, (*a, b, self.seq));
            }
            Op::Delete(k) => {
                self.rows.remove(k);
            }
            Op::Hold => {}
        }
    }

    /// A capacity keeps the most recently written keys.
    fn evict(&mut self, capacity: Option<usize>) {
        let Some(capacity) = capacity else { return };
        while self.rows.len() > capacity {
            let oldest = *self.rows.iter().min_by_key(|(_, r)| r.2).unwrap().0;
            self.rows.remove(&oldest);
        }
    }

    fn row(k: i64, (a, b, _): &(Option<i64>, Option<String>, u64)) -> Row {
        vec![k.into(), (*a).into(), b.clone().into()]
    }

    /// The rows in key order.
    fn rows(&self) -> Vec<Row> {
        self.rows.iter().map(|(&k, r)| Self::row(k, r)).collect()
    }
}

fn rows_of(snapshot: &TableSnapshot) -> Vec<Row> {
    snapshot.iter_rows().map(|r| r.to_owned_values()).collect()
}

/// Stages a cycle's ops through the publisher, a run of the same kind in one batch.
fn publish(publisher: &TablePublisher, ops: &[Op]) {
    let ops: Vec<&Op> = ops.iter().filter(|o| !matches!(o, Op::Hold)).collect();
    for run in ops.chunk_by(|a, b| std::mem::discriminant(*a) == std::mem::discriminant(*b)) {
        match run[0] {
            Op::Upsert(..) => {
                let (mut ks, mut avs, mut bvs) = (Vec::new(), Vec::new(), Vec::new());
                for o in run {
                    if let Op::Upsert(k, a, b) = o {
                        ks.push(*k);
                        avs.push(*a);
                        bvs.push(b.clone());
                    }
                }
                let batch = RecordBatch::try_new(
                    schema(),
                    vec![
                        Arc::new(Int64Array::from(ks)),
                        Arc::new(Int64Array::from(avs)),
                        Arc::new(StringArray::from(bvs)),
                    ],
                )
                .unwrap();
                publisher.upsert(batch).unwrap();
            }
            Op::UpsertA(..) => {
                let (mut ks, mut avs) = (Vec::new(), Vec::new());
                for o in run {
                    if let Op::UpsertA(k, a) = o {
                        ks.push(*k);
                        avs.push(*a);
                    }
                }
                let partial = Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Int64, false),
                    Field::new("a", DataType::Int64, true),
                ]));
                let batch = RecordBatch::try_new(
                    partial,
                    vec![
                        Arc::new(Int64Array::from(ks)),
                        Arc::new(Int64Array::from(avs)),
                    ],
                )
                .unwrap();
                publisher.upsert(batch).unwrap();
            }
            Op::Delete(_) => {
                let ks: Vec<i64> = run
                    .iter()
                    .filter_map(|o| match o {
                        Op::Delete(k) => Some(*k),
                        _ => None,
                    })
                    .collect();
                let only_key = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
                let batch =
                    RecordBatch::try_new(only_key, vec![Arc::new(Int64Array::from(ks))]).unwrap();
                publisher.delete(batch).unwrap();
            }
            Op::Hold => unreachable!("filtered out"),
        }
    }
}

/// Whole rows for keys `0..n`, staged before the first cycle's ops: a table of several
/// chunks from the start.
fn load(publisher: &TablePublisher, model: &mut Model, n: i64) {
    if n == 0 {
        return;
    }
    let ks: Vec<i64> = (0..n).collect();
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ks.clone())),
            Arc::new(ks.iter().map(|&k| Some(k)).collect::<Int64Array>()),
            Arc::new(
                ks.iter()
                    .map(|k| Some(format!("v{k}")))
                    .collect::<StringArray>(),
            ),
        ],
    )
    .unwrap();
    publisher.upsert(batch).unwrap();
    for k in 0..n {
        model.apply(&Op::Upsert(k, Some(k), Some(format!("v{k}"))));
    }
}

fn keyed(capacity: Option<usize>) -> (tickertable::Engine, Table, TablePublisher) {
    let engine = manual_engine();
    let (table, publisher) = engine
        .table_publisher(
            "model",
            schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Keyed { capacity })
                .with_key(["k"]),
        )
        .unwrap();
    (engine, table, publisher)
}

fn check_against_model(
    capacity: Option<usize>,
    initial: i64,
    keys: i64,
    cycles: &[Vec<Op>],
) -> Result<(), TestCaseError> {
    let (engine, table, publisher) = keyed(capacity);
    let (tx, updates) = mpsc::channel::<TableUpdate>();
    let _listener = table
        .listen(move |u: &TableUpdate| tx.send(u.clone()).unwrap())
        .unwrap();
    let mut mirror = Mirror::from_snapshot(&table.snapshot());
    let mut model = Model::default();
    load(&publisher, &mut model, initial);
    // Snapshots kept, with the rows they held when taken.
    let mut held: Vec<(TableSnapshot, Vec<Row>)> = Vec::new();
    for ops in cycles {
        publish(&publisher, ops);
        for op in ops {
            model.apply(op);
        }
        model.evict(capacity);
        engine.run_cycle();

        let snapshot = table.snapshot();
        let in_key_order: Vec<Row> = snapshot
            .rows_in_key_order()
            .unwrap()
            .iter()
            .map(tickertable::RowRef::to_owned_values)
            .collect();
        prop_assert_eq!(&in_key_order, &model.rows(), "the table is the model");
        prop_assert_eq!(snapshot.rows(), 0..model.rows.len() as u64);

        for u in updates.try_iter() {
            mirror
                .apply(&u)
                .map_err(|e| TestCaseError::fail(format!("update does not apply: {e}")))?;
        }
        let rows = rows_of(&snapshot);
        prop_assert_eq!(
            &rows_of(&mirror.snapshot()),
            &rows,
            "the mirror is the table"
        );

        // Every key of a small table; a spread of a large one's.
        let stride = 1 + model.rows.len() / 200;
        for (&k, r) in model.rows.iter().step_by(stride) {
            prop_assert_eq!(table.get(&[k.into()]).unwrap(), Some(Model::row(k, r)));
        }
        for k in [-1, keys, keys + 7] {
            prop_assert_eq!(table.get(&[k.into()]).unwrap(), None);
        }

        for (old, was) in &held {
            prop_assert_eq!(&rows_of(old), was, "a snapshot never changes");
        }
        if ops.iter().any(|o| matches!(o, Op::Hold)) {
            held.push((snapshot, rows));
        }
        // Let go of the oldest, so its chunks become spares the table may write in place.
        if held.len() > 3 {
            held.remove(0);
        }
    }
    Ok(())
}

#[test]
fn smoke() {
    let (engine, table, publisher) = keyed(None);
    let mut model = Model::default();
    load(&publisher, &mut model, 3);
    engine.run_cycle();
    let ops = [
        Op::UpsertA(1, None),
        Op::Delete(0),
        Op::Upsert(9, None, Some("x".into())),
    ];
    publish(&publisher, &ops);
    engine.run_cycle();
    let snapshot = table.snapshot();
    let got: Vec<Row> = snapshot
        .rows_in_key_order()
        .unwrap()
        .iter()
        .map(tickertable::RowRef::to_owned_values)
        .collect();
    for op in &ops {
        model.apply(op);
    }
    assert_eq!(got, model.rows());
    assert_eq!(
        table.get(&[1.into()]).unwrap(),
        Some(vec![1.into(), OwnedValue::Null, "v1".into()])
    );
}

#[test]
fn get_refuses_a_key_that_does_not_fit() {
    let (_engine, table, _publisher) = keyed(None);
    assert!(matches!(
        table.get(&[]),
        Err(tickertable::Error::InvalidOp { .. })
    ));
    assert!(matches!(
        table.get(&["one".into()]),
        Err(tickertable::Error::SchemaMismatch { .. })
    ));
    assert!(
        table.get(&[OwnedValue::Null]).is_err(),
        "the key is not nullable"
    );
    let engine = manual_engine();
    let (append, _) = engine.append_table("a", schema()).unwrap();
    assert!(matches!(
        append.get(&[1.into()]),
        Err(tickertable::Error::InvalidOp { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Few keys: every op collides with others, last write wins, rows move on deletes.
    #[test]
    fn small_keyed_tables_match_a_btreemap_model(
        capacity in proptest::option::of(1usize..16),
        initial in 0i64..20,
        cycles in proptest::collection::vec(proptest::collection::vec(op(32), 0..40), 1..16),
    ) {
        check_against_model(capacity, initial, 32, &cycles)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Tables of several chunks: random writes spread over every chunk, each chunk written
    /// in place or merged depending on what the held snapshots share.
    #[test]
    fn large_keyed_tables_match_a_btreemap_model(
        capacity in proptest::option::of(6000usize..12000),
        initial in 5000i64..12000,
        cycles in proptest::collection::vec(proptest::collection::vec(op(14000), 0..800), 1..8),
    ) {
        check_against_model(capacity, initial, 14000, &cycles)?;
    }
}
