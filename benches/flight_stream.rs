//! Arrow Flight: rows per second through one live subscription and through `DoPut`, and the
//! latency from `TablePublisher::add` to a remote subscriber at a 10 ms cycle.
//!
//! Machine: 2 cores (shared), Linux, loopback, `[profile.bench]` lto = true, codegen-units = 1.
//! Server and client run in this process (server on its own 2-thread runtime, client on a
//! current-thread runtime), so both share the 2 cores.
//!
//! - `live/10k`: publish a fresh 10,000-row trades batch into a blink table, run a cycle, read
//!   the remote live stream until the mirror has the rows. Throughput in rows.
//! - `do_put/10k`: one `DoPut` of a 10,000-row batch into an append-style blink table (a cycle
//!   every 64 puts keeps staging bounded). Throughput in rows.
//! - `latency/10ms-cycle`: a threaded engine with a 10 ms period; one row published at a
//!   pseudo-random point of the cycle, time until the remote subscriber has it (half a period
//!   of waiting on average, plus the cycle and the transport).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickertable::flight::Client;
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{Engine, PublisherOptions};

const ROWS: usize = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn live(c: &mut Criterion) {
    let engine = manual_engine();
    let (table, publisher) = engine
        .table_publisher("trades", trade_schema(), PublisherOptions::default())
        .expect("table");
    let server = engine.serve_flight("127.0.0.1:0").expect("serve");
    let rt = runtime();
    let mut sub = rt.block_on(async {
        let mut client = Client::connect(&server.url()).await.expect("connect");
        client.subscribe("trades").await.expect("subscribe")
    });
    let mut next = 0u64;
    let mut group = c.benchmark_group("flight");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("live/10k", |b| {
        b.iter(|| {
            publisher.add(trade_batch(next, ROWS)).expect("add");
            next += ROWS as u64;
            engine.run_cycle();
            let want = table.snapshot().rows().end;
            rt.block_on(async {
                while sub.rows().end < want {
                    sub.next().await.expect("open").expect("applies");
                }
            });
            black_box(sub.rows());
        });
    });
    group.finish();
}

fn do_put(c: &mut Criterion) {
    let engine = manual_engine();
    engine
        .table_publisher("inbox", trade_schema(), PublisherOptions::default())
        .expect("table");
    let server = engine.serve_flight("127.0.0.1:0").expect("serve");
    let rt = runtime();
    let mut client = rt
        .block_on(Client::connect(&server.url()))
        .expect("connect");
    let mut next = 0u64;
    let mut puts = 0u64;
    let mut group = c.benchmark_group("flight");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("do_put/10k", |b| {
        b.iter(|| {
            let batch = trade_batch(next, ROWS);
            next += ROWS as u64;
            let rows = rt
                .block_on(client.publish("inbox", vec![batch]))
                .expect("put");
            black_box(rows);
            puts += 1;
            if puts % 64 == 0 {
                engine.run_cycle();
            }
        });
    });
    group.finish();
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
    targets = live, do_put, latency
}
criterion_main!(benches);
