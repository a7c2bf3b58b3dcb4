"""A served engine (Flight on 127.0.0.1:0) read and written with tt.connect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import tickertable as tt


@pytest.fixture
def served() -> Iterator[tuple[tt.Engine, tt.FlightServer]]:
    with tt.Engine(period=0.01) as engine, engine.serve("127.0.0.1:0") as server:
        yield engine, server


def test_connect_lists_reads_and_follows_a_table(served: tuple[tt.Engine, tt.FlightServer]) -> None:
    engine, server = served
    w = engine.dynamic_table_writer("trades", {"Sym": pa.string(), "Px": pa.float64()})
    w.write_row("AAPL", 187.5)
    engine.run_cycle()
    client = tt.connect(server.url)
    assert [t.name for t in client.tables()] == ["trades"]
    remote = client.table("trades")
    assert (remote.kind, remote.num_rows) == ("append", 1)
    assert remote.schema == pa.schema([("Sym", pa.string()), ("Px", pa.float64())])
    assert remote.snapshot().to_pydict() == {"Sym": ["AAPL"], "Px": [187.5]}

    sub = remote.subscribe()
    first = next(sub)
    assert isinstance(first, tt.Snapshot) and first.table.num_rows == 1
    w.write_row("MSFT", 411.0)
    update = next(sub)
    assert isinstance(update, tt.Update)
    assert update.added.column("Sym").to_pylist() == ["MSFT"]
    assert sub.snapshot().column("Sym").to_pylist() == ["AAPL", "MSFT"]
    sub.close()


def test_remote_publishing_and_multithreaded_writer(served: tuple[tt.Engine, tt.FlightServer]) -> None:
    engine, server = served
    table = engine.dynamic_table_writer("ticks", {"Sym": pa.string(), "Size": pa.int64()}).table
    remote = tt.connect(server.url).table("ticks")
    assert remote.add({"Sym": ["A", "B"], "Size": [1, 2]}) == 2
    with pytest.raises(tt.RemoteError) as e:
        remote.add(pa.record_batch({"Sym": ["C"], "Size": ["x"]}))
    assert e.value.kind == "invalid_argument" and not e.value.transient
    mtw = tt.MultithreadedTableWriter(remote, thread_count=2, batch_size=50)
    for i in range(200):
        mtw.insert(f"S{i % 7}", i)
    with pytest.raises(tt.SchemaError):
        mtw.insert("bad", "row")
    status = mtw.wait_for_thread_completion()
    assert status.sent_rows == 200 and status.succeed()
    engine.run_cycle()
    assert table.num_rows == 202


def test_remote_keyed_upsert_and_delete(served: tuple[tt.Engine, tt.FlightServer]) -> None:
    engine, server = served
    table, _ = engine.table_publisher("pk", {"id": pa.string(), "v": pa.int64()}, key=["id"])
    remote = tt.connect(server.url).table("pk")
    assert remote.key == ["id"]
    remote.upsert({"id": ["a", "b", "c"], "v": [1, 2, 3]})
    remote.upsert({"id": "a", "v": 10})
    remote.delete(["b"])
    engine.run_cycle()
    assert sorted((r["id"], r["v"]) for r in table.snapshot().to_pylist()) == [("a", 10), ("c", 3)]


def test_remote_errors(served: tuple[tt.Engine, tt.FlightServer]) -> None:
    _, server = served
    client = tt.connect(server.url)
    with pytest.raises(tt.RemoteError) as e:
        client.table("missing")
    assert e.value.kind == "not_found"
    # This server does not let clients create or drop tables.
    with pytest.raises(tt.RemoteError):
        client.create_table("new", {"A": pa.int64()})
    with pytest.raises(tt.RemoteError):
        client.drop_table("new")
    with pytest.raises(tt.RemoteError) as e:
        tt.connect("grpc://127.0.0.1:1")
    assert e.value.transient


def test_token_is_required_when_the_server_has_one() -> None:
    with tt.Engine(manual=True) as engine, engine.serve(token="s3cret") as server:
        engine.dynamic_table_writer("t", {"A": pa.int64()})
        with pytest.raises(tt.RemoteError) as e:
            tt.connect(server.url).tables()
        assert e.value.kind == "unauthenticated"
        assert [t.name for t in tt.connect(server.url, token="s3cret").tables()] == ["t"]


def test_create_and_drop_tables_over_flight() -> None:
    with tt.Engine(period=0.01) as engine, engine.serve(table_management=True) as server:
        client = tt.connect(server.url)
        schema = {"id": pa.string(), "v": pa.int64()}
        book = client.create_table("book", schema, key="id")
        assert (book.name, book.kind, book.key) == ("book", "keyed", ["id"])
        assert book.schema == pa.schema([("id", pa.string()), ("v", pa.int64())])
        ring = client.create_table("ring", {"A": pa.int64()}, kind="ring", capacity=3)
        assert (ring.kind, ring.capacity) == ("ring", 3)
        assert client.create_table("blink", {"A": pa.int64()}).kind == "blink"
        assert [t.name for t in engine.tables()] == ["book", "ring", "blink"]

        # The tables work like any other: written remotely, read locally and remotely.
        book.upsert({"id": ["a", "b"], "v": [1, 2]})
        ring.add({"A": [1, 2, 3, 4, 5]})
        engine.sync()
        assert engine.table("book").get("b") == {"id": "b", "v": 2}
        assert ring.snapshot().column("A").to_pylist() == [3, 4, 5]

        # The same create again is a no-op; another schema or kind is refused.
        assert client.create_table("book", schema, key="id").num_rows == 2
        with pytest.raises(tt.RemoteError) as e:
            client.create_table("book", {"id": pa.string(), "v": pa.float64()}, key="id")
        assert e.value.kind == "already_exists"
        with pytest.raises(tt.InvalidOptionError):
            client.create_table("bad", schema, kind="ring")  # no capacity: refused locally

        engine.ring_table(engine.table("ring"), 2, name="ring2")
        assert client.drop_table("ring") == ["ring", "ring2"]
        with pytest.raises(tt.NoSuchTableError):
            engine.table("ring")
        with pytest.raises(tt.RemoteError) as e:
            client.drop_table("ring")
        assert e.value.kind == "not_found"
        assert [t.name for t in client.tables()] == ["book", "blink"]


def test_create_a_durable_table_over_flight(tmp_path: Path) -> None:
    schema = {"Sym": pa.string(), "Px": pa.float64()}
    with tt.Engine(period=0.01, data_dir=tmp_path) as engine, engine.serve(
        table_management=True
    ) as server:
        trades = tt.connect(server.url).create_table("trades", schema, kind="append", durable=True)
        trades.add({"Sym": ["AAPL"], "Px": [187.5]})
        engine.sync()
    with tt.Engine(manual=True, data_dir=tmp_path) as engine:
        t, _ = engine.table_publisher("trades", schema, kind="append", durable=True)
        assert t.snapshot().to_pylist() == [{"Sym": "AAPL", "Px": 187.5}]
