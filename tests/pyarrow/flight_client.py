"""pyarrow's Flight client against a tickertable server (driven by tests/flight_pyarrow.rs).

Usage: flight_client.py <grpc://host:port> <token> [compression]

With `compression`, also reads a snapshot compressed with LZ4 and with ZSTD (the
`x-tickertable-compression` header; the server needs its `compression` feature).

Checks, with nothing but pyarrow: authentication, ListFlights (names, kinds, row counts,
capacity, the snapshot-then-live endpoints), a snapshot read, following a live stream for
several cycles while applying the documented app-metadata rules, and DoPut of a good and a
bad batch. Exits non-zero with a message on the first failure.
"""

import json
import sys
import time

import pyarrow as pa
import pyarrow.flight as fl

URL, TOKEN = sys.argv[1], sys.argv[2]
COMPRESSION = "compression" in sys.argv[3:]
BEARER = (b"authorization", f"Bearer {TOKEN}".encode())
AUTH = fl.FlightCallOptions(headers=[BEARER])


def with_header(name, value):
    return fl.FlightCallOptions(headers=[BEARER, (name, value)])


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


client = fl.connect(URL)

# 1. Without the token every call is refused.
try:
    list(client.list_flights())
    check(False, "a call without the token was accepted")
except fl.FlightUnauthenticatedError:
    pass

# 2. ListFlights: every table, its kind, rows and endpoints.
infos = {i.descriptor.path[0].decode(): i for i in client.list_flights(options=AUTH)}
check(set(infos) >= {"static", "ticks", "ticks_ring", "inbox"}, f"tables listed: {sorted(infos)}")
meta = {name: json.loads(i.app_metadata) for name, i in infos.items()}
check(meta["static"]["kind"] == "append", f"static kind {meta['static']}")
check(meta["ticks"]["kind"] == "blink", f"ticks kind {meta['ticks']}")
check(meta["ticks_ring"] == {**meta["ticks_ring"], "kind": "ring", "capacity": 100}, "ring meta")
check(infos["static"].total_records == 10, f"static rows {infos['static'].total_records}")
check(infos["static"].schema.names == ["Ts", "Sym", "Price", "Size"], "schema names")
tickets = [e.ticket.ticket.decode() for e in infos["static"].endpoints]
check(tickets == ["tickertable:snapshot:static", "tickertable:live:static"], f"endpoints {tickets}")

# 3. A snapshot through the first endpoint.
table = client.do_get(infos["static"].endpoints[0].ticket, options=AUTH).read_all()
check(table.column("Ts").to_pylist() == list(range(10)), "static Ts values")
check(table.column("Price").to_pylist() == [i / 100 for i in range(10)], "static Price values")
check(table.column("Sym").to_pylist()[:3] == ["S00", "S01", "S02"], "static Sym values")

# 3b. The same snapshot compressed, on request; an unknown compression is refused.
if COMPRESSION:
    for codec in [b"lz4", b"zstd"]:
        opts = with_header(b"x-tickertable-compression", codec)
        packed = client.do_get(infos["static"].endpoints[0].ticket, options=opts).read_all()
        check(packed.equals(table), f"a {codec.decode()} snapshot reads the same rows")
try:
    opts = with_header(b"x-tickertable-compression", b"brotli")
    client.do_get(infos["static"].endpoints[0].ticket, options=opts).read_all()
    check(False, "an unknown compression was accepted")
except (fl.FlightServerError, pa.ArrowInvalid) as e:
    check("compression" in str(e), f"the error names the option: {e}")

# 4. Follow the live ring for a few cycles, mirroring it by the documented rules.
reader = client.do_get(infos["ticks_ring"].endpoints[1].ticket, options=AUTH)
mirror = []  # list of (position, Ts)
steps = set()
messages = 0
deadline = time.monotonic() + 30
while len(steps) < 8:
    check(time.monotonic() < deadline, "the live stream kept flowing")
    chunk = reader.read_chunk()
    m = json.loads(chunk.app_metadata.to_pybytes())
    messages += 1
    if m["reset"]:
        mirror = []
    r0, r1 = m["removed"]
    if r1 > r0:
        check(mirror and mirror[0][0] == r0, f"removed {m['removed']} is a prefix of the mirror")
        mirror = [row for row in mirror if row[0] >= r1]
    a0, a1 = m["added"]
    n = 0 if chunk.data is None else chunk.data.num_rows
    check(n == a1 - a0, f"batch rows {n} match added {m['added']}")
    if mirror and n:
        check(a0 >= mirror[-1][0] + 1, "positions grow")
    if n:
        mirror += list(zip(range(a0, a1), chunk.data.column("Ts").to_pylist()))
    check(len(mirror) <= 100, f"the ring mirror holds at most 100 rows, has {len(mirror)}")
    ts = [t for _, t in mirror]
    check(ts == list(range(ts[0], ts[0] + len(ts))) if ts else True, "Ts consecutive in the mirror")
    steps.add(m["step"])
reader.cancel()
print(f"live: {len(steps)} steps, {messages} messages, mirror {len(mirror)} rows")

# 5. DoPut: a good batch lands; a bad one is refused whole.
schema = infos["inbox"].schema
good = pa.record_batch(
    [pa.array([1, 2, 3], pa.int64()), pa.array(["A", "B", "C"]), pa.array([1.5, 2.5, 3.5]),
     pa.array([10, 20, 30], pa.int64())],
    schema=schema,
)
writer, meta_reader = client.do_put(fl.FlightDescriptor.for_path("inbox"), schema, options=AUTH)
writer.write_batch(good)
writer.done_writing()
result = json.loads(meta_reader.read().to_pybytes())
writer.close()
check(result == {"rows": 3}, f"put result {result}")

bad_schema = pa.schema([("Ts", pa.int64()), ("Sym", pa.string()), ("Price", pa.string()),
                        ("Size", pa.int64())])
bad = pa.record_batch([pa.array([9]), pa.array(["Z"]), pa.array(["oops"]), pa.array([1])],
                      schema=bad_schema)
try:
    writer, meta_reader = client.do_put(fl.FlightDescriptor.for_path("inbox"), bad_schema,
                                        options=AUTH)
    writer.write_batch(bad)
    writer.done_writing()
    meta_reader.read()
    writer.close()
    check(False, "a batch of the wrong type was accepted")
except (fl.FlightServerError, pa.ArrowInvalid) as e:
    check("Price" in str(e) and "Float64" in str(e), f"the error names the column: {e}")

# 5b. A streaming DoPut (x-tickertable-put: batch): each batch staged and acknowledged as it
# arrives, with the call's running total.
opts = with_header(b"x-tickertable-put", b"batch")
writer, meta_reader = client.do_put(fl.FlightDescriptor.for_path("inbox"), schema, options=opts)
for k in range(3):
    ts = [100 + 2 * k, 101 + 2 * k]
    writer.write_batch(pa.record_batch(
        [pa.array(ts, pa.int64()), pa.array(["S", "T"]), pa.array([1.0, 2.0]),
         pa.array([1, 1], pa.int64())], schema=schema))
    ack = json.loads(meta_reader.read().to_pybytes())
    check(ack == {"rows": 2, "total": 2 * (k + 1)}, f"ack {k}: {ack}")
writer.done_writing()
writer.close()

deadline = time.monotonic() + 10
while True:
    inbox = client.do_get(infos["inbox"].endpoints[0].ticket, options=AUTH).read_all()
    if inbox.num_rows >= 9 or time.monotonic() > deadline:
        break
    time.sleep(0.02)
check(inbox.column("Ts").to_pylist() == [1, 2, 3, 100, 101, 102, 103, 104, 105],
      f"inbox rows {inbox.to_pydict()}")
print("pyarrow flight client: ok")
