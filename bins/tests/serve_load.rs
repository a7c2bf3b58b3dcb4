//! `ticker-load --server grpc://... --create` into a `ticker-serve` process: the table is
//! created from the CSV's inferred schema (the summary says from which lines), the rows land,
//! a second identical `--create` reuses the table, and one of another kind is refused.

mod support;

use std::fmt::Write as _;
use std::process::Command;

use support::{temp_dir, write, Server};
use tickertable::flight::Client;
use tickertable::test_util::i64_column;
use tickertable::TableKind;

fn csv(n: i64) -> String {
    let mut text = String::from("Ts,Sym,Price,Size\n");
    for i in 0..n {
        // Every 10th price is missing: it loads as a null.
        let price = if i % 10 == 3 {
            "NA".to_owned()
        } else {
            format!("{i}.5")
        };
        let _ = writeln!(text, "{i},S{},{price},{}", i % 7, i % 100);
    }
    text
}

fn load(server: &Server, file: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-load"))
        .args([
            file,
            "--table",
            "trades",
            "--server",
            &server.url,
            "--quiet",
        ])
        .args(extra)
        .output()
        .expect("run ticker-load");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn smoke() {
    let server = Server::start(&[]);
    let dir = temp_dir("load-smoke");
    let file = write(&dir, "t.csv", &csv(10));
    let (ok, text) = load(&server, file.to_str().unwrap(), &[]);
    assert!(!ok, "no table and no --create: refused\n{text}");
    assert!(text.contains("trades"), "{text}");
}

#[tokio::test]
async fn create_makes_the_table_from_the_inferred_schema_and_loads_into_it() {
    let server = Server::start(&["--period-ms", "5"]);
    let dir = temp_dir("load-create");
    let file = write(&dir, "t.csv", &csv(1000));
    let file = file.to_str().unwrap();
    let (ok, text) = load(&server, file, &["--create"]);
    assert!(ok, "{text}");
    assert!(text.contains("served append table (created)"), "{text}");
    assert!(
        text.contains("Ts:int64,Sym:utf8,Price:float64,Size:int64"),
        "{text}"
    );
    assert!(
        text.contains("inferred by arrow-csv from lines 2-"),
        "{text}"
    );

    let mut client = Client::connect(&server.url).await.unwrap();
    let table = client.table("trades").await.unwrap();
    assert_eq!(table.kind, TableKind::Append);
    let rows = |client: &mut Client| {
        let mut c = client.clone();
        async move { c.snapshot("trades").await.expect("snapshot") }
    };
    let snap = tokio::time::timeout(support::HANG_GUARD, async {
        loop {
            let s = rows(&mut client).await;
            if s.num_rows() == 1000 {
                return s;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("hang guard");
    assert_eq!(i64_column(&snap.batches, 0), (0..1000).collect::<Vec<_>>());
    let nulls: usize = snap.batches.iter().map(|b| b.column(2).null_count()).sum();
    assert_eq!(nulls, 100, "NA loads as a null");

    // The same --create again: the table is reused and the rows appended.
    let (ok, text) = load(&server, file, &["--create"]);
    assert!(ok, "{text}");
    assert!(text.contains("(existed, the same)"), "{text}");
    // Another kind: refused, nothing loaded.
    let (ok, text) = load(&server, file, &["--create", "--kind", "ring:10"]);
    assert!(!ok, "{text}");
    assert!(text.contains("exists"), "{text}");
}
