"""A served engine (Flight on 127.0.0.1:0) read and written with tt.connect."""

from __future__ import annotations

from collections.abc import Iterator

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


def test_remote_errors_and_placeholders(served: tuple[tt.Engine, tt.FlightServer]) -> None:
    _, server = served
    client = tt.connect(server.url)
    with pytest.raises(tt.RemoteError) as e:
        client.table("missing")
    assert e.value.kind == "not_found"
    with pytest.raises(tt.NotSupportedError):
        client.create_table("new", {"A": pa.int64()})
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
