"""Table.get: one row of a keyed table by its key, as a dict."""

from __future__ import annotations

import datetime

import pyarrow as pa
import pytest

import tickertable as tt


def test_smoke_get_a_row_by_key(engine: tt.Engine) -> None:
    table, publisher = engine.table_publisher("pk", {"id": pa.string(), "v": pa.int64()}, key="id")
    publisher.upsert({"id": ["a", "b"], "v": [1, 2]})
    assert table.get("a") is None  # not before the cycle
    engine.run_cycle()
    assert table.get("a") == {"id": "a", "v": 1}
    assert table.get(["b"]) == {"id": "b", "v": 2}
    assert table.get("zz") is None
    publisher.upsert({"id": "a", "v": 10})
    publisher.delete(["b"])
    engine.run_cycle()
    assert (table.get("a"), table.get("b")) == ({"id": "a", "v": 10}, None)


def test_get_with_a_key_of_several_columns_and_typed_values(engine: tt.Engine) -> None:
    schema = pa.schema(
        [
            ("Sym", pa.string()),
            ("Venue", pa.int32()),
            ("Ts", pa.timestamp("us")),
            ("Px", pa.float64()),
            ("Ok", pa.bool_()),
            ("Note", pa.string()),
        ]
    )
    w = engine.dynamic_table_writer("book", schema, key=["Sym", "Venue"])
    ts = datetime.datetime(2026, 1, 2, 9, 30, 0, 123456)
    w.write_row("AAPL", 1, ts, 187.5, True, None)
    w.write_row("AAPL", 2, ts, 187.6, False, "x")
    engine.run_cycle()
    assert w.table.get(("AAPL", 1)) == {
        "Sym": "AAPL", "Venue": 1, "Ts": ts, "Px": 187.5, "Ok": True, "Note": None,
    }
    assert w.table.get(("AAPL", 2))["Note"] == "x"  # type: ignore[index]
    assert w.table.get(("AAPL", 3)) is None


def test_get_refuses_what_is_not_a_key(engine: tt.Engine) -> None:
    table, _ = engine.table_publisher("pk", {"id": pa.string(), "n": pa.int64(), "v": pa.int64()}, key=["id", "n"])
    with pytest.raises(tt.InvalidOperationError) as e:
        table.get("a")  # one value for two key columns
    assert "2 values" in str(e.value)
    with pytest.raises(tt.InvalidOperationError):
        table.get(("a", 1, 2))
    with pytest.raises(tt.SchemaError) as s:
        table.get(("a", "one"))
    assert s.value.column == "n"
    append, _ = engine.table_publisher("append", {"id": pa.string()}, kind="append")
    with pytest.raises(tt.InvalidOperationError) as e:
        append.get("a")
    assert "keyed" in str(e.value)


def test_get_on_a_threaded_engine_and_not_from_a_listener() -> None:
    with tt.Engine(period=0.01) as engine:
        table, publisher = engine.table_publisher("pk", {"id": pa.int64(), "v": pa.int64()}, key="id")
        errors: list[BaseException] = []

        def listener(update: tt.Update) -> None:
            try:
                table.get(1)
            except tt.Error as e:
                errors.append(e)

        table.listen(listener)
        publisher.upsert({"id": [1, 2], "v": [10, 20]})
        engine.sync()
        assert table.get(2) == {"id": 2, "v": 20}
        assert errors and "listener" in str(errors[0])
