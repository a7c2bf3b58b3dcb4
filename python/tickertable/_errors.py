"""The exceptions of tickertable, one class per kind of failure.

Every exception is a :class:`Error`. Each carries the values a program needs to act on it as
attributes (``table``, ``column``, ``expected``, ``found``, ...), and the same values in its
message. The compiled module raises them from the engine's errors.
"""

from __future__ import annotations

from typing import Any


class Error(Exception):
    """Base class of every tickertable error."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in fields.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message


class SchemaError(Error, ValueError):
    """A row, value or batch does not fit the table's schema; nothing of it was applied.

    ``column`` names the column (``None`` for a wrong column count), ``expected`` and ``found``
    say what the schema wants and what was given: Arrow type names in pyarrow's spelling
    (``"double"``, ``"string"``) or a Python type name for a value with no Arrow type, column
    counts (ints) for a row of the wrong length, ``"not null"``/``"null"`` for a null in a
    non-nullable column. ``table`` is the table written to.
    """

    table: str | None
    column: str | None
    expected: Any
    found: Any


class SchemaChangedError(SchemaError):
    """A durable table was created with another schema than its log was written with.

    ``logged`` and ``given`` are the two schemas' columns (also in ``expected`` and
    ``found``); nothing was replayed. Create the table with the logged schema, or drop it
    (``drop_table``) to start it afresh.
    """

    logged: str
    given: str


class KindChangedError(Error, ValueError):
    """A durable table was created as another kind (or key) than its log was written with.

    ``logged`` and ``given`` are the two kinds (with their key columns).
    """

    table: str
    logged: str
    given: str


class ExpressionError(Error, ValueError):
    """A predicate does not parse, names an unknown column, or has the wrong type.

    ``position`` is the byte offset in ``expression`` the error is about (``None`` when it is
    about no one place), and the message starts with it: ``at 0: no column named "Sise"
    (did you mean "Size"?)``.
    """

    position: int | None
    expression: str | None


class UnsupportedTypeError(Error, TypeError):
    """A column type the operation cannot handle (row writers build only flat types)."""

    column: str
    data_type: str


class TableClosedError(Error):
    """The table was closed (or failed); it takes no more rows."""

    table: str


class TableFailedError(TableClosedError):
    """The table's publisher reported a failure (``publish_failure``); ``cause`` says which."""

    cause: str


class StagingFullError(Error):
    """The table's staging buffer is full and the call could not wait for a cycle.

    Raised in a manual engine (nothing drains staging until ``run_cycle()``) and inside
    engine callbacks; elsewhere writers wait for the next cycle instead.
    """

    table: str
    staged: int
    limit: int


class EngineShutDownError(Error):
    """The engine has shut down: tables stay readable, writes are refused."""


class TableDroppedError(TableClosedError):
    """The table was dropped (``drop_table``); its name is free again."""


class TableExistsError(Error, ValueError):
    """A table with this name already exists in the engine.

    Over Flight, ``create_table`` of a name taken by a table of another kind or schema sets
    ``existing`` and ``requested`` to what differs (``None`` otherwise).
    """

    table: str
    existing: str | None
    requested: str | None


class NoSuchTableError(Error, KeyError):
    """No table has this name."""

    table: str


class InvalidOptionError(Error, ValueError):
    """An option has a value that cannot work (a ring of capacity 0, an unknown kind)."""

    option: str
    reason: str


class InvalidOperationError(Error):
    """An operation the table's kind does not have (say, a delete on an append table)."""

    table: str
    reason: str


class TransactionError(Error):
    """``commit``/``rollback`` without ``begin``, or ``begin`` inside a transaction."""


class CallbackError(Error):
    """A listener or ``on_flush`` callback raised; it was removed or its table failed."""

    table: str


class WriterClosedError(Error):
    """A multithreaded writer takes no more rows: it was completed, or a thread gave up."""

    reason: str


class RemoteError(Error):
    """A remote server refused a call or could not be reached.

    ``kind`` is one of ``"unavailable"``, ``"resource_exhausted"``, ``"unauthenticated"``,
    ``"not_found"``, ``"invalid_argument"``, ``"failed_precondition"``, ``"already_exists"``,
    ``"other"``;
    ``transient`` says whether retrying later can succeed.
    """

    kind: str
    transient: bool


class ProtocolError(Error):
    """A peer sent something this side cannot apply."""


class NotSupportedError(Error, NotImplementedError):
    """A feature this version does not have yet."""


class ArrowError(Error):
    """An Arrow operation failed."""


class IoError(Error, OSError):
    """An I/O operation failed."""


class DataDirLockedError(IoError):
    """Another engine (in this process or another) holds the data directory.

    ``dir`` is the directory, ``pid`` the holding process and ``lock_file`` the lock file;
    shut that engine down first (or delete the lock file if its process is gone).
    """

    dir: str
    pid: int
    lock_file: str


class LogCorruptError(IoError):
    """A durable table's log holds a torn or corrupt record at ``offset`` of ``file``."""

    table: str
    file: str
    offset: int
    reason: str


class LogWriteError(IoError):
    """Writing or syncing a durable table's log failed; the table failed with it."""

    table: str
    cause: str


__all__ = [
    "ArrowError",
    "CallbackError",
    "DataDirLockedError",
    "EngineShutDownError",
    "Error",
    "ExpressionError",
    "InvalidOperationError",
    "InvalidOptionError",
    "IoError",
    "KindChangedError",
    "LogCorruptError",
    "LogWriteError",
    "NoSuchTableError",
    "NotSupportedError",
    "ProtocolError",
    "RemoteError",
    "SchemaChangedError",
    "SchemaError",
    "StagingFullError",
    "TableClosedError",
    "TableDroppedError",
    "TableExistsError",
    "TableFailedError",
    "TransactionError",
    "UnsupportedTypeError",
    "WriterClosedError",
]
