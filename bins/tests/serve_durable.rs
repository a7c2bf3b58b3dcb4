//! `ticker-serve --data-dir` as a child process: durable config tables (append and keyed) and
//! a durable `create_table` (restored at start without being created again) survive a
//! SIGKILL and a restart with every row a client saw, and new rows continue the positions; a SIGTERM stops with exit 0 after syncing the logs
//! (even with `--sync never`); a second server on the same directory is refused naming the
//! first one's pid; dropping a durable table deletes its log; `stats` and the metrics report
//! bytes logged and the replay at start; `history = true` tables bring a durable blink table's
//! rows back after a SIGKILL.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use support::{http_get, refused, temp_dir, wait_for, write, Server};
use tickertable::flight::{Client, CreateTable};
use tickertable::test_util::{i64_column, int_batch, int_schema};
use tickertable::TableKind;

/// A durable append table, a durable keyed table, a derived ring of the first (rebuilt at
/// start, never logged) and a table that is not durable.
const DURABLE: &str = r#"
[[table]]
name = "ledger"
kind = "append"
durable = true
columns = [{ name = "v", type = "int64", nullable = false }]

[[table]]
name = "book"
kind = "keyed"
key = ["Sym"]
durable = true
columns = [{ name = "Sym", type = "utf8", nullable = false }, { name = "Px", type = "float64" }]

[[table]]
name = "scratch"
kind = "append"
columns = [{ name = "v", type = "int64", nullable = false }]

[[derived]]
name = "last3"
source = "ledger"
kind = "ring_table"
capacity = 3
"#;

/// A fresh data directory and the config file, for one test.
fn setup(name: &str) -> (PathBuf, String) {
    setup_with(name, DURABLE)
}

/// As [`setup`], with config `text`.
fn setup_with(name: &str, text: &str) -> (PathBuf, String) {
    let dir = temp_dir(name);
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let config = write(&dir, "tables.toml", text);
    (data, config.to_str().expect("utf-8 path").to_owned())
}

fn book_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Px", DataType::Float64, true),
    ]))
}

fn quotes(rows: &[(&str, f64)]) -> RecordBatch {
    RecordBatch::try_new(
        book_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .expect("a book batch")
}

fn syms(names: &[&str]) -> RecordBatch {
    let s = Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)]));
    RecordBatch::try_new(
        s,
        vec![Arc::new(StringArray::from_iter_values(
            names.iter().copied(),
        ))],
    )
    .expect("a key batch")
}

/// A keyed table's rows as `Sym -> Px` (Px's bits, to compare exactly).
fn book_state(batches: &[RecordBatch]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for b in batches {
        let sym = b
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("Sym");
        let px = b
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("Px");
        for i in 0..b.num_rows() {
            out.insert(sym.value(i).to_owned(), px.value(i).to_bits());
        }
    }
    out
}

fn book(rows: &[(&str, f64)]) -> BTreeMap<String, u64> {
    rows.iter()
        .map(|(s, p)| ((*s).to_owned(), p.to_bits()))
        .collect()
}

async fn connect(server: &Server) -> Client {
    Client::connect(&server.url).await.expect("connect")
}

#[tokio::test]
async fn smoke() {
    let (data, config) = setup("durable-smoke");
    let server = Server::start(&["--config", &config, "--data-dir", data.to_str().unwrap()]);
    let mut client = connect(&server).await;
    let stats = client.stats().await.unwrap();
    assert_eq!(stats["data_dir"], data.to_str().unwrap());
    let durable: Vec<(String, bool)> = stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["durable"] == true))
        .collect();
    assert!(durable.contains(&("ledger".into(), true)), "{durable:?}");
    assert!(durable.contains(&("scratch".into(), false)), "{durable:?}");
    assert!(durable.contains(&("last3".into(), false)), "{durable:?}");
    assert!(data.join("ledger").is_dir() && data.join("book").is_dir());
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story: write, kill, restart, check, write on
async fn durable_tables_survive_a_sigkill_and_restart_and_positions_continue() {
    let (data, config) = setup("durable-kill");
    let args = [
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--period-ms",
        "5",
    ];
    let flown = CreateTable::new("flown", int_schema())
        .with_kind(TableKind::Append)
        .durable();
    {
        let server = Server::start(&args);
        let mut client = connect(&server).await;
        client
            .publish("ledger", vec![int_batch(0..100)])
            .await
            .unwrap();
        client
            .publish("ledger", vec![int_batch(100..150)])
            .await
            .unwrap();
        client
            .publish("book", vec![quotes(&[("A", 1.0), ("B", 2.0), ("C", 3.0)])])
            .await
            .unwrap();
        client
            .publish("scratch", vec![int_batch(0..5)])
            .await
            .unwrap();
        assert!(client.create_table(&flown).await.unwrap());
        client
            .publish("flown", vec![int_batch(7..10)])
            .await
            .unwrap();
        // Upsert B after A, B, C are in, and delete C, in later cycles.
        wait_for(&mut client, "book", |s| s.num_rows() == 3).await;
        client
            .publish("book", vec![quotes(&[("B", 20.5), ("D", 4.0)])])
            .await
            .unwrap();
        client.delete("book", syms(&["C"])).await.unwrap();
        // Visible, so (every-cycle, the default) on disk.
        let ledger = wait_for(&mut client, "ledger", |s| s.num_rows() == 150).await;
        assert_eq!(ledger.rows, 0..150);
        let want = book(&[("A", 1.0), ("B", 20.5), ("D", 4.0)]);
        wait_for(&mut client, "book", |s| book_state(&s.batches) == want).await;
        wait_for(&mut client, "flown", |s| s.num_rows() == 3).await;
        server.signal("KILL");
        let (status, _) = server.wait();
        assert_eq!(status.code(), None, "killed by the signal");
    }
    assert!(
        data.join(".lock").exists(),
        "the killed server left its lock"
    );

    let server = Server::start(&args);
    let mut client = connect(&server).await;
    let ledger = client.snapshot("ledger").await.unwrap();
    assert_eq!(ledger.rows, 0..150);
    assert_eq!(i64_column(&ledger.batches, 0), (0..150).collect::<Vec<_>>());
    let b = client.snapshot("book").await.unwrap();
    assert_eq!(
        book_state(&b.batches),
        book(&[("A", 1.0), ("B", 20.5), ("D", 4.0)])
    );
    assert_eq!(b.num_rows(), 3);
    // The derived ring is rebuilt from its durable source; the table that is not durable
    // starts empty.
    let last3 = client.snapshot("last3").await.unwrap();
    assert_eq!(i64_column(&last3.batches, 0), [147, 148, 149]);
    assert_eq!(client.snapshot("scratch").await.unwrap().num_rows(), 0);
    // A table a client created is restored from its log at start; creating it again (an
    // idempotent startup script) is a no-op.
    let f = client.snapshot("flown").await.unwrap();
    assert_eq!((f.rows, i64_column(&f.batches, 0)), (0..3, vec![7, 8, 9]));
    assert!(client.table("flown").await.unwrap().kind == TableKind::Append);
    assert!(!client.create_table(&flown).await.unwrap(), "already there");

    let stats = client.stats().await.unwrap();
    assert_eq!(stats["log"]["replayed_tables"], 3, "{stats}");
    assert_eq!(stats["log"]["replayed_rows"].as_u64().unwrap(), 150 + 3 + 6);
    let tables = stats["tables"].as_array().unwrap();
    let ledger_stats = tables.iter().find(|t| t["name"] == "ledger").unwrap();
    assert_eq!(ledger_stats["log"]["replayed_rows"], 150, "{ledger_stats}");
    assert!(ledger_stats["log"]["replay_us"].is_u64());

    // New rows continue the positions, and the keyed state goes on from where it was.
    client
        .publish("ledger", vec![int_batch(150..160)])
        .await
        .unwrap();
    client
        .publish("book", vec![quotes(&[("A", 9.0), ("E", 5.0)])])
        .await
        .unwrap();
    let ledger = wait_for(&mut client, "ledger", |s| s.num_rows() == 160).await;
    assert_eq!(ledger.rows, 0..160);
    assert_eq!(i64_column(&ledger.batches, 0), (0..160).collect::<Vec<_>>());
    let want = book(&[("A", 9.0), ("B", 20.5), ("D", 4.0), ("E", 5.0)]);
    wait_for(&mut client, "book", |s| book_state(&s.batches) == want).await;
    let stats = client.stats().await.unwrap();
    let ledger_stats = stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ledger")
        .cloned()
        .unwrap();
    assert!(
        ledger_stats["log"]["bytes"].as_u64().unwrap() > 0
            && ledger_stats["log"]["fsyncs"].as_u64().unwrap() >= 1,
        "{ledger_stats}"
    );
}

#[tokio::test]
async fn sigterm_syncs_the_logs_exits_0_and_the_rows_survive() {
    let (data, config) = setup("durable-term");
    // No periodic cycle for an hour and no fsync while running: the rows put are only
    // staged, and only the stop's last cycle and its sync put them on disk.
    let args = [
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--period-ms",
        "3600000",
        "--sync",
        "never",
    ];
    let server = Server::start(&args);
    let mut client = connect(&server).await;
    client
        .publish("ledger", vec![int_batch(0..40)])
        .await
        .unwrap();
    client
        .publish("book", vec![quotes(&[("X", 1.5)])])
        .await
        .unwrap();
    assert_eq!(client.snapshot("ledger").await.unwrap().num_rows(), 0);
    server.signal("TERM");
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("logs flushed and synced"), "{stderr}");
    assert!(!data.join(".lock").exists(), "released: {stderr}");

    let server = Server::start(&args);
    let mut client = connect(&server).await;
    let ledger = client.snapshot("ledger").await.unwrap();
    assert_eq!(
        (ledger.rows, i64_column(&ledger.batches, 0)),
        (0..40, (0..40).collect())
    );
    let b = client.snapshot("book").await.unwrap();
    assert_eq!(book_state(&b.batches), book(&[("X", 1.5)]));
}

#[tokio::test]
async fn a_second_server_on_one_data_dir_is_refused_naming_the_first() {
    let (data, config) = setup("durable-lock");
    let dir = data.to_str().unwrap();
    let first = Server::start(&["--config", &config, "--data-dir", dir]);
    let (status, stderr) = refused(&["--config", &config, "--data-dir", dir]);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("in use by process {}", first.pid())) && stderr.contains(dir),
        "{stderr}"
    );
    // The first server is unharmed.
    let mut client = connect(&first).await;
    client
        .publish("ledger", vec![int_batch(0..2)])
        .await
        .unwrap();
    wait_for(&mut client, "ledger", |s| s.num_rows() == 2).await;
}

#[tokio::test]
async fn dropping_a_durable_table_deletes_its_log() {
    let (data, config) = setup("durable-drop");
    let args = [
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--period-ms",
        "5",
    ];
    let flown = CreateTable::new("flown", int_schema())
        .with_kind(TableKind::Append)
        .durable();
    let server = Server::start(&args);
    let mut client = connect(&server).await;
    assert!(client.create_table(&flown).await.unwrap());
    client
        .publish("flown", vec![int_batch(0..5)])
        .await
        .unwrap();
    wait_for(&mut client, "flown", |s| s.num_rows() == 5).await;
    assert!(data.join("flown").is_dir());
    assert_eq!(client.drop_table("flown").await.unwrap(), ["flown"]);
    assert!(!data.join("flown").exists(), "the log is gone");
    assert!(client.create_table(&flown).await.unwrap());
    assert_eq!(client.snapshot("flown").await.unwrap().num_rows(), 0);
    client
        .publish("flown", vec![int_batch(50..52)])
        .await
        .unwrap();
    wait_for(&mut client, "flown", |s| s.num_rows() == 2).await;
    server.signal("TERM");
    assert_eq!(server.wait().0.code(), Some(0));

    let server = Server::start(&args);
    let mut client = connect(&server).await;
    let f = client.snapshot("flown").await.unwrap();
    assert_eq!((f.rows, i64_column(&f.batches, 0)), (0..2, vec![50, 51]));
}

#[tokio::test]
// Counts compared exactly: whole numbers, exact in an f64.
#[allow(clippy::float_cmp)]
async fn the_metrics_report_log_bytes_fsyncs_and_the_replay() {
    let (data, config) = setup("durable-metrics");
    let args = [
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--period-ms",
        "5",
        "--metrics",
        "127.0.0.1:0",
    ];
    {
        let server = Server::start(&args);
        let mut client = connect(&server).await;
        client
            .publish("ledger", vec![int_batch(0..8)])
            .await
            .unwrap();
        wait_for(&mut client, "ledger", |s| s.num_rows() == 8).await;
        let (_, body) = http_get(server.metrics.as_ref().unwrap(), "/metrics");
        let value = |name: &str| -> f64 {
            body.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {body}"))
        };
        assert!(value("tickertable_log_bytes_total") > 0.0);
        assert!(value("tickertable_log_fsyncs_total") >= 1.0);
        assert!(value("tickertable_table_log_bytes_total{table=\"ledger\"}") > 0.0);
        assert!(!body.contains("tickertable_table_log_bytes_total{table=\"scratch\"}"));
        server.signal("TERM");
        assert_eq!(server.wait().0.code(), Some(0));
    }
    let server = Server::start(&args);
    let (_, body) = http_get(server.metrics.as_ref().unwrap(), "/metrics");
    assert!(
        body.contains("tickertable_log_replayed_rows 8\n")
            && body.contains("tickertable_table_log_replayed_rows{table=\"ledger\"} 8\n"),
        "{body}"
    );
}

/// A durable blink table and two history tables of it (`history = true`).
const HISTORY: &str = r#"
[[table]]
name = "ticks"
kind = "blink"
durable = true
columns = [{ name = "v", type = "int64", nullable = false }]

[[derived]]
name = "ticks_all"
source = "ticks"
kind = "blink_to_append_only"
history = true

[[derived]]
name = "ticks_last"
source = "ticks"
kind = "ring_table"
capacity = 3
history = true
"#;

/// History tables start, after a SIGKILL and a restart, with every row the durable blink
/// table showed before, then follow its new rows.
#[tokio::test]
async fn history_tables_bring_a_blinks_rows_back_after_a_sigkill() {
    let (data, config) = setup_with("durable-history", HISTORY);
    let args = [
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--period-ms",
        "5",
    ];
    {
        let server = Server::start(&args);
        let mut client = connect(&server).await;
        client
            .publish("ticks", vec![int_batch(0..5)])
            .await
            .unwrap();
        // Visible, so (every-cycle, the default) on disk.
        wait_for(&mut client, "ticks_all", |s| s.num_rows() == 5).await;
        server.signal("KILL");
        let (status, _) = server.wait();
        assert_eq!(status.code(), None, "killed by the signal");
    }
    let server = Server::start(&args);
    let mut client = connect(&server).await;
    let all = client.snapshot("ticks_all").await.unwrap();
    assert_eq!(i64_column(&all.batches, 0), (0..5).collect::<Vec<_>>());
    client
        .publish("ticks", vec![int_batch(5..8)])
        .await
        .unwrap();
    let all = wait_for(&mut client, "ticks_all", |s| s.num_rows() == 8).await;
    assert_eq!(i64_column(&all.batches, 0), (0..8).collect::<Vec<_>>());
    let last = wait_for(&mut client, "ticks_last", |s| {
        i64_column(&s.batches, 0) == [5, 6, 7]
    })
    .await;
    assert_eq!(last.rows.end - last.rows.start, 3);
}
