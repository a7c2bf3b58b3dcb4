"""Smoke test: an engine, a table, a cycle."""

import pyarrow as pa

import tickertable as tt


def test_smoke(engine: tt.Engine) -> None:
    table, publisher = engine.table_publisher("t", {"X": pa.int64()})
    publisher.add({"X": [1, 2, 3]})
    assert table.num_rows == 0
    assert engine.run_cycle() == 1
    assert table.snapshot().column("X").to_pylist() == [1, 2, 3]
