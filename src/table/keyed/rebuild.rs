//! Writing a cycle's rows into storage.
//!
//! First the written rows are gathered, in slot order, into one batch (arrow's `interleave`
//! over the input batches, the old chunks and a null): that batch is also the update's
//! modified and added rows. Then each chunk holding a written slot gets a new version, column
//! by column: a column none of whose rows changed is shared with the old chunk; a changed one
//! is written in place into its spare (see `spare`) when the spare is free and fits, and
//! merged from the old chunk's rows and the written rows otherwise. Untouched chunks are
//! shared with earlier snapshots.
//!
//! # Cost
//!
//! O(rows written × columns) to gather and to write in place, plus O(columns) per chunk
//! touched; a merge costs O(chunk rows) for its column.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::ByteArrayType;
use arrow_array::{
    downcast_primitive_array, make_array, new_null_array, Array, ArrayRef, ArrowPrimitiveType,
    GenericByteArray, PrimitiveArray, RecordBatch,
};
use arrow_buffer::{ArrowNativeType, BooleanBufferBuilder, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_data::transform::MutableArrayData;
use arrow_schema::{DataType, SchemaRef};

use super::layout::{CellFrom, Layout};
use super::resolve::Resolved;
use super::spare::{Spare, Spares};
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
#[allow(clippy::too_many_arguments)] // the parts of one cycle, each borrowed differently
pub(super) fn store(
    log: &mut ChunkLog,
    spares: &mut Spares,
    schema: &SchemaRef,
    key: &[usize],
    resolved: &Resolved,
    layout: &Layout,
    written: Option<&RecordBatch>,
    chunk_rows: usize,
) {
    log.truncate_to(layout.kept() as u64);
    spares.truncate(log.chunks().len());
    let Some(written) = written else {
        debug_assert_eq!(log.rows(), 0..layout.n2 as u64);
        return;
    };
    let ncols = schema.fields().len();
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
                    _ => {
                        let len = end - start;
                        let spare = spares.take(ci, c);
                        let mut lag = Vec::new();
                        let new = old_column
                            .zip(spare)
                            .and_then(|(col, Spare { array, lag: stale })| {
                                let new = rewrite(
                                    array,
                                    &stale,
                                    col,
                                    written.column(c),
                                    &rows,
                                    first,
                                    len,
                                );
                                // Its buffer, for the next spare's lag rows.
                                lag = stale;
                                new
                            })
                            .unwrap_or_else(|| {
                                merge(old_column, written.column(c), &rows, first, len)
                            });
                        if let Some(col) = old_column {
                            spares.keep(ci, c, ncols, col.clone(), &rows, lag);
                        }
                        new
                    }
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

/// A chunk column of `len` rows: row `rows[i]` (ascending) is row `first + i` of `written`,
/// every other row is the same row of `old`, which holds at least those rows. O(len).
///
/// Primitive and byte (string, binary) columns are built directly from their buffers: the
/// old values copied in runs, the written ones put in place. Other types go through arrow's
/// `MutableArrayData`.
fn merge(
    old: Option<&ArrayRef>,
    written: &ArrayRef,
    rows: &[usize],
    first: usize,
    len: usize,
) -> ArrayRef {
    let old = old.map(AsRef::as_ref);
    let merge = Merge {
        rows,
        first,
        len,
        old_len: old.map_or(0, |o| o.len().min(len)),
    };
    downcast_primitive_array!(
        written => merge.primitive(old.map(AsArray::as_primitive), written),
        DataType::Utf8 => merge.bytes(old.map(AsArray::as_string::<i32>), written.as_string::<i32>()),
        DataType::LargeUtf8 => {
            merge.bytes(old.map(AsArray::as_string::<i64>), written.as_string::<i64>())
        }
        DataType::Binary => {
            merge.bytes(old.map(AsArray::as_binary::<i32>), written.as_binary::<i32>())
        }
        DataType::LargeBinary => {
            merge.bytes(old.map(AsArray::as_binary::<i64>), written.as_binary::<i64>())
        }
        _ => merge.generic(old, written)
    )
}

/// Chunk column `current` of `len` rows with row `rows[i]` (ascending) set to row `first + i`
/// of `written`, written in place into `spare`, the column's previous version: its `lag` rows
/// copied from `current`, then the written rows. O(lag + rows written), plus O(`len` / 8) for
/// the validity when there are nulls.
///
/// `None` when the spare cannot be rewritten: its buffers are shared (a snapshot, an update or
/// a reader holds them), it is sliced, the written strings or bytes change a value's length,
/// or the type has no fast path. The caller then merges.
fn rewrite(
    spare: ArrayRef,
    lag: &[u32],
    current: &ArrayRef,
    written: &ArrayRef,
    rows: &[usize],
    first: usize,
    len: usize,
) -> Option<ArrayRef> {
    let rewrite = Rewrite {
        merge: Merge {
            rows,
            first,
            len,
            old_len: current.len().min(len),
        },
        lag,
    };
    downcast_primitive_array!(
        written => rewrite.primitive(spare, current.as_primitive_opt()?, written),
        DataType::Utf8 => rewrite.bytes(spare, current.as_string_opt::<i32>()?, written.as_string::<i32>()),
        DataType::LargeUtf8 => {
            rewrite.bytes(spare, current.as_string_opt::<i64>()?, written.as_string::<i64>())
        }
        DataType::Binary => {
            rewrite.bytes(spare, current.as_binary_opt::<i32>()?, written.as_binary::<i32>())
        }
        DataType::LargeBinary => {
            rewrite.bytes(spare, current.as_binary_opt::<i64>()?, written.as_binary::<i64>())
        }
        _ => None
    )
}

/// A rewrite in place: the merge it stands for, and the spare's lag rows.
#[derive(Debug, Clone, Copy)]
struct Rewrite<'a> {
    merge: Merge<'a>,
    lag: &'a [u32],
}

impl Rewrite<'_> {
    fn primitive<T: ArrowPrimitiveType>(
        self,
        spare: ArrayRef,
        current: &PrimitiveArray<T>,
        written: &PrimitiveArray<T>,
    ) -> Option<ArrayRef> {
        let Merge {
            rows, first, len, ..
        } = self.merge;
        // Our own handle on the spare's buffers, so that dropping the `ArrayRef` leaves it the
        // only one if nobody else holds them.
        let typed = spare.as_primitive_opt::<T>()?.clone();
        drop(spare);
        let (_, values, _) = typed.into_parts();
        let mut buffer = values.into_inner().into_mutable().ok()?;
        let width = std::mem::size_of::<T::Native>();
        let spare_len = buffer.len() / width;
        let current_len = current.len();
        let now = current.values();
        // The spare takes the current column's length, then its lag rows.
        if spare_len > current_len {
            buffer.truncate(current_len * width);
        } else if spare_len < current_len {
            buffer.extend_from_slice(&now[spare_len..current_len]);
        }
        buffer.resize(len * width, 0);
        let values = buffer.typed_data_mut::<T::Native>();
        let stale = spare_len.min(current_len).min(len);
        for &r in self.lag {
            let r = r as usize;
            if r < stale {
                values[r] = now[r];
            }
        }
        let given = &written.values()[first..first + rows.len()];
        for (&r, &v) in rows.iter().zip(given) {
            values[r] = v;
        }
        let nulls = self.merge.nulls(current.nulls(), written.nulls());
        Some(Arc::new(
            PrimitiveArray::<T>::new(ScalarBuffer::new(buffer.into(), 0, len), nulls)
                .with_data_type(written.data_type().clone()),
        ))
    }

    /// Only when no value changes length: the offsets are then the current column's, shared.
    fn bytes<T: ByteArrayType>(
        self,
        spare: ArrayRef,
        current: &GenericByteArray<T>,
        written: &GenericByteArray<T>,
    ) -> Option<ArrayRef> {
        let Merge {
            rows, first, len, ..
        } = self.merge;
        if current.len() != len {
            return None;
        }
        let offsets = current.value_offsets();
        let given = written.value_offsets();
        let same_length = rows.iter().enumerate().all(|(i, &r)| {
            given[first + i + 1].as_usize() - given[first + i].as_usize()
                == offsets[r + 1].as_usize() - offsets[r].as_usize()
        });
        if !same_length {
            return None;
        }
        let typed = spare.as_bytes_opt::<T>()?.clone();
        drop(spare);
        if typed.value_offsets() != offsets {
            return None;
        }
        let (_, values, _) = typed.into_parts();
        let mut buffer = values.into_mutable().ok()?;
        let bytes = buffer.as_slice_mut();
        let now = current.value_data();
        for &r in self.lag {
            let r = r as usize;
            if r < len {
                let (from, to) = (offsets[r].as_usize(), offsets[r + 1].as_usize());
                bytes[from..to].copy_from_slice(&now[from..to]);
            }
        }
        let data = written.value_data();
        for (i, &r) in rows.iter().enumerate() {
            let w = first + i;
            let (from, to) = (offsets[r].as_usize(), offsets[r + 1].as_usize());
            bytes[from..to].copy_from_slice(&data[given[w].as_usize()..given[w + 1].as_usize()]);
        }
        let nulls = self.merge.nulls(current.nulls(), written.nulls());
        let array = GenericByteArray::<T>::try_new(current.offsets().clone(), buffer.into(), nulls)
            .expect("invariant: whole values of the column's type, at the column's offsets");
        Some(Arc::new(array))
    }
}

/// One step of a merge: old rows `from..to`, or written row `first + i`.
#[derive(Debug, Clone, Copy)]
enum Step {
    Old(usize, usize),
    Written(usize),
}

/// Which rows of a chunk column a merge takes from the written rows.
#[derive(Debug, Clone, Copy)]
struct Merge<'a> {
    /// The chunk rows written, ascending: row `rows[i]` is written row `first + i`.
    rows: &'a [usize],
    first: usize,
    /// The rows of the chunk.
    len: usize,
    /// The rows of the old chunk kept (every row at or past it is written).
    old_len: usize,
}

impl Merge<'_> {
    /// Walks the chunk's rows in order: each run of old rows kept, and each written row.
    fn walk(self, mut f: impl FnMut(Step)) {
        let mut at = 0;
        for (i, &r) in self.rows.iter().enumerate() {
            if at < r {
                f(Step::Old(at, r));
            }
            f(Step::Written(i));
            at = r + 1;
        }
        if at < self.old_len {
            f(Step::Old(at, self.old_len));
        }
    }

    fn primitive<T: ArrowPrimitiveType>(
        self,
        old: Option<&PrimitiveArray<T>>,
        written: &PrimitiveArray<T>,
    ) -> ArrayRef {
        let mut values: Vec<T::Native> = Vec::with_capacity(self.len);
        if let Some(old) = old {
            values.extend_from_slice(&old.values()[..self.old_len]);
        }
        values.resize(self.len, T::Native::default());
        let given = &written.values()[self.first..self.first + self.rows.len()];
        for (&r, &v) in self.rows.iter().zip(given) {
            values[r] = v;
        }
        let nulls = self.nulls(old.and_then(Array::nulls), written.nulls());
        Arc::new(
            PrimitiveArray::<T>::new(values.into(), nulls)
                .with_data_type(written.data_type().clone()),
        )
    }

    fn bytes<T: ByteArrayType>(
        self,
        old: Option<&GenericByteArray<T>>,
        written: &GenericByteArray<T>,
    ) -> ArrayRef {
        let offset = |n: usize| {
            T::Offset::from_usize(n).expect("invariant: a chunk's offsets fit their type")
        };
        let given = written.value_offsets();
        let given_bytes =
            given[self.first + self.rows.len()].as_usize() - given[self.first].as_usize();
        let old_bytes = old.map_or(0, |o| {
            let offsets = o.value_offsets();
            offsets[self.old_len].as_usize() - offsets[0].as_usize()
        });
        let mut offsets: Vec<T::Offset> = Vec::with_capacity(self.len + 1);
        let mut values: Vec<u8> = Vec::with_capacity(old_bytes + given_bytes);
        offsets.push(offset(0));
        self.walk(|step| match step {
            Step::Old(from, to) => {
                let old = old.expect("invariant: only an old chunk has old rows");
                let old_offsets = old.value_offsets();
                let (start, end) = (old_offsets[from].as_usize(), old_offsets[to].as_usize());
                let base = values.len();
                values.extend_from_slice(&old.value_data()[start..end]);
                offsets.extend(
                    old_offsets[from + 1..=to]
                        .iter()
                        .map(|o| offset(o.as_usize() - start + base)),
                );
            }
            Step::Written(i) => {
                let w = self.first + i;
                values.extend_from_slice(
                    &written.value_data()[given[w].as_usize()..given[w + 1].as_usize()],
                );
                offsets.push(offset(values.len()));
            }
        });
        debug_assert_eq!(offsets.len(), self.len + 1);
        let nulls = self.nulls(old.and_then(Array::nulls), written.nulls());
        Arc::new(
            GenericByteArray::<T>::try_new(OffsetBuffer::new(offsets.into()), values.into(), nulls)
                .expect("invariant: merged values of the column's type are of its type"),
        )
    }

    /// The validity of the merged column: `None` when no row is null.
    fn nulls(self, old: Option<&NullBuffer>, written: Option<&NullBuffer>) -> Option<NullBuffer> {
        let given = self.first..self.first + self.rows.len();
        let written_nulls = written.filter(|w| given.clone().any(|i| w.is_null(i)));
        let old_nulls = old.filter(|o| o.slice(0, self.old_len).null_count() > 0);
        if written_nulls.is_none() && old_nulls.is_none() {
            return None;
        }
        let mut validity = BooleanBufferBuilder::new(self.len);
        match old_nulls {
            Some(o) => validity.append_buffer(&o.inner().slice(0, self.old_len)),
            None => validity.append_n(self.old_len, true),
        }
        validity.append_n(self.len - self.old_len, true);
        if let Some(w) = written_nulls {
            for (&r, i) in self.rows.iter().zip(given) {
                validity.set_bit(r, w.is_valid(i));
            }
        } else {
            for &r in self.rows {
                validity.set_bit(r, true);
            }
        }
        Some(NullBuffer::new(validity.finish())).filter(|n| n.null_count() > 0)
    }

    /// Any type, through `MutableArrayData`: runs of old rows and of written rows.
    fn generic(self, old: Option<&dyn Array>, written: &ArrayRef) -> ArrayRef {
        let written = written.to_data();
        let old = old.map(Array::to_data);
        let mut sources = vec![&written];
        sources.extend(old.as_ref());
        let mut out = MutableArrayData::new(sources, false, self.len);
        let extend = |out: &mut MutableArrayData<'_>, source, from, to| {
            out.try_extend(source, from, to)
                .expect("invariant: a chunk's offsets fit their type");
        };
        self.walk(|step| match step {
            Step::Old(from, to) => extend(&mut out, 1, from, to),
            Step::Written(i) => extend(&mut out, 0, self.first + i, self.first + i + 1),
        });
        make_array(out.freeze())
    }
}
