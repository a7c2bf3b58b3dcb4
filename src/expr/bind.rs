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
use super::error::{suggest, ExprError, MAX_DEPTH};
use super::eval::{prepare_column, retag, Node, ValueSet};

/// `in` lists up to this long are an `||` of `==` kernels, longer ones a hash set. Measured
/// with the `in_list` group of `benches/expr_filter.rs` on 1M rows: an `==` costs about 1 ms
/// on an `Int64` column and 4 ms on a `Utf8` one, a hash-set lookup 4 ms and 9 ms.
const SHORT_IN_LIST: usize = 4;

/// The same for strings.
const SHORT_IN_LIST_STRINGS: usize = 2;

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
                Ok(prepare_column(batch.column(index)))
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
        let slot = if let Some(slot) = self.columns.iter().position(|c| c.index == index) {
            slot
        } else {
            self.columns.push(BoundColumn {
                index,
                name: name.to_owned(),
                data_type: data_type.clone(),
            });
            self.columns.len() - 1
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
    fn one<T: Array + 'static>(a: T) -> ArrayRef {
        Arc::new(a)
    }
    let dt = value_type(dt);
    match (l, dt) {
        (Literal::Null, dt) => Some(new_null_array(dt, 1)),
        (Literal::Bool(b), DataType::Boolean) => Some(one(BooleanArray::from(vec![*b]))),
        (Literal::Int(v), dt) => {
            let v = *v;
            match dt {
                DataType::Int8 => Some(one(Int8Array::from(vec![i8::try_from(v).ok()?]))),
                DataType::Int16 => Some(one(Int16Array::from(vec![i16::try_from(v).ok()?]))),
                DataType::Int32 => Some(one(Int32Array::from(vec![i32::try_from(v).ok()?]))),
                DataType::Int64 => Some(one(Int64Array::from(vec![i64::try_from(v).ok()?]))),
                DataType::UInt8 => Some(one(UInt8Array::from(vec![u8::try_from(v).ok()?]))),
                DataType::UInt16 => Some(one(UInt16Array::from(vec![u16::try_from(v).ok()?]))),
                DataType::UInt32 => Some(one(UInt32Array::from(vec![u32::try_from(v).ok()?]))),
                DataType::UInt64 => Some(one(UInt64Array::from(vec![u64::try_from(v).ok()?]))),
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
        (Literal::Float(v), DataType::Float64) => Some(one(Float64Array::from(vec![*v]))),
        // Exactness is the point of these comparisons.
        #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
        (Literal::Float(v), DataType::Float32) => {
            let f = *v as f32;
            (f64::from(f) == *v).then(|| Arc::new(Float32Array::from(vec![f])) as ArrayRef)
        }
        (Literal::Float(v), dt) if is_signed(dt) || is_unsigned(dt) || is_temporal(dt) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            let i = *v as i128;
            // -0.0 is not 0: floats compare in total order, where -0.0 < 0.0.
            #[allow(clippy::cast_precision_loss, clippy::float_cmp)]
            let exact = v.fract() == 0.0 && i as f64 == *v && !(i == 0 && v.is_sign_negative());
            if exact {
                coerce(&Literal::Int(i), dt)
            } else {
                None
            }
        }
        (Literal::Str(s), DataType::Utf8) => Some(one(StringArray::from(vec![s.as_str()]))),
        (Literal::Str(s), DataType::LargeUtf8) => {
            Some(one(LargeStringArray::from(vec![s.as_str()])))
        }
        (Literal::Str(s), DataType::Utf8View) => Some(one(StringViewArray::from(vec![s.as_str()]))),
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
    left: Typed,
    right: Typed,
    expr: &Expr,
) -> Result<(Node, Node, DataType), ExprError> {
    match (left, right) {
        (Typed::Lit(Literal::Null), Typed::Lit(other)) => {
            // The null takes the other literal's type.
            let (n, dt) = typed(Typed::Lit(other), expr)?;
            unify(
                operator,
                Typed::Lit(Literal::Null),
                Typed::Node(n, dt),
                expr,
            )
        }
        (Typed::Lit(lit_a), Typed::Lit(other)) => {
            let (n, dt) = typed(Typed::Lit(lit_a), expr)?;
            unify(operator, Typed::Node(n, dt), Typed::Lit(other), expr)
        }
        (Typed::Node(n, dt), Typed::Lit(lit)) => {
            if let Some(c) = coerce(&lit, &dt) {
                let vt = value_type(&dt).clone();
                return Ok((n, Node::Const(c), vt));
            }
            let nt = natural_type(&lit, &dt, expr)?;
            let c = Node::Const(materialize(&lit, &nt, expr)?);
            unify(operator, Typed::Node(n, dt), Typed::Node(c, nt), expr)
        }
        (Typed::Lit(lit), Typed::Node(n, dt)) => {
            let (rn, ln, vt) = unify(operator, Typed::Node(n, dt), Typed::Lit(lit), expr)?;
            Ok((ln, rn, vt))
        }
        (Typed::Node(ln, lt), Typed::Node(rn, rt)) => {
            let Some((to_l, to_r)) = comparison_types(&lt, &rt) else {
                return Err(mismatch(
                    operator,
                    &Typed::Node(ln, lt),
                    &Typed::Node(rn, rt),
                    expr,
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
    let limit = if is_string(&vt) {
        SHORT_IN_LIST_STRINGS
    } else {
        SHORT_IN_LIST
    };
    let short = values.len() + usize::from(has_null) <= limit && !values.is_empty();
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

#[cfg(test)]
mod tests {
    use arrow_array::types::Int32Type;
    use arrow_array::{
        Date32Array, DictionaryArray, TimestampMillisecondArray, TimestampNanosecondArray,
    };
    use arrow_schema::Field;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("Ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, true),
            Field::new("Size", DataType::Int64, true),
            Field::new("Small", DataType::Int8, false),
            Field::new("U", DataType::UInt64, false),
            Field::new("Flag", DataType::Boolean, true),
            Field::new("Venue", DataType::Utf8, true),
            Field::new(
                "Ms",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("Day", DataType::Date32, false),
            Field::new(
                "DSym",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("odd name", DataType::Int64, false),
        ])
    }

    /// Four rows.
    fn batch() -> RecordBatch {
        let dsym: DictionaryArray<Int32Type> =
            vec!["AAPL", "MSFT", "AAPL", "X"].into_iter().collect();
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(TimestampNanosecondArray::from(vec![
                    1_699_999_999_999_999_999,
                    1_700_000_000_000_000_000,
                    1_700_000_000_000_000_001,
                    0,
                ])),
                Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL", "X"])),
                Arc::new(Float64Array::from(vec![
                    Some(187.5),
                    Some(411.0),
                    None,
                    Some(5.0),
                ])),
                Arc::new(Int64Array::from(vec![Some(100), Some(2000), Some(0), None])),
                Arc::new(Int8Array::from(vec![-128, 0, 100, 127])),
                Arc::new(UInt64Array::from(vec![0, 1, u64::MAX, 5])),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                ])),
                Arc::new(StringArray::from(vec![Some("N"), None, Some("Q"), None])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![
                        1_699_999_999_999,
                        1_700_000_000_000,
                        1_700_000_000_001,
                        0,
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(Date32Array::from(vec![0, 1, 19_000, -1])),
                Arc::new(dsym),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap()
    }

    fn bound(text: &str) -> BoundExpr {
        Expr::parse(text)
            .and_then(|e| e.bind(&schema()))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The predicate's value per row of `batch()`.
    fn rows(text: &str) -> Vec<Option<bool>> {
        let b = bound(text);
        b.evaluate(&batch())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .as_boolean()
            .iter()
            .collect()
    }

    fn bind_err(text: &str) -> String {
        Expr::parse(text)
            .unwrap()
            .bind(&schema())
            .unwrap_err()
            .to_string()
    }

    fn has_cast(n: &Node) -> bool {
        match n {
            Node::Cast(..) => true,
            Node::Column(_) | Node::Const(_) => false,
            Node::Retag(n, _)
            | Node::Not(n)
            | Node::Neg(n)
            | Node::Abs(n)
            | Node::IsNull(n, _)
            | Node::InSet { operand: n, .. } => has_cast(n),
            Node::Compare(_, l, r)
            | Node::Arith(_, l, r)
            | Node::And(l, r)
            | Node::Or(l, r)
            | Node::Strings(_, l, r) => has_cast(l) || has_cast(r),
        }
    }

    const T: Option<bool> = Some(true);
    const F: Option<bool> = Some(false);
    const N: Option<bool> = None;

    #[test]
    fn smoke() {
        let b = bound(r#"Price > 100 && Sym in ("AAPL", "MSFT")"#);
        assert_eq!(b.data_type(), &DataType::Boolean);
        assert_eq!(b.columns(), ["Sym", "Price"]);
        assert_eq!(b.column_indices(), [1, 2]);
        assert_eq!(b.to_string(), r#"Price > 100 && Sym in ("AAPL", "MSFT")"#);
        assert_eq!(rows(&b.to_string()), [T, T, N, F]);
        assert_eq!(b.filter(&batch()).unwrap().num_rows(), 2);
    }

    #[test]
    fn bound_expressions_are_send_and_sync() {
        fn check<T: Send + Sync + Clone + fmt::Debug>() {}
        check::<BoundExpr>();
        check::<Expr>();
    }

    #[test]
    fn literals_take_the_column_type_when_exact() {
        for text in [
            "Small > 100",
            "Size >= 1e3",
            "Price > 100",
            "U > 5",
            "Ts > 17",
            "Day > 3",
        ] {
            assert!(!has_cast(&bound(text).node), "{text}");
        }
        // Not exact: the column is cast.
        for text in ["Small > 300", "Size > 100.5", "Small == -129"] {
            assert!(has_cast(&bound(text).node), "{text}");
        }
        assert_eq!(rows("Small > 100"), [F, F, F, T]);
        assert_eq!(rows("Small > 300"), [F, F, F, F]);
        assert_eq!(rows("Small >= -128.0"), [T, T, T, T]);
        assert_eq!(rows("Size > 100.5"), [F, T, F, N]);
        assert_eq!(rows("Size >= 1e3"), [F, T, F, N]);
        assert_eq!(rows("U > 18446744073709551614"), [F, F, T, F]);
    }

    #[test]
    fn numbers_combine_across_types() {
        let b = bound("Price * Size");
        assert_eq!(b.data_type(), &DataType::Float64);
        let v = b.evaluate(&batch()).unwrap();
        let v: Vec<_> = v
            .as_primitive::<arrow_array::types::Float64Type>()
            .iter()
            .collect();
        assert_eq!(v, [Some(18_750.0), Some(822_000.0), None, None]);
        assert_eq!(bound("Small + 1").data_type(), &DataType::Int64);
        assert_eq!(bound("U * 2").data_type(), &DataType::UInt64);
        assert_eq!(bound("U - Size").data_type(), &DataType::Float64);
        assert_eq!(bound("-U").data_type(), &DataType::Int64);
        assert_eq!(bound("abs(Small)").data_type(), &DataType::Int64);
        assert_eq!(rows("Small + 1 > 127"), [F, F, F, T]);
        assert_eq!(rows("Price * Size > 1e6"), [F, F, N, N]);
        assert_eq!(rows("Size == Small"), [F, F, F, N]);
        assert_eq!(rows("Price > Size"), [T, F, N, N]);
        assert_eq!(rows("abs(Small) == 128"), [T, F, F, F]);
    }

    #[test]
    fn integer_division_by_zero_is_null_and_float_division_is_ieee() {
        assert_eq!(rows("100 / Size == 1"), [T, F, N, N]);
        assert_eq!(rows("Size % 0 == 0"), [N, N, N, N]);
        assert_eq!(rows("Size / 0.0 > 1e300"), [T, T, F, N]);
        assert_eq!(rows("7 / 2 == 3"), [T, T, T, T]);
        assert_eq!(rows("-7 % 2 == -1"), [T, T, T, T]);
    }

    #[test]
    fn integer_overflow_is_an_error() {
        let e = bound("Size * 9223372036854775807 > 0")
            .evaluate(&batch())
            .unwrap_err();
        assert!(matches!(e, ExprError::Arrow(_)), "{e}");
        // A constant overflow is found at bind time.
        let e = Expr::parse("9223372036854775807 + 1 > 0")
            .unwrap()
            .bind(&schema())
            .unwrap_err();
        assert!(matches!(e, ExprError::Arrow(_)), "{e}");
    }

    #[test]
    fn timestamps_and_dates_compare_with_integers_and_each_other() {
        assert_eq!(rows("Ts >= 1700000000000000000"), [F, T, T, F]);
        assert_eq!(rows("Ms >= 1700000000000"), [F, T, T, F]);
        // Milliseconds become nanoseconds; the zones differ, the instants compare.
        assert_eq!(rows("Ts == Ms"), [F, T, F, T]);
        assert_eq!(rows("Ts < Ms"), [F, F, T, F]);
        assert_eq!(rows("Day between 1 and 19000"), [F, T, T, F]);
        assert_eq!(rows("Day > Size"), [F, F, T, N]);
    }

    #[test]
    fn strings_and_dictionaries() {
        assert_eq!(rows(r#"Sym >= "B""#), [F, T, F, T]);
        assert_eq!(rows(r#"DSym == "AAPL""#), [T, F, T, F]);
        assert_eq!(rows("DSym == Sym"), [T, T, T, T]);
        assert_eq!(rows(r#"DSym in ("MSFT", "X")"#), [F, T, F, T]);
        assert_eq!(
            rows(r#"DSym in ("A", "B", "C", "D", "MSFT", "X")"#),
            [F, T, F, T]
        );
        assert_eq!(rows(r#"starts_with(DSym, "AA")"#), [T, F, T, F]);
        assert_eq!(
            rows(r#"contains(Sym, 'SF') || ends_with(Venue, "Q")"#),
            [F, T, T, N]
        );
        assert_eq!(rows("`odd name` > 2"), [F, F, T, T]);
    }

    #[test]
    fn nulls_follow_sql() {
        assert_eq!(rows("Price == null"), [N, N, N, N]);
        assert_eq!(rows("null == null"), [N, N, N, N]);
        assert_eq!(rows("Flag && null"), [N, F, N, N]);
        assert_eq!(rows("Flag || null"), [T, N, N, T]);
        assert_eq!(rows("!Flag"), [F, T, N, F]);
        assert_eq!(rows("is_null(Venue)"), [F, T, F, T]);
        assert_eq!(rows("Venue is not null"), [T, F, T, F]);
        assert_eq!(rows("is_null(null)"), [T, T, T, T]);
        assert_eq!(rows("null + 1 > 0"), [N, N, N, N]);
        assert_eq!(rows("starts_with(Sym, null)"), [N, N, N, N]);
        let mask = bound("Price > 100").filter_mask(&batch()).unwrap();
        assert_eq!(mask.null_count(), 0);
        assert_eq!(mask.iter().collect::<Vec<_>>(), [T, T, F, F]);
    }

    #[test]
    fn in_lists_are_sql_in_both_forms() {
        for list in ["100, 0", "100, 0, -1, -2, -3, -4, -5, -6, 2.5"] {
            assert_eq!(rows(&format!("Size in ({list})")), [T, F, T, N], "{list}");
            assert_eq!(
                rows(&format!("Size not in ({list})")),
                [F, T, F, N],
                "{list}"
            );
            assert_eq!(
                rows(&format!("Size in ({list}, null)")),
                [T, N, T, N],
                "{list}"
            );
            assert_eq!(
                rows(&format!("Size not in ({list}, null)")),
                [F, N, F, N],
                "{list}"
            );
        }
        assert_eq!(rows("Size in (2.5)"), [F, F, F, N]);
        assert_eq!(rows("Size in (null)"), [N, N, N, N]);
        assert_eq!(rows("Price in (5, 187.5, 1, 2, 3, 4)"), [T, F, N, T]);
        assert_eq!(rows("Small in (-128, 127, 1000, 1, 2, 3)"), [T, F, F, T]);
        assert_eq!(rows("Flag in (true)"), [T, F, N, T]);
        assert_eq!(
            rows("Ts in (0, 1, 2, 3, 1700000000000000000)"),
            [F, T, F, T]
        );
        assert_eq!(rows("null in (1, 2)"), [N, N, N, N]);
        assert!(matches!(
            bound("Size in (1, 2, 3, 4, 5)").node,
            Node::InSet { .. }
        ));
        assert!(matches!(bound("Size in (1, 2)").node, Node::Or(..)));
        assert!(matches!(
            bound("Sym in ('a', 'b', 'c')").node,
            Node::InSet { .. }
        ));
        assert!(matches!(bound("Sym in ('a', 'b')").node, Node::Or(..)));
    }

    #[test]
    fn constants_are_computed_at_bind_time() {
        assert!(matches!(
            bound("1 + 2 * 3 == 7 && true").node,
            Node::Const(_)
        ));
        let v = bound("1 + 2").evaluate(&batch()).unwrap();
        assert_eq!(
            v.as_primitive::<arrow_array::types::Int64Type>().values(),
            &[3, 3, 3, 3]
        );
        assert_eq!(rows("true"), [T, T, T, T]);
        let null = Expr::parse("null")
            .unwrap()
            .bind_predicate(&schema())
            .unwrap();
        assert_eq!(null.filter(&batch()).unwrap().num_rows(), 0);
    }

    #[test]
    fn type_errors_name_the_operator_the_types_and_the_position() {
        let cases = [
            ("Sym > 100", "at 4: cannot apply '>' to Utf8 and Int64"),
            ("Price + Sym", "at 6: cannot apply '+' to Float64 and Utf8"),
            (
                "Ts + 1",
                "at 3: cannot apply '+' to Timestamp(ns) and Int64",
            ),
            ("Flag == 1", "at 5: cannot apply '==' to Boolean and Int64"),
            ("Size && Flag", "at 5: cannot apply '&&' to Int64"),
            ("!Price", "at 0: cannot apply '!' to Float64"),
            ("-Sym == 'x'", "at 0: cannot apply '-' to Utf8"),
            ("abs(Sym) > 1", "at 0: cannot apply 'abs' to Utf8"),
            (
                "starts_with(Price, 'x')",
                "at 0: cannot apply 'starts_with' to Float64 and Utf8",
            ),
            (
                "Sym in ('a', 1)",
                "at 4: cannot apply 'in' to Utf8 and Int64",
            ),
            (
                "Ts == 'x'",
                "at 3: cannot apply '==' to Timestamp(ns) and Utf8",
            ),
            (
                "Price between 'a' and 2",
                "at 6: cannot apply '>=' to Float64 and Utf8",
            ),
            (
                "Prise > 1",
                r#"at 0: no column named "Prise" (did you mean "Price"?)"#,
            ),
            (
                "Flag && venue == 'x'",
                r#"at 8: no column named "venue" (did you mean "Venue"?)"#,
            ),
            ("Volume > 1", r#"at 0: no column named "Volume""#),
            (
                "Size > -99999999999999999999",
                "at 5: the integer -99999999999999999999 is out of range",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(bind_err(text), message, "{text}");
        }
        let e = Expr::parse("Price * 2")
            .unwrap()
            .bind_predicate(&schema())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "at 0: a filter needs a boolean expression, found Float64"
        );
        assert!(matches!(
            bound("Price * 2").filter_mask(&batch()),
            Err(ExprError::NotAPredicate { .. })
        ));
    }

    #[test]
    fn trees_built_in_code_are_checked_too() {
        let call = Expr::new(ExprKind::Call {
            function: Function::Abs,
            args: vec![],
        });
        assert!(matches!(
            call.bind(&schema()),
            Err(ExprError::WrongArgumentCount { found: 0, .. })
        ));
        let mut deep = Expr::new(ExprKind::Column("Flag".into()));
        for _ in 0..MAX_DEPTH {
            deep = Expr::new(ExprKind::Unary {
                op: UnaryOp::Not,
                operand: Box::new(deep),
            });
        }
        assert!(matches!(
            deep.bind(&schema()),
            Err(ExprError::TooDeep { .. })
        ));
    }

    #[test]
    fn batches_are_checked_against_the_bound_schema() {
        let b = bound("Size > 1 && Sym == 'AAPL'");
        // Other columns, other order: found by name.
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("Sym", DataType::Utf8, false),
                Field::new("Size", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["AAPL", "X"])),
                Arc::new(Int64Array::from(vec![5, 5])),
            ],
        )
        .unwrap();
        assert_eq!(b.filter(&other).unwrap().num_rows(), 1);
        let missing = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("Sym", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["AAPL"]))],
        )
        .unwrap();
        assert_eq!(
            b.evaluate(&missing).unwrap_err().to_string(),
            r#"the batch has no column named "Size""#
        );
        let retyped = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("Sym", DataType::Utf8, false),
                Field::new("Size", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["AAPL"])),
                Arc::new(StringArray::from(vec!["5"])),
            ],
        )
        .unwrap();
        assert_eq!(
            b.evaluate(&retyped).unwrap_err().to_string(),
            r#"the batch's column "Size" is Utf8, the expression was bound to Int64"#
        );
    }
}
