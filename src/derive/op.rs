//! The operator interface of computing derived tables, and how an operator reads the rows a
//! cycle changed in its source.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};

use crate::error::Result;
use crate::subscribe::update::TableUpdate;
use crate::table::chunk::{chunk_index, slice_chunks, ChunkLog, Chunks};
use crate::table::keyed::OP_METADATA;
use crate::table::kind::Retention;

/// What an operator reads each cycle, under the global lock.
pub(crate) struct OpInput<'a> {
    /// The source's update of this cycle; `None` when it did not change.
    pub(crate) update: Option<&'a TableUpdate>,
    /// The source's rows after this cycle.
    pub(crate) source: &'a ChunkLog,
    /// What the source's own operator handed on (a bars table's open bars).
    pub(crate) side: &'a [RecordBatch],
}

/// What an operator makes each cycle, for its table's state to apply.
#[derive(Debug, Default)]
pub(crate) struct OpOutput {
    /// The table's input: rows to append, or for a keyed table upserts and deletes (applied
    /// in order, the last write to a key winning).
    pub(crate) batches: Vec<RecordBatch>,
    /// For a table whose window the operator keeps: drop the rows before this position.
    pub(crate) evict_to: Option<u64>,
    /// Batches for the table's derived tables.
    pub(crate) side: Vec<RecordBatch>,
}

/// A computing derived table's incremental state. Runs on the cycle thread, under the
/// global lock, once per cycle in which its source changed (and once at creation, with
/// every current row of the source as added). Must cost O(rows changed).
pub(crate) trait Operator: Send + Sync {
    /// Turns the source's update into this table's input.
    ///
    /// # Errors
    ///
    /// A failure computing on the rows (an expression error, an Arrow error): the table
    /// fails with it.
    fn run(&mut self, input: &OpInput<'_>, out: &mut OpOutput) -> Result<()>;
}

/// How a source's updates are read by an accumulating operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// Blink: every row the source ever shows is added once; its removals are ignored (the
    /// operator accumulates the stream, as Deephaven's aggregations of blink tables do).
    Blink,
    /// Append: rows are only added.
    Append,
    /// Ring: evicted rows are retracted.
    Ring,
    /// Keyed: removed and modified rows are retracted at their old values, modified and
    /// added rows added at their new values.
    Keyed,
}

impl SourceKind {
    pub(crate) fn of(retention: Retention) -> Self {
        match retention {
            Retention::Blink { .. } => SourceKind::Blink,
            Retention::Append { .. } => SourceKind::Append,
            Retention::Ring { .. } => SourceKind::Ring,
            Retention::Keyed { .. } => SourceKind::Keyed,
        }
    }

    /// Whether rows ever leave what the operator computes over.
    pub(crate) fn retracts(self) -> bool {
        matches!(self, SourceKind::Ring | SourceKind::Keyed)
    }
}

/// Source rows with their positions: row `i` of `batch` is at `first + i`, or at `list[i]`.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) batch: RecordBatch,
    pub(crate) first: u64,
    pub(crate) list: Option<Arc<[u64]>>,
}

impl Part {
    pub(crate) fn position(&self, i: usize) -> u64 {
        match &self.list {
            Some(l) => l[i],
            None => self.first + i as u64,
        }
    }
}

/// One cycle's change of a source as rows: the rows that left (at their old values) and
/// the rows that entered (at their new values).
#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub(crate) old: Vec<Part>,
    pub(crate) new: Vec<Part>,
}

/// Reads what a source's update changed, keeping the source's previous rows to read the old
/// values of rows that left or changed. Cloning the chunk list is O(1) (a persistent vector),
/// so keeping it costs no copy; reading old rows costs O(rows read).
#[derive(Debug)]
pub(crate) struct DeltaReader {
    kind: SourceKind,
    prev: Chunks,
}

impl DeltaReader {
    pub(crate) fn new(kind: SourceKind) -> Self {
        Self {
            kind,
            prev: Chunks::new(),
        }
    }

    pub(crate) fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The rows this cycle's update changed; `into` is cleared first.
    pub(crate) fn read(&mut self, input: &OpInput<'_>, into: &mut Delta) {
        into.old.clear();
        into.new.clear();
        let Some(update) = input.update else {
            return;
        };
        if self.kind.retracts() {
            if !update.removed.is_empty() {
                for batch in slice_chunks(&self.prev, update.removed.clone()) {
                    let first = into.old.last().map_or(update.removed.start, |p: &Part| {
                        p.first + p.batch.num_rows() as u64
                    });
                    into.old.push(Part {
                        batch,
                        first,
                        list: None,
                    });
                }
            }
            if let Some(batch) = &update.modified.batch {
                let positions: Arc<[u64]> = Arc::from(update.modified.positions.as_slice());
                into.old.push(Part {
                    batch: take_rows(&self.prev, &positions, batch.schema_ref()),
                    first: 0,
                    list: Some(positions.clone()),
                });
                into.new.push(Part {
                    batch: batch.clone(),
                    first: 0,
                    list: Some(positions),
                });
            }
            self.prev = input.source.chunks().clone();
        }
        let mut first = update.added.start;
        for batch in &update.batches {
            into.new.push(Part {
                batch: batch.clone(),
                first,
                list: None,
            });
            first += batch.num_rows() as u64;
        }
    }
}

/// The rows at `positions` (ascending) of `chunks`, a table of `schema`, as one batch.
/// Cost O(rows × log chunks).
pub(crate) fn take_rows(chunks: &Chunks, positions: &[u64], schema: &SchemaRef) -> RecordBatch {
    let cols: Vec<usize> = (0..schema.fields().len()).collect();
    let arrays = take_columns(chunks, schema, positions, &cols);
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(positions.len())),
    )
    .expect("invariant: rows of one table fit its schema")
}

/// Columns `cols` of the rows at `positions` (ascending) of `chunks`, a table of `schema`.
/// Cost O(rows × log chunks).
pub(crate) fn take_columns(
    chunks: &Chunks,
    schema: &SchemaRef,
    positions: &[u64],
    cols: &[usize],
) -> Vec<ArrayRef> {
    let mut used: Vec<usize> = Vec::new();
    let mut idx: Vec<(usize, usize)> = Vec::with_capacity(positions.len());
    let mut at = usize::MAX;
    for &p in positions {
        let inside = at != usize::MAX && {
            let c = &chunks[at];
            c.start <= p && p < c.end()
        };
        if !inside {
            at = chunk_index(chunks, p);
            used.push(at);
        }
        let c = &chunks[at];
        let row = usize::try_from(p - c.start).expect("invariant: within a chunk");
        idx.push((used.len() - 1, row));
    }
    cols.iter()
        .map(|&c| {
            if used.is_empty() {
                return arrow_array::new_empty_array(schema.field(c).data_type());
            }
            let arrays: Vec<&dyn arrow_array::Array> = used
                .iter()
                .map(|&u| chunks[u].batch.column(c).as_ref())
                .collect();
            arrow_select::interleave::interleave(&arrays, &idx)
                .expect("invariant: chunks of one table share the schema")
        })
        .collect()
}

/// A batch of keyed-table deletes: the key columns `keys`, named as in `schema`.
pub(crate) fn delete_batch(schema: &SchemaRef, key: &[usize], keys: Vec<ArrayRef>) -> RecordBatch {
    let fields: Vec<Field> = key.iter().map(|&k| schema.field(k).clone()).collect();
    let meta = std::collections::HashMap::from([(OP_METADATA.to_owned(), "delete".to_owned())]);
    RecordBatch::try_new(Arc::new(Schema::new_with_metadata(fields, meta)), keys)
        .expect("invariant: key columns of the table's types")
}
