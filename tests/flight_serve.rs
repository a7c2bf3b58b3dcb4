//! The Flight service over a loopback port: listing, snapshots, live subscriptions (mirrored
//! exactly across many cycles and ring wraparound, at two speeds, with disconnects), `DoPut`,
//! authentication and the stream limit.

use std::time::Duration;

use tickertable::flight::{Client, FlightOptions, RemoteSubscription};
use tickertable::test_util::{i64_column, int_batch, manual_engine, trade_batch, trade_schema};
use tickertable::{
    DynamicWriterOptions, Engine, PublisherOptions, RemoteErrorKind, SubscriptionOptions, Table,
    TableKind, TablePublisher,
};

const HANG_GUARD: Duration = Duration::from_secs(20);

fn int_table(engine: &Engine, name: &str, kind: TableKind) -> (Table, TablePublisher) {
    engine
        .table_publisher(
            name,
            tickertable::test_util::int_schema(),
            PublisherOptions::default().with_kind(kind),
        )
        .expect("create table")
}

/// Reads the live stream until the mirror is at the table's current step and rows, then
/// checks every value.
async fn catch_up(sub: &mut RemoteSubscription, table: &Table) {
    catch_up_rows(sub, table).await;
    assert_eq!(
        i64_column(&sub.batches(), 0),
        i64_column(table.snapshot().batches(), 0)
    );
}

/// Reads the live stream until the mirror is at the table's current step and rows.
async fn catch_up_rows(sub: &mut RemoteSubscription, table: &Table) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "xs", TableKind::Append);
    publisher.add(int_batch(0..10)).unwrap();
    engine.run_cycle();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let snap = client.snapshot("xs").await.unwrap();
    assert_eq!(snap.rows, 0..10);
    assert_eq!(i64_column(&snap.batches, 0), (0..10).collect::<Vec<_>>());
    assert_eq!(snap.step, table.snapshot().step());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_table_with_kind_rows_and_schema() {
    let engine = manual_engine();
    let (trades, p) = engine
        .table_publisher("trades", trade_schema(), PublisherOptions::default())
        .unwrap();
    engine.ring_table("last5", &trades, 5).unwrap();
    engine
        .dynamic_table_writer("quotes", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    p.add(trade_batch(0, 8)).unwrap();
    engine.run_cycle();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let tables = client.list().await.unwrap();
    let summary: Vec<_> = tables
        .iter()
        .map(|t| (t.name.as_str(), t.kind, t.num_rows))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("trades", TableKind::Blink, 8),
            ("last5", TableKind::Ring { capacity: 5 }, 5),
            ("quotes", TableKind::Append, 0)
        ]
    );
    assert_eq!(tables[0].schema, trade_schema());
    let err = client.table("nope").await.unwrap_err();
    assert!(matches!(
        err,
        tickertable::Error::Remote {
            kind: RemoteErrorKind::NotFound,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_info_lists_the_snapshot_ticket_then_the_live_ticket() {
    let engine = manual_engine();
    int_table(&engine, "xs", TableKind::Blink);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.local_addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut raw = arrow_flight::FlightClient::new(channel);
    let info = raw
        .get_flight_info(arrow_flight::FlightDescriptor::new_path(vec!["xs".into()]))
        .await
        .unwrap();
    let tickets: Vec<_> = info
        .endpoint
        .iter()
        .map(|e| String::from_utf8(e.ticket.as_ref().unwrap().ticket.to_vec()).unwrap())
        .collect();
    assert_eq!(
        tickets,
        vec!["tickertable:snapshot:xs", "tickertable:live:xs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_mirrors_a_ring_exactly_across_wraparound() {
    let engine = manual_engine();
    let (source, publisher) = int_table(&engine, "src", TableKind::Blink);
    let ring = engine.ring_table("ring", &source, 50).unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut ring_sub = client.subscribe("ring").await.unwrap();
    let mut blink_sub = client.subscribe("src").await.unwrap();
    let mut next = 0i64;
    // Sizes include empty cycles, small batches and one batch larger than the ring.
    for (cycle, size) in [3, 0, 17, 49, 1, 120, 0, 0, 7, 51, 50, 2]
        .into_iter()
        .enumerate()
    {
        if size > 0 {
            publisher.add(int_batch(next..next + size)).unwrap();
            next += size;
        }
        engine.run_cycle();
        catch_up(&mut ring_sub, &ring).await;
        catch_up(&mut blink_sub, &source).await;
        assert!(
            ring_sub.rows().end - ring_sub.rows().start <= 50,
            "cycle {cycle}"
        );
    }
    assert_eq!(
        ring_sub.resets(),
        1,
        "only the initial snapshot: no resync needed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_resynchronised_and_a_fast_one_is_not() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "xs", TableKind::Append);
    let options =
        FlightOptions::default().with_subscription(SubscriptionOptions::default().with_capacity(4));
    let server = engine.serve_flight_with("127.0.0.1:0", options).unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut fast = client.subscribe("xs").await.unwrap();
    let mut slow = client.subscribe("xs").await.unwrap();
    catch_up(&mut slow, &table).await;
    // 50 cycles of 120k rows (48 MB): far more than the transport holds for a stream that is
    // not read (the client's 16 MiB stream window, the server's send buffer), so the slow
    // client's server-side queue (4 updates) overflows.
    let rows: i64 = 120_000;
    for i in 0..50i64 {
        publisher.add(int_batch(i * rows..(i + 1) * rows)).unwrap();
        engine.run_cycle();
        catch_up_rows(&mut fast, &table).await;
    }
    catch_up(&mut fast, &table).await;
    catch_up(&mut slow, &table).await;
    assert_eq!(fast.resets(), 1);
    assert!(
        slow.resets() > 1,
        "the slow client lagged and got a fresh snapshot"
    );
    assert_eq!(
        i64_column(&slow.batches(), 0),
        i64_column(&fast.batches(), 0)
    );
}

/// Subscribes, retrying while the server's one stream slot is still taken by a client that
/// just went away (hang guard: 200 tries).
async fn subscribe_when_free(url: &str, table: &str) -> RemoteSubscription {
    for _ in 0..200 {
        let mut c = Client::connect(url).await.expect("connect");
        match c.subscribe(table).await {
            Ok(sub) => return sub,
            Err(tickertable::Error::Remote {
                kind: RemoteErrorKind::ResourceExhausted,
                ..
            }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    panic!("hang guard: the stream slot was never released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_leaves_the_server_healthy() {
    let engine = manual_engine();
    let (table, publisher) = int_table(&engine, "xs", TableKind::Append);
    let options = FlightOptions::default().with_max_streams(1);
    let server = engine.serve_flight_with("127.0.0.1:0", options).unwrap();
    for round in 0..3i64 {
        // The slot of the previous round's probe is freed once the server notices it left.
        let mut sub = subscribe_when_free(&server.url(), "xs").await;
        publisher.add(int_batch(round * 5..round * 5 + 5)).unwrap();
        engine.run_cycle();
        catch_up(&mut sub, &table).await;
        drop(sub);
        // The stream's slot is released once the server notices the disconnect.
        let mut ok = false;
        for _ in 0..200 {
            let mut c = Client::connect(&server.url()).await.unwrap();
            match c.subscribe("xs").await {
                Ok(_) => {
                    ok = true;
                    break;
                }
                Err(tickertable::Error::Remote {
                    kind: RemoteErrorKind::ResourceExhausted,
                    ..
                }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(ok, "round {round}: the stream slot was released");
    }
    assert_eq!(table.num_rows(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_limit_refuses_extra_streams() {
    let engine = manual_engine();
    int_table(&engine, "xs", TableKind::Append);
    let server = engine
        .serve_flight_with("127.0.0.1:0", FlightOptions::default().with_max_streams(1))
        .unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let _first = client.subscribe("xs").await.unwrap();
    let err = client.subscribe("xs").await.unwrap_err();
    assert!(
        matches!(
            err,
            tickertable::Error::Remote {
                kind: RemoteErrorKind::ResourceExhausted,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_put_applies_good_batches_in_one_cycle_and_refuses_bad_ones_whole() {
    let engine = manual_engine();
    let (table, _publisher) = engine
        .table_publisher(
            "trades",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let ring = engine.ring_table("ring", &table, 10).unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();

    let rows = client
        .publish("trades", vec![trade_batch(0, 3), trade_batch(3, 4)])
        .await
        .unwrap();
    assert_eq!(rows, 7);
    assert_eq!(table.num_rows(), 0, "staged, not visible before the cycle");
    engine.run_cycle();
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..7).collect::<Vec<_>>()
    );

    // A batch with the wrong column type: nothing of the put is applied.
    let bad_schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("Ts", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("Sym", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("Price", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("Size", arrow_schema::DataType::Int64, false),
    ]));
    let with_text_price = |b: arrow_array::RecordBatch| {
        let mut cols = b.columns().to_vec();
        cols[2] = std::sync::Arc::new(arrow_array::StringArray::from(vec!["1.0"; b.num_rows()]));
        arrow_array::RecordBatch::try_new(bad_schema.clone(), cols).unwrap()
    };
    let err = client
        .publish(
            "trades",
            vec![
                with_text_price(trade_batch(7, 2)),
                with_text_price(trade_batch(9, 1)),
            ],
        )
        .await
        .unwrap_err();
    match &err {
        tickertable::Error::Remote {
            kind: RemoteErrorKind::InvalidArgument,
            message,
            ..
        } => {
            assert!(
                message.contains("column \"Price\" expects Float64, found Utf8"),
                "{message}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let mixed = client
        .publish("trades", vec![trade_batch(7, 2), int_batch(0..3)])
        .await;
    assert!(mixed.is_err(), "batches of one put must share a schema");
    engine.run_cycle();
    assert_eq!(table.num_rows(), 7);

    let err = client
        .publish("ring", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        tickertable::Error::Remote {
            kind: RemoteErrorKind::FailedPrecondition,
            ..
        }
    ));
    let err = client
        .publish("missing", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        tickertable::Error::Remote {
            kind: RemoteErrorKind::NotFound,
            ..
        }
    ));
    assert_eq!(ring.num_rows(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_the_server_sets_one() {
    let engine = manual_engine();
    int_table(&engine, "xs", TableKind::Append);
    let server = engine
        .serve_flight_with("127.0.0.1:0", FlightOptions::default().with_token("s3cret"))
        .unwrap();
    let mut anonymous = Client::connect(&server.url()).await.unwrap();
    let err = anonymous.list().await.unwrap_err();
    assert!(matches!(
        err,
        tickertable::Error::Remote {
            kind: RemoteErrorKind::Unauthenticated,
            ..
        }
    ));
    let mut wrong = Client::connect(&server.url())
        .await
        .unwrap()
        .with_token("nope")
        .unwrap();
    assert!(wrong.snapshot("xs").await.is_err());
    let mut good = Client::connect(&server.url())
        .await
        .unwrap()
        .with_token("s3cret")
        .unwrap();
    assert_eq!(good.list().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_table_ends_its_live_stream_with_an_error() {
    let engine = manual_engine();
    let (_table, publisher) = int_table(&engine, "xs", TableKind::Append);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let mut sub = client.subscribe("xs").await.unwrap();
    sub.next().await.unwrap().unwrap(); // the (empty) snapshot
    publisher.publish_failure(std::io::Error::other("feed lost"));
    engine.run_cycle();
    let end = tokio::time::timeout(HANG_GUARD, sub.next()).await.unwrap();
    match end {
        Some(Err(e @ tickertable::Error::Remote { .. })) => {
            assert!(e.to_string().contains("feed lost"), "{e}");
            // The table's failure, with its code: not a transient transport error.
            assert_eq!(e.code(), tickertable::ErrorCode::TableClosed, "{e}");
            assert!(!e.is_transient(), "{e}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_put_stages_each_batch_as_it_arrives_and_acknowledges_it() {
    let engine = manual_engine();
    let (table, _publisher) = int_table(&engine, "xs", TableKind::Append);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    let mut put = client
        .publisher("xs", tickertable::test_util::int_schema())
        .unwrap();
    put.send(&int_batch(0..100)).await.unwrap();
    // The first batch is staged while the call is still open: a cycle makes it visible.
    tokio::time::timeout(HANG_GUARD, async {
        while put.acked() < 100 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("hang guard: the first batch is acknowledged before the call ends");
    engine.run_cycle();
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..100).collect::<Vec<_>>()
    );
    for k in 1..10 {
        put.send(&int_batch(k * 100..(k + 1) * 100)).await.unwrap();
    }
    assert_eq!(put.finish().await.unwrap(), 1000);
    engine.run_cycle();
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..1000).collect::<Vec<_>>()
    );
    assert_eq!(server.stats().rows_put, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_put_waits_for_room_in_full_staging_and_loses_nothing() {
    let engine = Engine::builder()
        .manual()
        .staging_limit(25_000)
        .build()
        .unwrap();
    let (table, _publisher) = int_table(&engine, "xs", TableKind::Append);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    // Cycles free room now and then, from another thread: the put waits for them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cycler = {
        let (engine, stop) = (engine.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                engine.run_cycle();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut put = client
        .publisher("xs", tickertable::test_util::int_schema())
        .unwrap();
    for k in 0..20 {
        put.send(&int_batch(k * 10_000..(k + 1) * 10_000))
            .await
            .unwrap();
    }
    let total = tokio::time::timeout(HANG_GUARD, put.finish())
        .await
        .expect("hang guard")
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    cycler.join().unwrap();
    engine.run_cycle();
    assert_eq!(total, 200_000);
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..200_000).collect::<Vec<_>>(),
        "every row, in order, though staging holds only 25,000 at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_put_that_does_not_fit_the_table_fails_and_stages_nothing() {
    let engine = manual_engine();
    let (table, _publisher) = int_table(&engine, "xs", TableKind::Append);
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let client = Client::connect(&server.url()).await.unwrap();
    let mut put = client.publisher("xs", trade_schema()).unwrap();
    // The send may or may not see the refusal yet; finish does.
    let _ = put.send(&trade_batch(0, 10)).await;
    let err = put.finish().await.unwrap_err();
    assert!(
        matches!(
            &err,
            tickertable::Error::Remote {
                kind: RemoteErrorKind::InvalidArgument,
                ..
            }
        ),
        "{err}"
    );
    engine.run_cycle();
    assert_eq!(table.num_rows(), 0);
    // A put mode the server does not know is refused, naming the header.
    let channel =
        tonic::transport::Endpoint::from_shared(server.url().replace("grpc://", "http://"))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut raw = arrow_flight::flight_service_client::FlightServiceClient::new(channel);
    let mut req = tonic::Request::new(futures_util::stream::iter(
        Vec::<arrow_flight::FlightData>::new(),
    ));
    req.metadata_mut().insert(
        tickertable::flight::PUT_MODE_HEADER,
        "sometimes".parse().unwrap(),
    );
    let status = raw.do_put(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("x-tickertable-put"),
        "{}",
        status.message()
    );
}

#[cfg(feature = "compression")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_streams_and_puts_carry_the_same_rows() {
    use tickertable::flight::Compression;
    let engine = manual_engine();
    let (table, publisher) = engine
        .table_publisher(
            "trades",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    publisher.add(trade_batch(0, 5_000)).unwrap();
    engine.run_cycle();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    for codec in [Compression::Lz4, Compression::Zstd] {
        let mut client = Client::connect(&server.url())
            .await
            .unwrap()
            .with_compression(codec);
        let mut sub = client.subscribe("trades").await.unwrap();
        catch_up(&mut sub, &table).await;
        // Compressed puts land as they are, through both put modes.
        let before = table.num_rows() as u64;
        client
            .publish("trades", vec![trade_batch(before, 1_000)])
            .await
            .unwrap();
        let mut put = client.publisher("trades", trade_schema()).unwrap();
        put.send(&trade_batch(before + 1_000, 1_000)).await.unwrap();
        assert_eq!(put.finish().await.unwrap(), 1_000);
        engine.run_cycle();
        catch_up(&mut sub, &table).await;
        assert_eq!(
            i64_column(&sub.batches(), 0),
            (0..i64::try_from(before).unwrap() + 2_000).collect::<Vec<_>>(),
            "{codec:?}"
        );
    }
    // Compression is not asked for by default, and an unknown one is refused.
    let mut raw = Client::connect(&server.url()).await.unwrap();
    assert_eq!(raw.snapshot("trades").await.unwrap().num_rows(), 9_000);
    assert!(Compression::parse("brotli").is_err());

    // The bytes on the wire are compressed: the server counts what it sends and receives.
    let mut sent = Vec::new();
    let mut put = Vec::new();
    for codec in [None, Some(Compression::Lz4), Some(Compression::Zstd)] {
        let mut client = Client::connect(&server.url()).await.unwrap();
        if let Some(c) = codec {
            client = client.with_compression(c);
        }
        let before = server.stats();
        assert_eq!(client.snapshot("trades").await.unwrap().num_rows(), 9_000);
        let mid = server.stats();
        sent.push(mid.bytes_sent - before.bytes_sent);
        // The same rows each time (the table is not cycled in between).
        client
            .publish("trades", vec![trade_batch(9_000, 2_000)])
            .await
            .unwrap();
        put.push(server.stats().bytes_put - mid.bytes_put);
    }
    // A raw snapshot carries at least the columns' values: 9,000 rows of an i64 and more.
    assert!(sent[0] > 9_000 * 8, "{sent:?}");
    assert!(put[0] > 2_000 * 8, "{put:?}");
    for i in 1..3 {
        assert!(sent[i] * 10 < sent[0] * 9, "compressed snapshots: {sent:?}");
        assert!(put[i] * 10 < put[0] * 9, "compressed puts: {put:?}");
    }
}
