//! Shared helpers for the tests that run `ticker-serve` as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The hang guard for anything that waits on the server. Never asserted on.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);

/// A temp directory of its own for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickertable-serve-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// Writes `text` to `dir/name`.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a file");
    path
}

/// A running `ticker-serve` on a loopback port; killed on drop if still running.
pub(crate) struct Server {
    child: Child,
    /// `grpc://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// `127.0.0.1:PORT` of the metrics endpoint, with `--metrics`.
    pub(crate) metrics: Option<String>,
    stderr: Option<ChildStderr>,
}

impl Server {
    /// Starts `ticker-serve --listen 127.0.0.1:0 ARGS` and reads where it listens.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ticker-serve"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ticker-serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        let mut metrics = None;
        let wants_metrics = args.contains(&"--metrics");
        while url.is_none() || (wants_metrics && metrics.is_none()) {
            let Some(Ok(line)) = lines.next() else {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("ticker-serve ended before listening: {err}");
            };
            if let Some(u) = line.strip_prefix("ticker-serve: listening on ") {
                url = Some(u.to_owned());
            } else if let Some(m) = line.strip_prefix("ticker-serve: metrics on http://") {
                metrics = Some(m.trim_end_matches("/metrics").to_owned());
            }
        }
        // Keep reading stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let stderr = child.stderr.take();
        Self {
            child,
            url: url.expect("read above"),
            metrics,
            stderr,
        }
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to the server.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the server to exit (hang-guarded) and returns its status and stderr.
    pub(crate) fn wait(mut self) -> (ExitStatus, String) {
        let mut stderr = self.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = std::time::Instant::now() + HANG_GUARD;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ticker-serve did not exit (hang guard)"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, reader.join().expect("stderr reader"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `ticker-serve ARGS` expecting it to refuse to start: its status and stderr.
pub(crate) fn refused(args: &[&str]) -> (ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-serve"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ticker-serve");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `GET path` from `addr` over plain HTTP/1.1: the status line and the body.
pub(crate) fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(HANG_GUARD)).expect("set a timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The config most tests start from: a blink `trades` table, an append `inbox` with a
/// limit, a ring, a keyed `book`, and derived tables of `trades`.
pub(crate) const TABLES: &str = r#"
[[table]]
name = "trades"
kind = "blink"
columns = [
    { name = "Ts", type = "int64", nullable = false },
    { name = "Sym", type = "utf8", nullable = false },
    { name = "Price", type = "float64", nullable = false },
    { name = "Size", type = "int64", nullable = false },
]

[[table]]
name = "inbox"
kind = "append"
limit = 1000000
columns = [{ name = "v", type = "int64", nullable = false }]

[[table]]
name = "last10"
kind = "ring"
capacity = 10
columns = [{ name = "v", type = "int64", nullable = false }]

[[table]]
name = "book"
kind = "keyed"
key = ["Sym"]
columns = [{ name = "Sym", type = "utf8", nullable = false }, { name = "Px", type = "float64" }]

[[derived]]
name = "recent"
source = "trades"
kind = "ring_table"
capacity = 100

[[derived]]
name = "history"
source = "trades"
kind = "blink_to_append_only"

[[derived]]
name = "tail5"
source = "recent"
kind = "tail"
capacity = 5
"#;

/// Polls a served table's snapshot (hang-guarded) until it satisfies `done`, and returns it.
pub(crate) async fn wait_for(
    client: &mut tickertable::flight::Client,
    table: &str,
    done: impl Fn(&tickertable::flight::RemoteSnapshot) -> bool,
) -> tickertable::flight::RemoteSnapshot {
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let s = client.snapshot(table).await.expect("snapshot");
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("hang guard")
}
