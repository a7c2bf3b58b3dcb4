"""Type stubs of the compiled module ``tickertable._tickertable`` (re-exported by ``tickertable``)."""

import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal, TypeAlias

import pandas
import pyarrow as pa

ColDefs: TypeAlias = pa.Schema | Mapping[str, pa.DataType | pa.Field | str]
"""A ``pyarrow.Schema`` or a dict of column names to pyarrow types."""
BatchLike: TypeAlias = (
    pa.RecordBatch | pa.Table | Mapping[str, Any] | pandas.DataFrame | tuple[Any, ...] | Any
)
"""What publishers take: a batch, a table, a dict of columns (or of one row's scalars), a
DataFrame, a tuple (one row) or an Arrow C-interface object."""
Kind: TypeAlias = Literal["append", "blink", "ring", "keyed"]
Event: TypeAlias = Snapshot | Update | Lagged | Failed
Keys: TypeAlias = str | Sequence[str]
"""Key columns: one name or a list of names."""
Seconds: TypeAlias = float | timedelta
"""A duration: seconds (an ``int`` or a ``float``) or a ``timedelta``."""

OP_COLUMN: str
"""The operation column of a keyed table's staged rows (in unwritten data)."""

class Engine:
    """A live ticking-table engine; see ``tickertable.Engine``."""

    def __init__(
        self,
        period: float = 0.1,
        *,
        manual: bool = False,
        data_dir: str | os.PathLike[str] | None = None,
        sync: Literal["every_cycle", "never"] | Seconds | None = None,
        low_latency: float | None = None,
        staging_limit: int | None = None,
    ) -> None: ...
    def run_cycle(self) -> int:
        """Runs one cycle now on the calling thread and returns its step."""
    def sync(self) -> int:
        """Makes everything written before the call visible; returns its step."""
    def wait_for_step(self, step: int, timeout: float | None = None) -> bool:
        """Waits until ``step`` is published, at most ``timeout`` seconds."""
    def request_refresh(self) -> None:
        """Asks the cycle thread to run the next cycle now."""
    @property
    def step(self) -> int:
        """The last finished step."""
    @property
    def data_dir(self) -> str | None:
        """The data directory durable tables log to, or ``None``."""
    @property
    def period(self) -> float:
        """The target cycle period, in seconds."""
    @property
    def is_manual(self) -> bool:
        """Whether cycles run only on ``run_cycle()``."""
    @property
    def is_shut_down(self) -> bool:
        """Whether the engine has shut down."""
    def tables(self) -> list[Table]:
        """Every table, in creation order."""
    def table(self, name: str) -> Table:
        """The table named ``name``; raises ``NoSuchTableError``."""
    def stats(self) -> dict[str, Any]:
        """Totals over the engine's life and the last cycle's figures."""
    def recent_errors(self) -> list[str]:
        """The last errors the engine reported on its own."""
    def table_publisher(
        self,
        name: str,
        col_defs: ColDefs,
        *,
        on_flush: Callable[[TablePublisher], object] | None = None,
        on_shutdown: Callable[[], object] | None = None,
        kind: Kind | None = None,
        capacity: int | None = None,
        key: Keys | None = None,
        durable: bool = False,
    ) -> tuple[Table, TablePublisher]:
        """Creates a table fed by whole batches (a blink table by default) and its publisher."""
    def dynamic_table_writer(
        self,
        name: str,
        col_defs: ColDefs,
        *,
        kind: Kind | None = None,
        capacity: int | None = None,
        key: Keys | None = None,
        durable: bool = False,
    ) -> DynamicTableWriter:
        """Creates a table written row by row (an append table by default)."""
    def ring_table(self, source: Table, capacity: int, *, name: str | None = None) -> Table:
        """A ring table of the newest ``capacity`` rows of ``source``."""
    def blink_to_append_only(
        self, source: Table, *, name: str | None = None, limit: int | None = None
    ) -> Table:
        """An append table of every row ``source`` ever shows."""
    def history_table(
        self, source: Table, *, capacity: int | None = None, name: str | None = None
    ) -> Table:
        """A table of a durable blink table's logged history, then its rows."""
    def tail(self, source: Table, n: int, *, name: str | None = None) -> Table:
        """The last ``n`` rows of ``source``."""
    def last_by(self, name: str, source: Table, keys: Keys) -> Table:
        """A keyed table of the latest row of ``source`` per key."""
    def where(self, name: str, source: Table, predicate: str) -> Table:
        """The rows of ``source`` that match ``predicate``; raises ``ExpressionError``."""
    def filter(self, name: str, source: Table, predicate: str) -> Table:
        """The same as ``where``."""
    def agg_by(
        self, name: str, source: Table, keys: Keys, aggs: Agg | str | Sequence[Agg | str]
    ) -> Table:
        """A keyed table of ``aggs`` over the rows of ``source`` per key; with no keys
        (``[]``), one row over the whole source (none while it has no rows). An aggregate is
        a ``tt.agg`` one or its text (``"sum(Size) as volume"``; a bad one raises
        ``ValueError`` saying where)."""
    def bars(
        self,
        name: str,
        source: Table,
        time_col: str,
        interval: Seconds,
        keys: Keys,
        aggs: Agg | str | Sequence[Agg | str],
    ) -> tuple[Table, Table]:
        """Tumbling time bars per key: ``(closed, open)``."""
    def drop_table(self, name: str) -> list[str]:
        """Drops a table and the tables derived from it; returns their names."""
    def serve(
        self,
        address: str = "127.0.0.1:0",
        *,
        token: str | None = None,
        max_streams: int | None = None,
        table_management: bool = False,
    ) -> FlightServer:
        """Serves every table over Arrow Flight."""
    def shutdown(self) -> None:
        """Shuts the engine down; a second call does nothing."""
    def __enter__(self) -> Engine: ...
    def __exit__(self, *args: object) -> bool: ...

class Agg:
    """One aggregate of ``agg_by`` and ``bars``; build it with ``tickertable.agg``."""

    @staticmethod
    def count(*, name: str | None = None) -> Agg:
        """The number of rows."""
    @staticmethod
    def sum(column: str, *, name: str | None = None) -> Agg:
        """The sum of ``column``."""
    @staticmethod
    def min(column: str, *, name: str | None = None) -> Agg:
        """The least value of ``column``."""
    @staticmethod
    def max(column: str, *, name: str | None = None) -> Agg:
        """The greatest value of ``column``."""
    @staticmethod
    def first(column: str, *, name: str | None = None) -> Agg:
        """``column`` in the group's first row."""
    @staticmethod
    def last(column: str, *, name: str | None = None) -> Agg:
        """``column`` in the group's last row."""
    @staticmethod
    def mean(column: str, *, name: str | None = None) -> Agg:
        """The mean of ``column``."""
    @staticmethod
    def wmean(column: str, weight: str, *, name: str | None = None) -> Agg:
        """The mean of ``column`` weighted by ``weight``."""
    @property
    def kind(self) -> Literal["count", "sum", "min", "max", "first", "last", "mean", "wmean"]:
        """The kind of aggregate."""
    @property
    def column(self) -> str | None:
        """The input column (``None`` for ``count``)."""
    @property
    def weight(self) -> str | None:
        """The weight column of a ``wmean``."""
    @property
    def name(self) -> str:
        """The output column's name."""

class FlightServer:
    """A running Flight server of an engine."""

    @property
    def url(self) -> str:
        """The ``grpc://host:port`` URL clients connect to."""
    @property
    def port(self) -> int:
        """The port the server listens on."""
    def shutdown(self) -> None:
        """Stops the server."""
    def __enter__(self) -> FlightServer: ...
    def __exit__(self, *args: object) -> bool: ...

class Table:
    """A live table of an engine."""

    @property
    def name(self) -> str:
        """The table's name."""
    @property
    def schema(self) -> pa.Schema:
        """The table's schema."""
    @property
    def kind(self) -> Kind:
        """The table's kind."""
    @property
    def capacity(self) -> int | None:
        """A ring's capacity, a limited append table's limit, a keyed table's capacity."""
    @property
    def key(self) -> list[str]:
        """A keyed table's key columns."""
    @property
    def num_rows(self) -> int:
        """How many rows the table shows now."""
    def __len__(self) -> int: ...
    @property
    def step(self) -> int:
        """The step of the table's last change."""
    @property
    def is_closed(self) -> bool:
        """Whether the table was closed or failed."""
    @property
    def failure(self) -> str | None:
        """The failure its publisher reported, if any."""
    def snapshot(self) -> pa.Table:
        """The table's rows now (zero-copy, consistent at one step)."""
    def to_pandas(self) -> pandas.DataFrame:
        """The table's rows now, as a DataFrame."""
    def get(self, key: Any) -> dict[str, Any] | None:
        """A keyed table's row with ``key`` (a value or a tuple), as a dict, or ``None``."""
    def listen(
        self, fn_: Callable[[Update], object], on_failure: Callable[[str], object] | None = None
    ) -> ListenerHandle:
        """Calls ``fn_(update)`` with every update of this table."""
    def subscribe(
        self, *, capacity: int | None = None, max_queued_rows: int | None = None
    ) -> Subscription:
        """A subscription: a snapshot, then every update."""

class ListenerHandle:
    """A registered listener."""

    def remove(self) -> None:
        """Removes the listener."""
    def stop(self) -> None:
        """Removes the listener."""
    @property
    def is_active(self) -> bool:
        """Whether the listener is still registered."""
    @property
    def failure(self) -> str | None:
        """Why the engine removed the listener, if it did."""
    @property
    def exception(self) -> BaseException | None:
        """The exception the listener raised, if it did."""
    def __enter__(self) -> ListenerHandle: ...
    def __exit__(self, *args: object) -> bool: ...

class Update:
    """What one cycle changed in one table."""

    @property
    def kind(self) -> Literal["update"]: ...
    @property
    def step(self) -> int:
        """The step of the cycle that made this update."""
    @property
    def added(self) -> pa.Table:
        """The rows added."""
    @property
    def removed(self) -> pa.Table | None:
        """The rows removed (listeners only)."""
    @property
    def modified(self) -> pa.Table | None:
        """The new values of the rows modified in place (keyed tables)."""
    @property
    def modified_before(self) -> pa.Table | None:
        """The old values of the rows modified in place (listeners only)."""
    @property
    def removed_rows(self) -> range:
        """The positions removed."""
    @property
    def added_rows(self) -> range:
        """The positions added."""
    @property
    def modified_rows(self) -> list[int]:
        """The positions modified in place."""
    @property
    def num_added(self) -> int: ...
    @property
    def num_removed(self) -> int: ...
    @property
    def num_modified(self) -> int: ...

class Snapshot:
    """A table's rows at one step: a subscription's first event."""

    @property
    def kind(self) -> Literal["snapshot"]: ...
    @property
    def step(self) -> int: ...
    @property
    def table(self) -> pa.Table: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def rows(self) -> range: ...

class Lagged:
    """The subscriber fell behind; reset to ``snapshot``."""

    @property
    def kind(self) -> Literal["lagged"]: ...
    @property
    def missed(self) -> int | None: ...
    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def step(self) -> int: ...

class Failed:
    """The table failed; the subscription ends after this event."""

    @property
    def kind(self) -> Literal["failed"]: ...
    @property
    def error(self) -> BaseException: ...

class Subscription(Iterator[Event], AsyncIterator[Event]):
    """A subscription to a table."""

    def __iter__(self) -> Subscription: ...
    def __next__(self) -> Event: ...
    def __aiter__(self) -> Subscription: ...
    async def __anext__(self) -> Event: ...
    def recv(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting at most ``timeout`` seconds."""
    def try_recv(self) -> Event | None:
        """The next event if one is queued now."""
    def _poll(self, timeout: float) -> tuple[bool, Event | None]: ...
    def __len__(self) -> int: ...
    @property
    def lagged_count(self) -> int: ...
    def close(self) -> None:
        """Unsubscribes."""
    def __enter__(self) -> Subscription: ...
    def __exit__(self, *args: object) -> bool: ...

class TablePublisher:
    """Publishes whole batches into one table."""

    def add(self, data: BatchLike) -> None:
        """Stages ``data`` for the next cycle."""
    def upsert(self, data: BatchLike) -> None:
        """Upserts into a keyed table."""
    def delete(self, keys: Iterable[Any] | BatchLike) -> None:
        """Deletes keys from a keyed table."""
    def publish_failure(self, error: BaseException | str) -> None:
        """Fails the table with ``error``."""
    def is_alive(self) -> bool:
        """Whether the table still takes rows."""
    @property
    def table(self) -> Table: ...

class DynamicTableWriter:
    """A table written row by row from any number of Python threads."""

    def write_row(self, *values: Any) -> None:
        """Writes one row."""
    def write_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Writes many rows, all or none."""
    def upsert(self, *values: Any) -> None:
        """Upserts one row into a keyed table."""
    def delete_row(self, *key: Any) -> None:
        """Deletes one key from a keyed table."""
    def delete(self, keys: Iterable[Any]) -> None:
        """Deletes many keys from a keyed table."""
    def transaction(self) -> Transaction:
        """A context manager around a transaction on this thread."""
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def staged_rows(self) -> int:
        """Rows the calling thread wrote that no cycle has taken yet."""
    @property
    def table(self) -> Table: ...
    def close(self) -> None:
        """Closes the table."""

class Transaction:
    """A transaction on the calling thread's row writer."""

    def __enter__(self) -> Transaction: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        _exc: BaseException | None = None,
        _tb: TracebackType | None = None,
    ) -> bool: ...

class ThreadStatus:
    """One writer thread's counters."""

    thread_id: int
    sent_rows: int
    unsent_rows: int
    send_failed_rows: int
    is_exiting: bool

class MultithreadedWriterStatus:
    """What a multithreaded writer has done, in total and per thread."""

    sent_rows: int
    unsent_rows: int
    send_failed_rows: int
    is_exiting: bool
    error_code: str
    error_info: str | None
    thread_status: list[ThreadStatus]
    def has_error(self) -> bool: ...
    def succeed(self) -> bool: ...

class MultithreadedTableWriter:
    """A pool of writer threads in front of a table."""

    def __init__(
        self,
        target: Table | RemoteTable,
        *,
        batch_size: int = 10_000,
        throttle: float = 0.01,
        thread_count: int = 1,
        partition_col: str | None = None,
        mode: Literal["append", "upsert"] = "append",
        flush_mode: Literal["background", "sync", "manual"] = "background",
        max_buffered_rows: int | None = None,
        max_buffered_bytes: int | None = None,
        max_retries: int | None = None,
        base_delay: float | None = None,
        max_delay: float | None = None,
    ) -> None: ...
    def insert(self, *values: Any) -> None:
        """Inserts one row."""
    def insert_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Inserts many rows."""
    def upsert(self, *values: Any) -> None:
        """Upserts one row into a keyed table."""
    def delete(self, *key: Any) -> None:
        """Deletes one key from a keyed table."""
    def flush(self) -> None:
        """Sends everything buffered and waits."""
    def get_status(self) -> MultithreadedWriterStatus: ...
    def get_unwritten_data(self) -> list[list[Any]]: ...
    def get_unwritten_batches(self) -> list[pa.RecordBatch]: ...
    def insert_unwritten_data(self, data: Iterable[Sequence[Any] | pa.RecordBatch]) -> None: ...
    def wait_for_thread_completion(self) -> MultithreadedWriterStatus: ...
    @property
    def schema(self) -> pa.Schema: ...
    def __enter__(self) -> MultithreadedTableWriter: ...
    def __exit__(self, *args: object) -> bool: ...

def connect(url: str, *, token: str | None = None, timeout: float | None = None) -> Client:
    """Connects to a served engine: ``grpc://host:port``."""

class Client:
    """A client of a served engine."""

    def tables(self) -> list[RemoteTable]: ...
    def table(self, name: str) -> RemoteTable: ...
    def create_table(
        self,
        name: str,
        col_defs: ColDefs,
        *,
        kind: Kind | None = None,
        capacity: int | None = None,
        key: Keys | None = None,
        durable: bool = False,
    ) -> RemoteTable:
        """Creates a table on the server and returns it."""
    def drop_table(self, name: str) -> list[str]:
        """Drops a table on the server and its derived tables; returns their names."""
    @property
    def url(self) -> str: ...

class RemoteTable:
    """A table of a served engine."""

    @property
    def name(self) -> str: ...
    @property
    def schema(self) -> pa.Schema: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def capacity(self) -> int | None: ...
    @property
    def key(self) -> list[str]: ...
    @property
    def num_rows(self) -> int: ...
    def snapshot(self) -> pa.Table: ...
    def subscribe(self) -> RemoteSubscription: ...
    def add(self, data: BatchLike) -> int: ...
    def upsert(self, data: BatchLike) -> int: ...
    def delete(self, keys: Iterable[Any] | BatchLike) -> int: ...

class RemoteSubscription(Iterator[Event]):
    """A live stream of a served table."""

    def __iter__(self) -> RemoteSubscription: ...
    def __next__(self) -> Event: ...
    def recv(self, timeout: float | None = None) -> Event | None: ...
    def snapshot(self) -> pa.Table: ...
    def close(self) -> None: ...
    def __enter__(self) -> RemoteSubscription: ...
    def __exit__(self, *args: object) -> bool: ...
