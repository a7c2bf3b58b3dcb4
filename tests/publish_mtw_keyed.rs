//! The multithreaded writer into keyed tables: upserts and deletes from many threads land
//! with the last write per key winning, locally and over Flight; keyed-only operations and
//! options are checked.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arrow_array::{Array, Float64Array, Int64Array, StringArray};
use tickertable::test_util::{manual_engine, trade_schema};
use tickertable::{
    DynamicWriterOptions, Engine, Error, MultithreadedTableWriter, MultithreadedWriterOptions,
    PublisherOptions, Table, WriteTarget,
};
use tickertable::{TableKind, Value};

/// A keyed table of the trade schema (`Ts`, `Sym`, `Price`, `Size`), keyed by `Sym`.
fn keyed(engine: &Engine, name: &str) -> Table {
    engine
        .dynamic_table_writer(
            name,
            trade_schema(),
            DynamicWriterOptions::default().with_key(["Sym"]),
        )
        .unwrap()
        .table()
        .clone()
}

/// The table's rows by key: `Sym → (Ts, Price)`.
fn by_key(t: &Table) -> BTreeMap<String, (i64, f64)> {
    let mut out = BTreeMap::new();
    for b in t.snapshot().batches() {
        let ts = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let sym = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let px = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        for i in 0..b.num_rows() {
            let old = out.insert(sym.value(i).to_owned(), (ts.value(i), px.value(i)));
            assert!(old.is_none(), "one row per key");
        }
    }
    out
}

/// Each of `threads` threads owns the keys `k % threads == t` and writes `rounds` upserts per
/// key, deleting every seventh key after its last write. Returns the expected table.
fn write_from_threads(
    mtw: &Arc<MultithreadedTableWriter>,
    threads: usize,
    keys: usize,
    rounds: i64,
) -> BTreeMap<String, (i64, f64)> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mtw = mtw.clone();
            thread::spawn(move || {
                for round in 0..rounds {
                    for k in (t..keys).step_by(threads) {
                        let sym = format!("K{k}");
                        let ts = round * 1_000_000 + i64::try_from(k).unwrap();
                        #[allow(clippy::cast_precision_loss)]
                        let px = ts as f64 / 2.0;
                        mtw.insert(&[ts.into(), sym.as_str().into(), px.into(), 1i64.into()])
                            .unwrap();
                        if round == rounds - 1 && k % 7 == 0 {
                            mtw.delete(&[sym.as_str().into()]).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (0..keys)
        .filter(|k| k % 7 != 0)
        .map(|k| {
            let ts = (rounds - 1) * 1_000_000 + i64::try_from(k).unwrap();
            #[allow(clippy::cast_precision_loss)]
            let px = ts as f64 / 2.0;
            (format!("K{k}"), (ts, px))
        })
        .collect()
}

#[test]
fn many_threads_upsert_and_delete_and_the_last_write_per_key_wins() {
    let engine = manual_engine();
    let table = keyed(&engine, "q");
    let mtw = Arc::new(
        MultithreadedTableWriter::new(
            WriteTarget::Local(table.clone()),
            MultithreadedWriterOptions::default()
                .with_thread_count(3)
                .with_batch_size(97),
        )
        .unwrap(),
    );
    let want = write_from_threads(&mtw, 6, 2000, 5);
    let status = Arc::into_inner(mtw).unwrap().wait_for_completion();
    assert_eq!(status.failed_rows, 0);
    assert_eq!(
        status.sent_rows,
        2000 * 5 + (0..2000u64).filter(|k| k % 7 == 0).count() as u64
    );
    engine.run_cycle();
    assert_eq!(by_key(&table), want);
}

#[test]
fn keyed_rows_go_through_a_remote_server_too() {
    let engine = Engine::builder()
        .period(Duration::from_millis(5))
        .build()
        .unwrap();
    let table = keyed(&engine, "q");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let sink = WriteTarget::Remote {
        url: server.url(),
        table: "q".into(),
        token: None,
    };
    let mtw = Arc::new(
        MultithreadedTableWriter::new(
            sink,
            MultithreadedWriterOptions::default()
                .with_thread_count(2)
                .with_batch_size(500),
        )
        .unwrap(),
    );
    let want = write_from_threads(&mtw, 4, 1000, 3);
    let status = Arc::into_inner(mtw).unwrap().wait_for_completion();
    assert_eq!(status.failed_rows, 0);
    // Sent rows are staged on the server; the next whole cycle shows them.
    let step = engine.handle().step();
    while engine.handle().step().as_u64() <= step.as_u64() + 1 {
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(by_key(&table), want);
    server.shutdown();
}

#[test]
fn keyed_operations_and_options_are_checked() {
    let engine = manual_engine();
    let plain = engine
        .table_publisher("plain", trade_schema(), PublisherOptions::default())
        .unwrap()
        .0;
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(plain),
        MultithreadedWriterOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        mtw.delete(&[Value::Str("A")]),
        Err(Error::InvalidOp { .. })
    ));
    let table = keyed(&engine, "q");
    assert_eq!(table.kind(), TableKind::Keyed { capacity: None });
    let not_a_key = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default().with_partition_column("Price"),
    );
    assert!(matches!(not_a_key, Err(Error::InvalidOption { .. })));
    let mtw = MultithreadedTableWriter::new(
        WriteTarget::Local(table.clone()),
        MultithreadedWriterOptions::default().with_partition_column("Sym"),
    )
    .unwrap();
    assert!(matches!(
        mtw.delete(&[Value::Int(1)]),
        Err(Error::SchemaMismatch { .. })
    ));
    assert!(matches!(
        mtw.delete(&[]),
        Err(Error::ColumnCount {
            expected: 1,
            found: 0,
            ..
        })
    ));
    mtw.insert(&[1i64.into(), "A".into(), 1.0.into(), 1i64.into()])
        .unwrap();
    mtw.delete(&["A".into()]).unwrap();
    mtw.insert(&[2i64.into(), "B".into(), 2.0.into(), 1i64.into()])
        .unwrap();
    let status = mtw.wait_for_completion();
    assert_eq!((status.sent_rows, status.failed_rows), (3, 0));
    engine.run_cycle();
    let rows = by_key(&table);
    assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["B"]);
    assert!(table
        .snapshot()
        .batches()
        .all(|b| b.column(1).null_count() == 0));
}
