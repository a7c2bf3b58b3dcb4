//! `ticker-load` on generated CSV files with a few bad lines: exactly the good lines load,
//! the bad ones are reported with their line numbers, and the exit code says so.

use std::io::Write;
use std::process::Command;

use tickertable::test_util::{i64_column, manual_engine, trade_schema};
use tickertable::DynamicWriterOptions;

/// Writes a trades CSV of `n` good lines (Ts = 0..n) with bad lines at the given 1-based
/// line numbers (the header is line 1). Returns the path.
fn write_csv(dir: &std::path::Path, name: &str, n: i64, bad_at: &[u64]) -> std::path::PathBuf {
    write_lines(dir, name, n, bad_at).expect("write the CSV file")
}

fn write_lines(
    dir: &std::path::Path,
    name: &str,
    n: i64,
    bad_at: &[u64],
) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    writeln!(f, "Ts,Sym,Price,Size")?;
    let mut line = 1u64;
    let mut ts = 0;
    while ts < n {
        line += 1;
        if bad_at.contains(&line) {
            match line % 3 {
                0 => writeln!(f, "{ts},S1,not-a-price,10")?,
                1 => writeln!(f, "{ts},S1,1.5")?,
                _ => writeln!(f, "oops,S1,1.5,10")?,
            }
        } else {
            writeln!(f, "{ts},S{},{}.25,{}", ts % 7, ts % 100, ts % 1000)?;
            ts += 1;
        }
    }
    Ok(path)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tickertable-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

#[test]
fn smoke() {
    let dir = temp_dir("smoke");
    let path = write_csv(&dir, "ok.csv", 100, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([path.to_str().unwrap(), "--table", "trades", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("written   100"), "{stdout}");
    assert!(stdout.contains("visible   100 rows"), "{stdout}");
}

#[test]
fn bad_lines_are_reported_with_line_numbers_and_the_good_ones_load() {
    let dir = temp_dir("bad");
    let a = write_csv(&dir, "a.csv", 5_000, &[3, 10, 4_000]);
    let b = write_csv(&dir, "b.csv", 3_000, &[2]);
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--table",
            "trades",
            "--quiet",
        ])
        .args([
            "--schema",
            "Ts:int64,Sym:utf8,Price:float64,Size:int64",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("lines     8004"), "{stdout}");
    assert!(stdout.contains("written   8000"), "{stdout}");
    assert!(
        stdout.contains("failed    4 (4 bad lines, 0 not written)"),
        "{stdout}"
    );
    assert!(stdout.contains("visible   8000 rows"), "{stdout}");
    for (file, line) in [(&a, 3), (&a, 10), (&a, 4000), (&b, 2)] {
        let needle = format!("{}:{line}:", file.display());
        assert!(stdout.contains(&needle), "missing {needle} in\n{stdout}");
    }
    assert!(
        stdout.contains("column \"Price\": \"not-a-price\" is not a number"),
        "{stdout}"
    );
    assert!(stdout.contains("expected 4 fields, found 3"), "{stdout}");
}

#[test]
fn keyed_load_keeps_the_last_line_of_each_key_and_skips_bad_lines() {
    let dir = temp_dir("keyed");
    // Sym = S{ts % 7}: 7 keys; the last good line of each is among the last 7.
    let path = write_csv(&dir, "k.csv", 2_000, &[4, 50]);
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([path.to_str().unwrap(), "--table", "book", "--quiet"])
        .args(["--kind", "keyed:Sym", "--threads", "3", "--batch", "64"])
        .args(["--schema", "Ts:int64,Sym:utf8,Price:float64,Size:int64"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("written   2000"), "{stdout}");
    assert!(
        stdout.contains("failed    2 (2 bad lines, 0 not written)"),
        "{stdout}"
    );
    assert!(stdout.contains("visible   7 rows"), "{stdout}");
    let bad = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([path.to_str().unwrap(), "--table", "book", "--quiet"])
        .args(["--kind", "keyed:Nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Nope"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn loads_into_a_served_engine() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer("trades", trade_schema(), DynamicWriterOptions::default())
        .unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let dir = temp_dir("served");
    let path = write_csv(&dir, "t.csv", 1_000, &[5]);
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([
            path.to_str().unwrap(),
            "--table",
            "trades",
            "--quiet",
            "--server",
            &server.url(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("written   1000"), "{stdout}");
    engine.run_cycle();
    assert_eq!(
        i64_column(dtw.table().snapshot().batches(), 0),
        (0..1_000).collect::<Vec<_>>()
    );
}

#[test]
fn keyed_load_into_a_served_engine_ends_with_the_last_line_of_each_key() {
    let engine = manual_engine();
    let dtw = engine
        .dynamic_table_writer(
            "book",
            trade_schema(),
            DynamicWriterOptions::default().with_key(["Sym"]),
        )
        .unwrap();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let dir = temp_dir("served-keyed");
    let path = write_csv(&dir, "k.csv", 5_000, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([path.to_str().unwrap(), "--table", "book", "--quiet"])
        .args([
            "--server",
            &server.url(),
            "--threads",
            "4",
            "--batch",
            "100",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    engine.run_cycle();
    let mut ts = i64_column(dtw.table().snapshot().batches(), 0);
    ts.sort_unstable();
    assert_eq!(
        ts,
        (4_993..5_000).collect::<Vec<_>>(),
        "the last line of each of the 7 keys"
    );
}
