//! `DynamicTableWriter` and `RowWriter`: rows, setters, range checks, nulls, transactions.

mod support;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, Int8Type, UInt16Type, UInt8Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tickertable::test_util::{i64_column, int_schema, manual_engine, trade_schema};
use tickertable::{
    DynamicTableWriter, DynamicWriterOptions, Engine, EngineHandle, Error, Event, TableKind,
    TransactionError, TryRecvError, Value,
};

use support::{drain, record, values};

fn int_writer(engine: &EngineHandle) -> DynamicTableWriter {
    engine
        .dynamic_table_writer("t", int_schema(), DynamicWriterOptions::default())
        .expect("create writer table")
}

/// Columns: i8 `a` (non-null), u8 `b`, u16 `c`, f32 `f`, utf8 `s` (nullable), bool `ok`,
/// timestamp(ns) `ts`, date32 `d`, binary `bin` (nullable), i64 `n` (nullable).
fn mixed_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int8, false),
        Field::new("b", DataType::UInt8, false),
        Field::new("c", DataType::UInt16, false),
        Field::new("f", DataType::Float32, false),
        Field::new("s", DataType::Utf8, true),
        Field::new("ok", DataType::Boolean, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("d", DataType::Date32, false),
        Field::new("bin", DataType::Binary, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn mixed_row(a: i64, s: Option<&str>) -> [Value<'_>; 10] {
    [
        Value::Int(a),
        Value::Int(1),
        Value::UInt(2),
        Value::Float(1.5),
        s.into(),
        true.into(),
        Value::Int(1_700_000_000_000_000_000),
        Value::Int(19_000),
        Value::Bytes(b"xy"),
        Value::Null,
    ]
}

fn one_batch(dtw: &DynamicTableWriter) -> RecordBatch {
    dtw.table().snapshot().to_batch().expect("concat")
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("trades", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    assert_eq!(dtw.table().kind(), TableKind::Append);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[1.into(), "AAPL".into(), 187.5.into(), 100.into()])
        .unwrap();
    engine.run_cycle();
    let batch = one_batch(&dtw);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "AAPL");
}

#[test]
fn written_rows_are_invisible_until_the_next_cycle() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    for i in 0..5 {
        w.write_row(&[Value::Int(i)]).unwrap();
    }
    assert_eq!(w.staged_rows(), 5);
    assert_eq!(dtw.table().num_rows(), 0);
    engine.run_cycle();
    assert_eq!(w.staged_rows(), 0);
    assert_eq!(values(dtw.table()), vec![0, 1, 2, 3, 4]);
}

#[test]
fn set_and_end_row_write_a_row_by_column_index() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("trades", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    let ts = w.column_index("Ts").unwrap();
    let sym = w.column_index("Sym").unwrap();
    let px = w.column_index("Price").unwrap();
    let size = w.column_index("Size").unwrap();
    assert_eq!((ts, sym, px, size), (0, 1, 2, 3));
    assert_eq!(w.column_index("Nope"), None);
    assert_eq!(w.schema(), &trade_schema());
    // Set in any order.
    w.set(size, 7)
        .unwrap()
        .set(sym, "MSFT")
        .unwrap()
        .set(px, 411.0)
        .unwrap()
        .set(ts, 42)
        .unwrap();
    w.end_row().unwrap();
    engine.run_cycle();
    let batch = one_batch(&dtw);
    assert_eq!(i64_column([&batch], 0), vec![42]);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "MSFT");
    assert!(
        (batch
            .column(2)
            .as_primitive::<arrow_array::types::Float64Type>()
            .value(0)
            - 411.0)
            .abs()
            < f64::EPSILON
    );
    assert_eq!(i64_column([&batch], 3), vec![7]);
}

#[test]
fn set_past_the_last_column_is_refused_with_no_such_column() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    let err = w.set(1, 5).map(|_| ()).unwrap_err();
    assert!(
        matches!(err, Error::NoSuchColumn { ref table, index: 1, count: 1 } if table == "t"),
        "{err:?}"
    );
}

#[test]
fn refused_set_keeps_the_pending_rows_other_values() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("trades", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.set(0, 5).unwrap().set(1, "A").unwrap();
    assert!(matches!(
        w.set(2, "not a number").map(|_| ()),
        Err(Error::SchemaMismatch { .. })
    ));
    w.set(2, 1.0).unwrap().set(3, 9).unwrap();
    w.end_row().unwrap();
    engine.run_cycle();
    let batch = one_batch(&dtw);
    assert_eq!(i64_column([&batch], 0), vec![5]);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "A");
}

#[test]
fn end_row_with_an_unset_non_nullable_column_is_refused_and_clears_the_row() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("trades", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.set(0, 1)
        .unwrap()
        .set(1, "A")
        .unwrap()
        .set(2, 1.0)
        .unwrap();
    let err = w.end_row().unwrap_err();
    assert!(
        matches!(err, Error::NullInNonNullable { ref column, .. } if column == "Size"),
        "{err:?}"
    );
    // The pending row was cleared: setting only Size is not enough.
    w.set(3, 1).unwrap();
    assert!(matches!(
        w.end_row(),
        Err(Error::NullInNonNullable { ref column, .. }) if column == "Ts"
    ));
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 0);
}

#[test]
fn end_row_writes_nulls_for_unset_nullable_columns() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("m", mixed_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.set(0, 1)
        .unwrap()
        .set(1, 2)
        .unwrap()
        .set(2, 3)
        .unwrap()
        .set(3, 4.0)
        .unwrap()
        .set(5, false)
        .unwrap()
        .set(6, 10)
        .unwrap()
        .set(7, 11)
        .unwrap();
    w.end_row().unwrap();
    engine.run_cycle();
    let batch = one_batch(&dtw);
    assert_eq!(batch.num_rows(), 1);
    assert!(batch.column(4).is_null(0));
    assert!(batch.column(8).is_null(0));
    assert!(batch.column(9).is_null(0));
    assert!(batch.column(0).is_valid(0));
}

#[test]
fn write_row_stores_every_supported_value_kind() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("m", mixed_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&mixed_row(-5, Some("hello"))).unwrap();
    w.write_row(&mixed_row(127, None)).unwrap();
    engine.run_cycle();
    let b = one_batch(&dtw);
    assert_eq!(b.num_rows(), 2);
    assert_eq!(b.column(0).as_primitive::<Int8Type>().values(), &[-5, 127]);
    assert_eq!(b.column(1).as_primitive::<UInt8Type>().value(0), 1);
    assert_eq!(b.column(2).as_primitive::<UInt16Type>().value(0), 2);
    assert!((b.column(3).as_primitive::<Float32Type>().value(0) - 1.5).abs() < f32::EPSILON);
    assert_eq!(b.column(4).as_string::<i32>().value(0), "hello");
    assert!(b.column(4).is_null(1));
    assert!(b.column(5).as_boolean().value(0));
    assert_eq!(b.column(8).as_binary::<i32>().value(0), b"xy");
    assert!(b.column(9).is_null(0));
    assert_eq!(b.schema(), mixed_schema());
}

#[test]
fn null_values_go_into_nullable_columns() {
    let engine = manual_engine();
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
    let dtw = engine
        .dynamic_table_writer("t", schema, DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.write_row(&[Value::Null]).unwrap();
    w.write_row(&[None::<i64>.into()]).unwrap();
    w.write_row(&[Some(4_i64).into()]).unwrap();
    engine.run_cycle();
    let b = one_batch(&dtw);
    let col = b.column(0).as_primitive::<Int64Type>();
    assert_eq!(col.len(), 4);
    assert_eq!(col.null_count(), 2);
    assert_eq!((col.value(0), col.value(3)), (1, 4));
    assert!(col.is_null(1) && col.is_null(2));
}

#[test]
fn null_in_a_non_nullable_column_is_refused() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    let err = w.write_row(&[Value::Null]).unwrap_err();
    assert!(
        matches!(err, Error::NullInNonNullable { ref table, ref column } if table == "t" && column == "v"),
        "{err:?}"
    );
    let err = w.set(0, None::<i64>).map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::NullInNonNullable { .. }), "{err:?}");
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 0);
}

fn out_of_range(err: &Error) -> (&str, &DataType, &str) {
    match err {
        Error::ValueOutOfRange {
            column,
            expected,
            value,
            ..
        } => (column, expected, value),
        other => panic!("expected ValueOutOfRange, got {other:?}"),
    }
}

#[test]
fn integers_that_do_not_fit_the_column_are_refused_with_value_out_of_range() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("m", mixed_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    let cases: [(usize, Value<'_>, &str, DataType, &str); 7] = [
        (0, Value::Int(128), "a", DataType::Int8, "128"),
        (0, Value::Int(-129), "a", DataType::Int8, "-129"),
        (0, Value::UInt(300), "a", DataType::Int8, "300"),
        (1, Value::Int(-1), "b", DataType::UInt8, "-1"),
        (1, Value::Int(256), "b", DataType::UInt8, "256"),
        (2, Value::Int(70_000), "c", DataType::UInt16, "70000"),
        (
            7,
            Value::Int(i64::from(i32::MAX) + 1),
            "d",
            DataType::Date32,
            "2147483648",
        ),
    ];
    for (index, value, column, expected, text) in cases {
        let mut row = mixed_row(1, None);
        row[index] = value;
        let err = w.write_row(&row).unwrap_err();
        assert_eq!(out_of_range(&err), (column, &expected, text), "{value:?}");
        let err = w.set(index, value).map(|_| ()).unwrap_err();
        assert_eq!(out_of_range(&err).0, column);
    }
    let schema = Arc::new(Schema::new(vec![Field::new("big", DataType::Int64, false)]));
    let big = engine
        .dynamic_table_writer("big", schema, DynamicWriterOptions::default())
        .unwrap();
    let mut bw = big.row_writer().unwrap();
    let err = bw.write_row(&[Value::UInt(u64::MAX)]).unwrap_err();
    assert_eq!(out_of_range(&err).0, "big");
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 0);
    assert_eq!(big.table().num_rows(), 0);
}

#[test]
fn integers_at_the_edges_of_the_column_type_are_accepted() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("m", mixed_schema(), DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    for (a, b, c) in [(-128_i64, 0_i64, 0_u64), (127, 255, 65_535)] {
        let mut row = mixed_row(a, None);
        row[1] = Value::Int(b);
        row[2] = Value::UInt(c);
        w.write_row(&row).unwrap();
    }
    engine.run_cycle();
    let batch = one_batch(&dtw);
    assert_eq!(
        batch.column(0).as_primitive::<Int8Type>().values(),
        &[-128, 127]
    );
    assert_eq!(
        batch.column(1).as_primitive::<UInt8Type>().values(),
        &[0, 255]
    );
    assert_eq!(
        batch.column(2).as_primitive::<UInt16Type>().values(),
        &[0, 65_535]
    );
}

#[test]
fn transaction_rows_become_visible_together_in_one_cycle() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let (_h, seen) = record(dtw.table());
    let mut w = dtw.row_writer().unwrap();
    w.begin().unwrap();
    assert!(w.in_transaction());
    for i in 0..3 {
        w.write_row(&[Value::Int(i)]).unwrap();
    }
    engine.run_cycle();
    assert_eq!(
        dtw.table().num_rows(),
        0,
        "an open transaction is not visible"
    );
    for i in 3..5 {
        w.write_row(&[Value::Int(i)]).unwrap();
    }
    w.commit().unwrap();
    assert!(!w.in_transaction());
    let step = engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 2, 3, 4]);
    let seen = seen.lock();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].step, step);
    assert_eq!(seen[0].values, vec![0, 1, 2, 3, 4]);
}

#[test]
fn rollback_discards_the_transactions_rows() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.write_row(&[Value::Int(2)]).unwrap();
    w.rollback().unwrap();
    assert!(!w.in_transaction());
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 0);
    // The writer goes on.
    w.write_row(&[Value::Int(3)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![3]);
}

#[test]
fn rows_written_before_begin_still_land() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.write_row(&[Value::Int(2)]).unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(3)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
    w.rollback().unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
}

#[test]
fn rows_before_begin_land_with_a_transaction_committed_in_the_same_cycle() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(2)]).unwrap();
    w.commit().unwrap();
    w.write_row(&[Value::Int(3)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2, 3]);
}

#[test]
fn transaction_misuse_is_refused() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    assert!(matches!(
        w.commit(),
        Err(Error::Transaction(TransactionError::NotOpen))
    ));
    assert!(matches!(
        w.rollback(),
        Err(Error::Transaction(TransactionError::NotOpen))
    ));
    w.begin().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    assert!(matches!(
        w.begin(),
        Err(Error::Transaction(TransactionError::AlreadyOpen))
    ));
    // The open transaction is unaffected by the refused begin.
    assert!(w.in_transaction());
    w.commit().unwrap();
    assert!(matches!(
        w.commit(),
        Err(Error::Transaction(TransactionError::NotOpen))
    ));
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1]);
}

#[test]
fn dropping_a_writer_keeps_committed_rows_and_discards_an_open_transaction() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(2)]).unwrap();
    w.commit().unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(3)]).unwrap();
    drop(w);
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
}

#[test]
fn dropping_a_writer_with_staged_rows_keeps_them() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(9)]).unwrap();
    drop(w);
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![9]);
}

#[test]
fn rows_of_several_writers_in_one_cycle_land_together() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let (_h, seen) = record(dtw.table());
    let threads: Vec<_> = (0..3_i64)
        .map(|t| {
            let dtw = dtw.clone();
            std::thread::spawn(move || {
                let mut w = dtw.row_writer().unwrap();
                for i in 0..500 {
                    w.write_row(&[Value::Int(t * 1000 + i)]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    engine.run_cycle();
    let got = values(dtw.table());
    assert_eq!(got.len(), 1500);
    assert_eq!(seen.lock().len(), 1);
    for t in 0..3 {
        let mine: Vec<i64> = got.iter().copied().filter(|v| v / 1000 == t).collect();
        assert_eq!(mine, (t * 1000..t * 1000 + 500).collect::<Vec<_>>());
    }
}

#[test]
fn row_writer_past_the_staging_limit_in_manual_mode_fails_with_staging_full() {
    let engine = Engine::builder().manual().staging_limit(3).build().unwrap();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    for i in 0..3 {
        w.write_row(&[Value::Int(i)]).unwrap();
    }
    let err = w.write_row(&[Value::Int(3)]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StagingFull {
                staged: 3,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 2]);
    w.write_row(&[Value::Int(3)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 2, 3]);
}

#[test]
fn dynamic_table_writer_write_row_shares_one_writer() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    dtw.write_row(&[Value::Int(1)]).unwrap();
    let other = dtw.clone();
    other.write_row(&[Value::Int(2)]).unwrap();
    assert!(matches!(
        dtw.write_row(&[Value::Str("x")]),
        Err(Error::SchemaMismatch { .. })
    ));
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
}

#[test]
fn close_applies_earlier_rows_then_refuses_writes_and_ends_subscriptions() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let sub = dtw.table().subscribe().unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    dtw.write_row(&[Value::Int(2)]).unwrap();
    dtw.close();
    assert!(dtw.table().is_closed());
    assert!(matches!(
        w.write_row(&[Value::Int(3)]),
        Err(Error::TableClosed { ref table }) if table == "t"
    ));
    assert!(matches!(
        dtw.write_row(&[Value::Int(4)]),
        Err(Error::TableClosed { .. })
    ));
    assert!(matches!(dtw.row_writer(), Err(Error::TableClosed { .. })));
    dtw.close(); // a second close does nothing
    engine.run_cycle();
    let mut got = values(dtw.table());
    got.sort_unstable();
    assert_eq!(got, vec![1, 2]);
    let events = drain(&sub);
    assert!(matches!(events[0], Event::Snapshot(_)));
    assert!(matches!(events[1], Event::Update(_)));
    assert_eq!(events.len(), 2, "a clean close sends no Failed: {events:?}");
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Ended);
    assert!(dtw.table().failure().is_none());
    engine.run_cycle();
    assert_eq!(dtw.table().num_rows(), 2);
}

#[test]
fn unsupported_column_type_is_refused_at_creation() {
    let engine = manual_engine();
    let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("xs", list.clone(), true),
    ]));
    let err = engine
        .dynamic_table_writer("t", schema, DynamicWriterOptions::default())
        .unwrap_err();
    match err {
        Error::UnsupportedType { column, data_type } => {
            assert_eq!(column, "xs");
            assert_eq!(data_type, list);
        }
        other => panic!("expected UnsupportedType, got {other:?}"),
    }
    assert!(engine.table("t").is_none(), "no table was created");
    // The name is still free.
    int_writer(&engine);
}

#[test]
fn row_writer_after_engine_shutdown_is_refused() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    drop(engine);
    assert_eq!(
        values(dtw.table()),
        vec![1],
        "the final cycle applied the row"
    );
    assert!(matches!(
        w.write_row(&[Value::Int(2)]),
        Err(Error::EngineShutDown)
    ));
    assert!(matches!(dtw.row_writer(), Err(Error::EngineShutDown)));
    assert!(matches!(
        dtw.write_row(&[Value::Int(3)]),
        Err(Error::EngineShutDown)
    ));
}

#[test]
fn ring_writer_table_keeps_the_newest_rows() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "t",
            int_schema(),
            DynamicWriterOptions::default().with_kind(TableKind::Ring { capacity: 2 }),
        )
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    for i in 0..5 {
        w.write_row(&[Value::Int(i)]).unwrap();
    }
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![3, 4]);
}

#[test]
fn commit_after_close_is_refused_rather_than_silently_dropping_the_rows() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    dtw.close();
    let result = w.commit();
    engine.run_cycle();
    // Either the commit is refused, or its rows are applied: never Ok and lost.
    if result.is_ok() {
        assert_eq!(
            values(dtw.table()),
            vec![1],
            "commit returned Ok after close but its rows were never applied"
        );
    } else {
        assert!(
            matches!(result, Err(Error::TableClosed { .. })),
            "{result:?}"
        );
        assert_eq!(dtw.table().num_rows(), 0);
    }
}

#[test]
fn commit_after_engine_shutdown_is_refused_rather_than_silently_dropping_the_rows() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.begin().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    drop(engine);
    let result = w.commit();
    assert!(
        matches!(result, Err(Error::EngineShutDown)),
        "commit after shutdown returned {result:?}; its rows can never be applied"
    );
    assert_eq!(dtw.table().num_rows(), 0);
}

#[test]
fn zero_column_schema_is_refused_or_works() {
    let engine = manual_engine();
    let schema = Arc::new(Schema::empty());
    match engine.dynamic_table_writer("empty", schema, DynamicWriterOptions::default()) {
        Err(e) => assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}"),
        Ok(dtw) => {
            dtw.write_row(&[]).unwrap();
            let cycle = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                engine.run_cycle();
            }));
            assert!(
                cycle.is_ok(),
                "a row of a zero-column table panicked the cycle"
            );
            assert_eq!(dtw.table().num_rows(), 1);
        }
    }
}

#[test]
fn write_rows_applies_all_rows_in_one_cycle_or_none() {
    let engine = manual_engine();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    let rows: Vec<[Value<'_>; 1]> = (0..5).map(|v| [Value::Int(v)]).collect();
    let refs: Vec<&[Value<'_>]> = rows.iter().map(|r| &r[..]).collect();
    w.write_rows(&refs).unwrap();
    assert_eq!(
        dtw.table().num_rows(),
        0,
        "staged, not visible before the cycle"
    );
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 2, 3, 4]);

    let bad = [[Value::Int(5)], [Value::Str("six")], [Value::Int(7)]];
    let refs: Vec<&[Value<'_>]> = bad.iter().map(|r| &r[..]).collect();
    let err = w.write_rows(&refs).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    assert_eq!(w.staged_rows(), 0, "nothing of the refused call is staged");
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 2, 3, 4]);
}

#[test]
fn write_rows_past_the_staging_limit_is_refused_whole_in_manual_mode() {
    let engine = tickertable::Engine::builder()
        .manual()
        .staging_limit(3)
        .build()
        .unwrap();
    let dtw = int_writer(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_rows(&[&[Value::Int(0)], &[Value::Int(1)]]).unwrap();
    let err = w
        .write_rows(&[&[Value::Int(2)], &[Value::Int(3)]])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StagingFull {
                staged: 2,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1]);
    // A group larger than the whole limit can never fit: refused as too large, at once.
    let big: Vec<[Value<'_>; 1]> = (10..15).map(|v| [Value::Int(v)]).collect();
    let refs: Vec<&[Value<'_>]> = big.iter().map(|r| &r[..]).collect();
    let err = w.write_rows(&refs).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchTooLarge {
                rows: 5,
                limit: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(w.staged_rows(), 0);
    w.write_rows(&refs[..3]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![0, 1, 10, 11, 12]);
}
