"""Shared fixtures: manual engines (deterministic steps with ``run_cycle()``)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

import tickertable as tt


@pytest.fixture
def engine() -> Iterator[tt.Engine]:
    """A manual engine, shut down after the test."""
    with tt.Engine(manual=True) as e:
        yield e


@pytest.fixture
def trade_schema() -> pa.Schema:
    """The benchmark schema: Ts (ns), Sym, Price, Size."""
    return pa.schema(
        [("Ts", pa.int64()), ("Sym", pa.string()), ("Price", pa.float64()), ("Size", pa.int64())]
    )


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What callbacks that raised reported through ``sys.unraisablehook``."""
    import sys

    seen: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen
