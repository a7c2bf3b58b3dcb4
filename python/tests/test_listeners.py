"""Listeners: updates as pyarrow data, listeners that raise, re-entrant calls."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tickertable as tt


def test_listener_gets_added_and_removed_rows(engine: tt.Engine) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    ring = engine.ring_table(t, 3)
    seen: list[tuple[int, list[int], list[int], range]] = []

    def on_update(u: tt.Update) -> None:
        seen.append((u.step, u.added.column("X").to_pylist(), u.removed.column("X").to_pylist(), u.added_rows))

    handle = ring.listen(on_update)
    p.add({"X": [1, 2]})
    engine.run_cycle()
    p.add({"X": [3, 4]})
    engine.run_cycle()
    assert seen == [(1, [1, 2], [], range(0, 2)), (2, [3, 4], [1], range(2, 4))]
    handle.remove()
    p.add({"X": [5]})
    engine.run_cycle()
    assert len(seen) == 2 and not handle.is_active


def test_listener_stays_registered_without_its_handle(engine: tt.Engine) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    got: list[int] = []
    t.listen(lambda u: got.append(u.num_added))  # handle dropped at once
    p.add({"X": [1]})
    engine.run_cycle()
    assert got == [1]


def test_a_listener_that_raises_is_removed_and_the_engine_goes_on(
    engine: tt.Engine, unraisable: list[object]
) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    good: list[int] = []

    def bad(u: tt.Update) -> None:
        raise KeyError("boom")

    h = t.listen(bad)
    t.listen(lambda u: good.append(u.num_added))
    for i in range(3):
        p.add({"X": [i]})
        engine.run_cycle()
    assert good == [1, 1, 1]
    assert len(unraisable) == 1
    assert not h.is_active
    assert isinstance(h.exception, KeyError)
    assert "boom" in (h.failure or "")
    assert any("boom" in e for e in engine.recent_errors())


def test_reentrant_calls_from_a_listener_raise_instead_of_deadlocking(
    engine: tt.Engine, unraisable: list[object]
) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    errors: list[BaseException] = []
    snapshots: list[int] = []

    def listener(u: tt.Update) -> None:
        snapshots.append(t.snapshot().num_rows)  # reading is fine
        for call in (engine.run_cycle, lambda: engine.table_publisher("n", {"X": pa.int64()}),
                     t.subscribe, lambda: t.listen(print)):
            try:
                call()
            except tt.Error as e:
                errors.append(e)

    t.listen(listener)
    p.add({"X": [1]})
    engine.run_cycle()
    assert snapshots == [1]
    assert len(errors) == 4 and all("listener" in str(e) for e in errors)
    assert unraisable == []


def test_on_failure_is_called_when_the_table_fails(engine: tt.Engine) -> None:
    t, p = engine.table_publisher("t", {"X": pa.int64()})
    failures: list[str] = []
    t.listen(lambda u: None, on_failure=failures.append)
    p.publish_failure(RuntimeError("gone"))
    engine.run_cycle()
    assert len(failures) == 1 and "gone" in failures[0]


def test_listener_on_a_threaded_engine_takes_the_gil_while_python_waits() -> None:
    # A Python thread blocked in the engine (run_cycle, subscription) must not hold the GIL
    # the cycle thread's listeners need.
    import threading

    with tt.Engine(period=0.005) as engine:
        t, p = engine.table_publisher("t", {"X": pa.int64()})
        done = threading.Event()
        got: list[int] = []

        def listener(u: tt.Update) -> None:
            got.extend(u.added.column("X").to_pylist())
            if len(got) >= 100:
                done.set()

        t.listen(listener)
        sub = t.subscribe()
        for i in range(100):
            p.add({"X": [i]})
            if i % 10 == 0:
                engine.run_cycle()  # the GIL is released: the cycle thread may run meanwhile
        assert done.wait(timeout=30)
        assert sorted(got) == list(range(100))
        seen = 0
        for ev in sub:
            if ev.kind == "update":
                seen += ev.num_added
            if seen >= 100:
                break
        assert seen == 100
