//! Aggregates written as text, as ticker-serve's config and Python take them:
//! `"count"`, `"sum(Size)"`, `"wmean(Price, Size) as vwap"`.

use std::fmt;
use std::str::FromStr;

use crate::derive::agg::{Agg, AggKind};

/// An aggregate's text refused by [`Agg::from_str`]: where in it (a byte offset), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggParseError {
    at: usize,
    reason: String,
}

impl AggParseError {
    /// The byte offset in the text where the problem is.
    pub fn at(&self) -> usize {
        self.at
    }

    /// What is wrong there.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for AggParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.reason)
    }
}

impl std::error::Error for AggParseError {}

/// Parses one aggregate.
///
/// A function (ASCII case ignored) and its columns, then optionally `as` and the output
/// column's name; without `as`, the default name (`count`, `sum_Size`, `wmean_Price`). The
/// functions: `count` (or `count()`); `sum`, `min`, `max`, `first`, `last` and `mean` (or
/// `avg`) of one column; `wmean` (or `weighted_mean`) of a value and a weight column.
///
/// ```
/// use tickertable::Agg;
///
/// assert_eq!("sum(Size) as volume".parse::<Agg>()?, Agg::sum("Size").with_name("volume"));
/// assert_eq!("wmean(Price, Size)".parse::<Agg>()?.name(), "wmean_Price");
/// let e = "summ(Size)".parse::<Agg>().unwrap_err();
/// assert_eq!(e.at(), 0);
/// # Ok::<(), tickertable::AggParseError>(())
/// ```
impl FromStr for Agg {
    type Err = AggParseError;

    fn from_str(spec: &str) -> Result<Self, AggParseError> {
        parse(spec)
    }
}

/// A function (ASCII case ignored) and its columns, then optionally `as` and the output
/// column's name; without `as`, the engine's default name (`count`, `sum_Size`,
/// `wmean_Price`). The functions: `count` (or `count()`); `sum`, `min`, `max`, `first`,
/// `last` and `mean` (or `avg`) of one column; `wmean` (or `weighted_mean`) of a value and
/// a weight column.
fn parse(spec: &str) -> Result<Agg, AggParseError> {
    let err = |at: usize, reason: String| AggParseError { at, reason };
    let skip_ws = |from: usize| from + (spec[from..].len() - spec[from..].trim_start().len());
    let start = skip_ws(0);
    let word = spec[start..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(spec.len(), |i| start + i);
    let func = &spec[start..word];
    let usage = "count, sum, min, max, first, last, mean or wmean, such as \"sum(Size)\" or \
                 \"wmean(Price, Size) as vwap\"";
    if func.is_empty() {
        return Err(err(start, format!("expected an aggregate: {usage}")));
    }
    let (kind, arity) = match func.to_ascii_lowercase().as_str() {
        "count" => (AggKind::Count, 0),
        "sum" => (AggKind::Sum, 1),
        "min" => (AggKind::Min, 1),
        "max" => (AggKind::Max, 1),
        "first" => (AggKind::First, 1),
        "last" => (AggKind::Last, 1),
        "mean" | "avg" => (AggKind::Mean, 1),
        "wmean" | "weighted_mean" => (AggKind::WeightedMean, 2),
        _ => {
            return Err(err(
                start,
                format!("unknown aggregate {func:?} (expected {usage})"),
            ))
        }
    };
    let mut at = skip_ws(word);
    let mut columns: Vec<&str> = Vec::new();
    if spec[at..].starts_with('(') {
        let open = at;
        let close = spec[open..]
            .find(')')
            .map(|i| open + i)
            .ok_or_else(|| err(open, format!("{func}: '(' is not closed")))?;
        let inner = &spec[open + 1..close];
        if !inner.trim().is_empty() {
            let mut offset = open + 1;
            for part in inner.split(',') {
                let column = part.trim();
                let lead = part.len() - part.trim_start().len();
                if column.is_empty() || column.contains('(') {
                    return Err(err(
                        offset + lead,
                        format!("{func}: expected a column name, found {column:?}"),
                    ));
                }
                columns.push(column);
                offset += part.len() + 1;
            }
        }
        at = skip_ws(close + 1);
    }
    if columns.len() != arity {
        let wanted = match arity {
            0 => "no column".to_owned(),
            1 => format!("one column: {}(Column)", kind.name()),
            _ => format!("a value and a weight column: {}(Price, Size)", kind.name()),
        };
        return Err(err(
            start,
            format!("{func} takes {wanted}, found {}", columns.len()),
        ));
    }
    let rest = &spec[at..];
    let name = if rest.trim().is_empty() {
        None
    } else {
        let keyword = rest.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("as"));
        let after = rest.get(2..).unwrap_or_default();
        if !keyword || !(after.is_empty() || after.starts_with(char::is_whitespace)) {
            return Err(err(
                at,
                format!("expected `as NAME` or the end, found {:?}", rest.trim_end()),
            ));
        }
        let name = after.trim();
        if name.is_empty() {
            return Err(err(at, "`as` needs the output column's name".to_owned()));
        }
        Some(name)
    };
    let agg = match (kind, columns.as_slice()) {
        (AggKind::Sum, [c]) => Agg::sum(c),
        (AggKind::Min, [c]) => Agg::min(c),
        (AggKind::Max, [c]) => Agg::max(c),
        (AggKind::First, [c]) => Agg::first(c),
        (AggKind::Last, [c]) => Agg::last(c),
        (AggKind::Mean, [c]) => Agg::mean(c),
        (AggKind::WeightedMean, [c, w]) => Agg::weighted_mean(c, w),
        _ => Agg::count(),
    };
    Ok(match name {
        Some(name) => agg.with_name(name),
        None => agg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_parse_with_default_and_given_names() {
        let ok = |s: &str| s.parse::<Agg>().unwrap();
        assert_eq!(ok("count"), Agg::count());
        assert_eq!(ok(" COUNT() "), Agg::count());
        assert_eq!(ok("count as n"), Agg::count().with_name("n"));
        assert_eq!(ok("sum(Size)"), Agg::sum("Size"));
        assert_eq!(ok("sum(Size)").name(), "sum_Size");
        assert_eq!(
            ok("sum( Size ) AS total volume"),
            Agg::sum("Size").with_name("total volume")
        );
        assert_eq!(ok("min(Price)"), Agg::min("Price"));
        assert_eq!(ok("max(Price)"), Agg::max("Price"));
        assert_eq!(ok("first(Price)"), Agg::first("Price"));
        assert_eq!(ok("last(Price)"), Agg::last("Price"));
        assert_eq!(ok("avg(Price)"), Agg::mean("Price"));
        assert_eq!(ok("mean(Price)").name(), "mean_Price");
        assert_eq!(
            ok("wmean(Price, Size)"),
            Agg::weighted_mean("Price", "Size")
        );
        assert_eq!(ok("wmean(Price, Size)").name(), "wmean_Price");
        assert_eq!(
            ok("weighted_mean(Price,Size) as vwap"),
            Agg::weighted_mean("Price", "Size").with_name("vwap")
        );
    }

    #[test]
    fn bad_aggregates_say_where_and_why() {
        let bad = |s: &str| s.parse::<Agg>().unwrap_err();
        let e = bad("  summ(Size)");
        assert_eq!(e.at(), 2);
        assert!(
            e.reason().starts_with("unknown aggregate \"summ\""),
            "{e:?}"
        );
        let e = bad("sum(Size, Price)");
        assert!(e.reason().contains("sum takes one column"), "{e:?}");
        assert!(bad("wmean(Price)")
            .reason()
            .contains("a value and a weight"));
        assert!(bad("count(Size)")
            .reason()
            .contains("count takes no column"));
        assert!(bad("sum").reason().contains("found 0"));
        assert_eq!(bad("sum(Size").at(), 3);
        assert_eq!(bad("wmean(Price, )").at(), 13);
        let e = bad("sum(Size) volume");
        assert_eq!(e.at(), 10);
        assert!(e.reason().contains("expected `as NAME`"), "{e:?}");
        assert!(bad("sum(Size) as ")
            .reason()
            .contains("needs the output column's name"));
        assert!(bad("sum(Size) assize")
            .reason()
            .contains("expected `as NAME`"));
        assert_eq!(bad("").at(), 0);
        assert_eq!(bad("(Size)").at(), 0);
    }
}
