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
- ClickZetta: keyed tables (``kind="keyed", key=[...]``) with ``upsert`` and ``delete``,
  and ``table.get(key)`` for one row.

Derived tables that compute, updated in their source's cycle at O(rows changed):
``engine.last_by(name, source, keys)``, ``engine.where(name, source, "Price > 100")`` (also
``filter``; a bad predicate raises ``ExpressionError`` with its ``position``),
``engine.agg_by(name, source, keys, [tt.agg.count(), tt.agg.sum("Size", name="volume"),
tt.agg.wmean("Price", "Size", name="vwap")])`` (see ``tickertable.agg``) and
``closed, open = engine.bars(name, source, "Ts", 60, keys, aggs)``.

Durable tables: ``tt.Engine(data_dir="...", sync="every_cycle" | "never" | seconds)`` and
``durable=True`` on ``table_publisher`` or ``dynamic_table_writer``: every cycle's rows are
logged, and creating the table again on an engine with the same directory brings them back
(``SchemaChangedError`` if the schema differs; ``DataDirLockedError`` while another engine
holds the directory).

Remote: ``client = tt.connect("grpc://host:port")`` gives ``client.table(name)`` with
``snapshot``, ``subscribe``, ``add``, ``upsert`` and ``delete``, and on a server that allows
it (``engine.serve(table_management=True)``, ``ticker-serve``) ``client.create_table`` and
``client.drop_table``.

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
    DataDirLockedError,
    EngineShutDownError,
    Error,
    ExpressionError,
    InvalidOperationError,
    InvalidOptionError,
    IoError,
    KindChangedError,
    LogCorruptError,
    LogWriteError,
    NoSuchTableError,
    NotSupportedError,
    ProtocolError,
    RemoteError,
    SchemaChangedError,
    SchemaError,
    StagingFullError,
    TableClosedError,
    TableDroppedError,
    TableExistsError,
    TableFailedError,
    TransactionError,
    UnsupportedTypeError,
    WriterClosedError,
)
from . import agg
from ._tickertable import (
    OP_COLUMN,
    Agg,
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
    "Agg",
    "ArrowError",
    "CallbackError",
    "Client",
    "DataDirLockedError",
    "DynamicTableWriter",
    "Engine",
    "EngineShutDownError",
    "Error",
    "ExpressionError",
    "Failed",
    "FlightServer",
    "InvalidOperationError",
    "InvalidOptionError",
    "IoError",
    "KindChangedError",
    "Lagged",
    "ListenerHandle",
    "LogCorruptError",
    "LogWriteError",
    "MultithreadedTableWriter",
    "MultithreadedWriterStatus",
    "NoSuchTableError",
    "NotSupportedError",
    "ProtocolError",
    "RemoteError",
    "RemoteSubscription",
    "RemoteTable",
    "SchemaChangedError",
    "SchemaError",
    "Snapshot",
    "StagingFullError",
    "Subscription",
    "Table",
    "TableClosedError",
    "TableDroppedError",
    "TableExistsError",
    "TableFailedError",
    "TablePublisher",
    "ThreadStatus",
    "Transaction",
    "TransactionError",
    "Update",
    "UnsupportedTypeError",
    "WriterClosedError",
    "agg",
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
