//! Keyed tables: upsert, partial upsert, delete, last write wins, ring plus key, slot reuse,
//! updates with modified rows and columns, refused input; and a `HashMap` model checked with
//! proptest against tables fed by a publisher and by a row writer.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::HashMap;
use std::sync::{mpsc, Arc};

use arrow_array::{Array, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;
use tickertable::test_util::manual_engine;
use tickertable::{
    DynamicWriterOptions, Engine, Error, PublisherOptions, RowWriter, Table, TableKind,
    TablePublisher, TableUpdate, Value, OP_COLUMN,
};

/// `k` int64 key, `a` int64 (nullable), `b` utf8 (nullable).
fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]))
}

type Row = (i64, Option<i64>, Option<String>);

fn full(rows: &[(i64, Option<i64>, Option<&str>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()),
        ],
    )
    .unwrap()
}

/// A partial batch of `k` and `a` only.
fn only_a(rows: &[(i64, Option<i64>)]) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("k", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        s,
        vec![
            Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        ],
    )
    .unwrap()
}

fn keys(ks: &[i64]) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
    RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(ks.to_vec()))]).unwrap()
}

fn rows_of<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let a = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let s = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push((
                k.value(i),
                a.is_valid(i).then(|| a.value(i)),
                s.is_valid(i).then(|| s.value(i).to_owned()),
            ));
        }
    }
    out
}

fn table_rows(t: &Table) -> Vec<Row> {
    let snap = t.snapshot();
    assert_eq!(snap.rows().start, 0, "a keyed table's rows start at 0");
    rows_of(snap.batches())
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

fn keyed(engine: &Engine, capacity: Option<usize>) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            "q",
            schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Keyed { capacity })
                .with_key(["k"]),
        )
        .unwrap()
}

/// A mirror of a keyed table fed by a listener's updates; checks each update's shape.
struct Mirror {
    rows: Vec<Row>,
    updates: mpsc::Receiver<TableUpdate>,
}

impl Mirror {
    fn new(t: &Table) -> (Self, tickertable::ListenerHandle) {
        let (tx, rx) = mpsc::channel();
        let handle = t
            .listen(move |u: &TableUpdate| tx.send(u.clone()).unwrap())
            .unwrap();
        (
            Self {
                rows: table_rows(t),
                updates: rx,
            },
            handle,
        )
    }

    /// Applies every update received; returns them.
    fn sync(&mut self) -> Vec<TableUpdate> {
        let updates: Vec<TableUpdate> = self.updates.try_iter().collect();
        for u in &updates {
            let len = self.rows.len() as u64;
            assert!(
                u.removed().is_empty() || u.added().is_empty(),
                "a keyed table shrinks or grows, not both"
            );
            let modified = u.modified();
            assert!(modified.windows(2).all(|w| w[0] < w[1]), "ascending");
            if let Some(b) = u.modified_batch() {
                assert_eq!(b.num_rows(), modified.len());
                for (row, &pos) in rows_of([b]).into_iter().zip(modified) {
                    assert!(pos < len, "modified rows were held");
                    self.rows[usize::try_from(pos).unwrap()] = row;
                }
            } else {
                assert!(modified.is_empty());
            }
            if !u.removed().is_empty() {
                assert_eq!(u.removed().end, len, "removed is a suffix");
                assert!(modified.iter().all(|&p| p < u.removed().start));
                self.rows
                    .truncate(usize::try_from(u.removed().start).unwrap());
            }
            assert_eq!(u.added().start, self.rows.len() as u64, "added at the end");
            let added = rows_of(u.batches());
            assert_eq!(added.len(), u.num_added());
            self.rows.extend(added);
        }
        updates
    }
}

#[test]
fn upsert_inserts_then_replaces_by_key() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, None);
    assert_eq!(t.kind(), TableKind::Keyed { capacity: None });
    assert_eq!(t.key_columns(), &[0]);
    p.upsert(full(&[(1, Some(10), Some("x")), (2, Some(20), None)]))
        .unwrap();
    engine.run_cycle();
    assert_eq!(
        table_rows(&t),
        vec![(1, Some(10), Some("x".into())), (2, Some(20), None)]
    );
    let (mut mirror, _h) = Mirror::new(&t);
    p.upsert(full(&[(2, Some(21), Some("y")), (3, None, Some("z"))]))
        .unwrap();
    engine.run_cycle();
    let updates = mirror.sync();
    assert_eq!(updates.len(), 1);
    let u = &updates[0];
    assert_eq!(u.modified(), &[1], "key 2 was rewritten in its slot");
    assert_eq!(u.added(), 2..3, "key 3 is new");
    assert!(u.removed().is_empty());
    assert!(
        (0..3).all(|c| u.is_modified(0, c)),
        "a whole-row upsert writes every column"
    );
    assert_eq!(mirror.rows, table_rows(&t));
    assert_eq!(
        table_rows(&t),
        vec![
            (1, Some(10), Some("x".into())),
            (2, Some(21), Some("y".into())),
            (3, None, Some("z".into()))
        ]
    );
}

#[test]
fn a_partial_upsert_keeps_the_other_columns_and_reports_only_its_own() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, None);
    p.upsert(full(&[(1, Some(10), Some("x")), (2, Some(20), Some("y"))]))
        .unwrap();
    engine.run_cycle();
    let (mut mirror, _h) = Mirror::new(&t);
    p.upsert(only_a(&[(2, Some(99)), (5, Some(50))])).unwrap();
    engine.run_cycle();
    let updates = mirror.sync();
    let u = &updates[0];
    assert_eq!(u.modified(), &[1]);
    assert!(u.is_modified(0, 1), "a was given");
    assert!(!u.is_modified(0, 2), "b was left out");
    assert!(u.column_modified(1) && !u.column_modified(2));
    let mask = u.modified_mask(0).expect("a partial upsert has a mask");
    assert_eq!(mask[0] & 0b110, 0b010, "a written, b not: {mask:?}");
    assert_eq!(
        table_rows(&t),
        vec![
            (1, Some(10), Some("x".into())),
            (2, Some(99), Some("y".into())),
            (5, Some(50), None),
        ],
        "a new key gets nulls in the columns left out"
    );
    assert_eq!(mirror.rows, table_rows(&t));
}

#[test]
fn delete_removes_keys_ignores_missing_ones_and_moves_the_last_row_into_the_hole() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, None);
    p.upsert(full(&[
        (1, Some(1), None),
        (2, Some(2), None),
        (3, Some(3), None),
        (4, Some(4), None),
    ]))
    .unwrap();
    engine.run_cycle();
    let (mut mirror, _h) = Mirror::new(&t);
    p.delete(keys(&[2, 42])).unwrap();
    engine.run_cycle();
    let u = &mirror.sync()[0];
    assert_eq!(u.removed(), 3..4, "the table shrinks at the end");
    assert_eq!(u.modified(), &[1], "the last row moved into key 2's slot");
    assert_eq!(
        table_rows(&t),
        vec![(1, Some(1), None), (4, Some(4), None), (3, Some(3), None)]
    );
    assert_eq!(mirror.rows, table_rows(&t));
    // Deleting only missing keys changes nothing and sends nothing.
    let step = t.snapshot().step();
    p.delete(keys(&[42])).unwrap();
    engine.run_cycle();
    assert!(mirror.sync().is_empty());
    assert_eq!(t.snapshot().step(), step);
}

#[test]
fn within_a_cycle_the_last_write_to_a_key_wins() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, None);
    p.upsert(full(&[(1, Some(1), Some("a")), (2, Some(2), None)]))
        .unwrap();
    engine.run_cycle();
    // Key 1: upsert, delete, partial upsert: the row restarts from nulls.
    p.upsert(full(&[(1, Some(100), Some("b"))])).unwrap();
    p.delete(keys(&[1])).unwrap();
    p.upsert(only_a(&[(1, Some(7))])).unwrap();
    // Key 2: delete then nothing. Key 3: insert then delete: never shows.
    p.delete(keys(&[2])).unwrap();
    p.upsert(full(&[(3, Some(3), None)])).unwrap();
    p.delete(keys(&[3])).unwrap();
    // Key 4: two upserts in one batch.
    p.upsert(full(&[
        (4, Some(4), Some("old")),
        (4, Some(44), Some("new")),
    ]))
    .unwrap();
    engine.run_cycle();
    assert_eq!(
        sorted(table_rows(&t)),
        vec![(1, Some(7), None), (4, Some(44), Some("new".into()))]
    );
}

#[test]
fn churn_reuses_slots_so_the_table_does_not_grow() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, None);
    let (mut mirror, _h) = Mirror::new(&t);
    let live = 1000;
    p.upsert(full(
        &(0..live).map(|k| (k, Some(k), None)).collect::<Vec<_>>(),
    ))
    .unwrap();
    engine.run_cycle();
    assert_eq!(mirror.sync()[0].added(), 0..1000);
    let chunks = t.snapshot().num_chunks();
    for round in 1..50 {
        // Delete 100 keys and insert 100 new ones each cycle.
        let gone: Vec<i64> = ((round - 1) * 100..round * 100).collect();
        let new: Vec<(i64, Option<i64>, Option<&str>)> = (live + (round - 1) * 100
            ..live + round * 100)
            .map(|k| (k, Some(k), None))
            .collect();
        p.delete(keys(&gone)).unwrap();
        p.upsert(full(&new)).unwrap();
        engine.run_cycle();
        let u = &mirror.sync()[0];
        assert!(u.added().is_empty() && u.removed().is_empty());
        assert_eq!(
            u.num_modified(),
            100,
            "new keys take the deleted keys' slots"
        );
        assert_eq!(t.num_rows(), 1000);
        assert_eq!(t.snapshot().num_chunks(), chunks);
    }
    assert_eq!(mirror.rows, table_rows(&t));
    let mut want: Vec<i64> = (4900..5900).collect();
    want.sort_unstable();
    let mut got: Vec<i64> = table_rows(&t).into_iter().map(|r| r.0).collect();
    got.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn ring_plus_key_keeps_the_most_recently_written_keys() {
    let engine = manual_engine();
    let (t, p) = keyed(&engine, Some(3));
    assert_eq!(t.capacity(), Some(3));
    p.upsert(full(&[
        (1, Some(1), None),
        (2, Some(2), None),
        (3, Some(3), None),
    ]))
    .unwrap();
    engine.run_cycle();
    // Writing key 1 again makes it the newest; key 4 then evicts key 2.
    p.upsert(only_a(&[(1, Some(10))])).unwrap();
    engine.run_cycle();
    p.upsert(full(&[(4, Some(4), None)])).unwrap();
    engine.run_cycle();
    assert_eq!(
        sorted(table_rows(&t)),
        vec![(1, Some(10), None), (3, Some(3), None), (4, Some(4), None)]
    );
    // More new keys in one cycle than the capacity: only the last three show.
    p.upsert(full(
        &(10..20).map(|k| (k, Some(k), None)).collect::<Vec<_>>(),
    ))
    .unwrap();
    engine.run_cycle();
    assert_eq!(
        sorted(table_rows(&t)),
        vec![
            (17, Some(17), None),
            (18, Some(18), None),
            (19, Some(19), None)
        ]
    );
}

#[test]
fn row_writers_upsert_partially_upsert_and_delete() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "q",
            schema(),
            DynamicWriterOptions::default().with_key(["k"]),
        )
        .unwrap();
    let t = dtw.table().clone();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1), Value::Int(10), Value::Str("x")])
        .unwrap();
    w.write_row(&[Value::Int(2), Value::Int(20), Value::Str("y")])
        .unwrap();
    engine.run_cycle();
    let (mut mirror, _h) = Mirror::new(&t);
    w.set(0, 2).unwrap().set(1, 21).unwrap();
    w.end_row().unwrap();
    w.delete_row(&[Value::Int(1)]).unwrap();
    w.delete_row(&[Value::Int(9)]).unwrap();
    engine.run_cycle();
    assert_eq!(table_rows(&t), vec![(2, Some(21), Some("y".into()))]);
    let u = &mirror.sync()[0];
    assert_eq!(u.removed(), 1..2);
    assert_eq!(mirror.rows, table_rows(&t));
    // A transaction of upserts and deletes lands whole, or not at all.
    w.begin().unwrap();
    w.write_row(&[Value::Int(3), Value::Null, Value::Null])
        .unwrap();
    w.delete_row(&[Value::Int(2)]).unwrap();
    w.rollback().unwrap();
    engine.run_cycle();
    assert_eq!(table_rows(&t), vec![(2, Some(21), Some("y".into()))]);
    w.begin().unwrap();
    w.write_row(&[Value::Int(3), Value::Null, Value::Null])
        .unwrap();
    w.delete_row(&[Value::Int(2)]).unwrap();
    w.commit().unwrap();
    engine.run_cycle();
    assert_eq!(table_rows(&t), vec![(3, None, None)]);
}

#[test]
fn bad_keyed_input_is_refused_whole() {
    let engine = manual_engine();
    let strict = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("a", DataType::Int64, false),
    ]));
    let (t, p) = engine
        .table_publisher(
            "strict",
            strict.clone(),
            PublisherOptions::default().with_key(["k"]),
        )
        .unwrap();
    // A partial upsert may not leave out a non-nullable column.
    let only_k = keys(&[1]);
    assert!(matches!(
        p.upsert(only_k.clone()),
        Err(Error::UnsetColumn { column, .. }) if column == "a"
    ));
    // Every upsert needs the key.
    let only_a_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    assert!(matches!(
        p.delete(only_a_batch.clone()),
        Err(Error::MissingKeyColumn { column, .. }) if column == "k"
    ));
    // A column the table does not have.
    let extra = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("zz", DataType::Int64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(Int64Array::from(vec![1])),
        ],
    )
    .unwrap();
    assert!(matches!(p.upsert(extra), Err(Error::NoColumnNamed { column, .. }) if column == "zz"));
    // A malformed operation mask.
    let mut fields: Vec<Field> = strict.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(OP_COLUMN, DataType::Binary, false));
    let bad_mask = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(BinaryArray::from(vec![&[0b10u8][..]])),
        ],
    )
    .unwrap();
    assert!(matches!(
        p.add(bad_mask),
        Err(Error::MissingKeyColumn { .. })
    ));
    engine.run_cycle();
    assert_eq!(t.num_rows(), 0, "nothing was applied");

    // Keyed operations on a table that is not keyed.
    let (_, plain) = engine
        .table_publisher("plain", strict, PublisherOptions::default())
        .unwrap();
    assert!(matches!(plain.delete(only_k), Err(Error::InvalidOp { .. })));
    let dtw = engine
        .dynamic_table_writer("plain_rows", schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    assert!(matches!(
        w.delete_row(&[Value::Int(1)]),
        Err(Error::InvalidOp { .. })
    ));

    // Row writers: a partial row needs the key, and may leave out only nullable columns.
    let dtw = engine
        .dynamic_table_writer(
            "strict_rows",
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Int64, false),
                Field::new("a", DataType::Int64, false),
                Field::new("b", DataType::Int64, true),
            ])),
            DynamicWriterOptions::default().with_key(["k"]),
        )
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.set(1, 5).unwrap();
    assert!(matches!(w.end_row(), Err(Error::MissingKeyColumn { .. })));
    w.set(0, 5).unwrap();
    assert!(matches!(w.end_row(), Err(Error::UnsetColumn { column, .. }) if column == "a"));
    assert!(matches!(
        w.delete_row(&[Value::Str("x")]),
        Err(Error::SchemaMismatch { .. })
    ));
    assert!(matches!(
        w.delete_row(&[Value::Int(1), Value::Int(2)]),
        Err(Error::ColumnCount {
            expected: 1,
            found: 2,
            ..
        })
    ));
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 0);
}

#[test]
fn keyed_options_are_checked() {
    let engine = manual_engine();
    let make = |name: &str, opts: PublisherOptions| engine.table_publisher(name, schema(), opts);
    assert!(matches!(
        make(
            "a",
            PublisherOptions::default().with_kind(TableKind::Keyed { capacity: None })
        ),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        make("b", PublisherOptions::default().with_key(["nope"])),
        Err(Error::NoColumnNamed { .. })
    ));
    assert!(matches!(
        make(
            "c",
            PublisherOptions::default()
                .with_key(["k"])
                .with_kind(TableKind::Append)
        ),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        make(
            "d",
            PublisherOptions::default()
                .with_kind(TableKind::Keyed { capacity: Some(0) })
                .with_key(["k"])
        ),
        Err(Error::InvalidOption { .. })
    ));
    let (t, _p) = make("e", PublisherOptions::default().with_key(["b", "k"])).unwrap();
    assert_eq!(t.key_columns(), &[2, 0]);
    assert!(matches!(
        engine.ring_table("e_ring", &t, 10),
        Err(Error::InvalidOption { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Upsert(i64, Option<i64>, Option<String>),
    /// Only `a`.
    UpsertA(i64, Option<i64>),
    Delete(i64),
}

fn op(keys: i64) -> impl Strategy<Value = Op> {
    let key = 0i64..keys;
    prop_oneof![
        4 => (key.clone(), proptest::option::of(-5i64..5), proptest::option::of("[a-c]{0,3}"))
            .prop_map(|(k, a, b)| Op::Upsert(k, a, b)),
        2 => (key.clone(), proptest::option::of(-5i64..5)).prop_map(|(k, a)| Op::UpsertA(k, a)),
        2 => key.prop_map(Op::Delete),
    ]
}

/// The model: values by key, plus each key's last write for the capacity.
#[derive(Default)]
struct Model {
    rows: HashMap<i64, (Option<i64>, Option<String>, u64)>,
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
        }
    }

    fn evict(&mut self, capacity: Option<usize>) {
        let Some(cap) = capacity else { return };
        while self.rows.len() > cap {
            let oldest = *self
                .rows
                .iter()
                .min_by_key(|(_, r)| r.2)
                .map(|(k, _)| k)
                .unwrap();
            self.rows.remove(&oldest);
        }
    }

    fn rows(&self) -> Vec<Row> {
        sorted(
            self.rows
                .iter()
                .map(|(k, (a, b, _))| (*k, *a, b.clone()))
                .collect(),
        )
    }
}

/// Stages ops through a publisher, grouping runs of the same kind into one batch.
fn publish(publisher: &TablePublisher, ops: &[Op]) {
    let mut first = 0;
    while first < ops.len() {
        let mut end = first;
        while end < ops.len()
            && std::mem::discriminant(&ops[end]) == std::mem::discriminant(&ops[first])
        {
            end += 1;
        }
        let run = &ops[first..end];
        match &ops[first] {
            Op::Upsert(..) => {
                let rows: Vec<(i64, Option<i64>, Option<&str>)> = run
                    .iter()
                    .map(|o| match o {
                        Op::Upsert(k, a, b) => (*k, *a, b.as_deref()),
                        _ => unreachable!(),
                    })
                    .collect();
                publisher.upsert(full(&rows)).unwrap();
            }
            Op::UpsertA(..) => {
                let rows: Vec<(i64, Option<i64>)> = run
                    .iter()
                    .map(|o| match o {
                        Op::UpsertA(k, a) => (*k, *a),
                        _ => unreachable!(),
                    })
                    .collect();
                publisher.upsert(only_a(&rows)).unwrap();
            }
            Op::Delete(_) => {
                let ks: Vec<i64> = run
                    .iter()
                    .map(|o| match o {
                        Op::Delete(k) => *k,
                        _ => unreachable!(),
                    })
                    .collect();
                publisher.delete(keys(&ks)).unwrap();
            }
        }
        first = end;
    }
}

fn write(w: &mut RowWriter, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Upsert(k, a, b) => w
                .write_row(&[Value::Int(*k), Value::from(*a), Value::from(b.as_deref())])
                .unwrap(),
            Op::UpsertA(k, a) => {
                w.set(0, *k).unwrap().set(1, Value::from(*a)).unwrap();
                w.end_row().unwrap();
            }
            Op::Delete(k) => w.delete_row(&[Value::Int(*k)]).unwrap(),
        }
    }
}

/// Runs `cycles` of operations on a publisher-fed and a row-writer-fed keyed table and
/// checks both, and a mirror of each fed by its updates, against the model after every cycle.
fn check_against_model(capacity: Option<usize>, cycles: &[Vec<Op>]) -> Result<(), TestCaseError> {
    let engine = manual_engine();
    let (pt, p) = keyed(&engine, capacity);
    let dtw = engine
        .dynamic_table_writer(
            "rows",
            schema(),
            DynamicWriterOptions::default()
                .with_kind(TableKind::Keyed { capacity })
                .with_key(["k"]),
        )
        .unwrap();
    let wt = dtw.table().clone();
    let mut w = dtw.row_writer().unwrap();
    let (mut pm, _ph) = Mirror::new(&pt);
    let (mut wm, _wh) = Mirror::new(&wt);
    let mut model = Model::default();
    for ops in cycles {
        publish(&p, ops);
        write(&mut w, ops);
        for op in ops {
            model.apply(op);
        }
        model.evict(capacity);
        engine.run_cycle();
        let want = model.rows();
        for (t, m) in [(&pt, &mut pm), (&wt, &mut wm)] {
            let got = table_rows(t);
            prop_assert_eq!(sorted(got.clone()), want.clone(), "table {}", t.name());
            m.sync();
            prop_assert_eq!(&m.rows, &got, "mirror of {}", t.name());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Few keys, many collisions: last-write-wins, partial merges, delete and re-insert.
    #[test]
    fn keyed_tables_match_a_hashmap_model(
        capacity in proptest::option::of(1usize..12),
        cycles in proptest::collection::vec(proptest::collection::vec(op(24), 0..40), 1..12),
    ) {
        check_against_model(capacity, &cycles)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Thousands of keys: tables of several chunks, rows moving between chunks.
    #[test]
    fn large_keyed_tables_match_a_hashmap_model(
        capacity in proptest::option::of(500usize..1500),
        cycles in proptest::collection::vec(proptest::collection::vec(op(2500), 0..1500), 1..6),
    ) {
        check_against_model(capacity, &cycles)?;
    }
}
