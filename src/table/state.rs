//! A table's storage and retention: what the cycle applies each step, under the global lock.

use std::borrow::Cow;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::derive::op::OpOutput;
use crate::step::Step;
use crate::subscribe::update::{Modified, TableUpdate};
use crate::table::chunk::ChunkLog;
use crate::table::keyed::KeyedState;
use crate::table::kind::Retention;
use crate::table::snapshot::SnapshotInner;
use crate::table::{append, blink, ring};

/// The rows in `batches`.
fn rows_in(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// A table's storage and retention, guarded by the global lock.
pub(crate) struct TableState {
    pub(crate) log: ChunkLog,
    pub(crate) retention: Retention,
    /// A keyed table's key index.
    pub(crate) keyed: Option<Box<KeyedState>>,
}

/// The result of applying one cycle's input to a table.
pub(crate) struct Applied {
    pub(crate) update: Option<TableUpdate>,
    pub(crate) dropped: u64,
}

impl TableState {
    pub(crate) fn new(
        retention: Retention,
        schema: &SchemaRef,
        key: &std::sync::Arc<[usize]>,
    ) -> Self {
        let keyed = match retention {
            Retention::Keyed { capacity } => Some(Box::new(KeyedState::new(
                schema,
                key.clone(),
                capacity.map(|c| usize::try_from(c).expect("invariant: capacity came from usize")),
            ))),
            _ => None,
        };
        Self {
            log: ChunkLog::default(),
            retention,
            keyed,
        }
    }

    /// Applies one cycle's input: appends, applies retention and builds the update.
    ///
    /// Cost O(input chunks + evicted chunks); rows are never copied (batches are sliced).
    /// Returns no update when the window did not change.
    pub(crate) fn apply(&mut self, step: Step, input: &[RecordBatch]) -> Applied {
        if let Some(keyed) = &mut self.keyed {
            return Applied {
                update: keyed.apply(step, &mut self.log, input),
                dropped: 0,
            };
        }
        self.apply_rows(step, rows_in(input), input.iter().map(Cow::Borrowed))
    }

    /// [`apply`](Self::apply), taking the batches out of `input` (left empty) rather than
    /// cloning them: a source table's drained input, a replayed record.
    pub(crate) fn apply_owned(&mut self, step: Step, input: &mut Vec<RecordBatch>) -> Applied {
        if self.keyed.is_some() {
            let applied = self.apply(step, input);
            input.clear();
            return applied;
        }
        self.apply_rows(step, rows_in(input), input.drain(..).map(Cow::Owned))
    }

    fn apply_rows<'a>(
        &mut self,
        step: Step,
        incoming: u64,
        input: impl Iterator<Item = Cow<'a, RecordBatch>>,
    ) -> Applied {
        let old = self.log.rows();
        let accepted = match self.retention {
            Retention::Append { limit } => append::accepted(old.end - old.start, incoming, limit),
            _ => incoming,
        };
        let e0 = old.end;
        let e1 = e0 + accepted;
        let new_start = match self.retention {
            Retention::Append { .. } => old.start,
            Retention::Blink { cap } => blink::new_start(e0, e1, cap),
            Retention::Ring { capacity } => ring::new_start(old.start, e1, capacity),
            Retention::Keyed { .. } => unreachable!("keyed tables apply in keyed.rs"),
        };
        self.log.evict_to(new_start.min(e0));
        let mut batches = Vec::new();
        let mut pos = e0;
        for batch in input {
            if pos >= e1 {
                break;
            }
            let len = batch.num_rows() as u64;
            let from = pos.max(new_start);
            let to = (pos + len).min(e1);
            if from < to {
                let offset = usize::try_from(from - pos).expect("invariant: within a batch");
                let n = usize::try_from(to - from).expect("invariant: within a batch");
                let slice = if n == batch.num_rows() {
                    batch.into_owned()
                } else {
                    batch.slice(offset, n)
                };
                batches.push(slice);
            }
            pos += len;
        }
        if new_start >= e0 {
            // Every old row goes; rows before new_start of this cycle were never stored.
            self.log.skip_to(new_start);
        }
        for b in &batches {
            self.log.push_coalescing(b.clone());
        }
        self.log.evict_to(new_start);
        debug_assert_eq!(self.log.rows(), new_start..e1);
        let removed = old.start..new_start.min(old.end).max(old.start);
        let added = old.end.max(new_start)..e1;
        let update = if removed.is_empty() && added.is_empty() {
            None
        } else {
            Some(TableUpdate {
                step,
                removed,
                added,
                batches,
                modified: Modified::default(),
            })
        };
        Applied {
            update,
            dropped: incoming - accepted,
        }
    }

    /// Applies what a computing derived table's operator made this cycle: its rows (keyed
    /// upserts and deletes for a keyed table), after evicting the rows before
    /// [`OpOutput::evict_to`] when the operator keeps its own window (a filter of a ring).
    /// Takes the batches out of `out`.
    pub(crate) fn apply_output(&mut self, step: Step, out: &mut OpOutput) -> Applied {
        match out.evict_to {
            Some(new_start) if self.keyed.is_none() => {
                self.apply_window(step, new_start, &mut out.batches)
            }
            _ => self.apply_owned(step, &mut out.batches),
        }
    }

    /// Evicts the rows before `new_start` and appends `input` whole: a window whose start the
    /// operator moves, not the retention. Cost O(input chunks + evicted chunks).
    fn apply_window(
        &mut self,
        step: Step,
        new_start: u64,
        input: &mut Vec<RecordBatch>,
    ) -> Applied {
        let old = self.log.rows();
        let new_start = new_start.clamp(old.start, old.end);
        self.log.evict_to(new_start);
        let mut batches = Vec::with_capacity(input.len());
        for b in input.drain(..).filter(|b| b.num_rows() > 0) {
            self.log.push_coalescing(b.clone());
            batches.push(b);
        }
        let removed = old.start..new_start;
        let added = old.end..self.log.rows().end;
        let update = (!removed.is_empty() || !added.is_empty()).then(|| TableUpdate {
            step,
            removed,
            added,
            batches,
            modified: Modified::default(),
        });
        Applied { update, dropped: 0 }
    }

    pub(crate) fn snapshot(
        &self,
        step: Step,
        schema: &SchemaRef,
        key: &std::sync::Arc<[usize]>,
    ) -> SnapshotInner {
        SnapshotInner {
            step,
            rows: self.log.rows(),
            chunks: self.log.chunks().clone(),
            schema: schema.clone(),
            key: key.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn schema1() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
    }

    fn no_key() -> Arc<[usize]> {
        Arc::from(Vec::new())
    }

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = schema1();
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    fn rows(state: &TableState) -> Vec<i64> {
        state
            .log
            .chunks()
            .iter()
            .flat_map(|c| {
                c.batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn smoke() {
        let mut t = TableState::new(Retention::Append { limit: None }, &schema1(), &no_key());
        let a = t.apply(Step(1), &[batch(0..3)]);
        let u = a.update.unwrap();
        assert_eq!((u.removed, u.added), (0..0, 0..3));
        assert_eq!(rows(&t), vec![0, 1, 2]);
    }

    #[test]
    fn ring_batch_larger_than_capacity_keeps_its_tail_and_reports_clamped_ranges() {
        let mut t = TableState::new(Retention::Ring { capacity: 4 }, &schema1(), &no_key());
        t.apply(Step(1), &[batch(0..2)]);
        let u = t
            .apply(Step(2), &[batch(2..5), batch(5..12)])
            .update
            .unwrap();
        assert_eq!(rows(&t), vec![8, 9, 10, 11]);
        assert_eq!(u.removed, 0..2);
        assert_eq!(u.added, 8..12);
        assert_eq!(
            u.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            4
        );
    }

    #[test]
    fn blink_with_no_rows_empties_and_then_reports_nothing() {
        let mut t = TableState::new(Retention::Blink { cap: None }, &schema1(), &no_key());
        t.apply(Step(1), &[batch(0..3)]);
        let u = t.apply(Step(2), &[]).update.unwrap();
        assert_eq!((u.removed, u.added), (0..3, 3..3));
        assert!(t.apply(Step(3), &[]).update.is_none());
    }

    #[test]
    fn append_limit_drops_rows_past_it() {
        let mut t = TableState::new(Retention::Append { limit: Some(5) }, &schema1(), &no_key());
        let a = t.apply(Step(1), &[batch(0..3), batch(3..7)]);
        assert_eq!(a.dropped, 2);
        assert_eq!(rows(&t), vec![0, 1, 2, 3, 4]);
        let a = t.apply(Step(2), &[batch(7..9)]);
        assert!(a.update.is_none());
        assert_eq!(a.dropped, 2);
    }
}
