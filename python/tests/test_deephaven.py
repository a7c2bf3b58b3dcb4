"""Deephaven's examples: DynamicTableWriter and table_publisher with downstream tables."""

from __future__ import annotations

import random
import threading

import pyarrow as pa
import pytest

import tickertable as tt


def test_dynamic_table_writer_rows_appear_at_the_next_cycle(engine: tt.Engine) -> None:
    # "DynamicTableWriter and the Update Graph": the table is empty until the next cycle.
    column_definitions = {"Numbers": pa.int32(), "Words": pa.string()}
    table_writer = engine.dynamic_table_writer("dtw", column_definitions)
    result = table_writer.table
    table_writer.write_row(1, "Testing")
    table_writer.write_row(2, "Dynamic")
    table_writer.write_row(3, "Table")
    table_writer.write_row(4, "Writer")
    assert result.num_rows == 0
    engine.run_cycle()
    assert result.num_rows == 4
    assert result.snapshot().to_pydict() == {
        "Numbers": [1, 2, 3, 4],
        "Words": ["Testing", "Dynamic", "Table", "Writer"],
    }
    assert result.kind == "append"


def test_dynamic_table_writer_from_a_thread(engine: tt.Engine) -> None:
    table_writer = engine.dynamic_table_writer("ab", {"A": pa.int64(), "B": pa.string()})

    def thread_func() -> None:
        for i in range(10):
            table_writer.write_row(i, random.choice("abcdefgh"))

    thread = threading.Thread(target=thread_func)
    thread.start()
    thread.join()
    engine.run_cycle()
    assert table_writer.table.snapshot().column("A").to_pylist() == list(range(10))


def test_trig_functions_with_numpy_values(engine: tt.Engine) -> None:
    np = pytest.importorskip("numpy")
    cols = {"X": pa.float64(), "SinX": pa.float64(), "CosX": pa.float64(), "TanX": pa.float64()}
    w = engine.dynamic_table_writer("trig", cols)
    for i in range(628):
        x = 0.01 * i
        w.write_row(x, np.sin(x), np.cos(x), np.tan(x))
    engine.run_cycle()
    t = w.table.snapshot()
    assert t.num_rows == 628
    assert t.column("SinX")[100].as_py() == pytest.approx(np.sin(1.0))


def test_table_publisher_fed_from_a_thread_with_ring_and_append_only(engine: tt.Engine) -> None:
    coldefs = {"X": pa.int32(), "Y": pa.float64()}
    shut_down: list[str] = []
    my_table, my_publisher = engine.table_publisher(
        "Publisher", coldefs, on_shutdown=lambda: shut_down.append("done")
    )
    my_ring_table = engine.ring_table(my_table, 15)
    my_append_only_table = engine.blink_to_append_only(my_table)
    assert my_table.kind == "blink"
    assert (my_ring_table.kind, my_ring_table.capacity) == ("ring", 15)

    added: list[int] = []

    def add_table(n: int) -> None:
        my_publisher.add(
            {"X": [random.randint(0, 10) for _ in range(n)], "Y": [random.uniform(-50, 50) for _ in range(n)]}
        )
        added.append(n)

    # One batch per cycle, from a producer thread.
    for _ in range(5):
        t = threading.Thread(target=add_table, args=(random.randint(5, 10),))
        t.start()
        t.join()
        engine.run_cycle()
        assert my_table.num_rows == added[-1]  # blink: this cycle's rows only

    assert my_ring_table.num_rows == min(15, sum(added))
    assert my_append_only_table.num_rows == sum(added)
    engine.run_cycle()
    assert my_table.num_rows == 0  # a cycle with no rows empties a blink table
    assert my_append_only_table.num_rows == sum(added)

    my_publisher.publish_failure(RuntimeError("Publisher shut down by user."))
    engine.run_cycle()
    assert not my_publisher.is_alive()
    assert my_table.is_closed
    assert "Publisher shut down by user." in (my_table.failure or "")
    assert shut_down == ["done"]
    with pytest.raises(tt.TableClosedError):
        my_publisher.add({"X": [1], "Y": [1.0]})


def test_publisher_takes_batches_tables_dicts_and_pandas(engine: tt.Engine) -> None:
    pd = pytest.importorskip("pandas")
    schema = pa.schema([("X", pa.int64()), ("Y", pa.float64())])
    table, publisher = engine.table_publisher("many", schema, kind="append")
    publisher.add(pa.record_batch({"X": pa.array([1], pa.int64()), "Y": [1.0]}))
    publisher.add(pa.table({"X": pa.array([2, 3], pa.int64()), "Y": [2.0, 3.0]}))
    publisher.add({"X": [4], "Y": [4.0]})
    publisher.add(pd.DataFrame({"X": [5, 6], "Y": [5.0, 6.0]}))
    publisher.add({"X": 7, "Y": 7.0})  # one row of scalars
    engine.run_cycle()
    assert table.snapshot().column("X").to_pylist() == [1, 2, 3, 4, 5, 6, 7]
    assert table.to_pandas()["Y"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_on_flush_adds_land_in_the_same_cycle(engine: tt.Engine) -> None:
    pending: list[int] = []

    def on_flush(tp: tt.TablePublisher) -> None:
        batch, pending[:] = list(pending), []
        if batch:
            tp.add({"X": batch})

    table, publisher = engine.table_publisher("flushed", {"X": pa.int64()}, on_flush=on_flush)
    pending.extend([1, 2, 3])
    engine.run_cycle()
    assert table.snapshot().column("X").to_pylist() == [1, 2, 3]
    assert publisher.table.name == "flushed"


def test_on_flush_that_raises_fails_its_table_only(
    engine: tt.Engine, unraisable: list[object]
) -> None:
    def on_flush(tp: tt.TablePublisher) -> None:
        raise ValueError("feed lost")

    bad, _ = engine.table_publisher("bad", {"X": pa.int64()}, on_flush=on_flush)
    good, good_pub = engine.table_publisher("good", {"X": pa.int64()})
    good_pub.add({"X": [1]})
    engine.run_cycle()
    assert len(unraisable) == 1
    assert bad.is_closed
    assert good.num_rows == 1
    assert any("feed lost" in e for e in engine.recent_errors())
    engine.run_cycle()  # the engine goes on


def test_transactions_land_whole_or_not_at_all(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("tx", {"X": pa.int64()})
    with w.transaction():
        w.write_row(1)
        w.write_row(2)
    with pytest.raises(RuntimeError), w.transaction():
        w.write_row(3)
        raise RuntimeError("abort")
    engine.run_cycle()
    assert w.table.snapshot().column("X").to_pylist() == [1, 2]
    with pytest.raises(tt.TransactionError):
        w.commit()


def test_write_rows_is_all_or_nothing(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("rows", {"X": pa.int64(), "S": pa.string()})
    w.write_rows([(1, "a"), (2, "b"), [3, "c"]])
    with pytest.raises(tt.SchemaError):
        w.write_rows([(4, "d"), (5, 6)])
    engine.run_cycle()
    assert w.table.snapshot().column("X").to_pylist() == [1, 2, 3]


def test_derived_table_names_are_unique(engine: tt.Engine) -> None:
    t, _ = engine.table_publisher("src", {"X": pa.int64()})
    a = engine.ring_table(t, 5)
    b = engine.ring_table(t, 5)
    c = engine.tail(t, 2, name="last2")
    assert a.name != b.name
    assert c.name == "last2"
    assert [x.name for x in engine.tables()] == ["src", a.name, b.name, "last2"]
    assert engine.table("last2").name == "last2"
