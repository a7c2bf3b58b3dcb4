//! Reading values back from a snapshot: columns by name, typed; rows as views; a keyed
//! table's rows in key order. Nothing here copies the table: columns and rows borrow the
//! snapshot's chunks.

use std::fmt;

use arrow_array::cast::AsArray;
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::DataType;

use crate::error::{Error, Result};
use crate::schema::{value_at, OwnedValue, Value};
use crate::table::snapshot::TableSnapshot;

/// One column of a snapshot, across its chunks, borrowed. Made by [`TableSnapshot::column`].
#[derive(Clone)]
pub struct Column<'a> {
    name: &'a str,
    data_type: &'a DataType,
    chunks: Vec<&'a ArrayRef>,
    len: usize,
}

impl<'a> Column<'a> {
    /// The column's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The column's type.
    pub fn data_type(&self) -> &DataType {
        self.data_type
    }

    /// How many values it has (the snapshot's row count).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The column's arrays, one per chunk, in row order. No copy.
    pub fn chunks(&self) -> impl Iterator<Item = &'a ArrayRef> + '_ {
        self.chunks.iter().copied()
    }

    /// The `i`th value, `None` past the end or for a type [`Value`] cannot hold. O(chunks).
    pub fn get(&self, mut i: usize) -> Option<Value<'a>> {
        for &c in &self.chunks {
            if i < c.len() {
                return value_at(c.as_ref(), i);
            }
            i -= c.len();
        }
        None
    }

    /// Every value, in row order (`None` for a type [`Value`] cannot hold).
    pub fn iter(&self) -> impl Iterator<Item = Option<Value<'a>>> + '_ {
        self.chunks
            .iter()
            .flat_map(|&c| (0..c.len()).map(move |i| value_at(c.as_ref(), i)))
    }

    /// The values as `T`'s native type (`None` for a null), in row order.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if the column is not of type `T`.
    pub fn primitive<T: ArrowPrimitiveType>(
        &self,
    ) -> Result<impl Iterator<Item = Option<T::Native>> + 'a> {
        // The Rust type decides (a timestamp's zone does not matter, its unit does).
        let fits = std::mem::discriminant(self.data_type) == std::mem::discriminant(&T::DATA_TYPE)
            && self
                .chunks
                .iter()
                .all(|a| a.as_primitive_opt::<T>().is_some());
        if !fits {
            return Err(self.mismatch(T::DATA_TYPE));
        }
        let arrays: Vec<&'a ArrayRef> = self.chunks.clone();
        Ok(arrays
            .into_iter()
            .flat_map(|a| a.as_primitive::<T>().iter()))
    }

    /// The values of a `Utf8` or `LargeUtf8` column (`None` for a null), in row order.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaMismatch`] if the column holds no strings.
    pub fn strings(&self) -> Result<impl Iterator<Item = Option<&'a str>> + 'a> {
        let large = match self.data_type {
            DataType::Utf8 => false,
            DataType::LargeUtf8 => true,
            _ => return Err(self.mismatch(DataType::Utf8)),
        };
        let arrays: Vec<&'a ArrayRef> = self.chunks.clone();
        Ok(arrays.into_iter().flat_map(move |a| {
            let values: Box<dyn Iterator<Item = Option<&'a str>> + 'a> = if large {
                Box::new(a.as_string::<i64>().iter())
            } else {
                Box::new(a.as_string::<i32>().iter())
            };
            values
        }))
    }

    fn mismatch(&self, expected: DataType) -> Error {
        Error::SchemaMismatch {
            table: String::new(),
            column: self.name.to_owned(),
            expected,
            found: self.data_type.clone(),
        }
    }
}

impl fmt::Debug for Column<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Column")
            .field("name", &self.name)
            .field("data_type", self.data_type)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// One row of a snapshot, borrowed: a chunk and an index in it.
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    batch: &'a RecordBatch,
    index: usize,
    position: u64,
}

impl<'a> RowRef<'a> {
    /// The row's position in its table (see [`table`](crate::table#retention)).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many columns the row has.
    pub fn len(&self) -> usize {
        self.batch.num_columns()
    }

    /// Whether the row has no columns (never, for a table's row).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column `c`'s value; `None` past the last column or for a type [`Value`] cannot hold.
    pub fn get(&self, c: usize) -> Option<Value<'a>> {
        let column = self.batch.columns().get(c)?;
        value_at(column.as_ref(), self.index)
    }

    /// The value of the column named `name`.
    pub fn get_named(&self, name: &str) -> Option<Value<'a>> {
        self.get(self.batch.schema_ref().index_of(name).ok()?)
    }

    /// Every value, in schema order (`Null` for a type [`Value`] cannot hold).
    pub fn values(&self) -> Vec<Value<'a>> {
        (0..self.len())
            .map(|c| self.get(c).unwrap_or(Value::Null))
            .collect()
    }

    /// Every value, owned.
    pub fn to_owned_values(&self) -> Vec<OwnedValue> {
        (0..self.len())
            .map(|c| self.get(c).map_or(OwnedValue::Null, OwnedValue::from))
            .collect()
    }

    /// The row as a one-row batch sharing the chunk's buffers.
    pub fn to_batch(&self) -> RecordBatch {
        self.batch.slice(self.index, 1)
    }
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowRef")
            .field("position", &self.position)
            .field("values", &self.values())
            .finish()
    }
}

impl TableSnapshot {
    /// The column named `name`, across the snapshot's chunks. O(chunks), no copy.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Float64Array, RecordBatch, StringArray};
    /// # use arrow_array::types::Float64Type;
    /// # use arrow_schema::{DataType, Field, Schema};
    /// # let engine = tickertable::Engine::builder().manual().build()?;
    /// # let schema = Arc::new(Schema::new(vec![
    /// #     Field::new("Sym", DataType::Utf8, false),
    /// #     Field::new("Price", DataType::Float64, false),
    /// # ]));
    /// # let (table, publisher) = engine.append_table("t", schema.clone())?;
    /// # publisher.add(RecordBatch::try_new(schema, vec![
    /// #     Arc::new(StringArray::from(vec!["AAPL", "MSFT"])),
    /// #     Arc::new(Float64Array::from(vec![187.5, 411.0])),
    /// # ])?)?;
    /// # engine.run_cycle();
    /// let snap = table.snapshot();
    /// let prices: Vec<f64> = snap.column("Price")?.primitive::<Float64Type>()?.flatten().collect();
    /// assert_eq!(prices, vec![187.5, 411.0]);
    /// let syms: Vec<&str> = snap.column("Sym")?.strings()?.flatten().collect();
    /// assert_eq!(syms, vec!["AAPL", "MSFT"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoColumnNamed`] if the table has no such column.
    pub fn column(&self, name: &str) -> Result<Column<'_>> {
        let Ok(c) = self.schema().index_of(name) else {
            return Err(Error::NoColumnNamed {
                table: String::new(),
                column: name.to_owned(),
            });
        };
        let field = self.schema().field(c);
        Ok(Column {
            name: field.name(),
            data_type: field.data_type(),
            chunks: self.batches().map(|b| b.column(c)).collect(),
            len: self.num_rows(),
        })
    }

    /// Every row, in order, as borrowed views.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Int64Array, RecordBatch};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::Value;
    /// # let engine = tickertable::Engine::builder().manual().build()?;
    /// # let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    /// # let (table, publisher) = engine.append_table("t", schema.clone())?;
    /// # publisher.add(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![7, 8]))])?)?;
    /// # engine.run_cycle();
    /// let snap = table.snapshot();
    /// let xs: Vec<Value> = snap.iter_rows().map(|r| r.get(0).unwrap()).collect();
    /// assert_eq!(xs, vec![Value::Int(7), Value::Int(8)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter_rows(&self) -> impl Iterator<Item = RowRef<'_>> + '_ {
        let start = self.rows().start;
        self.chunk_starts().flat_map(move |(first, batch)| {
            (0..batch.num_rows()).map(move |index| RowRef {
                batch,
                index,
                position: start.max(first) + index as u64,
            })
        })
    }

    /// The row at position `position`, if the snapshot holds it. O(log chunks).
    pub fn row_at(&self, position: u64) -> Option<RowRef<'_>> {
        if !self.rows().contains(&position) {
            return None;
        }
        let (first, batch) = self.chunk_holding(position)?;
        Some(RowRef {
            batch,
            index: usize::try_from(position - first).ok()?,
            position,
        })
    }

    /// The `i`th row of the snapshot (0 is its first row). O(log chunks).
    pub fn row(&self, i: usize) -> Option<RowRef<'_>> {
        self.row_at(self.rows().start + i as u64)
    }

    /// A keyed table's rows in key order (the order of the key columns' values, as a sort
    /// by key would give), as borrowed views. O(rows × log rows) to sort the keys; no row is
    /// copied. Other kinds' rows come in position order.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow_array::{Int64Array, RecordBatch, StringArray};
    /// # use arrow_schema::{DataType, Field, Schema};
    /// use tickertable::{PublisherOptions, Value};
    /// # let engine = tickertable::Engine::builder().manual().build()?;
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("Sym", DataType::Utf8, false),
    ///     Field::new("Qty", DataType::Int64, false),
    /// ]));
    /// let (book, publisher) = engine.table_publisher(
    ///     "book", schema.clone(), PublisherOptions::default().with_key(["Sym"]))?;
    /// publisher.upsert(RecordBatch::try_new(schema, vec![
    ///     Arc::new(StringArray::from(vec!["MSFT", "AAPL", "NVDA"])),
    ///     Arc::new(Int64Array::from(vec![1, 2, 3])),
    /// ])?)?;
    /// engine.run_cycle();
    /// let snap = book.snapshot();
    /// let syms: Vec<Value> = snap.rows_in_key_order()?.iter().map(|r| r.get(0).unwrap()).collect();
    /// assert_eq!(syms, vec!["AAPL".into(), "MSFT".into(), "NVDA".into()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Arrow`] if the key columns cannot be compared (never for a keyed table, whose
    /// key types were checked when it was made).
    pub fn rows_in_key_order(&self) -> Result<Vec<RowRef<'_>>> {
        let mut rows: Vec<RowRef<'_>> = self.iter_rows().collect();
        let key = self.key_columns();
        if key.is_empty() || rows.is_empty() {
            return Ok(rows);
        }
        let fields = key
            .iter()
            .map(|&k| SortField::new(self.schema().field(k).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let mut keys = converter.empty_rows(rows.len(), 16 * rows.len());
        for batch in self.batches() {
            let columns: Vec<ArrayRef> = key.iter().map(|&k| batch.column(k).clone()).collect();
            converter.append(&mut keys, &columns)?;
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_unstable_by(|&a, &b| keys.row(a).cmp(&keys.row(b)));
        let mut sorted = Vec::with_capacity(rows.len());
        sorted.extend(order.iter().map(|&i| rows[i]));
        rows.clear();
        Ok(sorted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use crate::test_util::{int_batch, int_schema, manual_engine};
    use crate::{PublisherOptions, TableKind, Value};

    #[test]
    fn smoke() {
        let engine = manual_engine();
        let (t, p) = engine.append_table("t", int_schema()).unwrap();
        p.add(int_batch(0..3)).unwrap();
        p.add(int_batch(3..5)).unwrap();
        engine.run_cycle();
        let snap = t.snapshot();
        let col = snap.column("v").unwrap();
        assert_eq!(col.len(), 5);
        assert_eq!(col.get(4), Some(Value::Int(4)));
        let xs: Vec<i64> = col.primitive::<Int64Type>().unwrap().flatten().collect();
        assert_eq!(xs, vec![0, 1, 2, 3, 4]);
        assert_eq!(snap.row(3).unwrap().get(0), Some(Value::Int(3)));
    }

    #[test]
    fn a_ring_snapshot_reads_rows_at_their_positions() {
        let engine = manual_engine();
        let (t, p) = engine
            .table_publisher(
                "r",
                int_schema(),
                PublisherOptions::default().with_kind(TableKind::Ring { capacity: 4 }),
            )
            .unwrap();
        p.add(int_batch(0..3)).unwrap();
        engine.run_cycle();
        p.add(int_batch(3..7)).unwrap();
        engine.run_cycle();
        let snap = t.snapshot();
        assert_eq!(snap.rows(), 3..7);
        let seen: Vec<(u64, Value<'_>)> = snap
            .iter_rows()
            .map(|r| (r.position(), r.get(0).unwrap()))
            .collect();
        assert_eq!(
            seen,
            (3u64..7)
                .map(|v| (v, Value::Int(i64::try_from(v).unwrap())))
                .collect::<Vec<_>>()
        );
        assert!(snap.row_at(2).is_none());
        assert_eq!(snap.row_at(5).unwrap().get(0), Some(Value::Int(5)));
        assert_eq!(snap.row(0).unwrap().position(), 3);
        assert!(snap.row(4).is_none());
    }

    #[test]
    fn asking_for_the_wrong_type_or_a_missing_column_is_an_error() {
        let engine = manual_engine();
        let (t, _) = engine.append_table("t", int_schema()).unwrap();
        let snap = t.snapshot();
        assert!(matches!(
            snap.column("nope"),
            Err(crate::Error::NoColumnNamed { .. })
        ));
        assert!(matches!(
            snap.column("v").unwrap().strings().map(|_| ()),
            Err(crate::Error::SchemaMismatch { .. })
        ));
        assert!(snap.column("v").unwrap().is_empty());
    }

    #[test]
    fn keyed_rows_come_in_key_order_with_multi_column_keys() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", arrow_schema::DataType::Utf8, false),
            Field::new("b", arrow_schema::DataType::Int64, false),
            Field::new("v", arrow_schema::DataType::Int64, false),
        ]));
        let engine = manual_engine();
        let (t, p) = engine
            .table_publisher(
                "k",
                schema.clone(),
                PublisherOptions::default().with_key(["a", "b"]),
            )
            .unwrap();
        let batch = arrow_array::RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["y", "x", "y", "x"])),
                Arc::new(Int64Array::from(vec![2, 9, 1, -3])),
                Arc::new(Int64Array::from(vec![0, 1, 2, 3])),
            ],
        )
        .unwrap();
        p.upsert(batch).unwrap();
        engine.run_cycle();
        let snap = t.snapshot();
        let got: Vec<Vec<crate::OwnedValue>> = snap
            .rows_in_key_order()
            .unwrap()
            .iter()
            .map(super::RowRef::to_owned_values)
            .collect();
        let want: Vec<Vec<crate::OwnedValue>> =
            [("x", -3, 3), ("x", 9, 1), ("y", 1, 2), ("y", 2, 0)]
                .into_iter()
                .map(|(a, b, v)| vec![a.into(), b.into(), v.into()])
                .collect();
        assert_eq!(got, want);
        let named = snap.row(0).unwrap();
        assert_eq!(named.get_named("a"), Some(Value::Str("y")));
        assert_eq!(named.to_batch().num_rows(), 1);
    }
}
