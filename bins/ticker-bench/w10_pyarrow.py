"""W10 (d) and (e) with pyarrow as the client: run by `ticker-bench --workload W10`.

Usage: w10_pyarrow.py live <grpc://host:port> <table> <end>
       w10_pyarrow.py snapshot <grpc://host:port> <table>

live: opens the table's live stream, prints `ready` once the snapshot's first message has
arrived, then reads until a message's `added` range reaches position <end>.
snapshot: reads the table's snapshot whole with `read_all()`.

Prints one JSON line: rows and bytes received, seconds from the first byte after `ready` (live)
or from the call (snapshot) to the end, and the process's CPU seconds over that time.
"""

import json
import sys
import time

import pyarrow.flight as fl


def main():
    mode, url, table = sys.argv[1], sys.argv[2], sys.argv[3]
    client = fl.connect(url)
    if mode == "snapshot":
        cpu0, t0 = time.process_time(), time.perf_counter()
        data = client.do_get(fl.Ticket(f"tickertable:snapshot:{table}".encode())).read_all()
        secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(json.dumps({"rows": data.num_rows, "bytes": data.nbytes, "secs": secs, "cpu_s": cpu}))
        return
    end = int(sys.argv[4])
    reader = client.do_get(fl.Ticket(f"tickertable:live:{table}".encode()))
    reader.read_chunk()  # the snapshot's first message: the stream is open
    print("ready", flush=True)
    cpu0, t0 = time.process_time(), time.perf_counter()
    rows = nbytes = resets = 0
    while True:
        chunk = reader.read_chunk()
        meta = json.loads(chunk.app_metadata.to_pybytes())
        if chunk.data is not None:
            rows += chunk.data.num_rows
            nbytes += chunk.data.nbytes
        resets += bool(meta["reset"])
        if meta["added"][1] >= end:
            break
    secs, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({"rows": rows, "bytes": nbytes, "secs": secs, "cpu_s": cpu, "resets": resets}))


main()
