//! Aggregations: the [`Agg`] spec and the per-group accumulators shared by `agg_by` and
//! `bars`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, PrimitiveArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::derive::filter::relabel;
use crate::derive::groups::{Groups, Touched};
use crate::derive::op::{
    delete_batch, take_columns, Delta, DeltaReader, OpInput, OpOutput, Operator, SourceKind,
};
use crate::error::{Error, Result};

/// One aggregate of a group's rows: an output column of
/// [`EngineHandle::agg_by`](crate::EngineHandle::agg_by) and
/// [`EngineHandle::bars`](crate::EngineHandle::bars).
///
/// Every aggregate but [`count`](Self::count) skips nulls, and is null for a group with no
/// non-null value. The output column is named after the aggregate and its column
/// (`sum_Size`, `min_Price`, `count`) unless [`with_name`](Self::with_name) says otherwise.
///
/// | aggregate | input types | output type |
/// |---|---|---|
/// | [`count`](Self::count) | none | `Int64`, the group's rows |
/// | [`sum`](Self::sum) | integers, floats | `Int64` (wrapping) for integers, `Float64` for floats |
/// | [`min`](Self::min), [`max`](Self::max) | integers, floats, timestamps, dates, times, durations | the column's type; floats by IEEE total order |
/// | [`first`](Self::first), [`last`](Self::last) | as `min` | the column's type: the value of the group's first (last) row by position |
/// | [`mean`](Self::mean) | integers, floats | `Float64` |
/// | [`weighted_mean`](Self::weighted_mean) | integers, floats | `Float64`: sum(w × x) / sum(w) over rows with both |
///
/// # Examples
///
/// ```
/// use tickertable::derive::Agg;
///
/// let aggs = [
///     Agg::count(),
///     Agg::sum("Size").with_name("Volume"),
///     Agg::weighted_mean("Price", "Size").with_name("VWAP"),
/// ];
/// assert_eq!(aggs[0].name(), "count");
/// assert_eq!(aggs[1].name(), "Volume");
/// assert_eq!(Agg::max("Price").name(), "max_Price");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Agg {
    kind: AggKind,
    column: Option<String>,
    weight: Option<String>,
    name: String,
}

/// The kinds of [`Agg`].
///
/// ```
/// use tickertable::{Agg, AggKind};
///
/// assert_eq!(Agg::weighted_mean("Price", "Size").kind(), AggKind::WeightedMean);
/// assert_eq!(AggKind::WeightedMean.name(), "wmean");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AggKind {
    /// The number of rows.
    Count,
    /// The sum of the values.
    Sum,
    /// The least value.
    Min,
    /// The greatest value.
    Max,
    /// The value of the first row.
    First,
    /// The value of the last row.
    Last,
    /// The arithmetic mean.
    Mean,
    /// The mean weighted by another column (VWAP with price and size).
    WeightedMean,
}

impl AggKind {
    /// The kind's name as default output names use it: `count`, `sum`, ..., `wmean`.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::First => "first",
            AggKind::Last => "last",
            AggKind::Mean => "mean",
            AggKind::WeightedMean => "wmean",
        }
    }
}

impl fmt::Display for AggKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Agg {
    fn of(kind: AggKind, column: &str) -> Self {
        Self {
            kind,
            column: Some(column.to_owned()),
            weight: None,
            name: format!("{}_{column}", kind.name()),
        }
    }

    /// The number of rows of the group, named `count`.
    pub fn count() -> Self {
        Self {
            kind: AggKind::Count,
            column: None,
            weight: None,
            name: "count".to_owned(),
        }
    }

    /// The sum of `column`, named `sum_<column>`.
    pub fn sum(column: &str) -> Self {
        Self::of(AggKind::Sum, column)
    }

    /// The least value of `column`, named `min_<column>`.
    pub fn min(column: &str) -> Self {
        Self::of(AggKind::Min, column)
    }

    /// The greatest value of `column`, named `max_<column>`.
    pub fn max(column: &str) -> Self {
        Self::of(AggKind::Max, column)
    }

    /// `column` in the group's first row (by source position), named `first_<column>`.
    pub fn first(column: &str) -> Self {
        Self::of(AggKind::First, column)
    }

    /// `column` in the group's last row (by source position), named `last_<column>`.
    pub fn last(column: &str) -> Self {
        Self::of(AggKind::Last, column)
    }

    /// The mean of `column`, named `mean_<column>`.
    pub fn mean(column: &str) -> Self {
        Self::of(AggKind::Mean, column)
    }

    /// The mean of `column` weighted by `weight`, named `wmean_<column>`: VWAP is
    /// `Agg::weighted_mean("Price", "Size")`.
    pub fn weighted_mean(column: &str, weight: &str) -> Self {
        Self {
            weight: Some(weight.to_owned()),
            ..Self::of(AggKind::WeightedMean, column)
        }
    }

    /// The same aggregate with output column `name`.
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// The output column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of aggregate.
    pub fn kind(&self) -> AggKind {
        self.kind
    }

    /// The input column (`None` for [`count`](Self::count)).
    pub fn column(&self) -> Option<&str> {
        self.column.as_deref()
    }

    /// The weight column of a [`weighted_mean`](Self::weighted_mean).
    pub fn weight(&self) -> Option<&str> {
        self.weight.as_deref()
    }
}

/// Encodes a float as an `i64` with the same order as `f64::total_cmp` (an involution).
fn enc(x: f64) -> i64 {
    #[allow(clippy::cast_possible_wrap)]
    let b = x.to_bits() as i64;
    b ^ ((b >> 63) & i64::MAX)
}

fn dec(e: i64) -> f64 {
    #[allow(clippy::cast_sign_loss)]
    f64::from_bits((e ^ ((e >> 63) & i64::MAX)) as u64)
}

fn is_int_like(t: &DataType) -> bool {
    t.is_integer() || t.is_temporal()
}

/// One aggregate's per-group state, columnar.
struct Acc {
    kind: AggKind,
    value: usize,
    weight: usize,
    /// The value is read as `Int64` (integers, temporal types) rather than `Float64`.
    int: bool,
    out: DataType,
    i: Vec<i64>,
    f: Vec<f64>,
    w: Vec<f64>,
    /// Non-null values (first and last: whether the value is set and not null).
    nn: Vec<i64>,
    set: Vec<bool>,
    /// Min and max over sources that retract: each group's values, with counts.
    multiset: Vec<BTreeMap<i64, u32>>,
}

/// One batch's input columns, cast for the accumulators.
pub(crate) struct Prepared {
    cols: Vec<(Option<ArrayRef>, Option<ArrayRef>)>,
}

/// The accumulators of a list of [`Agg`]s over dense groups.
pub(crate) struct Aggs {
    accs: Vec<Acc>,
    /// Rows per group.
    pub(crate) rows: Vec<i64>,
    retracting: bool,
}

impl Aggs {
    /// Accumulators of `aggs` over rows of `schema`, and their output fields. With
    /// `retracting`, rows can be removed again; first and last are then left to the caller.
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`] for an unknown column, [`Error::InvalidOption`] for a
    /// column type the aggregate does not take, or an output name given twice.
    pub(crate) fn new(
        table: &str,
        schema: &Schema,
        aggs: &[Agg],
        retracting: bool,
    ) -> Result<(Self, Vec<Field>)> {
        let index = |c: &str| {
            schema.index_of(c).map_err(|_| Error::NoColumnNamed {
                table: table.to_owned(),
                column: c.to_owned(),
            })
        };
        let mut accs = Vec::with_capacity(aggs.len());
        let mut fields = Vec::with_capacity(aggs.len());
        for a in aggs {
            let value = a.column.as_deref().map(index).transpose()?.unwrap_or(0);
            let weight = a.weight.as_deref().map(index).transpose()?.unwrap_or(0);
            let t = schema.field(value).data_type();
            let numeric = t.is_integer() || t.is_floating();
            let bad = |what: &str| Error::InvalidOption {
                option: "aggregate",
                reason: format!(
                    "{}({:?}) needs {what}, found {t}",
                    a.kind,
                    a.column.as_deref().unwrap_or_default()
                ),
            };
            let (int, out) = match a.kind {
                AggKind::Count => (true, DataType::Int64),
                AggKind::Sum if numeric => {
                    let int = t.is_integer();
                    (
                        int,
                        if int {
                            DataType::Int64
                        } else {
                            DataType::Float64
                        },
                    )
                }
                AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last
                    if numeric || t.is_temporal() =>
                {
                    (is_int_like(t), t.clone())
                }
                AggKind::Mean if numeric => (false, DataType::Float64),
                AggKind::WeightedMean => {
                    let wt = schema.field(weight).data_type();
                    if !numeric || !(wt.is_integer() || wt.is_floating()) {
                        return Err(bad("numeric value and weight columns"));
                    }
                    (false, DataType::Float64)
                }
                AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last => {
                    return Err(bad("a numeric or temporal column"))
                }
                _ => return Err(bad("a numeric column")),
            };
            fields.push(Field::new(&a.name, out.clone(), a.kind != AggKind::Count));
            accs.push(Acc {
                kind: a.kind,
                value,
                weight,
                int,
                out,
                i: Vec::new(),
                f: Vec::new(),
                w: Vec::new(),
                nn: Vec::new(),
                set: Vec::new(),
                multiset: Vec::new(),
            });
        }
        Ok((
            Self {
                accs,
                rows: Vec::new(),
                retracting,
            },
            fields,
        ))
    }

    /// Makes room for `n` groups.
    pub(crate) fn grow(&mut self, n: usize) {
        if self.rows.len() >= n {
            return;
        }
        self.rows.resize(n, 0);
        for a in &mut self.accs {
            a.i.resize(n, 0);
            a.f.resize(n, 0.0);
            a.w.resize(n, 0.0);
            a.nn.resize(n, 0);
            a.set.resize(n, false);
            if self.retracting && matches!(a.kind, AggKind::Min | AggKind::Max) {
                a.multiset.resize_with(n, BTreeMap::new);
            }
        }
    }

    /// Whether any aggregate is a first or last.
    pub(crate) fn has_first_last(&self) -> bool {
        self.accs
            .iter()
            .any(|a| matches!(a.kind, AggKind::First | AggKind::Last))
    }

    /// Casts `batch`'s input columns for [`add_row`](Self::add_row). O(rows), once a batch.
    ///
    /// # Errors
    ///
    /// An Arrow error casting a column.
    pub(crate) fn prepare(&self, batch: &RecordBatch) -> Result<Prepared> {
        let mut cols = Vec::with_capacity(self.accs.len());
        for a in &self.accs {
            if a.kind == AggKind::Count {
                cols.push((None, None));
                continue;
            }
            let to = if a.int {
                DataType::Int64
            } else {
                DataType::Float64
            };
            let v = arrow_cast::cast(batch.column(a.value), &to)?;
            let w = if a.kind == AggKind::WeightedMean {
                Some(arrow_cast::cast(
                    batch.column(a.weight),
                    &DataType::Float64,
                )?)
            } else {
                None
            };
            cols.push((Some(v), w));
        }
        Ok(Prepared { cols })
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) the rows of `batch` in groups `ids`.
    ///
    /// # Errors
    ///
    /// As [`prepare`](Self::prepare).
    pub(crate) fn add(&mut self, batch: &RecordBatch, ids: &[u32], sign: i64) -> Result<()> {
        let p = self.prepare(batch)?;
        for (a, (v, w)) in self.accs.iter_mut().zip(&p.cols) {
            let (ints, floats) = split(v.as_ref());
            let weights = w.as_ref().map(AsArray::as_primitive::<Float64Type>);
            if !a.add_all(ids, ints, floats, weights, sign) {
                for (r, &g) in ids.iter().enumerate() {
                    a.add(g as usize, r, ints, floats, weights, sign);
                }
            }
        }
        for &g in ids {
            self.rows[g as usize] += sign;
        }
        Ok(())
    }

    /// Adds row `r` of a prepared batch to group `g` (no retraction).
    pub(crate) fn add_row(&mut self, p: &Prepared, r: usize, g: u32) {
        for (a, (v, w)) in self.accs.iter_mut().zip(&p.cols) {
            let (ints, floats) = split(v.as_ref());
            let weights = w.as_ref().map(AsArray::as_primitive::<Float64Type>);
            a.add(g as usize, r, ints, floats, weights, 1);
        }
        self.rows[g as usize] += 1;
    }

    /// Empties group `g` (a bar that closed).
    pub(crate) fn reset(&mut self, g: u32) {
        let g = g as usize;
        self.rows[g] = 0;
        for a in &mut self.accs {
            a.i[g] = 0;
            a.f[g] = 0.0;
            a.w[g] = 0.0;
            a.nn[g] = 0;
            a.set[g] = false;
        }
    }

    /// Appends group `g`'s values to `out`, one per aggregate.
    pub(crate) fn emit(&self, g: u32, out: &mut Emitted) {
        if out.cols.is_empty() {
            out.cols = self
                .accs
                .iter()
                .map(|a| {
                    let float = !a.int || matches!(a.kind, AggKind::Mean | AggKind::WeightedMean);
                    let float = float && a.kind != AggKind::Count;
                    (a.out.clone(), float, Vec::new())
                })
                .collect();
        }
        let g = g as usize;
        for (a, (_, _, col)) in self.accs.iter().zip(&mut out.cols) {
            let some = |x: i64| (a.nn[g] > 0).then_some(x);
            let v: Option<i64> = match a.kind {
                AggKind::Count => Some(self.rows[g]),
                AggKind::Sum if a.int => some(a.i[g]),
                AggKind::Sum => some(enc(a.f[g])),
                AggKind::Min | AggKind::Max if self.retracting => {
                    let m = &a.multiset[g];
                    let e = if a.kind == AggKind::Min {
                        m.first_key_value()
                    } else {
                        m.last_key_value()
                    };
                    e.map(|(&k, _)| k)
                }
                AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last => some(a.i[g]),
                #[allow(clippy::cast_precision_loss)]
                AggKind::Mean => some(enc(a.f[g] / a.nn[g] as f64)),
                AggKind::WeightedMean => {
                    (a.nn[g] > 0 && a.w[g] != 0.0).then(|| enc(a.f[g] / a.w[g]))
                }
            };
            col.push(v);
        }
    }
}

fn split(
    v: Option<&ArrayRef>,
) -> (
    Option<&PrimitiveArray<Int64Type>>,
    Option<&PrimitiveArray<Float64Type>>,
) {
    match v {
        Some(v) if v.data_type() == &DataType::Int64 => (Some(v.as_primitive()), None),
        Some(v) => (None, Some(v.as_primitive())),
        None => (None, None),
    }
}

/// Calls `f(group, value)` for each row: `ids` and `values` are a batch's group ids and
/// one of its columns, row by row.
#[inline]
fn each<T: Copy>(ids: &[u32], values: &[T], mut f: impl FnMut(usize, T)) {
    for (&g, &v) in ids.iter().zip(values) {
        f(g as usize, v);
    }
}

impl Acc {
    /// Adds (or retracts) a whole batch's rows with one loop per aggregate, for columns
    /// without nulls: what [`add`](Self::add) does row by row, without its per-row
    /// dispatch. Returns false, having done nothing, where only `add` applies (nulls,
    /// retracted minima and maxima). Short names as in `add`, and (w)eights.
    #[allow(clippy::cast_precision_loss, clippy::many_single_char_names)]
    fn add_all(
        &mut self,
        ids: &[u32],
        ints: Option<&Int64Array>,
        floats: Option<&Float64Array>,
        weights: Option<&Float64Array>,
        sign: i64,
    ) -> bool {
        let nulls = ints.map_or(0, Array::null_count)
            + floats.map_or(0, Array::null_count)
            + weights.map_or(0, Array::null_count);
        if nulls > 0 || !self.multiset.is_empty() {
            return false;
        }
        let s = sign as f64;
        let (i, f, w, nn) = (&mut self.i, &mut self.f, &mut self.w, &mut self.nn);
        match (self.kind, ints.map(|a| &a.values()[..]), floats) {
            (AggKind::Count, _, _) => {}
            (AggKind::Sum, Some(v), _) => each(ids, v, |g, v| {
                i[g] = i[g].wrapping_add(v.wrapping_mul(sign));
                nn[g] += sign;
            }),
            (AggKind::Sum | AggKind::Mean, None, Some(x)) => each(ids, x.values(), |g, x| {
                f[g] += s * x;
                nn[g] += sign;
                if nn[g] == 0 {
                    f[g] = 0.0;
                }
            }),
            (AggKind::WeightedMean, None, Some(x)) => {
                let Some(weights) = weights else {
                    return false;
                };
                let ws = weights.values();
                for ((&g, &x), &wt) in ids.iter().zip(x.values().iter()).zip(ws.iter()) {
                    let g = g as usize;
                    f[g] += s * wt * x;
                    w[g] += s * wt;
                    nn[g] += sign;
                    if nn[g] == 0 {
                        f[g] = 0.0;
                        w[g] = 0.0;
                    }
                }
            }
            (AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last, Some(v), _) => {
                self.extreme_all(ids, v.iter().copied());
            }
            (AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last, None, Some(x)) => {
                self.extreme_all(ids, x.values().iter().map(|&x| enc(x)));
            }
            _ => return false,
        }
        true
    }

    /// Min, max, first or last of a batch's encoded values: min and max only where nothing
    /// is retracted (the caller checks), first and last whatever the sign, as `add` does.
    fn extreme_all(&mut self, ids: &[u32], values: impl Iterator<Item = i64>) {
        let (i, nn, set) = (&mut self.i, &mut self.nn, &mut self.set);
        let rows = ids.iter().map(|&g| g as usize).zip(values);
        match self.kind {
            AggKind::Min => rows.for_each(|(g, e)| {
                if nn[g] == 0 || e < i[g] {
                    i[g] = e;
                }
                nn[g] = 1;
            }),
            AggKind::Max => rows.for_each(|(g, e)| {
                if nn[g] == 0 || e > i[g] {
                    i[g] = e;
                }
                nn[g] = 1;
            }),
            AggKind::First => rows.for_each(|(g, e)| {
                if !set[g] {
                    set[g] = true;
                    nn[g] = 1;
                    i[g] = e;
                }
            }),
            _ => rows.for_each(|(g, e)| {
                set[g] = true;
                nn[g] = 1;
                i[g] = e;
            }),
        }
    }

    // One row into one group's state: the short names are the row's (g)roup, (r)ow,
    // (e)ncoded value, float value (x) and (s)ign.
    #[allow(clippy::many_single_char_names)]
    #[inline]
    fn add(
        &mut self,
        g: usize,
        r: usize,
        ints: Option<&Int64Array>,
        floats: Option<&Float64Array>,
        weights: Option<&Float64Array>,
        sign: i64,
    ) {
        if self.kind == AggKind::Count {
            return;
        }
        // The value as its order-preserving i64 (ints as they are, floats encoded), and as
        // a float.
        let (e, x) = if let Some(a) = ints {
            if a.is_null(r) {
                if matches!(self.kind, AggKind::First | AggKind::Last) {
                    self.first_last(g, None);
                }
                return;
            }
            let v = a.value(r);
            #[allow(clippy::cast_precision_loss)]
            (v, v as f64)
        } else if let Some(a) = floats {
            if a.is_null(r) {
                if matches!(self.kind, AggKind::First | AggKind::Last) {
                    self.first_last(g, None);
                }
                return;
            }
            let v = a.value(r);
            (enc(v), v)
        } else {
            return;
        };
        #[allow(clippy::cast_precision_loss)]
        let s = sign as f64;
        match self.kind {
            AggKind::Count => {}
            AggKind::Sum if self.int => {
                self.i[g] = self.i[g].wrapping_add(e.wrapping_mul(sign));
                self.nn[g] += sign;
            }
            AggKind::Sum | AggKind::Mean => {
                self.f[g] += s * x;
                self.nn[g] += sign;
                if self.nn[g] == 0 {
                    // No drift left behind by retractions.
                    self.f[g] = 0.0;
                }
            }
            AggKind::WeightedMean => {
                let Some(w) = weights.filter(|w| !w.is_null(r)).map(|w| w.value(r)) else {
                    return;
                };
                self.f[g] += s * w * x;
                self.w[g] += s * w;
                self.nn[g] += sign;
                if self.nn[g] == 0 {
                    self.f[g] = 0.0;
                    self.w[g] = 0.0;
                }
            }
            AggKind::Min | AggKind::Max if !self.multiset.is_empty() => {
                let m = &mut self.multiset[g];
                if sign > 0 {
                    *m.entry(e).or_insert(0) += 1;
                } else if let Some(c) = m.get_mut(&e) {
                    *c -= 1;
                    if *c == 0 {
                        m.remove(&e);
                    }
                }
                self.nn[g] += sign;
            }
            AggKind::Min => {
                if self.nn[g] == 0 || e < self.i[g] {
                    self.i[g] = e;
                }
                self.nn[g] = 1;
            }
            AggKind::Max => {
                if self.nn[g] == 0 || e > self.i[g] {
                    self.i[g] = e;
                }
                self.nn[g] = 1;
            }
            AggKind::First | AggKind::Last => self.first_last(g, Some(e)),
        }
    }

    fn first_last(&mut self, g: usize, e: Option<i64>) {
        if self.kind == AggKind::First && self.set[g] {
            return;
        }
        self.set[g] = true;
        self.nn[g] = i64::from(e.is_some());
        self.i[g] = e.unwrap_or(0);
    }
}

/// Groups' aggregate values, gathered by [`Aggs::emit`], then made columns.
#[derive(Default)]
pub(crate) struct Emitted {
    /// Per aggregate: output type, whether values are encoded floats, values.
    cols: Vec<(DataType, bool, Vec<Option<i64>>)>,
}

impl Emitted {
    /// The output columns; `rows` is the number of groups emitted (for an empty list of
    /// aggregates).
    ///
    /// # Errors
    ///
    /// An Arrow error casting to an output type.
    pub(crate) fn finish(&mut self, fields: &[Field]) -> Result<Vec<ArrayRef>> {
        if self.cols.is_empty() {
            return Ok(fields
                .iter()
                .map(|f| arrow_array::new_empty_array(f.data_type()))
                .collect());
        }
        let mut out = Vec::with_capacity(self.cols.len());
        for (t, float, vals) in &mut self.cols {
            let a: ArrayRef = if *float {
                Arc::new(vals.iter().map(|v| v.map(dec)).collect::<Float64Array>())
            } else {
                Arc::new(vals.iter().copied().collect::<Int64Array>())
            };
            vals.clear();
            out.push(if a.data_type() == t {
                a
            } else {
                arrow_cast::cast(&a, t)?
            });
        }
        Ok(out)
    }
}

/// The operator of [`EngineHandle::agg_by`](crate::EngineHandle::agg_by).
pub(crate) struct AggByOp {
    schema: SchemaRef,
    source_schema: SchemaRef,
    /// Output key columns: `0..keys`.
    key: Arc<[usize]>,
    fields: Vec<Field>,
    groups: Groups,
    aggs: Aggs,
    reader: DeltaReader,
    delta: Delta,
    ids: Vec<u32>,
    touched: Touched,
    /// Whether each group has a row in the output.
    shown: Vec<bool>,
    /// Retracting sources with a first or last: each group's source positions.
    sets: Option<Vec<BTreeSet<u64>>>,
    emitted: Emitted,
}

impl AggByOp {
    /// # Errors
    ///
    /// As [`Aggs::new`], and an Arrow error for key columns that cannot be keys.
    pub(crate) fn new(
        table: &str,
        source: &SchemaRef,
        key: &[usize],
        aggs: &[Agg],
        kind: SourceKind,
    ) -> Result<Self> {
        let (aggs, fields) = Aggs::new(table, source, aggs, kind.retracts())?;
        let mut all: Vec<Field> = key.iter().map(|&k| source.field(k).clone()).collect();
        all.extend(fields.iter().cloned());
        let schema = Arc::new(Schema::new(all));
        check_unique(&schema)?;
        let sets = (kind.retracts() && aggs.has_first_last()).then(Vec::new);
        Ok(Self {
            key: (0..key.len()).collect(),
            groups: Groups::new(source, key)?,
            schema,
            source_schema: source.clone(),
            fields,
            aggs,
            reader: DeltaReader::new(kind),
            delta: Delta::default(),
            ids: Vec::new(),
            touched: Touched::default(),
            shown: Vec::new(),
            sets,
            emitted: Emitted::default(),
        })
    }

    /// The output schema: the key columns, then one column per aggregate.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// First and last of retracting sources: the value columns at each group's first and
    /// last source positions, for `live` groups.
    fn first_last(&self, input: &OpInput<'_>, live: &[u32], cols: &mut [ArrayRef]) -> Result<()> {
        let Some(sets) = &self.sets else {
            return Ok(());
        };
        for (c, a) in self.aggs.accs.iter().enumerate() {
            let first = match a.kind {
                AggKind::First => true,
                AggKind::Last => false,
                _ => continue,
            };
            let mut at: Vec<(u64, u32)> = live
                .iter()
                .enumerate()
                .map(|(i, &g)| {
                    let s = &sets[g as usize];
                    let p = if first { s.first() } else { s.last() };
                    (
                        *p.expect("invariant: a live group has rows"),
                        u32::try_from(i).expect("invariant: fewer than 2^32 groups"),
                    )
                })
                .collect();
            at.sort_unstable();
            let positions: Vec<u64> = at.iter().map(|&(p, _)| p).collect();
            let taken = take_columns(
                input.source.chunks(),
                &self.source_schema,
                &positions,
                &[a.value],
            )
            .pop()
            .expect("invariant: one column asked");
            // Back from position order to `live` order.
            let mut back = vec![0u32; at.len()];
            for (j, &(_, i)) in at.iter().enumerate() {
                back[i as usize] = u32::try_from(j).expect("invariant: fewer than 2^32 groups");
            }
            cols[c] =
                arrow_select::take::take(&taken, &arrow_array::UInt32Array::from(back), None)?;
        }
        Ok(())
    }
}

impl Operator for AggByOp {
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        self.reader.read(input, &mut self.delta);
        if self.delta.old.is_empty() && self.delta.new.is_empty() {
            return Ok(());
        }
        self.touched.begin(self.groups.len());
        for part in &self.delta.old {
            self.groups.ids(&part.batch, &mut self.ids)?;
            self.aggs.add(&part.batch, &self.ids, -1)?;
            for (i, &g) in self.ids.iter().enumerate() {
                if let Some(sets) = &mut self.sets {
                    sets[g as usize].remove(&part.position(i));
                }
                self.touched.touch(g);
            }
        }
        for part in &self.delta.new {
            self.groups.ids(&part.batch, &mut self.ids)?;
            let n = self.groups.len();
            self.aggs.grow(n);
            if self.shown.len() < n {
                self.shown.resize(n, false);
            }
            self.aggs.add(&part.batch, &self.ids, 1)?;
            for (i, &g) in self.ids.iter().enumerate() {
                if let Some(sets) = &mut self.sets {
                    if sets.len() < n {
                        sets.resize_with(n, BTreeSet::new);
                    }
                    sets[g as usize].insert(part.position(i));
                }
                self.touched.touch(g);
            }
        }
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for &g in &self.touched.list {
            let gi = g as usize;
            if self.aggs.rows[gi] > 0 {
                live.push(g);
                self.shown[gi] = true;
            } else if self.shown[gi] {
                dead.push(g);
                self.shown[gi] = false;
            }
        }
        if self.key.is_empty() && !self.touched.list.is_empty() {
            // Keyless: the output is a one-row ring; its row is replaced, or removed.
            out.evict_to = Some(u64::MAX);
        } else if !dead.is_empty() {
            let keys = self.groups.keys(&dead)?;
            out.batches
                .push(delete_batch(&self.schema, &self.key, keys));
        }
        if !live.is_empty() {
            for &g in &live {
                self.aggs.emit(g, &mut self.emitted);
            }
            let mut cols = self.emitted.finish(&self.fields)?;
            self.first_last(input, &live, &mut cols)?;
            let mut all = self.groups.keys(&live)?;
            all.extend(cols);
            out.batches.push(relabel(
                &self.schema,
                RecordBatch::try_new(self.schema.clone(), all)?,
            ));
        }
        Ok(())
    }
}

/// Refuses an output schema with a column name given twice.
pub(crate) fn check_unique(schema: &Schema) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name()) {
            return Err(Error::InvalidOption {
                option: "aggregate",
                reason: format!("output column {:?} is given twice", f.name()),
            });
        }
    }
    Ok(())
}
