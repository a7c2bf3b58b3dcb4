"""Derived tables that compute: last_by, where/filter, agg_by and bars, checked against the
same values computed here in Python."""

from __future__ import annotations

import datetime
from collections import defaultdict

import pyarrow as pa
import pytest

import tickertable as tt

MIN = 60_000_000_000  # one minute in nanoseconds

# (Ts, Sym, Price, Size), in two cycles.
CYCLE1 = [
    (0, "AAPL", 187.5, 100),
    (MIN // 2, "MSFT", 411.0, 50),
    (MIN // 3, "AAPL", 188.0, 300),
    (MIN + 1, "NVDA", 903.1, 10),
]
CYCLE2 = [
    (MIN + 5, "AAPL", 186.0, 200),
    (2 * MIN, "MSFT", 99.5, 70),
    (2 * MIN + 7, "AAPL", 190.0, 25),
    (3 * MIN - 1, "MSFT", 101.0, 5),
]
COLUMNS = ["Ts", "Sym", "Price", "Size"]


def batch(rows: list[tuple[int, str, float, int]]) -> dict[str, list[object]]:
    return {c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}


def by_sym(table: tt.Table) -> dict[str, dict[str, object]]:
    return {r["Sym"]: r for r in table.snapshot().to_pylist()}


def test_smoke_derived_tables_update_in_their_source_cycle(
    engine: tt.Engine, trade_schema: pa.Schema
) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema, kind="append")
    last = engine.last_by("last", trades, "Sym")
    big = engine.where("big", trades, "Price > 100")
    publisher.add(batch(CYCLE1))
    engine.run_cycle()
    assert (last.num_rows, big.num_rows) == (3, 4)


def test_last_by_keeps_each_keys_latest_row(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema)  # blink
    last = engine.last_by("last", trades, ["Sym"])
    assert (last.kind, last.key, last.schema) == ("keyed", ["Sym"], trade_schema)
    expected: dict[str, dict[str, object]] = {}
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()
        for r in rows:
            expected[r[1]] = dict(zip(COLUMNS, r))
        assert by_sym(last) == expected
    assert last.get("AAPL") == expected["AAPL"]
    assert last.get(("NVDA",)) == expected["NVDA"]
    assert last.get("IBM") is None

    # Two key columns.
    per_sym_size = engine.last_by("per_sym_size", trades, ["Sym", "Size"])
    assert per_sym_size.key == ["Sym", "Size"]


def test_where_keeps_the_matching_rows_in_order(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema, kind="append")
    big = engine.where("big", trades, "Price > 100")
    aapl = engine.filter("aapl", trades, 'Sym == "AAPL" && Size >= 100')
    some = engine.where("some", trades, 'Sym in ("MSFT", "NVDA") || Price < 187')
    assert big.kind == "append" and big.schema == trade_schema
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()
    everything = CYCLE1 + CYCLE2
    assert big.snapshot().to_pydict() == batch([r for r in everything if r[2] > 100])
    assert aapl.snapshot().to_pydict() == batch(
        [r for r in everything if r[1] == "AAPL" and r[3] >= 100]
    )
    assert some.snapshot().to_pydict() == batch(
        [r for r in everything if r[1] in ("MSFT", "NVDA") or r[2] < 187]
    )

    # Over a ring, rows leave the filter when the ring evicts them.
    ring = engine.ring_table(trades, 3)
    ring_big = engine.where("ring_big", ring, "Size > 20")
    assert ring_big.kind == "ring"
    assert ring_big.snapshot().to_pydict() == batch([r for r in everything[-3:] if r[3] > 20])


def test_a_bad_expression_raises_with_its_position(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, _ = engine.table_publisher("trades", trade_schema)
    with pytest.raises(tt.ExpressionError) as e:
        engine.where("bad", trades, "Size > 1 && Prise > 100")
    err = e.value
    assert isinstance(err, ValueError)
    assert err.position == 12 and err.expression == "Size > 1 && Prise > 100"
    assert str(err).startswith('at 12: no column named "Prise" (did you mean "Price"?)')
    with pytest.raises(tt.ExpressionError) as e:
        engine.where("bad", trades, "Price > ")
    assert e.value.position == 8
    with pytest.raises(tt.ExpressionError) as e:
        engine.filter("bad", trades, "Price + 1")  # not boolean
    assert e.value.position == 0 and "boolean" in str(e.value)
    with pytest.raises(tt.ExpressionError) as e:
        engine.where("bad", trades, 'Sym > 1')
    assert e.value.position is not None
    assert [t.name for t in engine.tables()] == ["trades"]  # nothing was created


def test_agg_by_matches_the_aggregates_computed_in_python(
    engine: tt.Engine, trade_schema: pa.Schema
) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema)  # blink: accumulates
    aggs = [
        tt.agg.count(),
        tt.agg.sum("Size", name="volume"),
        tt.agg.wmean("Price", "Size", name="vwap"),
        tt.agg.min("Price"),
        tt.agg.max("Price"),
        tt.agg.mean("Size"),
        tt.agg.first("Price", name="open"),
        tt.agg.last("Price", name="close"),
        tt.agg.sum("Price"),
    ]
    stats = engine.agg_by("stats", trades, "Sym", aggs)
    assert stats.kind == "keyed" and stats.key == ["Sym"]
    assert stats.schema.names == [
        "Sym", "count", "volume", "vwap", "min_Price", "max_Price", "mean_Size", "open", "close",
        "sum_Price",
    ]
    assert stats.schema.field("volume").type == pa.int64()
    assert stats.schema.field("vwap").type == pa.float64()
    seen: dict[str, list[tuple[int, str, float, int]]] = defaultdict(list)
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()
        for r in rows:
            seen[r[1]].append(r)
        expected = {
            sym: {
                "Sym": sym,
                "count": len(rs),
                "volume": sum(r[3] for r in rs),
                "vwap": sum(r[2] * r[3] for r in rs) / sum(r[3] for r in rs),
                "min_Price": min(r[2] for r in rs),
                "max_Price": max(r[2] for r in rs),
                "mean_Size": sum(r[3] for r in rs) / len(rs),
                "open": rs[0][2],
                "close": rs[-1][2],
                "sum_Price": sum(r[2] for r in rs),
            }
            for sym, rs in seen.items()
        }
        got = by_sym(stats)
        assert got.keys() == expected.keys()
        for sym, row in expected.items():
            assert got[sym] == pytest.approx(row), sym
    assert stats.get("MSFT")["count"] == 3  # type: ignore[index]


def test_agg_by_over_a_ring_takes_evicted_rows_out(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema, kind="ring", capacity=3)
    stats = engine.agg_by(
        "stats", trades, ["Sym"], [tt.agg.count(), tt.agg.sum("Size"), tt.agg.max("Price")]
    )
    window: list[tuple[int, str, float, int]] = []
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()
        window = (window + rows)[-3:]
        expected = {
            sym: {
                "Sym": sym,
                "count": len(rs),
                "sum_Size": sum(r[3] for r in rs),
                "max_Price": max(r[2] for r in rs),
            }
            for sym in {r[1] for r in window}
            for rs in [[r for r in window if r[1] == sym]]
        }
        assert by_sym(stats) == expected  # a key whose rows all left is gone


def test_agg_by_without_keys_is_one_row_over_the_whole_ring(
    engine: tt.Engine, trade_schema: pa.Schema
) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema, kind="ring", capacity=3)
    aggs = [tt.agg.count(), tt.agg.sum("Size"), tt.agg.max("Price")]
    whole = engine.agg_by("whole", trades, [], aggs)
    assert whole.schema.names == ["count", "sum_Size", "max_Price"]
    assert whole.snapshot().num_rows == 0  # no rows, no aggregate row
    window: list[tuple[int, str, float, int]] = []
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()
        window = (window + rows)[-3:]
        assert whole.snapshot().to_pylist() == [
            {
                "count": len(window),
                "sum_Size": sum(r[3] for r in window),
                "max_Price": max(r[2] for r in window),
            }
        ]


def test_bars_close_when_a_later_bar_of_the_key_starts(
    engine: tt.Engine, trade_schema: pa.Schema
) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema)
    ohlcv = [
        tt.agg.first("Price", name="Open"),
        tt.agg.max("Price", name="High"),
        tt.agg.min("Price", name="Low"),
        tt.agg.last("Price", name="Close"),
        tt.agg.sum("Size", name="Volume"),
    ]
    closed, open_ = engine.bars("m1", trades, "Ts", 60, "Sym", ohlcv)
    assert (closed.name, closed.kind) == ("m1", "append")
    assert (open_.name, open_.kind, open_.key) == ("m1_open", "keyed", ["Sym"])
    assert closed.schema.names == ["Sym", "BarStart", "Open", "High", "Low", "Close", "Volume"]
    for rows in (CYCLE1, CYCLE2):
        publisher.add(batch(rows))
        engine.run_cycle()

    bars: dict[tuple[str, int], list[tuple[int, str, float, int]]] = defaultdict(list)
    for r in CYCLE1 + CYCLE2:
        bars[(r[1], r[0] // MIN * MIN)].append(r)

    def bar(key: tuple[str, int]) -> dict[str, object]:
        rs = bars[key]
        prices = [r[2] for r in rs]
        return {
            "Sym": key[0],
            "BarStart": key[1],
            "Open": prices[0],
            "High": max(prices),
            "Low": min(prices),
            "Close": prices[-1],
            "Volume": sum(r[3] for r in rs),
        }

    latest = {sym: max(start for s, start in bars if s == sym) for sym, _ in bars}
    expected_closed = sorted(
        (bar(k) for k in bars if k[1] < latest[k[0]]), key=lambda b: (b["Sym"], b["BarStart"])
    )
    got_closed = sorted(closed.snapshot().to_pylist(), key=lambda b: (b["Sym"], b["BarStart"]))
    assert got_closed == expected_closed
    assert by_sym(open_) == {sym: bar((sym, start)) for sym, start in latest.items()}


def test_bars_take_a_timedelta_and_timestamp_columns(engine: tt.Engine) -> None:
    schema = pa.schema([("Ts", pa.timestamp("ms")), ("Sym", pa.string()), ("Size", pa.int64())])
    trades, publisher = engine.table_publisher("trades", schema)
    closed, open_ = engine.bars(
        "s10", trades, "Ts", datetime.timedelta(seconds=10), ["Sym"], [tt.agg.count()]
    )
    t0 = datetime.datetime(2026, 1, 2, 9, 30)
    at = [t0, t0 + datetime.timedelta(seconds=3), t0 + datetime.timedelta(seconds=12)]
    publisher.add({"Ts": at, "Sym": ["A", "A", "A"], "Size": [1, 2, 3]})
    engine.run_cycle()
    assert closed.snapshot().to_pylist() == [{"Sym": "A", "BarStart": t0, "count": 2}]
    assert open_.get("A") == {"Sym": "A", "BarStart": t0 + datetime.timedelta(seconds=10), "count": 1}


def test_bad_derived_table_arguments(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, _ = engine.table_publisher("trades", trade_schema)
    with pytest.raises(TypeError):
        engine.agg_by("x", trades, "Sym", [b"sum(Size)"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not closed"):
        engine.agg_by("x", trades, "Sym", "sum(Size")
    with pytest.raises(tt.InvalidOptionError):
        engine.agg_by("x", trades, "Sym", [tt.agg.sum("Sym")])  # not a number
    with pytest.raises(tt.SchemaError):
        engine.last_by("x", trades, "Symbol")
    with pytest.raises(tt.InvalidOptionError):
        engine.bars("x", trades, "Ts", 0, "Sym", [tt.agg.count()])
    with pytest.raises(tt.InvalidOptionError):
        engine.bars("x", trades, "Sym", 60, "Sym", [tt.agg.count()])  # not a time column
    with pytest.raises(tt.InvalidOptionError):
        engine.bars("x", trades, "Ts", -1.0, "Sym", [tt.agg.count()])
    engine.last_by("taken", trades, "Sym")
    with pytest.raises(tt.TableExistsError):
        engine.where("taken", trades, "Size > 1")
    with pytest.raises(tt.InvalidOptionError):
        engine.bars("x", engine.last_by("keyed", trades, "Sym"), "Ts", 60, "Sym", [tt.agg.count()])


def test_aggregates_may_be_written_as_text(engine: tt.Engine, trade_schema: pa.Schema) -> None:
    trades, publisher = engine.table_publisher("trades", trade_schema)
    stats = engine.agg_by(
        "stats", trades, ["Sym"], ["count", tt.agg.max("Price"), "sum(Size) as volume"]
    )
    assert stats.schema.names == ["Sym", "count", "max_Price", "volume"]
    one = engine.agg_by("one", trades, [], "wmean(Price, Size) AS vwap")
    assert one.schema.names == ["vwap"]
    publisher.add(batch(CYCLE1))
    engine.run_cycle()
    rows = [r for r in CYCLE1 if r[1] == "MSFT"]
    assert stats.get("MSFT") == {
        "Sym": "MSFT",
        "count": len(rows),
        "max_Price": max(r[2] for r in rows),
        "volume": sum(r[3] for r in rows),
    }
    with pytest.raises(ValueError, match="unknown aggregate"):
        engine.agg_by("bad", trades, ["Sym"], ["summ(Size)"])
    with pytest.raises(TypeError, match="aggregates"):
        engine.agg_by("bad", trades, ["Sym"], [42])  # type: ignore[list-item]


def test_agg_specs() -> None:
    assert tt.agg.sum("Size").name == "sum_Size"
    assert tt.agg.count().name == "count" and tt.agg.count().column is None
    vwap = tt.agg.wmean("Price", "Size", name="vwap")
    assert (vwap.kind, vwap.column, vwap.weight, vwap.name) == ("wmean", "Price", "Size", "vwap")
    assert repr(vwap) == "tt.agg.wmean('Price', 'Size', name='vwap')"
    assert repr(tt.agg.max("Px")) == "tt.agg.max('Px')"
    assert tt.agg.sum("Size") == tt.agg.sum("Size") != tt.agg.sum("Size", name="v")
    assert tt.agg.weighted_mean is tt.agg.wmean
    assert isinstance(tt.agg.first("Px"), tt.Agg)
