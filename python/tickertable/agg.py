"""Aggregates for ``Engine.agg_by`` and ``Engine.bars``.

Each function returns a :class:`tickertable.Agg`, one output column; ``name`` names it,
otherwise it is named after the aggregate and its column (``count``, ``sum_Size``,
``wmean_Price``)::

    import tickertable as tt

    per_sym = engine.agg_by("per_sym", trades, "Sym", [
        tt.agg.count(),
        tt.agg.sum("Size", name="volume"),
        tt.agg.wmean("Price", "Size", name="vwap"),
    ])
    ohlc = [tt.agg.first("Price", name="open"), tt.agg.max("Price", name="high"),
            tt.agg.min("Price", name="low"), tt.agg.last("Price", name="close")]

Every aggregate but ``count`` skips nulls. ``sum`` is ``int64`` over integers and ``double``
over floats; ``mean`` and ``wmean`` are ``double``; ``min``, ``max``, ``first`` and ``last``
keep the column's type (they also take timestamps, dates, times and durations). ``first`` and
``last`` are the values of the group's first and last row by position. (``sum``, ``min`` and
``max`` shadow the builtins inside this module only: call them as ``tt.agg.sum``.)
"""

from __future__ import annotations


from ._tickertable import Agg

__all__ = ["Agg", "count", "first", "last", "max", "mean", "min", "sum", "weighted_mean", "wmean"]


def count(*, name: str | None = None) -> Agg:
    """The number of rows of the group (``count`` unless ``name`` says otherwise)."""
    return Agg.count(name=name)


def sum(column: str, *, name: str | None = None) -> Agg:  # noqa: A001 - tt.agg.sum
    """The sum of ``column`` (``sum_<column>``)."""
    return Agg.sum(column, name=name)


def min(column: str, *, name: str | None = None) -> Agg:  # noqa: A001 - tt.agg.min
    """The least value of ``column`` (``min_<column>``)."""
    return Agg.min(column, name=name)


def max(column: str, *, name: str | None = None) -> Agg:  # noqa: A001 - tt.agg.max
    """The greatest value of ``column`` (``max_<column>``)."""
    return Agg.max(column, name=name)


def first(column: str, *, name: str | None = None) -> Agg:
    """``column`` in the group's first row by position (``first_<column>``)."""
    return Agg.first(column, name=name)


def last(column: str, *, name: str | None = None) -> Agg:
    """``column`` in the group's last row by position (``last_<column>``)."""
    return Agg.last(column, name=name)


def mean(column: str, *, name: str | None = None) -> Agg:
    """The mean of ``column`` (``mean_<column>``)."""
    return Agg.mean(column, name=name)


def wmean(column: str, weight: str, *, name: str | None = None) -> Agg:
    """The mean of ``column`` weighted by ``weight`` (``wmean_<column>``): VWAP is
    ``wmean("Price", "Size")``."""
    return Agg.wmean(column, weight, name=name)


weighted_mean = wmean

