//! Bad input is refused with a structured error, and nothing of it is applied, while good
//! input around it is.

mod support;

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tickertable::test_util::{
    i64_column, int_batch, int_schema, manual_engine, trade_batch, trade_schema,
};
use tickertable::{
    DynamicTableWriter, DynamicWriterOptions, EngineHandle, Error, PublisherOptions, TableKind,
    TablePublisher, TryPublishError, Value,
};

use support::{add, int_table, values};

fn batch_of(fields: Vec<Field>, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("valid batch")
}

fn int64(values: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

fn trade_table(engine: &EngineHandle) -> (tickertable::Table, TablePublisher) {
    engine
        .table_publisher(
            "trades",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .expect("create table")
}

fn int_dtw(engine: &EngineHandle) -> DynamicTableWriter {
    engine
        .dynamic_table_writer("rows", int_schema(), DynamicWriterOptions::default())
        .expect("create table")
}

fn trade_dtw(engine: &EngineHandle) -> DynamicTableWriter {
    engine
        .dynamic_table_writer(
            "trade_rows",
            trade_schema(),
            DynamicWriterOptions::default(),
        )
        .expect("create table")
}

/// Stages a refused batch between two good ones through `add`, and the same through
/// `try_add`; returns the error `add` gave. The table must end up with exactly the good rows.
fn refused_between_good_batches(bad: &RecordBatch) -> Error {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..2);
    let err = publisher.add(bad.clone()).expect_err("bad batch refused");
    match publisher.try_add(bad.clone()) {
        Err(TryPublishError::Invalid(back, e)) => {
            assert_eq!(&back, bad, "try_add gives the batch back");
            assert_eq!(e.to_string(), err.to_string());
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    add(&publisher, 2..4);
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1, 2, 3]);
    assert_eq!(table.snapshot().rows(), 0..4);
    err
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let bad = batch_of(
        vec![Field::new("v", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec!["x"]))],
    );
    assert!(publisher.add(bad).is_err());
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
}

#[test]
fn batch_with_too_many_columns_is_refused_with_column_count() {
    let bad = batch_of(
        vec![
            Field::new("v", DataType::Int64, false),
            Field::new("w", DataType::Int64, false),
        ],
        vec![int64(&[9]), int64(&[9])],
    );
    let err = refused_between_good_batches(&bad);
    assert!(
        matches!(err, Error::ColumnCount { ref table, expected: 1, found: 2 } if table == "t"),
        "{err:?}"
    );
}

#[test]
fn batch_with_too_few_columns_is_refused_with_column_count() {
    let engine = manual_engine();
    let (table, publisher) = trade_table(&engine);
    let bad = batch_of(
        vec![Field::new("Ts", DataType::Int64, false)],
        vec![int64(&[1])],
    );
    publisher.add(trade_batch(0, 2)).unwrap();
    let err = publisher.add(bad).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ColumnCount {
                expected: 4,
                found: 1,
                ..
            }
        ),
        "{err:?}"
    );
    engine.run_cycle();
    assert_eq!(i64_column(table.snapshot().batches(), 0), vec![0, 1]);
}

#[test]
fn batch_with_a_wrong_type_is_refused_with_schema_mismatch() {
    let bad = batch_of(
        vec![Field::new("v", DataType::Int32, false)],
        vec![Arc::new(Int32Array::from(vec![9, 9]))],
    );
    let err = refused_between_good_batches(&bad);
    match err {
        Error::SchemaMismatch {
            table,
            column,
            expected,
            found,
        } => {
            assert_eq!(table, "t");
            assert_eq!(column, "v");
            assert_eq!(expected, DataType::Int64);
            assert_eq!(found, DataType::Int32);
        }
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
}

#[test]
fn batch_with_a_wrong_type_in_a_later_column_names_that_column() {
    let engine = manual_engine();
    let (table, publisher) = trade_table(&engine);
    let good = trade_batch(0, 3);
    let mut fields: Vec<Field> = trade_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[3] = Field::new("Size", DataType::Utf8, false);
    let mut columns = good.columns().to_vec();
    columns[3] = Arc::new(StringArray::from(vec!["a", "b", "c"]));
    let bad = batch_of(fields, columns);
    let err = publisher.add(bad).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaMismatch { column, expected: DataType::Int64, found: DataType::Utf8, .. } if column == "Size"),
        "{err:?}"
    );
    publisher.add(trade_batch(10, 1)).unwrap();
    engine.run_cycle();
    assert_eq!(i64_column(table.snapshot().batches(), 0), vec![10]);
}

#[test]
fn batch_with_a_timestamp_of_another_unit_is_refused() {
    let engine = manual_engine();
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
        "ts",
        DataType::Timestamp(TimeUnit::Nanosecond, None),
        false,
    )]));
    let (table, publisher) = engine
        .table_publisher(
            "ts",
            schema.clone(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let bad = batch_of(
        vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        )],
        vec![Arc::new(TimestampMillisecondArray::from(vec![1]))],
    );
    let err = publisher.add(bad).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SchemaMismatch {
                found: DataType::Timestamp(TimeUnit::Millisecond, None),
                ..
            }
        ),
        "{err:?}"
    );
    let good = RecordBatch::try_new(
        schema,
        vec![Arc::new(TimestampNanosecondArray::from(vec![5]))],
    )
    .unwrap();
    publisher.add(good).unwrap();
    engine.run_cycle();
    assert_eq!(table.num_rows(), 1);
}

#[test]
fn batch_with_a_wrong_column_name_is_refused_with_column_name() {
    let bad = batch_of(
        vec![Field::new("w", DataType::Int64, false)],
        vec![int64(&[9])],
    );
    let err = refused_between_good_batches(&bad);
    match err {
        Error::ColumnName {
            table,
            index,
            expected,
            found,
        } => {
            assert_eq!(table, "t");
            assert_eq!(index, 0);
            assert_eq!(expected, "v");
            assert_eq!(found, "w");
        }
        other => panic!("expected ColumnName, got {other:?}"),
    }
}

#[test]
fn batch_with_columns_in_another_order_is_refused_with_column_name() {
    let engine = manual_engine();
    let (table, publisher) = trade_table(&engine);
    let good = trade_batch(0, 1);
    let schema = trade_schema();
    let fields = vec![
        schema.field(1).clone(),
        schema.field(0).clone(),
        schema.field(2).clone(),
        schema.field(3).clone(),
    ];
    let columns = vec![
        good.column(1).clone(),
        good.column(0).clone(),
        good.column(2).clone(),
        good.column(3).clone(),
    ];
    let err = publisher.add(batch_of(fields, columns)).unwrap_err();
    assert!(
        matches!(&err, Error::ColumnName { index: 0, expected, found, .. } if expected == "Ts" && found == "Sym"),
        "{err:?}"
    );
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
}

#[test]
fn batch_with_a_null_in_a_non_nullable_column_is_refused() {
    let bad = batch_of(
        vec![Field::new("v", DataType::Int64, true)],
        vec![Arc::new(Int64Array::from(vec![Some(9), None]))],
    );
    let err = refused_between_good_batches(&bad);
    assert!(
        matches!(&err, Error::NullInNonNullable { table, column } if table == "t" && column == "v"),
        "{err:?}"
    );
}

#[test]
fn batch_declared_nullable_without_nulls_is_accepted_under_the_tables_schema() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    let ok = batch_of(
        vec![Field::new("v", DataType::Int64, true)],
        vec![int64(&[1, 2])],
    );
    publisher.add(ok).unwrap();
    engine.run_cycle();
    assert_eq!(values(&table), vec![1, 2]);
    let snap = table.snapshot();
    let stored = snap.batches().next().unwrap();
    assert_eq!(
        stored.schema(),
        *table.schema(),
        "chunks carry the table's schema"
    );
}

#[test]
fn add_after_the_table_failed_is_refused_and_applies_nothing() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "t", TableKind::Append);
    add(&publisher, 0..2);
    publisher.publish_failure(std::io::Error::other("gone"));
    assert!(matches!(
        publisher.add(int_batch([7])),
        Err(Error::TableClosed { ref table }) if table == "t"
    ));
    engine.run_cycle();
    assert_eq!(values(&table), vec![0, 1]);
}

#[test]
fn row_with_the_wrong_number_of_values_is_refused_with_column_count() {
    let engine = manual_engine();
    let dtw = int_dtw(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    let err = w.write_row(&[Value::Int(2), Value::Int(3)]).unwrap_err();
    assert!(
        matches!(err, Error::ColumnCount { ref table, expected: 1, found: 2 } if table == "rows"),
        "{err:?}"
    );
    let err = w.write_row(&[]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ColumnCount {
                expected: 1,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
    w.write_row(&[Value::Int(4)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 4]);
}

#[test]
fn row_with_a_wrong_type_is_refused_with_schema_mismatch() {
    let engine = manual_engine();
    let dtw = trade_dtw(&engine);
    let mut w = dtw.row_writer().unwrap();
    let good = |i: i64| {
        [
            Value::Int(i),
            Value::Str("A"),
            Value::Float(1.0),
            Value::Int(1),
        ]
    };
    w.write_row(&good(1)).unwrap();
    let cases: [(usize, Value<'_>, &str, DataType, DataType); 5] = [
        (0, Value::Str("x"), "Ts", DataType::Int64, DataType::Utf8),
        (
            0,
            Value::Float(1.5),
            "Ts",
            DataType::Int64,
            DataType::Float64,
        ),
        (1, Value::Int(3), "Sym", DataType::Utf8, DataType::Int64),
        (
            1,
            Value::Bytes(b"x"),
            "Sym",
            DataType::Utf8,
            DataType::Binary,
        ),
        (
            3,
            Value::Bool(true),
            "Size",
            DataType::Int64,
            DataType::Boolean,
        ),
    ];
    for (index, value, column, expected, found) in cases {
        let mut row = good(99);
        row[index] = value;
        match w.write_row(&row).unwrap_err() {
            Error::SchemaMismatch {
                table,
                column: c,
                expected: e,
                found: f,
            } => {
                assert_eq!(table, "trade_rows");
                assert_eq!((c.as_str(), &e, &f), (column, &expected, &found));
            }
            other => panic!("expected SchemaMismatch for {value:?}, got {other:?}"),
        }
        assert!(matches!(
            w.set(index, value).map(|_| ()),
            Err(Error::SchemaMismatch { .. })
        ));
    }
    w.write_row(&good(2)).unwrap();
    engine.run_cycle();
    let snap = dtw.table().snapshot();
    assert_eq!(i64_column(snap.batches(), 0), vec![1, 2]);
    assert_eq!(i64_column(snap.batches(), 3), vec![1, 1]);
}

#[test]
fn refused_row_leaves_no_partial_values_behind() {
    // A row whose last value is bad must not leave its first values in the builders: the next
    // good row must land whole and aligned.
    let engine = manual_engine();
    let dtw = trade_dtw(&engine);
    let mut w = dtw.row_writer().unwrap();
    assert!(w
        .write_row(&[
            Value::Int(100),
            Value::Str("BAD"),
            Value::Float(1.0),
            Value::Str("x")
        ])
        .is_err());
    w.write_row(&[
        Value::Int(7),
        Value::Str("OK"),
        Value::Float(2.0),
        Value::Int(3),
    ])
    .unwrap();
    engine.run_cycle();
    let batch = dtw.table().snapshot().to_batch().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(i64_column([&batch], 0), vec![7]);
    assert_eq!(i64_column([&batch], 3), vec![3]);
}

#[test]
fn row_with_a_null_in_a_non_nullable_column_is_refused() {
    let engine = manual_engine();
    let dtw = int_dtw(&engine);
    dtw.write_row(&[Value::Int(1)]).unwrap();
    let err = dtw.write_row(&[Value::Null]).unwrap_err();
    assert!(
        matches!(&err, Error::NullInNonNullable { table, column } if table == "rows" && column == "v"),
        "{err:?}"
    );
    dtw.write_row(&[Value::Int(2)]).unwrap();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1, 2]);
}

#[test]
fn row_value_out_of_range_is_refused_with_value_out_of_range() {
    let engine = manual_engine();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "small",
        DataType::Int16,
        false,
    )]));
    let dtw = engine
        .dynamic_table_writer("small", schema, DynamicWriterOptions::default())
        .unwrap();
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    match w.write_row(&[Value::Int(40_000)]).unwrap_err() {
        Error::ValueOutOfRange {
            table,
            column,
            expected,
            value,
        } => {
            assert_eq!(table, "small");
            assert_eq!(column, "small");
            assert_eq!(expected, DataType::Int16);
            assert_eq!(value, "40000");
        }
        other => panic!("expected ValueOutOfRange, got {other:?}"),
    }
    w.write_row(&[Value::Int(-32_768)]).unwrap();
    engine.run_cycle();
    let batch = dtw.table().snapshot().to_batch().unwrap();
    let col = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::Int16Array>()
        .unwrap();
    assert_eq!(col.values(), &[1, -32_768]);
}

#[test]
fn row_after_close_is_refused_with_table_closed() {
    let engine = manual_engine();
    let dtw = int_dtw(&engine);
    let mut w = dtw.row_writer().unwrap();
    w.write_row(&[Value::Int(1)]).unwrap();
    dtw.close();
    let err = w.write_row(&[Value::Int(2)]).unwrap_err();
    assert!(
        matches!(&err, Error::TableClosed { table } if table == "rows"),
        "{err:?}"
    );
    assert!(matches!(
        dtw.write_row(&[Value::Int(3)]),
        Err(Error::TableClosed { .. })
    ));
    engine.run_cycle();
    engine.run_cycle();
    assert_eq!(values(dtw.table()), vec![1]);
}

#[test]
fn errors_display_the_table_column_and_types() {
    let engine = manual_engine();
    let (_t, publisher) = int_table(&engine, "prices", TableKind::Append);
    let bad = batch_of(
        vec![Field::new("v", DataType::Utf8, false)],
        vec![Arc::new(StringArray::from(vec!["x"]))],
    );
    let text = publisher.add(bad).unwrap_err().to_string();
    assert!(text.contains("prices") && text.contains("\"v\""), "{text}");
    assert!(text.contains("Int64") && text.contains("Utf8"), "{text}");
}
