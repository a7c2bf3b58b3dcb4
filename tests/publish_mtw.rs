//! The multithreaded table writer: routing and order, bad rows, flush modes, back-pressure,
//! and local and remote sinks that fail transiently or for good.

mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use support::Cycler;
use tickertable::flight::FlightOptions;
use tickertable::test_util::{i64_column, manual_engine, trade_schema};
use tickertable::{
    DynamicWriterOptions, Engine, Error, FlushMode, MultithreadedTableWriter,
    MultithreadedWriterOptions, PublisherOptions, Table, TableKind, TableUpdate, Value,
    WriteTarget,
};

fn append_table(engine: &Engine, name: &str) -> Table {
    engine
        .dynamic_table_writer(name, trade_schema(), DynamicWriterOptions::default())
        .expect("create table")
        .table()
        .clone()
}

fn row(ts: i64, sym: &str) -> [Value<'_>; 4] {
    [ts.into(), sym.into(), 1.5.into(), 100i64.into()]
}

#[test]
fn smoke() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default(),
    )
    .unwrap();
    for i in 0..10 {
        mtw.insert(&row(i, "A")).unwrap();
    }
    let status = mtw.wait_for_completion();
    assert_eq!(
        (status.sent_rows, status.unsent_rows, status.failed_rows),
        (10, 0, 0)
    );
    engine.run_cycle();
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn many_threads_lose_no_row_and_keep_order_per_partition_value() {
    const INSERTERS: i64 = 8;
    const ROWS: i64 = 5_000;
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let options = MultithreadedWriterOptions::default()
        .with_thread_count(3)
        .with_batch_size(512)
        .with_throttle(Duration::from_millis(1))
        .with_partition_column("Sym");
    let mtw = Arc::new(
        MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap(),
    );
    let cycles = Cycler::start(engine.handle());
    let threads: Vec<_> = (0..INSERTERS)
        .map(|t| {
            let mtw = mtw.clone();
            thread::spawn(move || {
                // Each inserter owns two symbols; Ts = thread * ROWS + sequence.
                let syms = [format!("T{t}a"), format!("T{t}b")];
                for i in 0..ROWS {
                    let ts = t * ROWS + i;
                    let sym = &syms[usize::try_from(i % 2).unwrap()];
                    mtw.insert(&row(ts, sym)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mtw = Arc::into_inner(mtw).unwrap();
    let status = mtw.wait_for_completion();
    drop(cycles);
    engine.run_cycle();
    assert_eq!(status.sent_rows, u64::try_from(INSERTERS * ROWS).unwrap());
    assert_eq!(status.threads.len(), 3);
    let snap = table.snapshot();
    let ts = i64_column(snap.batches(), 0);
    let batch = snap.to_batch().unwrap();
    let syms = batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    let mut sorted = ts.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..INSERTERS * ROWS).collect::<Vec<_>>(),
        "no loss, no dup"
    );
    let mut last: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (i, t) in ts.iter().enumerate() {
        let prev = last.insert(syms.value(i), *t);
        assert!(
            prev.is_none_or(|p| p < *t),
            "order kept for {}",
            syms.value(i)
        );
    }
}

#[test]
fn a_bad_row_is_refused_at_insert_and_never_blocks_good_rows() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default(),
    )
    .unwrap();
    mtw.insert(&row(1, "A")).unwrap();
    let err = mtw
        .insert(&[2i64.into(), "A".into(), "cheap".into(), 1i64.into()])
        .unwrap_err();
    match err {
        Error::SchemaMismatch {
            column,
            expected,
            found,
            ..
        } => {
            assert_eq!(column, "Price");
            assert_eq!(expected, arrow_schema::DataType::Float64);
            assert_eq!(found, arrow_schema::DataType::Utf8);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(matches!(
        mtw.insert(&[1i64.into()]),
        Err(Error::ColumnCount {
            expected: 4,
            found: 1,
            ..
        })
    ));
    mtw.insert(&row(3, "A")).unwrap();
    assert!(!mtw.wait_for_completion().has_error());
    engine.run_cycle();
    assert_eq!(i64_column(table.snapshot().batches(), 0), vec![1, 3]);
}

#[test]
fn sync_mode_returns_once_the_row_is_staged() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let options = MultithreadedWriterOptions::default()
        .with_flush_mode(FlushMode::Sync)
        .with_throttle(Duration::from_secs(3600));
    let mtw = MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap();
    mtw.insert(&row(7, "A")).unwrap();
    engine.run_cycle();
    assert_eq!(
        table.num_rows(),
        1,
        "the row was staged before insert returned"
    );
}

#[test]
fn manual_mode_sends_only_on_flush_and_a_full_buffer_refuses_try_insert() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let options = MultithreadedWriterOptions::default()
        .with_flush_mode(FlushMode::Manual)
        .with_max_buffered_rows(5)
        .with_batch_size(2);
    let mtw = MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap();
    for i in 0..5 {
        mtw.try_insert(&row(i, "A")).unwrap();
    }
    assert!(matches!(
        mtw.try_insert(&row(5, "A")),
        Err(tickertable::publish::TryInsertError::Full)
    ));
    assert_eq!(mtw.status().unsent_rows, 5);
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0, "nothing sent before flush");
    mtw.flush().unwrap();
    let status = mtw.status();
    assert_eq!((status.sent_rows, status.unsent_rows), (5, 0));
    engine.run_cycle();
    assert_eq!(table.num_rows(), 5);
}

#[test]
fn a_local_sink_with_full_staging_is_retried_until_every_row_lands() {
    let engine = Engine::builder()
        .manual()
        .staging_limit(50)
        .build()
        .unwrap();
    let table = append_table(&engine, "t");
    let options = MultithreadedWriterOptions::default()
        .with_batch_size(40)
        .with_base_delay(Duration::from_millis(1))
        .with_max_retries(1000);
    let mtw = MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap();
    let cycles = Cycler::start(engine.handle());
    for i in 0..2_000 {
        mtw.insert(&row(i, "A")).unwrap();
    }
    let status = mtw.wait_for_completion();
    drop(cycles);
    engine.run_cycle();
    assert_eq!((status.sent_rows, status.failed_rows), (2_000, 0));
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..2_000).collect::<Vec<_>>()
    );
}

#[test]
fn a_remote_sink_that_refuses_at_first_ends_with_every_row_written() {
    // A staging limit of 30 rows on the server: puts are refused with RESOURCE_EXHAUSTED
    // (transient) until a cycle drains staging.
    let engine = Engine::builder()
        .manual()
        .staging_limit(30)
        .build()
        .unwrap();
    let table = append_table(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let sink = WriteTarget::Remote {
        url: server.url(),
        table: "t".into(),
        token: None,
    };
    let options = MultithreadedWriterOptions::default()
        .with_thread_count(2)
        .with_partition_column("Sym")
        .with_batch_size(25)
        .with_base_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(20))
        .with_max_retries(500);
    let mtw = MultithreadedTableWriter::new(sink, options).unwrap();
    for i in 0..300 {
        mtw.insert(&row(i, if i % 2 == 0 { "A" } else { "B" }))
            .unwrap();
    }
    let cycles = Cycler::start(engine.handle());
    let status = mtw.wait_for_completion();
    drop(cycles);
    engine.run_cycle();
    assert_eq!(
        (status.sent_rows, status.failed_rows, status.unsent_rows),
        (300, 0, 0)
    );
    let mut ts = i64_column(table.snapshot().batches(), 0);
    ts.sort_unstable();
    assert_eq!(ts, (0..300).collect::<Vec<_>>());
}

#[test]
fn a_remote_sink_that_fails_for_good_hands_back_every_row_for_a_new_writer() {
    let engine = manual_engine();
    let (_doomed, publisher) = engine
        .table_publisher(
            "doomed",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let rescue = append_table(&engine, "rescue");
    let server = engine
        .serve_flight_with("127.0.0.1:0", FlightOptions::default().with_token("tok"))
        .unwrap();
    let sink = WriteTarget::Remote {
        url: server.url(),
        table: "doomed".into(),
        token: Some("tok".into()),
    };
    let options = MultithreadedWriterOptions::default()
        .with_flush_mode(FlushMode::Manual)
        .with_batch_size(10);
    let mtw = MultithreadedTableWriter::new(sink, options).unwrap();
    publisher.publish_failure(std::io::Error::other("feed closed"));
    engine.run_cycle();
    for i in 0..25 {
        mtw.insert(&row(i, "A")).unwrap();
    }
    let err = mtw.flush().unwrap_err();
    assert!(
        matches!(err, Error::MultithreadedWriterClosed { .. }),
        "{err}"
    );
    let status = mtw.wait_for_completion();
    assert!(status.is_exiting);
    let last = status.last_error().cloned().unwrap();
    assert_eq!(last.code, tickertable::ErrorCode::TableClosed, "{last:?}");
    assert_eq!(status.failed_rows + status.unsent_rows, 25);
    assert!(
        mtw.insert(&row(99, "A")).is_err(),
        "a writer that gave up takes no rows"
    );

    let unwritten = mtw.unwritten_data();
    assert_eq!(
        unwritten
            .iter()
            .map(arrow_array::RecordBatch::num_rows)
            .sum::<usize>(),
        25
    );
    let again = MultithreadedTableWriter::new(
        WriteTarget::Local(rescue.clone()),
        MultithreadedWriterOptions::default(),
    )
    .unwrap();
    again.insert_unwritten(unwritten).unwrap();
    assert_eq!(again.wait_for_completion().sent_rows, 25);
    engine.run_cycle();
    assert_eq!(
        i64_column(rescue.snapshot().batches(), 0),
        (0..25).collect::<Vec<_>>()
    );
}

#[test]
fn a_remote_sink_needs_a_reachable_server_and_an_existing_table() {
    let engine = manual_engine();
    append_table(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let missing = WriteTarget::Remote {
        url: server.url(),
        table: "nope".into(),
        token: None,
    };
    let err =
        MultithreadedTableWriter::new(missing, MultithreadedWriterOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                kind: tickertable::RemoteErrorKind::NotFound,
                ..
            }
        ),
        "{err}"
    );
    let url = server.url();
    drop(server);
    let gone = WriteTarget::Remote {
        url,
        table: "t".into(),
        token: None,
    };
    let err =
        MultithreadedTableWriter::new(gone, MultithreadedWriterOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                kind: tickertable::RemoteErrorKind::Unavailable,
                ..
            }
        ),
        "{err}"
    );
}

/// The row count of every batch a table receives, in order.
fn batch_sizes(table: &Table) -> (tickertable::ListenerHandle, Arc<Mutex<Vec<usize>>>) {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let sink = sizes.clone();
    let handle = table
        .listen(move |u: &TableUpdate| {
            sink.lock()
                .extend(u.batches().iter().map(arrow_array::RecordBatch::num_rows));
        })
        .expect("listen");
    (handle, sizes)
}

#[test]
fn batch_size_caps_every_batch_a_manual_flush_sends() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let (_listener, sizes) = batch_sizes(&table);
    let options = MultithreadedWriterOptions::default()
        .with_flush_mode(FlushMode::Manual)
        .with_batch_size(3);
    let mtw = MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap();
    for i in 0..20 {
        mtw.insert(&row(i, "A")).unwrap();
    }
    mtw.flush().unwrap();
    engine.run_cycle();
    let sizes = sizes.lock().clone();
    assert!(sizes.iter().all(|&n| (1..=3).contains(&n)), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 20);
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..20).collect::<Vec<_>>()
    );
}

#[test]
fn batch_size_caps_every_batch_the_background_threads_send() {
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let (_listener, sizes) = batch_sizes(&table);
    // A throttle of an hour: only full batches go out before completion, and rows pile up
    // behind the one being sent.
    let options = MultithreadedWriterOptions::default()
        .with_thread_count(2)
        .with_partition_column("Sym")
        .with_throttle(Duration::from_secs(3600))
        .with_batch_size(3);
    let mtw = MultithreadedTableWriter::new(WriteTarget::Local(table.clone()), options).unwrap();
    for i in 0..2_000 {
        mtw.insert(&row(i, if i % 3 == 0 { "A" } else { "B" }))
            .unwrap();
    }
    let status = mtw.wait_for_completion();
    assert_eq!(status.sent_rows, 2_000);
    engine.run_cycle();
    let sizes = sizes.lock().clone();
    assert!(sizes.iter().all(|&n| (1..=3).contains(&n)), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 2_000);
}

#[test]
fn a_writer_shared_by_ten_threads_writes_every_row_once_and_then_refuses_rows() {
    const INSERTERS: i64 = 10;
    const ROWS: i64 = 100;
    let engine = manual_engine();
    let table = append_table(&engine, "t");
    let mtw = Arc::new(
        MultithreadedTableWriter::new(
            WriteTarget::Local(table.clone()),
            MultithreadedWriterOptions::default().with_thread_count(5),
        )
        .unwrap(),
    );
    let barrier = Arc::new(std::sync::Barrier::new(10));
    let threads: Vec<_> = (0..INSERTERS)
        .map(|t| {
            let mtw = mtw.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                for i in 0..ROWS {
                    mtw.insert(&row(t * ROWS + i, "A")).unwrap();
                }
                // Once every inserter is done, one of them completes the writer (`&self`).
                barrier
                    .wait()
                    .is_leader()
                    .then(|| mtw.wait_for_completion())
            })
        })
        .collect();
    let mut statuses: Vec<_> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(statuses.len(), 1);
    let status = statuses.pop().unwrap();
    assert_eq!(status.threads.len(), 5);
    assert_eq!(
        status.threads.iter().map(|t| t.sent_rows).sum::<u64>(),
        1_000
    );
    assert_eq!(
        status.threads.iter().map(|t| t.routed_rows).sum::<u64>(),
        1_000
    );
    assert_eq!(
        (status.sent_rows, status.unsent_rows, status.failed_rows),
        (1_000, 0, 0)
    );
    assert!(!status.has_error());
    assert_eq!(
        mtw.wait_for_completion(),
        status,
        "a second call: the same status"
    );

    let err = mtw.insert(&row(5_000, "A")).unwrap_err();
    assert!(
        matches!(err, Error::MultithreadedWriterClosed { .. }),
        "{err}"
    );
    assert_eq!(err.code(), tickertable::ErrorCode::WriterClosed);
    assert!(matches!(
        mtw.try_insert(&row(5_001, "A")),
        Err(tickertable::publish::TryInsertError::Refused(
            Error::MultithreadedWriterClosed { .. }
        ))
    ));

    engine.run_cycle();
    let mut ts = i64_column(table.snapshot().batches(), 0);
    ts.sort_unstable();
    assert_eq!(ts, (0..INSERTERS * ROWS).collect::<Vec<_>>());
}

/// `Sym` (utf8, not null), `Px` (f64, null), `Qty` (i64, null), `Venue` (utf8, not null).
fn named_schema() -> arrow_schema::SchemaRef {
    use arrow_schema::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Px", DataType::Float64, true),
        Field::new("Qty", DataType::Int64, true),
        Field::new("Venue", DataType::Utf8, false),
    ]))
}

/// The rows of a `named_schema()` table, sorted by `Sym`.
fn named_rows(table: &Table) -> Vec<(String, Option<f64>, Option<i64>, String)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::Array;
    let mut out = Vec::new();
    for b in table.snapshot().batches() {
        let sym = b.column(0).as_string::<i32>();
        let px = b.column(1).as_primitive::<Float64Type>();
        let qty = b.column(2).as_primitive::<Int64Type>();
        let venue = b.column(3).as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((
                sym.value(i).to_owned(),
                px.is_valid(i).then(|| px.value(i)),
                qty.is_valid(i).then(|| qty.value(i)),
                venue.value(i).to_owned(),
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn named_writer(
    engine: &Engine,
    options: DynamicWriterOptions,
) -> (Table, MultithreadedTableWriter) {
    let table = engine
        .dynamic_table_writer("t", named_schema(), options)
        .expect("create table")
        .table()
        .clone();
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default().with_thread_count(2),
    )
    .expect("start the writer");
    (table, mtw)
}

#[test]
fn insert_named_into_an_append_table_leaves_the_other_columns_null() {
    let engine = manual_engine();
    let (table, mtw) = named_writer(&engine, DynamicWriterOptions::default());
    mtw.insert_named(&[("Venue", "X".into()), ("Sym", "A".into())])
        .unwrap();
    mtw.insert_named(&[
        ("Sym", "B".into()),
        ("Qty", 7i64.into()),
        ("Venue", "Y".into()),
    ])
    .unwrap();

    let err = mtw
        .insert_named(&[("Sym", "C".into()), ("Px", 1.0.into())])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NullInNonNullable { column, .. } if column == "Venue"),
        "{err}"
    );
    let err = mtw
        .insert_named(&[
            ("Sym", "C".into()),
            ("Venue", "Z".into()),
            ("Bid", 1.0.into()),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoColumnNamed { column, .. } if column == "Bid"),
        "{err}"
    );
    let err = mtw
        .insert_named(&[
            ("Sym", "C".into()),
            ("Venue", "Z".into()),
            ("Sym", "D".into()),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidOp { .. }), "{err}");
    let err = mtw
        .insert_named(&[("Sym", "C".into()), ("Venue", 3i64.into())])
        .unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");

    let status = mtw.wait_for_completion();
    assert_eq!((status.sent_rows, status.failed_rows), (2, 0));
    engine.run_cycle();
    assert_eq!(
        named_rows(&table),
        vec![
            ("A".into(), None, None, "X".into()),
            ("B".into(), None, Some(7), "Y".into()),
        ]
    );
}

#[test]
fn insert_named_into_a_keyed_table_is_a_partial_upsert() {
    let engine = manual_engine();
    let (table, mtw) = named_writer(&engine, DynamicWriterOptions::default().with_key(["Sym"]));
    mtw.insert(&["A".into(), 1.0.into(), 10i64.into(), "X".into()])
        .unwrap();
    mtw.flush().unwrap();
    engine.run_cycle();
    // A's price and venue, its quantity kept; a new key B with its non-nullable venue.
    mtw.insert_named(&[
        ("Px", 2.0.into()),
        ("Sym", "A".into()),
        ("Venue", "W".into()),
    ])
    .unwrap();
    mtw.insert_named(&[("Sym", "B".into()), ("Venue", "Y".into())])
        .unwrap();

    let err = mtw
        .insert_named(&[("Px", 3.0.into()), ("Venue", "Z".into())])
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingKeyColumn { column, .. } if column == "Sym"),
        "{err}"
    );
    let err = mtw
        .insert_named(&[("Sym", "C".into()), ("Qty", 1i64.into())])
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnsetColumn { column, .. } if column == "Venue"),
        "{err}"
    );
    // As `TablePublisher::upsert`: only nullable columns may be left out, even for a key
    // that has a value for them.
    let err = mtw
        .insert_named(&[("Sym", "A".into()), ("Qty", 1i64.into())])
        .unwrap_err();
    assert!(matches!(err, Error::UnsetColumn { .. }), "{err}");

    mtw.flush().unwrap();
    engine.run_cycle();
    assert_eq!(
        named_rows(&table),
        vec![
            ("A".into(), Some(2.0), Some(10), "W".into()),
            ("B".into(), None, None, "Y".into()),
        ]
    );
}
