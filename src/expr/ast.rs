//! The syntax tree: [`Expr`] nodes with spans, and their canonical [`Display`](fmt::Display).

use std::fmt;

use super::error::{ExprError, Span, MAX_DEPTH};

/// A parsed expression: a node of the syntax tree, with the byte range of the text it came
/// from.
///
/// Build one with [`Expr::parse`] or, in code, with [`Expr::new`]. Its `Display` prints a
/// canonical form that parses back to an equal `Expr`.
///
/// Equality compares the structure only: spans are not compared, so `a>1` and `a > 1` are
/// equal.
///
/// # Examples
///
/// ```
/// use tickertable::expr::{BinaryOp, Expr, ExprKind};
///
/// let e = Expr::parse("Price>100 and not Halted")?;
/// assert_eq!(e.to_string(), "Price > 100 && !Halted");
/// assert!(matches!(e.kind(), ExprKind::Binary { op: BinaryOp::And, .. }));
/// assert_eq!(Expr::parse(&e.to_string())?, e);
/// # Ok::<(), tickertable::ExprError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Expr {
    kind: ExprKind,
    /// The whole text of the node.
    span: Span,
    /// The operator, keyword or function name the node is about (the whole span for
    /// leaves): type errors point here.
    op_span: Span,
    /// 1 for a leaf, else 1 + the deepest child's depth.
    depth: usize,
}

/// What an [`Expr`] node is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExprKind {
    /// A constant.
    Literal(Literal),
    /// A column, by name.
    Column(String),
    /// `!x` or `-x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// `left op right`: logical, comparison and arithmetic operators.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        left: Box<Expr>,
        /// The right operand.
        right: Box<Expr>,
    },
    /// `operand in (a, b, ...)`, or `not in` when `negated`.
    InList {
        /// The value looked up.
        operand: Box<Expr>,
        /// The constants it is looked up in (at least one).
        list: Vec<Literal>,
        /// `not in`.
        negated: bool,
    },
    /// `operand between low and high` (both ends included), or `not between` when `negated`.
    Between {
        /// The value tested.
        operand: Box<Expr>,
        /// The lower end.
        low: Box<Expr>,
        /// The upper end.
        high: Box<Expr>,
        /// `not between`.
        negated: bool,
    },
    /// A function call such as `is_null(Venue)`.
    Call {
        /// The function.
        function: Function,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

/// A constant in an expression.
///
/// Numeric literals are untyped until bound: `Size > 100` compares with an `Int64` 100 when
/// `Size` is `Int64` and with an `Int8` 100 when it is `Int8`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer such as `100` or `-5`.
    Int(i128),
    /// A finite floating-point number such as `1.5` or `1e6`.
    Float(f64),
    /// A string such as `"AAPL"` or `'AAPL'`.
    Str(String),
}

/// A prefix operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnaryOp {
    /// `!x` or `not x`: logical negation.
    Not,
    /// `-x`: arithmetic negation.
    Neg,
}

/// An infix operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BinaryOp {
    /// `||` or `or`.
    Or,
    /// `&&` or `and`.
    And,
    /// `==` or `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Rem,
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Function {
    /// `is_null(x)`: whether `x` is null (never null itself). Also `x is null`.
    IsNull,
    /// `is_not_null(x)`: whether `x` is not null (never null itself). Also `x is not null`.
    IsNotNull,
    /// `abs(x)`: the absolute value of a number.
    Abs,
    /// `starts_with(s, prefix)`: whether the string `s` starts with `prefix`.
    StartsWith,
    /// `ends_with(s, suffix)`: whether the string `s` ends with `suffix`.
    EndsWith,
    /// `contains(s, part)`: whether the string `s` contains `part`.
    Contains,
}

/// Binding strength, loosest first; see the precedence table in the module docs.
pub(crate) mod prec {
    pub(crate) const OR: u8 = 1;
    pub(crate) const AND: u8 = 2;
    pub(crate) const NOT: u8 = 3;
    pub(crate) const CMP: u8 = 4;
    pub(crate) const ADD: u8 = 5;
    pub(crate) const MUL: u8 = 6;
    pub(crate) const UNARY: u8 = 7;
    pub(crate) const PRIMARY: u8 = 8;
}

impl Expr {
    /// A node with an empty span at 0, for expressions built in code.
    ///
    /// Binding checks such a tree as it checks a parsed one: a tree deeper than
    /// [`MAX_DEPTH`] fails with [`ExprError::TooDeep`], a call with the
    /// wrong number of arguments with [`ExprError::WrongArgumentCount`].
    pub fn new(kind: ExprKind) -> Self {
        Self::with_spans(kind, Span::default(), Span::default())
    }

    /// A node for `kind`, covering `span`, about the operator at `op_span`.
    pub(crate) fn with_spans(kind: ExprKind, span: Span, op_span: Span) -> Self {
        let mut depth = 0;
        kind.for_each_child(|c| depth = depth.max(c.depth));
        Self {
            kind,
            span,
            op_span,
            depth: depth + 1,
        }
    }

    /// A node for `kind` covering `span`, checked against the nesting limit.
    pub(crate) fn checked(kind: ExprKind, span: Span, op_span: Span) -> Result<Self, ExprError> {
        let e = Self::with_spans(kind, span, op_span);
        if e.depth > MAX_DEPTH {
            return Err(ExprError::TooDeep {
                limit: MAX_DEPTH,
                position: op_span.start,
            });
        }
        Ok(e)
    }

    /// What this node is.
    pub fn kind(&self) -> &ExprKind {
        &self.kind
    }

    /// The byte range of the text this node was parsed from (empty for nodes built in code).
    pub fn span(&self) -> Span {
        self.span
    }

    /// The byte range of this node's operator, keyword or function name (of the whole node
    /// for literals and columns). Type errors point at it.
    pub fn op_span(&self) -> Span {
        self.op_span
    }

    /// The depth of the tree under this node: 1 for a literal or a column.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// This node with its span widened to start at `start` (for parentheses).
    pub(crate) fn widened(mut self, span: Span) -> Self {
        self.span = span;
        self
    }

    /// The binding strength of this node's outermost operator.
    fn precedence(&self) -> u8 {
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Column(_) | ExprKind::Call { .. } => prec::PRIMARY,
            ExprKind::Unary {
                op: UnaryOp::Not, ..
            } => prec::NOT,
            ExprKind::Unary {
                op: UnaryOp::Neg, ..
            } => prec::UNARY,
            ExprKind::Binary { op, .. } => op.precedence(),
            ExprKind::InList { .. } | ExprKind::Between { .. } => prec::CMP,
        }
    }

    /// Writes `self`, in parentheses when it binds looser than `min`.
    fn fmt_at(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            f.write_str("(")?;
            fmt::Display::fmt(self, f)?;
            f.write_str(")")
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl ExprKind {
    /// Calls `f` on each direct child.
    pub(crate) fn for_each_child(&self, mut f: impl FnMut(&Expr)) {
        match self {
            ExprKind::Literal(_) | ExprKind::Column(_) => {}
            ExprKind::Unary { operand, .. } | ExprKind::InList { operand, .. } => f(operand),
            ExprKind::Binary { left, right, .. } => {
                f(left);
                f(right);
            }
            ExprKind::Between {
                operand, low, high, ..
            } => {
                f(operand);
                f(low);
                f(high);
            }
            ExprKind::Call { args, .. } => args.iter().for_each(f),
        }
    }
}

impl BinaryOp {
    /// The canonical spelling: `&&`, `==`, `+`, ...
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "||",
            BinaryOp::And => "&&",
            BinaryOp::Eq => "==",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
        }
    }

    /// Whether this is one of `== != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }

    /// Whether this is one of `+ - * / %`.
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem
        )
    }

    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => prec::OR,
            BinaryOp::And => prec::AND,
            BinaryOp::Add | BinaryOp::Sub => prec::ADD,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => prec::MUL,
            _ => prec::CMP,
        }
    }
}

impl UnaryOp {
    /// The canonical spelling: `!` or `-`.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        }
    }
}

impl Function {
    /// Every function, for suggestions.
    pub(crate) const ALL: [Function; 6] = [
        Function::IsNull,
        Function::IsNotNull,
        Function::Abs,
        Function::StartsWith,
        Function::EndsWith,
        Function::Contains,
    ];

    /// The function's name, as written in expressions.
    pub fn name(self) -> &'static str {
        match self {
            Function::IsNull => "is_null",
            Function::IsNotNull => "is_not_null",
            Function::Abs => "abs",
            Function::StartsWith => "starts_with",
            Function::EndsWith => "ends_with",
            Function::Contains => "contains",
        }
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Function::IsNull | Function::IsNotNull | Function::Abs => 1,
            Function::StartsWith | Function::EndsWith | Function::Contains => 2,
        }
    }

    /// The function named `name`, ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Literal(l) => write!(f, "{l}"),
            ExprKind::Column(name) => write_column(f, name),
            ExprKind::Unary { op, operand } => {
                f.write_str(op.symbol())?;
                let positive_number = matches!(
                    operand.kind,
                    ExprKind::Literal(Literal::Int(0..) | Literal::Float(_))
                ) && !is_negative_literal(operand);
                if *op == UnaryOp::Neg && positive_number {
                    // `-5` would parse as the literal -5; keep the negation a node.
                    write!(f, "({operand})")
                } else {
                    operand.fmt_at(f, prec::UNARY)
                }
            }
            ExprKind::Binary { op, left, right } => {
                let p = op.precedence();
                // Left-associative, except comparisons, which do not chain.
                let left_min = if p == prec::CMP { p + 1 } else { p };
                left.fmt_at(f, left_min)?;
                write!(f, " {} ", op.symbol())?;
                right.fmt_at(f, p + 1)
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => {
                operand.fmt_at(f, prec::ADD)?;
                f.write_str(if *negated { " not in (" } else { " in (" })?;
                for (i, l) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{l}")?;
                }
                f.write_str(")")
            }
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => {
                operand.fmt_at(f, prec::ADD)?;
                f.write_str(if *negated {
                    " not between "
                } else {
                    " between "
                })?;
                low.fmt_at(f, prec::ADD)?;
                f.write_str(" and ")?;
                high.fmt_at(f, prec::ADD)
            }
            ExprKind::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Whether `e` is a literal that prints with a leading `-`.
fn is_negative_literal(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Literal(Literal::Int(v)) => *v < 0,
        ExprKind::Literal(Literal::Float(v)) => v.is_sign_negative(),
        _ => false,
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(v) => write!(f, "{v}"),
            // `{:?}` is the shortest text that reads back as the same f64, and always has a
            // `.` or an exponent, so it lexes as a float.
            Literal::Float(v) => write!(f, "{v:?}"),
            Literal::Str(s) => write_string(f, s),
        }
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for UnaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The words that cannot be bare column names (compared ignoring ASCII case).
pub(crate) const KEYWORDS: [&str; 9] = [
    "and", "or", "not", "in", "between", "is", "true", "false", "null",
];

/// Whether `name` can be written bare: an identifier that is not a keyword.
pub(crate) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name))
}

/// Writes a column name, backquoted (with `` ` `` doubled) unless it is a plain identifier.
fn write_column(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_plain_identifier(name) {
        return f.write_str(name);
    }
    f.write_str("`")?;
    for part in name.split('`').enumerate() {
        if part.0 > 0 {
            f.write_str("``")?;
        }
        f.write_str(part.1)?;
    }
    f.write_str("`")
}

/// Writes a double-quoted string with `\\`, `\"` and control characters escaped.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\0' => f.write_str("\\0")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Expr {
        Expr::new(ExprKind::Column(name.into()))
    }

    fn int(v: i128) -> Expr {
        Expr::new(ExprKind::Literal(Literal::Int(v)))
    }

    fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        Expr::new(ExprKind::Binary {
            op,
            left: Box::new(l),
            right: Box::new(r),
        })
    }

    fn neg(e: Expr) -> Expr {
        Expr::new(ExprKind::Unary {
            op: UnaryOp::Neg,
            operand: Box::new(e),
        })
    }

    #[test]
    fn smoke() {
        let e = bin(BinaryOp::Gt, col("Price"), int(100));
        assert_eq!(e.to_string(), "Price > 100");
        assert_eq!(e.depth(), 2);
    }

    #[test]
    fn odd_column_names_are_backquoted() {
        assert_eq!(col("odd name").to_string(), "`odd name`");
        assert_eq!(col("a`b").to_string(), "`a``b`");
        assert_eq!(col("In").to_string(), "`In`");
        assert_eq!(col("9lives").to_string(), "`9lives`");
        assert_eq!(col("").to_string(), "``");
        assert_eq!(col("_x9").to_string(), "_x9");
    }

    #[test]
    fn strings_are_escaped() {
        let s = Expr::new(ExprKind::Literal(Literal::Str("a\"b\\c\n\u{1}é".into())));
        assert_eq!(s.to_string(), r#""a\"b\\c\n\u{1}é""#);
    }

    #[test]
    fn negation_of_a_positive_literal_keeps_its_parentheses() {
        assert_eq!(neg(int(5)).to_string(), "-(5)");
        assert_eq!(int(-5).to_string(), "-5");
        assert_eq!(neg(int(-5)).to_string(), "--5");
        assert_eq!(neg(col("x")).to_string(), "-x");
    }

    #[test]
    fn operands_are_parenthesized_by_precedence() {
        let sum = bin(BinaryOp::Add, col("a"), col("b"));
        assert_eq!(
            bin(BinaryOp::Mul, sum.clone(), col("c")).to_string(),
            "(a + b) * c"
        );
        assert_eq!(
            bin(BinaryOp::Sub, col("c"), sum.clone()).to_string(),
            "c - (a + b)"
        );
        assert_eq!(bin(BinaryOp::Sub, sum, col("c")).to_string(), "a + b - c");
        let cmp = bin(BinaryOp::Lt, col("a"), col("b"));
        assert_eq!(bin(BinaryOp::Eq, cmp, col("c")).to_string(), "(a < b) == c");
    }

    #[test]
    fn floats_print_so_they_lex_as_floats() {
        for (v, s) in [
            (1e6, "1000000.0"),
            (1.5, "1.5"),
            (1e21, "1e21"),
            (-0.25, "-0.25"),
        ] {
            assert_eq!(Literal::Float(v).to_string(), s);
        }
    }
}
