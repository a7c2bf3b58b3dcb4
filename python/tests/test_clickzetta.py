"""ClickZetta's primary-key stream example, on keyed tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tickertable as tt

SCHEMA = pa.schema(
    [pa.field("id", pa.string(), nullable=False), ("name", pa.string()), ("age", pa.int32())]
)


def check_pk_result(table: tt.Table) -> None:
    rows = {r["id"]: (r["name"], r["age"]) for r in table.snapshot().to_pylist()}
    assert len(rows) == 8  # 10 - 2
    for i in range(2, 5):
        assert rows[f"id_{i}"] == (f"updated_user_{i}", 30 + i)
    for i in range(5, 10):
        assert rows[f"id_{i}"] == (f"user_{i}", 20 + i)


def test_primary_key_upserts_updates_and_deletes_through_a_publisher(engine: tt.Engine) -> None:
    table, stream = engine.table_publisher("test_pk", SCHEMA, key=["id"])
    assert (table.kind, table.key) == ("keyed", ["id"])
    for i in range(10):
        stream.upsert({"id": f"id_{i}", "name": f"user_{i}", "age": 20 + i})
    for i in range(5):
        stream.upsert({"id": f"id_{i}", "name": f"updated_user_{i}", "age": 30 + i})
    stream.delete([f"id_{i}" for i in range(2)])
    engine.run_cycle()
    check_pk_result(table)


def test_primary_key_example_across_cycles_with_modified_rows(engine: tt.Engine) -> None:
    table, stream = engine.table_publisher("test_pk", SCHEMA, kind="keyed", key="id")
    updates: list[tt.Update] = []
    table.listen(updates.append)
    stream.upsert(pa.table({"id": [f"id_{i}" for i in range(10)], "name": [f"user_{i}" for i in range(10)],
                            "age": pa.array([20 + i for i in range(10)], pa.int32())}))
    engine.run_cycle()
    for i in range(5):
        stream.upsert({"id": f"id_{i}", "name": f"updated_user_{i}", "age": 30 + i})
    engine.run_cycle()
    stream.delete({"id": ["id_0", "id_1"]})
    engine.run_cycle()
    check_pk_result(table)
    assert [u.num_added for u in updates] == [10, 0, 0]
    assert updates[1].num_modified == 5
    assert updates[1].modified.column("name").to_pylist() == [f"updated_user_{i}" for i in range(5)]
    assert updates[1].modified_before.column("name").to_pylist() == [f"user_{i}" for i in range(5)]
    assert updates[2].num_removed == 2


def test_partial_upsert_keeps_other_columns(engine: tt.Engine) -> None:
    table, stream = engine.table_publisher("pk", SCHEMA, key=["id"])
    stream.upsert(("a", "alice", 30))
    engine.run_cycle()
    stream.upsert({"id": "a", "age": 31})
    engine.run_cycle()
    assert table.snapshot().to_pylist() == [{"id": "a", "name": "alice", "age": 31}]


def test_keyed_dynamic_table_writer_and_multithreaded_writer(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("kdtw", SCHEMA, key=["id"])
    for i in range(10):
        w.write_row(f"id_{i}", f"user_{i}", 20 + i)
    for i in range(5):
        w.upsert(f"id_{i}", f"updated_user_{i}", 30 + i)
    w.delete_row("id_0")
    w.delete(["id_1"])
    engine.run_cycle()
    check_pk_result(w.table)

    mtw = tt.MultithreadedTableWriter(w.table, mode="upsert", thread_count=3, partition_col="id")
    mtw.insert("id_9", "nine", 99)
    mtw.delete("id_8")
    mtw.wait_for_thread_completion()
    engine.run_cycle()
    rows = {r["id"]: r["age"] for r in w.table.snapshot().to_pylist()}
    assert rows["id_9"] == 99 and "id_8" not in rows and len(rows) == 7


def test_keyed_operations_on_other_kinds_raise(engine: tt.Engine) -> None:
    table, publisher = engine.table_publisher("plain", SCHEMA)
    with pytest.raises(tt.InvalidOperationError):
        publisher.upsert({"id": "a", "name": "b", "age": 1})
    with pytest.raises(tt.InvalidOperationError):
        publisher.delete(["a"])
    w = engine.dynamic_table_writer("plain_w", SCHEMA)
    with pytest.raises(tt.InvalidOperationError):
        w.upsert("a", "b", 1)
    with pytest.raises(tt.InvalidOperationError):
        w.delete_row("a")
