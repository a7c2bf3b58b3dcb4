//! Expressions and predicates over a table's columns: parsed from text, checked against a
//! schema, evaluated over whole Arrow columns.
//!
//! One expression type serves the library's derived tables, the viewer's filter, a server's
//! config and Python. Text such as `Price > 100 && Sym in ("AAPL", "MSFT")` goes through
//! three stages:
//!
//! 1. [`Expr::parse`] checks the syntax and gives a tree of [`Expr`] nodes with byte spans.
//!    Its `Display` prints a canonical form that parses back to an equal tree.
//! 2. [`Expr::bind`] (or [`Expr::bind_predicate`] for a filter) resolves the columns against
//!    an Arrow [`Schema`](arrow_schema::Schema) and checks the types, so that a mistake is
//!    reported before any data flows, with the position it is at.
//! 3. [`BoundExpr::evaluate`], [`BoundExpr::filter_mask`] and [`BoundExpr::filter`] run it
//!    over a [`RecordBatch`](arrow_array::RecordBatch) with Arrow's compute kernels, a whole
//!    column per operator: nothing is interpreted row by row.
//!
//! ```
//! use arrow_array::{cast::AsArray, Float64Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use std::sync::Arc;
//! use tickertable::Expr;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("Sym", DataType::Utf8, false),
//!     Field::new("Price", DataType::Float64, true),
//! ]));
//! let batch = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL", "NVDA"])),
//!     Arc::new(Float64Array::from(vec![Some(187.5), Some(411.0), None, Some(903.1)])),
//! ])?;
//!
//! let wanted = Expr::parse(r#"Price > 100 and Sym in ("AAPL", "MSFT")"#)?;
//! let wanted = wanted.bind_predicate(&schema)?;
//! assert_eq!(wanted.columns(), ["Sym", "Price"]);
//! let rows = wanted.filter(&batch)?;
//! assert_eq!(rows.num_rows(), 2); // the null price is not > 100
//! assert_eq!(rows.column(0).as_string::<i32>().value(1), "MSFT");
//!
//! let typo = Expr::parse("Prise > 100")?.bind(&schema).unwrap_err();
//! assert_eq!(typo.to_string(), r#"at 0: no column named "Prise" (did you mean "Price"?)"#);
//! let mistyped = Expr::parse("Sym > 100")?.bind(&schema).unwrap_err();
//! assert_eq!(mistyped.to_string(), "at 4: cannot apply '>' to Utf8 and Int64");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! expr     := or
//! or       := and (('||' | 'or') and)*
//! and      := not (('&&' | 'and') not)*
//! not      := ('!' | 'not') not | cmp
//! cmp      := add [ ('==' | '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=') add
//!                 | ['not'] 'in' '(' literal (',' literal)* [','] ')'
//!                 | ['not'] 'between' add 'and' add
//!                 | 'is' ['not'] 'null' ]
//! add      := mul (('+' | '-') mul)*
//! mul      := unary (('*' | '/' | '%') unary)*
//! unary    := '-' unary | ('!' | 'not') unary | primary
//! primary  := literal | column | function '(' [expr (',' expr)*] ')' | '(' expr ')'
//! literal  := ['-'] number | string | 'true' | 'false' | 'null'
//! ```
//!
//! - **Numbers**: `100`, `1.5`, `1e6`, `2.5E-3`. A number with a `.` or an exponent is a
//!   float. A `-` written right before a number makes a negative literal.
//! - **Strings**: in double or single quotes, with the escapes `\n \r \t \0 \\ \" \'` and
//!   `\u{e9}`.
//! - **Columns**: an identifier (`[A-Za-z_][A-Za-z0-9_]*`) that is not a keyword, or any name
//!   in backquotes, with a backquote written twice: `` `odd name` ``, `` `in` ``.
//! - **Keywords** ignore ASCII case: `and or not in between is true false null`, and so do
//!   function names.
//! - **Functions**: `is_null(x)`, `is_not_null(x)` (also `x is null`, `x is not null`),
//!   `abs(x)`, `starts_with(s, prefix)`, `ends_with(s, suffix)`, `contains(s, part)`.
//! - The list of `in` holds literals only.
//! - The tree is at most [`MAX_DEPTH`] (256) levels deep, and parentheses and prefix
//!   operators nest at most 128 deep ([`ExprError::TooDeep`]). A longer chain of `||` fits
//!   when grouped: `(a || b) || (c || d)`, or as `x in (...)`.
//!
//! The canonical form that `Display` prints uses `&&`, `||`, `!`, `==`, `!=`,
//! `is_null(x)`, double-quoted strings and only the parentheses the tree needs.
//!
//! # Precedence
//!
//! Loosest first; binary operators of one level group to the left.
//!
//! | level | operators | note |
//! |---|---|---|
//! | 1 | `\|\|` `or` | |
//! | 2 | `&&` `and` | |
//! | 3 | `!` `not` (prefix) | `!a == b` is `!(a == b)` |
//! | 4 | `==` `!=` `<` `<=` `>` `>=` `in` `between` `is null` | do not chain (`a < b < c`) |
//! | 5 | `+` `-` | |
//! | 6 | `*` `/` `%` | |
//! | 7 | `-` (prefix) | also `!` where a value is expected: `a == !b` |
//!
//! # Types
//!
//! Binding gives every node an Arrow type and refuses what does not fit:
//!
//! - **Numbers** (`Int8`..`Int64`, `UInt8`..`UInt64`, `Float32`, `Float64`) compare and
//!   combine with each other. A literal takes the column's type when it fits exactly
//!   (`Size > 100` for an `Int16` `Size`, `Size >= 1e3`); otherwise both sides are cast to a
//!   common type: the wider type of the same kind; a signed type wide enough for both when
//!   signed meets unsigned (`Float64` for `UInt64` with a signed type); `Float64` when an
//!   integer meets a float. Arithmetic (`+ - * / %`, prefix `-`, `abs`) is computed in
//!   `Int64`, `UInt64` (both sides unsigned) or `Float64`; integer `/` truncates.
//! - **Strings** (`Utf8`, `LargeUtf8`, `Utf8View`, and dictionaries of them) compare with
//!   strings, by bytes.
//! - **Booleans** compare with booleans; `&&`, `||` and `!` take booleans only.
//! - **Timestamps, dates, times and durations** compare with the same type, with each other
//!   within a kind (timestamps of any unit and zone compare as instants; `Date32` with
//!   `Date64`), and with integers, which are read in the column's unit:
//!   `Ts >= 1700000000000000000` for nanoseconds.
//! - `null` fits any type. `in` takes literals of the operand's type; a number that the
//!   operand's type cannot hold exactly (`2.5` for an integer) never matches.
//!
//! A filter ([`Expr::bind_predicate`], [`BoundExpr::filter_mask`]) must be boolean.
//!
//! # Nulls
//!
//! SQL's three-valued logic: an operator with a null operand gives null (`null == x` is
//! null, not true), except that `false && null` is false and `true || null` is true.
//! `x in (...)` is null when `x` is null, or when nothing matches and the list holds `null`;
//! `not in` negates that. `is_null` and `is_not_null` are never null. A filter keeps the
//! rows where the predicate is true: null counts as false.
//!
//! Integer division or remainder by zero gives null; float division follows IEEE 754
//! (`inf`, `NaN`). Integer overflow is an error ([`ExprError::Arrow`]). Floats compare in
//! Arrow's total order: `NaN` equals `NaN` and is greater than every number, and `-0.0` is
//! less than `0.0`.
//!
//! # Cost
//!
//! Parsing and binding are linear in the text (an `in` list becomes a hash set once, at bind
//! time). Evaluating costs one kernel pass per operator over the batch's rows; constant parts
//! are computed once at bind time. `&&` skips its right side when the left is false on every
//! row, and `||` when the left is true on every row.

mod ast;
mod bind;
mod error;
mod eval;
mod lexer;
mod parser;

pub use ast::{BinaryOp, Expr, ExprKind, Function, Literal, UnaryOp};
pub use bind::BoundExpr;
pub use error::{ExprError, Span, MAX_DEPTH};

#[cfg(test)]
mod tests {
    use arrow_schema::DataType;

    use super::error::{edit_distance, suggest};
    use super::*;

    #[test]
    fn smoke() {
        let e = ExprError::Parse {
            position: 12,
            expected: "a value".into(),
            found: "')'".into(),
        };
        assert_eq!(e.to_string(), "at 12: expected a value, found ')'");
        assert_eq!(e.position(), Some(12));
    }

    #[test]
    fn suggestions_pick_the_closest_name() {
        let names = ["Price", "Size", "Sym", "Ts"];
        assert_eq!(suggest("price", names), Some("Price"));
        assert_eq!(suggest("Prise", names), Some("Price"));
        assert_eq!(suggest("Szie", names), Some("Size"));
        assert_eq!(suggest("Sim", names), Some("Sym"));
        assert_eq!(suggest("Volume", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn messages_are_one_lowercase_line() {
        let errors = [
            ExprError::UnknownColumn {
                column: "Prise".into(),
                position: 0,
                suggestion: Some("Price".into()),
            },
            ExprError::WrongArgumentCount {
                function: "abs",
                expected: 1,
                found: 2,
                position: 3,
            },
            ExprError::TypeMismatch {
                operator: ">",
                left: DataType::Utf8,
                right: DataType::Int64,
                position: 4,
            },
            ExprError::NotAPredicate {
                data_type: DataType::Int64,
                position: 0,
            },
            ExprError::ColumnType {
                column: "Size".into(),
                expected: DataType::Int64,
                found: DataType::Utf8,
            },
        ];
        let expected = [
            r#"at 0: no column named "Prise" (did you mean "Price"?)"#,
            "at 3: abs takes 1 argument, found 2",
            "at 4: cannot apply '>' to Utf8 and Int64",
            "at 0: a filter needs a boolean expression, found Int64",
            r#"the batch's column "Size" is Utf8, the expression was bound to Int64"#,
        ];
        for (e, m) in errors.iter().zip(expected) {
            assert_eq!(e.to_string(), m);
            assert!(!m.contains('\n') && !m.ends_with('.'));
        }
    }
}
