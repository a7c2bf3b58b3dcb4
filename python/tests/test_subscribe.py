"""Subscriptions: snapshot, updates, lag, async iteration."""

from __future__ import annotations

import asyncio

import pyarrow as pa

import tickertable as tt


def test_subscription_starts_with_a_snapshot_then_updates(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("t", {"X": pa.int64()})
    w.write_row(1)
    engine.run_cycle()
    sub = w.table.subscribe()
    w.write_row(2)
    engine.run_cycle()
    first = next(sub)
    assert isinstance(first, tt.Snapshot) and first.kind == "snapshot"
    assert first.table.column("X").to_pylist() == [1] and first.step == 1
    second = next(sub)
    assert isinstance(second, tt.Update)
    assert second.added.column("X").to_pylist() == [2] and second.removed is None
    assert sub.try_recv() is None
    assert sub.recv(timeout=0.01) is None


def test_a_slow_subscriber_lags_with_a_fresh_snapshot(engine: tt.Engine) -> None:
    w = engine.dynamic_table_writer("t", {"X": pa.int64()})
    sub = w.table.subscribe(capacity=2)
    for i in range(5):
        w.write_row(i)
        engine.run_cycle()
    events = []
    while (e := sub.try_recv()) is not None:
        events.append(e)
    lagged = [e for e in events if isinstance(e, tt.Lagged)]
    assert len(lagged) == 1 and lagged[0].kind == "lagged" and lagged[0].missed >= 1
    final = lagged[0].snapshot.table.column("X").to_pylist()
    for e in events[events.index(lagged[0]) + 1 :]:
        final += e.added.column("X").to_pylist()
    assert final == [0, 1, 2, 3, 4]
    assert sub.lagged_count >= 1  # a lag while lagged replaces the queued Lagged


def test_subscription_ends_when_the_engine_shuts_down() -> None:
    engine = tt.Engine(manual=True)
    w = engine.dynamic_table_writer("t", {"X": pa.int64()})
    sub = w.table.subscribe()
    w.write_row(1)
    engine.shutdown()
    kinds = [e.kind for e in sub]
    assert kinds == ["snapshot", "update"]


def test_a_failed_table_ends_its_subscription_with_failed(engine: tt.Engine) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    sub = t.subscribe()
    p.publish_failure(ValueError("bad feed"))
    engine.run_cycle()
    events = list(sub)
    assert isinstance(events[-1], tt.Failed)
    assert isinstance(events[-1].error, tt.TableFailedError)
    assert "bad feed" in str(events[-1].error)


def test_async_iteration() -> None:
    async def main() -> list[int]:
        with tt.Engine(period=0.01) as engine:
            w = engine.dynamic_table_writer("t", {"X": pa.int64()})
            sub = w.table.subscribe()
            for i in range(3):
                w.write_row(i)
            got: list[int] = []
            async for ev in sub:
                if ev.kind == "update":
                    got += ev.added.column("X").to_pylist()
                if len(got) == 3:
                    break
            sub.close()
            return got

    assert asyncio.run(main()) == [0, 1, 2]
