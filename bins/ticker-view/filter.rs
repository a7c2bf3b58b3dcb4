//! Row filters: `Column op value`, as typed after `f`.
//!
//! Operators: `==` (or `=`), `!=`, `>`, `>=`, `<`, `<=`, and `~` (contains, case-insensitive).
//! Column names match case-insensitively. A numeric column compares numbers (`Price > 100`);
//! a string column compares strings (`Sym == AAPL`, quotes optional).

use std::fmt;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::mirror::{is_numeric, is_text, Col};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Contains => "~",
        }
    }

    fn test(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Op::Eq => ord == Equal,
            Op::Ne => ord != Equal,
            Op::Gt => ord == Greater,
            Op::Ge => ord != Less,
            Op::Lt => ord == Less,
            Op::Le => ord != Greater,
            Op::Contains => false,
        }
    }
}

/// The value compared with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Num(f64),
    Text(String),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub(crate) column: usize,
    pub(crate) column_name: String,
    pub(crate) op: Op,
    pub(crate) operand: Operand,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operand {
            Operand::Num(n) => write!(f, "{} {} {n}", self.column_name, self.op.symbol()),
            Operand::Text(s) => write!(f, "{} {} {s}", self.column_name, self.op.symbol()),
        }
    }
}

impl Filter {
    /// Parses `Column op value` against `schema`.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong, for the status line.
    pub(crate) fn parse(input: &str, schema: &Schema) -> Result<Self, String> {
        const OPS: [(&str, Op); 8] = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
            ("~", Op::Contains),
        ];
        let (at, sym, op) = OPS
            .iter()
            .filter_map(|(sym, op)| input.find(sym).map(|at| (at, *sym, *op)))
            .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
            .ok_or_else(|| "expected `Column op value`, op one of == != > >= < <= ~".to_owned())?;
        let name = input[..at].trim();
        let value = input[at + sym.len()..].trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        if name.is_empty() {
            return Err("no column before the operator".to_owned());
        }
        let (column, field) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                format!("no column {name:?}; columns: {}", names.join(", "))
            })?;
        let dt = field.data_type();
        let operand =
            if op == Op::Contains {
                Operand::Text(value.to_lowercase())
            } else if is_text(dt) {
                Operand::Text(value.to_owned())
            } else if is_numeric(dt) && !matches!(dt, arrow_schema::DataType::Timestamp(..)) {
                Operand::Num(value.parse::<f64>().map_err(|_| {
                    format!("{} is numeric: {value:?} is not a number", field.name())
                })?)
            } else {
                return Err(format!(
                    "cannot filter on {} ({dt}): use a number or string column",
                    field.name()
                ));
            };
        if op == Op::Contains && !is_text(dt) {
            return Err(format!("~ needs a string column; {} is {dt}", field.name()));
        }
        Ok(Self {
            column,
            column_name: field.name().clone(),
            op,
            operand,
        })
    }

    /// Calls `hit(k)` for each row `first + k` (`k < len`) of `batch` that passes.
    pub(crate) fn scan(
        &self,
        batch: &RecordBatch,
        first: usize,
        len: usize,
        mut hit: impl FnMut(usize),
    ) {
        let col = Col::new(batch.column(self.column));
        for k in 0..len {
            if self.test(&col, first + k) {
                hit(k);
            }
        }
    }

    /// Whether row `i` of `col` (this filter's column) passes.
    pub(crate) fn test(&self, col: &Col<'_>, i: usize) -> bool {
        match &self.operand {
            Operand::Num(x) => col
                .num(i)
                .and_then(|v| v.partial_cmp(x))
                .is_some_and(|o| self.op.test(o)),
            Operand::Text(s) if self.op == Op::Contains => {
                col.text(i).is_some_and(|v| contains_ignore_case(v, s))
            }
            Operand::Text(s) => col.text(i).is_some_and(|v| self.op.test(v.cmp(s.as_str()))),
        }
    }

    /// The string this filter pins its column to (`Sym == AAPL`), if it does.
    pub(crate) fn pinned(&self) -> Option<&str> {
        match (&self.operand, self.op) {
            (Operand::Text(s), Op::Eq) => Some(s),
            _ => None,
        }
    }
}

/// Whether `hay` contains `needle_lower` (already lowercase), ignoring ASCII case, without
/// allocating.
pub(crate) fn contains_ignore_case(hay: &str, needle_lower: &str) -> bool {
    let n = needle_lower.as_bytes();
    if n.is_empty() {
        return true;
    }
    hay.as_bytes()
        .windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, StringArray};
    use arrow_schema::{DataType, Field};

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, false),
        ])
    }

    #[test]
    fn smoke() {
        let f = Filter::parse("Price > 100", &schema()).unwrap();
        assert_eq!(
            (f.column, f.op, &f.operand),
            (1, Op::Gt, &Operand::Num(100.0))
        );
        assert_eq!(f.to_string(), "Price > 100");
    }

    #[test]
    fn parses_operators_names_and_quotes() {
        let s = schema();
        let f = Filter::parse("sym == \"AAPL\"", &s).unwrap();
        assert_eq!((f.column, f.op, f.pinned()), (0, Op::Eq, Some("AAPL")));
        assert_eq!(Filter::parse("Price>=1.5", &s).unwrap().op, Op::Ge);
        assert_eq!(Filter::parse("Price <= 2", &s).unwrap().op, Op::Le);
        assert_eq!(Filter::parse("Sym = MSFT", &s).unwrap().op, Op::Eq);
        assert_eq!(Filter::parse("Sym ~ ms", &s).unwrap().op, Op::Contains);
        assert!(Filter::parse("Price > abc", &s)
            .unwrap_err()
            .contains("not a number"));
        assert!(Filter::parse("Nope == 1", &s)
            .unwrap_err()
            .contains("no column"));
        assert!(Filter::parse("Price", &s).is_err());
    }

    #[test]
    fn scans_a_batch() {
        let batch = RecordBatch::try_new(
            Arc::new(schema()),
            vec![
                Arc::new(StringArray::from(vec!["AAPL", "MSFT", "AAPL"])),
                Arc::new(Float64Array::from(vec![99.0, 150.0, 101.0])),
            ],
        )
        .unwrap();
        let mut hits = Vec::new();
        let f = Filter::parse("Price > 100", batch.schema_ref()).unwrap();
        f.scan(&batch, 0, 3, |k| hits.push(k));
        assert_eq!(hits, [1, 2]);
        hits.clear();
        let f = Filter::parse("Sym ~ aa", batch.schema_ref()).unwrap();
        f.scan(&batch, 1, 2, |k| hits.push(k));
        assert_eq!(hits, [1]);
    }
}
