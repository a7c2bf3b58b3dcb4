//! The bound tree ([`Node`]) and its evaluation with Arrow's kernels, one whole column per
//! operator.

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_arith::numeric;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{
    make_array, new_null_array, Array, ArrayRef, ArrowPrimitiveType, BooleanArray, Datum,
    Int64Array, Scalar, UInt32Array,
};
use arrow_buffer::{BooleanBuffer, NullBuffer};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_ord::cmp;
use arrow_schema::{ArrowError, DataType};
use foldhash::fast::RandomState;
use hashbrown::HashSet;

use super::ast::{BinaryOp, Function};

/// Casts fail loudly: a value that does not fit is an error, never a silent null.
const CAST: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow_cast::display::FormatOptions::new(),
};

/// A node of a bound expression: every column resolved, every type checked and every
/// conversion explicit.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// The bound column at this slot (see `BoundExpr::columns`).
    Column(usize),
    /// A one-row array: a literal, or a part computed at bind time.
    Const(ArrayRef),
    /// `arrow_cast` to this type.
    Cast(Box<Node>, DataType),
    /// The same values under another type of the same layout (an integer as a timestamp, a
    /// timestamp in another zone).
    Retag(Box<Node>, DataType),
    Not(Box<Node>),
    Neg(Box<Node>),
    Abs(Box<Node>),
    /// `is_null`, or `is_not_null` when `true`.
    IsNull(Box<Node>, bool),
    /// A comparison; both sides have the same type (or a dictionary of it).
    Compare(BinaryOp, Box<Node>, Box<Node>),
    /// Arithmetic; both sides have the same type.
    Arith(BinaryOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    /// `in` over a hash set; `has_null` when the list held a `null`.
    InSet {
        operand: Box<Node>,
        set: Arc<ValueSet>,
        has_null: bool,
    },
    /// `starts_with`, `ends_with` or `contains`.
    Strings(Function, Box<Node>, Box<Node>),
}

/// The value of a node: a column's worth of rows, or one row that stands for every row.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Array(ArrayRef),
    Scalar(ArrayRef),
}

impl Datum for Val {
    fn get(&self) -> (&dyn Array, bool) {
        match self {
            Val::Array(a) => (a.as_ref(), false),
            Val::Scalar(a) => (a.as_ref(), true),
        }
    }
}

impl Val {
    fn array(&self) -> &ArrayRef {
        match self {
            Val::Array(a) | Val::Scalar(a) => a,
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Val::Scalar(_))
    }

    /// Applies a row-wise kernel, keeping a scalar a scalar.
    fn map(
        self,
        f: impl FnOnce(&ArrayRef) -> Result<ArrayRef, ArrowError>,
    ) -> Result<Val, ArrowError> {
        Ok(match self {
            Val::Array(a) => Val::Array(f(&a)?),
            Val::Scalar(a) => Val::Scalar(f(&a)?),
        })
    }

    /// The value as an array of `len` rows.
    pub(crate) fn into_array(self, len: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Val::Array(a) => Ok(a),
            Val::Scalar(a) if len == 1 => Ok(a),
            Val::Scalar(a) => {
                let zeros = UInt32Array::from_value(0, len);
                arrow_select::take::take(&a, &zeros, None)
            }
        }
    }
}

/// A result that is a scalar when every input was.
fn wrap(scalar: bool, array: ArrayRef) -> Val {
    if scalar {
        Val::Scalar(array)
    } else {
        Val::Array(array)
    }
}

impl Node {
    /// Whether the node is a constant.
    pub(crate) fn is_const(&self) -> bool {
        matches!(self, Node::Const(_))
    }

    /// Whether every child of the node is a constant (so it can be computed at bind time).
    pub(crate) fn children_are_const(&self) -> bool {
        match self {
            Node::Column(_) => false,
            Node::Const(_) => true,
            Node::Cast(n, _)
            | Node::Retag(n, _)
            | Node::Not(n)
            | Node::Neg(n)
            | Node::Abs(n)
            | Node::IsNull(n, _)
            | Node::InSet { operand: n, .. } => n.is_const(),
            Node::Compare(_, l, r)
            | Node::Arith(_, l, r)
            | Node::And(l, r)
            | Node::Or(l, r)
            | Node::Strings(_, l, r) => l.is_const() && r.is_const(),
        }
    }

    /// Evaluates the node over `columns` (the bound columns, in slot order).
    ///
    /// Recursion is one small frame here plus one in the per-kind function, so that
    /// [`MAX_DEPTH`](super::error::MAX_DEPTH) levels fit a thread's stack even in debug builds.
    pub(crate) fn eval(&self, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
        match self {
            Node::Column(slot) => Ok(Val::Array(Arc::clone(&columns[*slot]))),
            Node::Const(a) => Ok(Val::Scalar(Arc::clone(a))),
            Node::Cast(..)
            | Node::Retag(..)
            | Node::Not(_)
            | Node::Neg(_)
            | Node::Abs(_)
            | Node::IsNull(..)
            | Node::InSet { .. } => self.eval_unary(columns),
            Node::Compare(op, l, r) => compare(*op, l, r, columns),
            Node::Arith(op, l, r) => arith(*op, l, r, columns),
            Node::And(l, r) => logic(true, l, r, columns),
            Node::Or(l, r) => logic(false, l, r, columns),
            Node::Strings(f, l, r) => strings(*f, l, r, columns),
        }
    }

    /// A node of one child, evaluated row by row.
    #[inline(never)]
    fn eval_unary(&self, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
        match self {
            Node::Cast(n, to) => n.eval(columns)?.map(|a| cast_with_options(a, to, &CAST)),
            Node::Retag(n, to) => n.eval(columns)?.map(|a| retag(a, to)),
            Node::Not(n) => n.eval(columns)?.map(|a| Ok(Arc::new(not(a.as_boolean())?))),
            Node::Neg(n) => n.eval(columns)?.map(|a| numeric::neg(a)),
            Node::Abs(n) => n.eval(columns)?.map(abs),
            Node::IsNull(n, negated) => n.eval(columns)?.map(|a| {
                let out = if *negated { is_not_null(a) } else { is_null(a) };
                Ok(Arc::new(out?))
            }),
            Node::InSet {
                operand,
                set,
                has_null,
            } => operand
                .eval(columns)?
                .map(|a| Ok(Arc::new(set.contains(a, *has_null)?))),
            _ => unreachable!("invariant: eval dispatches one-child nodes here"),
        }
    }
}

/// `l op r` for a comparison.
#[inline(never)]
fn compare(op: BinaryOp, l: &Node, r: &Node, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
    let l = l.eval(columns)?;
    let r = r.eval(columns)?;
    let out = match op {
        BinaryOp::Eq => cmp::eq(&l, &r),
        BinaryOp::NotEq => cmp::neq(&l, &r),
        BinaryOp::Lt => cmp::lt(&l, &r),
        BinaryOp::LtEq => cmp::lt_eq(&l, &r),
        BinaryOp::Gt => cmp::gt(&l, &r),
        BinaryOp::GtEq => cmp::gt_eq(&l, &r),
        _ => unreachable!("invariant: the binder makes Compare of comparisons only"),
    }?;
    Ok(wrap(l.is_scalar() && r.is_scalar(), Arc::new(out)))
}

/// `starts_with`, `ends_with` or `contains`.
#[inline(never)]
fn strings(f: Function, l: &Node, r: &Node, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
    let l = l.eval(columns)?;
    let r = r.eval(columns)?;
    let out = match f {
        Function::StartsWith => arrow_string::like::starts_with(&l, &r),
        Function::EndsWith => arrow_string::like::ends_with(&l, &r),
        Function::Contains => arrow_string::like::contains(&l, &r),
        _ => unreachable!("invariant: the binder makes Strings of string functions"),
    }?;
    Ok(wrap(l.is_scalar() && r.is_scalar(), Arc::new(out)))
}

/// A batch's column, ready for the kernels: a dictionary with no values (every row null)
/// becomes a null array of its value type, as some Arrow kernels cannot take one.
pub(crate) fn prepare_column(a: &ArrayRef) -> ArrayRef {
    match (a.as_any_dictionary_opt(), a.data_type()) {
        (Some(d), DataType::Dictionary(_, value)) if d.values().is_empty() => {
            new_null_array(value, a.len())
        }
        _ => Arc::clone(a),
    }
}

/// The same values under `to`, a type of the same physical layout.
pub(crate) fn retag(a: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    Ok(make_array(
        a.to_data().into_builder().data_type(to.clone()).build()?,
    ))
}

/// `l op r` for arithmetic; integer division and remainder by zero give null.
#[inline(never)]
fn arith(op: BinaryOp, l: &Node, r: &Node, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
    let l = l.eval(columns)?;
    let r = r.eval(columns)?;
    let scalar = l.is_scalar() && r.is_scalar();
    let dt = r.array().data_type().clone();
    let r = if matches!(op, BinaryOp::Div | BinaryOp::Rem) && dt.is_integer() {
        let zero = cast_with_options(&Int64Array::from(vec![0]), &dt, &CAST)?;
        let zeros = cmp::eq(&r, &Scalar::new(zero))?;
        if zeros.true_count() == 0 {
            r
        } else if r.is_scalar() {
            let len = if l.is_scalar() { 1 } else { l.array().len() };
            return Ok(wrap(scalar, new_null_array(&dt, len)));
        } else {
            Val::Array(arrow_select::nullif::nullif(r.array(), &zeros)?)
        }
    } else {
        r
    };
    let out = match op {
        BinaryOp::Add => numeric::add(&l, &r),
        BinaryOp::Sub => numeric::sub(&l, &r),
        BinaryOp::Mul => numeric::mul(&l, &r),
        BinaryOp::Div => numeric::div(&l, &r),
        BinaryOp::Rem => numeric::rem(&l, &r),
        _ => unreachable!("invariant: the binder makes Arith of arithmetic only"),
    }?;
    Ok(wrap(scalar, out))
}

/// `l && r` (`and`) or `l || r`, Kleene logic; the right side is skipped when the left
/// decides every row.
#[inline(never)]
fn logic(and: bool, l: &Node, r: &Node, columns: &[ArrayRef]) -> Result<Val, ArrowError> {
    let l = l.eval(columns)?;
    let lb = l.array().as_boolean();
    if !l.is_scalar() && lb.null_count() == 0 {
        let trues = lb.true_count();
        if (and && trues == 0) || (!and && trues == lb.len()) {
            return Ok(l);
        }
    }
    let r = r.eval(columns)?;
    let len = match (&l, &r) {
        (Val::Array(a), _) | (_, Val::Array(a)) => a.len(),
        _ => 1,
    };
    let lb = repeat_bool(l.array().as_boolean(), len);
    let rb = repeat_bool(r.array().as_boolean(), len);
    let out = if and {
        and_kleene(&lb, &rb)?
    } else {
        or_kleene(&lb, &rb)?
    };
    Ok(wrap(l.is_scalar() && r.is_scalar(), Arc::new(out)))
}

/// `a` itself if it has `len` rows, else its one row repeated `len` times.
fn repeat_bool(a: &BooleanArray, len: usize) -> BooleanArray {
    if a.len() == len {
        a.clone()
    } else if a.is_null(0) {
        BooleanArray::new_null(len)
    } else if a.value(0) {
        BooleanArray::new(BooleanBuffer::new_set(len), None)
    } else {
        BooleanArray::new(BooleanBuffer::new_unset(len), None)
    }
}

/// `abs(x)` for `Int64`, `UInt64` and `Float64` (the binder widens to these); overflow is an
/// error.
fn abs(a: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    Ok(match a.data_type() {
        DataType::Int64 => Arc::new(a.as_primitive::<Int64Type>().try_unary::<_, Int64Type, _>(
            |v| {
                v.checked_abs()
                    .ok_or_else(|| ArrowError::ArithmeticOverflow(format!("overflow in abs({v})")))
            },
        )?),
        DataType::Float64 => Arc::new(
            a.as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(f64::abs),
        ),
        DataType::UInt64 => Arc::clone(a),
        other => return Err(ArrowError::InvalidArgumentError(format!("abs of {other}"))),
    })
}

/// The constants of an `in` list, in a hash set, by the operand's physical type.
///
/// Looking a row up costs a hash of its value; a dictionary's values are looked up once each
/// and the keys mapped.
#[derive(Debug)]
pub(crate) enum ValueSet {
    /// Signed integers, and timestamps, dates, times and durations by their integer value.
    Int(HashSet<i64, RandomState>),
    /// Unsigned integers.
    UInt(HashSet<u64, RandomState>),
    /// Floats by their bits (Arrow compares floats in total order: equal means same bits).
    Float(HashSet<u64, RandomState>),
    /// Strings.
    Str(HashSet<Box<str>, RandomState>),
    /// Booleans: whether `true` and `false` are in the list.
    Bool { t: bool, f: bool },
}

/// The values of a primitive column, tested one by one.
fn probe<T: ArrowPrimitiveType>(a: &dyn Array, f: impl Fn(T::Native) -> bool) -> BooleanBuffer {
    let values = a.as_primitive::<T>().values();
    BooleanBuffer::collect_bool(values.len(), |i| f(values[i]))
}

impl ValueSet {
    /// An empty set for values of `dt` (a dictionary's value type), or `None` if `in` does not
    /// support it.
    pub(crate) fn for_type(dt: &DataType) -> Option<ValueSet> {
        use DataType::{
            Boolean, Date32, Date64, Duration, Float32, Float64, Int16, Int32, Int64, Int8,
            LargeUtf8, Time32, Time64, Timestamp, UInt16, UInt32, UInt64, UInt8, Utf8, Utf8View,
        };
        let hasher = RandomState::default;
        Some(match dt {
            Int8 | Int16 | Int32 | Int64 | Timestamp(..) | Date32 | Date64 | Time32(_)
            | Time64(_) | Duration(_) => ValueSet::Int(HashSet::with_hasher(hasher())),
            UInt8 | UInt16 | UInt32 | UInt64 => ValueSet::UInt(HashSet::with_hasher(hasher())),
            Float32 | Float64 => ValueSet::Float(HashSet::with_hasher(hasher())),
            Utf8 | LargeUtf8 | Utf8View => ValueSet::Str(HashSet::with_hasher(hasher())),
            Boolean => ValueSet::Bool { t: false, f: false },
            _ => return None,
        })
    }

    /// Adds the value of the one-row, non-null array `a`, of the set's type.
    pub(crate) fn insert(&mut self, a: &ArrayRef) -> Result<(), ArrowError> {
        match self {
            ValueSet::Int(set) => {
                let v = cast_with_options(&as_integer(a)?, &DataType::Int64, &CAST)?;
                set.insert(v.as_primitive::<Int64Type>().value(0));
            }
            ValueSet::UInt(set) => {
                let v = cast_with_options(a, &DataType::UInt64, &CAST)?;
                set.insert(v.as_primitive::<UInt64Type>().value(0));
            }
            ValueSet::Float(set) => {
                let bits = match a.data_type() {
                    DataType::Float32 => {
                        u64::from(a.as_primitive::<Float32Type>().value(0).to_bits())
                    }
                    _ => a.as_primitive::<Float64Type>().value(0).to_bits(),
                };
                set.insert(bits);
            }
            ValueSet::Str(set) => {
                let v = cast_with_options(a, &DataType::Utf8, &CAST)?;
                set.insert(v.as_string::<i32>().value(0).into());
            }
            ValueSet::Bool { t, f } => {
                if a.as_boolean().value(0) {
                    *t = true;
                } else {
                    *f = true;
                }
            }
        }
        Ok(())
    }

    /// For each row of `a`: true if its value is in the set; null if it is null, or if it is
    /// not in the set and `has_null`; else false.
    pub(crate) fn contains(
        &self,
        a: &ArrayRef,
        has_null: bool,
    ) -> Result<BooleanArray, ArrowError> {
        if let Some(dict) = a.as_any_dictionary_opt() {
            let on_values = self.contains(dict.values(), has_null)?;
            let out = arrow_select::take::take(&on_values, dict.keys(), None)?;
            return Ok(out.as_boolean().clone());
        }
        let bits = match self {
            ValueSet::Int(set) => {
                let ints = as_integer(a)?;
                match ints.data_type() {
                    DataType::Int8 => probe::<Int8Type>(&ints, |v| set.contains(&i64::from(v))),
                    DataType::Int16 => probe::<Int16Type>(&ints, |v| set.contains(&i64::from(v))),
                    DataType::Int32 => probe::<Int32Type>(&ints, |v| set.contains(&i64::from(v))),
                    _ => probe::<Int64Type>(&ints, |v| set.contains(&v)),
                }
            }
            ValueSet::UInt(set) => match a.data_type() {
                DataType::UInt8 => probe::<UInt8Type>(a, |v| set.contains(&u64::from(v))),
                DataType::UInt16 => probe::<UInt16Type>(a, |v| set.contains(&u64::from(v))),
                DataType::UInt32 => probe::<UInt32Type>(a, |v| set.contains(&u64::from(v))),
                _ => probe::<UInt64Type>(a, |v| set.contains(&v)),
            },
            ValueSet::Float(set) => match a.data_type() {
                DataType::Float32 => {
                    probe::<Float32Type>(a, |v| set.contains(&u64::from(v.to_bits())))
                }
                _ => probe::<Float64Type>(a, |v| set.contains(&v.to_bits())),
            },
            ValueSet::Str(set) => match a.data_type() {
                DataType::LargeUtf8 => {
                    let s = a.as_string::<i64>();
                    BooleanBuffer::collect_bool(s.len(), |i| set.contains(s.value(i)))
                }
                DataType::Utf8View => {
                    let s = a.as_string_view();
                    BooleanBuffer::collect_bool(s.len(), |i| set.contains(s.value(i)))
                }
                _ => {
                    let s = a.as_string::<i32>();
                    BooleanBuffer::collect_bool(s.len(), |i| set.contains(s.value(i)))
                }
            },
            ValueSet::Bool { t, f } => {
                let values = a.as_boolean().values();
                match (t, f) {
                    (true, true) => BooleanBuffer::new_set(a.len()),
                    (false, false) => BooleanBuffer::new_unset(a.len()),
                    (true, false) => values.clone(),
                    (false, true) => !values,
                }
            }
        };
        let valid = a.logical_nulls();
        let nulls = if has_null {
            // Valid only where the value matched.
            let matched = match &valid {
                Some(v) => &bits & v.inner(),
                None => bits.clone(),
            };
            Some(NullBuffer::new(matched))
        } else {
            valid
        };
        Ok(BooleanArray::new(bits, nulls))
    }
}

/// A signed-integer view of `a`: itself for `Int8`..`Int64`, the same values as `Int64` or
/// `Int32` for temporal types.
fn as_integer(a: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match a.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Ok(Arc::clone(a)),
        DataType::Date32 | DataType::Time32(_) => retag(a, &DataType::Int32),
        _ => retag(a, &DataType::Int64),
    }
}

#[cfg(test)]
mod tests {
    //! `filter_mask` and `evaluate` against a naive evaluator that walks the tree row by row.

    use std::cmp::Ordering;

    use arrow_array::{
        BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
        StringArray,
    };
    use arrow_schema::{Field, Schema};
    use proptest::prelude::*;

    use super::*;
    use crate::expr::{Expr, ExprError, ExprKind, Literal, UnaryOp};

    /// A value of the naive evaluator.
    #[derive(Debug, Clone, PartialEq)]
    enum V {
        Null,
        Bool(bool),
        Int(i128),
        Float(f64),
        Str(String),
    }

    /// One row of the test schema.
    #[derive(Debug, Clone)]
    struct Row {
        a: Option<i64>,
        b: Option<i32>,
        x: Option<f64>,
        s: Option<&'static str>,
        f: Option<bool>,
        d: Option<&'static str>,
    }

    const STRINGS: [&str; 6] = ["", "a", "ab", "b", "ba", "abc"];
    const FLOATS: [f64; 7] = [0.0, -0.0, 0.5, 2.0, -1.5, 7.25, f64::NAN];

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int32, true),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Boolean, true),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
        ])
    }

    fn batch(rows: &[Row]) -> RecordBatch {
        let d: DictionaryArray<Int32Type> = rows.iter().map(|r| r.d).collect();
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(rows.iter().map(|r| r.a).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| r.b).collect::<Int32Array>()),
                Arc::new(rows.iter().map(|r| r.x).collect::<Float64Array>()),
                Arc::new(rows.iter().map(|r| r.s).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.f).collect::<BooleanArray>()),
                Arc::new(d),
            ],
        )
        .unwrap()
    }

    fn num_cmp(l: &V, r: &V) -> Option<Ordering> {
        match (l, r) {
            (V::Int(a), V::Int(b)) => Some(a.cmp(b)),
            #[allow(clippy::cast_precision_loss)]
            (V::Int(a), V::Float(b)) => Some((*a as f64).total_cmp(b)),
            #[allow(clippy::cast_precision_loss)]
            (V::Float(a), V::Int(b)) => Some(a.total_cmp(&(*b as f64))),
            (V::Float(a), V::Float(b)) => Some(a.total_cmp(b)),
            (V::Str(a), V::Str(b)) => Some(a.cmp(b)),
            (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    fn kleene_not(v: &V) -> V {
        match *v {
            V::Bool(b) => V::Bool(!b),
            _ => V::Null,
        }
    }

    fn lit(l: &Literal) -> V {
        match l {
            Literal::Null => V::Null,
            Literal::Bool(b) => V::Bool(*b),
            Literal::Int(v) => V::Int(*v),
            Literal::Float(v) => V::Float(*v),
            Literal::Str(s) => V::Str(s.clone()),
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn as_f64(v: &V) -> f64 {
        match v {
            V::Int(i) => *i as f64,
            V::Float(f) => *f,
            _ => unreachable!("{v:?}"),
        }
    }

    /// The value of `e` at `row`, by the rules of the module docs. One match over the whole
    /// tree reads best next to those rules, hence the long function.
    #[allow(clippy::too_many_lines, clippy::many_single_char_names)]
    fn naive(e: &Expr, row: &Row) -> V {
        match e.kind() {
            ExprKind::Literal(l) => lit(l),
            ExprKind::Column(c) => match c.as_str() {
                "a" => row.a.map_or(V::Null, |v| V::Int(v.into())),
                "b" => row.b.map_or(V::Null, |v| V::Int(v.into())),
                "x" => row.x.map_or(V::Null, V::Float),
                "s" => row.s.map_or(V::Null, |v| V::Str(v.into())),
                "d" => row.d.map_or(V::Null, |v| V::Str(v.into())),
                "f" => row.f.map_or(V::Null, V::Bool),
                _ => unreachable!(),
            },
            ExprKind::Unary { op, operand } => match (op, naive(operand, row)) {
                (UnaryOp::Not, v) => kleene_not(&v),
                (UnaryOp::Neg, V::Int(v)) => V::Int(-v),
                (UnaryOp::Neg, V::Float(v)) => V::Float(-v),
                _ => V::Null,
            },
            ExprKind::Binary { op, left, right } => {
                let (l, r) = (naive(left, row), naive(right, row));
                match op {
                    BinaryOp::And => match (l, r) {
                        (V::Bool(false), _) | (_, V::Bool(false)) => V::Bool(false),
                        (V::Bool(true), V::Bool(true)) => V::Bool(true),
                        _ => V::Null,
                    },
                    BinaryOp::Or => match (l, r) {
                        (V::Bool(true), _) | (_, V::Bool(true)) => V::Bool(true),
                        (V::Bool(false), V::Bool(false)) => V::Bool(false),
                        _ => V::Null,
                    },
                    op if op.is_comparison() => match num_cmp(&l, &r) {
                        None => V::Null,
                        Some(o) => V::Bool(match op {
                            BinaryOp::Eq => o.is_eq(),
                            BinaryOp::NotEq => o.is_ne(),
                            BinaryOp::Lt => o.is_lt(),
                            BinaryOp::LtEq => o.is_le(),
                            BinaryOp::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }),
                    },
                    op => match (l, r) {
                        (V::Null, _) | (_, V::Null) => V::Null,
                        (V::Int(a), V::Int(b)) => match op {
                            BinaryOp::Add => V::Int(a + b),
                            BinaryOp::Sub => V::Int(a - b),
                            BinaryOp::Mul => V::Int(a * b),
                            _ if b == 0 => V::Null,
                            BinaryOp::Div => V::Int(a / b),
                            _ => V::Int(a % b),
                        },
                        (l, r) => {
                            let (a, b) = (as_f64(&l), as_f64(&r));
                            V::Float(match op {
                                BinaryOp::Add => a + b,
                                BinaryOp::Sub => a - b,
                                BinaryOp::Mul => a * b,
                                BinaryOp::Div => a / b,
                                _ => a % b,
                            })
                        }
                    },
                }
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => {
                let v = naive(operand, row);
                let found = if v == V::Null {
                    V::Null
                } else if list
                    .iter()
                    .any(|l| num_cmp(&v, &lit(l)).is_some_and(Ordering::is_eq))
                {
                    V::Bool(true)
                } else if list.contains(&Literal::Null) {
                    V::Null
                } else {
                    V::Bool(false)
                };
                if *negated {
                    kleene_not(&found)
                } else {
                    found
                }
            }
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let ge = |l: &Expr, r: &Expr| {
                    let bin = |op, l: &Expr, r: &Expr| {
                        Expr::new(ExprKind::Binary {
                            op,
                            left: Box::new(l.clone()),
                            right: Box::new(r.clone()),
                        })
                    };
                    bin(BinaryOp::GtEq, l, r)
                };
                let both = Expr::new(ExprKind::Binary {
                    op: BinaryOp::And,
                    left: Box::new(ge(operand, low)),
                    right: Box::new(ge(high, operand)),
                });
                let v = naive(&both, row);
                if *negated {
                    kleene_not(&v)
                } else {
                    v
                }
            }
            ExprKind::Call { function, args } => {
                let v: Vec<V> = args.iter().map(|a| naive(a, row)).collect();
                match (function, v.as_slice()) {
                    (Function::IsNull, [v]) => V::Bool(*v == V::Null),
                    (Function::IsNotNull, [v]) => V::Bool(*v != V::Null),
                    (Function::Abs, [V::Int(i)]) => V::Int(i.abs()),
                    (Function::Abs, [V::Float(f)]) => V::Float(f.abs()),
                    (Function::StartsWith, [V::Str(s), V::Str(p)]) => V::Bool(s.starts_with(p)),
                    (Function::EndsWith, [V::Str(s), V::Str(p)]) => V::Bool(s.ends_with(p)),
                    (Function::Contains, [V::Str(s), V::Str(p)]) => V::Bool(s.contains(p)),
                    _ => V::Null,
                }
            }
        }
    }

    // ---- Random rows and well-typed expressions ----

    fn row() -> impl Strategy<Value = Row> {
        let s = || prop::option::weighted(0.8, prop::sample::select(STRINGS.to_vec()));
        (
            prop::option::weighted(0.8, -20i64..20),
            prop::option::weighted(0.8, -5i32..5),
            prop::option::weighted(0.8, prop::sample::select(FLOATS.to_vec())),
            s(),
            prop::option::weighted(0.8, any::<bool>()),
            s(),
        )
            .prop_map(|(a, b, x, s, f, d)| Row { a, b, x, s, f, d })
    }

    fn e(kind: ExprKind) -> Expr {
        Expr::new(kind)
    }

    fn col(name: &str) -> Expr {
        e(ExprKind::Column(name.into()))
    }

    fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        e(ExprKind::Binary {
            op,
            left: Box::new(l),
            right: Box::new(r),
        })
    }

    fn num_literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            4 => (-3i128..10).prop_map(Literal::Int),
            2 => prop::sample::select(vec![0.5, 2.0, -1.5, 0.0, 7.25]).prop_map(Literal::Float),
            1 => Just(Literal::Null),
        ]
    }

    fn num() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            3 => prop::sample::select(vec!["a", "b", "x"]).prop_map(col),
            2 => num_literal().prop_map(|l| e(ExprKind::Literal(l))),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            let op = prop::sample::select(vec![
                BinaryOp::Add,
                BinaryOp::Sub,
                BinaryOp::Mul,
                BinaryOp::Div,
                BinaryOp::Rem,
            ]);
            prop_oneof![
                (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| bin(op, l, r)),
                inner.clone().prop_map(|x| e(ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand: Box::new(x)
                })),
                inner.prop_map(|x| e(ExprKind::Call {
                    function: Function::Abs,
                    args: vec![x]
                })),
            ]
        })
    }

    fn string() -> impl Strategy<Value = Expr> {
        prop_oneof![
            2 => prop::sample::select(vec!["s", "d"]).prop_map(col),
            1 => prop::sample::select(STRINGS.to_vec())
                .prop_map(|s| e(ExprKind::Literal(Literal::Str(s.into())))),
        ]
    }

    fn comparison() -> impl Strategy<Value = BinaryOp> {
        prop::sample::select(vec![
            BinaryOp::Eq,
            BinaryOp::NotEq,
            BinaryOp::Lt,
            BinaryOp::LtEq,
            BinaryOp::Gt,
            BinaryOp::GtEq,
        ])
    }

    fn predicate() -> impl Strategy<Value = Expr> {
        let str_lit = prop_oneof![
            4 => prop::sample::select(STRINGS.to_vec()).prop_map(|s| Literal::Str(s.into())),
            1 => Just(Literal::Null),
        ];
        let leaf = prop_oneof![
            (comparison(), num(), num()).prop_map(|(op, l, r)| bin(op, l, r)),
            (comparison(), string(), string()).prop_map(|(op, l, r)| bin(op, l, r)),
            Just(col("f")),
            prop::sample::select(vec![
                Literal::Bool(true),
                Literal::Bool(false),
                Literal::Null
            ])
            .prop_map(|l| e(ExprKind::Literal(l))),
            (
                num(),
                prop::collection::vec(num_literal(), 1..10),
                any::<bool>()
            )
                .prop_map(|(x, list, negated)| e(ExprKind::InList {
                    operand: Box::new(x),
                    list,
                    negated
                })),
            (
                string(),
                prop::collection::vec(str_lit, 1..10),
                any::<bool>()
            )
                .prop_map(|(x, list, negated)| e(ExprKind::InList {
                    operand: Box::new(x),
                    list,
                    negated
                })),
            (num(), num(), num(), any::<bool>()).prop_map(|(x, low, high, negated)| e(
                ExprKind::Between {
                    operand: Box::new(x),
                    low: Box::new(low),
                    high: Box::new(high),
                    negated
                }
            )),
            (
                prop::sample::select(vec![
                    Function::StartsWith,
                    Function::EndsWith,
                    Function::Contains
                ]),
                string(),
                string()
            )
                .prop_map(|(function, s, p)| e(ExprKind::Call {
                    function,
                    args: vec![s, p]
                })),
            (any::<bool>(), prop_oneof![num(), string(), Just(col("f"))]).prop_map(|(not, x)| e(
                ExprKind::Call {
                    function: if not {
                        Function::IsNotNull
                    } else {
                        Function::IsNull
                    },
                    args: vec![x]
                }
            )),
        ];
        leaf.prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| bin(BinaryOp::And, l, r)),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| bin(BinaryOp::Or, l, r)),
                inner.prop_map(|x| e(ExprKind::Unary {
                    op: UnaryOp::Not,
                    operand: Box::new(x)
                })),
            ]
        })
    }

    fn naive_mask(e: &Expr, rows: &[Row]) -> Vec<Option<bool>> {
        rows.iter()
            .map(|r| match naive(e, r) {
                V::Bool(b) => Some(b),
                V::Null => None,
                v => panic!("not a boolean: {v:?}"),
            })
            .collect()
    }

    #[test]
    fn smoke() {
        let rows = vec![
            Row {
                a: Some(3),
                b: None,
                x: Some(0.5),
                s: Some("ab"),
                f: Some(true),
                d: Some("b"),
            },
            Row {
                a: None,
                b: Some(1),
                x: Some(f64::NAN),
                s: None,
                f: None,
                d: None,
            },
        ];
        let e = Expr::parse(r#"a > 2 && starts_with(s, "a") || x == x && d is null"#).unwrap();
        let bound = e.bind_predicate(&schema()).unwrap();
        let got = bound.evaluate(&batch(&rows)).unwrap();
        let got: Vec<_> = got.as_boolean().iter().collect();
        assert_eq!(got, naive_mask(&e, &rows));
        assert_eq!(got, [Some(true), Some(true)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(768))]

        #[test]
        fn filter_mask_agrees_with_a_row_by_row_evaluator(
            e in predicate(),
            rows in prop::collection::vec(row(), 0..24),
        ) {
            // Through the text, so the parser is checked too.
            let text = e.to_string();
            let fail = |err: ExprError| TestCaseError::fail(format!("{text}: {err}"));
            let parsed = Expr::parse(&text).map_err(fail)?;
            let bound = parsed.bind_predicate(&schema()).map_err(fail)?;
            let batch = batch(&rows);
            let want = naive_mask(&e, &rows);

            let values = bound.evaluate(&batch).map_err(fail)?;
            let values: Vec<_> = values.as_boolean().iter().collect();
            prop_assert_eq!(&values, &want, "{}", text);

            let mask = bound.filter_mask(&batch).unwrap();
            prop_assert_eq!(mask.null_count(), 0);
            let mask: Vec<bool> = mask.iter().map(|m| m == Some(true)).collect();
            let want_mask: Vec<bool> = want.iter().map(|m| *m == Some(true)).collect();
            prop_assert_eq!(&mask, &want_mask, "{}", text);

            let kept = bound.filter(&batch).unwrap();
            prop_assert_eq!(kept.num_rows(), want_mask.iter().filter(|m| **m).count());
        }
    }
}
