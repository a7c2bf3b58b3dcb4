//! Writing a cycle's rows into storage.
//!
//! First the written rows are gathered, in slot order, into one batch (arrow's `interleave`
//! over the input batches, the old chunks and a null): that batch is also the update's
//! modified and added rows. Then each chunk holding a written slot is rebuilt by merging its
//! old rows with its written rows, column by column; a column none of whose rows changed is
//! shared with the old chunk, and untouched chunks are shared with earlier snapshots.
//!
//! # Cost
//!
//! O(rows written × columns) to gather, and O(chunk rows × columns) per chunk rebuilt.

use arrow_array::{make_array, new_null_array, Array, ArrayRef, RecordBatch};
use arrow_data::transform::MutableArrayData;
use arrow_data::ArrayData;
use arrow_schema::SchemaRef;

use super::layout::{CellFrom, Layout};
use super::resolve::Resolved;
use crate::table::chunk::{ChunkLog, Chunks};

/// Gathers the rows `layout` writes, in slot order, from the input, the old chunks `chunks`
/// (of `chunk_rows` rows each) and nulls. `None` when no row is written.
pub(super) fn gather(
    schema: &SchemaRef,
    input: &[RecordBatch],
    resolved: &Resolved,
    layout: &Layout,
    chunks: &Chunks,
    chunk_rows: usize,
) -> Option<RecordBatch> {
    if layout.writes.is_empty() {
        return None;
    }
    let mut olds: Vec<usize> = Vec::new();
    let mut indices: Vec<(usize, usize)> = Vec::with_capacity(layout.writes.len());
    let columns = (0..schema.fields().len())
        .map(|c| {
            let mut arrays: Vec<ArrayRef> = Vec::new();
            let inputs: Vec<Option<usize>> = input
                .iter()
                .enumerate()
                .map(|(b, batch)| {
                    resolved.column_of(b, c).map(|i| {
                        arrays.push(batch.column(i).clone());
                        arrays.len() - 1
                    })
                })
                .collect();
            olds.clear();
            let mut null = None;
            for w in &layout.writes {
                match w.cell(resolved, c) {
                    CellFrom::Old(s) => olds.push(s / chunk_rows),
                    CellFrom::Null if null.is_none() => {
                        arrays.push(new_null_array(schema.field(c).data_type(), 1));
                        null = Some(arrays.len() - 1);
                    }
                    CellFrom::Input { .. } | CellFrom::Null => {}
                }
            }
            olds.sort_unstable();
            olds.dedup();
            let first_old = arrays.len();
            arrays.extend(olds.iter().map(|&ci| chunks[ci].batch.column(c).clone()));
            indices.clear();
            indices.extend(layout.writes.iter().map(|w| match w.cell(resolved, c) {
                CellFrom::Input { batch, row } => (
                    inputs[batch].expect("invariant: a given cell's column is in its batch"),
                    row,
                ),
                CellFrom::Old(s) => {
                    let at = olds
                        .binary_search(&(s / chunk_rows))
                        .expect("invariant: old chunks were collected above");
                    (first_old + at, s % chunk_rows)
                }
                CellFrom::Null => (null.expect("invariant: the null was made above"), 0),
            }));
            let refs: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
            arrow_select::interleave::interleave(&refs, &indices)
                .expect("invariant: checked input has the table's column types")
        })
        .collect();
    Some(
        RecordBatch::try_new(schema.clone(), columns)
            .expect("invariant: checked input never puts a null where none is allowed"),
    )
}

/// Stores the rows `layout` writes (`written`, from [`gather`]) into `log`: drops the rows
/// past the new end, rebuilds the chunks holding a written slot and appends new ones.
pub(super) fn store(
    log: &mut ChunkLog,
    schema: &SchemaRef,
    key: &[usize],
    resolved: &Resolved,
    layout: &Layout,
    written: Option<&RecordBatch>,
    chunk_rows: usize,
) {
    log.truncate_to(layout.kept() as u64);
    let Some(written) = written else {
        debug_assert_eq!(log.rows(), 0..layout.n2 as u64);
        return;
    };
    let ncols = schema.fields().len();
    let written_data: Vec<ArrayData> = written.columns().iter().map(Array::to_data).collect();
    let writes = &layout.writes;
    let mut rows: Vec<usize> = Vec::with_capacity(chunk_rows);
    let mut first = 0;
    while first < writes.len() {
        let ci = writes[first].target / chunk_rows;
        let start = ci * chunk_rows;
        let end = (start + chunk_rows).min(layout.n2);
        let mut last = first;
        while last < writes.len() && writes[last].target < end {
            last += 1;
        }
        let group = &writes[first..last];
        rows.clear();
        rows.extend(group.iter().map(|w| w.target - start));
        let old = (ci < log.chunks().len()).then(|| log.chunks()[ci].clone());
        let columns: Vec<ArrayRef> = (0..ncols)
            .map(|c| {
                let old_column = old.as_ref().map(|o| o.batch.column(c));
                match old_column {
                    Some(col)
                        if col.len() == end - start
                            && group
                                .iter()
                                .all(|w| w.unchanged(resolved, c, key.contains(&c))) =>
                    {
                        col.clone()
                    }
                    _ => merge(old_column, &written_data[c], &rows, first, end - start),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("invariant: rows of the table fit its schema");
        if old.is_some() {
            log.replace(ci, batch);
        } else {
            log.push(batch);
        }
        first = last;
    }
    debug_assert_eq!(log.rows(), 0..layout.n2 as u64);
}

/// A chunk column of `len` rows: row `rows[i]` is row `first + i` of `written`, every other
/// row is the same row of `old`. O(len).
fn merge(
    old: Option<&ArrayRef>,
    written: &ArrayData,
    rows: &[usize],
    first: usize,
    len: usize,
) -> ArrayRef {
    let old = old.map(|a| Array::to_data(a.as_ref()));
    let mut sources = vec![written];
    sources.extend(old.as_ref());
    let mut out = MutableArrayData::new(sources, false, len);
    let mut at = 0;
    let mut i = 0;
    while i < rows.len() {
        if at < rows[i] {
            out.try_extend(1, at, rows[i])
                .expect("invariant: a chunk's offsets fit their type");
        }
        // A run of consecutive written rows is one extend.
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[j - 1] + 1 {
            j += 1;
        }
        out.try_extend(0, first + i, first + j)
            .expect("invariant: a chunk's offsets fit their type");
        at = rows[j - 1] + 1;
        i = j;
    }
    if at < len {
        out.try_extend(1, at, len)
            .expect("invariant: a chunk's offsets fit their type");
    }
    make_array(out.freeze())
}
