"""Benchmarks of the Python package: one JSON line per run.

Workloads (DESIGN.md section 7; schema Ts int64 ns, Sym utf8 of 100 values, Price float64,
Size int64; "visible" means delivered to a listener on the output table, and a run ends when
the last row is):

- W1: one writer thread, ``write_row`` one row at a time into an append table (and W1-rows:
  ``write_rows`` in lists of 1,000 rows);
- W3: 10,000-row batches built fresh with numpy (and pyarrow's ``take`` for the symbols),
  published into a blink table;
- W5: one row every 1 ms, cycle 10 ms: write -> listener latency p50/p99/max;
- MTW: ``MultithreadedTableWriter.insert`` from 1 and from 4 Python threads.

Build in release first: ``cd python && maturin develop --release``, then
``python bench.py [--workload W1,W3,W5,MTW] [--rows N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import tickertable as tt

SCHEMA = pa.schema(
    [("Ts", pa.int64()), ("Sym", pa.string()), ("Price", pa.float64()), ("Size", pa.int64())]
)
SYMS = [f"SYM{i:03d}" for i in range(100)]


def emit(workload: str, **fields: Any) -> None:
    line = {"workload": workload, "python": platform.python_version(), "cpus": os.cpu_count()}
    line.update(fields)
    print(json.dumps(line), flush=True)


class Visible:
    """Counts rows delivered to a listener; ``wait(n)`` returns when ``n`` have been."""

    def __init__(self, table: tt.Table) -> None:
        self.rows = 0
        self.target = 0
        self.done = threading.Event()
        table.listen(self.on_update)

    def on_update(self, u: tt.Update) -> None:
        self.rows += u.num_added
        if self.target and self.rows >= self.target:
            self.done.set()

    def wait(self, n: int, engine: tt.Engine) -> None:
        self.target = n
        if self.rows >= n:
            return
        engine.request_refresh()
        if not self.done.wait(timeout=600):
            raise TimeoutError(f"only {self.rows} of {n} rows became visible")


def w1(rows: int) -> None:
    with tt.Engine(period=0.1) as engine:
        writer = engine.dynamic_table_writer("w1", SCHEMA)
        visible = Visible(writer.table)
        write_row = writer.write_row
        syms = SYMS
        start = time.perf_counter()
        t0 = time.time_ns()
        for i in range(rows):
            write_row(t0 + i, syms[i % 100], 100.0 + (i & 1023) * 0.01, i & 4095)
        written = time.perf_counter()
        visible.wait(rows, engine)
        end = time.perf_counter()
    emit("W1", api="write_row", rows=rows, seconds=round(end - start, 4),
         rows_per_s=round(rows / (end - start)), write_rows_per_s=round(rows / (written - start)))


def w1_rows(rows: int, group: int = 1000) -> None:
    with tt.Engine(period=0.1) as engine:
        writer = engine.dynamic_table_writer("w1", SCHEMA)
        visible = Visible(writer.table)
        write_rows = writer.write_rows
        syms = SYMS
        start = time.perf_counter()
        t0 = time.time_ns()
        for base in range(0, rows, group):
            write_rows([(t0 + i, syms[i % 100], 100.0 + (i & 1023) * 0.01, i & 4095)
                        for i in range(base, min(rows, base + group))])
        visible.wait(rows, engine)
        end = time.perf_counter()
    emit("W1", api=f"write_rows({group})", rows=rows, seconds=round(end - start, 4),
         rows_per_s=round(rows / (end - start)))


def w3(rows: int, batch_rows: int = 10_000) -> None:
    rng = np.random.default_rng(7)
    sym_values = pa.array(SYMS)
    with tt.Engine(period=0.1) as engine:
        table, publisher = engine.table_publisher("w3", SCHEMA)
        visible = Visible(table)
        batches = rows // batch_rows
        start = time.perf_counter()
        for b in range(batches):
            ts = np.arange(b * batch_rows, (b + 1) * batch_rows, dtype=np.int64)
            sym = pc.take(sym_values, pa.array(rng.integers(0, 100, batch_rows, dtype=np.int32)))
            price = rng.random(batch_rows) * 100.0
            size = rng.integers(1, 1000, batch_rows, dtype=np.int64)
            publisher.add(pa.RecordBatch.from_arrays([ts, sym, price, size], schema=SCHEMA))
        visible.wait(batches * batch_rows, engine)
        end = time.perf_counter()
    n = batches * batch_rows
    emit("W3", rows=n, batch_rows=batch_rows, seconds=round(end - start, 4),
         rows_per_s=round(n / (end - start)))


def w5(seconds: float, period: float = 0.01) -> None:
    latencies: list[int] = []
    with tt.Engine(period=period) as engine:
        writer = engine.dynamic_table_writer("w5", SCHEMA)

        def on_update(u: tt.Update) -> None:
            now = time.perf_counter_ns()
            latencies.extend(now - ts for ts in u.added.column("Ts").to_pylist())

        writer.table.listen(on_update)
        n = int(seconds * 1000)
        start = time.perf_counter()
        for i in range(n):
            due = start + (i + 1) * 0.001
            while (left := due - time.perf_counter()) > 0:
                time.sleep(left)
            writer.write_row(time.perf_counter_ns(), SYMS[i % 100], 100.0, i)
        deadline = time.perf_counter() + 5
        while len(latencies) < n and time.perf_counter() < deadline:
            time.sleep(0.01)
    lat = np.array(latencies, dtype=np.float64) / 1e6
    emit("W5", period_ms=period * 1000, rows=len(latencies), p50_ms=round(float(np.percentile(lat, 50)), 3),
         p99_ms=round(float(np.percentile(lat, 99)), 3), max_ms=round(float(lat.max()), 3))


def mtw(rows: int, threads: int, writer_threads: int = 2) -> None:
    with tt.Engine(period=0.1) as engine:
        table = engine.dynamic_table_writer("mtw", SCHEMA).table
        visible = Visible(table)
        writer = tt.MultithreadedTableWriter(table, thread_count=writer_threads)
        per = rows // threads

        def produce(k: int) -> None:
            insert = writer.insert
            t0 = time.time_ns()
            for i in range(k * per, (k + 1) * per):
                insert(t0 + i, SYMS[i % 100], 100.0 + (i & 1023) * 0.01, i & 4095)

        start = time.perf_counter()
        ts = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        writer.wait_for_thread_completion()
        visible.wait(per * threads, engine)
        end = time.perf_counter()
    n = per * threads
    emit("MTW", python_threads=threads, writer_threads=writer_threads, rows=n,
         seconds=round(end - start, 4), rows_per_s=round(n / (end - start)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="W1,W3,W5,MTW")
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows for W1 and MTW")
    ap.add_argument("--w3-rows", type=int, default=20_000_000)
    ap.add_argument("--seconds", type=float, default=10.0, help="W5's duration")
    args = ap.parse_args()
    todo = {w.strip().upper() for w in args.workload.split(",")}
    if "W1" in todo:
        w1(args.rows)
        w1_rows(args.rows)
    if "W3" in todo:
        w3(args.w3_rows)
    if "W5" in todo:
        w5(args.seconds)
    if "MTW" in todo:
        mtw(args.rows, 1)
        mtw(args.rows, 4)


if __name__ == "__main__":
    main()
