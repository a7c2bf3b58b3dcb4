//! `ticker-bench`: runs the benchmark workloads W1..W6 of the design (§7) and prints one JSON
//! line per run.
//!
//! Every run uses the benchmark schema (`Ts` int64 ns, `Sym` utf8 with 100 distinct values,
//! `Price` float64, `Size` int64). Producers build every row or batch fresh from plain values.
//! "Visible" means delivered to a listener on the output table: a run ends when the listener
//! sees the update that holds the last row, so the visible rate includes the wait for the
//! cycle that publishes it (up to one `--cycle-ms` period).
//!
//! | id | what | reported |
//! |---|---|---|
//! | W1 | 1 writer thread, `RowWriter::write_row`, append table | rows/s write and visible |
//! | W2 | 2 writer threads (`--threads`), each its own `RowWriter` | rows/s write and visible |
//! | W3 | `--batch`-row batches through a `TablePublisher` into a blink table | rows/s |
//! | W4 | W3 feeding `ring_table(capacity = --ring)`, visible on the ring | rows/s |
//! | W5 | 1 row every `--period-us` for `--duration-ms` | write→listener latency |
//! | W6 | append table grown to `--n` rows with W3 batches | RSS bytes per row, rows/s |
//! | W7 | W3 feeding `last_by(Sym)` | rows/s (the source's last row delivered: derived tables update in its cycle) |
//! | W8 | W3 feeding `agg_by(Sym)`: count, sum(Size), min/max(Price), VWAP | rows/s, as W7 |
//! | W9 | W3 (blink) and W6 (append) with the log off, `Never` and `EveryCycle`; replay of a `--n`-row append log and of a 1M-key keyed table from its checkpoint | rows/s, MB/s to disk, replay rows/s |
//! | W10 | W3 over Flight, server in a child process: one live subscriber, `DoPut` from 1 and 4 clients, 32 subscribers, pyarrow live, a `--n`-row snapshot | rows/s, MB/s, CPU of each process |
//! | W12 | append table written row by row at 1, 100 and 10,000 rows per cycle (manual cycles) | RSS and Arrow bytes per row, chunks |
//!
//! W6's `bytes_per_row` is `(rss_steady_bytes - rss_baseline_bytes) / n`: RSS is
//! `/proc/self/statm`'s resident pages times the page size; the baseline is read once the
//! engine and the empty table exist, before the first batch is built; the steady value is read
//! after the last row was delivered and two more (idle) cycles ran. The ideal for this schema
//! is 31 bytes per row (8 + 8 + 8 + a 3-byte symbol + a 4-byte offset).
//!
//! W12 reports `bytes_per_row` the same way, beside `arrow_bytes_per_row` (the table's
//! Arrow buffers, summed over its chunks) and its chunk count.
//!
//! `--workload all` runs W12 then W6 first (so its RSS baseline is not inflated or deflated by memory
//! the allocator kept from the other runs), then W1..W5. W5 runs at 10 ms and 100 ms cycles,
//! each with and without the low-latency option, unless `--cycle-ms` / `--low-latency` pin
//! them; under `all` each W5 run lasts 2.5 s unless `--duration-ms` is given (10 s otherwise).
//!
//! ```text
//! cargo run --release --bin ticker-bench -- --workload all
//! cargo run --release --bin ticker-bench -- --workload W6 --n 20000000
//! cargo run --release --bin ticker-bench -- --workload W5 --cycle-ms 10 --duration-ms 10000
//! cargo run --release --bin ticker-bench -- --workload W10
//! ```

mod args;
mod data;
mod probe;
mod report;
mod workload;

use anyhow::Result;
use clap::Parser;

use args::Args;

fn main() -> Result<()> {
    let args = Args::parse();
    for run in args.plan() {
        for report in workload::run(&run)? {
            println!("{}", report.to_json());
        }
    }
    Ok(())
}
