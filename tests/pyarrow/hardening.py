"""pyarrow's Flight client against a hardened tickertable server (driven by
tests/flight_pyarrow.rs): TLS with a trusted CA, the basic-token handshake, wrong or
missing credentials on every call, and a request the server cannot decode.

Usage: hardening.py <grpc+tls://host:port> <ca.pem> <token>
"""

import sys

import pyarrow as pa
import pyarrow.flight as fl

URL, CA, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


with open(CA, "rb") as f:
    ca = f.read()

client = fl.connect(URL, tls_root_certs=ca, override_hostname="localhost")

# 1. Every call without credentials, or with wrong ones, is refused.
def every_call(options):
    refused = 0
    calls = [
        lambda: list(client.list_flights(options=options)),
        lambda: client.get_flight_info(fl.FlightDescriptor.for_path("t"), options=options),
        lambda: client.get_schema(fl.FlightDescriptor.for_path("t"), options=options),
        lambda: client.do_get(fl.Ticket(b"tickertable:snapshot:t"), options=options).read_all(),
        lambda: list(client.list_actions(options=options)),
    ]
    for call in calls:
        try:
            call()
        except fl.FlightUnauthenticatedError:
            refused += 1
        except OSError as e:  # some pyarrow calls raise the status as a plain OSError
            if "unauthenticated" in str(e).lower():
                refused += 1
    return refused, len(calls)


for options in [
    fl.FlightCallOptions(),
    fl.FlightCallOptions(headers=[(b"authorization", b"Bearer wrong")]),
]:
    refused, n = every_call(options)
    check(refused == n, f"{refused} of {n} calls refused without the right token")
try:
    client.authenticate_basic_token(b"user", b"wrong")
    check(False, "a handshake with the wrong token was accepted")
except fl.FlightUnauthenticatedError:
    pass

# 2. The basic-token handshake gives the bearer header, which then works everywhere.
header = client.authenticate_basic_token(b"user", TOKEN.encode())
check(header == (b"authorization", f"Bearer {TOKEN}".encode()), f"handshake header {header}")
auth = fl.FlightCallOptions(headers=[header])
refused, n = every_call(auth)
check(refused == 0, f"{refused} calls refused with the handshake's token")
info = client.get_flight_info(fl.FlightDescriptor.for_path("t"), options=auth)
check(info.total_records == 3, f"rows over TLS: {info.total_records}")
table = client.do_get(info.endpoints[0].ticket, options=auth).read_all()
check(table.num_rows == 3, "snapshot over TLS")

# 3. A descriptor path that is not UTF-8 is the client's error (INVALID_ARGUMENT, which
#    pyarrow raises as ArrowInvalid), not the server's (INTERNAL).
try:
    client.get_flight_info(fl.FlightDescriptor.for_path(b"\xff\xfe"), options=auth)
    check(False, "a non-UTF-8 path was accepted")
except pa.ArrowInvalid as e:
    check("UTF-8" in str(e), f"non-UTF-8 path message: {e}")
except Exception as e:  # noqa: BLE001 - any other error is the defect this checks
    check(False, f"a non-UTF-8 path gave {type(e).__name__}: {e}")

# 4. A plain-text client cannot talk to the TLS server.
plain = fl.connect(URL.replace("grpc+tls://", "grpc://"))
try:
    list(plain.list_flights(options=auth))
    check(False, "a plain-text client was served")
except fl.FlightError:
    pass

print("pyarrow hardening: ok")
