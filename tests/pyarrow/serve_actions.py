"""pyarrow's Flight client against a ticker-serve process (driven by bins/tests/serve_pyarrow.rs).

Usage: serve_actions.py <grpc://host:port> <token>

Checks, with nothing but pyarrow: ListActions; DoAction create_table with the schema as
base64 Arrow IPC bytes (created, then an identical create that is a no-op, then a clash that
is refused); DoPut into the new table; DoAction stats; a live stream of a table that
DoAction drop_table then drops, which ends with an error saying so. Prints the live stream's
ticket of a second table and waits on stdin, so the driver can SIGTERM the server and this
script checks that stream ends with the stop's reason. Exits non-zero on the first failure.
"""

import base64
import json
import sys

import pyarrow as pa
import pyarrow.flight as fl

URL, TOKEN = sys.argv[1], sys.argv[2]
AUTH = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def action(client, kind, body):
    results = client.do_action(fl.Action(kind, body), options=AUTH)
    return json.loads(b"".join(r.body.to_pybytes() for r in results))


def create_body(name, kind, schema, **options):
    return json.dumps({
        "name": name,
        "kind": kind,
        "options": options,
        "schema": base64.b64encode(schema.serialize().to_pybytes()).decode(),
    }).encode()


client = fl.connect(URL)

# 1. ListActions.
names = [a.type for a in client.list_actions(options=AUTH)]
check(names == ["stats", "create_table", "drop_table"], f"actions {names}")

# 2. create_table, idempotent, and a clash.
schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
check(action(client, "create_table", create_body("py", "ring", schema, capacity=4))
      == {"created": True, "table": "py"}, "created")
check(action(client, "create_table", create_body("py", "ring", schema, capacity=4))
      == {"created": False, "table": "py"}, "an identical create is a no-op")
try:
    action(client, "create_table", create_body("py", "append", schema))
    check(False, "a clash was accepted")
except pa.ArrowException as e:  # pyarrow has no Flight class for ALREADY_EXISTS
    check("already exists" in str(e), f"clash error {e}")
infos = {i.descriptor.path[0].decode(): i for i in client.list_flights(options=AUTH)}
check(json.loads(infos["py"].app_metadata)["kind"] == "ring", "the created table's kind")
check(infos["py"].schema.names == ["x", "s"], "the created table's schema")

# 3. DoPut into it; the ring keeps the newest 4.
writer, _ = client.do_put(fl.FlightDescriptor.for_path("py"), schema, options=AUTH)
writer.write_table(pa.table({"x": list(range(6)), "s": ["a", None, "c", "d", "e", "f"]}, schema=schema))
writer.close()

# 4. stats.
stats = action(client, "stats", b"")
check({"step", "period_ms", "last_cycle_us", "worst_cycle_us", "tables", "server"} <= set(stats),
      f"stats keys {sorted(stats)}")
check(stats["server"]["rows_put"] == 6, f"rows put {stats['server']}")
check("py" in [t["name"] for t in stats["tables"]], "py in stats")

# 5. drop_table ends a live stream with a reason.
reader = client.do_get(fl.Ticket(b"tickertable:live:py"), options=AUTH)
reader.read_chunk()  # the snapshot's first message
check(action(client, "drop_table", json.dumps({"name": "py"}).encode()) == {"dropped": ["py"]},
      "dropped")
try:
    while True:
        reader.read_chunk()
except StopIteration:
    check(False, "the dropped table's stream ended as if nothing happened")
except pa.ArrowKeyError as e:  # NOT_FOUND, code table_dropped
    check("was dropped" in str(e), f"drop reason {e}")

# 6. A live stream across the server's stop: the driver sends SIGTERM once we say ready.
reader = client.do_get(fl.Ticket(b"tickertable:live:inbox"), options=AUTH)
reader.read_chunk()
print("ready", flush=True)
sys.stdin.readline()
rows = 0
try:
    while True:
        chunk = reader.read_chunk()
        if chunk.data is not None:
            rows += chunk.data.num_rows
except StopIteration:
    check(False, "the stream ended without a reason at the stop")
except fl.FlightUnavailableError as e:
    check("shutting down" in str(e), f"stop reason {e}")
check(rows == 3, f"rows staged before the stop and delivered by its last cycle: {rows}")
print("pyarrow serve actions: ok")
