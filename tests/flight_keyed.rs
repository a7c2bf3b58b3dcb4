//! Keyed tables over Flight: a live remote mirror follows upserts, partial upserts and deletes
//! exactly (modified rows, a shrinking and growing table); `DoPut` upserts and deletes, and
//! bad keyed input is refused with nothing applied.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use tickertable::flight::{Client, RemoteSubscription};
use tickertable::test_util::manual_engine;
use tickertable::{PublisherOptions, RemoteErrorKind, Table, TableKind, TablePublisher};

const HANG_GUARD: Duration = Duration::from_secs(20);

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Bid", DataType::Float64, true),
        Field::new("Ask", DataType::Float64, true),
        Field::new("Seq", DataType::Int64, true),
    ]))
}

fn quotes(rows: &[(String, f64, f64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
        ],
    )
    .unwrap()
}

fn bids(rows: &[(String, f64)]) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Bid", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        s,
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .unwrap()
}

fn syms(names: &[String]) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)]));
    RecordBatch::try_new(
        s,
        vec![Arc::new(StringArray::from_iter_values(
            names.iter().map(String::as_str),
        ))],
    )
    .unwrap()
}

fn keyed(engine: &tickertable::Engine, capacity: Option<usize>) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            "quotes",
            schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Keyed { capacity })
                .with_key(["Sym"]),
        )
        .unwrap()
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&schema(), batches).unwrap()
}

/// Reads the live stream until the mirror is at the table's step and rows, then compares
/// every row, in order.
async fn catch_up(sub: &mut RemoteSubscription, table: &Table) {
    let want = table.snapshot();
    tokio::time::timeout(HANG_GUARD, async {
        while !(sub.step() == want.step() && sub.rows() == want.rows()) {
            sub.next()
                .await
                .expect("stream open")
                .expect("message applies");
        }
    })
    .await
    .expect("hang guard: the remote mirror catches up");
    let want: Vec<RecordBatch> = want.batches().cloned().collect();
    assert_eq!(concat(&sub.batches()), concat(&want));
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[allow(clippy::cast_precision_loss)] // small keys and steps
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_mirror_follows_upserts_partial_upserts_and_deletes() {
    for capacity in [None, Some(700)] {
        let engine = manual_engine();
        let (table, p) = keyed(&engine, capacity);
        let server = engine.serve_flight("127.0.0.1:0").unwrap();
        let mut client = Client::connect(&server.url()).await.unwrap();
        let listed = client.table("quotes").await.unwrap();
        assert_eq!(listed.kind, TableKind::Keyed { capacity });
        assert_eq!(listed.key, vec!["Sym".to_owned()]);
        let mut sub = client.subscribe("quotes").await.unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for step in 0..40i64 {
            let n = 1 + rng.next(600);
            let full: Vec<(String, f64, f64, i64)> = (0..n)
                .map(|_| {
                    let k = rng.next(2000);
                    (format!("S{k}"), k as f64, k as f64 + 0.5, step)
                })
                .collect();
            p.upsert(quotes(&full)).unwrap();
            let partial: Vec<(String, f64)> = (0..rng.next(200))
                .map(|_| (format!("S{}", rng.next(2000)), -(step as f64)))
                .collect();
            p.upsert(bids(&partial)).unwrap();
            // Some cycles delete far more than they insert, so the table shrinks.
            let deletes = if step % 5 == 4 { 1500 } else { rng.next(300) };
            let gone: Vec<String> = (0..deletes)
                .map(|_| format!("S{}", rng.next(2000)))
                .collect();
            p.delete(syms(&gone)).unwrap();
            engine.run_cycle();
            catch_up(&mut sub, &table).await;
        }
        assert_eq!(sub.resets(), 1, "no resynchronisation was needed");
        server.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_put_upserts_and_deletes_and_refuses_bad_keyed_input() {
    let engine = tickertable::Engine::builder()
        .period(Duration::from_millis(10))
        .build()
        .unwrap();
    let (table, _p) = keyed(&engine, None);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let rows = |syms: &[&str]| -> Vec<(String, f64, f64, i64)> {
        syms.iter()
            .map(|s| ((*s).to_owned(), 1.0, 2.0, 0))
            .collect()
    };
    client
        .publish("quotes", vec![quotes(&rows(&["A", "B", "C"]))])
        .await
        .unwrap();
    client
        .publish("quotes", vec![bids(&[("B".into(), 9.0)])])
        .await
        .unwrap();
    client
        .delete("quotes", syms(&["C".into(), "Z".into()]))
        .await
        .unwrap();
    // A partial upsert without the key, and a delete without the key: refused whole.
    let no_key = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "Bid",
            DataType::Float64,
            true,
        )])),
        vec![Arc::new(Float64Array::from(vec![1.0]))],
    )
    .unwrap();
    for bad in [
        client.publish("quotes", vec![no_key.clone()]).await,
        client.delete("quotes", no_key).await,
    ] {
        match bad {
            Err(tickertable::Error::Remote { kind, .. }) => {
                assert_eq!(kind, RemoteErrorKind::InvalidArgument);
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let snap = table.snapshot();
            if snap.num_rows() == 2 {
                let all = concat(&snap.batches().cloned().collect::<Vec<_>>());
                let sym = all
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                let bid = all
                    .column(1)
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap();
                let mut got: Vec<(String, f64)> = (0..2)
                    .map(|i| (sym.value(i).to_owned(), bid.value(i)))
                    .collect();
                got.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(got, vec![("A".to_owned(), 1.0), ("B".to_owned(), 9.0)]);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("hang guard: the puts apply");
    // Deletes into a table that is not keyed are refused.
    let (_plain, _pp) = engine
        .table_publisher("plain", schema(), PublisherOptions::default())
        .unwrap();
    match client.delete("plain", syms(&["A".into()])).await {
        Err(tickertable::Error::Remote { kind, .. }) => {
            assert_eq!(kind, RemoteErrorKind::InvalidArgument);
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    server.shutdown();
}
