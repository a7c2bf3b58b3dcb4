//! `filter`: the rows of a source that match a predicate.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;

use crate::derive::op::{
    delete_batch, Delta, DeltaReader, OpInput, OpOutput, Operator, SourceKind,
};
use crate::error::Result;
use crate::expr::BoundExpr;

/// The operator of [`EngineHandle::filter`](crate::EngineHandle::filter).
pub(crate) struct FilterOp {
    predicate: BoundExpr,
    reader: DeltaReader,
    delta: Delta,
    /// The source's key columns (a keyed source).
    key: Arc<[usize]>,
    schema: SchemaRef,
    /// A ring source: the source position of each row the result holds, oldest first.
    positions: VecDeque<u64>,
    /// A ring source: how many result rows were ever evicted (the result's start).
    evicted: u64,
}

impl FilterOp {
    pub(crate) fn new(
        predicate: BoundExpr,
        kind: SourceKind,
        schema: SchemaRef,
        key: Arc<[usize]>,
    ) -> Self {
        Self {
            predicate,
            reader: DeltaReader::new(kind),
            delta: Delta::default(),
            key,
            schema,
            positions: VecDeque::new(),
            evicted: 0,
        }
    }
}

impl Operator for FilterOp {
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()> {
        self.reader.read(input, &mut self.delta);
        match self.reader.kind() {
            SourceKind::Blink | SourceKind::Append => {
                for part in &self.delta.new {
                    let kept = self.predicate.filter(&part.batch)?;
                    if kept.num_rows() > 0 {
                        out.batches.push(kept);
                    }
                }
            }
            SourceKind::Ring => {
                // Evicted source rows leave the result: they are its oldest rows.
                let start = input.source.rows().start;
                while self.positions.front().is_some_and(|&p| p < start) {
                    self.positions.pop_front();
                    self.evicted += 1;
                }
                out.evict_to = Some(self.evicted);
                for part in &self.delta.new {
                    let mask = self.predicate.filter_mask(&part.batch)?;
                    let kept = arrow_select::filter::filter_record_batch(&part.batch, &mask)?;
                    if kept.num_rows() == 0 {
                        continue;
                    }
                    let mask = without_nulls(&mask);
                    self.positions
                        .extend(mask.values().set_indices().map(|i| part.first + i as u64));
                    out.batches.push(kept);
                }
            }
            SourceKind::Keyed => {
                // Old rows that matched leave (a delete of their key); new rows that match
                // enter. A key in both is written once, in place.
                for part in &self.delta.old {
                    let kept = self.predicate.filter(&part.batch)?;
                    if kept.num_rows() > 0 {
                        let keys = self.key.iter().map(|&k| kept.column(k).clone()).collect();
                        out.batches
                            .push(delete_batch(&self.schema, &self.key, keys));
                    }
                }
                for part in &self.delta.new {
                    let kept = self.predicate.filter(&part.batch)?;
                    if kept.num_rows() > 0 {
                        out.batches.push(relabel(&self.schema, kept));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A null in a filter mask means "no": the mask with its nulls made false.
fn without_nulls(mask: &arrow_array::BooleanArray) -> arrow_array::BooleanArray {
    match mask.nulls() {
        Some(n) if n.null_count() > 0 => {
            arrow_array::BooleanArray::new(mask.values() & n.inner(), None)
        }
        _ => mask.clone(),
    }
}

/// `batch` with the table's schema (the same columns), so the keyed table reads it as a
/// whole-row upsert.
pub(crate) fn relabel(schema: &SchemaRef, batch: RecordBatch) -> RecordBatch {
    if Arc::ptr_eq(schema, batch.schema_ref()) {
        return batch;
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
        .expect("invariant: the rows of a table fit its schema")
}
