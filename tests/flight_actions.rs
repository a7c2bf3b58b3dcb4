//! Table management on an embedded engine's Flight server, stepped by hand: `create_table`
//! (idempotent, clashes, refused unless the server allows it), `drop_table` (listeners,
//! subscriptions and live streams end with `table_dropped`; the name is free again),
//! `stats`, `EngineHandle::table_stats`, append limits, and a draining server whose live
//! streams end with `server_stopping` after the last cycle.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tickertable::flight::{Client, CreateTable, FlightOptions, RemoteSubscription};
use tickertable::test_util::{i64_column, int_batch, int_schema, manual_engine, trade_schema};
use tickertable::{Error, ErrorCode, Event, Listener, PublisherOptions, TableKind, TableUpdate};

const HANG_GUARD: Duration = Duration::from_secs(20);

fn managed() -> FlightOptions {
    FlightOptions::default().with_table_management(true)
}

/// Reads a live stream until it ends: the values it carried and how it ended.
async fn to_end(sub: &mut RemoteSubscription) -> (Vec<i64>, Option<Error>) {
    let mut values = Vec::new();
    loop {
        match tokio::time::timeout(HANG_GUARD, sub.next())
            .await
            .expect("hang guard")
        {
            Some(Ok(m)) => values.extend(m.batch.iter().flat_map(|b| i64_column([b], 0))),
            Some(Err(e)) => return (values, Some(e)),
            None => return (values, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let engine = manual_engine();
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let create = CreateTable::new("xs", int_schema()).with_kind(TableKind::Append);
    assert!(client.create_table(&create).await.unwrap());
    assert_eq!(engine.table("xs").unwrap().kind(), TableKind::Append);
}

#[test]
fn create_table_bodies_round_trip_and_bad_ones_say_why() {
    let create = CreateTable::new("k", trade_schema())
        .with_kind(TableKind::Keyed { capacity: Some(9) })
        .with_key(["Sym"]);
    assert_eq!(
        CreateTable::from_json(&create.to_json().unwrap()).unwrap(),
        create
    );
    let limited = CreateTable::new("a", int_schema())
        .with_kind(TableKind::Append)
        .with_limit(5);
    assert_eq!(
        CreateTable::from_json(&limited.to_json().unwrap()).unwrap(),
        limited
    );
    for (body, why) in [
        ("nope", "not JSON"),
        ("{}", "\"name\""),
        (r#"{"name": "t", "kind": "ring", "schema": ""}"#, "capacity"),
        (
            r#"{"name": "t", "kind": "cube", "schema": ""}"#,
            "unknown kind",
        ),
        (
            r#"{"name": "t", "kind": "blink", "options": {"limit": 3}, "schema": ""}"#,
            "limit",
        ),
        (r#"{"name": "t", "kind": "blink"}"#, "\"schema\""),
        (
            r#"{"name": "t", "kind": "blink", "schema": "!!"}"#,
            "base64",
        ),
        (
            r#"{"name": "t", "kind": "blink", "schema": "AAAA"}"#,
            "IPC schema",
        ),
        (
            r#"{"name": "t", "kind": "blink", "options": {"durable": "yes"}, "schema": ""}"#,
            "options.durable",
        ),
    ] {
        let e = CreateTable::from_json(body).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidOption, "{body}");
        assert!(e.to_string().contains(why), "{body}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_create_table_comes_back_with_its_rows_when_created_again_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("tickertable-actions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let create = CreateTable::new("xs", int_schema())
        .with_kind(TableKind::Append)
        .durable();
    assert!(
        CreateTable::from_json(&create.to_json().unwrap())
            .unwrap()
            .durability()
            == tickertable::Durability::Log
    );
    {
        let engine = tickertable::Engine::builder()
            .manual()
            .data_dir(&dir)
            .build()
            .unwrap();
        let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
        let mut client = Client::connect(&server.url()).await.unwrap();
        assert!(client.create_table(&create).await.unwrap());
        assert!(engine.table("xs").unwrap().is_durable());
        // Not durable: a different table.
        let plain = CreateTable::new("xs", int_schema()).with_kind(TableKind::Append);
        let e = client.create_table(&plain).await.unwrap_err();
        assert!(e.to_string().contains("not durable"), "{e}");
        client.publish("xs", vec![int_batch(0..4)]).await.unwrap();
        engine.run_cycle();
        server.shutdown();
    }
    let engine = tickertable::Engine::builder()
        .manual()
        .data_dir(&dir)
        .build()
        .unwrap();
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    assert!(client.create_table(&create).await.unwrap());
    let snap = client.snapshot("xs").await.unwrap();
    assert_eq!(
        (snap.rows, i64_column(&snap.batches, 0)),
        (0..4, vec![0, 1, 2, 3])
    );
    let stats = client.stats().await.unwrap();
    assert_eq!(stats["log"]["replayed_rows"], 4, "{stats}");
    let xs = &stats["tables"][0];
    assert_eq!(
        (xs["durable"].clone(), xs["log"]["replayed_rows"].clone()),
        (true.into(), 4.into())
    );
    server.shutdown();
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);

    // Without a data directory a durable create is refused, saying why.
    let engine = manual_engine();
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let e = client.create_table(&create).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption, "{e}");
    assert!(e.to_string().contains("no data directory"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_create_is_a_no_op_and_a_different_one_is_refused() {
    let engine = manual_engine();
    let (_, publisher) = engine
        .table_publisher(
            "xs",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    publisher.add(int_batch(0..3)).unwrap();
    engine.run_cycle();
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let same = CreateTable::new("xs", int_schema()).with_kind(TableKind::Append);
    assert!(!client.create_table(&same).await.unwrap());
    assert_eq!(engine.table("xs").unwrap().num_rows(), 3, "left as it was");
    for (other, differs) in [
        (
            CreateTable::new("xs", int_schema()).with_kind(TableKind::Blink),
            "kind",
        ),
        (
            CreateTable::new("xs", int_schema())
                .with_kind(TableKind::Append)
                .with_limit(10),
            "limit",
        ),
        (
            CreateTable::new("xs", trade_schema()).with_kind(TableKind::Append),
            "schema",
        ),
    ] {
        let e = client.create_table(&other).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::TableExists, "{e}");
        assert!(
            matches!(&e, Error::Remote { kind, message, .. }
                if *kind == tickertable::RemoteErrorKind::AlreadyExists && message.contains(differs)),
            "{e}"
        );
    }
    // Locally the same clash is a structured error.
    let local = CreateTable::new("xs", int_schema())
        .with_kind(TableKind::Blink)
        .apply(&engine)
        .unwrap_err();
    assert!(matches!(local, Error::TableConflict { .. }), "{local}");
    assert_eq!(local.code(), ErrorCode::TableExists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_management_is_refused_unless_the_server_allows_it() {
    let engine = manual_engine();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(client.list_actions().await.unwrap(), ["stats"]);
    let create = CreateTable::new("xs", int_schema());
    let e = client.create_table(&create).await.unwrap_err();
    assert!(
        e.to_string().contains("does not let clients manage tables"),
        "{e}"
    );
    assert!(engine.table("xs").is_none());
    assert!(client.stats().await.unwrap()["tables"].is_array());
}

/// A listener that records the codes of the failures it gets.
struct Failures(Arc<Mutex<Vec<ErrorCode>>>);

impl Listener for Failures {
    fn on_update(&mut self, _: &TableUpdate) {}

    fn on_failure(&mut self, error: &Error) {
        self.0.lock().push(error.code());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_table_ends_listeners_subscriptions_and_live_streams_with_a_reason() {
    let engine = manual_engine();
    let (trades, publisher) = engine
        .table_publisher("src", int_schema(), PublisherOptions::default())
        .unwrap();
    let ring = engine.ring_table("ring", &trades, 4).unwrap();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = failures.clone();
    let _listener = ring.listen(Failures(seen)).unwrap();
    let local = ring.subscribe().unwrap();
    assert!(matches!(local.recv(), Some(Event::Snapshot(_))));
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut live = client.subscribe("ring").await.unwrap();
    live.next().await.unwrap().unwrap();
    publisher.add(int_batch(0..6)).unwrap();
    engine.run_cycle();

    let dropped = client.drop_table("src").await.unwrap();
    assert_eq!(dropped, ["src", "ring"]);
    let (values, end) = to_end(&mut live).await;
    assert_eq!(values, [2, 3, 4, 5], "the update before the drop arrived");
    let end = end.unwrap();
    assert_eq!(end.code(), ErrorCode::TableDropped, "{end}");
    assert!(end.to_string().contains("\"ring\" was dropped"), "{end}");
    assert_eq!(*failures.lock(), [ErrorCode::TableDropped]);
    let mut events = Vec::new();
    while let Some(e) = local.recv() {
        events.push(e);
    }
    assert!(
        matches!(events.last(), Some(Event::Failed(e)) if e.code() == ErrorCode::TableDropped),
        "{events:?}"
    );
    // Handles still held refer to the dropped tables.
    assert!(trades.is_closed() && ring.is_closed());
    assert_eq!(
        publisher.add(int_batch(0..1)).unwrap_err().code(),
        ErrorCode::TableClosed
    );
    assert!(engine.table("src").is_none() && engine.tables().is_empty());
    // Dropping again: no such table. The name is free.
    let e = client.drop_table("src").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TableMissing, "{e}");
    let again = CreateTable::new("src", trade_schema()).with_kind(TableKind::Append);
    assert!(client.create_table(&again).await.unwrap());
    assert_eq!(engine.table("src").unwrap().schema(), &trade_schema());
}

#[test]
fn table_stats_count_rows_staged_added_removed_and_consumers() {
    let engine = manual_engine();
    let (ring, publisher) = engine
        .table_publisher(
            "r",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Ring { capacity: 3 }),
        )
        .unwrap();
    let _sub = ring.subscribe().unwrap();
    publisher.add(int_batch(0..5)).unwrap();
    let before = engine.table_stats(&ring);
    assert_eq!(
        (before.staged_rows, before.rows, before.subscriptions),
        (5, 0, 1)
    );
    engine.run_cycle();
    let after = engine.table_stats(&ring);
    assert_eq!(after.staged_rows, 0);
    assert_eq!(after.rows, 3);
    assert_eq!(
        after.rows_added, 3,
        "rows evicted in the same cycle never showed"
    );
    assert_eq!(after.step, engine.step());
    publisher.add(int_batch(5..7)).unwrap();
    engine.run_cycle();
    let later = engine.table_stats(&ring);
    assert_eq!(
        (later.rows, later.rows_added, later.rows_removed),
        (3, 5, 2)
    );
}

#[test]
fn an_append_limit_stops_taking_rows_and_only_append_tables_have_one() {
    let engine = manual_engine();
    let (t, p) = engine
        .table_publisher(
            "a",
            int_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Append)
                .with_limit(4),
        )
        .unwrap();
    p.add(int_batch(0..3)).unwrap();
    engine.run_cycle();
    p.add(int_batch(3..6)).unwrap();
    engine.run_cycle();
    assert_eq!(i64_column(t.snapshot().batches(), 0), [0, 1, 2, 3]);
    assert_eq!(engine.table_stats(&t).rows_dropped, 2);
    assert_eq!(t.capacity(), Some(4));
    let e = engine
        .table_publisher(
            "b",
            int_schema(),
            PublisherOptions::default()
                .with_kind(TableKind::Blink)
                .with_limit(4),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidOption, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_reports_steps_cycles_tables_and_refused_puts() {
    let engine = manual_engine();
    let (t, p) = engine
        .table_publisher(
            "xs",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    p.add(int_batch(0..10)).unwrap();
    engine.run_cycle();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    client
        .publish("xs", vec![tickertable::test_util::trade_batch(0, 1)])
        .await
        .unwrap_err();
    let s = client.stats().await.unwrap();
    assert_eq!(s["step"], engine.step().as_u64());
    assert_eq!(s["cycles"], 1);
    assert_eq!(s["server"]["refused_puts"]["schema"], 1);
    assert_eq!(server.stats().refused_puts, [(ErrorCode::Schema, 1)]);
    let table = &s["tables"][0];
    assert_eq!(table["name"], "xs");
    assert_eq!(table["rows"], 10);
    assert_eq!(table["rows_added"], 10);
    assert_eq!(table["step"], t.snapshot().step().as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_server_refuses_new_calls_and_ends_live_streams_after_the_last_cycle() {
    let engine = manual_engine();
    let (_, _publisher) = engine
        .table_publisher(
            "xs",
            int_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let server = engine.serve_flight_with("127.0.0.1:0", managed()).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut live = client.subscribe("xs").await.unwrap();
    live.next().await.unwrap().unwrap();
    assert_eq!(
        client.publish("xs", vec![int_batch(0..8)]).await.unwrap(),
        8
    );
    assert_eq!(
        engine.table("xs").unwrap().num_rows(),
        0,
        "staged, no cycle yet"
    );

    let server = tokio::task::spawn_blocking(move || {
        assert!(server.drain(HANG_GUARD), "no DoPut in progress");
        server
    })
    .await
    .unwrap();
    assert!(server.is_draining());
    let e = client
        .publish("xs", vec![int_batch(8..9)])
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    let engine = tokio::task::spawn_blocking(move || {
        engine.shutdown();
    });
    engine.await.unwrap();
    let (values, end) = to_end(&mut live).await;
    assert_eq!(
        values,
        (0..8).collect::<Vec<_>>(),
        "the last cycle's rows first"
    );
    let end = end.unwrap();
    assert_eq!(end.code(), ErrorCode::ServerStopping, "{end}");
    assert!(end.is_transient());
    tokio::task::spawn_blocking(move || server.shutdown())
        .await
        .unwrap();
}
