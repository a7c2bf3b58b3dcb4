//! Search: the query typed after `/`, and the next row (or the one before) whose cells hold
//! it.
//!
//! # Bounded work
//!
//! A search looks at most [`SEARCH_ROWS`] rows from the cursor, one formatted cell at a time
//! (strings are compared as they are), so a miss costs O(`SEARCH_ROWS` × columns).

use super::rows::RowSet;

use crate::cells::{contains_ignore_case, format_cell, text_at};

/// Rows a search looks at from the cursor.
pub(crate) const SEARCH_ROWS: usize = 100_000;

/// The last query searched for.
#[derive(Debug, Default)]
pub(crate) struct Search {
    query: Option<String>,
}

impl Search {
    /// The query, once one was typed.
    pub(crate) fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Sets the query `n` and `N` look for.
    pub(super) fn set(&mut self, query: String) {
        self.query = Some(query);
    }

    /// The row of `rows` after row `from` (before it, not `forward`) with a cell that holds
    /// the query (case-insensitive), at most [`SEARCH_ROWS`] rows away: its index and
    /// position.
    ///
    /// # Errors
    ///
    /// A message for the status line when there is no query or nothing matched.
    pub(super) fn find(
        &self,
        rows: &RowSet<'_>,
        from: usize,
        forward: bool,
    ) -> Result<(usize, u64), String> {
        let Some(query) = &self.query else {
            return Err("no search: press / first".to_owned());
        };
        let needle = query.to_lowercase();
        let len = rows.len();
        let mut cell = String::new();
        for step in 1..=SEARCH_ROWS.min(len) {
            let i = if forward {
                match from.checked_add(step) {
                    Some(i) if i < len => i,
                    _ => break,
                }
            } else {
                match from.checked_sub(step) {
                    Some(i) => i,
                    None => break,
                }
            };
            let Some(pos) = rows.pos_at(i) else {
                continue;
            };
            let Some((batch, r)) = rows.data().locate(pos) else {
                continue;
            };
            let hit = batch.columns().iter().any(|a| {
                if let Some(s) = text_at(a.as_ref(), r) {
                    contains_ignore_case(s, &needle)
                } else {
                    format_cell(a.as_ref(), r, &mut cell);
                    contains_ignore_case(&cell, &needle)
                }
            });
            if hit {
                return Ok((i, pos));
            }
        }
        let dir = if forward { "below" } else { "above" };
        Err(format!(
            "{query:?}: no match in the {} rows {dir}",
            tickertable_tools::demo::fmt_count(SEARCH_ROWS.min(len) as u64)
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use tickertable::Mirror;

    use super::*;

    /// A mirror holding `rows` from position 100.
    fn mirror(rows: &[(&str, f64)]) -> Mirror {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Sym", DataType::Utf8, false),
            Field::new("Price", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        crate::testing::mirror_at(100, &batch)
    }

    fn search(query: &str) -> Search {
        let mut s = Search::default();
        s.set(query.to_owned());
        s
    }

    #[test]
    fn smoke() {
        let m = mirror(&[("AAPL", 1.0), ("MSFT", 2.0), ("AAPL", 3.0)]);
        let rows = RowSet::new(&m, None, None);
        let s = search("aapl");
        assert_eq!(s.query(), Some("aapl"));
        assert_eq!(
            s.find(&rows, 0, true),
            Ok((2, 102)),
            "not the cursor's own row"
        );
        assert_eq!(s.find(&rows, 2, false), Ok((0, 100)));
    }

    #[test]
    fn numbers_match_as_they_are_shown() {
        let m = mirror(&[("AAPL", 1.0), ("MSFT", 101.25)]);
        let rows = RowSet::new(&m, None, None);
        assert_eq!(search("1.2").find(&rows, 0, true), Ok((1, 101)));
    }

    #[test]
    fn a_miss_says_how_far_it_looked_and_which_way() {
        let m = mirror(&[("AAPL", 1.0), ("MSFT", 2.0)]);
        let rows = RowSet::new(&m, None, None);
        assert_eq!(
            search("NVDA").find(&rows, 0, true),
            Err("\"NVDA\": no match in the 2 rows below".to_owned())
        );
        assert_eq!(
            search("MSFT").find(&rows, 1, true),
            Err("\"MSFT\": no match in the 2 rows below".to_owned()),
            "only rows after the cursor"
        );
        assert!(search("MSFT")
            .find(&rows, 0, false)
            .unwrap_err()
            .ends_with("above"));
        assert_eq!(
            Search::default().find(&rows, 0, true),
            Err("no search: press / first".to_owned())
        );
    }
}
