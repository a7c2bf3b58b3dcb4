//! Derived tables that compute: [`last_by`](crate::EngineHandle::last_by),
//! [`filter`](crate::EngineHandle::filter), [`agg_by`](crate::EngineHandle::agg_by) and
//! [`bars`](crate::EngineHandle::bars).
//!
//! Each is a table like any other (listen to it, subscribe to it, serve it over Flight, see
//! it in `ticker-view`), updated in the same cycle as its source, and derived tables can be
//! derived from in turn. It starts with its source's current rows, takes no writes
//! ([`crate::Error::DerivedTable`]), and closes, or fails, when its
//! source does.
//!
//! # Cycle semantics
//!
//! A cycle's change of the source is read as rows that left it (at their old values) and
//! rows that entered it (at their new values). What that means per source kind:
//!
//! | source | rows that enter | rows that leave |
//! |---|---|---|
//! | append | each cycle's rows | none |
//! | blink | each cycle's rows | none for `last_by`, `agg_by` and `bars`: they accumulate the stream, as Deephaven's aggregations of blink tables do; `filter` of a blink table is a blink table |
//! | ring | each cycle's rows | evicted rows |
//! | keyed | upserted rows, at their new values | deleted rows, and upserted rows at their old values |
//!
//! So after every cycle, each operator equals itself computed from scratch over the
//! source's current rows (for a blink source: over every row it ever showed):
//!
//! - `last_by`: for each key, the row with the highest position among the key's rows.
//!   A ring's eviction of a key's last rows, or a keyed source's delete of them, removes the
//!   key; deleting a key's latest row of a keyed source brings back its next latest row. For
//!   keyed sources positions are slots, not write order.
//! - `filter`: the matching rows, in source order (a keyed source's result is keyed by the
//!   same key: rows enter and leave as their values change).
//! - `agg_by`: one row per key that has rows; a key whose rows all left is deleted. With no
//!   keys: one row while the source has rows, zero rows when it has none.
//! - `bars`: only rows that enter count; a ring's evictions do not change bars (keyed sources
//!   are refused).
//!
//! # Cost
//!
//! A cycle costs O(rows that entered and left the source) (log factors aside), never
//! O(table size), and nothing is allocated per row: keys are hashed in Arrow's row format
//! into one arena, and state lives in per-group columns.
//!
//! - Count, sum, mean and weighted mean retract removed rows by subtraction (floats to
//!   rounding: a retracted sum is within `1e-9` relative of the recomputed one for values of
//!   like magnitude; a group with no values left resets to exactly 0).
//! - Min and max cannot subtract: over ring and keyed sources each group keeps an ordered
//!   multiset of its values (O(log rows) per change), so only the touched groups' extremes
//!   are recomputed, from that multiset and not from the rows.
//! - First, last and `last_by` over ring and keyed sources keep each group's ordered source
//!   positions and read the value at the first or last one from the source: the touched
//!   groups are recomputed, in O(log rows) each.
//! - Over append and blink sources every aggregate is a plain running value.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use tickertable::derive::Agg;
//! use tickertable::{Engine, PublisherOptions};
//!
//! let engine = Engine::builder().manual().build()?;
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("Sym", DataType::Utf8, false),
//!     Field::new("Price", DataType::Float64, false),
//!     Field::new("Size", DataType::Int64, false),
//! ]));
//! let (trades, publisher) =
//!     engine.table_publisher("trades", schema.clone(), PublisherOptions::default())?;
//! let last = engine.last_by("last", &trades, &["Sym"])?;
//! let big = engine.filter("big", &trades, "Size >= 100")?;
//! let vwap = engine.agg_by(
//!     "vwap",
//!     &trades,
//!     &["Sym"],
//!     &[Agg::sum("Size"), Agg::weighted_mean("Price", "Size").with_name("VWAP")],
//! )?;
//!
//! publisher.add(RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL"])),
//!     Arc::new(Float64Array::from(vec![10.0, 20.0, 12.0])),
//!     Arc::new(Int64Array::from(vec![100, 50, 300])),
//! ])?)?;
//! engine.run_cycle();
//! assert_eq!(last.num_rows(), 2);
//! assert_eq!(big.num_rows(), 2);
//! let aapl = vwap.snapshot();
//! let aapl = aapl.iter_rows().find(|r| r.get(0) == Some("AAPL".into())).unwrap();
//! assert_eq!(aapl.get_named("sum_Size"), Some(400i64.into()));
//! assert_eq!(aapl.get_named("VWAP"), Some(11.5.into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod agg;
mod agg_text;
mod bars;
mod filter;
mod groups;
mod last_by;
pub(crate) mod op;

use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{DataType, SchemaRef, TimeUnit};

pub use agg::{Agg, AggKind};
pub use agg_text::AggParseError;
pub use bars::BAR_START_COLUMN;

use crate::engine::{resolve_key, EngineHandle, OpTable};
use crate::error::{Error, Result};
use crate::expr::{Expr, ExprError};
use crate::table::kind::Retention;
use crate::table::{Table, TableKind};
use op::SourceKind;

/// What [`EngineHandle::filter`] takes as a predicate: text to parse, or a parsed [`Expr`].
///
/// # Examples
///
/// ```
/// use tickertable::derive::IntoPredicate;
/// use tickertable::Expr;
///
/// let parsed = Expr::parse("Size >= 1000")?;
/// assert_eq!("Size >= 1000".into_predicate()?, parsed);
/// assert_eq!(parsed.clone().into_predicate()?, parsed);
/// # Ok::<(), tickertable::ExprError>(())
/// ```
pub trait IntoPredicate {
    /// The expression.
    ///
    /// # Errors
    ///
    /// [`ExprError`] for text that does not parse.
    fn into_predicate(self) -> Result<Expr, ExprError>;
}

impl IntoPredicate for &str {
    fn into_predicate(self) -> Result<Expr, ExprError> {
        Expr::parse(self)
    }
}

impl IntoPredicate for String {
    fn into_predicate(self) -> Result<Expr, ExprError> {
        Expr::parse(&self)
    }
}

impl IntoPredicate for &String {
    fn into_predicate(self) -> Result<Expr, ExprError> {
        Expr::parse(self)
    }
}

impl IntoPredicate for Expr {
    fn into_predicate(self) -> Result<Expr, ExprError> {
        Ok(self)
    }
}

impl IntoPredicate for &Expr {
    fn into_predicate(self) -> Result<Expr, ExprError> {
        Ok(self.clone())
    }
}

/// The two tables of [`EngineHandle::bars`]: the closed bars, appended as they close, and
/// the open bar of each key, ticking in a keyed table.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # use arrow_array::{Int64Array, RecordBatch, StringArray};
/// # use arrow_schema::{DataType, Field, Schema};
/// use tickertable::derive::Agg;
/// use tickertable::{Engine, PublisherOptions};
///
/// # let engine = Engine::builder().manual().build()?;
/// # let schema = Arc::new(Schema::new(vec![
/// #     Field::new("Ts", DataType::Int64, false),
/// #     Field::new("Sym", DataType::Utf8, false),
/// #     Field::new("Size", DataType::Int64, false),
/// # ]));
/// # let (trades, publisher) =
/// #     engine.table_publisher("trades", schema.clone(), PublisherOptions::default())?;
/// let bars = engine.bars(
///     "bars", &trades, "Ts", Duration::from_secs(1), &["Sym"], &[Agg::sum("Size")],
/// )?;
/// # publisher.add(RecordBatch::try_new(schema.clone(), vec![
/// #     Arc::new(Int64Array::from(vec![0, 500_000_000, 1_200_000_000])),
/// #     Arc::new(StringArray::from(vec!["A", "A", "A"])),
/// #     Arc::new(Int64Array::from(vec![1, 2, 4])),
/// # ])?)?;
/// engine.run_cycle(); // rows at 0 s, 0.5 s and 1.2 s
/// assert_eq!(bars.closed().num_rows(), 1); // [0 s, 1 s): size 3
/// assert_eq!(bars.open().num_rows(), 1);   // [1 s, 2 s) so far: size 4
/// assert_eq!(bars.open().name(), "bars_open");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Bars {
    closed: Table,
    open: Table,
}

impl Bars {
    /// The closed bars: an append table, one row per key and bar, in the order they closed.
    pub fn closed(&self) -> &Table {
        &self.closed
    }

    /// The open bars: a keyed table (by the key columns), one row per key; with no key
    /// columns a ring of capacity 1 holding the one open bar.
    pub fn open(&self) -> &Table {
        &self.open
    }
}

/// The key columns `keys` of `source` by index; no keys give no columns.
fn key_columns_or_none(name: &str, source: &Table, keys: &[&str]) -> Result<Arc<[usize]>> {
    if keys.is_empty() {
        return Ok(Arc::from(Vec::new()));
    }
    key_columns(name, source, keys)
}

/// The output kind of a keyless aggregation: one row, replaced as it changes.
fn one_row() -> Retention {
    Retention::Ring { capacity: 1 }
}

/// The key columns `keys` of `source` by index.
fn key_columns(name: &str, source: &Table, keys: &[&str]) -> Result<Arc<[usize]>> {
    let keys: Vec<String> = keys.iter().map(|&k| k.to_owned()).collect();
    resolve_key(
        name,
        source.schema(),
        TableKind::Keyed { capacity: None },
        &keys,
    )
    .map_err(|e| match e {
        Error::InvalidOption { reason, .. } => Error::InvalidOption {
            option: "key columns",
            reason,
        },
        e => e,
    })
}

fn no_columns() -> Error {
    Error::InvalidOption {
        option: "aggregates",
        reason: "an aggregation with no key columns needs at least one aggregate".to_owned(),
    }
}

fn keyed() -> Retention {
    Retention::Keyed { capacity: None }
}

impl EngineHandle {
    /// A keyed table of the latest row of `source` per value of the `keys` columns, updated
    /// in the same cycle as `source`, from a source of any kind: see the
    /// [module docs](crate::derive#cycle-semantics) for what a ring's eviction and a keyed
    /// source's delete do. Costs O(rows changed) per cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Float64Array, RecordBatch, StringArray};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{Engine, PublisherOptions, TableKind, Value};
    ///
    /// let engine = Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("Sym", DataType::Utf8, false),
    ///     Field::new("Bid", DataType::Float64, false),
    /// ]));
    /// let (quotes, publisher) =
    ///     engine.table_publisher("quotes", schema.clone(), PublisherOptions::default())?;
    /// let latest = engine.last_by("latest", &quotes, &["Sym"])?;
    /// assert_eq!(latest.kind(), TableKind::Keyed { capacity: None });
    ///
    /// publisher.add(RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL"])),
    ///     Arc::new(Float64Array::from(vec![187.5, 411.0, 187.6])),
    /// ])?)?;
    /// engine.run_cycle();
    /// let snap = latest.snapshot();
    /// let rows = snap.rows_in_key_order()?;
    /// assert_eq!(rows[0].get(1), Some(Value::from(187.6)));
    /// assert_eq!(rows[1].get(1), Some(Value::from(411.0)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`], [`Error::InvalidOption`] (no key, a key given twice),
    /// [`Error::UnsupportedType`] for a key type that cannot be a key, and as
    /// [`ring_table`](Self::ring_table).
    pub fn last_by(&self, name: &str, source: &Table, keys: &[&str]) -> Result<Table> {
        let key = key_columns(name, source, keys)?;
        let schema = source.schema().clone();
        let kind = SourceKind::of(source.shared.retention);
        let op = last_by::LastByOp::new(schema.clone(), key.clone(), kind)?;
        self.one(
            source,
            OpTable {
                name: name.to_owned(),
                schema,
                retention: keyed(),
                key,
                op: Box::new(op),
                on_previous: false,
            },
        )
    }

    /// The rows of `source` that match `predicate` (text such as `Price > 100 && Sym in
    /// ("AAPL", "MSFT")`, or an [`Expr`]; see [`crate::expr`]), updated in the same cycle
    /// as `source`. The result has the source's schema and is of the source's kind: an
    /// append table of an append source, a blink table of a blink source; of a ring source
    /// a ring whose rows leave when the source evicts them; of a keyed source a keyed table
    /// (same key) that rows enter and leave as their values change. A null predicate value
    /// does not match. Costs O(rows changed) per cycle: the predicate runs on the changed
    /// rows only, with Arrow's kernels.
    ///
    /// This is Deephaven's `where`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Int64Array, RecordBatch};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{Engine, Expr, TableKind};
    ///
    /// let engine = Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![Field::new("Size", DataType::Int64, false)]));
    /// let (trades, publisher) = engine.append_table("trades", schema.clone())?;
    /// let big = engine.filter("big", &trades, "Size >= 1000")?;
    /// let small = engine.filter("small", &trades, Expr::parse("Size < 10")?)?;
    /// publisher.add(RecordBatch::try_new(schema, vec![
    ///     Arc::new(Int64Array::from(vec![5, 5000, 100, 1000])),
    /// ])?)?;
    /// engine.run_cycle();
    /// assert_eq!((big.num_rows(), small.num_rows()), (2, 1));
    /// assert_eq!(big.kind(), TableKind::Append);
    ///
    /// let err = engine.filter("bad", &trades, "Sise > 1").unwrap_err();
    /// assert_eq!(err.to_string(), r#"at 0: no column named "Sise" (did you mean "Size"?)"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Expr`] for a predicate that does not parse, names an unknown column or is
    /// not boolean, and as [`ring_table`](Self::ring_table).
    pub fn filter(
        &self,
        name: &str,
        source: &Table,
        predicate: impl IntoPredicate,
    ) -> Result<Table> {
        let expr = predicate.into_predicate()?;
        let schema = source.schema().clone();
        let bound = expr.bind_predicate(&schema)?;
        let retention = source.shared.retention;
        let kind = SourceKind::of(retention);
        let (retention, key) = match retention {
            Retention::Append { .. } => (Retention::Append { limit: None }, Arc::from(Vec::new())),
            Retention::Blink { .. } => (Retention::Blink { cap: None }, Arc::from(Vec::new())),
            Retention::Ring { capacity } => (Retention::Ring { capacity }, Arc::from(Vec::new())),
            Retention::Keyed { .. } => (keyed(), source.shared.key.clone()),
        };
        let op = filter::FilterOp::new(bound, kind, schema.clone(), key.clone());
        self.one(
            source,
            OpTable {
                name: name.to_owned(),
                schema,
                retention,
                key,
                op: Box::new(op),
                on_previous: false,
            },
        )
    }

    /// A keyed table of `aggs` over the rows of `source` per value of the `keys` columns:
    /// the key columns, then one column per [`Agg`], updated in the same cycle as `source`.
    /// A key shows while it has rows. See the [module docs](crate::derive#cost) for how each
    /// aggregate is maintained over each source kind; a cycle costs O(rows changed).
    ///
    /// With no `keys` (Deephaven's `aggBy` without keys) the aggregates are over the whole
    /// source, in a table of one row: a ring of capacity 1 (not keyed, as a keyed table needs
    /// a key column) whose row is replaced each cycle the aggregates change. As a key shows
    /// only while it has rows, a source with no rows (an empty source, or a ring or keyed
    /// source whose rows all left) gives **zero rows**, not a row of count 0 and nulls.
    /// A keyless aggregation needs at least one aggregate.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Int64Array, RecordBatch, StringArray};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::derive::Agg;
    /// use tickertable::{Engine, PublisherOptions, TableKind, Value};
    ///
    /// let engine = Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("Sym", DataType::Utf8, false),
    ///     Field::new("Size", DataType::Int64, false),
    /// ]));
    /// let opts = PublisherOptions::default().with_kind(TableKind::Ring { capacity: 2 });
    /// let (trades, publisher) = engine.table_publisher("trades", schema.clone(), opts)?;
    /// let per_sym = engine.agg_by("per_sym", &trades, &["Sym"], &[Agg::count(), Agg::max("Size")])?;
    ///
    /// let batch = |syms: Vec<&str>, sizes: Vec<i64>| RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(StringArray::from(syms)), Arc::new(Int64Array::from(sizes)),
    /// ]);
    /// publisher.add(batch(vec!["A", "B"], vec![7, 1])?)?;
    /// engine.run_cycle();
    /// publisher.add(batch(vec!["A"], vec![3])?)?; // the ring evicts A's 7
    /// engine.run_cycle();
    /// let snap = per_sym.snapshot();
    /// let rows = snap.rows_in_key_order()?;
    /// assert_eq!(rows[0].values(), [Value::from("A"), Value::from(1i64), Value::from(3i64)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`last_by`](Self::last_by) (but no keys are allowed), and [`Error::InvalidOption`]
    /// for an aggregate of a column type it does not take (see [`Agg`]), an output column
    /// named twice, or no keys and no aggregates.
    pub fn agg_by(&self, name: &str, source: &Table, keys: &[&str], aggs: &[Agg]) -> Result<Table> {
        let key = key_columns_or_none(name, source, keys)?;
        if key.is_empty() && aggs.is_empty() {
            return Err(no_columns());
        }
        let kind = SourceKind::of(source.shared.retention);
        let op = agg::AggByOp::new(name, source.schema(), &key, aggs, kind)?;
        let schema = op.schema().clone();
        self.one(
            source,
            OpTable {
                name: name.to_owned(),
                schema,
                retention: if key.is_empty() { one_row() } else { keyed() },
                key: (0..key.len()).collect(),
                op: Box::new(op),
                on_previous: false,
            },
        )
    }

    /// Tumbling time bars of `source` per value of the `keys` columns, as `DolphinDB`'s
    /// time-series engine makes them: `aggs` (open = [`Agg::first`], high = [`Agg::max`],
    /// low = [`Agg::min`], close = [`Agg::last`], volume = [`Agg::sum`], [`Agg::count`])
    /// over the rows whose `time_column` falls in each `[k × interval, (k + 1) × interval)`.
    ///
    /// Both tables have the key columns, then [`BAR_START_COLUMN`] (the bar's start, of the
    /// time column's type), then one column per aggregate. The open bar of each key ticks in
    /// [`Bars::open`] (a keyed table named `<name>_open`); a key's bar closes when a row of
    /// that key in a later bar arrives, and is then appended to [`Bars::closed`] (an append
    /// table named `name`). A row earlier than its key's open bar is late and is dropped;
    /// a row with a null time is skipped. Only rows that enter the source count (a ring's
    /// evictions do not change bars). Costs O(rows added) per cycle.
    ///
    /// The time column is `Int64` nanoseconds or a `Timestamp` of any unit; `interval` must
    /// be a whole number of that unit.
    ///
    /// With no `keys` there is one bar series over all rows: closed bars append as above, and
    /// the open bar is the one row of [`Bars::open`], then a ring of capacity 1 (as for a
    /// keyless [`agg_by`](Self::agg_by)), empty until the first row arrives.
    ///
    /// # Examples
    ///
    /// One-minute OHLC and volume bars per symbol:
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{Agg, Engine, PublisherOptions, Value};
    ///
    /// let engine = Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("Ts", DataType::Int64, false),
    ///     Field::new("Sym", DataType::Utf8, false),
    ///     Field::new("Price", DataType::Float64, false),
    ///     Field::new("Size", DataType::Int64, false),
    /// ]));
    /// let (trades, publisher) =
    ///     engine.table_publisher("trades", schema.clone(), PublisherOptions::default())?;
    /// let ohlc = [
    ///     Agg::first("Price").with_name("Open"),
    ///     Agg::max("Price").with_name("High"),
    ///     Agg::min("Price").with_name("Low"),
    ///     Agg::last("Price").with_name("Close"),
    ///     Agg::sum("Size").with_name("Volume"),
    /// ];
    /// let bars = engine.bars("m1", &trades, "Ts", Duration::from_secs(60), &["Sym"], &ohlc)?;
    ///
    /// let min = 60_000_000_000i64;
    /// publisher.add(RecordBatch::try_new(schema.clone(), vec![
    ///     Arc::new(Int64Array::from(vec![0, min / 2, min + 1])),
    ///     Arc::new(StringArray::from(vec!["AAPL", "AAPL", "AAPL"])),
    ///     Arc::new(Float64Array::from(vec![10.0, 11.0, 9.0])),
    ///     Arc::new(Int64Array::from(vec![100, 200, 50])),
    /// ])?)?;
    /// engine.run_cycle();
    /// let closed = bars.closed().snapshot();
    /// let bar = closed.row(0).unwrap();
    /// assert_eq!(bar.get_named("BarStart"), Some(Value::from(0i64)));
    /// assert_eq!(bar.get_named("Close"), Some(Value::from(11.0)));
    /// assert_eq!(bar.get_named("Volume"), Some(Value::from(300i64)));
    /// let open = bars.open().snapshot();
    /// assert_eq!(open.row(0).unwrap().get_named("BarStart"), Some(Value::from(min)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`agg_by`](Self::agg_by); [`Error::InvalidOption`] for a keyed source, a time
    /// column of another type, or an interval of zero or not a whole number of units;
    /// [`Error::TableExists`] if either name is taken.
    pub fn bars(
        &self,
        name: &str,
        source: &Table,
        time_column: &str,
        interval: Duration,
        keys: &[&str],
        aggs: &[Agg],
    ) -> Result<Bars> {
        if source.shared.is_keyed() {
            return Err(Error::InvalidOption {
                option: "source",
                reason: format!(
                    "{:?} is keyed: bars are made from append, blink and ring tables",
                    source.name()
                ),
            });
        }
        let key = key_columns_or_none(name, source, keys)?;
        let schema: &SchemaRef = source.schema();
        let time = schema
            .index_of(time_column)
            .map_err(|_| Error::NoColumnNamed {
                table: source.name().to_owned(),
                column: time_column.to_owned(),
            })?;
        let per_unit = match schema.field(time).data_type() {
            DataType::Int64 | DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
            DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
            DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
            DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
            t => {
                return Err(Error::InvalidOption {
                    option: "time column",
                    reason: format!(
                        "{time_column:?} is {t}: bars need Int64 nanoseconds or a Timestamp"
                    ),
                })
            }
        };
        let nanos = interval.as_nanos();
        let units = i64::try_from(nanos / per_unit).unwrap_or(0);
        if nanos == 0 || nanos % per_unit != 0 || units == 0 {
            return Err(Error::InvalidOption {
                option: "bar interval",
                reason: format!(
                    "{interval:?} must be a positive whole number of the time column's unit"
                ),
            });
        }
        let op = bars::BarsOp::new(name, schema, &key, time, units, aggs)?;
        let out = op.schema().clone();
        let out_key: Arc<[usize]> = (0..key.len()).collect();
        let tables = self.add_op_tables(
            source,
            vec![
                OpTable {
                    name: name.to_owned(),
                    schema: out.clone(),
                    retention: Retention::Append { limit: None },
                    key: Arc::from(Vec::new()),
                    op: Box::new(op),
                    on_previous: false,
                },
                OpTable {
                    name: format!("{name}_open"),
                    schema: out,
                    retention: if key.is_empty() { one_row() } else { keyed() },
                    key: out_key,
                    op: Box::new(bars::SideFeed),
                    on_previous: true,
                },
            ],
        )?;
        let mut tables = tables.into_iter();
        match (tables.next(), tables.next()) {
            (Some(closed), Some(open)) => Ok(Bars { closed, open }),
            _ => unreachable!("two tables were asked for"),
        }
    }

    fn one(&self, source: &Table, spec: OpTable) -> Result<Table> {
        Ok(self
            .add_op_tables(source, vec![spec])?
            .pop()
            .expect("invariant: one table was asked for"))
    }
}
