//! Arrow Flight on loopback with the server in a process of its own (this bench binary run
//! again with `TICKERTABLE_BENCH_FLIGHT_SERVER` set), as a served engine is used: rows per
//! second through one live subscription, through `DoPut` (one call per batch and one
//! streaming call), a snapshot `DoGet`, and the latency from `TablePublisher::add` to a
//! remote subscriber at a 10 ms cycle (that one in-process: it needs the publisher's clock).
//!
//! Machine: 2 cores (shared), Linux, loopback, `[profile.bench]` lto = true, codegen-units = 1.
//! The server's engines and the client share the 2 cores.
//!
//! - `live/10k`: the server publishes a fresh 10,000-row trades batch into a blink table of a
//!   manual engine and runs a cycle (asked over a pipe); the client reads its live stream
//!   until it has the rows. Throughput in rows.
//! - `do_put/10k`: one `DoPut` call of a 10,000-row batch into a blink table of an engine
//!   cycling every 10 ms.
//! - `do_put_stream/10k`: one batch sent on a streaming `DoPut` (`Client::publisher`) into
//!   the same table; its queue is bounded, so this is its sustained rate.
//! - `snapshot/1M`: a `DoGet` snapshot of a 1,000,000-row append table.
//! - `latency/10ms-cycle`: a threaded engine with a 10 ms period; one row published at a
//!   pseudo-random point of the cycle, time until the remote subscriber has it (half a period
//!   of waiting on average, plus the cycle and the transport).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use tickertable::flight::Client;
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{Engine, PublisherOptions, TableKind};

const ROWS: usize = 10_000;
const SNAPSHOT_ROWS: usize = 1_000_000;
const SERVER: &str = "TICKERTABLE_BENCH_FLIGHT_SERVER";

/// The server process: a manual engine (`trades`, blink, cycled on request; `big`, append)
/// and a threaded one (`inbox`, blink, 10 ms cycles), each serving Flight. Prints the two
/// URLs, then answers `feed` (publish a batch, run a cycle) with `ok` until stdin ends.
fn serve() {
    let manual = manual_engine();
    let (_, trades) = manual
        .table_publisher("trades", trade_schema(), PublisherOptions::default())
        .expect("trades");
    let (_, big) = manual
        .table_publisher(
            "big",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .expect("big");
    for k in 0..SNAPSHOT_ROWS / ROWS {
        big.add(trade_batch((k * ROWS) as u64, ROWS)).expect("fill");
    }
    manual.run_cycle();
    let threaded = Engine::builder()
        .period(Duration::from_millis(10))
        .build()
        .expect("engine");
    threaded
        .table_publisher("inbox", trade_schema(), PublisherOptions::default())
        .expect("inbox");
    let a = manual.serve_flight("127.0.0.1:0").expect("serve");
    let b = threaded.serve_flight("127.0.0.1:0").expect("serve");
    let mut out = std::io::stdout();
    writeln!(out, "{} {}", a.url(), b.url()).expect("stdout");
    out.flush().expect("stdout");
    let mut next = 0u64;
    for line in std::io::stdin().lock().lines() {
        if line.expect("stdin").trim() == "feed" {
            trades.add(trade_batch(next, ROWS)).expect("add");
            next += ROWS as u64;
            manual.run_cycle();
            writeln!(out, "ok").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

/// The server child and its pipe.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    manual: String,
    threaded: String,
}

impl Server {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env(SERVER, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server process");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("urls");
        let mut urls = line.split_whitespace().map(str::to_owned);
        let manual = urls.next().expect("url");
        let threaded = urls.next().expect("url");
        Self {
            child,
            stdin,
            stdout,
            manual,
            threaded,
        }
    }

    fn feed(&mut self) {
        writeln!(self.stdin, "feed").expect("pipe");
        self.stdin.flush().expect("pipe");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("pipe");
        assert_eq!(line.trim(), "ok");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn remote(c: &mut Criterion) {
    let mut server = Server::start();
    let rt = runtime();
    let (mut sub, mut client, mut put) = rt.block_on(async {
        let mut live = Client::connect(&server.manual).await.expect("connect");
        let mut sub = live.subscribe("trades").await.expect("subscribe");
        sub.next().await.expect("open").expect("snapshot");
        let client = Client::connect(&server.threaded).await.expect("connect");
        let put = client
            .publisher("inbox", trade_schema())
            .expect("publisher");
        (sub, client, put)
    });
    let mut group = c.benchmark_group("flight");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut fed = 0u64;
    group.bench_function("live/10k", |b| {
        b.iter(|| {
            server.feed();
            fed += ROWS as u64;
            rt.block_on(async {
                while sub.rows().end < fed {
                    sub.next().await.expect("open").expect("applies");
                }
            });
            black_box(sub.rows());
        });
    });
    let mut next = 0u64;
    group.bench_function("do_put/10k", |b| {
        b.iter(|| {
            let batch = trade_batch(next, ROWS);
            next += ROWS as u64;
            let rows = rt
                .block_on(client.publish("inbox", vec![batch]))
                .expect("put");
            black_box(rows);
        });
    });
    group.bench_function("do_put_stream/10k", |b| {
        b.iter(|| {
            let batch = trade_batch(next, ROWS);
            next += ROWS as u64;
            rt.block_on(put.send(&batch)).expect("send");
        });
    });
    rt.block_on(put.finish()).expect("streaming put");
    group.throughput(Throughput::Elements(SNAPSHOT_ROWS as u64));
    group.bench_function("snapshot/1M", |b| {
        b.iter(|| {
            let snap = rt
                .block_on(client_snapshot(&server.manual))
                .expect("snapshot");
            assert_eq!(snap, SNAPSHOT_ROWS);
        });
    });
    group.finish();
}

async fn client_snapshot(url: &str) -> tickertable::Result<usize> {
    let mut client = Client::connect(url).await?;
    Ok(client.snapshot("big").await?.num_rows())
}

fn latency(c: &mut Criterion) {
    let engine = Engine::builder()
        .period(Duration::from_millis(10))
        .build()
        .expect("engine");
    let (_table, publisher) = engine
        .table_publisher("ticks", trade_schema(), PublisherOptions::default())
        .expect("table");
    let server = engine.serve_flight("127.0.0.1:0").expect("serve");
    let rt = runtime();
    let mut sub = rt.block_on(async {
        let mut client = Client::connect(&server.url()).await.expect("connect");
        client.subscribe("ticks").await.expect("subscribe")
    });
    let mut next = 0u64;
    let mut group = c.benchmark_group("flight");
    group.bench_function("latency/10ms-cycle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                // Publish at a pseudo-random point of the cycle, as real rows arrive; otherwise
                // the loop locks onto the cycle and always waits a whole period.
                let offset = i.wrapping_mul(7_919) % 10_000;
                std::thread::sleep(Duration::from_micros(offset));
                let start = Instant::now();
                publisher.add(trade_batch(next, 1)).expect("add");
                next += 1;
                let want = next;
                rt.block_on(async {
                    loop {
                        let m = sub.next().await.expect("open").expect("applies");
                        if m.batch.is_some() && sub.rows().end >= want {
                            break;
                        }
                    }
                });
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = remote, latency
}

fn main() {
    if std::env::var_os(SERVER).is_some() {
        serve();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
