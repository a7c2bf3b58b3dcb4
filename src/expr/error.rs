//! The expression module's errors and spans, and name suggestions: the leaf the parser,
//! the binder and the tree share.

use std::fmt;

use arrow_schema::{ArrowError, DataType};

/// How deep an expression's tree may be: 256 levels (`a || b || c` is 3). Parentheses and
/// prefix operators may nest half as deep.
///
/// Parsing, binding and evaluating recurse over the tree; the limits keep them well within a
/// thread's stack (2 MiB), even in debug builds.
pub const MAX_DEPTH: usize = 256;

/// A byte range of an expression's text: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// The first byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering `self` and `other`.
    #[must_use]
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// The error of parsing, binding or evaluating an expression.
///
/// Messages fit on one line (a status bar), start with the byte position in the text where
/// there is one (`at 12: expected a value, found ')'`), and name the columns, operators and
/// types involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a well-formed expression.
    #[error("at {position}: expected {expected}, found {found}")]
    Parse {
        /// The byte offset of the offending token.
        position: usize,
        /// What would have fitted there: "a value", "')'", ...
        expected: String,
        /// What is there, quoted, or "the end".
        found: String,
    },
    /// A call of a function that does not exist.
    #[error("at {position}: no function named {name:?}{}", did_you_mean(.suggestion.as_deref()))]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The byte offset of the name.
        position: usize,
        /// A function with a close name.
        suggestion: Option<String>,
    },
    /// A function called with the wrong number of arguments.
    #[error(
        "at {position}: {function} takes {expected} argument{}, found {found}",
        if *.expected == 1 { "" } else { "s" }
    )]
    WrongArgumentCount {
        /// The function.
        function: &'static str,
        /// How many it takes.
        expected: usize,
        /// How many were given.
        found: usize,
        /// The byte offset of the function's name.
        position: usize,
    },
    /// The expression nests deeper than [`MAX_DEPTH`].
    #[error("at {position}: the expression nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// Where the limit was passed.
        position: usize,
    },
    /// The schema has no column of this name.
    #[error("at {position}: no column named {column:?}{}", did_you_mean(.suggestion.as_deref()))]
    UnknownColumn {
        /// The name as written.
        column: String,
        /// The byte offset of the name.
        position: usize,
        /// A column with a close name (ignoring case, or a typo or two away).
        suggestion: Option<String>,
    },
    /// An operator or function that cannot take these two types.
    #[error("at {position}: cannot apply '{operator}' to {left} and {right}")]
    TypeMismatch {
        /// The operator or function: `>`, `+`, `in`, `starts_with`, ...
        operator: &'static str,
        /// The left operand's type.
        left: DataType,
        /// The right operand's type.
        right: DataType,
        /// The byte offset of the operator.
        position: usize,
    },
    /// An operator or function that cannot take this type.
    #[error("at {position}: cannot apply '{operator}' to {data_type}")]
    UnsupportedType {
        /// The operator or function: `!`, `&&`, `-`, `abs`, ...
        operator: &'static str,
        /// The operand's type.
        data_type: DataType,
        /// The byte offset of the operator.
        position: usize,
    },
    /// An integer literal that fits no integer type.
    #[error("at {position}: the integer {value} is out of range")]
    LiteralOutOfRange {
        /// The literal.
        value: i128,
        /// Its byte offset.
        position: usize,
    },
    /// A filter whose expression is not boolean.
    #[error("at {position}: a filter needs a boolean expression, found {data_type}")]
    NotAPredicate {
        /// The expression's type.
        data_type: DataType,
        /// The byte offset of the expression.
        position: usize,
    },
    /// The batch evaluated lacks a column the expression was bound to.
    #[error("the batch has no column named {column:?}")]
    MissingColumn {
        /// The column's name.
        column: String,
    },
    /// The batch evaluated has a column of another type than the schema the expression was
    /// bound to.
    #[error("the batch's column {column:?} is {found}, the expression was bound to {expected}")]
    ColumnType {
        /// The column's name.
        column: String,
        /// The type it had at bind time.
        expected: DataType,
        /// The type it has in the batch.
        found: DataType,
    },
    /// An Arrow kernel failed: integer overflow, or a cast that does not fit.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

impl ExprError {
    /// The byte offset in the expression's text that the error is about, if it is about one.
    pub fn position(&self) -> Option<usize> {
        match self {
            ExprError::Parse { position, .. }
            | ExprError::UnknownFunction { position, .. }
            | ExprError::WrongArgumentCount { position, .. }
            | ExprError::TooDeep { position, .. }
            | ExprError::UnknownColumn { position, .. }
            | ExprError::TypeMismatch { position, .. }
            | ExprError::UnsupportedType { position, .. }
            | ExprError::LiteralOutOfRange { position, .. }
            | ExprError::NotAPredicate { position, .. } => Some(*position),
            ExprError::MissingColumn { .. }
            | ExprError::ColumnType { .. }
            | ExprError::Arrow(_) => None,
        }
    }
}

/// ` (did you mean "x"?)`, or nothing.
fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {s:?}?)"))
}

/// The candidate closest to `name`: equal ignoring case, or within a third of its length in
/// edits (at least one).
pub(super) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance in characters, counting a swap of two neighbours as one edit (optimal
/// string alignment).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j], three rows at a time.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j - 1] + cost).min(prev[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}
