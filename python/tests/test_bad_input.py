"""Bad input raises clear exceptions and applies nothing."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tickertable as tt


def test_wrong_types_name_the_column_expected_and_found(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("q", {"Sym": pa.string(), "Price": pa.float64()})
    with pytest.raises(tt.SchemaError) as e:
        w.write_row("NVDA", "n/a")
    assert (e.value.table, e.value.column, e.value.expected, e.value.found) == (
        "q",
        "Price",
        "double",
        "string",
    )
    assert str(e.value) == 'table "q": column "Price" expects double, found string'
    assert isinstance(e.value, ValueError) and isinstance(e.value, tt.Error)
    with pytest.raises(tt.SchemaError) as e:
        w.write_row("NVDA", [1.0])
    assert (e.value.column, e.value.found) == ("Price", "list")
    engine.run_cycle()
    assert w.table.num_rows == 0


def test_wrong_column_counts(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("c", {"A": pa.int64(), "B": pa.int64()})
    with pytest.raises(tt.SchemaError) as e:
        w.write_row(1)
    assert (e.value.column, e.value.expected, e.value.found) == (None, 2, 1)
    with pytest.raises(tt.SchemaError):
        w.write_row(1, 2, 3)
    _, p = engine.table_publisher("p", {"A": pa.int64(), "B": pa.int64()})
    with pytest.raises(tt.SchemaError) as e:
        p.add({"A": [1]})
    assert e.value.column == "B"
    with pytest.raises(tt.SchemaError) as e:
        p.add({"A": [1], "B": [2], "C": [3]})
    assert e.value.column == "C"
    with pytest.raises(tt.SchemaError) as e:
        p.add({"A": ["x"], "B": [2]})
    assert (e.value.column, e.value.expected) == ("A", "int64")
    with pytest.raises(tt.SchemaError) as e:
        p.add(pa.record_batch({"A": pa.array([1], pa.int32()), "B": pa.array([2], pa.int64())}))
    assert (e.value.column, e.value.expected, e.value.found) == ("A", "int64", "int32")


def test_values_out_of_range_and_nulls(engine: tt.Engine) -> None:
    schema = pa.schema([pa.field("small", pa.int8()), pa.field("req", pa.string(), nullable=False)])
    w = engine.dynamic_table_writer("r", schema)
    with pytest.raises(tt.SchemaError) as e:
        w.write_row(300, "x")
    assert (e.value.column, e.value.expected, e.value.found) == ("small", "int8", "300")
    with pytest.raises(tt.SchemaError) as e:
        w.write_row(1, None)
    assert (e.value.column, e.value.expected, e.value.found) == ("req", "not null", "null")
    with pytest.raises(tt.SchemaError):
        w.write_row(2**70, "x")
    w.write_row(None, "ok")
    engine.run_cycle()
    assert w.table.snapshot().to_pylist() == [{"small": None, "req": "ok"}]


def test_closed_tables_refuse_writes(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("closed", {"A": pa.int64()})
    w.write_row(1)
    w.close()
    with pytest.raises(tt.TableClosedError) as e:
        w.write_row(2)
    assert e.value.table == "closed"
    engine.run_cycle()
    assert w.table.num_rows == 1 and w.table.is_closed


def test_shut_down_engine_refuses_writes_and_keeps_tables_readable() -> None:
    engine = tt.Engine(manual=True)
    t, p = engine.table_publisher("t", {"A": pa.int64()}, kind="append")
    p.add({"A": [1]})
    engine.shutdown()
    assert t.num_rows == 1  # the last cycle applied it
    with pytest.raises((tt.EngineShutDownError, tt.TableClosedError)):
        p.add({"A": [2]})
    with pytest.raises(tt.EngineShutDownError):
        engine.table_publisher("u", {"A": pa.int64()})
    engine.shutdown()  # twice is fine


def test_bad_options(engine: tt.Engine) -> None:
    with pytest.raises(tt.InvalidOptionError):
        tt.Engine(manual=True, sync="sometimes")
    with pytest.raises(tt.InvalidOptionError):
        engine.table_publisher("x", {"A": pa.int64()}, kind="ring")
    with pytest.raises(tt.InvalidOptionError):
        engine.table_publisher("x", {"A": pa.int64()}, kind="circular")
    with pytest.raises(tt.InvalidOptionError):
        engine.table_publisher("x", {"A": pa.int64()}, kind="ring", capacity=0)
    engine.table_publisher("x", {"A": pa.int64()})
    with pytest.raises(tt.TableExistsError):
        engine.table_publisher("x", {"A": pa.int64()})
    with pytest.raises(tt.NoSuchTableError):
        engine.table("nope")
    with pytest.raises(KeyError):
        engine.table("nope")
    with pytest.raises(tt.SchemaError):
        engine.table_publisher("k", {"A": pa.int64()}, key=["B"])
    with pytest.raises(tt.UnsupportedTypeError):
        engine.dynamic_table_writer("nested", {"L": pa.list_(pa.int64())})
    with pytest.raises(TypeError):
        engine.table_publisher("y", 42)
    with pytest.raises(TypeError):
        engine.table_publisher("z", {"A": pa.int64()})[1].add(42)


def test_staging_full_in_a_manual_engine_raises() -> None:
    with tt.Engine(manual=True, staging_limit=3) as engine:
        w = engine.dynamic_table_writer("w", {"A": pa.int64()})
        for i in range(3):
            w.write_row(i)
        with pytest.raises(tt.StagingFullError) as e:
            w.write_row(3)
        assert (e.value.staged, e.value.limit) == (3, 3)
        _, p = engine.table_publisher("p", {"A": pa.int64()})
        p.add({"A": [1, 2, 3]})
        with pytest.raises(tt.StagingFullError):
            p.add({"A": [4]})
        engine.run_cycle()
        w.write_row(3)  # room again
        p.add({"A": [4]})


def test_value_conversions(engine: tt.Engine) -> None:
    np = pytest.importorskip("numpy")
    import datetime

    schema = pa.schema(
        [
            ("b", pa.bool_()),
            ("i", pa.int32()),
            ("u", pa.uint64()),
            ("f", pa.float32()),
            ("s", pa.string()),
            ("y", pa.binary()),
            ("ts", pa.timestamp("ns")),
            ("d", pa.date32()),
        ]
    )
    w = engine.dynamic_table_writer("conv", schema)
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    w.write_row(True, 1, 2**63, 1.5, "é", b"\x00\x01", when, datetime.date(2024, 1, 2))
    w.write_row(np.bool_(False), np.int16(2), np.uint64(3), np.float32(2.5), "x", "y", 10, 19000)
    w.write_row(None, None, None, None, None, None, np.datetime64("2024-01-02T03:04:05"), None)
    engine.run_cycle()
    rows = w.table.snapshot().to_pylist()
    assert rows[0]["ts"] == when and rows[0]["d"] == datetime.date(2024, 1, 2)
    assert rows[0]["u"] == 2**63 and rows[0]["s"] == "é" and rows[0]["y"] == b"\x00\x01"
    assert rows[1]["b"] is False and rows[1]["i"] == 2 and rows[1]["f"] == 2.5
    assert rows[2]["ts"] == when and rows[2]["b"] is None
