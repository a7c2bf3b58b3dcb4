//! pyarrow's Flight client against a `ticker-serve` process: `tests/pyarrow/serve_actions.py`
//! runs `ListActions`, `create_table` (idempotent, and a clash), `DoPut`, `stats`,
//! `drop_table` with a live stream open, and a live stream across a SIGTERM.
//!
//! Needs `python3` with `pyarrow`; `TICKERTABLE_REQUIRE_PYARROW=1` makes a missing pyarrow a
//! failure, elsewhere the test says it was skipped.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::{temp_dir, write, Server};
use tickertable::flight::{Client, CreateTable};
use tickertable::test_util::{int_batch, int_schema};
use tickertable::TableKind;

fn pyarrow_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pyarrow.flight"])
        .status()
        .is_ok_and(|s| s.success())
}

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/pyarrow/serve_actions.py"
);

#[test]
fn smoke() {
    assert!(std::path::Path::new(SCRIPT).exists());
}

#[test]
fn pyarrow_manages_tables_and_sees_the_stop() {
    if !pyarrow_available() {
        assert!(
            std::env::var_os("TICKERTABLE_REQUIRE_PYARROW").is_none(),
            "pyarrow is required (TICKERTABLE_REQUIRE_PYARROW is set) but cannot be imported"
        );
        eprintln!("skipped: python3 with pyarrow is not installed");
        return;
    }
    let dir = temp_dir("pyarrow");
    let token = write(&dir, "token", "pytoken");
    let server = Server::start(&[
        "--token-file",
        token.to_str().unwrap(),
        "--period-ms",
        "3600000",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut client = runtime.block_on(async {
        let mut c = Client::connect(&server.url)
            .await
            .unwrap()
            .with_token("pytoken")
            .unwrap();
        c.create_table(&CreateTable::new("inbox", int_schema()).with_kind(TableKind::Append))
            .await
            .unwrap();
        c
    });
    let mut py = Command::new("python3")
        .args([SCRIPT, &server.url, "pytoken"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let output = py.wait_with_output().unwrap();
        panic!(
            "pyarrow script failed before the stop: {line}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Staged only (no periodic cycle for an hour): the stop's last cycle delivers them.
    runtime
        .block_on(client.publish("inbox", vec![int_batch(0..3)]))
        .unwrap();
    server.signal("TERM");
    py.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let (status, stderr) = server.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let output = py.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "pyarrow script failed\nstdout:\n{rest}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(rest.contains("pyarrow serve actions: ok"), "{rest}");
}
