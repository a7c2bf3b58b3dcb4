//! A row buffer: Arrow builders for one table's staged shape, filled a row at a time.
//!
//! What a [`RowWriter`](crate::RowWriter)'s cell and a multithreaded writer's lane both
//! build: the table's columns, and for a keyed table the operation column of the mixed input
//! shape ([`OP_COLUMN`](crate::OP_COLUMN)) holding each row's mask (see `table/keyed`).
//! Appending is one `match` and a push per column (no allocation per row once the builders
//! have grown); [`RowBuffer::finish`] turns the rows into a tight `RecordBatch`.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::Result;
use crate::publish::columns::ColumnBuilder;
use crate::schema::Value;
use crate::table::keyed::Masks;

/// Builders for a staged schema; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct RowBuffer {
    staged: SchemaRef,
    columns: Vec<ColumnBuilder>,
    len: usize,
    /// A keyed table's operation masks (whole-row upsert, delete); `None` for other tables.
    masks: Option<Masks>,
    /// Rows of capacity the builders start with after a `finish`.
    capacity: usize,
}

impl RowBuffer {
    /// Builders for `staged` (a table's staged schema), with room for `capacity` rows.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedType`](crate::Error::UnsupportedType) for a column that cannot be
    /// built row by row.
    pub(crate) fn new(staged: &SchemaRef, keyed: bool, capacity: usize) -> Result<Self> {
        let columns = make_columns(staged, capacity)?;
        let masks = keyed.then(|| Masks::new(staged.fields().len() - 1));
        Ok(Self {
            staged: staged.clone(),
            columns,
            len: 0,
            masks,
            capacity,
        })
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The table's column count (the staged schema without the operation column).
    pub(crate) fn table_columns(&self) -> usize {
        self.columns.len() - usize::from(self.masks.is_some())
    }

    /// Appends a whole row, checked against the table's schema; an upsert in a keyed table.
    pub(crate) fn append_row(&mut self, row: &[Value<'_>]) {
        for (builder, v) in self.columns.iter_mut().zip(row) {
            builder.append(v);
        }
        if let Some(masks) = &self.masks {
            self.columns[row.len()].append(&Value::Bytes(&masks.upsert));
        }
        self.len += 1;
    }

    /// Appends a delete of `key` (the values of `key_columns`, checked) in a keyed table.
    pub(crate) fn append_delete(&mut self, key_columns: &[usize], key: &[Value<'_>]) {
        let ncols = self.table_columns();
        for (c, builder) in self.columns.iter_mut().take(ncols).enumerate() {
            match key_columns.iter().position(|&k| k == c) {
                Some(i) => builder.append(&key[i]),
                None => builder.append(&Value::Null),
            }
        }
        let masks = self
            .masks
            .as_ref()
            .expect("invariant: deletes are staged only into keyed tables");
        self.columns[ncols].append(&Value::Bytes(&masks.delete));
        self.len += 1;
    }

    /// Appends a row whose cell `c` is `value(c)`, with the operation mask `mask` of the
    /// columns it gives (keyed tables; ignored otherwise).
    pub(crate) fn append_with<'v>(&mut self, value: impl Fn(usize) -> Value<'v>, mask: &[u8]) {
        let ncols = self.table_columns();
        for (c, builder) in self.columns.iter_mut().take(ncols).enumerate() {
            builder.append(&value(c));
        }
        if self.masks.is_some() {
            self.columns[ncols].append(&Value::Bytes(mask));
        }
        self.len += 1;
    }

    /// The rows as one batch of the staged schema, tight (no spare capacity), leaving empty
    /// builders with room for the buffer's capacity. `None` if there are no rows. O(columns)
    /// plus Arrow's `finish`.
    pub(crate) fn finish(&mut self) -> Option<RecordBatch> {
        if self.len == 0 {
            return None;
        }
        let columns: Vec<_> = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = RecordBatch::try_new(self.staged.clone(), columns)
            .expect("invariant: builders were made from the schema and checked every value");
        self.columns = make_columns(&self.staged, self.capacity)
            .expect("invariant: the schema was accepted when the buffer was made");
        self.len = 0;
        Some(batch)
    }

    /// Sets the capacity the builders start with after the next [`finish`](Self::finish).
    pub(crate) fn set_capacity(&mut self, rows: usize) {
        self.capacity = rows;
    }
}

fn make_columns(staged: &SchemaRef, capacity: usize) -> Result<Vec<ColumnBuilder>> {
    staged
        .fields()
        .iter()
        .map(|f| ColumnBuilder::try_new(f, capacity))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::keyed::staged_schema;
    use crate::test_util::{i64_column, int_schema};

    #[test]
    fn smoke() {
        let mut rows = RowBuffer::new(&int_schema(), false, 4).unwrap();
        rows.append_row(&[Value::Int(1)]);
        rows.append_row(&[Value::Int(2)]);
        let batch = rows.finish().unwrap();
        assert_eq!(i64_column(&[batch], 0), vec![1, 2]);
        assert!(rows.finish().is_none());
    }

    #[test]
    fn finished_columns_keep_no_spare_capacity() {
        let mut rows = RowBuffer::new(&int_schema(), false, 1 << 16).unwrap();
        rows.append_row(&[Value::Int(7)]);
        let batch = rows.finish().unwrap();
        assert!(
            batch.get_array_memory_size() < 1024,
            "{} bytes for one row",
            batch.get_array_memory_size()
        );
    }

    #[test]
    fn a_keyed_buffer_stages_upserts_and_deletes_with_their_masks() {
        let staged = staged_schema(&int_schema());
        let mut rows = RowBuffer::new(&staged, true, 4).unwrap();
        rows.append_row(&[Value::Int(5)]);
        rows.append_delete(&[0], &[Value::Int(5)]);
        let batch = rows.finish().unwrap();
        let ops = arrow_array::cast::AsArray::as_binary::<i32>(batch.column(1));
        assert_eq!((ops.value(0), ops.value(1)), (&[1u8][..], &[0u8][..]));
    }
}
