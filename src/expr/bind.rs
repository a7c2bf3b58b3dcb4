//! Binding: columns resolved against a schema, types checked and conversions made explicit,
//! giving a [`BoundExpr`] ready to evaluate.

use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    new_null_array, Array, ArrayRef, BooleanArray, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, Int8Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
    UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::{DataType, Schema, TimeUnit};

use super::ast::{BinaryOp, Expr, ExprKind, Function, Literal, UnaryOp};
use super::eval::{prepare_column, retag, Node, ValueSet};
use super::{suggest, ExprError, MAX_DEPTH};

/// `in` lists up to this long are an `||` of `==` kernels, longer ones a hash set (see the
/// `in_list` group of `benches/expr_filter.rs`).
const SHORT_IN_LIST: usize = 4;

/// An expression bound to a schema: columns resolved, types checked, ready to evaluate.
///
/// Made by [`Expr::bind`] or [`Expr::bind_predicate`]. It holds the column indices and types
/// it was bound to, and evaluates batches of that schema (a batch whose columns are in
/// another order is fine: columns are found by name when their index does not match).
///
/// `Send + Sync`; cloning copies the tree (an `in` set is shared).
#[derive(Clone)]
pub struct BoundExpr {
    expr: Expr,
    node: Node,
    data_type: DataType,
    /// The columns read, in schema order; `Node::Column(slot)` indexes this.
    columns: Vec<BoundColumn>,
    names: Vec<String>,
    indices: Vec<usize>,
}

#[derive(Debug, Clone)]
struct BoundColumn {
    index: usize,
    name: String,
    data_type: DataType,
}

impl Expr {
    /// Binds the expression to `schema`: resolves the columns and checks the types.
    ///
    /// The type rules are in the [module docs](crate::expr#types). Constant parts are
    /// computed here, once.
    ///
    /// # Errors
    ///
    /// [`ExprError::UnknownColumn`] (with a suggestion when a column has a close name),
    /// [`ExprError::TypeMismatch`], [`ExprError::UnsupportedType`],
    /// [`ExprError::LiteralOutOfRange`], [`ExprError::WrongArgumentCount`] and
    /// [`ExprError::TooDeep`] (for trees built in code), or [`ExprError::Arrow`] if a
    /// constant part fails (`9223372036854775807 + 1`).
    ///
    /// # Examples
    ///
    /// ```
    /// use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::Expr;
    ///
    /// let schema = Schema::new(vec![
    ///     Field::new("Price", DataType::Float64, false),
    ///     Field::new("Size", DataType::Int32, false),
    /// ]);
    /// let notional = Expr::parse("Price * Size")?.bind(&schema)?;
    /// assert_eq!(notional.data_type(), &DataType::Float64);
    /// # Ok::<(), tickertable::ExprError>(())
    /// ```
    pub fn bind(&self, schema: &Schema) -> Result<BoundExpr, ExprError> {
        let mut binder = Binder {
            schema,
            columns: Vec::new(),
        };
        let (node, data_type) = match binder.bind(self)? {
            Typed::Lit(l) => {
                let dt = natural_type(&l, &DataType::Null, self)?;
                (Node::Const(materialize(&l, &dt, self)?), dt)
            }
            Typed::Node(node, dt) => (node, dt),
        };
        Ok(binder.finish(self.clone(), node, data_type))
    }

    /// Binds the expression to `schema` as a filter: like [`bind`](Expr::bind), and the
    /// expression must be boolean (`null` counts as a boolean null).
    ///
    /// # Errors
    ///
    /// Those of [`bind`](Expr::bind), and [`ExprError::NotAPredicate`] if the expression is
    /// not boolean.
    pub fn bind_predicate(&self, schema: &Schema) -> Result<BoundExpr, ExprError> {
        let mut bound = self.bind(schema)?;
        match bound.data_type {
            DataType::Boolean => Ok(bound),
            DataType::Null => {
                bound.node = Node::Const(Arc::new(BooleanArray::new_null(1)));
                bound.data_type = DataType::Boolean;
                Ok(bound)
            }
            _ => Err(ExprError::NotAPredicate {
                data_type: bound.data_type,
                position: self.span().start,
            }),
        }
    }
}

impl BoundExpr {
    /// The expression this was bound from.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The type of the expression's value.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// The names of the columns the expression reads, in schema order, each once.
    pub fn columns(&self) -> &[String] {
        &self.names
    }

    /// The schema indices of the columns the expression reads, in order, each once.
    pub fn column_indices(&self) -> &[usize] {
        &self.indices
    }

    /// Evaluates the expression over `batch`: an array of [`data_type`](Self::data_type),
    /// one value per row.
    ///
    /// Costs one kernel pass over the rows per operator.
    ///
    /// # Errors
    ///
    /// [`ExprError::MissingColumn`] or [`ExprError::ColumnType`] if `batch` does not have the
    /// columns the expression was bound to, [`ExprError::Arrow`] on integer overflow.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        let columns = self.resolve(batch)?;
        Ok(self.node.eval(&columns)?.into_array(batch.num_rows())?)
    }

    /// Evaluates the predicate over `batch`: true for the rows it keeps. A null counts as
    /// false, so the mask has no nulls.
    ///
    /// # Errors
    ///
    /// [`ExprError::NotAPredicate`] if the expression is not boolean, and those of
    /// [`evaluate`](Self::evaluate).
    pub fn filter_mask(&self, batch: &RecordBatch) -> Result<BooleanArray, ExprError> {
        if self.data_type != DataType::Boolean {
            return Err(ExprError::NotAPredicate {
                data_type: self.data_type.clone(),
                position: self.expr.span().start,
            });
        }
        let mask = self.evaluate(batch)?.as_boolean().clone();
        Ok(if mask.null_count() == 0 {
            mask
        } else {
            arrow_select::filter::prep_null_mask_filter(&mask)
        })
    }

    /// The rows of `batch` for which the predicate is true, via
    /// [`arrow_select::filter::filter_record_batch`].
    ///
    /// # Errors
    ///
    /// Those of [`filter_mask`](Self::filter_mask).
    pub fn filter(&self, batch: &RecordBatch) -> Result<RecordBatch, ExprError> {
        let mask = self.filter_mask(batch)?;
        Ok(arrow_select::filter::filter_record_batch(batch, &mask)?)
    }

    /// The bound columns of `batch`, in slot order.
    fn resolve(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>, ExprError> {
        let schema = batch.schema_ref();
        self.columns
            .iter()
            .map(|c| {
                let index = match schema.fields().get(c.index) {
                    Some(f) if *f.name() == c.name => c.index,
                    _ => schema
                        .index_of(&c.name)
                        .map_err(|_| ExprError::MissingColumn {
                            column: c.name.clone(),
                        })?,
                };
                let found = schema.field(index).data_type();
                if *found != c.data_type {
                    return Err(ExprError::ColumnType {
                        column: c.name.clone(),
                        expected: c.data_type.clone(),
                        found: found.clone(),
                    });
                }
                Ok(prepare_column(batch.column(index))?)
            })
            .collect()
    }
}

impl fmt::Debug for BoundExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundExpr")
            .field("expr", &self.expr.to_string())
            .field("data_type", &self.data_type)
            .field("columns", &self.names)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for BoundExpr {
    /// The expression's canonical text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}

/// A bound operand: a literal whose type is still open, or a typed node.
#[derive(Clone)]
enum Typed {
    Lit(Literal),
    Node(Node, DataType),
}

struct Binder<'a> {
    schema: &'a Schema,
    columns: Vec<BoundColumn>,
}

impl Binder<'_> {
    /// The bound expression, with its columns sorted into schema order.
    fn finish(self, expr: Expr, mut node: Node, data_type: DataType) -> BoundExpr {
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by_key(|&slot| self.columns[slot].index);
        // new_slot[old slot] = position in schema order.
        let mut new_slot = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_slot[old] = new;
        }
        renumber(&mut node, &new_slot);
        let columns: Vec<BoundColumn> = order
            .iter()
            .map(|&slot| self.columns[slot].clone())
            .collect();
        BoundExpr {
            expr,
            node,
            data_type,
            names: columns.iter().map(|c| c.name.clone()).collect(),
            indices: columns.iter().map(|c| c.index).collect(),
            columns,
        }
    }

    /// Binds `e` and its subtree.
    ///
    /// Recursion is one small frame here plus one in the per-kind method, so that
    /// [`MAX_DEPTH`] levels fit a thread's stack even in debug builds.
    fn bind(&mut self, e: &Expr) -> Result<Typed, ExprError> {
        if e.depth() > MAX_DEPTH {
            return Err(ExprError::TooDeep {
                limit: MAX_DEPTH,
                position: e.op_span().start,
            });
        }
        match e.kind() {
            ExprKind::Literal(l) => Ok(Typed::Lit(l.clone())),
            ExprKind::Column(name) => self.column(name, e),
            ExprKind::Unary { op, operand } => self.bind_unary(*op, operand, e),
            ExprKind::Binary { op, left, right } => self.bind_binary(*op, left, right, e),
            ExprKind::InList {
                operand,
                list,
                negated,
            } => self.bind_in_list(operand, list, *negated, e),
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => self.bind_between(operand, low, high, *negated, e),
            ExprKind::Call { function, args } => self.bind_call(*function, args, e),
        }
    }

    #[inline(never)]
    fn bind_unary(&mut self, op: UnaryOp, operand: &Expr, e: &Expr) -> Result<Typed, ExprError> {
        let operand = self.bind(operand)?;
        match op {
            UnaryOp::Not => not(operand, e),
            UnaryOp::Neg => negate(operand, e),
        }
    }

    #[inline(never)]
    fn bind_binary(
        &mut self,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
        e: &Expr,
    ) -> Result<Typed, ExprError> {
        let l = self.bind(left)?;
        let r = self.bind(right)?;
        binary(op, l, r, e)
    }

    #[inline(never)]
    fn bind_in_list(
        &mut self,
        operand: &Expr,
        list: &[Literal],
        negated: bool,
        e: &Expr,
    ) -> Result<Typed, ExprError> {
        let operand = self.bind(operand)?;
        let found = in_list(operand, list, e)?;
        if negated {
            not(found, e)
        } else {
            Ok(found)
        }
    }

    #[inline(never)]
    fn bind_between(
        &mut self,
        operand: &Expr,
        low: &Expr,
        high: &Expr,
        negated: bool,
        e: &Expr,
    ) -> Result<Typed, ExprError> {
        let x = self.bind(operand)?;
        let low = self.bind(low)?;
        let high = self.bind(high)?;
        between(x, low, high, negated, e)
    }

    #[inline(never)]
    fn bind_call(
        &mut self,
        function: Function,
        args: &[Expr],
        e: &Expr,
    ) -> Result<Typed, ExprError> {
        if args.len() != function.arity() {
            return Err(ExprError::WrongArgumentCount {
                function: function.name(),
                expected: function.arity(),
                found: args.len(),
                position: e.op_span().start,
            });
        }
        let mut bound = Vec::with_capacity(args.len());
        for a in args {
            bound.push(self.bind(a)?);
        }
        call(function, bound, e)
    }

    fn column(&mut self, name: &str, e: &Expr) -> Result<Typed, ExprError> {
        let Ok(index) = self.schema.index_of(name) else {
            let names = self.schema.fields().iter().map(|f| f.name().as_str());
            return Err(ExprError::UnknownColumn {
                column: name.to_owned(),
                position: e.span().start,
                suggestion: suggest(name, names).map(str::to_owned),
            });
        };
        let data_type = self.schema.field(index).data_type().clone();
        let slot = match self.columns.iter().position(|c| c.index == index) {
            Some(slot) => slot,
            None => {
                self.columns.push(BoundColumn {
                    index,
                    name: name.to_owned(),
                    data_type: data_type.clone(),
                });
                self.columns.len() - 1
            }
        };
        Ok(Typed::Node(Node::Column(slot), data_type))
    }
}

/// `l op r` for any binary operator.
fn binary(op: BinaryOp, l: Typed, r: Typed, e: &Expr) -> Result<Typed, ExprError> {
    match op {
        BinaryOp::And | BinaryOp::Or => logic(op, l, r, e),
        op if op.is_comparison() => compare(op, l, r, e),
        op => arithmetic(op, l, r, e),
    }
}

/// `x between low and high` as `x >= low && x <= high`, or `not between` as
/// `x < low || x > high`.
fn between(x: Typed, low: Typed, high: Typed, negated: bool, e: &Expr) -> Result<Typed, ExprError> {
    if negated {
        let below = compare(BinaryOp::Lt, x.clone(), low, e)?;
        let above = compare(BinaryOp::Gt, x, high, e)?;
        logic(BinaryOp::Or, below, above, e)
    } else {
        let above = compare(BinaryOp::GtEq, x.clone(), low, e)?;
        let below = compare(BinaryOp::LtEq, x, high, e)?;
        logic(BinaryOp::And, above, below, e)
    }
}

/// A call of `function` on bound arguments (as many as it takes).
fn call(function: Function, args: Vec<Typed>, e: &Expr) -> Result<Typed, ExprError> {
    let mut args = args.into_iter();
    let (Some(first), second) = (args.next(), args.next()) else {
        unreachable!("invariant: the arity was checked")
    };
    match (function, second) {
        (Function::IsNull | Function::IsNotNull, _) => {
            is_null(first, function == Function::IsNotNull)
        }
        (Function::Abs, _) => abs(first, e),
        (_, Some(second)) => strings(function, first, second, e),
        (_, None) => unreachable!("invariant: the arity was checked"),
    }
}

/// Renumbers the column slots of `node` by `new_slot`.
fn renumber(node: &mut Node, new_slot: &[usize]) {
    match node {
        Node::Column(slot) => *slot = new_slot[*slot],
        Node::Const(_) => {}
        Node::Cast(n, _)
        | Node::Retag(n, _)
        | Node::Not(n)
        | Node::Neg(n)
        | Node::Abs(n)
        | Node::IsNull(n, _)
        | Node::InSet { operand: n, .. } => renumber(n, new_slot),
        Node::Compare(_, l, r)
        | Node::Arith(_, l, r)
        | Node::And(l, r)
        | Node::Or(l, r)
        | Node::Strings(_, l, r) => {
            renumber(l, new_slot);
            renumber(r, new_slot);
        }
    }
}

/// `node` of type `dt`, computed now if its inputs are constants.
fn done(node: Node, dt: DataType) -> Result<Typed, ExprError> {
    Ok(Typed::Node(fold(node)?, dt))
}

/// `node`, computed now if its inputs are constants.
fn fold(node: Node) -> Result<Node, ExprError> {
    if node.is_const() || !node.children_are_const() {
        return Ok(node);
    }
    let value = node.eval(&[])?.into_array(1)?;
    Ok(Node::Const(value))
}

// ---- Types --------------------------------------------------------------------------------

fn is_signed(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn is_unsigned(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
    )
}

fn is_float(dt: &DataType) -> bool {
    matches!(dt, DataType::Float32 | DataType::Float64)
}

fn is_numeric(dt: &DataType) -> bool {
    is_signed(dt) || is_unsigned(dt) || is_float(dt)
}

fn is_string(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_temporal(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Timestamp(..)
            | DataType::Date32
            | DataType::Date64
            | DataType::Time32(_)
            | DataType::Time64(_)
            | DataType::Duration(_)
    )
}

/// A dictionary's value type, or `dt`.
fn value_type(dt: &DataType) -> &DataType {
    match dt {
        DataType::Dictionary(_, v) => v,
        dt => dt,
    }
}

/// Bits of an integer type.
fn int_width(dt: &DataType) -> u32 {
    match dt {
        DataType::Int8 | DataType::UInt8 => 8,
        DataType::Int16 | DataType::UInt16 => 16,
        DataType::Int32 | DataType::UInt32 => 32,
        _ => 64,
    }
}

fn signed_of_width(bits: u32) -> DataType {
    match bits {
        8 => DataType::Int8,
        16 => DataType::Int16,
        32 => DataType::Int32,
        _ => DataType::Int64,
    }
}

/// The type two numeric types compare in.
fn common_numeric(a: &DataType, b: &DataType) -> DataType {
    if a == b {
        return a.clone();
    }
    if is_float(a) || is_float(b) {
        return DataType::Float64;
    }
    let (wa, wb) = (int_width(a), int_width(b));
    match (is_signed(a), is_signed(b)) {
        (true, true) => signed_of_width(wa.max(wb)),
        (false, false) if wa >= wb => a.clone(),
        (false, false) => b.clone(),
        (signed_a, _) => {
            let (ws, wu) = if signed_a { (wa, wb) } else { (wb, wa) };
            if wu < ws {
                signed_of_width(ws)
            } else if wu < 64 {
                signed_of_width(wu * 2)
            } else {
                DataType::Float64
            }
        }
    }
}

/// The type arithmetic on two numeric types is computed in.
fn arithmetic_type(a: &DataType, b: &DataType) -> DataType {
    let c = common_numeric(a, b);
    if is_float(&c) {
        DataType::Float64
    } else if is_unsigned(&c) {
        DataType::UInt64
    } else {
        DataType::Int64
    }
}

/// The finer of two time units.
fn finer(a: TimeUnit, b: TimeUnit) -> TimeUnit {
    fn rank(u: TimeUnit) -> u8 {
        match u {
            TimeUnit::Second => 0,
            TimeUnit::Millisecond => 1,
            TimeUnit::Microsecond => 2,
            TimeUnit::Nanosecond => 3,
        }
    }
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// The types the two sides of a comparison are converted to (`None`: kept as they are), or
/// `None` if they do not compare.
fn comparison_types(a: &DataType, b: &DataType) -> Option<(Option<DataType>, Option<DataType>)> {
    let (va, vb) = (value_type(a), value_type(b));
    let to =
        |from: &DataType, target: &DataType| (value_type(from) != target).then(|| target.clone());
    if va == vb {
        return (!va.is_nested()).then_some((None, None));
    }
    if *va == DataType::Null {
        return Some((Some(vb.clone()), None));
    }
    if *vb == DataType::Null {
        return Some((None, Some(va.clone())));
    }
    if is_numeric(va) && is_numeric(vb) {
        let c = common_numeric(va, vb);
        return Some((to(a, &c), to(b, &c)));
    }
    if is_string(va) && is_string(vb) {
        let c = if *va == DataType::LargeUtf8 || *vb == DataType::LargeUtf8 {
            DataType::LargeUtf8
        } else {
            DataType::Utf8
        };
        return Some((to(a, &c), to(b, &c)));
    }
    match (va, vb) {
        (DataType::Timestamp(ua, za), DataType::Timestamp(ub, zb)) => {
            let zone = if za == zb { za.clone() } else { None };
            let c = DataType::Timestamp(finer(*ua, *ub), zone);
            Some((to(a, &c), to(b, &c)))
        }
        (DataType::Date32, DataType::Date64) | (DataType::Date64, DataType::Date32) => {
            Some((to(a, &DataType::Date64), to(b, &DataType::Date64)))
        }
        (t, i) if is_temporal(t) && (is_signed(i) || is_unsigned(i)) => Some((None, to(b, t))),
        (i, t) if is_temporal(t) && (is_signed(i) || is_unsigned(i)) => Some((to(a, t), None)),
        _ => None,
    }
}

/// `node` of type `from` converted to `to`.
fn convert(node: Node, from: &DataType, to: &DataType) -> Result<Node, ExprError> {
    if from == to {
        return Ok(node);
    }
    let node = match (value_type(from), to) {
        (DataType::Timestamp(uf, zf), DataType::Timestamp(ut, zt)) => {
            let mut n = node;
            if from != value_type(from) || uf != ut {
                n = Node::Cast(Box::new(n), DataType::Timestamp(*ut, zf.clone()));
            }
            if zf != zt {
                n = Node::Retag(Box::new(n), to.clone());
            }
            n
        }
        (f, t) if is_temporal(t) && (is_signed(f) || is_unsigned(f)) => {
            let native = match t {
                DataType::Date32 | DataType::Time32(_) => DataType::Int32,
                _ => DataType::Int64,
            };
            let n = if *from == native {
                node
            } else {
                Node::Cast(Box::new(node), native)
            };
            Node::Retag(Box::new(n), to.clone())
        }
        _ => Node::Cast(Box::new(node), to.clone()),
    };
    fold(node)
}

// ---- Literals -----------------------------------------------------------------------------

/// The type a literal takes when the other side gives it none that fits exactly.
fn natural_type(l: &Literal, other: &DataType, e: &Expr) -> Result<DataType, ExprError> {
    Ok(match l {
        Literal::Null => match other {
            DataType::Null => DataType::Null,
            other => value_type(other).clone(),
        },
        Literal::Bool(_) => DataType::Boolean,
        Literal::Int(v) => {
            if *v >= 0 && *value_type(other) == DataType::UInt64 && u64::try_from(*v).is_ok() {
                DataType::UInt64
            } else if i64::try_from(*v).is_ok() {
                DataType::Int64
            } else if u64::try_from(*v).is_ok() {
                DataType::UInt64
            } else {
                return Err(ExprError::LiteralOutOfRange {
                    value: *v,
                    position: e.op_span().start,
                });
            }
        }
        Literal::Float(_) => DataType::Float64,
        Literal::Str(_) => DataType::Utf8,
    })
}

/// The literal as a one-row array of `dt`, if it is exactly a value of `dt`.
fn coerce(l: &Literal, dt: &DataType) -> Option<ArrayRef> {
    fn one<T: Array + 'static>(a: T) -> Option<ArrayRef> {
        Some(Arc::new(a))
    }
    let dt = value_type(dt);
    match (l, dt) {
        (Literal::Null, dt) => Some(new_null_array(dt, 1)),
        (Literal::Bool(b), DataType::Boolean) => one(BooleanArray::from(vec![*b])),
        (Literal::Int(v), dt) => {
            let v = *v;
            match dt {
                DataType::Int8 => one(Int8Array::from(vec![i8::try_from(v).ok()?])),
                DataType::Int16 => one(Int16Array::from(vec![i16::try_from(v).ok()?])),
                DataType::Int32 => one(Int32Array::from(vec![i32::try_from(v).ok()?])),
                DataType::Int64 => one(Int64Array::from(vec![i64::try_from(v).ok()?])),
                DataType::UInt8 => one(UInt8Array::from(vec![u8::try_from(v).ok()?])),
                DataType::UInt16 => one(UInt16Array::from(vec![u16::try_from(v).ok()?])),
                DataType::UInt32 => one(UInt32Array::from(vec![u32::try_from(v).ok()?])),
                DataType::UInt64 => one(UInt64Array::from(vec![u64::try_from(v).ok()?])),
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                DataType::Float32 => {
                    let f = v as f32;
                    (fits_64_bits(v) && f as i128 == v)
                        .then(|| Arc::new(Float32Array::from(vec![f])) as ArrayRef)
                }
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                DataType::Float64 => {
                    let f = v as f64;
                    (fits_64_bits(v) && f as i128 == v)
                        .then(|| Arc::new(Float64Array::from(vec![f])) as ArrayRef)
                }
                DataType::Date32 | DataType::Time32(_) => {
                    let a: ArrayRef = Arc::new(Int32Array::from(vec![i32::try_from(v).ok()?]));
                    retag(&a, dt).ok()
                }
                dt if is_temporal(dt) => {
                    let a: ArrayRef = Arc::new(Int64Array::from(vec![i64::try_from(v).ok()?]));
                    retag(&a, dt).ok()
                }
                _ => None,
            }
        }
        (Literal::Float(v), DataType::Float64) => one(Float64Array::from(vec![*v])),
        #[allow(clippy::cast_possible_truncation)]
        (Literal::Float(v), DataType::Float32) => {
            let f = *v as f32;
            (f64::from(f) == *v).then(|| Arc::new(Float32Array::from(vec![f])) as ArrayRef)
        }
        (Literal::Float(v), dt) if is_signed(dt) || is_unsigned(dt) || is_temporal(dt) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let i = *v as i128;
            #[allow(clippy::cast_precision_loss)]
            // -0.0 is not 0: floats compare in total order, where -0.0 < 0.0.
            let exact = v.fract() == 0.0 && i as f64 == *v && !(i == 0 && v.is_sign_negative());
            if exact {
                coerce(&Literal::Int(i), dt)
            } else {
                None
            }
        }
        (Literal::Str(s), DataType::Utf8) => one(StringArray::from(vec![s.as_str()])),
        (Literal::Str(s), DataType::LargeUtf8) => one(LargeStringArray::from(vec![s.as_str()])),
        (Literal::Str(s), DataType::Utf8View) => one(StringViewArray::from(vec![s.as_str()])),
        _ => None,
    }
}

/// Whether `v` is an `i64` or a `u64` (so a float of it does not saturate).
fn fits_64_bits(v: i128) -> bool {
    i64::try_from(v).is_ok() || u64::try_from(v).is_ok()
}

/// The literal as a one-row array of `dt`, which is its natural type.
fn materialize(l: &Literal, dt: &DataType, e: &Expr) -> Result<ArrayRef, ExprError> {
    coerce(l, dt).ok_or_else(|| match l {
        Literal::Int(v) => ExprError::LiteralOutOfRange {
            value: *v,
            position: e.op_span().start,
        },
        _ => unreachable!("invariant: a literal is a value of its natural type"),
    })
}

/// `t` as a typed node, giving a literal its natural type.
fn typed(t: Typed, e: &Expr) -> Result<(Node, DataType), ExprError> {
    match t {
        Typed::Node(n, dt) => Ok((n, dt)),
        Typed::Lit(l) => {
            let dt = natural_type(&l, &DataType::Null, e)?;
            Ok((Node::Const(materialize(&l, &dt, e)?), dt))
        }
    }
}

/// The display name of a literal's type, for errors.
fn literal_type(l: &Literal) -> DataType {
    match l {
        Literal::Null => DataType::Null,
        Literal::Bool(_) => DataType::Boolean,
        Literal::Int(_) => DataType::Int64,
        Literal::Float(_) => DataType::Float64,
        Literal::Str(_) => DataType::Utf8,
    }
}

fn type_of(t: &Typed) -> DataType {
    match t {
        Typed::Node(_, dt) => dt.clone(),
        Typed::Lit(l) => literal_type(l),
    }
}

// ---- Operators ----------------------------------------------------------------------------

fn mismatch(operator: &'static str, l: &Typed, r: &Typed, e: &Expr) -> ExprError {
    ExprError::TypeMismatch {
        operator,
        left: type_of(l),
        right: type_of(r),
        position: e.op_span().start,
    }
}

fn unsupported(operator: &'static str, t: &Typed, e: &Expr) -> ExprError {
    ExprError::UnsupportedType {
        operator,
        data_type: type_of(t),
        position: e.op_span().start,
    }
}

/// A boolean operand of `operator`.
fn boolean(t: Typed, operator: &'static str, e: &Expr) -> Result<Node, ExprError> {
    match t {
        Typed::Lit(Literal::Bool(b)) => Ok(Node::Const(Arc::new(BooleanArray::from(vec![b])))),
        Typed::Lit(Literal::Null) | Typed::Node(_, DataType::Null) => {
            Ok(Node::Const(Arc::new(BooleanArray::new_null(1))))
        }
        Typed::Node(n, DataType::Boolean) => Ok(n),
        t => Err(unsupported(operator, &t, e)),
    }
}

fn not(t: Typed, e: &Expr) -> Result<Typed, ExprError> {
    let n = boolean(t, "!", e)?;
    done(Node::Not(Box::new(n)), DataType::Boolean)
}

fn logic(op: BinaryOp, l: Typed, r: Typed, e: &Expr) -> Result<Typed, ExprError> {
    let (l, r) = (boolean(l, op.symbol(), e)?, boolean(r, op.symbol(), e)?);
    let node = match op {
        BinaryOp::And => Node::And(Box::new(l), Box::new(r)),
        _ => Node::Or(Box::new(l), Box::new(r)),
    };
    done(node, DataType::Boolean)
}

/// The two sides of a comparison-like operator as nodes of one type (or a dictionary of it),
/// literals converted exactly where they fit.
fn unify(
    operator: &'static str,
    l: Typed,
    r: Typed,
    e: &Expr,
) -> Result<(Node, Node, DataType), ExprError> {
    match (l, r) {
        (Typed::Lit(Literal::Null), Typed::Lit(b)) => {
            // The null takes the other literal's type.
            let (n, dt) = typed(Typed::Lit(b), e)?;
            unify(operator, Typed::Lit(Literal::Null), Typed::Node(n, dt), e)
        }
        (Typed::Lit(a), Typed::Lit(b)) => {
            let (n, dt) = typed(Typed::Lit(a), e)?;
            unify(operator, Typed::Node(n, dt), Typed::Lit(b), e)
        }
        (Typed::Node(n, dt), Typed::Lit(lit)) => {
            if let Some(c) = coerce(&lit, &dt) {
                let vt = value_type(&dt).clone();
                return Ok((n, Node::Const(c), vt));
            }
            let nt = natural_type(&lit, &dt, e)?;
            let c = Node::Const(materialize(&lit, &nt, e)?);
            unify(operator, Typed::Node(n, dt), Typed::Node(c, nt), e)
        }
        (Typed::Lit(lit), Typed::Node(n, dt)) => {
            let (rn, ln, vt) = unify(operator, Typed::Node(n, dt), Typed::Lit(lit), e)?;
            Ok((ln, rn, vt))
        }
        (Typed::Node(ln, lt), Typed::Node(rn, rt)) => {
            let Some((to_l, to_r)) = comparison_types(&lt, &rt) else {
                return Err(mismatch(
                    operator,
                    &Typed::Node(ln, lt),
                    &Typed::Node(rn, rt),
                    e,
                ));
            };
            let vt = to_l.clone().unwrap_or_else(|| value_type(&lt).clone());
            let ln = match &to_l {
                Some(t) => convert(ln, &lt, t)?,
                None => ln,
            };
            let rn = match &to_r {
                Some(t) => convert(rn, &rt, t)?,
                None => rn,
            };
            Ok((ln, rn, vt))
        }
    }
}

fn compare(op: BinaryOp, l: Typed, r: Typed, e: &Expr) -> Result<Typed, ExprError> {
    if matches!(
        (&l, &r),
        (Typed::Lit(Literal::Null), Typed::Lit(Literal::Null))
    ) {
        return Ok(Typed::Node(
            Node::Const(Arc::new(BooleanArray::new_null(1))),
            DataType::Boolean,
        ));
    }
    let (ln, rn, _) = unify(op.symbol(), l, r, e)?;
    done(
        Node::Compare(op, Box::new(ln), Box::new(rn)),
        DataType::Boolean,
    )
}

fn arithmetic(op: BinaryOp, l: Typed, r: Typed, e: &Expr) -> Result<Typed, ExprError> {
    let rt = match &r {
        Typed::Node(_, dt) => Some(value_type(dt).clone()),
        Typed::Lit(_) => None,
    };
    // A literal takes its natural type next to the other side's.
    let side = |t: Typed, other: &Option<DataType>| -> Result<(Node, DataType), ExprError> {
        match t {
            Typed::Lit(Literal::Null) => {
                let dt = other.clone().unwrap_or(DataType::Int64);
                Ok((Node::Const(new_null_array(&dt, 1)), dt))
            }
            Typed::Lit(lit) => {
                let dt = natural_type(&lit, other.as_ref().unwrap_or(&DataType::Null), e)?;
                Ok((Node::Const(materialize(&lit, &dt, e)?), dt))
            }
            Typed::Node(n, dt) => Ok((n, dt)),
        }
    };
    let (l_view, r_view) = (l.clone(), r.clone());
    let (ln, lt) = side(l, &rt)?;
    let (rn, rt) = side(r, &Some(lt.clone()))?;
    if !is_numeric(value_type(&lt)) || !is_numeric(value_type(&rt)) {
        return Err(mismatch(op.symbol(), &l_view, &r_view, e));
    }
    let target = arithmetic_type(value_type(&lt), value_type(&rt));
    let ln = convert(ln, &lt, &target)?;
    let rn = convert(rn, &rt, &target)?;
    done(Node::Arith(op, Box::new(ln), Box::new(rn)), target)
}

fn negate(t: Typed, e: &Expr) -> Result<Typed, ExprError> {
    match t {
        Typed::Lit(Literal::Int(v)) => v.checked_neg().map(|v| Typed::Lit(Literal::Int(v))).ok_or(
            ExprError::LiteralOutOfRange {
                value: v,
                position: e.op_span().start,
            },
        ),
        Typed::Lit(Literal::Float(v)) => Ok(Typed::Lit(Literal::Float(-v))),
        Typed::Lit(Literal::Null) => Ok(Typed::Lit(Literal::Null)),
        Typed::Node(n, dt) if is_numeric(value_type(&dt)) => {
            let target = if is_float(value_type(&dt)) {
                DataType::Float64
            } else {
                DataType::Int64
            };
            let n = convert(n, &dt, &target)?;
            done(Node::Neg(Box::new(n)), target)
        }
        t => Err(unsupported("-", &t, e)),
    }
}

fn abs(t: Typed, e: &Expr) -> Result<Typed, ExprError> {
    match t {
        Typed::Lit(Literal::Int(v)) => v.checked_abs().map(|v| Typed::Lit(Literal::Int(v))).ok_or(
            ExprError::LiteralOutOfRange {
                value: v,
                position: e.op_span().start,
            },
        ),
        Typed::Lit(Literal::Float(v)) => Ok(Typed::Lit(Literal::Float(v.abs()))),
        Typed::Lit(Literal::Null) => Ok(Typed::Lit(Literal::Null)),
        Typed::Node(n, dt) if is_numeric(value_type(&dt)) => {
            let vt = value_type(&dt);
            let target = arithmetic_type(vt, vt);
            let n = convert(n, &dt, &target)?;
            done(Node::Abs(Box::new(n)), target)
        }
        t => Err(unsupported("abs", &t, e)),
    }
}

fn is_null(t: Typed, negated: bool) -> Result<Typed, ExprError> {
    let node = match t {
        Typed::Lit(l) => Node::Const(Arc::new(BooleanArray::from(vec![
            (l == Literal::Null) != negated,
        ]))),
        Typed::Node(n, _) => Node::IsNull(Box::new(n), negated),
    };
    done(node, DataType::Boolean)
}

fn strings(f: Function, s: Typed, part: Typed, e: &Expr) -> Result<Typed, ExprError> {
    let operator = f.name();
    let string_like = |t: &Typed| match t {
        Typed::Lit(l) => matches!(l, Literal::Str(_) | Literal::Null),
        Typed::Node(_, dt) => is_string(value_type(dt)) || *dt == DataType::Null,
    };
    if !string_like(&s) || !string_like(&part) {
        return Err(mismatch(operator, &s, &part, e));
    }
    let null = |t: &Typed| match t {
        Typed::Lit(l) => *l == Literal::Null,
        Typed::Node(_, dt) => *dt == DataType::Null,
    };
    if null(&s) || null(&part) {
        return Ok(Typed::Node(
            Node::Const(Arc::new(BooleanArray::new_null(1))),
            DataType::Boolean,
        ));
    }
    let (sn, pn, _) = unify(operator, s, part, e)?;
    done(
        Node::Strings(f, Box::new(sn), Box::new(pn)),
        DataType::Boolean,
    )
}

fn in_list(operand: Typed, list: &[Literal], e: &Expr) -> Result<Typed, ExprError> {
    if matches!(operand, Typed::Lit(Literal::Null)) {
        return Ok(Typed::Node(
            Node::Const(Arc::new(BooleanArray::new_null(1))),
            DataType::Boolean,
        ));
    }
    let (n, dt) = typed(operand, e)?;
    let vt = value_type(&dt).clone();
    let mut has_null = false;
    let mut values = Vec::with_capacity(list.len());
    for lit in list {
        if *lit == Literal::Null {
            has_null = true;
            continue;
        }
        if let Some(c) = coerce(lit, &vt) {
            values.push(c);
            continue;
        }
        let number = matches!(lit, Literal::Int(_) | Literal::Float(_));
        let numeric_operand = is_numeric(&vt) || is_temporal(&vt);
        if !(number && numeric_operand) {
            return Err(ExprError::TypeMismatch {
                operator: "in",
                left: dt,
                right: literal_type(lit),
                position: e.op_span().start,
            });
        }
        // A number the operand's type cannot hold exactly never equals one of its values.
    }
    let set = ValueSet::for_type(&vt);
    let short = values.len() + usize::from(has_null) <= SHORT_IN_LIST && !values.is_empty();
    if short || set.is_none() {
        // An `||` of `==`: `null` in the list makes a non-match null, as SQL's `in` does.
        let mut eqs = values
            .into_iter()
            .map(Node::Const)
            .chain(has_null.then(|| Node::Const(new_null_array(&vt, 1))))
            .map(|c| Node::Compare(BinaryOp::Eq, Box::new(n.clone()), Box::new(c)));
        let Some(first) = eqs.next() else {
            return Err(ExprError::UnsupportedType {
                operator: "in",
                data_type: dt,
                position: e.op_span().start,
            });
        };
        let mut node = fold(first)?;
        for eq in eqs {
            node = fold(Node::Or(Box::new(node), Box::new(fold(eq)?)))?;
        }
        return Ok(Typed::Node(node, DataType::Boolean));
    }
    let mut set = set.expect("invariant: checked above");
    for v in &values {
        set.insert(v)?;
    }
    done(
        Node::InSet {
            operand: Box::new(n),
            set: Arc::new(set),
            has_null,
        },
        DataType::Boolean,
    )
}
