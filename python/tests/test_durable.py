"""Durable tables: logged in the engine's data directory and back after a restart."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pyarrow as pa
import pytest

import tickertable as tt

SCHEMA = {"Sym": pa.string(), "Px": pa.float64()}


def test_smoke_engine_with_a_data_dir(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        assert engine.data_dir == str(tmp_path)
        assert "data_dir=" in repr(engine) and str(tmp_path) in repr(engine)
    with tt.Engine(manual=True) as engine:
        assert engine.data_dir is None


def test_durable_tables_come_back_after_a_restart(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        trades, publisher = engine.table_publisher("trades", SCHEMA, kind="append", durable=True)
        publisher.add({"Sym": ["AAPL", "MSFT"], "Px": [187.5, 411.0]})
        engine.run_cycle()
        publisher.add({"Sym": ["NVDA"], "Px": [903.1]})
        writer = engine.dynamic_table_writer("rows", SCHEMA, durable=True)
        writer.write_row("IBM", 170.25)
        book, book_publisher = engine.table_publisher("book", SCHEMA, key="Sym", durable=True)
        book_publisher.upsert({"Sym": ["A", "B", "C"], "Px": [1.0, 2.0, 3.0]})
        engine.run_cycle()
        book_publisher.upsert({"Sym": "A", "Px": 10.0})
        book_publisher.delete(["B"])
        engine.run_cycle()
        trades_step = trades.step  # its last change
        before = trades.snapshot()
    # Shut down: the directory is free again, and every table comes back when created again.
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        trades, publisher = engine.table_publisher("trades", SCHEMA, kind="append", durable=True)
        assert engine.step >= trades_step  # steps continue from the log's
        assert trades.snapshot() == before
        assert trades.snapshot().to_pydict() == {
            "Sym": ["AAPL", "MSFT", "NVDA"],
            "Px": [187.5, 411.0, 903.1],
        }
        rows = engine.dynamic_table_writer("rows", SCHEMA, durable=True).table
        assert rows.snapshot().to_pylist() == [{"Sym": "IBM", "Px": 170.25}]
        book, _ = engine.table_publisher("book", SCHEMA, key="Sym", durable=True)
        assert sorted(book.snapshot().to_pylist(), key=lambda r: r["Sym"]) == [
            {"Sym": "A", "Px": 10.0},
            {"Sym": "C", "Px": 3.0},
        ]
        assert book.get("A") == {"Sym": "A", "Px": 10.0}
        assert book.get("B") is None
        # It goes on from there, and what it takes now is logged too.
        publisher.add({"Sym": ["AMD"], "Px": [150.0]})
        engine.run_cycle()
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        trades, _ = engine.table_publisher("trades", SCHEMA, kind="append", durable=True)
        assert trades.snapshot().column("Sym").to_pylist() == ["AAPL", "MSFT", "NVDA", "AMD"]
        # A table that is not durable is not replayed.
        plain, _ = engine.table_publisher("plain", SCHEMA, kind="append")
        assert plain.num_rows == 0


def test_a_threaded_engine_logs_with_every_sync_policy(tmp_path: Path) -> None:
    for i, sync in enumerate(["every_cycle", "never", 0.05, datetime.timedelta(milliseconds=20)]):
        data_dir = tmp_path / str(i)
        with tt.Engine(period=0.01, data_dir=data_dir, sync=sync) as engine:
            writer = engine.dynamic_table_writer("t", {"A": pa.int64()}, durable=True)
            for n in range(100):
                writer.write_row(n)
            engine.sync()
            assert writer.table.num_rows == 100
        with tt.Engine(manual=True, data_dir=data_dir) as engine:
            t = engine.dynamic_table_writer("t", {"A": pa.int64()}, durable=True).table
            assert t.snapshot().column("A").to_pylist() == list(range(100)), sync


def test_a_schema_change_is_refused_naming_both_schemas(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        _, publisher = engine.table_publisher("trades", SCHEMA, kind="append", durable=True)
        publisher.add({"Sym": ["AAPL"], "Px": [187.5]})
        engine.run_cycle()
    changed = {"Sym": pa.string(), "Px": pa.int64()}
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        with pytest.raises(tt.SchemaChangedError) as e:
            engine.table_publisher("trades", changed, kind="append", durable=True)
        err = e.value
        assert isinstance(err, tt.SchemaError) and isinstance(err, ValueError)
        assert err.table == "trades"
        assert "Px" in err.logged and "Px" in err.given and err.logged != err.given
        assert (err.expected, err.found) == (err.logged, err.given)
        assert err.logged in str(err) and err.given in str(err)
        with pytest.raises(tt.KindChangedError) as k:
            engine.table_publisher("trades", SCHEMA, kind="blink", durable=True)
        assert k.value.table == "trades" and k.value.logged != k.value.given
        # Nothing was created: the right schema and kind still replay.
        trades, _ = engine.table_publisher("trades", SCHEMA, kind="append", durable=True)
        assert trades.num_rows == 1


def test_a_second_engine_on_a_data_dir_in_use_raises(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path):
        with pytest.raises(tt.DataDirLockedError) as e:
            tt.Engine(manual=True, data_dir=tmp_path)
        assert isinstance(e.value, OSError)
        assert e.value.pid == os.getpid()
        assert e.value.dir == str(tmp_path)
        assert str(tmp_path) in str(e.value)
    with tt.Engine(manual=True, data_dir=tmp_path):  # free once the first has shut down
        pass


def test_dropping_a_durable_table_deletes_its_log(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        t, publisher = engine.table_publisher("t", SCHEMA, kind="append", durable=True)
        recent = engine.ring_table(t, 10)
        publisher.add({"Sym": ["A"], "Px": [1.0]})
        engine.run_cycle()
        assert engine.drop_table("t") == ["t", recent.name]
        assert t.is_closed
        with pytest.raises(tt.TableClosedError):
            publisher.add({"Sym": ["B"], "Px": [2.0]})
        t, _ = engine.table_publisher("t", SCHEMA, kind="append", durable=True)
        assert t.num_rows == 0
        with pytest.raises(tt.NoSuchTableError):
            engine.drop_table("missing")


def test_bad_durability_options(tmp_path: Path, engine: tt.Engine) -> None:
    with pytest.raises(tt.InvalidOptionError):
        engine.table_publisher("t", SCHEMA, durable=True)  # no data_dir
    with pytest.raises(tt.InvalidOptionError):
        engine.dynamic_table_writer("w", SCHEMA, durable=True)
    for bad in ["sometimes", 0, -1.0, float("nan"), object()]:
        with pytest.raises(tt.InvalidOptionError):
            tt.Engine(manual=True, data_dir=tmp_path, sync=bad)


def test_a_history_table_holds_a_durable_blinks_rows_across_restarts(tmp_path: Path) -> None:
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        _, publisher = engine.table_publisher("ticks", SCHEMA, kind="blink", durable=True)
        publisher.add({"Sym": ["A", "B"], "Px": [1.0, 2.0]})
        engine.run_cycle()
        publisher.add({"Sym": ["C"], "Px": [3.0]})
        engine.run_cycle()
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        ticks, publisher = engine.table_publisher("ticks", SCHEMA, kind="blink", durable=True)
        assert ticks.num_rows == 0
        publisher.add({"Sym": ["D"], "Px": [4.0]})
        engine.run_cycle()
        history = engine.history_table(ticks)
        last = engine.history_table(ticks, capacity=2, name="last")
        assert history.name == "ticks.history"
        assert history.snapshot().to_pydict()["Sym"] == ["A", "B", "C", "D"]
        assert last.snapshot().to_pydict()["Sym"] == ["C", "D"]
        publisher.add({"Sym": ["E"], "Px": [5.0]})
        engine.run_cycle()
        assert history.snapshot().to_pydict()["Px"] == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert last.snapshot().to_pydict()["Sym"] == ["D", "E"]
        plain, _ = engine.table_publisher("plain", SCHEMA, kind="blink")
        with pytest.raises(tt.InvalidOptionError):
            engine.history_table(plain)
