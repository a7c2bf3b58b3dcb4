//! Computing derived tables, case by case: what each operator shows after given cycles, what
//! a removal in a ring or keyed source does, errors, closing and failing with the source,
//! and serving over Flight.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tickertable::derive::Agg;
use tickertable::flight::Client;
use tickertable::test_util::manual_engine;
use tickertable::{
    Error, ErrorCode, Event, OwnedValue, PublisherOptions, Table, TableKind, TablePublisher,
};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, true),
        Field::new("Size", DataType::Int64, false),
    ]))
}

fn trades(rows: &[(&str, f64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .unwrap()
}

fn source(engine: &tickertable::Engine, kind: TableKind) -> (Table, TablePublisher) {
    let mut opts = PublisherOptions::default().with_kind(kind);
    if matches!(kind, TableKind::Keyed { .. }) {
        opts = opts.with_key(["Size"]);
    }
    engine.table_publisher("trades", schema(), opts).unwrap()
}

/// A table's rows in key order (keyed) or position order, as values.
fn rows(table: &Table) -> Vec<Vec<OwnedValue>> {
    let snap = table.snapshot();
    if table.key_columns().is_empty() {
        snap.iter_rows().map(|r| r.to_owned_values()).collect()
    } else {
        let rows = snap.rows_in_key_order().unwrap();
        rows.iter()
            .map(tickertable::RowRef::to_owned_values)
            .collect()
    }
}

fn v<T: Into<OwnedValue>>(x: T) -> OwnedValue {
    x.into()
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Blink);
    let last = engine.last_by("last", &t, &["Sym"]).unwrap();
    p.add(trades(&[("A", 1.0, 1), ("A", 2.0, 2)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&last), vec![vec![v("A"), v(2.0), v(2i64)]]);
}

#[test]
fn last_by_of_a_blink_table_keeps_each_keys_latest_row_across_cycles() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Blink);
    let last = engine.last_by("last", &t, &["Sym"]).unwrap();
    p.add(trades(&[("A", 1.0, 1), ("B", 5.0, 2)])).unwrap();
    engine.run_cycle();
    p.add(trades(&[("A", 3.0, 3)])).unwrap();
    engine.run_cycle();
    engine.run_cycle(); // the blink source empties; last_by keeps its rows
    assert_eq!(
        rows(&last),
        vec![vec![v("A"), v(3.0), v(3i64)], vec![v("B"), v(5.0), v(2i64)]]
    );
}

#[test]
fn last_by_of_a_ring_drops_a_key_whose_rows_were_all_evicted() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Ring { capacity: 2 });
    let last = engine.last_by("last", &t, &["Sym"]).unwrap();
    p.add(trades(&[("A", 1.0, 1), ("B", 2.0, 2)])).unwrap();
    engine.run_cycle();
    p.add(trades(&[("B", 3.0, 3)])).unwrap(); // evicts A's only row
    engine.run_cycle();
    assert_eq!(rows(&last), vec![vec![v("B"), v(3.0), v(3i64)]]);
}

#[test]
fn last_by_of_a_keyed_table_falls_back_to_the_next_row_when_the_latest_is_deleted() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Keyed { capacity: None });
    let last = engine.last_by("last", &t, &["Sym"]).unwrap();
    // Keyed by Size: rows land in slots 0, 1, 2.
    p.upsert(trades(&[("A", 1.0, 10), ("A", 2.0, 20), ("B", 9.0, 30)]))
        .unwrap();
    engine.run_cycle();
    assert_eq!(rows(&last)[0], vec![v("A"), v(2.0), v(20i64)]);
    let keys = Arc::new(Schema::new(vec![Field::new(
        "Size",
        DataType::Int64,
        false,
    )]));
    p.delete(RecordBatch::try_new(keys, vec![Arc::new(Int64Array::from(vec![20]))]).unwrap())
        .unwrap();
    engine.run_cycle();
    // Slot 1 now holds B's row (moved from the end), so A's latest is slot 0.
    assert_eq!(
        rows(&last),
        vec![
            vec![v("A"), v(1.0), v(10i64)],
            vec![v("B"), v(9.0), v(30i64)]
        ]
    );
}

#[test]
fn filter_of_a_keyed_table_lets_rows_enter_and_leave_as_values_change() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Keyed { capacity: None });
    let cheap = engine.filter("cheap", &t, "Price < 5").unwrap();
    assert_eq!(cheap.key_columns(), t.key_columns());
    p.upsert(trades(&[("A", 1.0, 10), ("B", 9.0, 20)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&cheap), vec![vec![v("A"), v(1.0), v(10i64)]]);
    p.upsert(trades(&[("A", 7.0, 10), ("B", 2.0, 20)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&cheap), vec![vec![v("B"), v(2.0), v(20i64)]]);
}

#[test]
fn filter_of_a_ring_drops_matching_rows_as_the_ring_evicts_them() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Ring { capacity: 3 });
    let big = engine.filter("big", &t, "Size >= 10").unwrap();
    p.add(trades(&[("A", 1.0, 10), ("B", 1.0, 1), ("C", 1.0, 20)]))
        .unwrap();
    engine.run_cycle();
    assert_eq!(big.snapshot().rows(), 0..2);
    p.add(trades(&[("D", 1.0, 2), ("E", 1.0, 30)])).unwrap(); // evicts A and B
    engine.run_cycle();
    assert_eq!(big.snapshot().rows(), 1..3);
    let syms: Vec<OwnedValue> = rows(&big).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(syms, vec![v("C"), v("E")]);
}

#[test]
fn agg_by_of_a_ring_retracts_evicted_rows_and_deletes_emptied_keys() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Ring { capacity: 3 });
    let aggs = [
        Agg::count(),
        Agg::sum("Size"),
        Agg::min("Price"),
        Agg::max("Price"),
        Agg::first("Price"),
        Agg::last("Price"),
        Agg::mean("Size"),
        Agg::weighted_mean("Price", "Size").with_name("VWAP"),
    ];
    let agg = engine.agg_by("agg", &t, &["Sym"], &aggs).unwrap();
    p.add(trades(&[("A", 4.0, 1), ("B", 1.0, 1), ("A", 2.0, 3)]))
        .unwrap();
    engine.run_cycle();
    assert_eq!(
        rows(&agg),
        vec![
            vec![
                v("A"),
                v(2i64),
                v(4i64),
                v(2.0),
                v(4.0),
                v(4.0),
                v(2.0),
                v(2.0),
                v(2.5)
            ],
            vec![
                v("B"),
                v(1i64),
                v(1i64),
                v(1.0),
                v(1.0),
                v(1.0),
                v(1.0),
                v(1.0),
                v(1.0)
            ],
        ]
    );
    p.add(trades(&[("A", 3.0, 1), ("A", 6.0, 2)])).unwrap(); // evicts A(4.0) and B
    engine.run_cycle();
    assert_eq!(
        rows(&agg),
        vec![vec![
            v("A"),
            v(3i64),
            v(6i64),
            v(2.0),
            v(6.0),
            v(2.0),
            v(6.0),
            v(2.0),
            v(21.0 / 6.0)
        ]]
    );
}

#[test]
fn keyless_agg_by_is_one_row_over_the_whole_source_and_empty_without_rows() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Ring { capacity: 2 });
    let aggs = [Agg::count(), Agg::sum("Size"), Agg::max("Price")];
    let agg = engine.agg_by("agg", &t, &[], &aggs).unwrap();
    assert_eq!(agg.kind(), TableKind::Ring { capacity: 1 });
    assert!(agg.key_columns().is_empty());
    assert_eq!(rows(&agg), Vec::<Vec<OwnedValue>>::new());
    p.add(trades(&[("A", 4.0, 1), ("B", 1.0, 2)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&agg), vec![vec![v(2i64), v(3i64), v(4.0)]]);
    p.add(trades(&[("C", 2.0, 5)])).unwrap(); // evicts A
    engine.run_cycle();
    assert_eq!(rows(&agg), vec![vec![v(2i64), v(7i64), v(2.0)]]);
}

#[test]
fn keyless_agg_by_of_a_keyed_source_retracts_and_empties_when_all_rows_are_deleted() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Keyed { capacity: None });
    let agg = engine
        .agg_by("agg", &t, &[], &[Agg::count(), Agg::sum("Price")])
        .unwrap();
    p.add(trades(&[("A", 4.0, 1), ("B", 1.0, 2)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&agg), vec![vec![v(2i64), v(5.0)]]);
    p.add(trades(&[("A", 3.0, 1)])).unwrap(); // upsert of Size 1
    engine.run_cycle();
    assert_eq!(rows(&agg), vec![vec![v(2i64), v(4.0)]]);
    p.delete(trades(&[("A", 0.0, 1), ("B", 0.0, 2)])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(&agg), Vec::<Vec<OwnedValue>>::new());
}

#[test]
fn keyless_bars_are_one_series_with_one_open_bar() {
    let engine = manual_engine();
    let schema = Arc::new(Schema::new(vec![
        Field::new("Ts", DataType::Int64, false),
        Field::new("Size", DataType::Int64, false),
    ]));
    let (t, p) = engine
        .table_publisher("ticks", schema.clone(), PublisherOptions::default())
        .unwrap();
    let bars = engine
        .bars(
            "bars",
            &t,
            "Ts",
            Duration::from_nanos(10),
            &[],
            &[Agg::sum("Size")],
        )
        .unwrap();
    assert_eq!(bars.open().kind(), TableKind::Ring { capacity: 1 });
    let ticks = |ts: Vec<i64>, sizes: Vec<i64>| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ts)),
                Arc::new(Int64Array::from(sizes)),
            ],
        )
        .unwrap()
    };
    p.add(ticks(vec![1, 5, 12], vec![1, 2, 4])).unwrap();
    engine.run_cycle();
    assert_eq!(rows(bars.closed()), vec![vec![v(0i64), v(3i64)]]);
    assert_eq!(rows(bars.open()), vec![vec![v(10i64), v(4i64)]]);
    p.add(ticks(vec![15, 31], vec![8, 16])).unwrap();
    engine.run_cycle();
    assert_eq!(
        rows(bars.closed()),
        vec![vec![v(0i64), v(3i64)], vec![v(10i64), v(12i64)]]
    );
    assert_eq!(rows(bars.open()), vec![vec![v(30i64), v(16i64)]]);
}

#[test]
fn bars_close_per_key_when_a_later_bar_starts_and_drop_late_rows() {
    let engine = manual_engine();
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "Ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, false),
        Field::new("Size", DataType::Int64, false),
    ]));
    let (t, p) = engine
        .table_publisher("ticks", schema.clone(), PublisherOptions::default())
        .unwrap();
    let aggs = [
        Agg::first("Price").with_name("Open"),
        Agg::max("Price").with_name("High"),
        Agg::min("Price").with_name("Low"),
        Agg::last("Price").with_name("Close"),
        Agg::sum("Size").with_name("Volume"),
        Agg::count(),
    ];
    let bars = engine
        .bars("bars", &t, "Ts", Duration::from_secs(1), &["Sym"], &aggs)
        .unwrap();
    assert_eq!(bars.closed().kind(), TableKind::Append);
    assert_eq!(bars.open().kind(), TableKind::Keyed { capacity: None });
    let ticks = |rows: &[(i64, &str, f64, i64)]| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(arrow_array::TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|r| r.0),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
            ],
        )
        .unwrap()
    };
    p.add(ticks(&[
        (100, "A", 10.0, 1),
        (900, "A", 12.0, 2),
        (200, "B", 5.0, 7),
    ]))
    .unwrap();
    engine.run_cycle();
    assert_eq!(bars.closed().num_rows(), 0);
    p.add(ticks(&[(1500, "A", 11.0, 4), (950, "A", 99.0, 9)]))
        .unwrap(); // the second is late
    engine.run_cycle();
    assert_eq!(
        rows(bars.closed()),
        vec![vec![
            v("A"),
            v(0i64),
            v(10.0),
            v(12.0),
            v(10.0),
            v(12.0),
            v(3i64),
            v(2i64)
        ]]
    );
    assert_eq!(
        rows(bars.open()),
        vec![
            vec![
                v("A"),
                v(1000i64),
                v(11.0),
                v(11.0),
                v(11.0),
                v(11.0),
                v(4i64),
                v(1i64)
            ],
            vec![
                v("B"),
                v(0i64),
                v(5.0),
                v(5.0),
                v(5.0),
                v(5.0),
                v(7i64),
                v(1i64)
            ],
        ]
    );
}

#[test]
fn a_predicate_that_does_not_bind_is_an_expr_error() {
    let engine = manual_engine();
    let (t, _p) = source(&engine, TableKind::Append);
    let err = engine.filter("f", &t, "Sym > 3").unwrap_err();
    assert!(matches!(err, Error::Expr(_)), "{err:?}");
    assert_eq!(err.code(), ErrorCode::Expr);
    assert_eq!(err.to_string(), "at 4: cannot apply '>' to Utf8 and Int64");
    let err = engine.filter("f", &t, "Size +").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Expr);
    let err = engine.filter("f", &t, "Size").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Expr, "not boolean: {err}");
    assert!(engine.table("f").is_none(), "nothing was made");
}

#[test]
fn bad_keys_and_aggregates_are_refused() {
    let engine = manual_engine();
    let (t, _p) = source(&engine, TableKind::Append);
    assert!(matches!(
        engine.last_by("x", &t, &["Nope"]),
        Err(Error::NoColumnNamed { .. })
    ));
    assert!(matches!(
        engine.agg_by("x", &t, &[], &[]),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        engine.agg_by("x", &t, &["Sym"], &[Agg::sum("Sym")]),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        engine.agg_by(
            "x",
            &t,
            &["Sym"],
            &[Agg::sum("Size"), Agg::count().with_name("sum_Size")]
        ),
        Err(Error::InvalidOption { .. })
    ));
    assert!(matches!(
        engine.bars("x", &t, "Size", Duration::from_nanos(0), &["Sym"], &[]),
        Err(Error::InvalidOption { .. })
    ));
    let (keyed, _kp) = engine
        .table_publisher("k", schema(), PublisherOptions::default().with_key(["Sym"]))
        .unwrap();
    assert!(matches!(
        engine.bars("x", &keyed, "Size", Duration::from_secs(1), &["Sym"], &[]),
        Err(Error::InvalidOption { .. })
    ));
    assert!(engine.table("x").is_none());
}

#[test]
fn derived_tables_start_with_the_sources_rows_and_take_no_writes() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Append);
    p.add(trades(&[("A", 1.0, 1), ("B", 2.0, 2), ("A", 3.0, 3)]))
        .unwrap();
    engine.run_cycle();
    let agg = engine.agg_by("agg", &t, &["Sym"], &[Agg::count()]).unwrap();
    assert_eq!(
        rows(&agg),
        vec![vec![v("A"), v(2i64)], vec![v("B"), v(1i64)]]
    );
    assert!(agg.is_derived());
    let writer = tickertable::MultithreadedTableWriter::new(
        tickertable::WriteTarget::Local(agg.clone()),
        tickertable::MultithreadedWriterOptions::default(),
    );
    assert!(
        matches!(writer, Err(Error::DerivedTable { .. })),
        "{writer:?}"
    );
}

#[test]
fn derived_tables_fail_with_their_source_and_chains_close_together() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Blink);
    let agg = engine.agg_by("agg", &t, &["Sym"], &[Agg::count()]).unwrap();
    let big = engine.filter("big", &agg, "count > 1").unwrap();
    let bars = engine
        .bars(
            "bars",
            &t,
            "Size",
            Duration::from_nanos(10),
            &["Sym"],
            &[Agg::count()],
        )
        .unwrap();
    let sub = big.subscribe().unwrap();
    let open_sub = bars.open().subscribe().unwrap();
    p.add(trades(&[("A", 1.0, 1), ("A", 2.0, 2)])).unwrap();
    p.publish_failure_message("feed lost");
    engine.run_cycle();
    for table in [&agg, &big, bars.closed(), bars.open()] {
        assert!(table.failure().is_some(), "{} failed", table.name());
    }
    // The last rows arrive first, then the failure.
    let events: Vec<Event> = std::iter::from_fn(|| sub.try_recv().ok()).collect();
    assert!(
        matches!(events[1], Event::Update(ref u) if u.num_added() == 1),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
    let events: Vec<Event> = std::iter::from_fn(|| open_sub.try_recv().ok()).collect();
    assert!(
        matches!(events.last(), Some(Event::Failed(_))),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_tables_are_served_over_flight() {
    let engine = manual_engine();
    let (t, p) = source(&engine, TableKind::Blink);
    let last = engine.last_by("last", &t, &["Sym"]).unwrap();
    engine
        .agg_by("agg", &t, &["Sym"], &[Agg::sum("Size")])
        .unwrap();
    p.add(trades(&[("A", 1.0, 1), ("B", 2.0, 2), ("A", 3.0, 3)]))
        .unwrap();
    engine.run_cycle();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let names: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["trades", "last", "agg"]);
    let listed = client.table("last").await.unwrap();
    assert_eq!(listed.kind, TableKind::Keyed { capacity: None });
    assert_eq!(listed.key, vec!["Sym".to_owned()]);
    let snap = client.snapshot("last").await.unwrap();
    let n: usize = snap.batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n, last.num_rows());
    server.shutdown();
}
