"""tickertable: a live, in-memory ticking-table engine over Apache Arrow.

Producer threads write rows; a periodic **cycle** makes each cycle's rows visible at once in
blink, ring, append and keyed tables; listeners and subscriptions receive every change. Data
crosses between Python and the engine as Arrow, through the C data interface, without copies.

The shapes are those of the APIs this replaces:

- Deephaven: ``table, publisher = engine.table_publisher(name, col_defs)``, ``publisher.add``,
  ``engine.ring_table``, ``engine.blink_to_append_only``, ``engine.dynamic_table_writer`` with
  ``write_row(*values)`` from any thread;
- DolphinDB: ``MultithreadedTableWriter(table, batch_size=..., thread_count=...,
  partition_col=...)`` with ``insert``, ``get_status``, ``get_unwritten_data``,
  ``insert_unwritten_data`` and ``wait_for_thread_completion``;
- ClickZetta: keyed tables (``kind="keyed", key=[...]``) with ``upsert`` and ``delete``.

Example::

    import pyarrow as pa
    import tickertable as tt

    with tt.Engine(manual=True) as engine:
        trades, publisher = engine.table_publisher("trades", {"Sym": pa.string(), "Px": pa.float64()})
        recent = engine.ring_table(trades, 1000)
        publisher.add({"Sym": ["AAPL", "MSFT"], "Px": [187.5, 411.0]})
        engine.run_cycle()
        print(recent.snapshot())

Threads and the GIL: every call that can wait (``run_cycle``, ``add`` on a full buffer,
``insert`` under back-pressure, ``wait_for_thread_completion``, a subscription's ``next``,
creating tables, shutdown) releases the GIL, so listeners, which run on the cycle thread and
take the GIL, never deadlock against a Python thread waiting on the engine. Such waits check
for signals every 50 ms: Ctrl-C interrupts them. A listener or ``on_flush`` that raises is
reported through ``sys.unraisablehook`` and removed (or fails its table); the engine goes on.
"""

from __future__ import annotations

import atexit
import weakref

from ._errors import (
    ArrowError,
    CallbackError,
    EngineShutDownError,
    Error,
    InvalidOperationError,
    InvalidOptionError,
    IoError,
    NoSuchTableError,
    NotSupportedError,
    ProtocolError,
    RemoteError,
    SchemaError,
    StagingFullError,
    TableClosedError,
    TableExistsError,
    TableFailedError,
    TransactionError,
    UnsupportedTypeError,
    WriterClosedError,
)
from ._tickertable import (
    OP_COLUMN,
    Client,
    DynamicTableWriter,
    Engine as _Engine,
    Failed,
    FlightServer,
    Lagged,
    ListenerHandle,
    MultithreadedTableWriter,
    MultithreadedWriterStatus,
    RemoteSubscription,
    RemoteTable,
    Snapshot,
    Subscription,
    Table,
    TablePublisher,
    ThreadStatus,
    Transaction,
    Update,
    connect,
)

__all__ = [
    "OP_COLUMN",
    "ArrowError",
    "CallbackError",
    "Client",
    "DynamicTableWriter",
    "Engine",
    "EngineShutDownError",
    "Error",
    "Failed",
    "FlightServer",
    "InvalidOperationError",
    "InvalidOptionError",
    "IoError",
    "Lagged",
    "ListenerHandle",
    "MultithreadedTableWriter",
    "MultithreadedWriterStatus",
    "NoSuchTableError",
    "NotSupportedError",
    "ProtocolError",
    "RemoteError",
    "RemoteSubscription",
    "RemoteTable",
    "SchemaError",
    "Snapshot",
    "StagingFullError",
    "Subscription",
    "Table",
    "TableClosedError",
    "TableExistsError",
    "TableFailedError",
    "TablePublisher",
    "ThreadStatus",
    "Transaction",
    "TransactionError",
    "Update",
    "UnsupportedTypeError",
    "WriterClosedError",
    "connect",
]

# Engines still alive at interpreter exit are shut down while Python can still run their
# listeners and on_shutdown callbacks.
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


class Engine(_Engine):
    __doc__ = _Engine.__doc__
    __slots__ = ()

    def __init__(self, *args: object, **kwargs: object) -> None:
        _engines.add(self)


@atexit.register
def _shutdown_all() -> None:
    for engine in list(_engines):
        try:
            engine.shutdown()
        except Exception:  # noqa: BLE001, S110 - best effort at exit
            pass
