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


class TableExistsError(Error, ValueError):
    """A table with this name already exists in the engine."""

    table: str


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
    ``"not_found"``, ``"invalid_argument"``, ``"failed_precondition"``, ``"other"``;
    ``transient`` says whether retrying later can succeed.
    """

    kind: str
    transient: bool


class ProtocolError(Error):
    """A peer sent something this side cannot apply."""


class NotSupportedError(Error, NotImplementedError):
    """A feature this version does not have yet (for instance ``Engine(data_dir=...)``)."""


class ArrowError(Error):
    """An Arrow operation failed."""


class IoError(Error, OSError):
    """An I/O operation failed."""


__all__ = [
    "ArrowError",
    "CallbackError",
    "EngineShutDownError",
    "Error",
    "InvalidOperationError",
    "InvalidOptionError",
    "IoError",
    "NoSuchTableError",
    "NotSupportedError",
    "ProtocolError",
    "RemoteError",
    "SchemaError",
    "StagingFullError",
    "TableClosedError",
    "TableExistsError",
    "TableFailedError",
    "TransactionError",
    "UnsupportedTypeError",
    "WriterClosedError",
]
