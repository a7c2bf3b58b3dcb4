//! `ticker-load` as columnar work: files split into many small ranges parsed on several
//! threads still load exactly their rows, in order; null markers, inferred schemas, bad
//! lines among good ones, keyed last-write-wins and served loads with retries.
//!
//! Contents are checked on an engine the test serves over Flight (manual cycles, so nothing
//! moves while the load runs), except where only the summary is looked at.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use tickertable::test_util::{i64_column, manual_engine, trade_schema};
use tickertable::{DynamicWriterOptions, Engine, PublisherOptions, TableKind};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickertable-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the CSV file");
    path
}

/// A trades CSV: header, then `Ts = first..first + n` with `Sym = S{ts % 7}`.
fn trades(first: i64, n: i64) -> String {
    let mut s = String::from("Ts,Sym,Price,Size\n");
    for ts in first..first + n {
        writeln!(s, "{ts},S{},{}.25,{}", ts % 7, ts % 100, ts % 1000).expect("a String");
    }
    s
}

fn load(args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run ticker-load");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn column_f64(batches: &[RecordBatch], col: usize) -> Vec<Option<f64>> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_primitive::<Float64Type>().iter())
        .collect()
}

fn column_i64(batches: &[RecordBatch], col: usize) -> Vec<Option<i64>> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_primitive::<Int64Type>().iter())
        .collect()
}

fn column_str(batches: &[RecordBatch], col: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(col)
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_owned))
        })
        .collect()
}

/// An engine serving an append table `trades` of `schema`.
fn served(
    schema: Arc<Schema>,
) -> (
    Engine,
    tickertable::Table,
    tickertable::flight::FlightServer,
) {
    let engine = manual_engine();
    let (table, _publisher) = engine
        .table_publisher(
            "trades",
            schema,
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .expect("create the table");
    let server = engine
        .serve_flight("127.0.0.1:0")
        .expect("serve the engine");
    (engine, table, server)
}

#[test]
fn smoke() {
    let dir = temp_dir("columnar-smoke");
    let path = write(&dir, "t.csv", &trades(0, 10));
    let (out, text) = load(&[path.to_str().unwrap(), "--table", "trades"]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("written   10"), "{text}");
    assert!(text.contains("visible   10 rows"), "{text}");
    assert!(text.contains("rows/s") && text.contains("MB/s"), "{text}");
}

#[test]
fn parallel_parsing_loads_exactly_the_rows_of_every_file_in_order() {
    let dir = temp_dir("columnar-order");
    // About 3.6 MB in ranges of 4 KiB: some 900 ranges over four threads.
    let a = write(&dir, "a.csv", &trades(0, 100_000));
    let b = write(&dir, "b.csv", &trades(100_000, 7_777));
    let (engine, table, server) = served(trade_schema());
    let (out, text) = load(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
        "--threads",
        "4",
        "--range-bytes",
        "4096",
        "--batch",
        "1000",
        "--put-bytes",
        "100000",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lines     107777"), "{text}");
    assert!(text.contains("written   107777"), "{text}");
    engine.run_cycle();
    let snapshot = table.snapshot();
    let batches: Vec<RecordBatch> = snapshot.batches().cloned().collect();
    assert_eq!(i64_column(&batches, 0), (0..107_777).collect::<Vec<_>>());
    let sizes: Vec<Option<i64>> = (0..107_777).map(|ts| Some(ts % 1000)).collect();
    assert_eq!(column_i64(&batches, 3), sizes);
    // How many rows each chunk holds is the table's business: it coalesces small chunks.
}

#[test]
fn null_markers_load_as_nulls_and_nan_stays_a_float() {
    let dir = temp_dir("columnar-nulls");
    let csv = "Ts,Sym,Price,Size\n\
               1,NA,NaN,\n\
               2,,N/A,NULL\n\
               3,null,1.5,NaN\n\
               4,\"NA\",,7\n\
               5,x,2.5,8\n";
    let path = write(&dir, "n.csv", csv);
    let schema = Arc::new(Schema::new(vec![
        Field::new("Ts", DataType::Int64, false),
        Field::new("Sym", DataType::Utf8, true),
        Field::new("Price", DataType::Float64, true),
        Field::new("Size", DataType::Int64, true),
    ]));
    let (engine, table, server) = served(schema.clone());
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(r#"nulls     "", "NA", "N/A", "NULL", "null", "NaN""#),
        "{text}"
    );
    engine.run_cycle();
    let batches: Vec<RecordBatch> = table.snapshot().batches().cloned().collect();
    assert_eq!(
        column_str(&batches, 1),
        [None, None, None, None, Some("x".to_owned())]
    );
    let price = column_f64(&batches, 2);
    assert!(price[0].unwrap().is_nan(), "NaN is a float: {price:?}");
    assert_eq!(price[1..], [None, Some(1.5), None, Some(2.5)]);
    assert_eq!(
        column_i64(&batches, 3),
        [None, None, None, Some(7), Some(8)]
    );

    // `--null-values` replaces the list: `-` only, so "NA" no longer parses as an integer
    // and an empty utf8 field is an empty string.
    let csv = "Ts,Sym,Price,Size\n1,,1.0,-\n2,x,2.0,NA\n3,-,-,3\n";
    let path = write(&dir, "custom.csv", csv);
    let (engine, table, server) = served(schema);
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
        "--null-values",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(":3: column \"Size\": \"NA\" is not an integer"),
        "{text}"
    );
    engine.run_cycle();
    let batches: Vec<RecordBatch> = table.snapshot().batches().cloned().collect();
    assert_eq!(column_str(&batches, 1), [Some(String::new()), None]);
    assert_eq!(column_f64(&batches, 2), [Some(1.0), None]);
    assert_eq!(column_i64(&batches, 3), [None, Some(3)]);
}

#[test]
fn a_null_in_a_non_nullable_served_column_is_a_bad_line() {
    let dir = temp_dir("columnar-not-null");
    let path = write(
        &dir,
        "t.csv",
        "Ts,Sym,Price,Size\n1,a,1.0,1\n2,NA,2.0,2\n3,c,3.0,3\n",
    );
    let (engine, table, server) = served(trade_schema());
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(":3: column \"Sym\": \"NA\" is a missing value and the column is not"),
        "{text}"
    );
    assert!(
        text.contains("not nullable: Ts, Sym, Price, Size"),
        "{text}"
    );
    engine.run_cycle();
    assert_eq!(i64_column(table.snapshot().batches(), 0), [1, 3]);
}

#[test]
fn an_inferred_schema_is_reported_with_the_lines_it_came_from() {
    let dir = temp_dir("columnar-infer");
    // Codes that happen to be digits in the first lines: inferred as int64, the common
    // surprise, and the later "A7" is then a bad line.
    let mut csv = String::from("Ts,Code,Price,Flag,Day\n");
    for i in 0..20 {
        let code = if i == 15 {
            "A7".to_owned()
        } else {
            format!("{i:03}")
        };
        writeln!(csv, "{i},{code},{i}.5,{},2024-05-{:02}", i % 2 == 0, i + 1).unwrap();
    }
    let path = write(&dir, "i.csv", &csv);
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "t",
        "--infer-lines",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("schema    Ts:int64,Code:int64,Price:float64,Flag:bool,Day:date32"),
        "{text}"
    );
    let origin = format!(
        "(inferred by arrow-csv from lines 2-11 of {} (10 records); every column is nullable",
        path.display()
    );
    assert!(text.contains(&origin), "{text}");
    assert!(
        text.contains(":17: column \"Code\": \"A7\" is not an integer"),
        "{text}"
    );
    assert!(text.contains("visible   19 rows"), "{text}");

    // The same file with the schema pinned loads every line.
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "t",
        "--schema",
        "Ts:int64,Code:utf8,Price:float64,Flag:bool,Day:date32",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("(from --schema; every column is nullable)"),
        "{text}"
    );
    assert!(text.contains("visible   20 rows"), "{text}");
}

#[test]
fn bad_lines_are_reported_with_line_numbers_while_the_good_lines_around_them_load() {
    let dir = temp_dir("columnar-bad");
    // Bad lines spread over many ranges, some next to each other, the first and last among
    // them; line 1 is the header.
    let bad_at = [2_u64, 3, 500, 501, 502, 7_919, 12_000, 20_001];
    let mut csv = String::from("Ts,Sym,Price,Size\n");
    let mut ts = 0;
    let mut good = Vec::new();
    for line in 2..=20_001_u64 {
        if bad_at.contains(&line) {
            match line % 4 {
                0 => csv.push_str("1,S1,not-a-price,10\n"),
                1 => csv.push_str("1,S1,1.5\n"),
                2 => csv.push_str("1,S1,1.5,10,extra\n"),
                _ => csv.push_str("x1,S1,1.5,10\n"),
            }
        } else {
            writeln!(csv, "{ts},S{},{}.25,{}", ts % 7, ts % 100, ts % 1000).unwrap();
            good.push(ts);
            ts += 1;
        }
    }
    let path = write(&dir, "bad.csv", &csv);
    let (engine, table, server) = served(trade_schema());
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
        "--threads",
        "3",
        "--range-bytes",
        "2048",
        "--show-errors",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("lines     20000"), "{text}");
    assert!(text.contains("written   19992"), "{text}");
    assert!(
        text.contains("failed    8 (8 bad lines, 0 not written)"),
        "{text}"
    );
    for line in bad_at {
        let needle = format!("{}:{line}: ", path.display());
        assert!(text.contains(&needle), "missing {needle} in\n{text}");
    }
    let reported = text.matches(&format!("{}:", path.display())).count();
    assert_eq!(reported, bad_at.len(), "{text}");
    assert!(text.contains("expected 4 fields, found 3"), "{text}");
    assert!(text.contains("expected 4 fields, found 5"), "{text}");
    assert!(
        text.contains("column \"Price\": \"not-a-price\" is not a number"),
        "{text}"
    );
    assert!(
        text.contains("column \"Ts\": \"x1\" is not an integer"),
        "{text}"
    );
    engine.run_cycle();
    assert_eq!(i64_column(table.snapshot().batches(), 0), good);

    // `--show-errors` limits what is printed, never what is counted.
    let (_, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--schema",
        "Ts:int64,Sym:utf8,Price:float64,Size:int64",
        "--range-bytes",
        "2048",
        "--show-errors",
        "3",
    ]);
    assert!(text.contains("failed    8 (8 bad lines"), "{text}");
    assert_eq!(text.matches(&format!("{}:", path.display())).count(), 3);
    assert!(
        text.contains(&format!("{}:500: ", path.display())),
        "{text}"
    );
}

#[test]
fn keyed_load_keeps_the_last_write_of_each_key() {
    let dir = temp_dir("columnar-keyed");
    // 50 keys written 400 times each in a shuffled order, over many ranges and two files;
    // the last line of each key (in the second file for some) must win, whole.
    let mut a = String::from("Ts,Sym,Price,Size\n");
    let mut b = String::from("Ts,Sym,Price,Size\n");
    let mut last = std::collections::BTreeMap::new();
    let mut seed = 7_u64;
    for ts in 0..20_000_i64 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let key = (seed >> 33) % 50;
        let size = i64::try_from(seed >> 50).unwrap();
        let out = if ts < 15_000 { &mut a } else { &mut b };
        if ts >= 15_000 && key >= 25 {
            continue; // keys 25.. are last written in the first file
        }
        writeln!(out, "{ts},K{key},{ts}.5,{size}").unwrap();
        last.insert(format!("K{key}"), (ts, size));
    }
    let a = write(&dir, "a.csv", &a);
    let b = write(&dir, "b.csv", &b);
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "book",
            trade_schema(),
            DynamicWriterOptions::default().with_key(["Sym"]),
        )
        .unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let (out, text) = load(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--table",
        "book",
        "--server",
        &server.url(),
        "--threads",
        "4",
        "--range-bytes",
        "1024",
        "--batch",
        "100",
        "--put-bytes",
        "20000",
    ]);
    assert!(out.status.success(), "{text}");
    engine.run_cycle();
    let batches: Vec<RecordBatch> = dtw.table().snapshot().batches().cloned().collect();
    let mut got = std::collections::BTreeMap::new();
    let (ts, sym, size) = (
        column_i64(&batches, 0),
        column_str(&batches, 1),
        column_i64(&batches, 3),
    );
    for i in 0..ts.len() {
        got.insert(sym[i].clone().unwrap(), (ts[i].unwrap(), size[i].unwrap()));
    }
    assert_eq!(got, last);

    // Embedded, the same files give the same 50 keys.
    let (out, text) = load(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--table",
        "book",
        "--kind",
        "keyed:Sym",
        "--range-bytes",
        "1024",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("embedded keyed table"), "{text}");
    assert_eq!(last.len(), 50);
    assert!(text.contains("visible   50 rows"), "{text}");
}

#[test]
fn a_served_load_retries_while_the_server_is_full() {
    let dir = temp_dir("columnar-full");
    let path = write(&dir, "t.csv", &trades(0, 30_000));
    // A threaded engine whose staging takes one put at a time: the next `DoPut`s are
    // refused (ResourceExhausted) until a cycle drains it, and are retried.
    let engine = Engine::builder()
        .period(std::time::Duration::from_millis(5))
        .staging_limit(1_000)
        .build()
        .unwrap();
    let (table, _publisher) = engine
        .table_publisher(
            "trades",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
        "--batch",
        "2000",
        "--range-bytes",
        "8192",
        "--put-bytes",
        "1",
        "--timings",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("written   30000"), "{text}");
    drop(server);
    drop(engine); // a final cycle applies what is staged
    assert_eq!(
        i64_column(table.snapshot().batches(), 0),
        (0..30_000).collect::<Vec<_>>()
    );
}

#[test]
fn quoted_line_breaks_load_with_newlines_in_values() {
    let dir = temp_dir("columnar-quoted");
    let mut csv = String::from("Ts,Sym,Price,Size\n");
    for ts in 0..2_000 {
        writeln!(csv, "{ts},\"S{ts}\nsecond line, with a comma\",1.5,{ts}").unwrap();
    }
    let path = write(&dir, "q.csv", &csv);
    let (engine, table, server) = served(trade_schema());
    let (out, text) = load(&[
        path.to_str().unwrap(),
        "--table",
        "trades",
        "--server",
        &server.url(),
        "--newlines-in-values",
        "--range-bytes",
        "1000",
        "--threads",
        "3",
    ]);
    assert!(out.status.success(), "{text}");
    engine.run_cycle();
    let batches: Vec<RecordBatch> = table.snapshot().batches().cloned().collect();
    assert_eq!(i64_column(&batches, 0), (0..2_000).collect::<Vec<_>>());
    assert_eq!(
        column_str(&batches, 1)[1999].as_deref(),
        Some("S1999\nsecond line, with a comma")
    );
}
