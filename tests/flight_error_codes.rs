//! One classification of errors: the same bad batch refused by a local `TablePublisher::add`
//! and by a remote `Client::publish` to a served engine gives the same `Error::code`.

#![allow(
    clippy::unwrap_used,
    reason = "a test's helpers panic on the unexpected, as its #[test] fns do"
)]

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use tickertable::flight::Client;
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{
    Engine, Error, ErrorCode, MultithreadedTableWriter, MultithreadedWriterOptions,
    PublisherOptions, TableKind, TablePublisher, WriteTarget,
};

/// The staging limit of the served engine.
const LIMIT: usize = 5;

fn engine() -> Engine {
    Engine::builder()
        .manual()
        .staging_limit(LIMIT)
        .build()
        .unwrap()
}

fn append(engine: &Engine, name: &str) -> TablePublisher {
    engine
        .table_publisher(
            name,
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap()
        .1
}

/// Refuses `batch` locally and remotely; returns both errors after checking their codes
/// agree with `code`.
async fn both(
    publisher: &TablePublisher,
    client: &mut Client,
    batch: &RecordBatch,
    code: ErrorCode,
) -> (Error, Error) {
    let table = publisher.table().name().to_owned();
    let local = publisher.add(batch.clone()).unwrap_err();
    let remote = client
        .publish(&table, vec![batch.clone()])
        .await
        .unwrap_err();
    assert_eq!(local.code(), code, "local: {local}");
    assert_eq!(remote.code(), code, "remote: {remote}");
    assert_eq!(
        local.is_transient(),
        remote.is_transient(),
        "{local} / {remote}"
    );
    (local, remote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let engine = manual_engine();
    let publisher = append(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    publisher.add(trade_batch(0, 1)).unwrap();
    assert_eq!(
        client.publish("t", vec![trade_batch(1, 1)]).await.unwrap(),
        1
    );
    engine.run_cycle();
    assert_eq!(publisher.table().num_rows(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_does_not_fit_the_schema_is_schema_locally_and_remotely() {
    let engine = engine();
    let publisher = append(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let text_price = Arc::new(Schema::new(vec![
        Field::new("Ts", DataType::Int64, false),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Utf8, false),
        Field::new("Size", DataType::Int64, false),
    ]));
    let good = trade_batch(0, 2);
    let mut cols = good.columns().to_vec();
    cols[2] = Arc::new(StringArray::from(vec!["1.0"; 2]));
    let bad = RecordBatch::try_new(text_price, cols).unwrap();
    let (local, _) = both(&publisher, &mut client, &bad, ErrorCode::Schema).await;
    assert!(matches!(local, Error::SchemaMismatch { .. }), "{local}");
    engine.run_cycle();
    assert_eq!(publisher.table().num_rows(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_batch_without_its_key_column_is_schema_locally_and_remotely() {
    let engine = engine();
    // Every other column nullable, so leaving the key out is the only thing wrong.
    let schema = Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, true),
    ]));
    let (_table, publisher) = engine
        .table_publisher("k", schema, PublisherOptions::default().with_key(["Sym"]))
        .unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let no_key = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "Price",
            DataType::Float64,
            true,
        )])),
        vec![Arc::new(Float64Array::from(vec![1.0]))],
    )
    .unwrap();
    let (local, _) = both(&publisher, &mut client, &no_key, ErrorCode::Schema).await;
    assert!(
        matches!(&local, Error::MissingKeyColumn { column, .. } if column == "Sym"),
        "{local}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_staging_and_a_batch_over_the_limit_agree_locally_and_remotely() {
    let engine = engine();
    let publisher = append(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();

    let (local, remote) = both(
        &publisher,
        &mut client,
        &trade_batch(0, LIMIT + 1),
        ErrorCode::BatchTooLarge,
    )
    .await;
    assert!(matches!(local, Error::BatchTooLarge { .. }), "{local}");
    assert!(!remote.is_transient(), "too large is never retried");

    publisher.add(trade_batch(0, LIMIT - 1)).unwrap();
    let (local, remote) = both(
        &publisher,
        &mut client,
        &trade_batch(10, 2),
        ErrorCode::StagingFull,
    )
    .await;
    assert!(matches!(local, Error::StagingFull { .. }), "{local}");
    assert!(remote.is_transient(), "full staging is retried");
    engine.run_cycle();
    assert_eq!(publisher.table().num_rows(), LIMIT - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_table_is_table_closed_locally_and_remotely() {
    let engine = engine();
    let publisher = append(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    publisher.publish_failure_message("feed closed");
    engine.run_cycle();
    let (local, _) = both(
        &publisher,
        &mut client,
        &trade_batch(0, 1),
        ErrorCode::TableClosed,
    )
    .await;
    assert!(matches!(local, Error::TableClosed { .. }), "{local}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_table_is_table_closed_locally_and_remotely() {
    let engine = engine();
    let publisher = append(&engine, "t");
    let ring = engine.ring_table("ring", publisher.table(), 3).unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let local = MultithreadedTableWriter::new(
        WriteTarget::Local(ring),
        MultithreadedWriterOptions::default(),
    )
    .unwrap_err();
    let remote = client
        .publish("ring", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert!(matches!(local, Error::DerivedTable { .. }), "{local}");
    assert_eq!(local.code(), ErrorCode::TableClosed);
    assert_eq!(remote.code(), local.code(), "{remote}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_table_missing_locally_and_remotely() {
    let engine = engine();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    // Locally, a table of another engine is no table of this one.
    let other = manual_engine();
    let stranger = append(&other, "elsewhere");
    let local = engine.ring_table("ring", stranger.table(), 3).unwrap_err();
    let remote = client
        .publish("nope", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert!(matches!(local, Error::NoSuchTable { .. }), "{local}");
    assert_eq!(local.code(), ErrorCode::TableMissing);
    assert_eq!(remote.code(), local.code(), "{remote}");
    // The writer's own runtime cannot start inside this test's: build it on a blocking thread.
    let url = server.url();
    let remote_writer = tokio::task::spawn_blocking(move || {
        MultithreadedTableWriter::new(
            WriteTarget::Remote {
                url,
                table: "nope".into(),
                token: None,
            },
            MultithreadedWriterOptions::default(),
        )
        .unwrap_err()
    })
    .await
    .unwrap();
    assert_eq!(
        remote_writer.code(),
        ErrorCode::TableMissing,
        "{remote_writer}"
    );
}
