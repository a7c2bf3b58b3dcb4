//! Row filters, as typed after `f`: an expression of the library's language
//! (`tickertable::expr`), such as `Price > 100 && Sym in ("AAPL", "MSFT")` or
//! `Size >= 1000 || is_null(Venue)`, checked against the table's schema when it is typed.
//! Parse and type errors name the byte position they are at (`at 6: ...`), for the status line.
//!
//! # Shorthand
//!
//! The viewer's earlier filters had `Column ~ text`: the rows whose text column contains
//! `text`, ignoring ASCII case (`Sym ~ aa`). `~` is not an operator of the expression
//! language, so such a line does not parse; when it does not, and it has that shape, it is
//! kept as that shorthand (the help screen says so). Anything else that does not parse is an
//! error.
//!
//! # Evaluation
//!
//! A filter evaluates whole batches ([`Filter::mask`]): the expression runs Arrow's compute
//! kernels over a batch's columns, and the shorthand scans one column. The open table's
//! filter state (`table_state/filter.rs`) calls it on the rows each update adds or modifies,
//! never on the whole table.

use std::fmt;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::Schema;
use tickertable::expr::{BinaryOp, ExprKind, Literal};
use tickertable::{BoundExpr, Expr};

use crate::cells::{contains_ignore_case, is_text, text_at};

/// A filter, checked against a schema.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    /// What the status line shows: the expression's canonical form, or the shorthand.
    shown: String,
    kind: Kind,
    /// The schema indices of the columns the filter reads.
    columns: Vec<usize>,
    /// The column and string the filter pins (`Sym == "AAPL"`), if it does.
    pinned: Option<(usize, String)>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// An expression of `tickertable::expr`.
    Expr(Box<BoundExpr>),
    /// The shorthand `Column ~ text`: a text column contains `needle` (lowercase), ignoring
    /// ASCII case.
    Contains { column: usize, needle: String },
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Filter {
    /// Parses `input` and checks it against `schema`: an expression, or (if it does not
    /// parse) the shorthand `Column ~ text`.
    ///
    /// # Errors
    ///
    /// The expression's parse or type error, with its position, for the status line.
    pub(crate) fn parse(input: &str, schema: &Schema) -> Result<Self, String> {
        let expr = match Expr::parse(input) {
            Ok(e) => e,
            Err(e) => return Self::contains(input, schema).ok_or_else(|| e.to_string()),
        };
        let bound = expr.bind_predicate(schema).map_err(|e| e.to_string())?;
        let pinned = pinned_in(bound.expr())
            .and_then(|(name, s)| Some((schema.index_of(name).ok()?, s.to_owned())));
        Ok(Self {
            shown: bound.expr().to_string(),
            columns: bound.column_indices().to_vec(),
            kind: Kind::Expr(Box::new(bound)),
            pinned,
        })
    }

    /// The shorthand `Column ~ text` (the column named ignoring case, the text optionally
    /// quoted), if `input` is one over a text column of `schema`.
    fn contains(input: &str, schema: &Schema) -> Option<Self> {
        let (name, value) = input.split_once('~')?;
        let (name, value) = (name.trim(), value.trim());
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let (column, field) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().eq_ignore_ascii_case(name))?;
        if !is_text(field.data_type()) {
            return None;
        }
        Some(Self {
            shown: format!("{} ~ {value}", field.name()),
            kind: Kind::Contains {
                column,
                needle: value.to_lowercase(),
            },
            columns: vec![column],
            pinned: None,
        })
    }

    /// The rows of `batch` the filter keeps: true where it does (a null counts as false).
    /// One kernel pass per operator over the batch's rows.
    ///
    /// # Errors
    ///
    /// An expression that fails on these rows (integer overflow) or a batch without the
    /// filter's columns.
    pub(crate) fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        match &self.kind {
            Kind::Expr(e) => e.filter_mask(batch).map_err(|e| e.to_string()),
            Kind::Contains { column, needle } => {
                let Some(col) = batch.columns().get(*column) else {
                    return Err(format!("the rows have no column {column}"));
                };
                Ok((0..batch.num_rows())
                    .map(|i| {
                        Some(
                            text_at(col.as_ref(), i)
                                .is_some_and(|v| contains_ignore_case(v, needle)),
                        )
                    })
                    .collect())
            }
        }
    }

    /// The schema indices of the columns the filter reads: a modified row whose written
    /// columns are none of them passes or fails as before.
    pub(crate) fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The column and string this filter pins (`Sym == "AAPL"`, alone or in a chain of
    /// `&&`), if it does.
    pub(crate) fn pinned(&self) -> Option<(usize, &str)> {
        self.pinned.as_ref().map(|(c, s)| (*c, s.as_str()))
    }
}

/// The `Column == "text"` of `e`, or of one side of its top-level `&&`s.
fn pinned_in(e: &Expr) -> Option<(&str, &str)> {
    match e.kind() {
        ExprKind::Binary {
            op: BinaryOp::Eq,
            left,
            right,
        } => match (left.kind(), right.kind()) {
            (ExprKind::Column(c), ExprKind::Literal(Literal::Str(s)))
            | (ExprKind::Literal(Literal::Str(s)), ExprKind::Column(c)) => Some((c, s)),
            _ => None,
        },
        ExprKind::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => pinned_in(left).or_else(|| pinned_in(right)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, false),
            Field::new("Size", DataType::Int64, false),
            Field::new("Venue", DataType::Utf8, true),
        ])
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL", "NVDA"])),
                Arc::new(Float64Array::from(vec![99.0, 150.0, 101.0, 900.0])),
                Arc::new(Int64Array::from(vec![500, 2_000, 100, 10])),
                Arc::new(StringArray::from(vec![
                    Some("X"),
                    None,
                    Some("Y"),
                    Some("X"),
                ])),
            ],
        )
        .unwrap()
    }

    /// The rows of [`batch`] that `filter` keeps.
    fn kept(filter: &str) -> Vec<usize> {
        let f = Filter::parse(filter, &schema()).unwrap();
        let mask = f.mask(&batch()).unwrap();
        (0..mask.len()).filter(|&i| mask.value(i)).collect()
    }

    #[test]
    fn smoke() {
        let f = Filter::parse("Price > 100", &schema()).unwrap();
        assert_eq!(f.to_string(), "Price > 100");
        assert_eq!(f.columns(), [1]);
        assert_eq!(kept("Price > 100"), [1, 2, 3]);
    }

    #[test]
    fn expressions_combine_columns_lists_and_nulls() {
        assert_eq!(kept(r#"Price > 100 && Sym in ("AAPL", "MSFT")"#), [1, 2]);
        assert_eq!(kept("Size >= 1000 || is_null(Venue)"), [1]);
        assert_eq!(kept("not (Sym == 'AAPL') and Price < 500"), [1]);
        let f = Filter::parse("Size >= 1000 || is_null(Venue)", &schema()).unwrap();
        assert_eq!(f.columns(), [2, 3]);
        assert_eq!(f.to_string(), "Size >= 1000 || is_null(Venue)");
    }

    #[test]
    fn errors_say_where_they_are() {
        let s = schema();
        let err = |text| Filter::parse(text, &s).unwrap_err();
        assert_eq!(
            err("Prise > 100"),
            r#"at 0: no column named "Prise" (did you mean "Price"?)"#
        );
        assert_eq!(err("Sym > 100"), "at 4: cannot apply '>' to Utf8 and Int64");
        assert!(
            err("Price >").starts_with("at 7: expected"),
            "{}",
            err("Price >")
        );
        assert!(err("Price + 1").contains("boolean"), "{}", err("Price + 1"));
        // An unquoted string is a column: the error says so, where it is.
        assert!(err("Sym == AAPL").starts_with("at 7: no column named \"AAPL\""));
        // `~` on a column that is not text is no shorthand: the parse error stands.
        assert!(
            err("Price ~ 1").starts_with("at 6:"),
            "{}",
            err("Price ~ 1")
        );
    }

    #[test]
    fn the_contains_shorthand_is_kept_when_the_line_does_not_parse() {
        assert_eq!(kept("Sym ~ aa"), [0, 2]);
        assert_eq!(kept("sym ~ \"Sf\""), [1]);
        let f = Filter::parse("venue~x", &schema()).unwrap();
        assert_eq!(
            (f.to_string().as_str(), f.columns()),
            ("Venue ~ x", &[3][..])
        );
        assert_eq!(f.pinned(), None);
    }

    #[test]
    fn a_filter_pins_the_string_its_column_equals() {
        let pinned = |text| {
            Filter::parse(text, &schema())
                .unwrap()
                .pinned()
                .map(|(c, s)| (c, s.to_owned()))
        };
        assert_eq!(pinned(r#"Sym == "AAPL""#), Some((0, "AAPL".to_owned())));
        assert_eq!(
            pinned("Price > 1 && 'MSFT' = Sym"),
            Some((0, "MSFT".to_owned()))
        );
        assert_eq!(pinned(r#"Sym == "AAPL" || Price > 1"#), None);
        assert_eq!(pinned("Price > 1"), None);
    }
}
