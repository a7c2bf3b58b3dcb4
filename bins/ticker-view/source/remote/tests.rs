//! Remote source tests: a manual engine served on a loopback port, the remote source reading
//! it, and its mirrors checked against the engine's snapshots after each cycle (a ring
//! wrapping around, a blink table emptying, a keyed table upserted and deleted from, its large
//! updates in several messages); a server that goes away, then comes back on the same port; a
//! token; a failed table; a table created after the viewer connected.
//!
//! Nothing waits on the clock: the tests await the source's streams and its link state, with
//! timeouts only as hang guards.

use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::RecordBatch;
use futures_util::StreamExt;
use tickertable::flight::{FlightOptions, FlightServer, MessageMeta};
use tickertable::{
    Engine, Mirror, PublisherOptions, Table, TableKind, TablePublisher, TableSnapshot,
};
use tickertable_tools::demo::trade_schema;

use super::*;
use crate::cells::num_at;
use crate::testing::trade_batch;

const HANG_GUARD: Duration = Duration::from_secs(20);

const TRADES: usize = 0;
const RECENT: usize = 1;
const HISTORY: usize = 2;

/// Fast retries, so a test that reconnects does not wait out the real backoff.
fn quick() -> RemoteOptions {
    RemoteOptions {
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
        ..RemoteOptions::default()
    }
}

/// A manual engine with a blink `trades` table, a ring of its last 5 rows and an
/// append-only history, served on a loopback port.
struct Served {
    engine: Engine,
    publisher: TablePublisher,
    server: Option<FlightServer>,
    seq: i64,
}

impl Served {
    fn new(options: FlightOptions) -> Self {
        let engine = Engine::builder().manual().build().unwrap();
        let (trades, publisher) = engine
            .table_publisher("trades", trade_schema(), PublisherOptions::default())
            .unwrap();
        engine.ring_table("recent", &trades, 5).unwrap();
        engine
            .blink_to_append_only("history", &trades, None)
            .unwrap();
        let server = engine.serve_flight_with("127.0.0.1:0", options).unwrap();
        Self {
            engine,
            publisher,
            server: Some(server),
            seq: 0,
        }
    }

    fn url(&self) -> String {
        self.server.as_ref().unwrap().url()
    }

    fn table(&self, i: usize) -> Table {
        self.engine.tables()[i].clone()
    }

    /// Stages `n` trades, priced by their sequence number.
    fn publish(&mut self, n: usize) {
        let rows: Vec<(&str, f64)> = (0..n)
            .map(|i| {
                (
                    ["AAPL", "MSFT", "NVDA"][i % 3],
                    (self.seq + i as i64) as f64,
                )
            })
            .collect();
        self.publisher.add(trade_batch(self.seq, &rows)).unwrap();
        self.seq += n as i64;
    }

    /// Stops the server (on a blocking thread: it joins the server's thread).
    async fn stop_server(&mut self) {
        let server = self.server.take().unwrap();
        tokio::time::timeout(
            HANG_GUARD,
            tokio::task::spawn_blocking(move || drop(server)),
        )
        .await
        .expect("hang guard: the server stops")
        .unwrap();
    }
}

/// The remote source, with every table's stream applied to a mirror as the App would.
struct Viewer {
    source: Remote,
    state: watch::Receiver<State>,
    streams: Vec<DataStream>,
    mirrors: Vec<Mirror>,
    /// Per table: the updates seen, snapshots, lags and failures.
    updates: Vec<Vec<Change>>,
    snapshots: Vec<u64>,
    lags: Vec<u64>,
    failed: Vec<Option<String>>,
}

impl Viewer {
    /// Starts the source and waits until it is connected and lists `tables` tables.
    async fn connect(url: &str, options: RemoteOptions, tables: usize) -> Self {
        let source = Remote::start(url, options).unwrap();
        let mut viewer = Self {
            state: source.watch(),
            source,
            streams: Vec::new(),
            mirrors: Vec::new(),
            updates: Vec::new(),
            snapshots: Vec::new(),
            lags: Vec::new(),
            failed: Vec::new(),
        };
        viewer
            .wait_for("connected", |s| {
                matches!(s.link, LinkState::Connected) && s.tables >= tables
            })
            .await;
        viewer.adopt();
        viewer
    }

    /// Subscribes to the tables listed since the last call.
    fn adopt(&mut self) {
        for i in self.streams.len()..self.source.tables().len() {
            self.streams.push(self.source.subscribe(i).unwrap());
            let schema = self.source.tables()[i].schema.clone();
            self.mirrors.push(Mirror::new(schema));
            self.updates.push(Vec::new());
            self.snapshots.push(0);
            self.lags.push(0);
            self.failed.push(None);
        }
    }

    /// Waits until the source's state satisfies `what`.
    async fn wait_for(&mut self, what: &str, f: impl Fn(&State) -> bool) {
        tokio::time::timeout(HANG_GUARD, self.state.wait_for(f))
            .await
            .unwrap_or_else(|_| panic!("hang guard: waiting for {what}"))
            .unwrap();
    }

    /// Applies table `i`'s next event.
    async fn next(&mut self, i: usize) {
        let event = tokio::time::timeout(HANG_GUARD, self.streams[i].next())
            .await
            .expect("hang guard: an event")
            .expect("the stream stays open");
        match event {
            DataEvent::Snapshot(mirror) => {
                self.snapshots[i] += 1;
                self.failed[i] = None;
                self.mirrors[i] = mirror;
            }
            DataEvent::Lagged { mirror, .. } => {
                self.lags[i] += 1;
                self.mirrors[i] = mirror;
            }
            DataEvent::Update { mirror, change } => {
                self.mirrors[i] = mirror;
                self.updates[i].push(*change);
            }
            DataEvent::Failed(why) => self.failed[i] = Some(why),
        }
    }

    /// Reads table `i`'s events until it had its snapshot and its mirror is the engine's
    /// table, then checks every price.
    async fn catch_up(&mut self, i: usize, table: &Table) {
        let want = table.snapshot();
        while !(self.snapshots[i] > 0
            && self.mirrors[i].rows() == want.rows()
            && self.mirrors[i].step() == want.step())
        {
            self.next(i).await;
        }
        assert_eq!(
            mirror_prices(&self.mirrors[i]),
            snapshot_prices(&want),
            "{}",
            table.name()
        );
    }

    /// Reads table `i`'s events until its mirror holds exactly the engine's table: the same
    /// positions, step and cells (a step sent in several messages may be applied in parts).
    async fn catch_up_exactly(&mut self, i: usize, table: &Table) {
        let want = table.snapshot();
        let cells = want.to_batch().unwrap();
        while !(self.snapshots[i] > 0
            && self.mirrors[i].rows() == want.rows()
            && self.mirrors[i].step() == want.step()
            && same_cells(&mirror_batch(&self.mirrors[i], want.schema()), &cells))
        {
            self.next(i).await;
        }
    }

    /// Catches up with every table.
    async fn catch_up_all(&mut self, served: &Served) {
        for i in 0..self.streams.len() {
            self.catch_up(i, &served.table(i)).await;
        }
    }
}

fn mirror_prices(m: &Mirror) -> Vec<f64> {
    let mut out = Vec::new();
    for (_, batch, rows) in m.runs(m.rows()) {
        let prices = batch.column(2).as_primitive::<Float64Type>();
        out.extend(rows.map(|r| prices.value(r)));
    }
    out
}

/// Every cell of a mirror, as one batch.
fn mirror_batch(m: &Mirror, schema: &arrow_schema::SchemaRef) -> RecordBatch {
    arrow_select::concat::concat_batches(schema, &m.slice(m.rows())).unwrap()
}

/// Whether two batches hold the same cells (whatever their schemas' metadata).
fn same_cells(a: &RecordBatch, b: &RecordBatch) -> bool {
    a.num_rows() == b.num_rows() && a.columns() == b.columns()
}

fn snapshot_prices(s: &TableSnapshot) -> Vec<f64> {
    s.batches()
        .flat_map(|b| {
            let prices = b.column(2).as_primitive::<Float64Type>().clone();
            (0..prices.len()).map(move |r| prices.value(r))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let mut served = Served::new(FlightOptions::default());
    served.publish(3);
    served.engine.run_cycle();
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    let tables = viewer.source.tables();
    let listed: Vec<(&str, TableKind, Option<usize>)> = tables
        .iter()
        .map(|t| (t.name.as_str(), t.kind, t.capacity))
        .collect();
    assert_eq!(
        listed,
        [
            ("trades", TableKind::Blink, None),
            ("recent", TableKind::Ring { capacity: 5 }, Some(5)),
            ("history", TableKind::Append, None),
        ]
    );
    assert_eq!(tables[0].schema.fields(), trade_schema().fields());
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.snapshots, [1, 1, 1]);
    assert_eq!(viewer.mirrors[HISTORY].len(), 3);
    let status = viewer.source.status();
    assert_eq!(status.link, Link::Connected);
    // From the server's `stats`, asked for at connect.
    assert_eq!(
        status.period,
        crate::source::Period::Configured(served.engine.period())
    );
    let last = served.engine.last_cycle().unwrap().duration;
    let micros = Duration::from_micros(u64::try_from(last.as_micros()).unwrap());
    assert_eq!(
        status.last_cycle,
        Some(micros),
        "the server's last cycle time"
    );
    assert_eq!(status.step, served.engine.step().as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_match_the_engine_as_a_ring_wraps_and_a_blink_table_empties() {
    let mut served = Served::new(FlightOptions::default());
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    viewer.catch_up_all(&served).await;
    for n in [3, 4, 1, 6] {
        served.publish(n);
        served.engine.run_cycle();
        viewer.catch_up_all(&served).await;
    }
    // 14 rows went through a ring of 5: it wrapped around more than twice.
    assert_eq!(viewer.mirrors[RECENT].rows(), 9..14);
    assert_eq!(
        mirror_prices(&viewer.mirrors[RECENT]),
        [9.0, 10.0, 11.0, 12.0, 13.0]
    );
    assert_eq!(
        viewer.mirrors[TRADES].rows(),
        8..14,
        "the blink table shows one cycle"
    );
    assert_eq!(viewer.mirrors[HISTORY].len(), 14);

    // A cycle without rows empties the blink table and leaves the others as they are.
    served.engine.run_cycle();
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.mirrors[TRADES].len(), 0);
    assert_eq!(viewer.mirrors[RECENT].len(), 5);

    let status = viewer.source.status();
    assert_eq!(status.step, served.engine.step().as_u64());
    assert_eq!(
        status.ends,
        [Some(14), Some(14), Some(14)],
        "every row counted in, none twice"
    );
    assert_eq!(viewer.snapshots, [1, 1, 1]);
    assert_eq!(viewer.lags, [0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_in_many_parts_is_not_counted_as_rows_in() {
    let mut served = Served::new(FlightOptions::default());
    // Eight cycles: the history holds eight chunks, and its snapshot is eight messages.
    for _ in 0..8 {
        served.publish(2);
        served.engine.run_cycle();
    }
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.mirrors[HISTORY].len(), 16);
    assert_eq!(viewer.source.status().ends, [Some(0), Some(0), Some(0)]);
    served.publish(3);
    served.engine.run_cycle();
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.source.status().ends, [Some(3), Some(3), Some(3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_shows_as_disconnected_and_a_new_one_on_the_same_port_is_rejoined() {
    let mut served = Served::new(FlightOptions::default());
    let addr = served.server.as_ref().unwrap().local_addr();
    served.publish(3);
    served.engine.run_cycle();
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    viewer.catch_up_all(&served).await;

    served.stop_server().await;
    viewer
        .wait_for("disconnected", |s| {
            matches!(s.link, LinkState::Disconnected { .. })
        })
        .await;
    match viewer.source.status().link {
        Link::Disconnected { reason, .. } => assert!(!reason.is_empty()),
        other => panic!("{other:?}"),
    }

    // The engine goes on without the viewer.
    served.publish(4);
    served.engine.run_cycle();
    served.publish(2);
    served.engine.run_cycle();

    let Ok(again) = served.engine.serve_flight(addr) else {
        eprintln!(
            "port {} was taken in the meantime: not testing the reconnect",
            addr.port()
        );
        return;
    };
    served.server = Some(again);
    viewer
        .wait_for("reconnected", |s| matches!(s.link, LinkState::Connected))
        .await;
    // Every table starts again from a fresh snapshot that has what was missed.
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.snapshots, [2, 2, 2]);
    assert_eq!(viewer.mirrors[HISTORY].len(), 9);
    assert_eq!(
        mirror_prices(&viewer.mirrors[RECENT]),
        [4.0, 5.0, 6.0, 7.0, 8.0]
    );
    assert_eq!(
        viewer.source.tables().len(),
        3,
        "the same tables, not new ones"
    );

    // And it keeps streaming.
    served.publish(1);
    served.engine.run_cycle();
    viewer.catch_up_all(&served).await;
    assert_eq!(viewer.mirrors[HISTORY].len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_sent_and_a_wrong_one_is_the_reason_shown() {
    let served = Served::new(FlightOptions::default().with_token("s3cret"));
    let good = RemoteOptions {
        token: Some("s3cret".into()),
        ..quick()
    };
    let viewer = Viewer::connect(&served.url(), good, 3).await;
    assert_eq!(viewer.source.tables().len(), 3);

    let bad = RemoteOptions {
        token: Some("guess".into()),
        ..quick()
    };
    let source = Remote::start(&served.url(), bad).unwrap();
    let mut state = source.watch();
    tokio::time::timeout(
        HANG_GUARD,
        state.wait_for(|s| matches!(s.link, LinkState::Disconnected { .. })),
    )
    .await
    .expect("hang guard: refused")
    .unwrap();
    let mut source = source;
    match source.status().link {
        Link::Disconnected { reason, .. } => {
            assert!(reason.contains("unauthenticated"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(source.tables().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_table_fails_its_stream_and_the_rest_stay_connected() {
    let served = Served::new(FlightOptions::default());
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    viewer.catch_up_all(&served).await;
    served
        .publisher
        .publish_failure(std::io::Error::other("feed lost"));
    served.engine.run_cycle();
    while viewer.failed[TRADES].is_none() {
        viewer.next(TRADES).await;
    }
    let why = viewer.failed[TRADES].clone().unwrap();
    assert!(why.contains("feed lost"), "{why}");
    assert_eq!(viewer.source.status().link, Link::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_created_later_is_listed_and_streamed() {
    let served = Served::new(FlightOptions::default());
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    let (late, publisher) = served
        .engine
        .table_publisher(
            "late",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    viewer.wait_for("a fourth table", |s| s.tables == 4).await;
    viewer.adopt();
    assert_eq!(viewer.source.tables()[3].name, "late");
    publisher
        .add(trade_batch(0, &[("AAPL", 1.0), ("MSFT", 2.0)]))
        .unwrap();
    served.engine.run_cycle();
    viewer.catch_up(3, &late).await;
    assert_eq!(mirror_prices(&viewer.mirrors[3]), [1.0, 2.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_is_no_longer_listed() {
    let served = Served::new(FlightOptions::default());
    let mut viewer = Viewer::connect(&served.url(), quick(), 3).await;
    assert_eq!(viewer.source.status().listed, [true, true, true]);
    served.engine.drop_table("recent").unwrap();
    viewer.wait_for("the drop", |s| s.unlisted == 1).await;
    assert_eq!(viewer.source.status().listed, [true, false, true]);
    assert_eq!(viewer.source.tables().len(), 3, "indexes stay put");
}

#[test]
fn urls_need_a_host_and_port() {
    assert_eq!(
        authority("grpc://127.0.0.1:8815").unwrap(),
        "127.0.0.1:8815"
    );
    assert_eq!(authority("http://localhost:1/").unwrap(), "localhost:1");
    assert_eq!(authority("grpc+tls://h:1").unwrap(), "h:1");
    for bad in [
        "127.0.0.1:8815",
        "grpc://",
        "grpc+tls://h",
        "ftp://h:1",
        "grpc://h",
        "grpc://h:1/x",
    ] {
        assert!(authority(bad).is_err(), "{bad}");
    }
}

#[test]
fn countdowns_round_up_to_tenths() {
    assert_eq!(tenths(Duration::from_millis(0)), Duration::ZERO);
    assert_eq!(tenths(Duration::from_millis(1)), Duration::from_millis(100));
    assert_eq!(tenths(Duration::from_secs(2)), Duration::from_secs(2));
    assert_eq!(
        tenths(Duration::from_millis(2_001)),
        Duration::from_millis(2_100)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_table_mirrors_exactly_over_flight() {
    use crate::testing::{bid_batch, key_batch, quote_batch, quote_schema, Quote};

    let engine = tickertable::test_util::manual_engine();
    let options = PublisherOptions::default().with_key(["Sym"]);
    let (table, publisher) = engine
        .table_publisher("quotes", quote_schema(), options)
        .unwrap();
    // Long venues: 20,000 rows are several messages of about 2 MiB.
    let venue = |v: u64| format!("{v}{}", "v".repeat(200));
    let names: Vec<String> = (0..20_000).map(|k| format!("K{k:05}")).collect();
    let venues: Vec<String> = (0..3).map(venue).collect();
    let whole = |keys: &[usize], price: f64| -> RecordBatch {
        let rows: Vec<Quote<'_>> = keys
            .iter()
            .map(|&k| {
                let v = venues[k % 3].as_str();
                (names[k].as_str(), price + k as f64, price + 1.0, v)
            })
            .collect();
        quote_batch(&rows)
    };
    publisher
        .upsert(whole(&(0..1_000).collect::<Vec<_>>(), 1.0))
        .unwrap();
    engine.run_cycle();
    // Two chunks of 512 rows: the snapshot's second message is an update of its step.
    let snapshot_step = table.snapshot().step();
    let server = engine
        .serve_flight_with("127.0.0.1:0", FlightOptions::default())
        .unwrap();
    let mut viewer = Viewer::connect(&server.url(), quick(), 1).await;
    let info = &viewer.source.tables()[0];
    assert_eq!(
        (info.kind, info.capacity, info.key.as_slice()),
        (TableKind::Keyed { capacity: None }, None, &[0][..])
    );
    viewer.catch_up_exactly(0, &table).await;

    // Many keys at once, then all of them rewritten: both in several messages.
    publisher
        .upsert(whole(&(0..20_000).collect::<Vec<_>>(), 2.0))
        .unwrap();
    engine.run_cycle();
    viewer.catch_up_exactly(0, &table).await;
    publisher
        .upsert(whole(&(0..20_000).rev().collect::<Vec<_>>(), 3.0))
        .unwrap();
    engine.run_cycle();
    viewer.catch_up_exactly(0, &table).await;

    // A partial upsert: its column masks cross the wire.
    let before = viewer.updates[0].len();
    publisher
        .upsert(bid_batch(&[("K00002", -1.0), ("K00007", -2.0)]))
        .unwrap();
    engine.run_cycle();
    viewer.catch_up_exactly(0, &table).await;
    let partial = &viewer.updates[0][before..];
    assert_eq!(partial.len(), 1);
    let m = &partial[0];
    assert_eq!(m.modified, [2, 7]);
    assert!((0..2).all(|i| m.is_written(i, 0) && m.is_written(i, 1)));
    assert!((0..2).all(|i| !m.is_written(i, 2) && !m.is_written(i, 3)));
    let old = m
        .replaced
        .locate(7)
        .map(|(b, r)| num_at(b.column(1).as_ref(), r));
    assert_eq!(old, Some(Some(10.0)), "the row as it was");

    // Random upserts, partial upserts and deletes: the table shrinks and grows at the end.
    let mut rng = 0x0123_4567_89ab_cdef_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n) as usize
    };
    for cycle in 0..40 {
        let keys: Vec<usize> = (0..next(300)).map(|_| next(20_000)).collect();
        publisher.upsert(whole(&keys, f64::from(cycle))).unwrap();
        let bids: Vec<(&str, f64)> = (0..next(300))
            .map(|_| next(20_000))
            .map(|k| (names[k].as_str(), k as f64 / 2.0))
            .collect();
        publisher.upsert(bid_batch(&bids)).unwrap();
        let gone: Vec<&str> = (0..next(if cycle % 5 == 0 { 3_000 } else { 300 }))
            .map(|_| names[next(20_000)].as_str())
            .collect();
        publisher.delete(key_batch(&gone)).unwrap();
        engine.run_cycle();
        viewer.catch_up_exactly(0, &table).await;
    }
    assert_eq!((viewer.snapshots[0], viewer.lags[0]), (1, 0));
    let shrank = viewer.updates[0].iter().filter(|d| !d.removed.is_empty());
    assert!(shrank.count() >= 8, "deletes shrank the table");
    // The rest of the snapshot is not rows in.
    let written: u64 = viewer.updates[0]
        .iter()
        .filter(|d| d.step != snapshot_step)
        .map(Change::rows_written)
        .sum();
    assert_eq!(
        viewer.source.status().ends,
        [Some(written)],
        "a keyed table's rows in: those modified and added"
    );
    drop(viewer);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[test]
fn a_keyed_update_in_several_messages_applies_in_order() {
    use crate::testing::{meta, mirror_at, quote_batch, update, Quote};

    let q = |s: &'static str, bid: f64| -> Quote<'static> { (s, bid, bid, "X") };
    let step = tickertable::Step::new(9);
    // The table held A B C D E. One update with all three parts (the wire allows it): D and E
    // removed from the end; A and B rewritten and D into C's slot, in two messages, the first
    // with the removed suffix, the second a partial upsert (Sym and Bid); then F added.
    let mut mirror = mirror_at(
        0,
        &quote_batch(&[
            q("A", 0.0),
            q("B", 0.0),
            q("C", 0.0),
            q("D", 0.0),
            q("E", 0.0),
        ]),
    );
    let rows = |event: &DataEvent| match event {
        DataEvent::Update { change, .. } => change.as_ref().clone(),
        other => panic!("{other:?}"),
    };
    let first = update(
        &mut mirror,
        meta(step, 3..5, vec![0, 1], 3..3),
        Some(quote_batch(&[q("A", 1.0), q("B", 2.0)])),
    );
    let partial = MessageMeta {
        masks: vec![vec![0b11]],
        ..meta(step, 3..3, vec![2], 3..3)
    };
    let second = update(&mut mirror, partial, Some(quote_batch(&[q("D", 4.0)])));
    let added = update(
        &mut mirror,
        meta(step, 3..3, vec![], 3..4),
        Some(quote_batch(&[q("F", 6.0)])),
    );
    let (first, second, added) = (rows(&first), rows(&second), rows(&added));
    assert_eq!(
        (first.removed.clone(), first.modified.as_slice()),
        (3..5, &[0, 1][..])
    );
    assert!((0..4).all(|c| first.is_written(1, c)));
    assert_eq!(second.modified, [2]);
    let written: Vec<usize> = (0..4).filter(|&c| second.is_written(0, c)).collect();
    assert_eq!(written, [0, 1], "the partial upsert's mask");
    let (old, r) = second.replaced.locate(2).unwrap();
    assert_eq!(
        crate::cells::text_at(old.column(0).as_ref(), r),
        Some("C"),
        "as it was"
    );
    assert_eq!(
        (added.added.clone(), added.modified_rows.is_none()),
        (3..4, true)
    );
    assert_eq!(
        [
            first.rows_written(),
            second.rows_written(),
            added.rows_written()
        ],
        [2, 1, 1]
    );
    let syms: Vec<String> = mirror
        .rows()
        .map(|p| {
            let (b, r) = mirror.locate(p).unwrap();
            format!(
                "{}={}",
                crate::cells::text_at(b.column(0).as_ref(), r).unwrap(),
                num_at(b.column(1).as_ref(), r).unwrap()
            )
        })
        .collect();
    assert_eq!(syms, ["A=1", "B=2", "D=4", "F=6"]);
    assert_eq!(mirror.step(), step);
}
