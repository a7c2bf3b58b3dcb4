//! W10: the benchmark rows over Arrow Flight on loopback, with the server in a process of its
//! own (`flight_server`) and the clients in this one.
//!
//! One report per part:
//!
//! - `live`: one live subscription to the blink table `trades` while the server publishes `n`
//!   rows into it in `--batch`-row batches as fast as it can; from the feed's start to the
//!   message that carries position `n - 1`;
//! - `put x1`, `put x4`: `n` rows in fresh `--batch`-row batches, one `DoPut` per batch, from 1
//!   and from 4 clients (each its own connection), until a listener in the server saw the last
//!   row; `put stream x1`, `put stream x4`: the same through one streaming `DoPut` per client
//!   (`Client::publisher`, each batch staged and acknowledged as it arrives);
//! - `fanout x32`: 32 live subscriptions (each its own connection) to `trades` while the server
//!   publishes `n / 4` rows; rows/s is the sum over the subscribers;
//! - `pyarrow live`: `w10_pyarrow.py` reading the live stream of `trades` (needs `python3`
//!   with pyarrow; skipped with a note otherwise);
//! - `snapshot`: one `DoGet` of the append table `big` grown to `n` rows, with this crate's
//!   client and with pyarrow's `read_all`.
//!
//! `mb_per_s` counts the rows' Arrow IPC body: 31 bytes a row (three 8-byte values, a 4-byte
//! offset and a 3-byte symbol). `cpu_server_pct` and `cpu_client_pct` are each process's CPU
//! time over the part's wall time (200 = both cores). `lost` counts rows a lagging subscriber
//! skipped when it was resynchronised (a blink table's snapshot holds one cycle's rows).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use tickertable::flight::Client;

use crate::args::{Part, Run};
use crate::data::{self, Symbols};
use crate::report::{round3, Report};
use crate::workload::{epoch_ns, flight_server, share};

/// Bytes of Arrow IPC body per benchmark row.
const ROW_BYTES: f64 = 31.0;
/// Subscribers of the fan-out part.
const FANOUT: usize = 32;

/// Runs W10's parts (or, in the server child, serves) and returns their reports.
pub(crate) fn run(run: &Run) -> Result<Vec<Report>> {
    if std::env::var_os(flight_server::CHILD).is_some() {
        flight_server::serve(run)?;
        return Ok(Vec::new());
    }
    let mut server = Server::start(run)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    let mut reports = Vec::new();
    let (mut fed, mut put) = (0, 0);
    for part in &run.parts {
        match part {
            Part::Live => reports.push(live(run, &rt, &mut server, &mut fed)?),
            Part::Put => {
                for (clients, stream) in [(1, false), (4, false), (1, true), (4, true)] {
                    reports.push(puts(run, &rt, &mut server, clients, stream, &mut put)?);
                }
            }
            Part::Fanout => reports.push(fanout(run, &rt, &mut server, &mut fed)?),
            Part::Pyarrow => match pyarrow_live(run, &mut server, &mut fed) {
                Ok(r) => reports.push(r),
                Err(e) => eprintln!("W10 pyarrow live skipped: {e:#}"),
            },
            Part::Snapshot => reports.extend(snapshot(run, &rt, &mut server)?),
        }
    }
    server.stop()?;
    Ok(reports)
}

/// The server child and its command pipe.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl Server {
    fn start(run: &Run) -> Result<Self> {
        let exe = std::env::current_exe().context("finding ticker-bench")?;
        let mut child = Command::new(exe)
            .args(["--workload", "W10", "--batch", &run.batch.to_string()])
            .args(["--cycle-ms", &run.cycle.as_millis().to_string()])
            .args(["--n", &run.n.to_string()])
            .env(flight_server::CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the W10 server")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
        let mut server = Self {
            child,
            stdin,
            stdout,
            url: String::new(),
        };
        let line = server.read()?;
        line.strip_prefix("url ")
            .ok_or_else(|| anyhow!("the server said {line:?}"))?
            .clone_into(&mut server.url);
        Ok(server)
    }

    fn send(&mut self, command: &str) -> Result<()> {
        writeln!(self.stdin, "{command}").context("writing to the server")?;
        self.stdin.flush().context("writing to the server")
    }

    fn read(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the W10 server exited");
        }
        Ok(line.trim().to_owned())
    }

    fn expect(&mut self, want: &str) -> Result<()> {
        let line = self.read()?;
        ensure!(line == want, "the server said {line:?}, not {want:?}");
        Ok(())
    }

    /// The server's CPU seconds so far.
    fn cpu(&self) -> Result<f64> {
        cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    fn stop(mut self) -> Result<()> {
        drop(self.stdin);
        let status = self.child.wait()?;
        ensure!(status.success(), "the W10 server exited with {status}");
        Ok(())
    }
}

/// User plus system CPU seconds of the process whose `stat` file this is (in clock ticks of
/// 1/100 s, the Linux ABI's `USER_HZ`).
fn cpu_secs(stat: &str) -> Result<f64> {
    let text = std::fs::read_to_string(stat).with_context(|| format!("reading {stat}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("{stat}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<f64> {
        let v: u64 = fields
            .get(i)
            .ok_or_else(|| anyhow!("{stat}: too few fields"))?
            .parse()?;
        #[allow(clippy::cast_precision_loss)]
        Ok(v as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// CPU of both processes over one part.
struct Cpu {
    server: f64,
    client: f64,
    start: Instant,
}

impl Cpu {
    fn start(server: &Server) -> Result<Self> {
        Ok(Self {
            server: server.cpu()?,
            client: cpu_secs("/proc/self/stat")?,
            start: Instant::now(),
        })
    }

    /// Finishes the part: its report with rows, rates and both processes' CPU.
    #[allow(clippy::cast_precision_loss)]
    fn report(&self, server: &Server, run: &Run, part: &str, rows: u64) -> Result<Report> {
        let secs = self.start.elapsed().as_secs_f64();
        let server_cpu = server.cpu()? - self.server;
        let client_cpu = cpu_secs("/proc/self/stat")? - self.client;
        let mut r = Report::bare(run, part);
        r.set("rows", rows);
        r.set("secs", round3(secs));
        r.set("rows_per_s", (rows as f64 / secs).round());
        r.set("mb_per_s", round3(rows as f64 * ROW_BYTES / secs / 1e6));
        r.set("cpu_server_pct", (server_cpu / secs * 100.0).round());
        r.set("cpu_client_pct", (client_cpu / secs * 100.0).round());
        Ok(r)
    }
}

/// Reads `sub` until a message carries position `end - 1`; the rows received and the resets.
async fn follow(sub: &mut tickertable::flight::RemoteSubscription, end: u64) -> Result<u64> {
    let mut rows = 0u64;
    while sub.rows().end < end {
        let m = sub
            .next()
            .await
            .ok_or_else(|| anyhow!("the live stream ended"))??;
        rows += m.batch.map_or(0, |b| b.num_rows() as u64);
    }
    Ok(rows)
}

/// Part (a): one live subscriber.
fn live(
    run: &Run,
    rt: &tokio::runtime::Runtime,
    server: &mut Server,
    fed: &mut u64,
) -> Result<Report> {
    let url = server.url.clone();
    let mut sub = rt.block_on(async {
        let mut client = Client::connect(&url).await?;
        let mut sub = client.subscribe("trades").await?;
        sub.next().await.transpose()?;
        anyhow::Ok(sub)
    })?;
    let end = *fed + run.n;
    let cpu = Cpu::start(server)?;
    server.send(&format!("feed {}", run.n))?;
    let rows = rt.block_on(follow(&mut sub, end))?;
    let mut r = cpu.report(server, run, "live", rows)?;
    server.expect("fed")?;
    *fed = end;
    r.set("resets", sub.resets().saturating_sub(1));
    r.set("lost", run.n.saturating_sub(rows));
    Ok(r)
}

/// Part (b): `run.n` rows by `DoPut` from `clients` clients, one call per batch or (`stream`)
/// one streaming call per client ([`Client::publisher`]).
fn puts(
    run: &Run,
    rt: &tokio::runtime::Runtime,
    server: &mut Server,
    clients: usize,
    stream: bool,
    put: &mut u64,
) -> Result<Report> {
    let end = *put + run.n;
    server.send(&format!("expect inbox {end}"))?;
    server.expect("watching")?;
    let cpu = Cpu::start(server)?;
    let url = server.url.clone();
    let (base, n, batch) = (*put, run.n, run.batch);
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|k| {
                let url = url.clone();
                tokio::spawn(async move {
                    let mut client = Client::connect(&url).await?;
                    let symbols = Symbols::new();
                    let schema = data::schema();
                    let ts0 = epoch_ns();
                    let rows = share(n, clients, k);
                    let mut publisher = if stream {
                        Some(client.publisher("inbox", schema.clone())?)
                    } else {
                        None
                    };
                    let mut at = rows.start;
                    while at < rows.end {
                        let len = usize::try_from((batch as u64).min(rows.end - at))?;
                        let b = data::batch(&schema, &symbols, ts0, base + at, len)?;
                        match &mut publisher {
                            Some(p) => p.send(&b).await?,
                            None => {
                                client.publish("inbox", vec![b]).await?;
                            }
                        }
                        at += len as u64;
                    }
                    if let Some(p) = publisher {
                        p.finish().await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        anyhow::Ok(())
    })?;
    server.expect("seen")?;
    *put = end;
    let label = if stream { "put stream" } else { "put" };
    cpu.report(server, run, &format!("{label} x{clients}"), run.n)
}

/// Part (c): 32 live subscribers.
fn fanout(
    run: &Run,
    rt: &tokio::runtime::Runtime,
    server: &mut Server,
    fed: &mut u64,
) -> Result<Report> {
    let url = server.url.clone();
    let subs = rt.block_on(async {
        let mut subs = Vec::new();
        for _ in 0..FANOUT {
            let mut client = Client::connect(&url).await?;
            let mut sub = client.subscribe("trades").await?;
            sub.next().await.transpose()?;
            subs.push(sub);
        }
        anyhow::Ok(subs)
    })?;
    let n = run.n / 4;
    let end = *fed + n;
    let cpu = Cpu::start(server)?;
    server.send(&format!("feed {n}"))?;
    let results = rt.block_on(async {
        let tasks: Vec<_> = subs
            .into_iter()
            .map(|mut sub| {
                tokio::spawn(async move {
                    let rows = follow(&mut sub, end).await?;
                    anyhow::Ok((rows, sub.resets().saturating_sub(1)))
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await??);
        }
        anyhow::Ok(out)
    })?;
    let total: u64 = results.iter().map(|r| r.0).sum();
    let mut r = cpu.report(server, run, &format!("fanout x{FANOUT}"), total)?;
    server.expect("fed")?;
    *fed = end;
    r.set("rows_fed", n);
    r.set("min_rows", results.iter().map(|r| r.0).min().unwrap_or(0));
    r.set("resets", results.iter().map(|r| r.1).sum::<u64>());
    r.set("lost", (n * FANOUT as u64).saturating_sub(total));
    Ok(r)
}

/// The pyarrow client script.
fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/ticker-bench/w10_pyarrow.py")
}

/// Part (d): pyarrow reading the live stream.
fn pyarrow_live(run: &Run, server: &mut Server, fed: &mut u64) -> Result<Report> {
    let end = *fed + run.n;
    let mut py = Command::new("python3")
        .args([script(), "live", &server.url, "trades", &end.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting python3")?;
    let mut out = BufReader::new(py.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    ensure!(line.trim() == "ready", "the pyarrow client said {line:?}");
    let cpu = Cpu::start(server)?;
    server.send(&format!("feed {}", run.n))?;
    line.clear();
    out.read_line(&mut line)?;
    let status = py.wait()?;
    ensure!(status.success(), "the pyarrow client failed: {status}");
    let got: serde_json::Value = serde_json::from_str(line.trim()).context("pyarrow's report")?;
    let rows = got["rows"].as_u64().unwrap_or(0);
    let mut r = cpu.report(server, run, "pyarrow live", rows)?;
    server.expect("fed")?;
    *fed = end;
    // The client's CPU is the Python process's, not this one's.
    let secs = got["secs"].as_f64().unwrap_or(f64::NAN);
    r.set(
        "cpu_client_pct",
        (got["cpu_s"].as_f64().unwrap_or(0.0) / secs * 100.0).round(),
    );
    r.set("resets", got["resets"].clone());
    r.set("lost", run.n.saturating_sub(rows));
    Ok(r)
}

/// Part (e): a snapshot of a `run.n`-row append table, by this crate's client and pyarrow.
fn snapshot(run: &Run, rt: &tokio::runtime::Runtime, server: &mut Server) -> Result<Vec<Report>> {
    server.send(&format!("fill {}", run.n))?;
    server.expect("filled")?;
    let url = server.url.clone();
    let cpu = Cpu::start(server)?;
    let snap = rt.block_on(async {
        let mut client = Client::connect(&url).await?;
        anyhow::Ok(client.snapshot("big").await?)
    })?;
    let rows = snap.num_rows() as u64;
    ensure!(rows == run.n, "the snapshot has {rows} rows, not {}", run.n);
    drop(snap);
    let mut reports = vec![cpu.report(server, run, "snapshot", rows)?];
    let cpu = Cpu::start(server)?;
    let out = Command::new("python3")
        .args([script(), "snapshot", &url, "big"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let got: serde_json::Value =
                serde_json::from_slice(&o.stdout).context("pyarrow's report")?;
            let mut r = cpu.report(
                server,
                run,
                "pyarrow snapshot",
                got["rows"].as_u64().unwrap_or(0),
            )?;
            let secs = got["secs"].as_f64().unwrap_or(f64::NAN);
            r.set("secs_in_client", round3(secs));
            r.set(
                "cpu_client_pct",
                (got["cpu_s"].as_f64().unwrap_or(0.0) / secs * 100.0).round(),
            );
            reports.push(r);
        }
        Ok(o) => eprintln!(
            "W10 pyarrow snapshot skipped: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => eprintln!("W10 pyarrow snapshot skipped: {e}"),
    }
    Ok(reports)
}
