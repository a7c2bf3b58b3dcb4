"""Pure-Python conversions the compiled module calls: schemas, batches from dicts, pandas
and rows, and temporal scalars. Arrow data stays in pyarrow; nothing here copies a
``pyarrow.RecordBatch`` that is already in the table's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from ._errors import SchemaError


def schema_of(col_defs: Any) -> pa.Schema:
    """A ``pyarrow.Schema`` from a schema, a dict of names to types (or fields, or type names
    such as ``"int64"``), or a list of fields or ``(name, type)`` pairs."""
    if isinstance(col_defs, pa.Schema):
        return col_defs
    if isinstance(col_defs, Mapping):
        fields = []
        for name, t in col_defs.items():
            if isinstance(t, pa.Field):
                fields.append(t.with_name(name))
            else:
                fields.append(pa.field(name, t))
        return pa.schema(fields)
    if isinstance(col_defs, Sequence) and not isinstance(col_defs, (str, bytes)):
        return pa.schema(col_defs)
    raise TypeError(
        "col_defs must be a pyarrow.Schema or a dict of column names to pyarrow types, "
        f"not {type(col_defs).__name__}"
    )


def _is_scalar(v: Any) -> bool:
    if isinstance(v, (str, bytes, bytearray)) or v is None:
        return True
    return not hasattr(v, "__len__") and not hasattr(v, "__array__")


def _column(name: str, values: Any, field: pa.Field, table: str) -> pa.Array:
    try:
        arr = pa.array(values, type=field.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
        try:
            found = str(pa.array(values, from_pandas=True).type)
        except Exception:  # noqa: BLE001 - any failure only means "no single Arrow type"
            found = type(values).__name__
        raise SchemaError(
            f"table {table!r}: column {name!r} expects {field.type}, found {found} ({e})",
            table=table,
            column=name,
            expected=str(field.type),
            found=found,
        ) from e
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr


def _from_columns(
    columns: Mapping[str, Any], schema: pa.Schema, table: str, partial_ok: bool
) -> pa.RecordBatch:
    names = set(schema.names)
    for name in columns:
        if name not in names:
            raise SchemaError(
                f"table {table!r} has no column named {name!r}",
                table=table,
                column=name,
                expected=None,
                found=None,
            )
    fields, arrays = [], []
    for field in schema:
        if field.name in columns:
            fields.append(field)
            arrays.append(_column(field.name, columns[field.name], field, table))
        elif not partial_ok:
            raise SchemaError(
                f"table {table!r}: column {field.name!r} is missing",
                table=table,
                column=field.name,
                expected=str(field.type),
                found=None,
            )
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def to_batch(
    data: Any, table: str, schema: pa.Schema, partial: Sequence[str] | None = None
) -> pa.RecordBatch:
    """One ``pyarrow.RecordBatch`` for ``schema`` from what a publisher takes.

    ``partial`` (a keyed table's key columns) allows batches with only some columns, the key
    among them, for partial upserts and deletes; without it every column is required.
    """
    partial_ok = partial is not None
    if isinstance(data, pa.RecordBatch):
        return data
    if isinstance(data, pa.Table):
        batches = data.combine_chunks().to_batches()
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return pa.RecordBatch.from_pylist([], schema=data.schema)
        return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
    if type(data).__module__.startswith("pandas") and hasattr(data, "columns"):
        return _from_columns({c: data[c] for c in data.columns}, schema, table, partial_ok)
    if isinstance(data, Mapping):
        if data and all(_is_scalar(v) for v in data.values()):
            data = {k: [v] for k, v in data.items()}  # one row, by name
        return _from_columns(data, schema, table, partial_ok)
    if isinstance(data, tuple):
        if len(data) != len(schema):
            raise SchemaError(
                f"table {table!r}: expected {len(schema)} columns, found {len(data)}",
                table=table,
                column=None,
                expected=len(schema),
                found=len(data),
            )
        return _from_columns(dict(zip(schema.names, ([v] for v in data))), schema, table, False)
    if hasattr(data, "__arrow_c_array__"):
        return pa.record_batch(data)
    if hasattr(data, "__arrow_c_stream__"):
        return to_batch(pa.table(data), table, schema, partial)
    if isinstance(data, list):
        return rows_to_batch(data, table, schema)
    raise TypeError(
        "expected a pyarrow.RecordBatch or Table, a dict of columns, a pandas DataFrame, "
        f"a tuple (one row) or a list of rows, not {type(data).__name__}"
    )


def rows_to_batch(rows: Sequence[Sequence[Any]], table: str, schema: pa.Schema) -> pa.RecordBatch:
    """A batch from rows (each a sequence of values in schema order)."""
    n = len(schema)
    for row in rows:
        if len(row) != n:
            raise SchemaError(
                f"table {table!r}: expected {n} columns, found {len(row)}",
                table=table,
                column=None,
                expected=n,
                found=len(row),
            )
    columns = list(zip(*rows)) if rows else [[] for _ in range(n)]
    return _from_columns(
        {f.name: list(c) for f, c in zip(schema, columns)}, schema, table, False
    )


def keys_to_batch(keys: Any, table: str, key_schema: pa.Schema) -> pa.RecordBatch:
    """A batch of key columns from key values: for a one-column key a list of values, for a
    longer key a list of tuples; or a dict of key columns, a batch, a table, a DataFrame."""
    if isinstance(keys, (list, tuple)) and not (
        isinstance(keys, tuple) and len(keys) == len(key_schema) and len(key_schema) > 1
    ):
        if len(key_schema) == 1:
            rows = [k if isinstance(k, (tuple, list)) else (k,) for k in keys]
        else:
            rows = [tuple(k) for k in keys]
        return rows_to_batch(rows, table, key_schema)
    if isinstance(keys, tuple):
        return rows_to_batch([keys], table, key_schema)
    return to_batch(keys, table, key_schema, partial=key_schema.names)


def temporal_value(value: Any, arrow_type: pa.DataType) -> int:
    """A temporal Python object (``datetime``, ``date``, ``timedelta``, ``numpy.datetime64``,
    ``pandas.Timestamp``, ...) as the integer an Arrow column of ``arrow_type`` stores."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") in "mM":
        # numpy datetime64/timedelta64 (pyarrow cannot take day-unit scalars directly)
        unit = _numpy_unit(arrow_type)
        if unit is not None:
            prefix = "datetime64" if dtype.kind == "M" else "timedelta64"
            return int(value.astype(f"{prefix}[{unit}]").astype("int64"))
    storage = pa.int32() if arrow_type.bit_width == 32 else pa.int64()
    return pa.scalar(value, type=arrow_type).cast(storage).as_py()


def _numpy_unit(t: pa.DataType) -> str | None:
    if pa.types.is_date32(t):
        return "D"
    if pa.types.is_date64(t):
        return "ms"
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        return str(t.unit)
    return None


def unwritten_rows(batches: Sequence[pa.RecordBatch]) -> list[list[Any]]:
    """Rows (lists, in column order) of batches handed back by a multithreaded writer."""
    out: list[list[Any]] = []
    for b in batches:
        columns = [c.to_pylist() for c in b.columns]
        out.extend([list(r) for r in zip(*columns)])
    return out


async def anext_event(sub: Any) -> Any:
    """``await``-able next event of a subscription (``Subscription.__anext__``): waits in
    the running loop's default executor in short slices, so cancelling the task stops it."""
    import asyncio

    loop = asyncio.get_running_loop()
    while True:
        ended, event = sub._poll(0)
        if event is not None:
            return event
        if ended:
            raise StopAsyncIteration
        ended, event = await loop.run_in_executor(None, sub._poll, 0.1)
        if event is not None:
            return event
        if ended:
            raise StopAsyncIteration


def value_as_py(value: Any, data_type: pa.DataType) -> Any:
    """A column value the engine gives as a number (a timestamp, a date, ...) as Python."""
    try:
        return pa.array([value], type=data_type)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return value
