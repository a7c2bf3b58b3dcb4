//! `ticker-serve` as a child process on a loopback port, driven with the library's Flight
//! `Client`: config tables and their kinds, `create_table` / `drop_table` / `stats`, a SIGTERM
//! that drains staged rows through a last cycle and ends live streams with `server_stopping`,
//! bad config files refused with their line, the metrics endpoint, tokens, computed derived
//! tables from the config.

mod support;

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use support::{http_get, refused, temp_dir, write, Server, HANG_GUARD, TABLES};
use tickertable::flight::{Client, CreateTable};
use tickertable::test_util::{i64_column, int_batch, int_schema, trade_batch, trade_schema};
use tickertable::{Error, ErrorCode, TableKind};

fn config(name: &str, text: &str) -> String {
    let dir = temp_dir(name);
    write(&dir, "tables.toml", text)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

async fn connect(server: &Server) -> Client {
    Client::connect(&server.url).await.expect("connect")
}

/// Reads a live stream until it ends: the `v` values it carried, and how it ended.
async fn drain_stream(
    sub: &mut tickertable::flight::RemoteSubscription,
) -> (Vec<i64>, Option<Error>) {
    let mut values = Vec::new();
    loop {
        match tokio::time::timeout(HANG_GUARD, sub.next())
            .await
            .expect("hang guard")
        {
            Some(Ok(m)) => {
                if let Some(b) = &m.batch {
                    values.extend(i64_column([b], 0));
                }
            }
            Some(Err(e)) => return (values, Some(e)),
            None => return (values, None),
        }
    }
}

#[tokio::test]
async fn smoke() {
    let server = Server::start(&[]);
    let mut client = connect(&server).await;
    assert!(client.list().await.unwrap().is_empty());
    let actions = client.list_actions().await.unwrap();
    assert_eq!(actions, ["stats", "create_table", "drop_table"]);
}

#[tokio::test]
async fn config_tables_exist_with_their_kinds() {
    let path = config("kinds", TABLES);
    let server = Server::start(&["--config", &path]);
    let mut client = connect(&server).await;
    let tables: HashMap<String, _> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    assert_eq!(tables["trades"].kind, TableKind::Blink);
    assert_eq!(tables["trades"].schema.fields(), trade_schema().fields());
    assert_eq!(tables["inbox"].kind, TableKind::Append);
    assert_eq!(tables["inbox"].capacity, Some(1_000_000));
    assert_eq!(tables["last10"].kind, TableKind::Ring { capacity: 10 });
    assert_eq!(tables["book"].kind, TableKind::Keyed { capacity: None });
    assert_eq!(tables["book"].key, ["Sym"]);
    assert_eq!(tables["recent"].kind, TableKind::Ring { capacity: 100 });
    assert_eq!(tables["history"].kind, TableKind::Append);
    assert_eq!(tables["tail5"].kind, TableKind::Ring { capacity: 5 });
    assert_eq!(tables.len(), 7);
    // Derived tables follow their source, and take no rows of their own.
    client
        .publish("trades", vec![trade_batch(0, 150)])
        .await
        .unwrap();
    let err = client
        .publish("recent", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TableClosed, "{err}");
}

/// Computed derived tables over the blink `trades` of [`TABLES`].
const COMPUTED: &str = r#"
[[derived]]
name = "latest"
source = "trades"
kind = "last_by"
keys = ["Sym"]

[[derived]]
name = "by_sym"
source = "trades"
kind = "agg_by"
keys = ["Sym"]
aggs = ["count", "sum(Size) as volume", "max(Price)"]
"#;

/// The rows of a snapshot by their `Sym`: each row's `i64` column `a` and `f64` column `b`.
fn by_sym(
    snap: &tickertable::flight::RemoteSnapshot,
    a: &str,
    b: &str,
) -> HashMap<String, (i64, f64)> {
    let (a, b) = (
        snap.schema.index_of(a).expect("column a"),
        snap.schema.index_of(b).expect("column b"),
    );
    let sym = snap.schema.index_of("Sym").expect("a Sym column");
    let mut rows = HashMap::new();
    for batch in &snap.batches {
        let syms = batch.column(sym).as_string::<i32>();
        let ints = batch.column(a).as_primitive::<Int64Type>();
        let floats = batch.column(b).as_primitive::<Float64Type>();
        for r in 0..batch.num_rows() {
            rows.insert(syms.value(r).to_owned(), (ints.value(r), floats.value(r)));
        }
    }
    rows
}

#[tokio::test]
// The prices compared are exact: i / 100 as the same f64 on both sides.
#[allow(clippy::float_cmp)]
async fn config_last_by_and_agg_by_follow_a_blink_table_over_flight() {
    let path = config("computed", &format!("{TABLES}{COMPUTED}"));
    let server = Server::start(&["--config", &path, "--period-ms", "5"]);
    let mut client = connect(&server).await;
    let by = client.table("by_sym").await.unwrap();
    assert_eq!(by.kind, TableKind::Keyed { capacity: None });
    let names: Vec<&str> = by
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["Sym", "count", "volume", "max_Price"]);

    // Rows 0..150: `Sym` is S00..S99 by i % 100, so S00..S49 have two rows (i and i + 100).
    client
        .publish("trades", vec![trade_batch(0, 100)])
        .await
        .unwrap();
    client
        .publish("trades", vec![trade_batch(100, 50)])
        .await
        .unwrap();
    // Both tables change in the cycle that applies a put, so once `by_sym` has counted every
    // row, a snapshot of `latest` taken after it has seen every row too.
    let (latest, aggs) = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let aggs = client.snapshot("by_sym").await.unwrap();
            let latest = client.snapshot("latest").await.unwrap();
            let counted: i64 = by_sym(&aggs, "count", "max_Price")
                .values()
                .map(|v| v.0)
                .sum();
            if latest.num_rows() == 100 && counted == 150 {
                return (latest, aggs);
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("hang guard");
    let latest = by_sym(&latest, "Size", "Price");
    assert_eq!(latest["S00"], (100, 1.0), "the later of its two rows");
    assert_eq!(latest["S49"], (149, 1.49));
    assert_eq!(latest["S50"], (50, 0.5));
    let volume = by_sym(&aggs, "volume", "max_Price");
    let counts = by_sym(&aggs, "count", "max_Price");
    assert_eq!(aggs.num_rows(), 100);
    assert_eq!(counts["S07"], (2, 1.07));
    assert_eq!(volume["S07"], (7 + 107, 1.07));
    assert_eq!(counts["S70"], (1, 0.7));
    assert_eq!(volume["S70"], (70, 0.7));
}

#[tokio::test]
async fn create_table_is_idempotent_and_a_clash_is_refused() {
    let server = Server::start(&[]);
    let mut client = connect(&server).await;
    let ring = CreateTable::new("xs", int_schema()).with_kind(TableKind::Ring { capacity: 3 });
    assert!(client.create_table(&ring).await.unwrap(), "created");
    assert!(
        !client.create_table(&ring).await.unwrap(),
        "the same again: a no-op"
    );
    let listed = client.table("xs").await.unwrap();
    assert_eq!(listed.kind, TableKind::Ring { capacity: 3 });

    let other_kind = CreateTable::new("xs", int_schema()).with_kind(TableKind::Append);
    let err = client.create_table(&other_kind).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TableExists, "{err}");
    assert!(err.to_string().contains("ring(3)"), "{err}");

    let other_schema =
        CreateTable::new("xs", trade_schema()).with_kind(TableKind::Ring { capacity: 3 });
    let err = client.create_table(&other_schema).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TableExists, "{err}");
    assert!(err.to_string().contains("schema"), "{err}");

    let keyed = CreateTable::new("book", trade_schema())
        .with_kind(TableKind::Keyed { capacity: None })
        .with_key(["Sym"]);
    assert!(client.create_table(&keyed).await.unwrap());
    assert_eq!(client.table("book").await.unwrap().key, ["Sym"]);
    let bad_key = CreateTable::new("book2", trade_schema())
        .with_kind(TableKind::Keyed { capacity: None })
        .with_key(["Nope"]);
    let err = client.create_table(&bad_key).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Schema, "{err}");

    // The created table takes rows.
    assert_eq!(
        client.publish("xs", vec![int_batch(0..5)]).await.unwrap(),
        5
    );
}

#[tokio::test]
async fn drop_table_ends_live_streams_with_table_dropped_and_frees_the_name() {
    let path = config("drop", TABLES);
    let server = Server::start(&["--config", &path, "--period-ms", "5"]);
    let mut client = connect(&server).await;
    let mut live = client.subscribe("recent").await.unwrap();
    live.next().await.unwrap().unwrap(); // the snapshot
    let dropped = client.drop_table("trades").await.unwrap();
    assert_eq!(dropped[0], "trades");
    let mut rest = dropped[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["history", "recent", "tail5"]);
    let (_, end) = drain_stream(&mut live).await;
    let end = end.expect("the stream ends with a reason");
    assert_eq!(end.code(), ErrorCode::TableDropped, "{end}");
    assert!(end.to_string().contains("dropped"), "{end}");
    let names: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(!names.contains(&"trades".to_owned()), "{names:?}");
    let err = client.drop_table("trades").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TableMissing, "{err}");
    // The name is free again, for another kind.
    let again = CreateTable::new("trades", int_schema()).with_kind(TableKind::Append);
    assert!(client.create_table(&again).await.unwrap());
}

#[tokio::test]
async fn stats_reports_the_engine_and_every_table() {
    let path = config("stats", TABLES);
    let server = Server::start(&["--config", &path, "--period-ms", "5"]);
    let mut client = connect(&server).await;
    client
        .publish("inbox", vec![int_batch(0..40), int_batch(40..50)])
        .await
        .unwrap();
    let err = client
        .publish("inbox", vec![trade_batch(0, 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Schema);
    // Wait (hang-guarded) until a cycle made the rows visible.
    let stats = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let s = client.stats().await.unwrap();
            let inbox = s["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == "inbox")
                .cloned()
                .unwrap();
            if inbox["rows"] == 50 {
                return s;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("hang guard");
    assert_eq!(stats["period_ms"], 5);
    assert!(stats["step"].as_u64().unwrap() >= 1);
    assert!(stats["cycles"].as_u64().unwrap() >= 1);
    assert!(stats["last_cycle_us"].is_u64());
    assert!(stats["worst_cycle_us"].is_u64());
    assert_eq!(stats["server"]["puts"], 1);
    assert_eq!(stats["server"]["rows_put"], 50);
    assert_eq!(stats["server"]["refused_puts"]["schema"], 1);
    let tables = stats["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 7);
    let inbox = tables.iter().find(|t| t["name"] == "inbox").unwrap();
    assert_eq!(inbox["kind"], "append");
    assert_eq!(inbox["rows_added"], 50);
    assert_eq!(inbox["staged_rows"], 0);
    assert!(inbox["rows_per_sec"].is_f64());
    assert!(inbox["subscribers"].is_u64());
}

#[tokio::test]
async fn sigterm_drains_staged_rows_ends_live_streams_with_a_reason_and_exits_0() {
    let path = config("term", TABLES);
    // No periodic cycle for an hour: rows put are staged, and only the stop's last cycle can
    // make them visible.
    let server = Server::start(&["--config", &path, "--period-ms", "3600000"]);
    let mut client = connect(&server).await;
    let mut live = client.subscribe("inbox").await.unwrap();
    let first = live.next().await.unwrap().unwrap();
    assert!(first.meta.reset, "the snapshot comes first");
    assert_eq!(
        client
            .publish("inbox", vec![int_batch(0..100)])
            .await
            .unwrap(),
        100
    );
    assert_eq!(
        client
            .publish("inbox", vec![int_batch(100..150)])
            .await
            .unwrap(),
        50
    );
    assert_eq!(
        client.snapshot("inbox").await.unwrap().num_rows(),
        0,
        "staged only"
    );

    server.signal("TERM");
    let (values, end) = drain_stream(&mut live).await;
    assert_eq!(
        values,
        (0..150).collect::<Vec<_>>(),
        "every acknowledged row"
    );
    let end = end.expect("the stream ends with a reason, not silently");
    assert_eq!(end.code(), ErrorCode::ServerStopping, "{end}");
    assert!(
        end.is_transient(),
        "a stop is not a failure: reconnect later"
    );
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[tokio::test]
async fn sigint_stops_the_same_way() {
    let server = Server::start(&["--period-ms", "3600000"]);
    let mut client = connect(&server).await;
    client
        .create_table(&CreateTable::new("xs", int_schema()).with_kind(TableKind::Append))
        .await
        .unwrap();
    let mut live = client.subscribe("xs").await.unwrap();
    live.next().await.unwrap().unwrap();
    client.publish("xs", vec![int_batch(0..7)]).await.unwrap();
    server.signal("INT");
    let (values, end) = drain_stream(&mut live).await;
    assert_eq!(values, (0..7).collect::<Vec<_>>());
    assert_eq!(end.unwrap().code(), ErrorCode::ServerStopping);
    assert_eq!(server.wait().0.code(), Some(0));
}

#[test]
fn bad_config_files_are_refused_with_their_line() {
    let cases = [
        (
            "[[table]]\nname = \"t\"\nkind = \"ring\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\n",
            ":1:",
            "a ring needs a capacity",
        ),
        (
            "\n\n[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [\n  { name = \"x\", type = \"int64\" },\n  { name = \"y\", type = \"float\" },\n  { name = \"z\", type = \"decimal\" },\n]\n",
            ":9:",
            "unknown type \"decimal\"",
        ),
        ("[[table]]\nname = \"t\"\nknd = \"blink\"\n", ":3:", "unknown field"),
        ("[[table]\nname = 1\n", ":1:", ""),
        (
            "[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\n\n[[derived]]\nname = \"r\"\nsource = \"nope\"\nkind = \"tail\"\ncapacity = 3\n",
            ":8:",
            "no table \"nope\"",
        ),
        (
            "[[table]]\nname = \"k\"\nkind = \"keyed\"\nkey = [\"nope\"]\ncolumns = [{ name = \"x\", type = \"int64\" }]\n",
            ":1:",
            "no column named \"nope\"",
        ),
        (
            "[[table]]\nname = \"t\"\nkind = \"append\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\ndurable = true\n",
            ":5:",
            "no data directory: start it with --data-dir",
        ),
        (
            "[[table]]\nname = \"t\"\nkind = \"blink\"\ncolumns = [{ name = \"x\", type = \"int64\" }]\n[[derived]]\nname = \"big\"\nsource = \"t\"\nkind = \"filter\"\nwhere = 'x > 1 && y < 2'\n",
            ":9:19:",
            "where: at 9: no column named \"y\"",
        ),
    ];
    for (i, (text, line, reason)) in cases.into_iter().enumerate() {
        let path = config(&format!("bad{i}"), text);
        let (status, stderr) = refused(&["--config", &path]);
        assert!(!status.success(), "case {i} started");
        let at = format!("{path}{line}");
        assert!(stderr.contains(&at), "case {i}: wanted {at:?} in {stderr}");
        assert!(
            stderr.contains(reason),
            "case {i}: wanted {reason:?} in {stderr}"
        );
    }
}

/// Parses Prometheus text: every sample line is `name{labels} value` with a float value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest
                    .split_whitespace()
                    .nth(1)
                    .expect("a TYPE line names a kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            }
            continue;
        }
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
            "{line}"
        );
        out.insert(name.to_owned(), value);
    }
    out
}

#[tokio::test]
// The values compared are counts: whole numbers, exact in an f64.
#[allow(clippy::float_cmp)]
async fn the_metrics_endpoint_serves_prometheus_text() {
    let path = config("metrics", TABLES);
    let server = Server::start(&[
        "--config",
        &path,
        "--period-ms",
        "5",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let mut client = connect(&server).await;
    client
        .publish("inbox", vec![int_batch(0..30)])
        .await
        .unwrap();
    let _ = client.publish("inbox", vec![trade_batch(0, 1)]).await;
    let addr = server.metrics.clone().unwrap();
    let metrics = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let (status, body) = http_get(&addr, "/metrics");
            assert_eq!(status, "HTTP/1.1 200 OK");
            let m = parse_metrics(&body);
            // A cycle's totals are recorded just after it makes its rows visible: wait for both.
            if m.get("tickertable_table_rows_in_total{table=\"inbox\"}") == Some(&30.0)
                && m.get("tickertable_cycles_total").is_some_and(|c| *c >= 1.0)
            {
                return m;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("hang guard");
    let cycles = metrics["tickertable_cycles_total"];
    assert!(cycles >= 1.0);
    assert_eq!(
        metrics["tickertable_cycle_duration_seconds_bucket{le=\"+Inf\"}"],
        metrics["tickertable_cycle_duration_seconds_count"]
    );
    assert_eq!(metrics["tickertable_table_rows{table=\"inbox\"}"], 30.0);
    assert_eq!(
        metrics["tickertable_refused_writes_total{reason=\"schema\"}"],
        1.0
    );
    assert_eq!(metrics["tickertable_rows_put_total"], 30.0);
    assert!(metrics.contains_key("tickertable_table_staged_rows{table=\"trades\"}"));
    assert!(metrics.contains_key("tickertable_table_subscribers{table=\"book\"}"));
    assert!(metrics.contains_key("tickertable_lagged_resyncs_total"));
    let (status, _) = http_get(&addr, "/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn a_token_file_makes_the_token_required() {
    let dir = temp_dir("token");
    let token = write(&dir, "token", "s3cret\n");
    let server = Server::start(&["--token-file", token.to_str().unwrap()]);
    let mut anonymous = connect(&server).await;
    let err = anonymous.stats().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
    let mut client = connect(&server).await.with_token("s3cret").unwrap();
    assert!(client.stats().await.unwrap()["step"].is_u64());
}
