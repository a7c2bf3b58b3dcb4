"""Measures a Flight server's memory while a client streams a DoPut it never finishes.

Starts `ticker-demo --listen` (the binary given as the first argument), opens a DoPut into
its `trades` table and writes 10,000-row batches as fast as it can for `--seconds` without
closing the call, sampling the server's RSS (VmRSS of /proc/<pid>/status) every 100 ms.
Prints one JSON line: the RSS before, the highest RSS, the bytes sent, and how the server
ended the call (it refuses a call past its per-call byte limit with RESOURCE_EXHAUSTED).

    python3 tests/pyarrow/unfinished_put_rss.py target/release/ticker-demo [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time

import pyarrow as pa
import pyarrow.flight as fl


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("demo")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    server = subprocess.Popen(
        [args.demo, "--listen", "127.0.0.1:0", "--stats-every", "0", "--rate", "1000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = ""
        for line in server.stdout:
            if "serving Arrow Flight at " in line:
                url = line.split("serving Arrow Flight at ")[1].split()[0]
                break
        client = fl.connect(url)
        schema = client.get_schema(fl.FlightDescriptor.for_path("trades")).schema
        n = 10_000
        columns = []
        for field in schema:
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                columns.append(pa.array(["AAPL"] * n, field.type))
            elif pa.types.is_floating(field.type):
                columns.append(pa.array([1.5] * n, field.type))
            elif pa.types.is_timestamp(field.type):
                columns.append(pa.array([1_700_000_000_000_000_000] * n, pa.int64()).cast(field.type))
            else:
                columns.append(pa.array([1] * n, field.type))
        batch = pa.RecordBatch.from_arrays(columns, schema=schema)
        before = rss_kib(server.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        writer, _ = client.do_put(fl.FlightDescriptor.for_path("trades"), schema)
        sent = 0
        ended = "still open"
        deadline = time.monotonic() + args.seconds
        try:
            while time.monotonic() < deadline:
                writer.write_batch(batch)
                sent += batch.nbytes
        except (fl.FlightError, pa.ArrowException, OSError) as e:
            # pyarrow reports a refused DoPut as ArrowInvalid carrying the gRPC status.
            ended = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        time.sleep(0.5)
        done.set()
        sampler.join()
        after = rss_kib(server.pid)
        print(json.dumps({
            "seconds": args.seconds,
            "sent_mib": round(sent / 2**20, 1),
            "rss_before_mib": round(before / 1024, 1),
            "rss_peak_mib": round(peak[0] / 1024, 1),
            "rss_after_mib": round(after / 1024, 1),
            "call": ended,
        }))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
