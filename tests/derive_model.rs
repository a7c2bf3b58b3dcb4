//! Model tests of the computing derived tables: after every cycle of random writes into a
//! source of each kind, each derived table equals its operator recomputed from scratch on
//! the source's snapshot (for blink sources: on every row the source showed), and a
//! subscriber's mirror of it equals it.
//!
//! Floating-point aggregates are compared within `1e-9` relative: sums retracted by
//! subtraction round differently from a sum recomputed.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::float_cmp,
    reason = "a test's helpers panic on the unexpected; model values are small"
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use proptest::prelude::*;
use tickertable::derive::Agg;
use tickertable::{
    Engine, EngineHandle, Mirror, OwnedValue, PublisherOptions, Subscription, Table, TableKind,
    TablePublisher, TableSnapshot,
};

const SYMS: [&str; 4] = ["A", "B", "C", "D"];
const SECOND: i64 = 1_000_000_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Int64, false),
        Field::new("Sym", DataType::Utf8, false),
        Field::new("Price", DataType::Float64, true),
        Field::new("Size", DataType::Int64, false),
        Field::new("Ts", DataType::Int64, false),
    ]))
}

/// One source row.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: i64,
    sym: String,
    price: Option<f64>,
    size: i64,
    ts: i64,
}

fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.id))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.sym.as_str()),
            )),
            Arc::new(rows.iter().map(|r| r.price).collect::<Float64Array>()),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.size))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.ts))),
        ],
    )
    .unwrap()
}

/// The rows of a snapshot of the source schema, with their positions.
fn rows_of(snapshot: &TableSnapshot) -> Vec<(u64, Row)> {
    let mut out = Vec::new();
    let mut pos = snapshot.rows().start;
    for b in snapshot.batches() {
        let id = b.column(0).as_primitive::<Int64Type>();
        let sym = b.column(1).as_string::<i32>();
        let price = b.column(2).as_primitive::<Float64Type>();
        let size = b.column(3).as_primitive::<Int64Type>();
        let ts = b.column(4).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                pos,
                Row {
                    id: id.value(i),
                    sym: sym.value(i).to_owned(),
                    price: (!price.is_null(i)).then(|| price.value(i)),
                    size: size.value(i),
                    ts: ts.value(i),
                },
            ));
            pos += 1;
        }
    }
    out
}

/// A snapshot as rows of values, in position order.
fn values(snapshot: &TableSnapshot) -> Vec<Vec<OwnedValue>> {
    snapshot.iter_rows().map(|r| r.to_owned_values()).collect()
}

/// Rows of values keyed by their first column's text (the key of every keyed result here).
fn by_first(rows: Vec<Vec<OwnedValue>>) -> BTreeMap<String, Vec<OwnedValue>> {
    rows.into_iter()
        .map(|r| (format!("{:?}", r[0]), r))
        .collect()
}

fn close(a: &OwnedValue, b: &OwnedValue) -> bool {
    match (a, b) {
        (OwnedValue::Float(x), OwnedValue::Float(y)) => {
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

fn assert_rows_close(
    found: &BTreeMap<String, Vec<OwnedValue>>,
    want: &BTreeMap<String, Vec<OwnedValue>>,
    what: &str,
) {
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: keys"
    );
    for (k, w) in want {
        let f = &found[k];
        assert!(
            f.len() == w.len() && f.iter().zip(w).all(|(a, b)| close(a, b)),
            "{what}: key {k}: found {f:?}, want {w:?}"
        );
    }
}

fn row_values(r: &Row) -> Vec<OwnedValue> {
    vec![
        OwnedValue::Int(r.id),
        OwnedValue::Str(r.sym.clone()),
        r.price.map_or(OwnedValue::Null, OwnedValue::Float),
        OwnedValue::Int(r.size),
        OwnedValue::Int(r.ts),
    ]
}

fn f(x: Option<f64>) -> OwnedValue {
    x.map_or(OwnedValue::Null, OwnedValue::Float)
}

fn min_f(xs: impl Iterator<Item = f64>) -> Option<f64> {
    xs.min_by(f64::total_cmp)
}

fn max_f(xs: impl Iterator<Item = f64>) -> Option<f64> {
    xs.max_by(f64::total_cmp)
}

/// The model of `agg_by(Sym)` with every aggregate, over rows in position order.
fn model_agg(rows: &[(u64, Row)]) -> BTreeMap<String, Vec<OwnedValue>> {
    let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for (_, r) in rows {
        groups.entry(&r.sym).or_default().push(r);
    }
    let mut out = Vec::new();
    for (sym, rs) in groups {
        let prices: Vec<f64> = rs.iter().filter_map(|r| r.price).collect();
        let sum_size: i64 = rs.iter().map(|r| r.size).sum();
        let mean = (!prices.is_empty()).then(|| prices.iter().sum::<f64>() / prices.len() as f64);
        let (wx, w) = rs
            .iter()
            .filter_map(|r| r.price.map(|p| (p * r.size as f64, r.size as f64)))
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let wmean = (!prices.is_empty() && w != 0.0).then(|| wx / w);
        out.push(vec![
            OwnedValue::Str(sym.to_owned()),
            OwnedValue::Int(rs.len() as i64),
            OwnedValue::Int(sum_size),
            f(min_f(prices.iter().copied())),
            f(max_f(prices.iter().copied())),
            f(rs[0].price),
            f(rs[rs.len() - 1].price),
            f(mean),
            f(wmean),
            OwnedValue::Int(rs.iter().map(|r| r.ts).min().unwrap()),
        ]);
    }
    by_first(out)
}

/// The rows with one `Sym` for all: what a keyless operator groups.
fn one_sym(rows: &[(u64, Row)]) -> Vec<(u64, Row)> {
    rows.iter()
        .map(|(p, r)| {
            let mut r = r.clone();
            "*".clone_into(&mut r.sym);
            (*p, r)
        })
        .collect()
}

/// Keyless rows keyed as one group `"*"`, with the `Sym` column the model put first.
fn keyless(rows: Vec<Vec<OwnedValue>>) -> BTreeMap<String, Vec<OwnedValue>> {
    by_first(
        rows.into_iter()
            .map(|mut r| {
                r.insert(0, OwnedValue::Str("*".to_owned()));
                r
            })
            .collect(),
    )
}

fn aggs() -> Vec<Agg> {
    vec![
        Agg::count(),
        Agg::sum("Size"),
        Agg::min("Price"),
        Agg::max("Price"),
        Agg::first("Price"),
        Agg::last("Price"),
        Agg::mean("Price"),
        Agg::weighted_mean("Price", "Size").with_name("VWAP"),
        Agg::min("Ts"),
    ]
}

/// The model of `bars(Ts, 1 s, Sym)` over every row added, in order: (closed, open).
fn model_bars(history: &[Row]) -> (Vec<Vec<OwnedValue>>, BTreeMap<String, Vec<OwnedValue>>) {
    let mut open: HashMap<&str, (i64, Vec<&Row>)> = HashMap::new();
    let mut closed = Vec::new();
    let bar = |sym: &str, start: i64, rs: &[&Row]| {
        let prices: Vec<f64> = rs.iter().filter_map(|r| r.price).collect();
        vec![
            OwnedValue::Str(sym.to_owned()),
            OwnedValue::Int(start),
            f(rs[0].price),
            f(max_f(prices.iter().copied())),
            f(min_f(prices.iter().copied())),
            f(rs[rs.len() - 1].price),
            OwnedValue::Int(rs.iter().map(|r| r.size).sum()),
            OwnedValue::Int(rs.len() as i64),
        ]
    };
    for r in history {
        let start = r.ts - r.ts.rem_euclid(SECOND);
        match open.get_mut(r.sym.as_str()) {
            None => {
                open.insert(&r.sym, (start, vec![r]));
            }
            Some((s, _)) if start < *s => {}
            Some((s, rs)) if start == *s => rs.push(r),
            Some((s, rs)) => {
                closed.push(bar(&r.sym, *s, rs));
                *s = start;
                *rs = vec![r];
            }
        }
    }
    let open = open.iter().map(|(sym, (s, rs))| bar(sym, *s, rs)).collect();
    closed.sort_by_key(|r| format!("{r:?}"));
    (closed, by_first(open))
}

fn bar_aggs() -> Vec<Agg> {
    vec![
        Agg::first("Price").with_name("Open"),
        Agg::max("Price").with_name("High"),
        Agg::min("Price").with_name("Low"),
        Agg::last("Price").with_name("Close"),
        Agg::sum("Size").with_name("Volume"),
        Agg::count(),
    ]
}

/// A subscription and the mirror it feeds.
struct Mirrored {
    table: Table,
    sub: Subscription,
    mirror: Mirror,
}

impl Mirrored {
    fn new(table: Table) -> Self {
        let sub = table.subscribe().unwrap();
        Self {
            mirror: Mirror::new(table.schema().clone()),
            sub,
            table,
        }
    }

    /// Applies every event received, then checks the mirror equals the table.
    fn check(&mut self) {
        while let Ok(e) = self.sub.try_recv() {
            self.mirror.apply_event(&e).unwrap();
        }
        let snap = self.table.snapshot();
        assert_eq!(
            self.mirror.rows(),
            snap.rows(),
            "{}: mirror window",
            self.table.name()
        );
        assert_eq!(
            values(&self.mirror.snapshot()),
            values(&snap),
            "{}: mirror rows",
            self.table.name()
        );
    }
}

/// One cycle's writes.
#[derive(Debug, Clone)]
enum Write {
    Add(Vec<(i64, usize, Option<u8>, i64, i64)>),
    Delete(Vec<i64>),
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        4 => prop::collection::vec(
            (0i64..12, 0usize..4, prop::option::weighted(0.85, 0u8..50), 0i64..100, -300i64..900),
            0..12
        )
        .prop_map(Write::Add),
        1 => prop::collection::vec(0i64..12, 1..4).prop_map(Write::Delete),
    ]
}

struct Case {
    engine: Engine,
    kind: TableKind,
    source: Table,
    publisher: TablePublisher,
    last: Mirrored,
    filtered: Mirrored,
    agg: Mirrored,
    bars: Option<(Mirrored, Mirrored)>,
    /// `agg_by` and `bars` with no keys.
    agg_all: Mirrored,
    bars_all: Option<(Mirrored, Mirrored)>,
    /// Every row the source ever showed or added, in order.
    history: Vec<Row>,
    seen_end: u64,
    clock: i64,
}

impl Case {
    fn new(kind: TableKind) -> Self {
        let engine = Engine::builder().manual().build().unwrap();
        let mut opts = PublisherOptions::default().with_kind(kind);
        if matches!(kind, TableKind::Keyed { .. }) {
            opts = opts.with_key(["Id"]);
        }
        let (source, publisher) = engine.table_publisher("src", schema(), opts).unwrap();
        let h: &EngineHandle = &engine;
        let last = Mirrored::new(h.last_by("last", &source, &["Sym"]).unwrap());
        let filtered = Mirrored::new(
            h.filter("big", &source, "Size >= 50 || is_null(Price)")
                .unwrap(),
        );
        let agg = Mirrored::new(h.agg_by("agg", &source, &["Sym"], &aggs()).unwrap());
        let bars = (!matches!(kind, TableKind::Keyed { .. })).then(|| {
            let b = h
                .bars(
                    "bars",
                    &source,
                    "Ts",
                    Duration::from_secs(1),
                    &["Sym"],
                    &bar_aggs(),
                )
                .unwrap();
            (
                Mirrored::new(b.closed().clone()),
                Mirrored::new(b.open().clone()),
            )
        });
        let agg_all = Mirrored::new(h.agg_by("agg_all", &source, &[], &aggs()).unwrap());
        let bars_all = (!matches!(kind, TableKind::Keyed { .. })).then(|| {
            let b = h
                .bars(
                    "bars_all",
                    &source,
                    "Ts",
                    Duration::from_secs(1),
                    &[],
                    &bar_aggs(),
                )
                .unwrap();
            (
                Mirrored::new(b.closed().clone()),
                Mirrored::new(b.open().clone()),
            )
        });
        Self {
            engine,
            kind,
            source,
            publisher,
            last,
            filtered,
            agg,
            bars,
            agg_all,
            bars_all,
            history: Vec::new(),
            seen_end: 0,
            clock: 0,
        }
    }

    fn apply(&mut self, w: &Write) {
        match w {
            Write::Add(rows) => {
                let rows: Vec<Row> = rows
                    .iter()
                    .map(|&(id, sym, price, size, dt)| {
                        self.clock += dt * 1_000_000;
                        Row {
                            id,
                            sym: SYMS[sym].to_owned(),
                            price: price.map(|p| f64::from(p) * 0.5 + 1.0),
                            size,
                            ts: self.clock,
                        }
                    })
                    .collect();
                self.publisher.add(batch(&rows)).unwrap();
            }
            Write::Delete(ids) => {
                if matches!(self.kind, TableKind::Keyed { .. }) {
                    let keys = RecordBatch::try_new(
                        Arc::new(Schema::new(vec![Field::new("Id", DataType::Int64, false)])),
                        vec![Arc::new(Int64Array::from(ids.clone()))],
                    )
                    .unwrap();
                    self.publisher.delete(keys).unwrap();
                }
            }
        }
    }

    /// `agg_by` and `bars` with no keys: one group of all rows.
    fn check_keyless(&mut self, over: &[(u64, Row)]) {
        // agg_by with no keys: one row while there are rows.
        let found = keyless(values(&self.agg_all.table.snapshot()));
        assert_rows_close(
            &found,
            &model_agg(&one_sym(over)),
            &format!("keyless agg_by over {}", self.kind),
        );
        self.agg_all.check();

        if let Some((closed, open)) = &mut self.bars_all {
            let history: Vec<Row> = one_sym(
                &self
                    .history
                    .iter()
                    .map(|r| (0, r.clone()))
                    .collect::<Vec<_>>(),
            )
            .into_iter()
            .map(|(_, r)| r)
            .collect();
            let (want_closed, want_open) = model_bars(&history);
            let mut found_all: Vec<Vec<OwnedValue>> = values(&closed.table.snapshot())
                .into_iter()
                .map(|mut r| {
                    r.insert(0, OwnedValue::Str("*".to_owned()));
                    r
                })
                .collect();
            found_all.sort_by_key(|r| format!("{r:?}"));
            assert_eq!(
                found_all, want_closed,
                "keyless closed bars over {}",
                self.kind
            );
            assert_eq!(
                keyless(values(&open.table.snapshot())),
                want_open,
                "keyless open bars over {}",
                self.kind
            );
            closed.check();
            open.check();
        }
    }

    fn cycle_and_check(&mut self) {
        self.engine.run_cycle();
        let snap = self.source.snapshot();
        let rows = rows_of(&snap);
        // Rows the source added this cycle (never for keyed sources: bars are not made).
        for (p, r) in &rows {
            if *p >= self.seen_end {
                self.history.push(r.clone());
            }
        }
        self.seen_end = snap.rows().end;
        let accumulating = matches!(self.kind, TableKind::Blink);
        let over: Vec<(u64, Row)> = if accumulating {
            self.history
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, r)| (i as u64, r))
                .collect()
        } else {
            rows.clone()
        };

        // last_by(Sym): each Sym's row with the highest position.
        let mut last: BTreeMap<&str, &Row> = BTreeMap::new();
        for (_, r) in &over {
            last.insert(&r.sym, r);
        }
        let want = by_first(
            last.values()
                .map(|r| {
                    let mut v = row_values(r);
                    v.swap(0, 1);
                    v
                })
                .collect(),
        );
        let found = by_first(
            values(&self.last.table.snapshot())
                .into_iter()
                .map(|mut v| {
                    v.swap(0, 1);
                    v
                })
                .collect(),
        );
        assert_eq!(found, want, "last_by over {}", self.kind);
        self.last.check();

        // filter: the matching rows of the snapshot, in order (by key for keyed sources).
        let matching: Vec<Vec<OwnedValue>> = rows
            .iter()
            .filter(|(_, r)| r.size >= 50 || r.price.is_none())
            .map(|(_, r)| row_values(r))
            .collect();
        let found = values(&self.filtered.table.snapshot());
        if matches!(self.kind, TableKind::Keyed { .. }) {
            assert_eq!(
                by_first(found),
                by_first(matching),
                "filter over {}",
                self.kind
            );
        } else {
            assert_eq!(found, matching, "filter over {}", self.kind);
        }
        self.filtered.check();

        // agg_by(Sym).
        let found = by_first(values(&self.agg.table.snapshot()));
        assert_rows_close(
            &found,
            &model_agg(&over),
            &format!("agg_by over {}", self.kind),
        );
        self.agg.check();

        self.check_keyless(&over);

        if let Some((closed, open)) = &mut self.bars {
            let (want_closed, want_open) = model_bars(&self.history);
            let mut found: Vec<Vec<OwnedValue>> = values(&closed.table.snapshot());
            found.sort_by_key(|r| format!("{r:?}"));
            assert_eq!(found, want_closed, "closed bars over {}", self.kind);
            assert_eq!(
                by_first(values(&open.table.snapshot())),
                want_open,
                "open bars over {}",
                self.kind
            );
            closed.check();
            open.check();
        }
    }
}

fn run(kind: TableKind, cycles: &[Vec<Write>]) {
    let mut case = Case::new(kind);
    for cycle in cycles {
        for w in cycle {
            case.apply(w);
        }
        case.cycle_and_check();
    }
}

fn cycles() -> impl Strategy<Value = Vec<Vec<Write>>> {
    prop::collection::vec(prop::collection::vec(write(), 0..3), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn derived_tables_of_an_append_table_equal_their_model(cycles in cycles()) {
        run(TableKind::Append, &cycles);
    }

    #[test]
    fn derived_tables_of_a_blink_table_equal_their_model(cycles in cycles()) {
        run(TableKind::Blink, &cycles);
    }

    #[test]
    fn derived_tables_of_a_ring_table_equal_their_model(cycles in cycles(), cap in 1usize..20) {
        run(TableKind::Ring { capacity: cap }, &cycles);
    }

    #[test]
    fn derived_tables_of_a_keyed_table_equal_their_model(cycles in cycles()) {
        run(TableKind::Keyed { capacity: None }, &cycles);
    }
}

#[test]
fn smoke() {
    run(
        TableKind::Ring { capacity: 3 },
        &[
            vec![Write::Add(vec![
                (0, 0, Some(1), 60, 0),
                (1, 1, None, 10, 500),
            ])],
            vec![],
        ],
    );
}
